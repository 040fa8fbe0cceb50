/// An index on compressed vectors, refined: the base index finds `factor × k` candidates (at most
/// as many as its beam ranks well), their full-precision vectors from an `ExactVectorSource` score
/// them again, and the best `k` are returned with exact scores. FAISS calls the same composition
/// `IndexRefine`. A base whose scores are exact already is searched as it is.
///
/// ```swift
/// let refined = RefineIndex(base: graph, exact: storeVectors)
/// let hits = try refined.search(query, k: 10, filter: nil, parameters: SearchParameters(efSearch: 128))
/// ```
public struct RefineIndex: VectorIndex, @unchecked Sendable {
    public let base: any VectorIndex
    public let exact: any ExactVectorSource
    /// Candidates asked of the base per hit returned.
    public let factor: Int

    public init(base: any VectorIndex, exact: any ExactVectorSource, factor: Int = 4) {
        self.base = base
        self.exact = exact
        self.factor = max(1, factor)
    }

    public var dimension: Int { base.dimension }
    public var metric: Metric { base.metric }
    public var count: Int { base.count }
    public func add(id: String, vector: [Float]) throws { try base.add(id: id, vector: vector) }
    @discardableResult public func remove(id: String) -> Bool { base.remove(id: id) }
    public func contains(id: String) -> Bool { base.contains(id: id) }

    public func search(_ query: [Float], k: Int, filter: SearchFilter?) throws -> [SearchHit] {
        try search(query, k: k, filter: filter, parameters: SearchParameters())
    }

    public func search(_ query: [Float], k: Int, filter: SearchFilter?, parameters: SearchParameters) throws -> [SearchHit] {
        guard query.count == dimension else { throw VectorIndexError.dimensionMismatch(expected: dimension, got: query.count) }
        guard k > 0 else { return [] }
        if base.scoresAreExact { return try base.search(query, k: k, filter: filter, parameters: parameters) }
        let bound = max(base.candidateBound(parameters) ?? Int.max, k)
        let wanted = min(bound, max(k, k * factor))
        let candidates = try base.search(query, k: wanted, filter: filter, parameters: parameters)
        let prepared = metric == .cosine ? FlatIndex.normalized(query) : query
        return try Self.rescore(candidates, query: prepared, k: k, metric: metric, from: exact)
    }

    public var scoresAreExact: Bool { true }

    public func candidateBound(_ parameters: SearchParameters) -> Int? { base.candidateBound(parameters) }

    /// Scores candidates again from their full-precision vectors and keeps the best `k` (ties by
    /// id). A candidate the source does not have keeps its approximate score. `query` is already
    /// normalised for the cosine metric.
    private static func rescore(_ candidates: [SearchHit], query: [Float], k: Int, metric: Metric,
                        from source: ExactVectorSource) throws -> [SearchHit] {
        let exact = try source.exactVectors(for: candidates.map(\.id))
        var rescored: [SearchHit] = []
        rescored.reserveCapacity(candidates.count)
        query.withUnsafeBufferPointer { q in
            for (candidate, vector) in zip(candidates, exact) {
                guard let vector, vector.count == query.count else {
                    rescored.append(candidate)
                    continue
                }
                let score: Float = vector.withUnsafeBufferPointer { v in
                    switch metric {
                    case .cosine:
                        let norm = VectorMath.dot(v, v).squareRoot()
                        return norm > 0 ? VectorMath.dot(q, v) / norm : 0
                    case .innerProduct: return VectorMath.dot(q, v)
                    case .l2: return -VectorMath.squaredDistance(q, v)
                    }
                }
                rescored.append(SearchHit(id: candidate.id, score: score))
            }
        }
        rescored.sort { $0.score > $1.score || ($0.score == $1.score && $0.id < $1.id) }
        return Array(rescored.prefix(k))
    }
}
