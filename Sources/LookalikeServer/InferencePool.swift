import Foundation
import NIOPosix

/// Runs the blocking work of requests (decoding, inference, thumbnails) on threads of its own,
/// at most `threads` at once, so the event loops never block. When more than `maxQueued`
/// requests already wait, a new one is refused as `busy` instead of piling up.
final class InferencePool: @unchecked Sendable {
    private let pool: NIOThreadPool
    private let maxQueued: Int
    private let threads: Int
    private let lock = NSLock()
    private var waitingOrRunning = 0

    init(threads: Int, maxQueued: Int) {
        self.threads = threads
        self.maxQueued = maxQueued
        pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
    }

    func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        let admitted = lock.withLock {
            if waitingOrRunning >= threads + maxQueued { return false }
            waitingOrRunning += 1
            return true
        }
        guard admitted else {
            var error = APIError(.serviceUnavailable, "busy", "too many requests are waiting for inference; retry shortly")
            error.headers = [.retryAfter: "1"]
            throw error
        }
        defer { lock.withLock { waitingOrRunning -= 1 } }
        return try await pool.runIfActive(work)
    }

    func shutdown() async {
        try? await pool.shutdownGracefully()
    }
}
