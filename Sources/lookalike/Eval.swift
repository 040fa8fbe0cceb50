import ArgumentParser
import Foundation
import Lookalike

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure retrieval quality on an evaluation set.",
        discussion: """
            MANIFEST is JSONL, one image a line: {"path", "role": "query" | "gallery" | "distractor", \
            "group", "kind", "text"}. Gallery and distractor images are indexed into a scratch store \
            (deleted afterwards unless --store is given), every query is searched, and the answers are \
            measured: mAP and mAP@R, P@1 and P@10, Recall@1/10/100 (a correct item in the first k), and, \
            over all (query, hit) pairs ranked by score, the micro-average precision (µAP) of copy \
            detection, the recall at precision 0.9, and the score threshold with precision 0.99.
            """
    )

    @Argument(help: "The evaluation manifest (JSONL).")
    var manifest: String

    @Option(help: ArgumentHelp("The embedding model (see `lookalike models`); repeat to fuse models (their cosine similarities are averaged).",
                               valueName: "name"))
    var model: [String] = [ModelManifest.defaultName]

    @Option(help: ArgumentHelp("How repeated --model options are fused: mean (of the cosine similarities) or cascade (the first model ranks; the others lift the pairs they score past their calibrated duplicate threshold).",
                               valueName: "mean|cascade"))
    var fusion: EvaluationOptions.Fusion = .mean

    @Flag(help: "Rank with PCA-whitened vectors, the whitening learned on the gallery.")
    var whiten = false

    @Option(help: ArgumentHelp("Query expansion: each query searches again joined by its best n neighbours.", valueName: "n"))
    var expand: Int?

    @Option(help: ArgumentHelp("Database-side augmentation: rank against stored vectors each joined by its n nearest stored neighbours.",
                               valueName: "n"))
    var augment: Int?

    @Option(help: ArgumentHelp("Diversify every answer (maximal marginal relevance) with this λ.", valueName: "λ"))
    var diversity: Float?

    @Option(name: .customLong("diversity-pool"), help: ArgumentHelp("Candidates --diversity chooses from, as a multiple of --top (default 4).",
                                                                     valueName: "factor"))
    var diversityPool: Int?

    @Flag(help: "Simulate a user who marks each query's first ten hits relevant or not (by the ground truth); measure the search after those marks.")
    var feedback = false

    @Flag(help: "Fold near-duplicates of a hit into it (one rank per copy group).")
    var collapse = false

    @Flag(help: "Add the gallery with region tiles and score each image by its best part (without it, whole images only).")
    var tiles = false

    @Flag(inversion: .prefixedNo, help: "Search with crops of a query that finds no copy whole (default: the model's, as `search` does).")
    var crops: Bool?

    @Option(name: [.short, .long], help: "Hits per query; every measure looks at these ranks only.")
    var top = 100

    @Option(name: .customLong("ef"), help: ArgumentHelp("HNSW beam width (collections above the approximate-search threshold).",
                                                        valueName: "n"))
    var efSearch: Int?

    @Option(help: ArgumentHelp("Index into this store and keep it (a later run reuses its vectors).", valueName: "dir"))
    var store: String?

    @Option(name: .long, help: "Threads for one model run (0: one per core).")
    var threads: Int = 0

    @Flag(help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        guard (1...10_000).contains(top) else { throw ValidationError("--top must be between 1 and 10000") }
        if let efSearch, !(1...10_000).contains(efSearch) { throw ValidationError("--ef must be between 1 and 10000") }
        guard (0...256).contains(threads) else { throw ValidationError("--threads must be between 0 and 256") }
        if let expand, !(1...100).contains(expand) { throw ValidationError("--expand must be between 1 and 100") }
        if let augment, !(1...100).contains(augment) { throw ValidationError("--augment must be between 1 and 100") }
        if augment != nil && (expand != nil || diversity != nil || collapse) {
            throw ValidationError("--augment is measured on its own: leave out --expand, --diversity and --collapse")
        }
        if let diversity, !(0...1).contains(diversity) { throw ValidationError("--diversity must be between 0 and 1") }
        if let diversityPool, !(1...100).contains(diversityPool) { throw ValidationError("--diversity-pool must be between 1 and 100") }
        if diversityPool != nil && diversity == nil { throw ValidationError("--diversity-pool needs --diversity") }
        if (expand != nil || diversity != nil || collapse || augment != nil) && (whiten || (model.count > 1 && fusion == .mean)) {
            throw ValidationError("--expand, --augment, --diversity and --collapse rank one model's vectors (or a cascade): leave out --whiten and mean fusion")
        }
        if fusion == .cascade && whiten { throw ValidationError("--fusion cascade does not whiten: leave out --whiten") }
    }

    func run() throws {
        let scratch = store == nil
        let storeURL = store.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("lookalike-eval-\(UUID().uuidString)")
        defer { if scratch { try? FileManager.default.removeItem(at: storeURL) } }
        let result: EvaluationResult
        do {
            let loaded = try EvaluationManifest.load(URL(fileURLWithPath: manifest))
            let engine = try Engine(configuration: EngineConfiguration(store: storeURL, inferenceThreads: threads))
            var options = EvaluationOptions(models: model, top: top, efSearch: efSearch, whiten: whiten, fusion: fusion)
            options.expansion = expand
            options.diversity = diversity
            options.collapseCopies = collapse
            options.diversityPool = diversityPool
            options.augmentation = augment
            options.simulateFeedback = feedback
            options.tiles = tiles
            options.crops = crops
            result = try engine.evaluate(loaded, options: options) { line in
                if !json { FileHandle.standardError.write(Data("\(line)\n".utf8)) }
            }
        } catch {
            throw fail(error)
        }
        if result.strangers > 0 {
            FileHandle.standardError.write(Data(
                "lookalike: warning: the store holds \(result.strangers) images the manifest does not list; they took part in the searches\n".utf8))
        }
        for failure in result.failures {
            FileHandle.standardError.write(Data("lookalike: \(failure.path): \(failure.reason)\n".utf8))
        }
        if json {
            var kinds: [String: Any] = [:]
            for (kind, summary) in result.byKind { kinds[kind] = Self.object(summary) }
            try printJSON(["model": result.model, "gallery": result.gallery, "distractors": result.distractors,
                           "failures": result.failures.map { ["path": $0.path, "reason": $0.reason] },
                           "seconds": (result.seconds * 10).rounded() / 10, "overall": Self.object(result.summary),
                           "distinct_groups_at_10": result.distinctGroupsAt10,
                           "first_round_precision_at_10": result.firstRoundPrecisionAt10.map { $0 as Any } ?? NSNull(),
                           "store_images_not_in_manifest": result.strangers,
                           "by_kind": kinds,
                           "queries": result.queries.map { outcome -> [String: Any] in
                               ["path": outcome.path, "kind": outcome.kind ?? NSNull(), "match": outcome.hasMatch,
                                "first_correct_rank": outcome.firstCorrectRank ?? NSNull(), "ap": outcome.averagePrecision,
                                "first_hits": outcome.firstHits.map { [Double(($0.score * 1e5).rounded() / 1e5), $0.correct] as [Any] }]
                           }])
            return
        }
        print("model: \(result.model); gallery \(result.gallery), distractors \(result.distractors), "
              + "queries \(result.summary.queries + result.summary.queriesWithoutMatch) "
              + "(\(result.summary.queriesWithoutMatch) without a match); \(String(format: "%.1f", result.seconds)) s")
        print(Self.header)
        print(Self.row("all", result.summary))
        for kind in result.byKind.keys.sorted() {
            if let summary = result.byKind[kind] { print(Self.row(kind, summary)) }
        }
        print(String(format: "different groups among the first 10 hits: %.2f on average", result.distinctGroupsAt10))
        if let before = result.firstRoundPrecisionAt10 {
            print(String(format: "simulated feedback: P@10 %.3f before the marks, %.3f after", before, result.summary.precisionAt10))
        }
        if let point = result.summary.pairs.thresholdAtPrecision99 {
            print(String(format: "duplicate threshold at precision 0.99: score >= %.4f (recall %.3f)", point.threshold, point.recall))
        } else {
            print("duplicate threshold at precision 0.99: none (no score threshold reaches that precision)")
        }
        if !result.failures.isEmpty { print("\(result.failures.count) inputs failed (listed on standard error)") }
    }

    static let header = "set        queries  mAP    mAP@R  P@1    P@10   R@1    R@10   R@100  µAP    R@P90"

    static func row(_ name: String, _ summary: RetrievalMetrics.Summary) -> String {
        let values = [summary.meanAveragePrecision, summary.meanAveragePrecisionAtR, summary.precisionAt1, summary.precisionAt10,
                      summary.recallAt1, summary.recallAt10, summary.recallAt100, summary.pairs.microAveragePrecision,
                      summary.pairs.recallAtPrecision90]
        let padded = name.count >= 10 ? String(name.prefix(10)) : name + String(repeating: " ", count: 10 - name.count)
        return padded + " " + String(format: "%7d", summary.queries) + "  " + values.map { String(format: "%.3f", $0) }.joined(separator: "  ")
    }

    static func object(_ summary: RetrievalMetrics.Summary) -> [String: Any] {
        var pairs: [String: Any] = ["micro_average_precision": summary.pairs.microAveragePrecision,
                                    "recall_at_precision_0.9": summary.pairs.recallAtPrecision90,
                                    "positives": summary.pairs.positives, "pairs": summary.pairs.pairs]
        if let point = summary.pairs.thresholdAtPrecision99 {
            pairs["threshold_at_precision_0.99"] = ["score": point.threshold, "recall": point.recall, "precision": point.precision]
        } else {
            pairs["threshold_at_precision_0.99"] = NSNull()
        }
        // The precision-recall curve, thinned to at most 200 points for charts.
        let curve = summary.pairs.curve
        let step = max(1, curve.count / 200)
        let thinned = stride(from: 0, to: curve.count, by: step).map { curve[$0] } + (curve.count % step == 1 || step == 1 ? [] : curve.suffix(1))
        pairs["curve"] = thinned.map { ["threshold": $0.threshold, "precision": $0.precision, "recall": $0.recall] }
        return ["queries": summary.queries, "queries_without_match": summary.queriesWithoutMatch,
                "map": summary.meanAveragePrecision, "map_at_r": summary.meanAveragePrecisionAtR,
                "precision_at_1": summary.precisionAt1, "precision_at_10": summary.precisionAt10,
                "recall_at_1": summary.recallAt1, "recall_at_10": summary.recallAt10, "recall_at_100": summary.recallAt100,
                "pairs": pairs]
    }
}

extension EvaluationOptions.Fusion: ExpressibleByArgument {}
