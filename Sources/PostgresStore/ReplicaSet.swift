import Foundation

/// The streaming replicas a store may search on, each checked at most every few seconds: a
/// replica that cannot be reached or replays the primary's changes more than `maxLag` seconds
/// late is left out until a later check finds it well again.
final class ReplicaSet: @unchecked Sendable {
    final class Replica: @unchecked Sendable {
        let pool: ConnectionPool
        let display: String
        /// When the last check ran, and whether the replica passed it.
        var checkedAt = Date.distantPast
        var usable = false

        init(pool: ConnectionPool, display: String) {
            self.pool = pool
            self.display = display
        }
    }

    let replicas: [Replica]
    let maxLag: TimeInterval
    /// How long a check's verdict holds.
    let interval: TimeInterval = 5
    private let lock = NSLock()
    private var next = 0

    init(_ pools: [(ConnectionPool, String)], maxLag: TimeInterval) {
        replicas = pools.map { Replica(pool: $0.0, display: $0.1) }
        self.maxLag = max(0, maxLag)
    }

    /// The replicas to try for one read, the next in turn first (reads are spread over them).
    func usable() -> [Replica] {
        guard !replicas.isEmpty else { return [] }
        let start = lock.withLock {
            next = (next + 1) % replicas.count
            return next
        }
        let ordered = Array(replicas[start...] + replicas[..<start])
        return ordered.filter(check)
    }

    func markDown(_ replica: Replica) {
        lock.withLock {
            replica.usable = false
            replica.checkedAt = Date()
        }
    }

    /// Whether a replica is reachable and current, from a check at most `interval` old.
    private func check(_ replica: Replica) -> Bool {
        let (fresh, verdict) = lock.withLock { (Date().timeIntervalSince(replica.checkedAt) < interval, replica.usable) }
        if fresh { return verdict }
        // Seconds behind: 0 when everything received is replayed (an idle primary sends nothing),
        // else the age of the last transaction replayed. A server that is not in recovery (a
        // promoted replica) is current by definition.
        let lag = try? replica.pool.with { connection -> Double? in
            let rows = try connection.execute("""
                SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0
                            WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                            ELSE coalesce(extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()), 1e9) END::float8
                """)
            return rows.double(0, 0)
        }
        let usable = (lag ?? nil).map { $0 <= maxLag } ?? false
        lock.withLock {
            replica.usable = usable
            replica.checkedAt = Date()
        }
        return usable
    }
}
