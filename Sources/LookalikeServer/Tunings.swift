import Foundation
import Logging
import Lookalike

/// Tunings started over HTTP (`lookalike tune` as a job): one at a time per server, in arrival
/// order, on a thread of their own, so searches keep their inference threads. Each keeps its
/// progress and its validation curve (held-out mAP@R per epoch of each head) for polling and
/// server-sent events, and its report when it ends.
///
/// Tunings live in this server's memory for its lifetime: a tuning takes seconds to minutes and
/// decodes no image, so one cut short by its server's end is started again rather than resumed.
/// What a finished tuning made is in the store (the tuned model and its report), for every server.
final class Tunings: @unchecked Sendable {
    struct Tuning: Sendable {
        typealias State = SharedJob.State
        let id: String
        let collection: String
        /// The tuned model it makes, `<base>+<name>`.
        let model: String
        /// What it learns from: a metadata field's name, `pairs`, or `feedback`.
        let labels: String
        /// Whether the tuned model becomes the collection's default model once made.
        let makeDefault: Bool
        var state: State = .queued
        /// reading (the labelled vectors), training, projecting (the tuned model's vectors), or done.
        var phase = "queued"
        var read = 0
        /// The validation curve so far: epoch 0 is the base model, then each head's epochs.
        var epochs: [TuningEpoch] = []
        var projected = 0
        var toProject = 0
        var report: TuneReport?
        var madeDefault = false
        var error: String?
        let createdAt: Date
        var finishedAt: Date?
        /// Bumped on every change, so event streams send only news.
        var revision = 0

        var isOver: Bool { state == .finished || state == .failed }

        var json: [String: Any] {
            var object: [String: Any] = [
                "id": id, "collection": collection, "model": model, "labels": labels, "make_default": makeDefault,
                "state": state.rawValue, "phase": phase, "read": read, "projected": projected, "to_project": toProject,
                "curve": epochs.map { epoch -> [String: Any] in
                    ["head": epoch.head ?? NSNull(), "epoch": epoch.epoch, "loss": epoch.loss, "held_out": epoch.validation]
                },
                "made_default": madeDefault, "error": error ?? NSNull(),
                "created_at": Jobs.Job.timestamp(createdAt), "finished_at": finishedAt.map(Jobs.Job.timestamp) ?? NSNull(),
            ]
            object["report"] = report.flatMap { report -> Any? in
                guard let data = try? JSONEncoder().encode(report) else { return nil }
                return try? JSONSerialization.jsonObject(with: data)
            } ?? NSNull()
            return object
        }
    }

    private let lock = NSLock()
    private var tunings: [String: Tuning] = [:]
    private var order: [String] = []
    /// Tunings kept: beyond this, the oldest that are over are forgotten.
    let kept: Int
    private let queue = DispatchQueue(label: "lookalike.tuning", qos: .utility)
    private let logger = Logger(label: "lookalike.tunings")

    init(kept: Int = 100) {
        self.kept = max(1, kept)
    }

    /// Tunings queued or running at most; past that a new one is refused (503 `busy`).
    static let maxWaiting = 16

    /// Queues a tuning of `engine`'s collection; it runs after those queued before it.
    func submit(collection: String, engine: Engine, options: TuneOptions, labels: String, makeDefault: Bool) throws -> Tuning {
        let id = String(UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(12))
        let tuning = Tuning(id: id, collection: collection, model: options.base + "+" + options.name, labels: labels,
                            makeDefault: makeDefault, createdAt: Date())
        try lock.withLock {
            guard tunings.values.filter({ !$0.isOver }).count < Self.maxWaiting else {
                var error = APIError(.serviceUnavailable, "busy", "\(Self.maxWaiting) tunings are waiting or running already; retry when one has ended")
                error.headers = [.retryAfter: "30"]
                throw error
            }
            tunings[id] = tuning
            order.append(id)
            forgetOld()
        }
        queue.async { [self] in run(id, engine: engine, options: options, makeDefault: makeDefault) }
        return tuning
    }

    private func run(_ id: String, engine: Engine, options: TuneOptions, makeDefault: Bool) {
        update(id) { tuning in
            tuning.state = .running
            tuning.phase = "reading"
        }
        do {
            let report = try engine.tune(options) { [self] progress in
                update(id) { tuning in
                    switch progress {
                    case .reading(let done):
                        tuning.read = done
                    case .epoch(let epoch):
                        tuning.phase = "training"
                        tuning.epochs.append(epoch)
                    case .projecting(let done, let total):
                        tuning.phase = "projecting"
                        tuning.projected = done
                        tuning.toProject = total
                    }
                }
            }
            var madeDefault = false
            if makeDefault && report.created {
                try engine.setDefaultModel(report.model)
                madeDefault = true
            }
            update(id) { tuning in
                tuning.report = report
                tuning.madeDefault = madeDefault
                tuning.phase = "done"
                tuning.state = .finished
                tuning.finishedAt = Date()
            }
            logger.info("tuning \(id) made \(report.created ? report.model : "nothing"): held-out mAP@R \(report.baseline) -> \(report.best)")
        } catch {
            update(id) { tuning in
                tuning.state = .failed
                tuning.error = "\(error)"
                tuning.finishedAt = Date()
            }
            logger.warning("tuning \(id) failed: \(error)")
        }
    }

    private func update(_ id: String, _ change: (inout Tuning) -> Void) {
        lock.withLock {
            guard var tuning = tunings[id] else { return }
            change(&tuning)
            tuning.revision += 1
            tunings[id] = tuning
        }
    }

    /// Forgets the oldest tunings that are over, past `kept`. Runs under `lock`.
    private func forgetOld() {
        var excess = order.count - kept
        guard excess > 0 else { return }
        order.removeAll { id in
            guard excess > 0, tunings[id]?.isOver == true else { return false }
            excess -= 1
            tunings.removeValue(forKey: id)
            return true
        }
    }

    func tuning(_ id: String) -> Tuning? {
        lock.withLock { tunings[id] }
    }

    /// Every kept tuning, newest first (of one collection, when given).
    func all(collection: String? = nil) -> [Tuning] {
        lock.withLock { order.reversed().compactMap { tunings[$0] }.filter { collection == nil || $0.collection == collection } }
    }

    /// Whether a tuning of the collection is queued or running.
    func isBusy(collection: String) -> Bool {
        lock.withLock { tunings.values.contains { $0.collection == collection && !$0.isOver } }
    }
}
