import Foundation
import Embedding
import VectorIndex

/// Options of `Engine.evaluate`.
public struct EvaluationOptions: Sendable {
    /// How several models' similarities become one score.
    public enum Fusion: String, Sendable, CaseIterable {
        /// The mean of the cosine similarities.
        case mean
        /// The first model ranks; the others back it up as `SearchOptions.cascade` describes,
        /// lifting the images they score past their own duplicate thresholds. A cascade of
        /// duplicate detectors: a perceptual hash, say, vouches for the global edits it is sure
        /// of, and says nothing about the rest.
        case cascade
    }

    /// One model, or several to fuse (see `fusion`).
    public var models: [String]
    public var fusion: Fusion
    /// Hits per query; measures look at these ranks only (mAP included).
    public var top: Int
    /// HNSW beam width, for collections above the approximate-search threshold.
    public var efSearch: Int?
    /// PCA-whitening learned on the gallery's vectors, applied to every vector before ranking.
    public var whiten: Bool
    /// Ranking stages every search runs, as `SearchOptions` has them.
    public var expansion: Int?
    public var diversity: Float?
    public var collapseCopies: Bool = false
    /// Database-side augmentation with this many neighbours (`AugmentationStage`; nil: off).
    public var augmentation: Int?
    /// Candidates diversity chooses from, as a multiple of `top` (nil: the stage's default).
    public var diversityPool: Int?
    /// A simulated user: each query's first ten hits are marked relevant or not by the ground
    /// truth, and the query is searched again; the measures are of that second round (the
    /// first round's P@10 is kept beside them). Marks are forgotten after each query.
    public var simulateFeedback: Bool = false
    /// Region tiles: the main model's gallery is added with tiles and every search scores items
    /// by their best part (`Tiles`). Off: searches score whole images only, whatever the store holds.
    public var tiles: Bool = false
    /// Query-side crops (`QueryCrops`); nil: the main model's default, as a user's search gets.
    public var crops: Bool?

    public init(models: [String], top: Int = 100, efSearch: Int? = nil, whiten: Bool = false, fusion: Fusion = .mean) {
        self.models = models.isEmpty ? [ModelManifest.defaultName] : models
        self.fusion = fusion
        self.top = max(1, top)
        self.efSearch = efSearch
        self.whiten = whiten
    }

    public init(model: String, top: Int = 100, efSearch: Int? = nil) {
        self.init(models: [model], top: top, efSearch: efSearch)
    }

    /// How the ranking was made, for reports: the model, `+` between models fused by the mean,
    /// `cascade(a, b)`, `, whitened`.
    public var label: String {
        (fusion == .cascade && models.count > 1 ? "cascade(\(models.joined(separator: ", ")))" : models.joined(separator: "+"))
            + (whiten ? ", whitened" : "") + (expansion.map { ", expansion \($0)" } ?? "")
            + (collapseCopies ? ", collapsed" : "") + (diversity.map { ", diversity \($0)" } ?? "")
            + (augmentation.map { ", augmentation \($0)" } ?? "") + (simulateFeedback ? ", after one round of feedback" : "")
            + (tiles ? ", tiles" : "") + (crops.map { $0 ? ", crops" : ", no crops" } ?? "")
    }
}

/// How one query of an evaluation fared.
public struct QueryOutcome: Sendable {
    public let path: String
    public let kind: String?
    /// Whether the gallery holds a correct item for the query (false for a negative query).
    public let hasMatch: Bool
    /// The rank, from 1, of the first correct hit; nil when none of the hits is correct.
    public let firstCorrectRank: Int?
    /// Average precision over the hits (0 for a query without a match).
    public let averagePrecision: Double
    /// The first ten hits' scores, each with whether it is correct: what calibrating a threshold
    /// on one part of the queries and checking it on another needs.
    public let firstHits: [(score: Float, correct: Bool)]
    /// How many different groups (gallery groups; each other image its own) the first ten hits
    /// show: what diversifying a ranking raises.
    public let distinctGroupsAt10: Int
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
    /// Every query's own outcome, in manifest order: what a paired comparison of two rankings needs.
    public let queries: [QueryOutcome]
    /// Inputs that could not be indexed or searched, with the reason. A query that failed counts
    /// as a query with no hits; an image that could not be indexed is simply missing.
    public let failures: [IngestFailure]
    /// Images in the store that the manifest does not list (a reused store): they take part in
    /// every search and, for the measures, count as wrong answers.
    public let strangers: Int
    public let seconds: Double
    /// With a simulated user: P@10 of the first round, before any marks (queries with a match).
    public let firstRoundPrecisionAt10: Double?

    /// The mean over all queries of the different groups among the first ten hits.
    public var distinctGroupsAt10: Double {
        queries.isEmpty ? 0 : Double(queries.map(\.distinctGroupsAt10).reduce(0, +)) / Double(queries.count)
    }
}

extension Engine {
    /// Indexes the manifest's gallery and distractors into this engine's store (already stored
    /// images are not embedded again), runs every query, and measures the answers. Meant for a
    /// scratch store: the images stay in the store afterwards.
    ///
    /// Every query goes through `search`, exactly as a user's would: a cascade as the search
    /// option, fusion and whitening as a `FusionStage`.
    public func evaluate(_ manifest: EvaluationManifest, options: EvaluationOptions,
                         progress: (@Sendable (String) -> Void)? = nil) throws -> EvaluationResult {
        let started = Date()
        let indexed = manifest.indexed
        var idOfPath: [String: String] = [:]
        var failures: [IngestFailure] = []
        for model in options.models {
            progress?("indexing \(indexed.count) images with \(model)")
            let report = try add(indexed.map(\.path), options: AddOptions(model: model, tiles: options.tiles && model == options.models[0]))
            for added in report.added { idOfPath[added.path] = added.id }
            for duplicate in report.duplicates { idOfPath[duplicate.path] = duplicate.existingId }
            failures += report.failures.filter { failure in !failures.contains { $0.path == failure.path } }
        }
        var relevantByGroup: [String: Set<String>] = [:]
        for entry in indexed where entry.role == .gallery {
            guard let group = entry.group, let id = idOfPath[entry.path] else { continue }
            relevantByGroup[group, default: []].insert(id)
        }
        // Inputs with identical bytes are one item in a store: a distractor that repeats a gallery
        // image's bytes is that gallery image.
        let queries = manifest.queries
        // Every ranking goes through `search`, as a user's query would: a cascade is a search
        // option, fusion and whitening are a ranking stage (kept across queries, so the fused
        // vectors of the collection are computed once).
        let cascade = options.fusion == .cascade
        var searchOptions = SearchOptions(top: options.top, model: options.models[0], efSearch: options.efSearch,
                                          cascade: cascade ? Array(options.models.dropFirst()) : [],
                                          expansion: options.expansion, collapseCopies: options.collapseCopies,
                                          diversity: options.diversityPool == nil ? options.diversity : nil, tiles: options.tiles,
                                          crops: options.crops)
        if let neighbours = options.augmentation {
            searchOptions.stages.append(try AugmentationStage(neighbours: neighbours))
        }
        if let lambda = options.diversity, let factor = options.diversityPool {
            searchOptions.stages.append(try DiversityStage(lambda: lambda, poolFactor: factor))
        }
        var groupOf: [String: String] = [:]
        for (group, ids) in relevantByGroup { for id in ids { groupOf[id] = group } }
        if !cascade && (options.models.count > 1 || options.whiten) {
            searchOptions.stages.insert(FusionStage(models: options.models,
                                                whiteningItems: options.whiten ? Set(relevantByGroup.values.flatMap { $0 }) : nil), at: 0)
        }
        let mainModel = options.models[0]
        if options.simulateFeedback { try forgetFeedback(model: mainModel) }
        var firstRound: [RetrievalMetrics.Ranking] = []
        var rankings: [RetrievalMetrics.Ranking] = []
        var kinds: [String?] = []
        var outcomes: [QueryOutcome] = []
        for (number, query) in queries.enumerated() {
            if number % 100 == 0 { progress?("query \(number + 1) of \(queries.count)") }
            let relevant = query.group.flatMap { relevantByGroup[$0] } ?? []
            var hits: [(id: String, score: Float)] = []
            let asked: Query = query.path.isEmpty ? .text(query.text ?? "") : .image(path: query.path)
            do {
                hits = try search(asked, options: searchOptions).hits.map { ($0.id, $0.score) }
                if options.simulateFeedback {
                    firstRound.append(RetrievalMetrics.Ranking(hits: hits, relevant: relevant))
                    let marks = hits.prefix(10).map { (id: $0.id, mark: relevant.contains($0.id) ? Feedback.Mark.relevant : .notRelevant) }
                    try recordFeedback(asked, model: mainModel, marks: marks)
                    hits = try search(asked, options: searchOptions).hits.map { ($0.id, $0.score) }
                    try forgetFeedback(model: mainModel)
                }
            } catch {
                failures.append(IngestFailure(path: query.path.isEmpty ? "text: \(query.text ?? "")" : query.path, reason: "\(error)"))
            }
            let ranking = RetrievalMetrics.Ranking(hits: hits, relevant: relevant)
            rankings.append(ranking)
            kinds.append(query.kind)
            outcomes.append(QueryOutcome(
                path: query.path.isEmpty ? "text: \(query.text ?? "")" : query.path, kind: query.kind, hasMatch: !relevant.isEmpty,
                firstCorrectRank: hits.firstIndex { relevant.contains($0.id) }.map { $0 + 1 },
                averagePrecision: RetrievalMetrics.averagePrecision(ranking),
                firstHits: hits.prefix(10).map { ($0.score, relevant.contains($0.id)) },
                distinctGroupsAt10: Set(hits.prefix(10).map { groupOf[$0.id] ?? $0.id }).count))
        }
        var byKind: [String: RetrievalMetrics.Summary] = [:]
        for kind in Set(kinds.compactMap { $0 }) {
            byKind[kind] = RetrievalMetrics.summarize(zip(rankings, kinds).filter { $0.1 == kind }.map(\.0))
        }
        let listed = Set(idOfPath.values)
        var strangers = 0
        for model in options.models {
            strangers = max(strangers, try store.vectorIDs(model: model).filter { !listed.contains($0) }.count)
        }
        return EvaluationResult(
            model: options.label, gallery: indexed.filter { $0.role == .gallery }.count,
            distractors: indexed.filter { $0.role == .distractor }.count, summary: RetrievalMetrics.summarize(rankings),
            byKind: byKind, queries: outcomes, failures: failures, strangers: strangers, seconds: Date().timeIntervalSince(started),
            firstRoundPrecisionAt10: options.simulateFeedback ? RetrievalMetrics.summarize(firstRound).precisionAt10 : nil)
    }
}
