import Foundation
import HTTPTypes
import Hummingbird

/// API keys: the admin key allows everything; the read key allows reads. The comparison takes
/// the same time whatever the bytes, so timing does not tell how much of a guess was right.
struct KeyCheck: Sendable {
    let adminKey: String?
    let readKey: String?
    /// Wrong keys answered per second, server-wide: guessing is slowed to a crawl, and a client
    /// with the right key never meets the throttle (it counts failures only).
    let wrongKeys = FailureThrottle(burst: 20, perSecond: 10)

    /// Keys shorter than this are refused at start: they could be guessed.
    static let minimumLength = 16

    enum Access { case read, write }

    /// Throws `unauthorized` (no key, or a wrong one) or `forbidden` (a read key used to write).
    func check(_ request: Request, access: Access) throws {
        let given = Self.presentedKey(request)
        switch access {
        case .write:
            guard let adminKey else { return }
            if let given, Self.constantTimeEqual(given, adminKey) { return }
            if let given, let readKey, Self.constantTimeEqual(given, readKey) {
                throw APIError(.forbidden, "forbidden", "the read key cannot change anything; use the admin key")
            }
            throw given == nil ? unauthorized("this request needs the admin key (Authorization: Bearer <key>)") : wrongKey()
        case .read:
            guard let readKey else { return }
            if let given, Self.constantTimeEqual(given, readKey) || adminKey.map({ Self.constantTimeEqual(given, $0) }) == true { return }
            throw given == nil ? unauthorized("this server needs a key to read (Authorization: Bearer <key>)") : wrongKey()
        }
    }

    /// A key was given and is not one of the server's: 401, or 429 once wrong keys come too fast.
    private func wrongKey() -> APIError {
        guard wrongKeys.allow() else {
            var error = APIError(.tooManyRequests, "too_many_wrong_keys", "too many wrong keys were tried; retry in a second")
            error.headers = [.retryAfter: "1"]
            return error
        }
        return unauthorized("wrong key")
    }

    private func unauthorized(_ message: String) -> APIError {
        var error = APIError(.unauthorized, "unauthorized", message)
        error.headers = [.wwwAuthenticate: "Bearer realm=\"lookalike\""]
        return error
    }

    /// `Authorization: Bearer <key>`, or `X-API-Key: <key>`.
    static func presentedKey(_ request: Request) -> String? {
        if let authorization = request.headers[.authorization] {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" { return String(parts[1]).trimmingSpaces }
            return nil
        }
        if let name = HTTPField.Name("X-API-Key"), let key = request.headers[name] { return key.trimmingSpaces }
        return nil
    }

    /// Compares every byte of the longer input whatever differs, and the lengths too.
    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        let length = max(x.count, y.count)
        var difference = UInt64(x.count ^ y.count)
        for i in 0..<length {
            let left = i < x.count ? x[i] : 0
            let right = i < y.count ? y[i] : 0
            difference |= UInt64(left ^ right)
        }
        return difference == 0
    }
}

/// A token bucket for failures: `burst` at once, then `perSecond`.
final class FailureThrottle: @unchecked Sendable {
    private let burst: Double
    private let perSecond: Double
    private let lock = NSLock()
    private var tokens: Double
    private var last = ContinuousClock.now

    init(burst: Int, perSecond: Int) {
        self.burst = Double(burst)
        self.perSecond = Double(perSecond)
        tokens = Double(burst)
    }

    /// Whether one more failure may be answered as such now (and counts it).
    func allow() -> Bool {
        lock.withLock {
            let now = ContinuousClock.now
            let elapsed = now - last
            last = now
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            tokens = min(burst, tokens + seconds * perSecond)
            guard tokens >= 1 else { return false }
            tokens -= 1
            return true
        }
    }
}

/// Checks keys on every route of the /v1 group (installed on the group, so no spelling of a path
/// that the router resolves into the group escapes it): a search (POST .../search) and keeping a
/// query image for one (POST /v1/queries) are reads; other POSTs, and PUTs, PATCHes and DELETEs,
/// are writes.
struct AuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let keys: KeyCheck

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let last = request.uri.path.split(separator: "/").last
        let isWrite = (request.method == .post && last != "search" && request.uri.path != "/v1/queries") || request.method == .delete
            || request.method == .put || request.method == .patch
        try keys.check(request, access: isWrite ? .write : .read)
        return try await next(request, context)
    }
}

extension String {
    var trimmingSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
