import Foundation
import LookalikeSupport
import Testing
@testable import VectorIndex

/// Recall of the graph index against exact search, on clustered data (real embeddings cluster:
/// uniform random vectors are the easy, unrealistic case).
@Suite("HNSWIndex")
struct HNSWIndexTests {
    /// `count` vectors in `clusters` clusters: each a random centre plus a point of its own random
    /// `intrinsic`-dimensional subspace, plus a little noise everywhere. Real embeddings look like
    /// this (clustered, of low intrinsic dimension); uniform noise in 64 dimensions, the hard extreme,
    /// is no embedding model's output. Seeded.
    static func clustered(count: Int, dimension: Int, clusters: Int, seed: UInt64, intrinsic: Int = 32) -> [[Float]] {
        var random = SplitMix64(seed: seed)
        func normal() -> Float {
            let u1 = max(Double(random.next() >> 11) / Double(1 << 53), 1e-300)
            let u2 = Double(random.next() >> 11) / Double(1 << 53)
            return Float((-2 * log(u1)).squareRoot() * cos(2 * .pi * u2))
        }
        let rank = min(intrinsic, dimension)
        let centres = (0..<clusters).map { _ in (0..<dimension).map { _ in normal() } }
        let bases = (0..<clusters).map { _ in (0..<rank).map { _ in (0..<dimension).map { _ in normal() / Float(rank).squareRoot() } } }
        return (0..<count).map { index in
            let cluster = index % clusters
            var point = centres[cluster]
            for axis in 0..<rank {
                let weight = normal()
                for component in 0..<dimension { point[component] += weight * bases[cluster][axis][component] }
            }
            for component in 0..<dimension { point[component] += 0.15 * normal() }
            return point
        }
    }

    static func recall(_ index: HNSWIndex, _ exact: FlatIndex, queries: [[Float]], k: Int,
                       filter: SearchFilter? = nil, ef: Int? = nil) throws -> Double {
        var found = 0
        var total = 0
        for query in queries {
            let truth = try exact.search(query, k: k, where: filter?.allows).map(\.id)
            let approximate = try index.search(query, k: k, efSearch: ef ?? index.parameters.efSearch, filter: filter).map(\.id)
            found += Set(truth).intersection(approximate).count
            total += truth.count
        }
        return Double(found) / Double(max(1, total))
    }

    struct Built {
        let vectors: [[Float]]
        let index: HNSWIndex
        let exact: FlatIndex
        let queries: [[Float]]
    }

    /// 20k stored vectors and 200 held-out queries from the same clusters; built once, shared by the tests.
    static func build(count: Int = 20_000, dimension: Int = 128) throws -> Built {
        let all = clustered(count: count + 200, dimension: dimension, clusters: 100, seed: 7)
        let vectors = Array(all.prefix(count))
        let index = HNSWIndex(dimension: dimension)
        let exact = FlatIndex(dimension: dimension)
        for (offset, vector) in vectors.enumerated() {
            try index.add(id: "v\(offset)", vector: vector)
            try exact.add(id: "v\(offset)", vector: vector)
        }
        return Built(vectors: vectors, index: index, exact: exact, queries: Array(all.suffix(200)))
    }

    static let shared: Result<Built, Error> = Result { try build() }

    @Test("recall@10 >= 0.95 against exact search on 20k clustered vectors, default parameters")
    func recallAtDefaults() throws {
        let built = try Self.shared.get()
        let recall = try Self.recall(built.index, built.exact, queries: built.queries, k: 10)
        print("HNSW recall@10 on 20k clustered 128-d vectors (M 16, efConstruction 200, efSearch 64): \(recall)")
        #expect(recall >= 0.95)
        #expect(built.index.count == 20_000)
    }

    @Test("filtered search returns only matching items, with recall@10 >= 0.9 at 10% and 1% selectivity")
    func filtered() throws {
        let built = try Self.shared.get()
        for (modulus, label) in [(10, "10%"), (100, "1%")] {
            let allowed = Set((0..<20_000).filter { $0 % modulus == 3 }.map { "v\($0)" })
            // Without the count the planner cannot switch: this measures filtering inside the graph.
            let inGraph = SearchFilter { allowed.contains($0) }
            let planned = SearchFilter.ids(allowed)
            for filter in [inGraph, planned] {
                let hits = try built.index.search(built.queries[0], k: 10, filter: filter)
                #expect(hits.count == 10)
                #expect(hits.allSatisfy { allowed.contains($0.id) })
                let recall = try Self.recall(built.index, built.exact, queries: Array(built.queries.prefix(100)), k: 10, filter: filter)
                print("HNSW filtered recall@10 at \(label) (\(filter.matchingCount == nil ? "in graph" : "planned")): \(recall)")
                #expect(recall >= 0.9, "\(label): \(recall)")
            }
        }
    }

    @Test("removed items are never returned; compaction keeps the rest findable")
    func removal() throws {
        let vectors = Self.clustered(count: 3_000, dimension: 32, clusters: 30, seed: 3)
        let index = HNSWIndex(dimension: 32)
        for (offset, vector) in vectors.enumerated() { try index.add(id: "v\(offset)", vector: vector) }
        for offset in stride(from: 0, to: 3_000, by: 2) { #expect(index.remove(id: "v\(offset)")) }
        #expect(!index.remove(id: "v0"))
        #expect(index.count == 1_500)
        for offset in stride(from: 0, to: 3_000, by: 97) {
            let hits = try index.search(vectors[offset], k: 10, filter: nil)
            #expect(hits.allSatisfy { Int($0.id.dropFirst())! % 2 == 1 }, "a removed item was returned")
            if offset % 2 == 1 { #expect(hits.first?.id == "v\(offset)") }
        }
        index.compact()
        #expect(index.nodeCount == 1_500)
        for offset in stride(from: 1, to: 3_000, by: 50) {
            #expect(try index.search(vectors[offset], k: 1, filter: nil).first?.id == "v\(offset)")
        }
    }

    @Test("searches, adds and removals go on while a compaction rebuilds the graph, and none is lost")
    func compactionDoesNotBlock() throws {
        let vectors = Self.clustered(count: 16_000, dimension: 32, clusters: 40, seed: 8)
        let index = HNSWIndex(dimension: 32)
        try index.add(ids: vectors.indices.map { "v\($0)" }, vectors: vectors)
        for offset in stride(from: 0, to: 16_000, by: 2) { index.remove(id: "v\(offset)") }
        let finished = DispatchSemaphore(value: 0)
        Thread {
            index.compact()
            finished.signal()
        }.start()
        let deadline = Date().addingTimeInterval(10)
        while !index.isCompacting && Date() < deadline { usleep(100) }
        var searchesDuring = 0
        var changedDuring = false
        while index.isCompacting {
            let hits = try index.search(vectors[1 + 2 * (searchesDuring % 8_000)], k: 3, filter: nil)
            #expect(hits.first.map { Int($0.id.dropFirst())! % 2 == 1 } ?? false)
            searchesDuring += 1
            if !changedDuring {
                // Logged while the new graph is built, replayed onto it before it takes over.
                try index.add(id: "late", vector: vectors[0])
                index.remove(id: "v1")
                changedDuring = true
            }
        }
        finished.wait()
        #expect(searchesDuring >= 10, "only \(searchesDuring) searches finished during the compaction")
        #expect(index.count == 8_000)
        #expect(try index.search(vectors[0], k: 1, filter: nil).first?.id == "late")
        #expect(try !index.search(vectors[1], k: 10, filter: nil).contains { $0.id == "v1" })
        #expect(try index.search(vectors[3], k: 1, filter: nil).first?.id == "v3")
        #expect(index.nodeCount <= 8_001)
    }

    @Test("re-adding an id replaces its vector")
    func replace() throws {
        let index = HNSWIndex(dimension: 2, metric: .l2)
        try index.add(id: "a", vector: [0, 0])
        try index.add(id: "b", vector: [10, 10])
        try index.add(id: "a", vector: [10, 11])
        #expect(index.count == 2)
        let hits = try index.search([10, 11], k: 2, filter: nil)
        #expect(hits.map(\.id) == ["a", "b"])
        #expect(hits.first?.score == 0)
    }

    @Test("every metric ranks like exact search on a small set", arguments: Metric.allCases)
    func metrics(metric: Metric) throws {
        let vectors = Self.clustered(count: 500, dimension: 16, clusters: 10, seed: 11)
        let index = HNSWIndex(dimension: 16, metric: metric)
        for (offset, vector) in vectors.enumerated() { try index.add(id: "v\(offset)", vector: vector) }
        let query = vectors[42].map { $0 * 1.5 }
        let hits = try index.search(query, k: 5, efSearch: 500, filter: nil)
        let expected: [Int]
        switch metric {
        case .cosine, .innerProduct:
            let scores = vectors.map { vector in
                let dot = zip(vector, query).map { $0 * $1 }.reduce(0, +)
                return metric == .cosine ? dot / vector.map { $0 * $0 }.reduce(0, +).squareRoot() : dot
            }
            expected = Array(scores.indices.sorted { scores[$0] > scores[$1] }.prefix(5))
        case .l2:
            let distances = vectors.map { zip($0, query).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) }
            expected = Array(distances.indices.sorted { distances[$0] < distances[$1] }.prefix(5))
        }
        #expect(hits.map(\.id) == expected.map { "v\($0)" })
    }

    @Test("searches running while inserts go on see consistent results (stress)")
    func concurrentInsertAndSearch() async throws {
        let vectors = Self.clustered(count: 4_000, dimension: 32, clusters: 40, seed: 5)
        let index = HNSWIndex(dimension: 32)
        for offset in 0..<1_000 { try index.add(id: "v\(offset)", vector: vectors[offset]) }
        try await withThrowingTaskGroup(of: Int.self) { group in
            group.addTask {
                for offset in 1_000..<4_000 { try index.add(id: "v\(offset)", vector: vectors[offset]) }
                return 0
            }
            for worker in 0..<3 {
                group.addTask {
                    var wrong = 0
                    for round in 0..<400 {
                        let target = (worker * 331 + round * 7) % 1_000
                        let hits = try index.search(vectors[target], k: 3, filter: nil)
                        if hits.first?.id != "v\(target)" { wrong += 1 }
                    }
                    return wrong
                }
            }
            var wrong = 0
            for try await result in group { wrong += result }
            #expect(wrong <= 12, "\(wrong) of 1200 searches missed an item present all along")
        }
        #expect(index.count == 4_000)
    }

    @Test("an empty index and k = 0 answer with nothing; wrong dimensions are refused")
    func edges() throws {
        let index = HNSWIndex(dimension: 4)
        #expect(try index.search([1, 0, 0, 0], k: 5, filter: nil).isEmpty)
        try index.add(id: "a", vector: [1, 0, 0, 0])
        #expect(try index.search([1, 0, 0, 0], k: 0, filter: nil).isEmpty)
        #expect(throws: VectorIndexError.dimensionMismatch(expected: 4, got: 3)) { try index.add(id: "b", vector: [1, 2, 3]) }
        #expect(throws: VectorIndexError.dimensionMismatch(expected: 4, got: 2)) { _ = try index.search([1, 2], k: 1, filter: nil) }
    }
}
