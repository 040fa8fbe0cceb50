import Foundation

/// A background job as the database keeps it for every server of the store. What the job does
/// and how far it got are JSON documents of the server's own (`options`, `progress`).
public struct SharedJob: Sendable, Equatable {
    public enum State: String, Sendable { case queued, running, finished, failed }

    public let id: String
    public let collection: String
    public let path: String
    public let options: String
    public let state: State
    public let progress: String
    public let error: String?
    /// The server running it (or that ran it last).
    public let owner: String?
    /// How many times a server claimed it: more than one means a server died while running it.
    public let attempts: Int
    public let revision: Int64
    public let createdAt: Date
    public let finishedAt: Date?
}

/// The job queue shared by all servers of a PostgreSQL store.
extension PostgresStore {
    private static let jobColumns = """
        id, collection, path, options::text, state, progress::text, error, owner, attempts, revision,
        extract(epoch FROM created_at)::float8, extract(epoch FROM finished_at)::float8
        """

    private static func jobs(_ rows: ResultSet) -> [SharedJob] {
        (0..<rows.count).compactMap { row in
            guard let id = rows.string(row, 0), let collection = rows.string(row, 1), let path = rows.string(row, 2),
                  let options = rows.string(row, 3), let state = rows.string(row, 4).flatMap(SharedJob.State.init(rawValue:)),
                  let progress = rows.string(row, 5), let attempts = rows.int(row, 8),
                  let revision = rows.string(row, 9).flatMap({ Int64($0) }), let created = rows.double(row, 10) else { return nil }
            return SharedJob(id: id, collection: collection, path: path, options: options, state: state, progress: progress,
                             error: rows.string(row, 6), owner: rows.string(row, 7), attempts: attempts, revision: revision,
                             createdAt: Date(timeIntervalSince1970: created),
                             finishedAt: rows.double(row, 11).map { Date(timeIntervalSince1970: $0) })
        }
    }

    /// Queues a job for whichever server claims it first.
    public func enqueueJob(id: String, collection: String, path: String, options: String) throws -> SharedJob {
        try pool.with { connection in
            let rows = try connection.execute("""
                INSERT INTO job (id, collection, path, options, state) VALUES ($1, $2, $3, $4::jsonb, 'queued')
                RETURNING \(Self.jobColumns)
                """, [.text(id), .text(collection), .text(path), .text(options)])
            guard let job = Self.jobs(rows).first else {
                throw PostgresStoreError.failed(statement: "\"INSERT INTO job…\"", message: "no row came back", sqlState: nil)
            }
            return job
        }
    }

    /// Takes the oldest job that is queued, or running on a server whose lease ran out, for
    /// `owner`, leased for `lease` seconds; nil when there is none. Two servers never get one job.
    public func claimJob(owner: String, lease: TimeInterval) throws -> SharedJob? {
        try pool.with { connection in
            Self.jobs(try connection.execute("""
                UPDATE job SET state = 'running', owner = $1, lease_until = clock_timestamp() + make_interval(secs => $2::float8),
                    attempts = attempts + 1, revision = revision + 1
                WHERE id = (SELECT id FROM job WHERE state = 'queued' OR (state = 'running' AND lease_until < clock_timestamp())
                            ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
                RETURNING \(Self.jobColumns)
                """, [.text(owner), .text(String(lease))])).first
        }
    }

    /// Records a running job's progress and renews its lease; with `state` finished or failed,
    /// ends it. Returns false when `owner` no longer holds the job (its lease ran out and another
    /// server claimed it): the caller should stop reporting.
    @discardableResult
    public func updateJob(id: String, owner: String, progress: String, state: SharedJob.State = .running,
                          error: String? = nil, lease: TimeInterval) throws -> Bool {
        try pool.with { connection in
            try connection.execute("""
                UPDATE job SET progress = $3::jsonb, state = $4, error = $5, revision = revision + 1,
                    lease_until = clock_timestamp() + make_interval(secs => $6::float8),
                    finished_at = CASE WHEN $4 IN ('finished', 'failed') THEN clock_timestamp() END
                WHERE id = $1 AND owner = $2 AND state = 'running'
                """, [.text(id), .text(owner), .text(progress), .text(state.rawValue), .optional(error), .text(String(lease))]).affected == 1
        }
    }

    public func job(id: String) throws -> SharedJob? {
        try pool.with(retry: true) { connection in
            Self.jobs(try connection.execute("SELECT \(Self.jobColumns) FROM job WHERE id = $1", [.text(id)])).first
        }
    }

    /// The newest `limit` jobs, newest first.
    public func jobs(limit: Int) throws -> [SharedJob] {
        try pool.with(retry: true) { connection in
            Self.jobs(try connection.execute("SELECT \(Self.jobColumns) FROM job ORDER BY created_at DESC LIMIT $1", [.int(max(0, limit))]))
        }
    }
}
