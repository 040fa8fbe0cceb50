import Embedding
import Foundation
import VectorIndex

/// Ranks by several models at once, and optionally in a whitened space: each model's vectors are
/// PCA-whitened (when asked) and normalised, then concatenated with weight 1/sqrt(models), so the
/// cosine of two concatenations is the mean of the models' cosines. Only items every model has
/// embedded take part.
///
/// The fused vectors of the whole collection are computed once per stage value (a stage kept
/// across queries, as `eval` keeps it, pays that once) and searched exactly, with the search's
/// filter: the stage replaces the main model's candidates rather than re-ranking only them, so
/// an item the main model alone would have missed is still found. Meant for measuring
/// (`lookalike eval --model a --model b`, `--whiten`) and for collections that fit in memory.
public final class FusionStage: RankingStage, @unchecked Sendable {
    /// The models fused; the first is the search's main model.
    public let models: [String]
    /// Learn whitening from these items' vectors (nil: no whitening; empty: from every item).
    public let whiteningItems: Set<String>?
    private let lock = NSLock()
    private var fused: (index: FlatIndex, parts: [(model: String, whitening: Whitening?)])?

    public init(models: [String], whiteningItems: Set<String>? = nil) {
        self.models = models
        self.whiteningItems = whiteningItems
    }

    public var name: String { models.joined(separator: "+") + (whiteningItems == nil ? "" : ", whitened") }

    public func rank(_ candidates: [Candidate], context: RankingContext) throws -> [Candidate] {
        let (index, parts) = try fusedIndex(context)
        let weight = 1 / Float(parts.count).squareRoot()
        var query: [Float] = []
        for part in parts {
            guard let vector = try context.queryVector(model: part.model) else { return [] }
            query += VectorNormalization.normalized(part.whitening?.apply(vector) ?? vector).map { $0 * weight }
        }
        guard query.count == index.dimension else { return [] }
        return try index.search(query, k: context.top, filter: context.filter).map { Candidate(id: $0.id, score: $0.score) }
    }

    private func fusedIndex(_ context: RankingContext) throws -> (FlatIndex, [(model: String, whitening: Whitening?)]) {
        if let fused = lock.withLock({ fused }) { return fused }
        var parts: [(model: String, whitening: Whitening?)] = []
        var combined: [String: [Float]] = [:]
        let weight = 1 / Float(models.count).squareRoot()
        for model in models {
            _ = try context.manifest(model)
            let stored = try context.allVectors(model: model)
            let whitening = whiteningItems.map { items in
                Whitening(learningFrom: stored.filter { items.isEmpty || items.contains($0.id) }.sorted { $0.id < $1.id }.map(\.vector))
            } ?? nil
            parts.append((model, whitening))
            for (id, vector) in stored {
                combined[id, default: []] += VectorNormalization.normalized(whitening?.apply(vector) ?? vector).map { $0 * weight }
            }
        }
        let width = combined.values.map(\.count).max() ?? 0
        let index = FlatIndex(dimension: max(1, width))
        for (id, vector) in combined.sorted(by: { $0.key < $1.key }) where vector.count == width {
            try index.add(id: id, vector: vector)
        }
        lock.withLock { fused = (index, parts) }
        return (index, parts)
    }

}
