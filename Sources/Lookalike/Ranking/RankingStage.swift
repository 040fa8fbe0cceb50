import Imaging
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
    /// Near-duplicates folded into this candidate (`CollapseStage`), best first.
    public var copies: [String]
    /// The region tile of the item whose vector gave the score, when a part did (`Tiles`).
    public var part: ImageRegion?
    /// The crop of the query that gave the score, when one did (`QueryCrops`).
    public var queryPart: ImageRegion?

    public init(id: String, score: Float, vector: [Float]? = nil, copies: [String] = [], part: ImageRegion? = nil,
                queryPart: ImageRegion? = nil) {
        self.part = part
        self.queryPart = queryPart
        self.id = id
        self.score = score
        self.vector = vector
        self.copies = copies
    }
}

extension Candidate {
    /// Candidates found several ways for one search (an item's whole image and its parts, the
    /// query's whole image and its crops), each item once with its best score (the first of equal
    /// ones), best first, ties by id, at most `k`.
    static func bestPerItem(_ candidates: [Candidate], k: Int) -> [Candidate] {
        var best: [String: Candidate] = [:]
        for candidate in candidates where candidate.score > best[candidate.id]?.score ?? -.infinity {
            best[candidate.id] = candidate
        }
        return best.values
            .sorted { $0.score != $1.score ? $0.score > $1.score : $0.id < $1.id }
            .prefix(k).map { $0 }
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
    private let source: CandidateSource
    private let encoder: QueryEncoder
    private let models: Models
    private let store: any Store

    init(model: ModelManifest, top: Int, source: CandidateSource, encoder: QueryEncoder, models: Models, store: any Store) {
        self.model = model
        self.top = top
        self.source = source
        self.encoder = encoder
        self.models = models
        self.store = store
    }

    /// The search's filter, as an index applies it.
    var filter: SearchFilter? { source.filter }
    public var parameters: SearchParameters { source.parameters }

    /// Another model's manifest, once the store's vectors of it are known to come from it.
    public func manifest(_ name: String) throws -> ModelManifest {
        let embedder = try models.embedder(name)
        try models.check(embedder, record: false)
        return embedder.manifest
    }

    /// The query's vector by `model` (nil when the query has none for a backing model: an item
    /// without that model's vector; the main model's absence is an error).
    public func queryVector(model name: String) throws -> [Float]? {
        let embedder = try models.embedder(name)
        return name == model.name ? try encoder.vector(for: embedder) : try encoder.backingVector(for: embedder)
    }

    /// The `k` best items by another model, found where the main model's are (its index, or the
    /// store), with this search's filter and parameters.
    public func search(model name: String, query: [Float], k: Int) throws -> [Candidate] {
        try source.candidates(try models.manifest(named: name), query, k: k)
    }

    /// Stored vectors of `model` for these items (those that have one).
    public func vectors(model name: String, ids: [String]) throws -> [String: [Float]] {
        Dictionary(try store.vectors(model: name, ids: ids), uniquingKeysWith: { first, _ in first })
    }

    /// The newest marks given to searches with `model`'s query vectors.
    public func feedback(model name: String, limit: Int) throws -> [Feedback] {
        try store.feedback(model: name, limit: limit)
    }

    /// Every vector of `model`, read a page at a time, for a stage that must see the collection.
    public func allVectors(model name: String) throws -> [StoredEmbedding] {
        try store.vectors(model: name)
    }
}
