import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTPTypes

/// How long a client may take over each part of a request, and how many connections the server
/// holds at once. A connection that is too slow is closed, whatever it is sending; a slow client
/// never holds anything another request needs (request bodies are budgeted by bytes received,
/// not by requests begun: `BodyBudget`).
struct ConnectionPolicy: Sendable {
    /// Connections held at once. When full, a new connection closes the one that has waited
    /// longest for a request head; when none is waiting, the new one is closed.
    var maxConnections: Int
    /// From a connection's opening, or the end of its last response, to a complete request head.
    var headTimeout: TimeAmount
    /// A body may take this long, plus one second for every `minimumBodyRate` bytes received...
    var bodyGrace: TimeAmount
    var minimumBodyRate: Int
    /// ...and never longer than this in all.
    var maxBodyTime: TimeAmount

    static func standard(maxConnections: Int, headTimeout: Double) -> ConnectionPolicy {
        ConnectionPolicy(maxConnections: maxConnections, headTimeout: .nanoseconds(Int64(headTimeout * 1e9)),
                         bodyGrace: .seconds(10), minimumBodyRate: 16 * 1024, maxBodyTime: .seconds(120))
    }

    /// When a body whose head came at `head` and of which `bytes` have arrived must be complete.
    func bodyDeadline(head: NIODeadline, bytes: Int) -> NIODeadline {
        let earned = TimeAmount.nanoseconds(Int64((Double(bytes) / Double(max(1, minimumBodyRate)) * 1e9).rounded(.down)))
        return min(head + maxBodyTime, head + bodyGrace + earned)
    }
}

/// The open connections of a server, for the cap and for closing the idlest one when full.
final class ConnectionRegistry: @unchecked Sendable {
    let policy: ConnectionPolicy
    private let lock = NSLock()
    private var open: [ObjectIdentifier: (channel: any Channel, waitingSince: NIODeadline?)] = [:]

    init(policy: ConnectionPolicy) {
        self.policy = policy
    }

    /// Admits a new connection. At the cap, the connection that has waited longest for a request
    /// head is closed to make room; if every connection is busy with a request, the new one is
    /// refused (returns false).
    func admit(_ channel: any Channel, now: NIODeadline) -> Bool {
        let idlest: (any Channel)? = lock.withLock {
            var idlest: (any Channel)?
            if open.count >= policy.maxConnections {
                let waiting = open.compactMap { key, value in value.waitingSince.map { (key, value.channel, $0) } }
                guard let oldest = waiting.min(by: { $0.2 < $1.2 }) else { return nil }
                open.removeValue(forKey: oldest.0)
                idlest = oldest.1
            }
            open[ObjectIdentifier(channel)] = (channel, now)
            return idlest ?? channel
        }
        guard let idlest else { return false }
        if idlest !== channel { idlest.close(promise: nil) }
        return true
    }

    /// Marks a connection as waiting for a request head since `since`, or (nil) busy with one.
    func waiting(_ channel: any Channel, since: NIODeadline?) {
        lock.withLock {
            let id = ObjectIdentifier(channel)
            if open[id] != nil { open[id]?.waitingSince = since }
        }
    }

    func closed(_ channel: any Channel) {
        _ = lock.withLock { open.removeValue(forKey: ObjectIdentifier(channel)) }
    }
}

/// Enforces `ConnectionPolicy` on one connection: the cap when it opens, then a deadline for each
/// request head and body. Sits after the HTTP decoder, so it sees request heads, body chunks and
/// ends, and the response parts written back.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum Phase {
        case waitingForHead(since: NIODeadline)
        case readingBody(head: NIODeadline, bytes: Int)
        /// The request is read; the server is answering. No deadline: inference has its own limits.
        case answering
        case closed
    }

    private let registry: ConnectionRegistry
    private let logger: Logger
    private var phase = Phase.closed
    private var timer: Scheduled<Void>?
    private var registered = false
    /// The answer was written before the request was read to its end (an early refusal).
    private var answeredEarly = false

    init(registry: ConnectionRegistry, logger: Logger) {
        self.registry = registry
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { opened(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        opened(context)
        context.fireChannelActive()
    }

    private func opened(_ context: ChannelHandlerContext) {
        guard !registered, case .closed = phase else { return }
        let now = NIODeadline.now()
        guard registry.admit(context.channel, now: now) else {
            logger.debug("connection refused: \(registry.policy.maxConnections) connections are busy")
            context.close(promise: nil)
            return
        }
        registered = true
        awaitHead(context, since: now)
    }

    /// The connection waits for a request head (it opened, or its last answer went out): the head
    /// has a deadline, and while it waits the connection may be closed to make room.
    private func awaitHead(_ context: ChannelHandlerContext, since now: NIODeadline = .now()) {
        phase = .waitingForHead(since: now)
        registry.waiting(context.channel, since: now)
        arm(context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(context)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish(context)
    }

    private func finish(_ context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        phase = .closed
        if registered {
            registered = false
            registry.closed(context.channel)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            phase = .readingBody(head: .now(), bytes: 0)
            registry.waiting(context.channel, since: nil)
            arm(context)
        case .body(let chunk):
            if case .readingBody(let head, let bytes) = phase {
                phase = .readingBody(head: head, bytes: bytes + chunk.readableBytes)
            }
        case .end:
            if case .readingBody = phase {
                if answeredEarly {
                    answeredEarly = false
                    awaitHead(context)
                } else {
                    phase = .answering
                    timer?.cancel()
                    timer = nil
                }
            }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            switch phase {
            case .answering:
                awaitHead(context)  // the connection may carry another request
            case .readingBody:
                answeredEarly = true  // the body's deadline still holds until it ends
            case .waitingForHead, .closed:
                break
            }
        }
        context.write(data, promise: promise)
    }

    private var deadline: NIODeadline? {
        switch phase {
        case .waitingForHead(let since): return since + registry.policy.headTimeout
        case .readingBody(let head, let bytes): return registry.policy.bodyDeadline(head: head, bytes: bytes)
        case .answering, .closed: return nil
        }
    }

    /// Schedules the check of the current phase's deadline. The body's deadline moves later as
    /// bytes arrive, so a check that fires early schedules itself again.
    private func arm(_ context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        guard let deadline else { return }
        timer = context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            guard let due = self.deadline else { return }
            if due > .now() {
                arm(context)
                return
            }
            logger.debug("closing a connection too slow to send its request")
            context.close(promise: nil)
        }
    }
}

/// Request bodies held in memory by the server, counted in bytes as they arrive: beyond the
/// budget, a request is answered `busy` (503). Many slow or small bodies cost only what they sent.
final class BodyBudget: @unchecked Sendable {
    let limit: Int
    private let lock = NSLock()
    private var held = 0

    init(limit: Int) {
        self.limit = max(1, limit)
    }

    var bytesHeld: Int { lock.withLock { held } }

    /// The bytes one request holds; given back when the request ends.
    final class Reservation: @unchecked Sendable {
        private let budget: BodyBudget
        private let lock = NSLock()
        private var bytes = 0

        fileprivate init(budget: BodyBudget) {
            self.budget = budget
        }

        /// Takes `count` more bytes from the budget, or throws `busy`.
        func grow(_ count: Int) throws {
            guard budget.take(count) else {
                var error = APIError(.serviceUnavailable, "busy", "too many request bodies are being received; retry shortly")
                error.headers = [.retryAfter: "1"]
                throw error
            }
            lock.withLock { bytes += count }
        }

        func release() {
            let count = lock.withLock {
                defer { bytes = 0 }
                return bytes
            }
            budget.give(count)
        }
    }

    /// The reservation of the request being handled (set by `BodyBudgetMiddleware`).
    @TaskLocal static var current: Reservation?

    func reservation() -> Reservation { Reservation(budget: self) }

    fileprivate func take(_ count: Int) -> Bool {
        lock.withLock {
            guard held + count <= limit else { return false }
            held += count
            return true
        }
    }

    fileprivate func give(_ count: Int) {
        lock.withLock { held -= count }
    }
}
