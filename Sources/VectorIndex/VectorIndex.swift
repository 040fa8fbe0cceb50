/// How two vectors are compared. Every index orders by a distance (smaller is closer) and reports
/// a score (larger is closer): for cosine the score is the cosine similarity.
public enum Metric: String, Sendable, Codable, CaseIterable {
    /// Vectors are L2-normalised on the way in; distance `1 - cos`, score `cos`.
    case cosine
    /// Raw inner product; distance `-dot`, score `dot`.
    case innerProduct
    /// Squared Euclidean distance; score `-distance`.
    case l2

    func score(distance: Float) -> Float {
        switch self {
        case .cosine: return 1 - distance
        case .innerProduct: return -distance
        case .l2: return -distance
        }
    }
}

/// Which stored items a search may return. The planner needs to know roughly how many pass.
public struct SearchFilter: Sendable {
    /// Whether the item with this id may be returned.
    public let allows: @Sendable (String) -> Bool
    /// How many stored items pass, when known (a filter computed from the catalog knows it).
    public let matchingCount: Int?

    public init(matchingCount: Int? = nil, allows: @escaping @Sendable (String) -> Bool) {
        self.allows = allows
        self.matchingCount = matchingCount
    }

    /// Only the given ids.
    public static func ids(_ ids: Set<String>) -> SearchFilter {
        SearchFilter(matchingCount: ids.count) { ids.contains($0) }
    }
}

/// Per-query search parameters, as a value (FAISS's `SearchParameters`): an index reads the fields
/// it knows and ignores the rest.
public struct SearchParameters: Sendable, Equatable {
    /// HNSW beam width for this query; nil keeps the index's default.
    public var efSearch: Int?

    public init(efSearch: Int? = nil) {
        self.efSearch = efSearch
    }
}

/// The one interface every vector index answers, in the spirit of FAISS's `Index`.
public protocol VectorIndex: Sendable {
    var dimension: Int { get }
    var metric: Metric { get }
    /// Live (not removed) vectors.
    var count: Int { get }
    /// Adds or replaces the vector stored under `id`.
    func add(id: String, vector: [Float]) throws
    /// Removes `id`; returns whether it was present. A removed id is never returned again.
    @discardableResult func remove(id: String) -> Bool
    func contains(id: String) -> Bool
    /// The `k` closest live vectors to `query` that pass `filter`, best first.
    func search(_ query: [Float], k: Int, filter: SearchFilter?) throws -> [SearchHit]
    /// As `search(_:k:filter:)`, with parameters for this query.
    func search(_ query: [Float], k: Int, filter: SearchFilter?, parameters: SearchParameters) throws -> [SearchHit]
    /// Whether the scores `search` reports are exact (false for an index on compressed vectors,
    /// which a `RefineIndex` can wrap).
    var scoresAreExact: Bool { get }
    /// How many candidates a search with these parameters can rank well (an HNSW beam's width);
    /// nil when there is no such bound.
    func candidateBound(_ parameters: SearchParameters) -> Int?
    /// The vectors the index holds for `ids` at full precision, as it compares them (normalised
    /// for the cosine metric); nil when it keeps only compressed codes.
    func fullPrecisionVectors(for ids: [String]) -> [[Float]?]?
}

extension VectorIndex {
    public func search(_ query: [Float], k: Int, filter: SearchFilter?, parameters: SearchParameters) throws -> [SearchHit] {
        try search(query, k: k, filter: filter)
    }

    public var scoresAreExact: Bool { true }

    public func candidateBound(_ parameters: SearchParameters) -> Int? { nil }

    public func fullPrecisionVectors(for ids: [String]) -> [[Float]?]? { nil }
}
