import Foundation
import PostgresStore
import Storage
import TestSupport
import Testing

/// What only the PostgreSQL store does: search pushed down to pgvector's HNSW index, with the
/// filter in the same statement. (The store contract covers everything both stores do.)
@Suite("PostgreSQL store", .enabled(if: TestStores.postgres != nil, "needs LOOKALIKE_TEST_POSTGRES; the store contract fails without it"))
struct PostgresStoreTests {
    /// Clustered unit vectors, deterministic: `count` of them in `dimension` dimensions.
    static func vectors(_ count: Int, dimension: Int) -> [[Float]] {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Float {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int64(bitPattern: state >> 11) % 2_000_001 - 1_000_000) / 1_000_000
        }
        let centres = (0..<20).map { _ in (0..<dimension).map { _ in next() } }
        return (0..<count).map { index in
            let vector = centres[index % centres.count].map { $0 + 0.6 * next() }
            let norm = sqrt(vector.reduce(0) { $0 + $1 * $1 })
            return vector.map { $0 / norm }
        }
    }

    static func exact(_ query: [Float], _ candidates: [(id: String, vector: [Float])], k: Int) -> [String] {
        candidates.map { ($0.id, zip(query, $0.vector).reduce(Float(0)) { $0 + $1.0 * $1.1 }) }
            .sorted { $0.1 > $1.1 }.prefix(k).map(\.0)
    }

    @Test("the model's HNSW index answers with recall@10 ≥ 0.9, exact scores, and a narrow filter still fills the page")
    func indexedSearch() throws {
        let address = try #require(TestStores.database("postgres"))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pg-store-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try PostgresStore(address: address, directory: folder)
        defer { try? store.destroy() }
        let dimension = 32
        try store.checkModel("m", fingerprint: "f", dimension: dimension, record: true)
        let vectors = Self.vectors(3_000, dimension: dimension)
        var entries: [(item: Item, vector: [Float])] = []
        for (index, vector) in vectors.enumerated() {
            let hash = String(format: "%016x", index + 1) + String(repeating: "0", count: 48)
            // Every 40th item is "rare": a 2.5% filter.
            let metadata = index % 40 == 0 ? #"{"kind": "rare"}"# : #"{"kind": "common"}"#
            entries.append((Item(id: Item.id(forContentHash: hash), contentHash: hash, sourcePath: "/v/\(index)", width: 1, height: 1,
                                 metadata: metadata, addedAt: Date()), vector))
        }
        for start in stride(from: 0, to: entries.count, by: 500) {
            try store.insert(Array(entries[start..<min(start + 500, entries.count)]), model: "m")
        }
        let all = entries.map { (id: $0.item.id, vector: $0.vector) }
        let rare = entries.filter { $0.item.metadata?.contains("rare") == true }.map { (id: $0.item.id, vector: $0.vector) }
        let filter = try MetadataFilter(json: #"{"kind": "rare"}"#)
        var found = 0, foundFiltered = 0
        let queries = Self.vectors(3_050, dimension: dimension).suffix(50)
        for query in queries {
            let hits = try store.nearest(model: "m", to: query, k: 10, filter: nil)
            #expect(hits.count == 10)
            #expect(zip(hits, hits.dropFirst()).allSatisfy { $0.score >= $1.score }, "best first")
            if let first = hits.first, let vector = all.first(where: { $0.id == first.id })?.vector {
                let cosine = zip(query, vector).reduce(Float(0)) { $0 + $1.0 * $1.1 }
                #expect(abs(first.score - cosine) < 1e-4, "the score is the exact cosine")
            }
            found += Set(hits.map(\.id)).intersection(Self.exact(query, all, k: 10)).count
            let filtered = try store.nearest(model: "m", to: query, k: 10, filter: filter)
            #expect(filtered.count == 10, "75 items pass the filter: the page is full")
            #expect(filtered.allSatisfy { hit in rare.contains { $0.id == hit.id } })
            foundFiltered += Set(filtered.map(\.id)).intersection(Self.exact(query, rare, k: 10)).count
        }
        let recall = Double(found) / Double(queries.count * 10)
        let filteredRecall = Double(foundFiltered) / Double(queries.count * 10)
        print("pgvector HNSW on 3,000 x 32-d: recall@10 \(recall), with a 2.5% filter \(filteredRecall)")
        #expect(recall >= 0.9)
        #expect(filteredRecall >= 0.9)
    }

    @Test("an address names its schema; a bad one is refused with the reason, and an unreachable database is unavailable")
    func addresses() throws {
        let parsed = try PostgresStore.parse("postgres://me:secret@db.example:5433/photos?schema=shop&sslmode=disable")
        #expect(parsed.schema == "shop")
        #expect(parsed.libpq == "postgres://me:secret@db.example:5433/photos?sslmode=disable&connect_timeout=10")
        #expect(parsed.display == "postgres://me@db.example:5433/photos?sslmode=disable&connect_timeout=10")
        let hosts = try PostgresStore.parse("postgresql://u:p@a:1,b:2/db?target_session_attrs=read-write&connect_timeout=3")
        #expect(hosts.libpq == "postgresql://u:p@a:1,b:2/db?target_session_attrs=read-write&connect_timeout=3")
        #expect(hosts.schema == PostgresStore.defaultSchema && hosts.display == "postgresql://u@a:1,b:2/db?target_session_attrs=read-write&connect_timeout=3")
        #expect(throws: PostgresStoreError.self) { try PostgresStore.parse("postgres://db/photos?schema=Shop-1") }
        #expect(throws: PostgresStoreError.self) { try PostgresStore.parse("mysql://db/photos") }
        do {
            _ = try PostgresStore(address: "postgres://nobody@127.0.0.1:1/none", directory: FileManager.default.temporaryDirectory)
            Issue.record("a closed port opened a store")
        } catch let error as PostgresStoreError {
            #expect(error.isUnavailable, "\(error)")
        }
    }
}
