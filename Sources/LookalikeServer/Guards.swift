import Foundation
import HTTPTypes
import Hummingbird

/// A counter of requests admitted at once: beyond `limit`, a request is refused as `busy` (503)
/// before anything of it is read or done.
final class Gate: @unchecked Sendable {
    private let limit: Int
    private let busyMessage: String
    private let lock = NSLock()
    private var inside = 0

    struct Ticket {}

    init(limit: Int, busyMessage: String = "too many requests are in progress; retry shortly") {
        self.limit = max(1, limit)
        self.busyMessage = busyMessage
    }

    /// How many are inside now.
    var occupied: Int { lock.withLock { inside } }

    func enter() throws -> Ticket {
        let admitted = lock.withLock {
            if inside >= limit { return false }
            inside += 1
            return true
        }
        guard admitted else {
            var error = APIError(.serviceUnavailable, "busy", busyMessage)
            error.headers = [.retryAfter: "1"]
            throw error
        }
        return Ticket()
    }

    func leave(_ ticket: Ticket) {
        lock.withLock { inside -= 1 }
    }

    /// A ticket given back when the last reference to it goes, for a response body that streams
    /// after its handler returned (and may be dropped unread when the client leaves first).
    final class Held: Sendable {
        private let gate: Gate
        private let ticket: Ticket

        init(_ gate: Gate) throws {
            self.gate = gate
            ticket = try gate.enter()
        }

        deinit { gate.leave(ticket) }
    }

    /// Runs `body` once admitted, and leaves when it ends, however it ends.
    func within<T>(_ body: () async throws -> T) async throws -> T {
        let ticket = try enter()
        defer { leave(ticket) }
        return try await body()
    }
}

/// What a browser elsewhere must not do to a server on this machine:
/// - a page of another site posting to it (a "simple" cross-origin request needs no preflight):
///   a write whose `Origin` is not the server's own is refused, and so is `Origin: null` (a
///   sandboxed frame, a `file:` page, a data URL: never the server's own page);
/// - DNS rebinding (a name of the attacker's that resolves to 127.0.0.1): a server listening on
///   a loopback address answers only requests whose `Host` is a loopback name or address, keys or
///   no keys (a key stops writes, but without a read key a rebound page could still read).
struct BrowserGuard<Context: RequestContext>: RouterMiddleware {
    /// Whether the server listens on a loopback address only.
    let loopbackServer: Bool

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let host = request.head.authority
        if loopbackServer, let host, !Self.isLoopback(authority: host) {
            throw APIError(.forbidden, "forbidden", "a server on a loopback address answers only requests to loopback names (Host was \(host))")
        }
        if request.method != .get && request.method != .head, let origin = request.headers[.origin] {
            let originHost = origin == "null" ? nil : URL(string: origin).map { ($0.host ?? "") + ($0.port.map { ":\($0)" } ?? "") }
            guard let host, let originHost, originHost.lowercased() == host.lowercased() else {
                throw APIError(.forbidden, "forbidden", "cross-site requests may not change anything")
            }
        }
        return try await next(request, context)
    }

    /// A loopback host (`ServerConfiguration.isLoopback`), with or without a port; IPv6 in brackets.
    static func isLoopback(authority: String) -> Bool {
        var name = authority.lowercased()
        if name.hasPrefix("[") {
            name = String(name.dropFirst().prefix { $0 != "]" })
        } else if let colon = name.lastIndex(of: ":") {
            name = String(name[..<colon])
        }
        return ServerConfiguration.isLoopback(name)
    }
}
