import Testing
@testable import VectorIndex

@Suite("FlatIndex")
struct FlatIndexTests {
    /// A deterministic pseudo-random generator, so failures reproduce.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state
        }
    }

    static func randomVectors(_ count: Int, dimension: Int, seed: UInt64) -> [[Float]] {
        var generator = SeededGenerator(state: seed)
        return (0..<count).map { _ in (0..<dimension).map { _ in Float.random(in: -1...1, using: &generator) } }
    }

    static func cosine(_ a: [Float], _ b: [Float]) -> Float {
        let dot = zip(a, b).map { $0 * $1 }.reduce(0, +)
        let na = a.map { $0 * $0 }.reduce(0, +).squareRoot()
        let nb = b.map { $0 * $0 }.reduce(0, +).squareRoot()
        return dot / (na * nb)
    }

    @Test("top-k equals a brute-force cosine ranking", arguments: [1, 7, 33, 130])
    func matchesBruteForce(dimension: Int) throws {
        let vectors = Self.randomVectors(500, dimension: dimension, seed: UInt64(dimension))
        let index = FlatIndex(dimension: dimension)
        for (offset, vector) in vectors.enumerated() { try index.add(id: "v\(offset)", vector: vector) }
        let query = Self.randomVectors(1, dimension: dimension, seed: 999)[0]
        let hits = try index.search(query, k: 10)
        let scores = vectors.map { Self.cosine($0, query) }
        // Equal scores (every score is +-1 in one dimension) rank by insertion order, as the index promises.
        let expected = vectors.indices.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }.prefix(10)
        #expect(hits.map(\.id) == expected.map { "v\($0)" })
        for (hit, position) in zip(hits, expected) {
            #expect(abs(hit.score - Self.cosine(vectors[position], query)) < 1e-5)
        }
        #expect(zip(hits, hits.dropFirst()).allSatisfy { $0.score >= $1.score })
    }

    @Test("a batch of queries gets exactly the answers of one query at a time", arguments: [5, 130])
    func batch(dimension: Int) throws {
        let vectors = Self.randomVectors(3_000, dimension: dimension, seed: 9)
        let index = FlatIndex(dimension: dimension)
        for (offset, vector) in vectors.enumerated() { try index.add(id: "v\(offset)", vector: vector) }
        let queries = Self.randomVectors(70, dimension: dimension, seed: 10)  // more than two groups of 32
        let batched = try index.search(batch: queries, k: 7)
        #expect(batched.count == queries.count)
        for (query, hits) in zip(queries, batched) {
            #expect(hits == (try index.search(query, k: 7)))
        }
        #expect(try index.search(batch: [], k: 3).isEmpty)
        #expect(throws: VectorIndexError.self) { _ = try index.search(batch: [[1, 2]], k: 3) }
        #expect(try FlatIndex(dimension: 4).search(batch: [[1, 0, 0, 0]], k: 3) == [[]])
    }

    @Test("a stored vector finds itself with score 1, whatever its length")
    func selfMatch() throws {
        let index = FlatIndex(dimension: 3)
        try index.add(id: "a", vector: [3, 0, 0])
        try index.add(id: "b", vector: [0, 2, 0])
        let hits = try index.search([10, 0, 0], k: 2)
        #expect(hits.first?.id == "a")
        #expect(abs((hits.first?.score ?? 0) - 1) < 1e-6)
        #expect(abs(hits[1].score) < 1e-6)
    }

    @Test("removed vectors are never returned and the rest stay correct")
    func removal() throws {
        let vectors = Self.randomVectors(50, dimension: 16, seed: 5)
        let index = FlatIndex(dimension: 16)
        for (offset, vector) in vectors.enumerated() { try index.add(id: "v\(offset)", vector: vector) }
        #expect(index.remove(id: "v3"))
        #expect(!index.remove(id: "v3"))
        #expect(index.count == 49)
        let hits = try index.search(vectors[3], k: 49)
        #expect(!hits.contains { $0.id == "v3" })
        #expect(hits.count == 49)
        let last = try index.search(vectors[49], k: 1)
        #expect(last.first?.id == "v49")
        #expect(abs((last.first?.score ?? 0) - 1) < 1e-5)
    }

    @Test("re-adding an id replaces its vector")
    func replace() throws {
        let index = FlatIndex(dimension: 2)
        try index.add(id: "a", vector: [1, 0])
        try index.add(id: "a", vector: [0, 1])
        #expect(index.count == 1)
        #expect(try index.search([0, 1], k: 1).first.map { abs($0.score - 1) < 1e-6 } == true)
    }

    @Test("a filter keeps only allowed ids; k larger than the index returns everything allowed")
    func filter() throws {
        let index = FlatIndex(dimension: 2)
        for offset in 0..<10 { try index.add(id: "v\(offset)", vector: [1, Float(offset)]) }
        let hits = try index.search([1, 0], k: 100, where: { $0.hasSuffix("3") || $0.hasSuffix("7") })
        #expect(Set(hits.map(\.id)) == ["v3", "v7"])
        #expect(try index.search([1, 0], k: 0).isEmpty)
    }

    @Test("wrong dimensions are refused with a clear error")
    func dimensionMismatch() throws {
        let index = FlatIndex(dimension: 4)
        #expect(throws: VectorIndexError.dimensionMismatch(expected: 4, got: 3)) { try index.add(id: "a", vector: [1, 2, 3]) }
        #expect(throws: VectorIndexError.dimensionMismatch(expected: 4, got: 5)) { _ = try index.search([1, 2, 3, 4, 5], k: 1) }
    }

    @Test("the SIMD dot product equals a plain sum for every length")
    func dotProduct() {
        for length in [0, 1, 15, 16, 17, 33, 1280] {
            let a = Self.randomVectors(1, dimension: length, seed: UInt64(length + 1)).first ?? []
            let b = Self.randomVectors(1, dimension: length, seed: UInt64(length + 2)).first ?? []
            let plain = zip(a, b).map { $0 * $1 }.reduce(0, +)
            #expect(abs(VectorMath.dot(a, b) - plain) < 1e-3)
        }
    }
}
