import Foundation
import Testing
@testable import Catalog

@Suite("Catalog")
struct CatalogTests {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("catalog-tests-\(UUID().uuidString)")
    }

    func item(_ hash: String, path: String = "/photos/a.jpg", metadata: String? = nil) -> Item {
        Item(id: Item.id(forContentHash: hash), contentHash: hash, sourcePath: path, width: 640, height: 480,
             metadata: metadata, addedAt: Date(timeIntervalSince1970: 1_700_000_000))
    }

    @Test("items and vectors survive closing and reopening the store")
    func persistence() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let hash = String(repeating: "ab", count: 32)
        do {
            let catalog = try Catalog(directory: directory)
            try catalog.insert([(item(hash, metadata: #"{"colour":"red"}"#), [0.5, -0.25, 1])], model: "m")
        }
        let reopened = try Catalog(directory: directory)
        let stored = try #require(try reopened.item(contentHash: hash))
        #expect(stored.id == "abababababababab")
        #expect(stored.metadata == #"{"colour":"red"}"#)
        #expect(stored.width == 640 && stored.height == 480)
        let vectors = try reopened.vectors(model: "m")
        #expect(vectors.count == 1)
        #expect(vectors.first?.vector == [0.5, -0.25, 1])
        #expect(try reopened.hasVector(itemId: stored.id, model: "m"))
        #expect(try !reopened.hasVector(itemId: stored.id, model: "other"))
    }

    @Test("one item keeps one vector per model; a second model adds, the same model replaces")
    func vectorsPerModel() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let catalog = try Catalog(directory: directory)
        let entry = item(String(repeating: "01", count: 32))
        try catalog.insert([(entry, [1, 0])], model: "general")
        try catalog.insert([(entry, [0, 1, 0])], model: "copies")
        try catalog.insert([(entry, [0, 2])], model: "general")
        let stats = try catalog.stats()
        #expect(stats.items == 1)
        #expect(stats.vectors == ["general": 1, "copies": 1])
        #expect(try catalog.vectors(model: "general").first?.vector == [0, 2])
        #expect(stats.bytesOnDisk > 0)
    }

    @Test("every change to a model's vectors, cascaded deletes included, moves its generation on")
    func generations() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let catalog = try Catalog(directory: directory)
        #expect(try catalog.vectorGeneration(model: "m") == 0)
        let first = item(String(repeating: "01", count: 32))
        let second = item(String(repeating: "02", count: 32))
        try catalog.insert([(first, [1, 0]), (second, [0, 1])], model: "m")
        let afterInsert = try catalog.vectorGeneration(model: "m")
        #expect(afterInsert > 0)
        #expect(try catalog.vectorGeneration(model: "other") == 0)
        // Replacing a vector counts as a change; a change to another model does not touch this one.
        try catalog.insert([(first, [0.5, 0.5])], model: "m")
        let afterReplace = try catalog.vectorGeneration(model: "m")
        #expect(afterReplace > afterInsert)
        try catalog.insert([(first, [1, 1])], model: "other")
        #expect(try catalog.vectorGeneration(model: "m") == afterReplace)
        // Removing the item deletes its vectors through the foreign key: both models move on.
        let otherBefore = try catalog.vectorGeneration(model: "other")
        try catalog.remove(ids: [first.id])
        #expect(try catalog.vectorGeneration(model: "m") > afterReplace)
        #expect(try catalog.vectorGeneration(model: "other") > otherBefore)
        let (ids, generation) = try catalog.vectorIDsAndGeneration(model: "m")
        #expect(ids == [second.id])
        #expect(generation == (try catalog.vectorGeneration(model: "m")))
        // The generation survives reopening.
        #expect(try Catalog(directory: directory).vectorGeneration(model: "m") == generation)
    }

    @Test("removing an item deletes its vectors; unknown ids are ignored")
    func removal() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let catalog = try Catalog(directory: directory)
        let first = item(String(repeating: "11", count: 32), path: "/a.jpg")
        let second = item(String(repeating: "22", count: 32), path: "/b.jpg")
        try catalog.insert([(first, [1]), (second, [2])], model: "m")
        let removed = try catalog.remove(ids: [first.id, "0000000000000000"])
        #expect(removed == [first.id])
        #expect(try catalog.vectors(model: "m").map(\.id) == [second.id])
        #expect(try catalog.stats().items == 1)
    }

    @Test("a store in an unwritable place gives an error naming the path")
    func cannotOpen() throws {
        let blocker = directory.appendingPathComponent("file")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data("x".utf8).write(to: blocker)
        do {
            _ = try Catalog(directory: blocker.appendingPathComponent("store"))
            Issue.record("opening a store under a regular file should fail")
        } catch let error as CatalogError {
            #expect("\(error)".contains(blocker.path))
        }
    }

    @Test("a model name keeps its fingerprint: the same model passes, a changed one is refused")
    func modelFingerprints() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let catalog = try Catalog(directory: directory)
        try catalog.checkModel("m", fingerprint: "abc", dimension: 4, record: false)
        try catalog.checkModel("m", fingerprint: "xyz", dimension: 4, record: false)  // nothing recorded yet
        try catalog.checkModel("m", fingerprint: "abc", dimension: 4, record: true)
        try catalog.checkModel("m", fingerprint: "abc", dimension: 4, record: true)
        #expect(throws: CatalogError.self) { try catalog.checkModel("m", fingerprint: "xyz", dimension: 4, record: true) }
        #expect(throws: CatalogError.self) { try catalog.checkModel("m", fingerprint: "abc", dimension: 8, record: false) }
        try catalog.checkModel("other", fingerprint: "xyz", dimension: 4, record: true)
    }

    @Test("a damaged vector blob is reported, not misread")
    func corruptVector() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let catalog = try Catalog(directory: directory)
        let entry = item(String(repeating: "33", count: 32))
        try catalog.insert([(entry, [1, 2, 3])], model: "m")
        try catalog.withDatabaseForTesting { db in
            try db.execute(sql: "UPDATE vector SET data = x'0000' WHERE item_id = ?", arguments: [entry.id])
        }
        #expect(throws: CatalogError.self) { _ = try catalog.vectors(model: "m") }
    }
}
