import Foundation
import NIOPosix

/// Runs the blocking work of requests (decoding, inference, thumbnails) on threads of its own,
/// at most `threads` at once, so the event loops never block. When more than `maxQueued`
/// requests already wait, a new one is refused as `busy` instead of piling up.
final class InferencePool: Sendable {
    private let pool: NIOThreadPool
    private let admission: Gate

    init(threads: Int, maxQueued: Int) {
        admission = Gate(limit: threads + maxQueued, busyMessage: "too many requests are waiting for inference; retry shortly")
        pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
    }

    func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await admission.within { try await pool.runIfActive(work) }
    }

    func shutdown() async {
        try? await pool.shutdownGracefully()
    }
}
