import Foundation
import Logging
import Lookalike

/// Background indexing of server folders: one job at a time per server, in arrival order, on a
/// thread of its own, so searches keep their inference threads. Progress is kept per job for
/// polling and server-sent events.
///
/// On a SQLite store, jobs live in this server's memory for its lifetime. On a PostgreSQL store
/// they live in the database: any server of the store may claim a queued job, the running server
/// renews its lease as it reports progress, and a job whose server died is claimed again by
/// another once the lease runs out (adding a folder again skips what is already stored, so the
/// job resumes rather than repeats).
final class Jobs: @unchecked Sendable {
    struct Job: Sendable {
        /// queued, running, finished or failed: the same states whether kept in memory or in the database.
        typealias State = SharedJob.State
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
        /// How many times a server started it (over 1: a server died while running it).
        var attempts = 0
        /// Bumped on every change, so event streams send only news.
        var revision = 0

        var isOver: Bool { state == .finished || state == .failed }

        var json: [String: Any] {
            [
                "id": id, "collection": collection, "path": path, "state": state.rawValue, "total": total, "done": done,
                "added": added, "duplicates": duplicates, "failed": failed, "skipped": skipped,
                "failures": failures.map { ["path": $0.path, "reason": $0.reason] },
                "error": error ?? NSNull(), "created_at": Self.timestamp(createdAt),
                "finished_at": finishedAt.map(Self.timestamp) ?? NSNull(), "attempts": attempts,
            ]
        }

        static func timestamp(_ date: Date) -> String {
            date.formatted(.iso8601)
        }

        /// How far it got, as the database keeps it.
        var progress: String {
            let object: [String: Any] = [
                "total": total, "done": done, "added": added, "duplicates": duplicates, "failed": failed, "skipped": skipped,
                "failures": failures.map { ["path": $0.path, "reason": $0.reason] },
            ]
            return String(decoding: (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8),
                          as: UTF8.self)
        }

        init(id: String, collection: String, path: String, createdAt: Date) {
            self.id = id
            self.collection = collection
            self.path = path
            self.createdAt = createdAt
        }

        init(_ shared: SharedJob) {
            self.init(id: shared.id, collection: shared.collection, path: shared.path, createdAt: shared.createdAt)
            state = shared.state
            error = shared.error
            finishedAt = shared.finishedAt
            attempts = shared.attempts
            revision = Int(truncatingIfNeeded: shared.revision)
            restore(progress: shared.progress)
        }

        /// Takes back how far it got, as `progress` wrote it.
        mutating func restore(progress text: String) {
            let progress = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
            total = progress["total"] as? Int ?? 0
            done = progress["done"] as? Int ?? 0
            added = progress["added"] as? Int ?? 0
            duplicates = progress["duplicates"] as? Int ?? 0
            failed = progress["failed"] as? Int ?? 0
            skipped = progress["skipped"] as? Int ?? 0
            failures = (progress["failures"] as? [[String: String]] ?? []).compactMap { entry in
                guard let path = entry["path"], let reason = entry["reason"] else { return nil }
                return (path, reason)
            }
        }
    }

    /// What a job does, as the database keeps it for the server that claims it.
    private struct Options: Codable {
        var recursive: Bool
        var model: String
        /// Region tiles too (absent in jobs queued before tiles existed: off).
        var tiles: Bool?
    }

    private let lock = NSLock()
    private var jobs: [String: Job] = [:]
    private var order: [String] = []
    /// Jobs kept in memory: beyond this, the oldest that are over are forgotten (the list of a
    /// long-running server does not grow without bound; jobs still queued or running stay).
    let keptJobs: Int
    private let queue = DispatchQueue(label: "lookalike.indexing", qos: .utility)
    private let logger = Logger(label: "lookalike.jobs")

    /// The database the jobs live in (a PostgreSQL store), nil to keep them in memory.
    private let shared: PostgresStore?
    /// Without a database: a file the jobs are written to whenever one is queued or ends, so a
    /// job whose server was killed runs again when the server starts (adding a folder again
    /// skips what is already stored, so it resumes rather than repeats).
    private let journal: URL?
    /// What each job kept in memory was asked to do.
    private var optionsOf: [String: Options] = [:]
    /// This server, as it signs the jobs it claims.
    let owner = "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier):\(UUID().uuidString.prefix(8))"
    /// How long a claimed job stays this server's without news from it.
    let lease: TimeInterval
    private let engine: (String) throws -> Engine
    private let roots: [String]
    private let wake = DispatchSemaphore(value: 0)
    private var stopped = false

    /// Jobs kept in memory, or, with `shared`, in that store's database; `engine` opens a
    /// collection's engine, `roots` are the folders this server may index.
    init(shared: PostgresStore? = nil, journal: URL? = nil, lease: TimeInterval = 30, roots: [String] = [], kept: Int = 1_000,
         engine: @escaping (String) throws -> Engine = { _ in throw APIError.notFound("no such collection") }) {
        self.shared = shared
        self.journal = shared == nil ? journal : nil
        keptJobs = max(1, kept)
        self.lease = max(1, lease)
        self.roots = roots
        self.engine = engine
        if shared != nil {
            Thread.detachNewThread { [self] in work() }
        } else {
            resumeFromJournal()
        }
    }

    // MARK: The journal of jobs kept in memory

    private struct Record: Codable {
        var id: String
        var collection: String
        var path: String
        var options: Options
        var state: String
        var createdAt: Date
        var finishedAt: Date?
        var error: String?
        var attempts: Int
        /// How far it got, as `Job.progress` writes it (and the database keeps it).
        var progress: String
    }

    /// Writes every kept job to the journal (a new file, renamed over the old). Runs under `lock`.
    private func saveJournal() {
        guard let journal else { return }
        let records = order.compactMap { id -> Record? in
            guard let job = jobs[id], let options = optionsOf[id] else { return nil }
            return Record(id: id, collection: job.collection, path: job.path, options: options, state: job.state.rawValue,
                          createdAt: job.createdAt, finishedAt: job.finishedAt, error: job.error, attempts: job.attempts,
                          progress: job.progress)
        }
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        do {
            try encoder.encode(records).write(to: journal, options: .atomic)
        } catch {
            logger.warning("cannot write the job journal \(journal.path): \(error)")
        }
    }

    /// Loads the journal at start: jobs that were over are listed as they ended; jobs that were
    /// queued or running when the server stopped are queued again, one attempt more.
    private func resumeFromJournal() {
        guard let journal, let data = try? Data(contentsOf: journal) else { return }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        guard let records = try? decoder.decode([Record].self, from: data) else {
            logger.warning("the job journal \(journal.path) cannot be read; its jobs are not resumed")
            return
        }
        var resumed: [(String, String, Options)] = []
        lock.withLock {
            for record in records {
                var job = Job(id: record.id, collection: record.collection, path: record.path, createdAt: record.createdAt)
                job.state = Job.State(rawValue: record.state) ?? .failed
                job.finishedAt = record.finishedAt
                job.error = record.error
                job.attempts = record.attempts
                if job.isOver {
                    job.restore(progress: record.progress)
                } else {
                    // Run again from the start: what it stored before counts as duplicates now.
                    job.state = .queued
                    job.attempts += 1
                    resumed.append((record.id, record.collection, record.options))
                }
                jobs[record.id] = job
                optionsOf[record.id] = record.options
                order.append(record.id)
            }
            saveJournal()
        }
        let confinement = PathConfinement(roots: roots)
        for (id, collection, options) in resumed {
            guard let path = lock.withLock({ jobs[id]?.path }) else { continue }
            logger.info("resuming job \(id) (\(path)), stopped with its server")
            queue.async { [self] in
                let engine: Engine
                do {
                    engine = try self.engine(collection)
                } catch {
                    finishLocal(id, state: .failed, error: "cannot resume: \(error)")
                    return
                }
                run(id, engine: engine, path: path,
                    options: AddOptions(recursive: options.recursive, model: options.model, allowedRoots: confinement.roots,
                                        tiles: options.tiles ?? false))
            }
        }
    }

    private func finishLocal(_ id: String, state: Job.State, error: String?) {
        update(id) { job in
            job.state = state
            job.error = error
            job.finishedAt = Date()
        }
        lock.withLock { saveJournal() }
    }

    /// Stops claiming shared jobs (a job already running finishes).
    func stop() {
        lock.withLock { stopped = true }
        wake.signal()
    }

    func submit(collection: String, engine: Engine, path: String, options: AddOptions) throws -> Job {
        let id = String(UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(12))
        if let shared {
            let document = Options(recursive: options.recursive, model: options.model, tiles: options.tiles)
            let text = String(decoding: try JSONEncoder().encode(document), as: UTF8.self)
            let job = Job(try shared.enqueueJob(id: id, collection: collection, path: path, options: text))
            wake.signal()
            return job
        }
        var job = Job(id: id, collection: collection, path: path, createdAt: Date())
        job.attempts = 1
        lock.withLock {
            jobs[id] = job
            optionsOf[id] = Options(recursive: options.recursive, model: options.model, tiles: options.tiles)
            order.append(id)
            forgetOldJobs()
            saveJournal()
        }
        queue.async { [self] in run(id, engine: engine, path: path, options: options) }
        return job
    }

    /// The shared worker: claims a job whenever one is waiting (checking every second, at once
    /// when this server queued one), runs it, and claims the next.
    private func work() {
        while !lock.withLock({ stopped }) {
            do {
                if let shared, let claimed = try shared.claimJob(owner: owner, lease: lease) {
                    runShared(claimed, shared: shared)
                    continue
                }
            } catch {
                logger.warning("cannot claim jobs: \(error)")
            }
            _ = wake.wait(timeout: .now() + 1)
        }
    }

    private func runShared(_ claimed: SharedJob, shared: PostgresStore) {
        var job = Job(claimed)
        job.state = .running
        lock.withLock {
            jobs[job.id] = job
            if !order.contains(job.id) { order.append(job.id) }
        }
        let id = job.id
        let options = try? JSONDecoder().decode(Options.self, from: Data(claimed.options.utf8))
        let confinement = PathConfinement(roots: roots)
        @Sendable func finish(_ state: Job.State, error: String?) {
            update(id) { job in
                job.state = state
                job.error = error
                job.finishedAt = Date()
            }
            guard let final = self.job(id, local: true) else { return }
            do {
                try shared.updateJob(id: id, owner: owner, progress: final.progress, state: state,
                                     error: error, lease: lease)
            } catch {
                logger.error("job \(id) ended but the database did not hear of it: \(error)")
            }
        }
        guard let options else { return finish(.failed, error: "the job's options cannot be read by this version") }
        guard confinement.allows(claimed.path) else {
            return finish(.failed, error: "\(claimed.path) is outside the folders this server may index")
        }
        let engine: Engine
        do {
            engine = try self.engine(claimed.collection)
        } catch {
            return finish(.failed, error: "\(error)")
        }
        let reporter = Reporter()
        run(id, engine: engine, path: claimed.path,
            options: AddOptions(recursive: options.recursive, model: options.model, allowedRoots: confinement.roots,
                                        tiles: options.tiles ?? false)) { [self] job, over in
            // Progress reaches the database at most twice a second (which renews the lease); the end always does.
            reporter.lock.withLock {
                guard reporter.held else { return }
                if over {
                    finish(job.state, error: job.error)
                } else if Date().timeIntervalSince(reporter.last) >= 0.5 {
                    reporter.last = Date()
                    do {
                        reporter.held = try shared.updateJob(id: id, owner: owner, progress: job.progress, lease: lease)
                        if !reporter.held { logger.warning("job \(id) was taken over by another server; this one stops reporting it") }
                    } catch {
                        logger.warning("cannot report the progress of job \(id): \(error)")
                    }
                }
            }
        }
    }

    /// When a shared job last reported, and whether this server still holds it.
    private final class Reporter: @unchecked Sendable {
        let lock = NSLock()
        var last = Date.distantPast
        var held = true
    }

    private func run(_ id: String, engine: Engine, path: String, options: AddOptions,
                     report: (@Sendable (Job, _ over: Bool) -> Void)? = nil) {
        update(id) { $0.state = .running }
        let indexed = job(id, local: true).map { ServerMetrics.imagesIndexed($0.collection) }
        do {
            let result = try engine.add([path], options: options) { [self] progress in
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
                if let report, let job = job(id, local: true) { report(job, false) }
            }
            update(id) { job in
                job.state = result.storeError == nil ? .finished : .failed
                job.skipped = result.skipped
                job.error = result.storeError.map { "the store refused a write: \($0)" }
                job.finishedAt = Date()
            }
        } catch {
            update(id) { job in
                job.state = .failed
                job.error = "\(error)"
                job.finishedAt = Date()
            }
        }
        if shared == nil { lock.withLock { saveJournal() } }
        if let report, let job = job(id, local: true) { report(job, true) }
    }

    /// Drops the oldest jobs that are over while more than `keptJobs` are kept. Runs under `lock`.
    private func forgetOldJobs() {
        var excess = order.count - keptJobs
        guard excess > 0 else { return }
        var kept: [String] = []
        kept.reserveCapacity(order.count)
        for id in order {
            if excess > 0, jobs[id]?.isOver ?? true {
                jobs.removeValue(forKey: id)
                optionsOf.removeValue(forKey: id)
                excess -= 1
            } else {
                kept.append(id)
            }
        }
        order = kept
    }

    private func update(_ id: String, _ change: (inout Job) -> Void) {
        lock.withLock {
            guard var job = jobs[id] else { return }
            change(&job)
            job.revision += 1
            jobs[id] = job
        }
    }

    /// A job by id; on a shared store, as the database has it (whichever server runs it).
    func job(_ id: String) throws -> Job? {
        if let shared { return try shared.job(id: id).map(Job.init) }
        return job(id, local: true)
    }

    private func job(_ id: String, local: Bool) -> Job? {
        lock.withLock { jobs[id] }
    }

    /// Newest first.
    func all() throws -> [Job] {
        if let shared { return try shared.jobs(limit: 1_000).map(Job.init) }
        return lock.withLock { order.reversed().compactMap { jobs[$0] } }
    }

    func isBusy(collection: String) -> Bool {
        if let shared {
            return (try? shared.jobs(limit: 1_000).contains { $0.collection == collection && ($0.state == .queued || $0.state == .running) }) ?? true
        }
        return lock.withLock { jobs.values.contains { $0.collection == collection && !$0.isOver } }
    }
}
