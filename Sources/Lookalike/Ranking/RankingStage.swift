import Embedding
import Foundation
import Storage
import VectorIndex

/// One stored item on its way to becoming a hit: its id, its score on the main model's scale
/// (cosine similarity unless a stage rescaled it), and the main model's vector of it when a stage
/// asked for vectors.
public struct Candidate: Sendable, Equatable {
    public let id: String
    public var score: Float
    public var vector: [Float]?

    public init(id: String, score: Float, vector: [Float]? = nil) {
        self.id = id
        self.score = score
        self.vector = vector
    }
}

/// A step of a search between the index's candidates and the hits: it gets the candidates,
/// best first, and returns them re-ranked (re-scored, lifted, dropped or joined by others).
/// Stages run in order; the pipeline keeps the best `top` of what the last one returns.
///
/// A new stage is one type conforming to this protocol, registered in `SearchPipeline.stages(for:)`
/// (or passed in `SearchOptions.stages`), and the option that turns it on.
public protocol RankingStage: Sendable {
    /// For reports and errors.
    var name: String { get }
    /// How many candidates the stage wants from the index to return `top` good ones, in a
    /// collection of `collection` items (a diversifying stage wants more than `top`).
    func candidatePool(top: Int, collection: Int) -> Int
    /// Whether the stage reads `Candidate.vector` (the pipeline then loads the main model's
    /// vectors of all candidates in one lookup before the first such stage).
    var needsVectors: Bool { get }
    func rank(_ candidates: [Candidate], context: RankingContext) throws -> [Candidate]
}

extension RankingStage {
    public func candidatePool(top: Int, collection: Int) -> Int { top }
    public var needsVectors: Bool { false }
}

/// What a stage may use: the main model, the query's vector by any model, other models' indexes
/// (with the search's filter and parameters), and stored vectors.
public final class RankingContext: @unchecked Sendable {
    /// The model that ranks: scores are on its scale.
    public let model: ModelManifest
    /// Hits the search returns.
    public let top: Int
    public let parameters: SearchParameters
    let filter: SearchFilter?
    private let encoder: QueryEncoder
    private let models: Models
    private let indexes: ModelIndexes
    private let store: any Store

    init(model: ModelManifest, top: Int, parameters: SearchParameters, filter: SearchFilter?, encoder: QueryEncoder,
         models: Models, indexes: ModelIndexes, store: any Store) {
        self.model = model
        self.top = top
        self.parameters = parameters
        self.filter = filter
        self.encoder = encoder
        self.models = models
        self.indexes = indexes
        self.store = store
    }

    /// Another model's manifest, once the store's vectors of it are known to come from it.
    public func manifest(_ name: String) throws -> ModelManifest {
        let embedder = try models.embedder(name)
        try models.check(embedder, record: false)
        return embedder.manifest
    }

    /// The query's vector by `model` (nil when the query has none: an item without that model's vector).
    public func queryVector(model name: String) throws -> [Float]? {
        try encoder.vector(for: try models.embedder(name), required: name == model.name)
    }

    /// The `k` best items by another model's own index, with this search's filter and parameters.
    public func search(model name: String, query: [Float], k: Int) throws -> [Candidate] {
        let index = try indexes.index(for: try models.manifest(named: name))
        return try index.search(query, k: k, filter: filter, parameters: parameters).map { Candidate(id: $0.id, score: $0.score) }
    }

    /// Stored vectors of `model` for these items (those that have one).
    public func vectors(model name: String, ids: [String]) throws -> [String: [Float]] {
        Dictionary(try store.vectors(model: name, ids: ids), uniquingKeysWith: { first, _ in first })
    }

    /// How many items have a vector of `model`.
    public func collectionSize(model name: String) throws -> Int {
        try store.vectorCount(model: name)
    }

    /// Every vector of `model`, page by page.
    public func forEachVectorPage(model name: String, _ body: ([StoredEmbedding]) throws -> Bool) throws {
        try store.forEachVectorPage(model: name, pageSize: 1_000, body)
    }
}
