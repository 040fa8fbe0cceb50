import Catalog
import Embedding
import Foundation
import Hummingbird
import Imaging
import Logging
import Lookalike
import Metrics
import NIOPosix
import ServiceLifecycle

/// `lookalike serve`: the JSON API under /v1 (described by openapi.yaml, served at
/// /openapi.yaml), the web page at /, /healthz and /metrics, on Hummingbird.
///
/// ```swift
/// let server = try LookalikeServer(configuration: ServerConfiguration(store: storeURL))
/// try await server.run()
/// ```
public final class LookalikeServer: Sendable {
    public static let version = "1.0.0"

    public let configuration: ServerConfiguration
    let collections: Collections
    let jobs = Jobs()
    let pool: InferencePool
    let fetcher: URLFetcher
    let keys: KeyCheck
    let assets: WebAssets
    let logger: Logger
    /// Image-bearing requests admitted at once, counted before their bodies are read.
    let bodies: Gate
    /// URL fetches in flight.
    let fetches: Gate

    public init(configuration: ServerConfiguration, logger: Logger = Logger(label: "lookalike.server")) throws {
        try configuration.validate()
        self.configuration = configuration
        self.logger = logger
        var engineConfiguration = EngineConfiguration(store: configuration.store, models: configuration.models,
                                                      inferenceThreads: configuration.inferenceThreads
                                                          ?? max(1, ProcessInfo.processInfo.activeProcessorCount / configuration.maxConcurrentInference),
                                                      limits: configuration.imageLimits)
        engineConfiguration.deferSnapshotSaves = true
        collections = Collections(store: configuration.store, engineConfiguration: engineConfiguration)
        pool = InferencePool(threads: configuration.maxConcurrentInference, maxQueued: configuration.maxQueuedInference)
        fetcher = URLFetcher(policy: AddressPolicy(allowing: configuration.urlAllowedNetworks), maxBytes: configuration.maxBodyBytes,
                             maxRedirects: configuration.urlMaxRedirects, timeout: configuration.urlFetchTimeout)
        keys = KeyCheck(adminKey: configuration.adminKey, readKey: configuration.readKey)
        assets = WebAssets.load()
        ServerMetrics.bootstrap
        try ImageDecoder.blockUntrustedLoaders()
        bodies = Gate(limit: configuration.maxConcurrentInference + configuration.maxQueuedInference)
        fetches = Gate(limit: 16)
        // The default collection's store is opened (and made) at once, so a bad store path fails at start.
        _ = try collections.engine(Collections.defaultName)
    }

    /// The Hummingbird application (tests drive it with HummingbirdTesting).
    public func application(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        Application(
            router: router(),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "Lookalike"),
            services: [SnapshotSaver(server: self)],
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
            logger: logger
        )
    }

    /// Serves until SIGINT or SIGTERM (the `SnapshotSaver` service saves changed indexes on its way out).
    public func run(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        try await application(onServerRunning: onServerRunning).runService()
        await pool.shutdown()
    }

    func saveSnapshots() {
        for engine in collections.openEngines() { engine.saveSnapshots() }
    }

    // MARK: Routes

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.middlewares.add(MetricsMiddleware())
        router.middlewares.add(ErrorMiddleware())
        router.middlewares.add(BrowserGuard(openServer: configuration.adminKey == nil))

        router.get("/") { _, _ in try self.asset("index.html") }
        for name in assets.files.keys.sorted() {
            router.get(RouterPath(name)) { _, _ in try self.asset(name) }
        }
        router.get("/healthz") { _, _ in JSON.response(["status": "ok"]) }
        router.get("/metrics") { request, _ in
            if self.configuration.readKey != nil { try self.keys.check(request, access: .read) }
            try await self.pool.run { try self.updateGauges() }
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: ServerMetrics.text())))
        }

        let v1 = router.group("v1").add(middleware: AuthMiddleware(keys: keys))
        v1.get("server") { _, _ in try self.serverInfo() }
        v1.get("collections") { _, _ in try await self.listCollections() }
        v1.post("collections") { request, _ in try await self.createCollection(request) }
        v1.get("collections/:collection") { _, context in
            try await self.collectionInfo(try context.parameters.require("collection"))
        }
        v1.delete("collections/:collection") { _, context in
            let name = try context.parameters.require("collection")
            try self.collections.delete(name) { self.jobs.isBusy(collection: $0) }
            return Response(status: .noContent)
        }
        v1.post("collections/:collection/search") { request, context in
            try await self.search(request, collection: try context.parameters.require("collection"))
        }
        v1.get("collections/:collection/items") { request, context in
            try self.listItems(request, collection: try context.parameters.require("collection"))
        }
        v1.post("collections/:collection/items") { request, context in
            try await self.addItem(request, collection: try context.parameters.require("collection"))
        }
        v1.get("collections/:collection/items/:id") { _, context in
            let (engine, collection, id) = try self.itemRoute(context)
            return JSON.response(self.itemJSON(try self.item(id, in: engine), collection: collection))
        }
        v1.delete("collections/:collection/items/:id") { _, context in
            let (engine, _, id) = try self.itemRoute(context)
            try await self.deleteItem(id, engine: engine)
            return Response(status: .noContent)
        }
        v1.get("collections/:collection/items/:id/image") { _, context in
            let (engine, _, id) = try self.itemRoute(context)
            return try await self.image(id, engine: engine)
        }
        v1.get("collections/:collection/items/:id/thumbnail") { request, context in
            let (engine, _, id) = try self.itemRoute(context)
            return try await self.thumbnail(id, engine: engine, request: request)
        }
        v1.post("collections/:collection/jobs") { request, context in
            try await self.startJob(request, collection: try context.parameters.require("collection"))
        }
        v1.get("jobs") { _, _ in JSON.response(["jobs": self.jobs.all().map(\.json)]) }
        v1.get("jobs/:job") { _, context in
            JSON.response(try self.job(context).json)
        }
        v1.get("jobs/:job/events") { _, context in
            self.jobEvents(try self.job(context).id)
        }
        return router
    }

    private func asset(_ name: String) throws -> Response {
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

    // MARK: Service

    private func serverInfo() throws -> Response {
        let registry = try collections.engine(Collections.defaultName).registry()
        let models = registry.manifests.filter { registry.isInstalled($0) }.map {
            ["name": $0.name, "dimension": $0.dimension, "description": $0.summary] as [String: Any]
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

    private func updateGauges() throws {
        for name in collections.names() {
            if let engine = try? collections.engine(name) {
                let stats = try engine.stats()
                ServerMetrics.collectionItems(name).record(stats.items)
                for (model, count) in stats.vectors { ServerMetrics.indexVectors(name, model: model).record(count) }
            }
        }
    }

    // MARK: Collections

    private func collectionJSON(_ name: String) throws -> [String: Any] {
        let stats = try collections.engine(name).stats()
        return ["name": name, "items": stats.items, "vectors": stats.vectors, "deletable": name != Collections.defaultName]
    }

    private func listCollections() async throws -> Response {
        let names = collections.names()
        let list = try names.map { try self.collectionJSON($0) }
        return JSON.response(["collections": list])
    }

    private func collectionInfo(_ name: String) async throws -> Response {
        JSON.response(try collectionJSON(name))
    }

    private func createCollection(_ request: Request) async throws -> Response {
        struct Body: Decodable { let name: String }
        let body: Body = try decodeJSON(try await readJSONBody(request))
        _ = try collections.create(body.name)
        return JSON.response(try collectionJSON(body.name), status: .created)
    }

    // MARK: Search

    /// Options of a search as JSON (the body of a JSON search, or the `options` part).
    private struct SearchBody: Decodable {
        var url: String?
        var id: String?
        var top: Int?
        var model: String?
        var filter: JSONValue?
        var region: ImageRegion?
        var ef: Int?
        var cascade: [String]?
    }

    private func search(_ request: Request, collection: String) async throws -> Response {
        let engine = try collections.engine(collection)
        let ticket = try bodies.enter()
        defer { bodies.leave(ticket) }
        var options = try searchOptions(Self.query(request))
        let started = DispatchTime.now()
        enum Query { case image([UInt8]), url(String), item(String) }
        let query: Query
        switch try await readBody(request, allowJSON: true) {
        case .json(let data):
            let body: SearchBody = try decodeJSON(data)
            try apply(body, to: &options)
            switch (body.url, body.id) {
            case (let url?, nil): query = .url(url)
            case (nil, let id?): query = .item(id)
            default:
                throw APIError.badRequest("a JSON search names exactly one of \"url\" and \"id\"; to search with an image, send it as the body")
            }
        case .multipart(let parts):
            guard let image = parts["image"]?.bytes, !image.isEmpty else { throw APIError.badRequest("the multipart body has no \"image\" part") }
            if let text = parts["options"]?.bytes { try apply(try decodeJSON(text), to: &options) }
            query = .image(image)
        case .image(let bytes):
            query = .image(bytes)
        }
        try checkModel(options.model, engine: engine)
        try checkCascade(options, engine: engine)
        let settled = options
        let response: SearchResponse
        switch query {
        case .item(let id):
            guard settled.region == nil else {
                throw APIError(.badRequest, "bad_region", "a search by id uses the stored vector; region is for images")
            }
            response = try await pool.run { try engine.search(itemID: id, options: settled) }
        case .url(let url):
            let bytes = try await fetches.within { try await fetcher.fetch(url) }
            response = try await pool.run { try engine.search(bytes: bytes, options: settled) }
        case .image(let bytes):
            response = try await pool.run { try engine.search(bytes: bytes, options: settled) }
        }
        ServerMetrics.requestTimer("search").recordInterval(since: started)
        return JSON.response([
            "model": response.model,
            "took_ms": (response.tookMs * 10).rounded() / 10,
            "searched": response.searched,
            "hits": response.hits.map { hitJSON($0, collection: collection) },
        ])
    }

    static let topRange = 1...1000
    static let efRange = 1...10_000

    /// Options from the query string (filter and region errors become `bad_filter` and `bad_region`
    /// in `APIError.from`).
    private func searchOptions(_ query: [String: Substring]) throws -> SearchOptions {
        var options = SearchOptions(top: 10)
        if let text = query["top"] { options.top = try integer(text, field: "top", range: Self.topRange) }
        if let model = query["model"] { options.model = String(model) }
        if let ef = query["ef"] { options.efSearch = try integer(ef, field: "ef", range: Self.efRange) }
        if let filter = query["filter"] { options.filter = try MetadataFilter(json: String(filter)) }
        if let region = query["region"] { options.region = try ImageRegion(parsing: region) }
        if let cascade = query["cascade"] { options.cascade = cascade.split(separator: ",").map(String.init) }
        return options
    }

    /// Options from a JSON body, over those of the query string.
    private func apply(_ body: SearchBody, to options: inout SearchOptions) throws {
        if let top = body.top { options.top = try checked(top, field: "top", range: Self.topRange) }
        if let model = body.model { options.model = model }
        if let ef = body.ef { options.efSearch = try checked(ef, field: "ef", range: Self.efRange) }
        if let filter = body.filter { options.filter = try MetadataFilter(filter) }
        if let region = body.region { options.region = region }
        if let cascade = body.cascade { options.cascade = cascade }
    }

    static let maxCascade = 4

    /// A cascade names installed models other than the searched one, and every model in it, the
    /// searched one too, has a duplicate threshold to be calibrated against.
    private func checkCascade(_ options: SearchOptions, engine: Engine) throws {
        guard !options.cascade.isEmpty else { return }
        guard options.cascade.count <= Self.maxCascade else {
            throw APIError.badRequest("cascade: at most \(Self.maxCascade) models")
        }
        let registry = try engine.registry()
        for name in [options.model] + options.cascade {
            if name != options.model { try checkModel(name, engine: engine) }
            guard (try? registry.manifest(named: name))?.duplicateThreshold != nil else {
                throw APIError.badRequest("cascade: model \(name) has no duplicate threshold to be calibrated against")
            }
        }
    }

    private func checkModel(_ name: String, engine: Engine) throws {
        let registry = try engine.registry()
        guard let manifest = try? registry.manifest(named: name), registry.isInstalled(manifest) else {
            let installed = registry.manifests.filter { registry.isInstalled($0) }.map(\.name)
            throw APIError(.badRequest, "unknown_model", "no installed model named \(name) (installed: \(installed.joined(separator: ", ")))")
        }
    }

    private func integer(_ text: Substring, field: String, range: ClosedRange<Int>) throws -> Int {
        try checked(Int(text), field: field, range: range)
    }

    private func checked(_ value: Int?, field: String, range: ClosedRange<Int>) throws -> Int {
        guard let value, range.contains(value) else {
            throw APIError.badRequest("\(field) must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    private func hitJSON(_ hit: SearchResponse.Hit, collection: String) -> [String: Any] {
        itemFields(id: hit.id, path: hit.path, width: hit.width, height: hit.height, metadata: hit.metadata, collection: collection)
            .merging(["score": (Double(hit.score) * 1e6).rounded() / 1e6, "duplicate": hit.duplicate]) { $1 }
    }

    // MARK: Items

    func itemJSON(_ item: Item, collection: String) -> [String: Any] {
        itemFields(id: item.id, path: item.sourcePath, width: item.width, height: item.height, metadata: item.metadata,
                   collection: collection)
            .merging(["added_at": Jobs.Job.timestamp(item.addedAt)]) { $1 }
    }

    /// What an item and a hit both tell of the stored image; the source path itself stays on the server.
    private func itemFields(id: String, path: String, width: Int, height: Int, metadata: String?, collection: String) -> [String: Any] {
        let url = "/v1/collections/\(collection)/items/\(id)"
        return [
            "id": id, "width": width, "height": height, "metadata": JSON.object(metadata), "image": url + "/image",
            "thumbnail": url + "/thumbnail", "name": URL(fileURLWithPath: path).lastPathComponent,
        ]
    }

    private func itemRoute(_ context: BasicRequestContext) throws -> (Engine, String, String) {
        let collection = try context.parameters.require("collection")
        let engine = try collections.engine(collection)
        let id = try context.parameters.require("id")
        guard id.count == 16, id.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
            throw APIError.badRequest("an item id is 16 lowercase hex digits")
        }
        return (engine, collection, id)
    }

    private func item(_ id: String, in engine: Engine) throws -> Item {
        guard let item = try engine.item(id: id) else { throw APIError.notFound("no item with id \(id)") }
        return item
    }

    private func listItems(_ request: Request, collection: String) throws -> Response {
        let engine = try collections.engine(collection)
        let query = Self.query(request)
        let limit = try query["limit"].map { try integer($0, field: "limit", range: 1...1000) } ?? 100
        let after = query["after"].map(String.init)
        if let after, after.count > 64 { throw APIError.badRequest("after must be at most 64 characters") }
        let items = try engine.items(after: after, limit: limit + 1)
        let page = items.prefix(limit)
        return JSON.response([
            "items": page.map { itemJSON($0, collection: collection) },
            "next": items.count > limit ? (page.last?.id ?? "") : NSNull(),
        ] as [String: Any])
    }

    private func addItem(_ request: Request, collection: String) async throws -> Response {
        let engine = try collections.engine(collection)
        let ticket = try bodies.enter()
        defer { bodies.leave(ticket) }
        let query = Self.query(request)
        var metadata = query["metadata"].map(String.init)
        var givenName = query["name"].map(String.init)
        if let givenName, givenName.count > 255 { throw APIError.badRequest("name must be at most 255 characters") }
        let bytes: [UInt8]
        switch try await readBody(request, allowJSON: false) {
        case .image(let body):
            bytes = body
        case .multipart(let parts):
            guard let image = parts["image"], !image.bytes.isEmpty else { throw APIError.badRequest("the multipart body has no \"image\" part") }
            bytes = image.bytes
            if givenName == nil { givenName = image.filename }
            if let text = parts["metadata"]?.bytes { metadata = String(decoding: text, as: UTF8.self) }
        case .json:
            throw APIError(.unsupportedMediaType, "unsupported_media_type", "send the image itself (image/* or multipart/form-data)")
        }
        if let metadata, Metadata.object(metadata) == nil {
            throw APIError(.badRequest, "bad_metadata", "metadata must be a JSON object, like {\"color\": \"red\", \"price\": 45}")
        }
        let limits = configuration.imageLimits
        let (name, given) = (givenName, metadata)
        let started = DispatchTime.now()
        let outcome: Engine.UploadOutcome
        do {
            outcome = try await pool.run { try engine.addUpload(bytes, name: name, metadata: given, limits: limits) }
        } catch Engine.UploadError.storeRefused {
            var error = APIError(.serviceUnavailable, "busy", "the store is busy with another write; retry shortly")
            error.headers = [.retryAfter: "2"]
            throw error
        } catch Engine.UploadError.badImage(let reason) {
            throw APIError(.unprocessableContent, "bad_image", reason)
        }
        ServerMetrics.requestTimer("add").recordInterval(since: started)
        switch outcome {
        case .added(let item):
            ServerMetrics.imagesIndexed(collection).increment()
            return JSON.response(["status": "added", "item": itemJSON(item, collection: collection)], status: .created)
        case .duplicate(let item):
            return JSON.response(["status": "duplicate", "item": itemJSON(item, collection: collection)])
        }
    }

    private func deleteItem(_ id: String, engine: Engine) async throws {
        _ = try item(id, in: engine)
        // The engine deletes the files the server made for the item; files indexed from folders stay.
        let removed = try await pool.run { try engine.remove(ids: [id]) }
        guard !removed.isEmpty else { throw APIError.notFound("no item with id \(id)") }
    }

    /// The item's original bytes, read from where it was added from and checked against its hash.
    private func sourceBytes(_ item: Item, engine: Engine) throws -> [UInt8] {
        do {
            return try engine.originalBytes(of: item)
        } catch {
            throw APIError(.gone, "image_gone", "the image file of item \(item.id) is no longer the image that was indexed")
        }
    }

    private func image(_ id: String, engine: Engine) async throws -> Response {
        let item = try item(id, in: engine)
        let bytes = try await pool.run { try self.sourceBytes(item, engine: engine) }  // may be large: off the event loop
        return Response(status: .ok, headers: [.contentType: Self.contentType(sniffing: bytes), .cacheControl: "private, max-age=3600"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    private func thumbnail(_ id: String, engine: Engine, request: Request) async throws -> Response {
        let size = try Self.query(request)["size"].map { try integer($0, field: "size", range: 128...512) } ?? 256
        guard Engine.thumbnailSizes.contains(size) else { throw APIError.badRequest("size must be 128, 256 or 512") }
        let item = try item(id, in: engine)
        let jpeg = try await engine.cachedThumbnail(id: id, size: size).asyncOr {
            try await self.pool.run { try engine.thumbnail(of: item, size: size) { item in try self.sourceBytes(item, engine: engine) } }
        }
        // Ids are content hashes: an id's thumbnail never changes.
        return Response(status: .ok, headers: [.contentType: "image/jpeg", .cacheControl: "private, max-age=31536000, immutable"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: jpeg)))
    }

    // MARK: Jobs

    private func startJob(_ request: Request, collection: String) async throws -> Response {
        struct Body: Decodable {
            let path: String
            let recursive: Bool?
            let model: String?
        }
        let engine = try collections.engine(collection)
        let body: Body = try decodeJSON(try await readJSONBody(request))
        let model = body.model ?? ModelManifest.defaultName
        try checkModel(model, engine: engine)
        let confinement = PathConfinement(roots: configuration.indexRoots)
        guard !confinement.roots.isEmpty else {
            throw APIError(.forbidden, "path_not_allowed", "this server indexes no folders (start it with --index-root)")
        }
        guard !body.path.isEmpty, body.path.count <= 4096, body.path.hasPrefix("/") else {
            throw APIError.badRequest("path must be an absolute path on the server")
        }
        guard let resolved = PathConfinement.resolved(body.path) else {
            throw APIError.notFound("there is no file or folder at \(body.path)")
        }
        guard confinement.allows(resolved) else {
            throw APIError(.forbidden, "path_not_allowed",
                           "\(body.path) is outside the folders this server may index (\(confinement.roots.joined(separator: ", ")))")
        }
        let job = jobs.submit(collection: collection, engine: engine, path: resolved,
                              options: AddOptions(recursive: body.recursive ?? true, model: model, allowedRoots: confinement.roots))
        return JSON.response(job.json, status: .accepted)
    }

    private func job(_ context: BasicRequestContext) throws -> Jobs.Job {
        let id = try context.parameters.require("job")
        guard let job = jobs.job(id) else { throw APIError.notFound("no job with id \(id)") }
        return job
    }

    /// Server-sent events: the job as it changes (at most five times a second), then `end`.
    private func jobEvents(_ id: String) -> Response {
        let jobs = self.jobs
        let body = ResponseBody { writer in
            var sent = -1
            var quiet = 0
            while let job = jobs.job(id), !Task.isCancelled, !Task.isShuttingDownGracefully {
                if job.revision != sent || job.isOver {
                    sent = job.revision
                    quiet = 0
                    let event = "event: \(job.isOver ? "end" : "progress")\ndata: \(String(decoding: JSON.data(job.json), as: UTF8.self))\n\n"
                    try await writer.write(ByteBuffer(string: event))
                } else {
                    quiet += 1
                    if quiet % 75 == 0 { try await writer.write(ByteBuffer(string: ": still working\n\n")) }  // every 15 s
                }
                if job.isOver { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }

    // MARK: Bodies

    enum Body {
        case json([UInt8])
        case multipart([String: Multipart.Part])
        case image([UInt8])
    }

    /// Reads the body, within the size limit, by its content type.
    private func readBody(_ request: Request, allowJSON: Bool) async throws -> Body {
        let type = request.headers[.contentType].map { $0.lowercased() } ?? ""
        let mediaType = type.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        if mediaType == "application/json" && allowJSON {
            return .json(try await collect(request))
        }
        if mediaType == "multipart/form-data" {
            guard let boundary = Self.parameter("boundary", in: request.headers[.contentType] ?? "") else {
                throw APIError.badRequest("multipart/form-data without a boundary")
            }
            return .multipart(try Multipart.parts(try await collect(request), boundary: boundary))
        }
        if mediaType.hasPrefix("image/") || mediaType == "application/octet-stream" || mediaType.isEmpty {
            return .image(try await collect(request))
        }
        let accepted = allowJSON ? "image/*, application/octet-stream, multipart/form-data or application/json"
            : "image/*, application/octet-stream or multipart/form-data"
        throw APIError(.unsupportedMediaType, "unsupported_media_type", "cannot read a \(mediaType) body here; send \(accepted)")
    }

    private func readJSONBody(_ request: Request) async throws -> [UInt8] {
        let type = request.headers[.contentType]?.lowercased() ?? ""
        guard type.hasPrefix("application/json") else {
            throw APIError(.unsupportedMediaType, "unsupported_media_type", "send a JSON body (Content-Type: application/json)")
        }
        return try await collect(request)
    }

    /// The body, within the size limit, copied once out of its buffer.
    private func collect(_ request: Request) async throws -> [UInt8] {
        Array(try await request.body.collect(upTo: configuration.maxBodyBytes).readableBytesView)
    }

    private func decodeJSON<T: Decodable>(_ bytes: [UInt8]) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(bytes))
        } catch let error as ImageRegion.Invalid {
            throw error  // answered as bad_region
        } catch let error as DecodingError {
            throw APIError.badRequest(Self.explain(error))
        } catch {
            throw APIError.badRequest("the body is not valid JSON")
        }
    }

    /// A decoding error as a sentence naming the field.
    static func explain(_ error: DecodingError) -> String {
        func path(_ keys: [CodingKey]) -> String {
            keys.isEmpty ? "the body" : "field \"" + keys.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".") + "\""
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "missing field \"\((context.codingPath + [key]).map(\.stringValue).joined(separator: "."))\""
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            return "\(path(context.codingPath)) must be \(Self.typeName(type))"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "the body is not valid JSON" : "\(path(context.codingPath)) is not valid"
        @unknown default:
            return "the body does not have the expected fields"
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type, is Int64.Type: return "a whole number"
        case is Double.Type, is Float.Type: return "a number"
        case is Bool.Type: return "true or false"
        default: return "an object of the documented form"
        }
    }

    static func parameter(_ name: String, in header: String) -> String? {
        for part in header.split(separator: ";").dropFirst() {
            let pair = part.split(separator: "=", maxSplits: 1)
            if pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces).lowercased() == name {
                let value = pair[1].trimmingCharacters(in: .whitespaces)
                return value.hasPrefix("\"") && value.hasSuffix("\"") && value.count >= 2 ? String(value.dropFirst().dropLast()) : value
            }
        }
        return nil
    }

    /// The query string's parameters, decoded as HTML forms encode them: `+` is a space, then
    /// percent-escapes. The first value of a repeated name wins.
    static func query(_ request: Request) -> [String: Substring] {
        var values: [String: Substring] = [:]
        for pair in (request.uri.query ?? "").split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                let spaced = text.replacingOccurrences(of: "+", with: " ")
                return spaced.removingPercentEncoding ?? spaced
            }
            let name = decode(parts[0])
            if values[name] == nil { values[name] = Substring(parts.count == 2 ? decode(parts[1]) : "") }
        }
        return values
    }

    static func contentType(sniffing bytes: [UInt8]) -> String {
        func starts(_ prefix: [UInt8], at offset: Int = 0) -> Bool {
            bytes.count >= offset + prefix.count && Array(bytes[offset..<offset + prefix.count]) == prefix
        }
        if starts([0xFF, 0xD8, 0xFF]) { return "image/jpeg" }
        if starts([0x89, 0x50, 0x4E, 0x47]) { return "image/png" }
        if starts(Array("GIF8".utf8)) { return "image/gif" }
        if starts(Array("RIFF".utf8)) && starts(Array("WEBP".utf8), at: 8) { return "image/webp" }
        if starts(Array("ftypavif".utf8), at: 4) { return "image/avif" }
        if starts(Array("ftyphei".utf8), at: 4) || starts(Array("ftypmif1".utf8), at: 4) { return "image/heic" }
        if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) { return "image/tiff" }
        if starts(Array("BM".utf8)) { return "image/bmp" }
        return "application/octet-stream"
    }
}

/// Writes changed HNSW snapshots every `snapshotInterval` seconds, and once more at shutdown.
struct SnapshotSaver: Service {
    let server: LookalikeServer

    func run() async throws {
        let interval = server.configuration.snapshotInterval
        // Writing a snapshot blocks for as long as the file takes: on NIO's blocking-work threads,
        // not on the threads of Swift's concurrency.
        let save = { try? await NIOThreadPool.singleton.runIfActive { server.saveSnapshots() } }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(interval)) }
            await save()
        }
        await save()
    }
}

extension Optional {
    /// The value, or what `make` gives when there is none.
    func asyncOr(_ make: () async throws -> Wrapped) async rethrows -> Wrapped {
        if let value = self { return value }
        return try await make()
    }
}
