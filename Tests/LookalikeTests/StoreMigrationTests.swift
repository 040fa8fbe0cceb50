import Catalog
import Foundation
import Lookalike
import TestSupport
import Testing

@Suite("Moving a store")
struct StoreMigrationTests {
    func item(_ number: Int, metadata: String?) -> Item {
        let hash = String(format: "%016x", number) + String(repeating: "a", count: 48)
        return Item(id: Item.id(forContentHash: hash), contentHash: hash, sourcePath: "/photos/\(number).jpg", width: number,
                    height: 7, metadata: metadata, addedAt: Date(timeIntervalSince1970: 1_700_000_000 + Double(number)))
    }

    func store(_ kind: String, _ folder: URL) throws -> any Store {
        if let database = TestStores.database(kind) { return try PostgresStore(address: database, directory: folder) }
        return try Catalog(directory: folder)
    }

    @Test("a SQLite store moves into another store and back: everything kept, an interrupted move finished by running it again",
          arguments: TestStores.kinds)
    func roundTrip(_ kind: String) throws {
        let folder = try TestData.temporaryDirectory("migrate")
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = try Catalog(directory: folder.appendingPathComponent("source"))
        try source.checkModel("image", fingerprint: "f1", dimension: 3, record: true)
        try source.checkModel("words", fingerprint: "f2", dimension: 2, space: "text", record: true)
        let red = ColorProfile(fractions: ColorProfile.names.map { $0 == "red" ? 1 : 0 }).json
        let items = (1...1_234).map { number in
            var entry = item(number, metadata: number % 3 == 0 ? #"{"n": \#(number), "tag": "x"}"# : nil)
            entry.colors = number % 5 == 0 ? red : nil
            return entry
        }
        try source.insert(items.map { (item: $0, vector: [Float($0.width), 0.5, -1]) }, model: "image")
        try source.insert(items.prefix(100).map { (item: $0, vector: [1, Float($0.width)]) }, model: "words")
        try source.recordFeedback([Feedback(model: "image", query: [1, 0, 0], itemID: items[4].id, mark: .relevant,
                                            at: Date(timeIntervalSince1970: 5)),
                                   Feedback(model: "image", query: [0, 1, 0], itemID: items[5].id, mark: .notRelevant,
                                            at: Date(timeIntervalSince1970: 6))])
        // A tuned model over "image", its vectors, and the store's default model naming it.
        let tuned = TunedModelRecord(name: "image+shop", base: "image", fingerprint: "t1", inputDimension: 3, outputDimension: 3,
                                     weights: [1, 2, 3, 4], report: "{}", createdAt: Date(timeIntervalSince1970: 7))
        try source.saveTunedModel(tuned)
        try source.checkModel("image+shop", fingerprint: "t1", dimension: 3, record: true)
        try source.insert(items.prefix(50).map { (item: $0, vector: [0.5, Float($0.width), 1]) }, model: "image+shop")
        try source.setSetting(StoreSetting.defaultModel, to: "image+shop")

        // A move that stopped part-way: the target holds some items already, one with stale metadata.
        let target = try store(kind, folder.appendingPathComponent("target"))
        try target.checkModel("image", fingerprint: "f1", dimension: 3, record: true)
        var stale = items[2]
        stale.metadata = #"{"old": true}"#
        try target.insert([(item: stale, vector: [3, 0.5, -1])] + items[10..<400].map { (item: $0, vector: [Float($0.width), 0.5, -1]) },
                          model: "image")

        let report = try StoreMigration.run(from: source, to: target, pageSize: 100)
        #expect(report.itemsCopied == 1_234 - 391)
        #expect(report.vectorsCopied == ["image": 1_234 - 391, "words": 100, "image+shop": 50])
        #expect(report.metadataUpdated == 1)
        #expect(report.feedbackCopied == 2)
        #expect(report.source == report.target)
        #expect(report.target.items == 1_234 && report.target.vectors == ["image": 1_234, "words": 100, "image+shop": 50])
        #expect(report.tunedModelsCopied == ["image+shop"] && report.defaultModelCopied)
        #expect(try target.tunedModels() == [tuned])
        #expect(try target.setting(StoreSetting.defaultModel) == "image+shop")
        #expect(try target.items(ids: [items[2].id])[items[2].id]?.metadata == items[2].metadata)
        #expect(try target.modelRecords() == source.modelRecords())
        #expect(try target.feedback(model: "image", limit: 5).map(\.itemID) == [items[5].id, items[4].id])
        #expect(try target.itemIDs(matching: MetadataFilter(json: #"{"tag": "x"}"#)).count == 411)
        // Colour profiles come along (the items the target already held had theirs).
        #expect(try target.itemIDs(matching: MetadataFilter(json: #"{"$color": "red"}"#)).count == 246)

        // Run again: nothing to copy, still verified. And back into a new SQLite store.
        let again = try StoreMigration.run(from: source, to: target)
        #expect(again.itemsCopied == 0 && again.vectorsCopied.values.allSatisfy { $0 == 0 } && again.feedbackCopied == 0)
        #expect(again.tunedModelsCopied.isEmpty && !again.defaultModelCopied)
        let back = try Catalog(directory: folder.appendingPathComponent("back"))
        #expect(try StoreMigration.run(from: target, to: back).target == report.source)

        // A store that differs by one vector does not verify.
        try back.insert([(item: items[7], vector: [0, 0, 0])], model: "image")
        #expect(try StoreMigration.checksum(back) != report.source)
        try (target as? PostgresStore)?.destroy()
    }

    @Test("a target whose model of the same name is another network is refused before anything is copied")
    func differentModel() throws {
        let folder = try TestData.temporaryDirectory("migrate-model")
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = try Catalog(directory: folder.appendingPathComponent("source"))
        try source.checkModel("image", fingerprint: "f1", dimension: 3, record: true)
        try source.insert([(item: item(1, metadata: nil), vector: [1, 0, 0])], model: "image")
        let target = try Catalog(directory: folder.appendingPathComponent("target"))
        try target.checkModel("image", fingerprint: "other", dimension: 3, record: true)
        #expect(throws: CatalogError.self) { try StoreMigration.run(from: source, to: target) }
        #expect(try target.itemCount() == 0)
    }
}
