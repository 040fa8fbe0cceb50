import Foundation
import Lookalike

/// Background indexing of server folders: one job at a time, in arrival order, on a thread of
/// its own, so searches keep their inference threads. Progress is kept per job for polling and
/// server-sent events; jobs are kept in memory for the server's lifetime.
final class Jobs: @unchecked Sendable {
    struct Job: Sendable {
        enum State: String, Sendable { case queued, running, finished, failed }
        let id: String
        let collection: String
        let path: String
        var state: State = .queued
        var total = 0
        var done = 0
        var added = 0
        var duplicates = 0
        var failed = 0
        /// Entries of the folder not tried: hidden ones, and files that are not images (known when the job ends).
        var skipped = 0
        var failures: [(path: String, reason: String)] = []
        var error: String?
        let createdAt: Date
        var finishedAt: Date?
        /// Bumped on every change, so event streams send only news.
        var revision = 0

        var isOver: Bool { state == .finished || state == .failed }

        var json: [String: Any] {
            [
                "id": id, "collection": collection, "path": path, "state": state.rawValue, "total": total, "done": done,
                "added": added, "duplicates": duplicates, "failed": failed, "skipped": skipped,
                "failures": failures.map { ["path": $0.path, "reason": $0.reason] },
                "error": error ?? NSNull(), "created_at": Self.timestamp(createdAt),
                "finished_at": finishedAt.map(Self.timestamp) ?? NSNull(),
            ]
        }

        static func timestamp(_ date: Date) -> String {
            date.formatted(.iso8601)
        }
    }

    private let lock = NSLock()
    private var jobs: [String: Job] = [:]
    private var order: [String] = []
    private let queue = DispatchQueue(label: "lookalike.indexing", qos: .utility)

    func submit(collection: String, engine: Engine, path: String, options: AddOptions) -> Job {
        let id = String(UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(12))
        let job = Job(id: id, collection: collection, path: path, createdAt: Date())
        lock.withLock {
            jobs[id] = job
            order.append(id)
        }
        queue.async { [self] in run(id, engine: engine, path: path, options: options) }
        return job
    }

    private func run(_ id: String, engine: Engine, path: String, options: AddOptions) {
        update(id) { $0.state = .running }
        let indexed = job(id).map { ServerMetrics.imagesIndexed($0.collection) }
        do {
            let report = try engine.add([path], options: options) { [self] progress in
                update(id) { job in
                    job.total = progress.total
                    job.done = progress.done
                    switch progress.outcome {
                    case .added:
                        job.added += 1
                        indexed?.increment()
                    case .duplicate: job.duplicates += 1
                    case .failed(let reason):
                        job.failed += 1
                        if job.failures.count < 100 { job.failures.append((progress.path, reason)) }
                    }
                }
            }
            update(id) { job in
                job.state = report.storeError == nil ? .finished : .failed
                job.skipped = report.skipped
                job.error = report.storeError.map { "the store refused a write: \($0)" }
                job.finishedAt = Date()
            }
        } catch {
            update(id) { job in
                job.state = .failed
                job.error = "\(error)"
                job.finishedAt = Date()
            }
        }
    }

    private func update(_ id: String, _ change: (inout Job) -> Void) {
        lock.withLock {
            guard var job = jobs[id] else { return }
            change(&job)
            job.revision += 1
            jobs[id] = job
        }
    }

    func job(_ id: String) -> Job? {
        lock.withLock { jobs[id] }
    }

    /// Newest first.
    func all() -> [Job] {
        lock.withLock { order.reversed().compactMap { jobs[$0] } }
    }

    func isBusy(collection: String) -> Bool {
        lock.withLock { jobs.values.contains { $0.collection == collection && !$0.isOver } }
    }
}
