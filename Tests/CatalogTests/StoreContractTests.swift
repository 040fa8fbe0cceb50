import Catalog
import Foundation
import PostgresStore
import TestSupport
import Testing

/// What every `Store` must do, whatever holds the data: the engine relies on exactly this. Each
/// test runs on every implementation in `StoreContractTests.stores`: the SQLite catalog, and the
/// PostgreSQL store on the database `LOOKALIKE_TEST_POSTGRES` names (`make test` starts one).
@Suite("The store contract")
struct StoreContractTests {
    /// Makes an empty store in a fresh folder (for PostgreSQL, in a fresh schema of its own).
    static let stores: [(name: String, make: @Sendable (URL) throws -> any Store)] = {
        var stores: [(name: String, make: @Sendable (URL) throws -> any Store)] = [
            ("sqlite", { folder in try Catalog(directory: folder) }),
        ]
        if TestStores.postgres != nil {
            // A schema of its own for every store made (an empty address fails as a bad one).
            stores.append(("postgres", { folder in try PostgresStore(address: TestStores.database("postgres") ?? "", directory: folder) }))
        }
        return stores
    }()

    static var names: [String] { stores.map(\.name) }

    private func withStore(_ name: String, _ body: (any Store) throws -> Void) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("store-contract-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let make = try #require(Self.stores.first { $0.name == name }?.make)
        let store = try make(folder)
        defer { try? (store as? PostgresStore)?.destroy() }
        try body(store)
    }

    private func withStoreValue<T>(_ name: String, _ body: (any Store) throws -> T) throws -> T {
        var value: T?
        try withStore(name) { store in value = try body(store) }
        return try #require(value)
    }

    @Test("PostgreSQL is there to test against (make test starts a throwaway one)")
    func postgresIsTested() {
        #expect(Self.names.contains("postgres"),
                "LOOKALIKE_TEST_POSTGRES is not set: run `make test`, or `scripts/postgres.sh run -- swift test`")
    }

    private func item(_ number: Int, metadata: String? = nil) -> Item {
        let hash = String(format: "%016x", number) + String(repeating: "0", count: 48)
        return Item(id: Item.id(forContentHash: hash), contentHash: hash, sourcePath: "/photos/\(number).jpg", width: 10 + number,
                    height: 20, metadata: metadata, addedAt: Date(timeIntervalSince1970: 1_700_000_000))
    }

    @Test("items: written together with their vectors, found by id, hash and page, removed with them", arguments: names)
    func items(_ name: String) throws {
        try withStore(name) { store in
            let entries = (1...25).map { (item: item($0), vector: [Float($0), 1]) }
            try store.insert(entries, model: "m")
            #expect(try store.itemCount() == 25)
            #expect(try store.item(contentHash: entries[3].item.contentHash) == entries[3].item)
            #expect(try store.items(ids: [entries[0].item.id, "missing"]).keys.sorted() == [entries[0].item.id])
            var seen: [String] = []
            var after: String?
            for _ in 0..<10 {
                let page = try store.items(after: after, limit: 10)
                if page.isEmpty { break }
                #expect(page.count <= 10)
                seen += page.map(\.id)
                after = page.last?.id
            }
            #expect(seen == entries.map(\.item.id).sorted())
            #expect(try store.remove(ids: [entries[0].item.id, "missing"]) == [entries[0].item.id])
            #expect(try store.vectorCount(model: "m") == 24)
            #expect(try !store.hasVector(itemId: entries[0].item.id, model: "m"))
            #expect(try store.stats() == CatalogStats(items: 24, vectors: ["m": 24], bytesOnDisk: try store.stats().bytesOnDisk))
        }
    }

    @Test("vectors: one per item and model, paged in insertion order, and a generation that moves with every change",
          arguments: names)
    func vectors(_ name: String) throws {
        try withStore(name) { store in
            #expect(try store.vectorGeneration(model: "m") == 0)
            try store.insert((1...7).map { (item: item($0), vector: [Float($0), 0, 1]) }, model: "m")
            let first = try store.vectorGeneration(model: "m")
            #expect(first > 0)
            try store.insert([(item: item(3), vector: [9, 9, 9])], model: "other")
            #expect(try store.vectorGeneration(model: "m") == first, "another model's vectors changed, not m's")
            #expect(try store.itemCount() == 7, "an item stored again keeps its one row")

            var pages: [[String]] = []
            try store.forEachVectorPage(model: "m", pageSize: 3) { page in
                pages.append(page.map(\.id))
                return true
            }
            #expect(pages.map(\.count) == [3, 3, 1])
            #expect(pages.flatMap { $0 } == (1...7).map { item($0).id })
            var stoppedAfter = 0
            try store.forEachVectorPage(model: "m", pageSize: 3) { _ in
                stoppedAfter += 1
                return false
            }
            #expect(stoppedAfter == 1)
            let (ids, generation) = try store.vectorIDsAndGeneration(model: "m")
            #expect(ids == pages.flatMap { $0 } && generation == first)
            #expect(try store.vectors(model: "m", ids: [item(2).id, "missing"]).map(\.vector) == [[2, 0, 1]])

            try store.insert([(item: item(2), vector: [5, 5, 5])], model: "m")
            let replaced = try store.vectorGeneration(model: "m")
            #expect(replaced > first)
            #expect(try store.vectors(model: "m", ids: [item(2).id]).first?.vector == [5, 5, 5])
            try store.remove(ids: [item(4).id])
            #expect(try store.vectorGeneration(model: "m") > replaced)
        }
    }

    @Test("identity: one per store, kept as the store is reopened, another for another store", arguments: names)
    func identity(_ name: String) throws {
        try withStore(name) { store in
            let identity = try store.identity()
            #expect(try store.identity() == identity)
            if let catalog = store as? Catalog {
                #expect(try Catalog(directory: catalog.directory).identity() == identity)
            }
            let otherIdentity = try withStoreValue(name) { other in try other.identity() }
            #expect(otherIdentity != identity)
        }
    }

    @Test("feedback: marks kept with their query vector, newest first, per model; gone with their item or when forgotten",
          arguments: names)
    func feedback(_ name: String) throws {
        try withStore(name) { store in
            let entries = (1...3).map { (item: item($0), vector: [Float($0), 1]) }
            try store.insert(entries, model: "m")
            let ids = entries.map(\.item.id)
            try store.recordFeedback([
                Feedback(model: "m", query: [0.6, 0.8], itemID: ids[0], mark: .relevant, at: Date(timeIntervalSince1970: 1)),
                Feedback(model: "m", query: [0.6, 0.8], itemID: ids[1], mark: .notRelevant, at: Date(timeIntervalSince1970: 2)),
                Feedback(model: "other", query: [1, 0, 0], itemID: ids[2], mark: .click, at: Date(timeIntervalSince1970: 3)),
            ])
            let marks = try store.feedback(model: "m", limit: 10)
            #expect(marks.map(\.itemID) == [ids[1], ids[0]])
            #expect(marks.map(\.mark) == [.notRelevant, .relevant])
            #expect(marks.first?.query == [0.6, 0.8])
            #expect(try store.feedback(model: "m", limit: 1).map(\.itemID) == [ids[1]])
            // A mark for an item that does not exist is refused, and nothing of its write is kept.
            #expect(throws: (any Error).self) {
                try store.recordFeedback([Feedback(model: "m", query: [1, 0], itemID: ids[2], mark: .click),
                                          Feedback(model: "m", query: [1, 0], itemID: "0000000000000bad", mark: .click)])
            }
            #expect(try store.feedback(model: "m", limit: 10).count == 2)
            try store.remove(ids: [ids[0]])
            #expect(try store.feedback(model: "m", limit: 10).map(\.itemID) == [ids[1]])
            #expect(try store.removeFeedback(model: "m") == 1)
            #expect(try store.feedback(model: "other", limit: 10).count == 1)
            #expect(try store.removeFeedback(model: nil) == 1)
        }
    }

    @Test("metadata: updated in the write that asks, matched by a parsed filter", arguments: names)
    func metadata(_ name: String) throws {
        try withStore(name) { store in
            try store.insert([(item: item(1, metadata: #"{"colour": "red", "price": 45}"#), vector: [1, 0]),
                              (item: item(2, metadata: #"{"colour": "blue", "price": 80}"#), vector: [0, 1]),
                              (item: item(3), vector: [1, 1])], model: "m")
            let cheapRed = try MetadataFilter(json: #"{"colour": "red", "price": {"$lt": 50}}"#)
            #expect(try store.itemIDs(matching: cheapRed) == [item(1).id])
            #expect(try store.itemIDs(matching: MetadataFilter(json: #"{"colour": {"$ne": "red"}}"#)) == [item(2).id, item(3).id])
            try store.insert([], model: "m", metadataUpdates: [(id: item(2).id, metadata: #"{"colour": "red", "price": 20}"#)])
            #expect(try store.itemIDs(matching: cheapRed) == [item(1).id, item(2).id])
        }
    }

    @Test("models: a fingerprint once recorded guards its name; spaces are kept per model", arguments: names)
    func models(_ name: String) throws {
        try withStore(name) { store in
            #expect(try !store.checkModel("image", fingerprint: "a", dimension: 2, space: "shared", record: false))
            #expect(try store.checkModel("image", fingerprint: "a", dimension: 2, space: "shared", record: true))
            #expect(throws: (any Error).self) { try store.checkModel("image", fingerprint: "b", dimension: 2, record: false) }
            #expect(throws: (any Error).self) { try store.checkModel("image", fingerprint: "a", dimension: 3, record: false) }
            try store.checkModel("own", fingerprint: "c", dimension: 2, record: true)
            try store.insert([(item: item(1), vector: [1, 0])], model: "image")
            try store.insert([(item: item(1), vector: [0, 1])], model: "own")
            #expect(try store.vectorSpaces() == [VectorSpace(model: "image", space: "shared"), VectorSpace(model: "own")])
            #expect(try store.modelRecords() == [ModelRecord(name: "image", fingerprint: "a", dimension: 2, space: "shared"),
                                                 ModelRecord(name: "own", fingerprint: "c", dimension: 2, space: nil)])
        }
    }

    @Test("a store searches vectors itself only when it says so, and then ranks by cosine, best first, within the filter",
          arguments: names)
    func vectorSearch(_ name: String) throws {
        try withStore(name) { store in
            try store.insert([(item: item(1, metadata: #"{"keep": true}"#), vector: [1, 0]),
                              (item: item(2, metadata: #"{"keep": true}"#), vector: [0.6, 0.8]),
                              (item: item(3), vector: [0.8, 0.6])], model: "m")
            guard store.searchesVectors else {
                #expect(throws: StoreError.self) { try store.nearest(model: "m", to: [1, 0], k: 2, filter: nil) }
                return
            }
            let all = try store.nearest(model: "m", to: [1, 0], k: 3, filter: nil)
            #expect(all.map(\.id) == [item(1).id, item(3).id, item(2).id])
            #expect(abs(all[1].score - 0.8) < 1e-5)
            let kept = try store.nearest(model: "m", to: [1, 0], k: 3, filter: MetadataFilter(json: #"{"keep": true}"#))
            #expect(kept.map(\.id) == [item(1).id, item(2).id])
        }
    }

    @Test("each filter operator selects exactly the items it should, across types, nesting and missing metadata",
          arguments: names)
    func filterOperators(_ name: String) throws {
        try withStore(name) { store in
            // Typed values, a nested object, no metadata, and metadata that is not JSON.
            let records: [(String, String?)] = [
                ("red45", #"{"color": "red", "price": 45, "sale": true, "size": {"eu": 42}}"#),
                ("red80", #"{"color": "red", "price": 80.5, "sale": false}"#),
                ("blue20", #"{"color": "blue", "price": 20, "tag": null}"#),
                ("white", #"{"color": "white", "price": "ask", "sale": 1}"#),
                ("none", nil),
                ("broken", "not json"),
            ]
            var ids: [String: String] = [:]
            for (index, (label, metadata)) in records.enumerated() {
                let entry = item(index + 1, metadata: metadata)
                try store.insert([(item: entry, vector: [1, 0])], model: "m")
                ids[label] = entry.id
            }
            func names(_ json: String) throws -> Set<String> {
                let matched = try store.itemIDs(matching: MetadataFilter(json: json))
                return Set(ids.filter { matched.contains($0.value) }.keys)
            }
            #expect(try names(#"{"color": "red"}"#) == ["red45", "red80"])
            #expect(try names(#"{"color": "red", "price": {"$lt": 50}}"#) == ["red45"])
            #expect(try names(#"{"price": {"$gte": 45, "$lte": 80.5}}"#) == ["red45", "red80"])
            #expect(try names(#"{"price": {"$gt": 80}}"#) == ["red80"])
            #expect(try names(#"{"price": 45.0}"#) == ["red45"])
            // Like with like: text is neither above nor below a number, and true is not 1.
            #expect(try names(#"{"price": {"$gt": 0}}"#) == ["red45", "red80", "blue20"])
            #expect(try names(#"{"price": {"$gte": "a"}}"#) == ["white"])
            #expect(try names(#"{"sale": true}"#) == ["red45"])
            #expect(try names(#"{"sale": 1}"#) == ["white"])
            #expect(try names(#"{"sale": false}"#) == ["red80"])
            #expect(try names(#"{"sale": {"$ne": true}}"#) == ["red80", "blue20", "white", "none", "broken"])
            #expect(try names(#"{"size.eu": 42}"#) == ["red45"])
            #expect(try names(#"{"color": {"$in": ["blue", "white"]}}"#) == ["blue20", "white"])
            #expect(try names(#"{"tag": {"$in": [null, "x"]}}"#) == ["blue20"])
            #expect(try names(#"{"color": {"$in": []}}"#).isEmpty)
            #expect(try names(#"{"tag": null}"#) == ["blue20"])
            #expect(try names(#"{"price": {"$exists": true}}"#) == ["red45", "red80", "blue20", "white"])
            // Items without a field (no metadata, or text that is not JSON) pass $ne and $exists: false.
            #expect(try names(#"{"price": {"$exists": false}}"#) == ["none", "broken"])
            #expect(try names(#"{"color": {"$ne": "red"}}"#) == ["blue20", "white", "none", "broken"])
            #expect(try names(#"{"tag": {"$ne": null}}"#) == ["red45", "red80", "white", "none", "broken"])
            #expect(try names(#"{"color": "it's \"quoted\""}"#).isEmpty)
            #expect(try names("{}").count == 6)
        }
    }

    @Test("colour profiles: kept with the item, given to an item stored without one, matched by $color conditions",
          arguments: names)
    func colorProfiles(_ name: String) throws {
        try withStore(name) { store in
            func profile(_ shares: [String: Float]) -> String {
                ColorProfile(fractions: ColorProfile.names.map { shares[$0] ?? 0 }).json
            }
            var red = item(1, metadata: #"{"price": 30}"#)
            red.colors = profile(["red": 0.4, "white": 0.6])
            var blue = item(2, metadata: #"{"price": 60}"#)
            blue.colors = profile(["blue": 0.05, "white": 0.95])
            let bare = item(3, metadata: #"{"price": 10}"#)
            try store.insert([(item: red, vector: [1, 0]), (item: blue, vector: [0, 1]), (item: bare, vector: [1, 1])], model: "m")
            #expect(try store.items(ids: [red.id])[red.id]?.colors == red.colors)
            #expect(try store.items(ids: [bare.id])[bare.id]?.colors == nil)
            func ids(_ json: String) throws -> Set<String> { try store.itemIDs(matching: MetadataFilter(json: json)) }
            #expect(try ids(#"{"$color": "red"}"#) == [red.id])
            #expect(try ids(#"{"$color": "crimson", "price": {"$lt": 50}}"#) == [red.id])
            #expect(try ids(#"{"$color": "blue"}"#).isEmpty, "5% is under the default share")
            #expect(try ids(#"{"$color": {"blue": 0.05}}"#) == [blue.id])
            #expect(try ids(#"{"$color": ["red", "white"]}"#) == [red.id])
            // "Not red": items with a profile that shows little red; an item without a profile is not known to pass.
            #expect(try ids(#"{"$color": {"red": {"$lt": 0.1}}}"#) == [blue.id])
            // An item stored before profiles gets one when it is stored again; a profile is never replaced.
            var again = bare
            again.colors = profile(["green": 1])
            var redAgain = red
            redAgain.colors = profile(["green": 1])
            try store.insert([(item: again, vector: [1, 1]), (item: redAgain, vector: [1, 0])], model: "other")
            #expect(try ids(#"{"$color": "green"}"#) == [bare.id])
            #expect(try ids(#"{"$color": "red"}"#) == [red.id])
            if store.searchesVectors {
                let hits = try store.nearest(model: "m", to: [1, 0], k: 3, filter: MetadataFilter(json: #"{"$color": "white"}"#))
                #expect(hits.map(\.id) == [red.id, blue.id])
            }
        }
    }
}
