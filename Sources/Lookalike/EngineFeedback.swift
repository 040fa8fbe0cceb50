import Embedding
import Foundation
import Storage

extension Engine {
    /// Records marks people gave the hits of a search for `query` by `model`: kept with the
    /// query's vector, so later searches near the same query use them (`FeedbackStage`). Every
    /// marked item must be stored; returns how many marks were recorded.
    @discardableResult
    public func recordFeedback(_ query: Query, model: String = ModelManifest.defaultName,
                               marks: [(id: String, mark: Feedback.Mark)]) throws -> Int {
        guard !marks.isEmpty else { return 0 }
        guard marks.count <= Self.maxMarks else {
            throw EngineError.badOption("at most \(Self.maxMarks) marks at once, not \(marks.count)")
        }
        let embedder = try models.embedder(model)
        try models.check(embedder, record: false)
        let known = try store.items(ids: marks.map(\.id))
        if let unknown = marks.first(where: { known[$0.id] == nil }) { throw EngineError.unknownItem(id: unknown.id) }
        if query.region != nil && !query.isImage { throw EngineError.regionNeedsImage }
        let encoder = QueryEncoder(query, region: query.region, store: store, models: models, decoder: decoder,
                                   maxBytes: configuration.limits.maxBytes)
        try encoder.prepare()
        let vector = try encoder.vector(for: embedder)
        let now = Date()
        try store.recordFeedback(marks.map { Feedback(model: embedder.manifest.name, query: vector, itemID: $0.id, mark: $0.mark, at: now) })
        return marks.count
    }

    /// Forgets the marks given with `model` (nil: every model); returns how many.
    @discardableResult
    public func forgetFeedback(model: String? = nil) throws -> Int {
        try store.removeFeedback(model: model)
    }

    static let maxMarks = 1_000
}
