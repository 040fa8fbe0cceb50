import Catalog
import Foundation
import TestSupport
import Testing
import VectorIndex
@testable import Lookalike

/// Two engines on one store, as `lookalike serve` and `lookalike add` in two processes are: each
/// sees the other's adds and removals at its next search, below and above the approximate-search
/// threshold. And a snapshot belongs to the store that made it.
@Suite("Engines sharing a store", .serialized)
struct SharedStoreTests {
    static let model = "efficientnet-lite0-gem"

    func engine(_ store: URL, threshold: Int) throws -> Engine {
        try Engine(configuration: EngineConfiguration(store: store, approximateSearchThreshold: threshold))
    }

    @Test("upload folders no item uses are swept; on a shared (PostgreSQL) store only those untouched for a while",
          arguments: TestStores.kinds)
    func orphanedUploads(_ kind: String) throws {
        let folder = try TestData.temporaryDirectory("orphaned-uploads")
        defer { try? FileManager.default.removeItem(at: folder) }
        let engine = try Engine(configuration: EngineConfiguration(store: folder, database: TestStores.database(kind)))
        let photo = try [UInt8](Data(contentsOf: URL(fileURLWithPath: try TestData.photoPaths()[0])))
        guard case .added(let item) = try engine.addUpload(photo, name: "kept.jpg", metadata: nil, limits: .default) else {
            Issue.record("the upload was not added")
            return
        }
        let uploads = folder.appendingPathComponent("uploads")
        // Two uploads cut short: one just now (another server may be writing it), one an hour ago.
        let fresh = uploads.appendingPathComponent(String(repeating: "a", count: 32))
        let stale = uploads.appendingPathComponent(String(repeating: "b", count: 32))
        for orphan in [fresh, stale] {
            try FileManager.default.createDirectory(at: orphan, withIntermediateDirectories: true)
            try Data("half an upload".utf8).write(to: orphan.appendingPathComponent("upload.jpg"))
        }
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-3600)], ofItemAtPath: stale.path)
        let removed = try engine.removeOrphanedUploads()
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: uploads.path))
        #expect(!left.contains(stale.lastPathComponent))
        #expect(left.contains(fresh.lastPathComponent) == (kind == "postgres"))
        #expect(removed == (kind == "postgres" ? 1 : 2))
        #expect(FileManager.default.fileExists(atPath: item.sourcePath), "the stored upload stays")
    }

    @Test("a warm engine finds what another engine added and never what it removed", arguments: [1_000_000, 10])
    func otherWriter(threshold: Int) throws {
        let photos = try TestData.photoPaths()
        let folder = try TestData.temporaryDirectory("shared")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = folder.appendingPathComponent("store")

        let writer = try engine(store, threshold: threshold)
        _ = try writer.add(Array(photos.dropLast(2)))
        let reader = try engine(store, threshold: threshold)
        // Warm: the reader's index is loaded, as a running server's is.
        #expect(try reader.search(imageAt: photos[0], top: 1).hits.first?.path == photos[0])
        #expect(try reader.indexStatuses().first?.kind == (threshold == 10 ? "hnsw" : "exact"))

        // The writer adds two photos: the reader finds each as its own best match.
        _ = try writer.add(Array(photos.suffix(2)))
        for photo in photos.suffix(2) {
            let top = try #require(try reader.search(imageAt: photo, top: 1).hits.first)
            #expect(top.path == photo)
            #expect(top.score > 0.999)
        }

        // The writer removes five items: the reader still answers with as many hits as asked, and
        // none of them is a removed one.
        let victims = try writer.search(imageAt: photos[3], top: 5).hits.map(\.id)
        #expect(try writer.remove(ids: victims).count == 5)
        let hits = try reader.search(imageAt: photos[3], top: 10).hits
        #expect(hits.count == 10)
        #expect(Set(hits.map(\.id)).isDisjoint(with: victims))
        #expect(try reader.indexStatuses().first?.vectors == photos.count - 5)
        #expect(reader.indexes.loads == 1, "caught up, not reloaded")
        #expect(reader.indexes.catchUps >= 2)
    }

    @Test("a snapshot made from another store at the same generation is rebuilt, not trusted")
    func foreignSnapshot() throws {
        let photos = try TestData.photoPaths()
        let folder = try TestData.temporaryDirectory("identity")
        defer { try? FileManager.default.removeItem(at: folder) }
        let first = folder.appendingPathComponent("first")
        let second = folder.appendingPathComponent("second")

        // Two stores built alike, one add of 20 photos each: equal generations, other photos.
        let a = try engine(first, threshold: 10)
        _ = try a.add(Array(photos.prefix(20)))
        let b = try engine(second, threshold: 10)
        _ = try b.add(Array(photos.suffix(20)))
        let snapshotA = a.snapshotURL(model: Self.model)
        let snapshotB = b.snapshotURL(model: Self.model)
        #expect(try a.store.vectorGeneration(model: Self.model) == b.store.vectorGeneration(model: Self.model))
        #expect(try a.store.identity() != b.store.identity())
        #expect(try HNSWIndex.load(from: snapshotA).externalIdentity == a.store.identity())

        // The second store gets the first one's snapshot.
        try FileManager.default.removeItem(at: snapshotB)
        try FileManager.default.copyItem(at: snapshotA, to: snapshotB)
        let reopened = try engine(second, threshold: 10)
        for photo in photos.suffix(20) {
            #expect(try reopened.search(imageAt: photo, top: 1).hits.first?.path == photo)
        }
        let rewritten = try HNSWIndex.load(from: snapshotB)
        #expect(rewritten.externalIdentity == (try b.store.identity()))
        #expect(Set(rewritten.liveIDs()) == Set(try b.store.vectorIDs(model: Self.model)))
    }

    @Test("eight concurrent first searches make one index")
    func oneBuild() throws {
        let photos = try TestData.photoPaths()
        let folder = try TestData.temporaryDirectory("onebuild")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = folder.appendingPathComponent("store")
        _ = try engine(store, threshold: 10).add(photos)
        try FileManager.default.removeItem(at: try engine(store, threshold: 10).snapshotURL(model: Self.model))

        let fresh = try engine(store, threshold: 10)
        let ids = Array(try fresh.store.vectorIDs(model: Self.model).prefix(8))
        let answers = Mutex8()
        DispatchQueue.concurrentPerform(iterations: 8) { query in
            let top = try? fresh.search(.item(ids[query]), options: SearchOptions(top: 1)).hits.first?.id
            answers.set(query, top == ids[query])
        }
        #expect(answers.all, "every search found its own item first")
        #expect(fresh.indexes.loads == 1)
        #expect(FileManager.default.fileExists(atPath: fresh.snapshotURL(model: Self.model).path))
    }
}

/// Eight answers written from concurrent searches.
private final class Mutex8: @unchecked Sendable {
    private let lock = NSLock()
    private var values = [Bool](repeating: false, count: 8)
    func set(_ index: Int, _ value: Bool) { lock.withLock { values[index] = value } }
    var all: Bool { lock.withLock { values.allSatisfy { $0 } } }
}
