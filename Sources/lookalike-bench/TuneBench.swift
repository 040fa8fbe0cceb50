import Foundation
import Tuning

/// `lookalike-bench tune VECTORS.f32 LABELS.i32 [--epochs N] [--loss proxy|multi-similarity]`: the
/// Swift side of `scripts/bench_tune.py`. Learns a projection from the labelled vectors with
/// `tune`'s trainer (patience set to the epoch count, so every run trains the same number of
/// epochs), then projects every vector with it as `tune` does a store's; one JSON line each.
func runTuneBench() throws {
    let arguments = CommandLine.arguments
    guard arguments.count >= 4 else { throw BenchError("usage: lookalike-bench tune VECTORS.f32 LABELS.i32 [--epochs N] [--loss L]") }
    let vectors = try readMatrix(arguments[2], as: Float.self)
    let labels = try readMatrix(arguments[3], as: Int32.self)
    guard labels.values.count == vectors.rows else { throw BenchError("\(vectors.rows) vectors but \(labels.values.count) labels") }
    var options = TuningOptions()
    options.maxEpochs = max(1, Int(option("--epochs", default: "10")) ?? 10)
    options.patience = options.maxEpochs
    if let loss = TuningOptions.Loss(rawValue: option("--loss", default: options.loss.rawValue)) { options.loss = loss }
    let rows = (0..<vectors.rows).map { Array(vectors.row($0)) }
    let started = now()
    let result = try MetricTrainer.train(vectors: rows, labels: labels.values.map { String($0) }, options: options)
    let trainSeconds = now() - started
    emit(["engine": "lookalike", "event": "tune", "rows": vectors.rows, "dimension": vectors.columns, "loss": options.loss.rawValue,
          "classes": result.classes, "epochs": result.epochs.count - 1, "best_epoch": result.bestEpoch, "head": result.head.kind,
          "held_out_base": result.baseline, "held_out_best": result.best, "seconds": trainSeconds,
          "seconds_per_epoch": trainSeconds / Double(max(1, result.epochs.count - 1))])
    let projecting = now()
    let projected = result.head.project(rows)
    emit(["engine": "lookalike", "event": "project", "rows": projected.count, "seconds": now() - projecting])
}
