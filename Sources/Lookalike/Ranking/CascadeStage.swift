/// A cascade of copy detectors (`SearchOptions.cascade`): each backing model searches with its own
/// embedding of the query, and every image it scores at or past its duplicate threshold gets the
/// larger of its score by the main model and the main model's threshold plus the backing model's
/// margin. Images only a backing model found are scored by the main model exactly, from the
/// store. Ranks and copy marks stay on the main model's scale, so its threshold keeps its meaning.
public struct CascadeStage: RankingStage {
    /// The backing models, in order.
    public let models: [String]

    public init(models: [String]) {
        self.models = models
    }

    public var name: String { "cascade(\(models.joined(separator: ", ")))" }

    public func rank(_ candidates: [Candidate], context: RankingContext) throws -> [Candidate] {
        guard let threshold = context.model.duplicateThreshold else {
            throw EngineError.noDuplicateThreshold(model: context.model.name)
        }
        guard let query = try context.queryVector(model: context.model.name) else { return candidates }
        var scores: [String: Float] = [:]
        for candidate in candidates where scores[candidate.id] == nil { scores[candidate.id] = candidate.score }
        var lifted: [String: Float] = [:]
        for name in models {
            let other = try context.manifest(name)
            guard let otherThreshold = other.duplicateThreshold else { throw EngineError.noDuplicateThreshold(model: name) }
            guard let otherQuery = try context.queryVector(model: name) else { continue }
            for hit in try context.search(model: name, query: otherQuery, k: context.top) where hit.score >= otherThreshold {
                lifted[hit.id] = max(lifted[hit.id] ?? -.infinity, threshold + (hit.score - otherThreshold))
            }
        }
        let unscored = lifted.keys.filter { scores[$0] == nil }
        for (id, vector) in try context.vectors(model: context.model.name, ids: unscored) where vector.count == query.count {
            scores[id] = zip(query, vector).reduce(0) { $0 + $1.0 * $1.1 }
        }
        for (id, score) in lifted { scores[id] = max(scores[id] ?? -.infinity, score) }
        return scores.map { Candidate(id: $0.key, score: $0.value) }
            .sorted { $0.score != $1.score ? $0.score > $1.score : $0.id < $1.id }
            .prefix(context.top).map { $0 }
    }
}
