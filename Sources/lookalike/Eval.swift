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
            result = try engine.evaluate(loaded, options: EvaluationOptions(models: model, top: top, efSearch: efSearch, whiten: whiten,
                                                                                  fusion: fusion)) { line in
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
                           "store_images_not_in_manifest": result.strangers,
                           "by_kind": kinds,
                           "queries": result.queries.map { outcome -> [String: Any] in
                               ["path": outcome.path, "kind": outcome.kind ?? NSNull(), "match": outcome.hasMatch,
                                "first_correct_rank": outcome.firstCorrectRank ?? NSNull(), "ap": outcome.averagePrecision]
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
