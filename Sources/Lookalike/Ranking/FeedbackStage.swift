import Embedding
import Foundation
import Storage
import VectorIndex

/// Feedback from earlier searches near this one (`SearchOptions.feedback`): marks people gave
/// hits (relevant, not relevant, clicks) are kept with their search's query vector; a later query
/// that is a near-copy of one of those (their similarity reaches the model's duplicate
/// threshold) is moved by Rocchio's rule, the query plus the weighted mean of the items marked
/// relevant (clicks weigh half) minus a share of the mean of those marked not relevant, and
/// searches again; items marked not relevant for a near query then go to the end of the list.
/// Without marks near the query the candidates pass unchanged.
public struct FeedbackStage: RankingStage {
    /// The newest marks considered per model.
    static let recentMarks = 2_000
    /// How much a click counts against an explicit "relevant".
    static let clickWeight: Float = 0.5

    public init() {}

    public var name: String { "feedback" }

    public func rank(_ candidates: [Candidate], context: RankingContext) throws -> [Candidate] {
        let model = context.model
        let marks = try context.feedback(model: model.name, limit: Self.recentMarks)
        guard !marks.isEmpty, let query = try context.queryVector(model: model.name) else { return candidates }
        let near = model.duplicateThreshold ?? 0.9
        var liked: [String: Float] = [:]
        var unliked: [String: Float] = [:]
        for mark in marks where mark.query.count == query.count {
            let closeness = VectorMath.dot(mark.query, query)
            guard closeness >= near else { continue }
            switch mark.mark {
            case .relevant: liked[mark.itemID, default: 0] += closeness
            case .click: liked[mark.itemID, default: 0] += Self.clickWeight * closeness
            case .notRelevant: unliked[mark.itemID, default: 0] += closeness
            }
        }
        // An item both liked and unliked near this query counts by its balance.
        for (id, weight) in unliked {
            guard let like = liked[id] else { continue }
            if like > weight { liked[id] = like - weight; unliked[id] = nil } else { unliked[id] = weight - like; liked[id] = nil }
        }
        if liked.isEmpty && unliked.isEmpty { return candidates }
        let vectors = try context.vectors(model: model.name, ids: Array(liked.keys) + Array(unliked.keys))
        var moved = query
        for (weights, share) in [(liked, Query.rocchio.liked), (unliked, -Query.rocchio.unliked)] {
            let total = weights.values.reduce(0, +)
            guard total > 0 else { continue }
            for (id, weight) in weights {
                guard let vector = vectors[id], vector.count == moved.count else { continue }
                VectorMath.add(vector, scaledBy: share * weight / total, to: &moved)
            }
        }
        guard let unit = VectorNormalization.unitVector(moved) else { return candidates }
        // Enough more that the demoted items fall out of the first `top`.
        let ranked = try context.search(model: model.name, query: unit, k: max(candidates.count, context.top) + unliked.count)
        return ranked.filter { unliked[$0.id] == nil } + ranked.filter { unliked[$0.id] != nil }
    }
}
