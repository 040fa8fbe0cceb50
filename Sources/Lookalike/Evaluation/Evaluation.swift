import Foundation

/// Options of `Engine.evaluate`.
public struct EvaluationOptions: Sendable {
    public var model: String
    /// Hits per query; measures look at these ranks only (mAP included).
    public var top: Int
    /// HNSW beam width, for collections above the approximate-search threshold.
    public var efSearch: Int?

    public init(model: String, top: Int = 100, efSearch: Int? = nil) {
        self.model = model
        self.top = max(1, top)
        self.efSearch = efSearch
    }
}

/// What an evaluation measured.
public struct EvaluationResult: Sendable {
    public let model: String
    public let gallery: Int
    public let distractors: Int
    /// Every query, with the measures over all of them.
    public let summary: RetrievalMetrics.Summary
    /// Per `kind` of query (queries without a kind are left out here).
    public let byKind: [String: RetrievalMetrics.Summary]
    /// Inputs that could not be indexed or searched, with the reason. A query that failed counts
    /// as a query with no hits; an image that could not be indexed is simply missing.
    public let failures: [IngestFailure]
    public let seconds: Double
}

extension Engine {
    /// Indexes the manifest's gallery and distractors into this engine's store (already stored
    /// images are not embedded again), runs every query, and measures the answers. Meant for a
    /// scratch store: the images stay in the store afterwards.
    public func evaluate(_ manifest: EvaluationManifest, options: EvaluationOptions,
                         progress: (@Sendable (String) -> Void)? = nil) throws -> EvaluationResult {
        let started = Date()
        let indexed = manifest.indexed
        progress?("indexing \(indexed.count) images")
        let report = try add(indexed.map(\.path), options: AddOptions(model: options.model))
        var idOfPath: [String: String] = [:]
        for added in report.added { idOfPath[added.path] = added.id }
        for duplicate in report.duplicates { idOfPath[duplicate.path] = duplicate.existingId }
        var relevantByGroup: [String: Set<String>] = [:]
        for entry in indexed where entry.role == .gallery {
            guard let group = entry.group, let id = idOfPath[entry.path] else { continue }
            relevantByGroup[group, default: []].insert(id)
        }
        // Inputs with identical bytes are one item in a store: a distractor that repeats a gallery
        // image's bytes is that gallery image.
        var failures = report.failures
        var rankings: [RetrievalMetrics.Ranking] = []
        var kinds: [String?] = []
        let queries = manifest.queries
        for (number, query) in queries.enumerated() {
            if number % 100 == 0 { progress?("query \(number + 1) of \(queries.count)") }
            let relevant = query.group.flatMap { relevantByGroup[$0] } ?? []
            var hits: [(id: String, score: Float)] = []
            do {
                hits = try search(imageAt: query.path, top: options.top, model: options.model, efSearch: options.efSearch)
                    .hits.map { ($0.id, $0.score) }
            } catch {
                failures.append(IngestFailure(path: query.path, reason: "\(error)"))
            }
            rankings.append(RetrievalMetrics.Ranking(hits: hits, relevant: relevant))
            kinds.append(query.kind)
        }
        var byKind: [String: RetrievalMetrics.Summary] = [:]
        for kind in Set(kinds.compactMap { $0 }) {
            byKind[kind] = RetrievalMetrics.summarize(zip(rankings, kinds).filter { $0.1 == kind }.map(\.0))
        }
        return EvaluationResult(
            model: report.model, gallery: indexed.filter { $0.role == .gallery }.count,
            distractors: indexed.filter { $0.role == .distractor }.count, summary: RetrievalMetrics.summarize(rankings),
            byKind: byKind, failures: failures, seconds: Date().timeIntervalSince(started))
    }
}
