import Foundation
import Hummingbird
import Lookalike

/// System routes: the web page and its files, /healthz, /metrics and GET /v1/server.
extension LookalikeServer {
    /// The page, its files, health, metrics and what the server offers.
    func addSystemRoutes(to router: Routes.Group) {
        router.get("/") { _, _ in try self.asset("index.html") }
        for name in assets.files.keys.sorted() {
            router.get(name) { _, _ in try self.asset(name) }
        }
        router.get("/healthz") { _, _ in JSON.response(["status": "ok"]) }
        router.get("/metrics") { request, _ in
            if self.configuration.readKey != nil { try self.keys.check(request, access: .read) }
            try await self.pool.run { try self.updateGauges() }
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: ServerMetrics.text())))
        }
    }

    func addServerRoutes(to v1: Routes.Group) {
        v1.get("server") { _, _ in try self.serverInfo() }
    }

    func asset(_ name: String) throws -> Response {
        guard let asset = assets.files[name] else {
            throw APIError.notFound("\(name) is not installed beside the server binary (set LOOKALIKE_WEB to the folder holding it)")
        }
        var headers: HTTPFields = [.contentType: asset.contentType, .cacheControl: "no-cache"]
        if name == "index.html" {
            headers[.contentSecurityPolicy] = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
                + "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
            headers[.xContentTypeOptions] = "nosniff"
        }
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: asset.bytes)))
    }


    func serverInfo() throws -> Response {
        let registry = try collections.engine(Collections.defaultName).registry()
        // Models that embed images: a text encoder is reached through the image models of its space.
        let models = registry.manifests.filter { registry.isInstalled($0) && $0.modality == .image }.map {
            ["name": $0.name, "dimension": $0.dimension, "description": $0.summary,
             "duplicate_threshold": $0.duplicateThreshold.map { Double($0) as Any } ?? NSNull(),
             "similar_threshold": $0.similarThreshold.map { Double($0) as Any } ?? NSNull()] as [String: Any]
        }
        return JSON.response([
            "version": Self.version,
            "models": models,
            "default_model": ModelManifest.defaultName,
            "index_roots": PathConfinement(roots: configuration.indexRoots).roots,
            "limits": [
                "max_body_bytes": configuration.maxBodyBytes, "max_image_pixels": configuration.maxImagePixels,
                "max_concurrent_inference": configuration.maxConcurrentInference,
            ],
            "auth": ["read_key_required": configuration.readKey != nil, "admin_key_required": configuration.adminKey != nil],
        ])
    }

    func updateGauges() throws {
        for name in try collections.names() {
            if let engine = try? collections.engine(name) {
                let stats = try engine.stats()
                ServerMetrics.collectionItems(name).record(stats.items)
                for (model, count) in stats.vectors { ServerMetrics.indexVectors(name, model: model).record(count) }
            }
        }
    }
}
