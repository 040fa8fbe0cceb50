import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTPTypes

/// The route table as the server registers it: each route goes to Hummingbird's router and is
/// written down, so that a known path asked with another method is answered 405 with `Allow`
/// (Hummingbird alone answers 404, as if the path did not exist).
final class Routes: @unchecked Sendable {
    private let router: Router<BasicRequestContext>
    /// Methods by full path pattern (`/v1/collections/:collection/search`), in registration order.
    private var methods: [(path: String, methods: [HTTPRequest.Method])] = []

    init(router: Router<BasicRequestContext>) {
        self.router = router
    }

    /// Routes under a prefix (`v1`) with the prefix's middleware.
    struct Group {
        let routes: Routes
        let group: RouterGroup<BasicRequestContext>
        let prefix: String

        func get<Output: ResponseGenerator>(
            _ path: String, use handler: @escaping @Sendable (Request, BasicRequestContext) async throws -> Output
        ) {
            on(path, .get, handler)
        }

        func post<Output: ResponseGenerator>(
            _ path: String, use handler: @escaping @Sendable (Request, BasicRequestContext) async throws -> Output
        ) {
            on(path, .post, handler)
        }

        func patch<Output: ResponseGenerator>(
            _ path: String, use handler: @escaping @Sendable (Request, BasicRequestContext) async throws -> Output
        ) {
            on(path, .patch, handler)
        }

        func delete<Output: ResponseGenerator>(
            _ path: String, use handler: @escaping @Sendable (Request, BasicRequestContext) async throws -> Output
        ) {
            on(path, .delete, handler)
        }

        private func on<Output: ResponseGenerator>(
            _ path: String, _ method: HTTPRequest.Method, _ handler: @escaping @Sendable (Request, BasicRequestContext) async throws -> Output
        ) {
            group.on(RouterPath(path), method: method, use: handler)
            routes.record(full(path), method)
        }

        private func full(_ path: String) -> String {
            prefix + "/" + (path.hasPrefix("/") ? String(path.dropFirst()) : path)
        }

        /// The methods not registered on a path answer 405 naming those that are.
        fileprivate func refuse(_ path: String, _ method: HTTPRequest.Method, allowed: [HTTPRequest.Method]) {
            let relative = String(path.dropFirst(prefix.count + 1))
            let allow = allowed.map(\.rawValue).joined(separator: ", ")
            group.on(RouterPath(relative), method: method) { request, _ -> Response in
                var error = APIError(.methodNotAllowed, "method_not_allowed",
                                     "\(request.method.rawValue) is not allowed on \(request.uri.path); allowed: \(allow)")
                error.headers = [.allow: allow]
                throw error
            }
        }
    }

    /// Routes under `prefix` (`v1`; empty for the root), with `middleware` when given.
    func group(_ prefix: String, middleware: (any MiddlewareProtocol<Request, Response, BasicRequestContext>)? = nil) -> Group {
        var group = router.group(RouterPath(prefix))
        if let middleware { group = group.add(middleware: middleware) }
        return Group(routes: self, group: group, prefix: prefix.isEmpty ? "" : "/" + prefix)
    }

    fileprivate func record(_ path: String, _ method: HTTPRequest.Method) {
        if let index = methods.firstIndex(where: { $0.path == path }) {
            methods[index].methods.append(method)
        } else {
            methods.append((path, [method]))
        }
    }

    /// Once every route is in: 405 for the other methods of each path (HEAD is allowed wherever
    /// GET is, as the router answers it).
    func refuseOtherMethods(_ groups: [Group]) {
        let all: [HTTPRequest.Method] = [.get, .head, .post, .put, .patch, .delete]
        for (path, registered) in methods {
            guard let group = groups.filter({ path.hasPrefix($0.prefix + "/") }).max(by: { $0.prefix.count < $1.prefix.count }),
                  !path.contains("*")
            else { continue }
            let allowed = registered.contains(.get) ? registered + [.head] : registered
            for method in all where !allowed.contains(method) {
                group.refuse(path, method, allowed: allowed)
            }
        }
    }
}

/// Answers `Expect: 100-continue` at once, so clients that wait for it before sending a body
/// (curl does for bodies over 1 MB) do not sit out their timeout. Errors found later (size,
/// keys) are answered after the body as usual.
final class ExpectContinueHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data),
           head.headerFields[.expect]?.lowercased() == "100-continue" {
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
        }
        context.fireChannelRead(data)
    }
}
