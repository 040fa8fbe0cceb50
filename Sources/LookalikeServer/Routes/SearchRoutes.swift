import Foundation
import Hummingbird
import Lookalike

/// Search: by an uploaded image, a URL or a stored item, with options from the query string and
/// a JSON body; every form becomes one `Query` for `Engine.search(_:options:)`.
extension LookalikeServer {
    func addSearchRoutes(to v1: RouterGroup<BasicRequestContext>) {
        v1.post("collections/:collection/search") { request, context in
            try await self.search(request, collection: try context.parameters.require("collection"))
        }
    }


    /// Options of a search as JSON (the body of a JSON search, or the `options` part).
    struct SearchBody: Decodable {
        var url: String?
        var id: String?
        var top: Int?
        var model: String?
        var filter: JSONValue?
        var region: ImageRegion?
        var ef: Int?
        var cascade: [String]?
    }

    func search(_ request: Request, collection: String) async throws -> Response {
        let engine = try collections.engine(collection)
        let ticket = try bodies.enter()
        defer { bodies.leave(ticket) }
        var options = try searchOptions(Self.query(request))
        let started = DispatchTime.now()
        /// A URL is fetched after the checks, so nothing is downloaded for a request that cannot succeed.
        enum Asked { case query(Query), url(String) }
        let asked: Asked
        switch try await readBody(request, allowJSON: true) {
        case .json(let data):
            let body: SearchBody = try decodeJSON(data)
            try apply(body, to: &options)
            switch (body.url, body.id) {
            case (let url?, nil): asked = .url(url)
            case (nil, let id?): asked = .query(.item(id))
            default:
                throw APIError.badRequest("a JSON search names exactly one of \"url\" and \"id\"; to search with an image, send it as the body")
            }
        case .multipart(let parts):
            guard let image = parts["image"]?.bytes, !image.isEmpty else { throw APIError.badRequest("the multipart body has no \"image\" part") }
            if let text = parts["options"]?.bytes { try apply(try decodeJSON(text), to: &options) }
            asked = .query(.image(bytes: image))
        case .image(let bytes):
            asked = .query(.image(bytes: bytes))
        }
        try checkModel(options.model, engine: engine)
        try checkCascade(options, engine: engine)
        let settled = options
        let query: Query
        switch asked {
        case .query(let given):
            guard given.isImage || settled.region == nil else {
                throw APIError(.badRequest, "bad_region", "a search by id uses the stored vector; region is for images")
            }
            query = given
        case .url(let url):
            query = .image(bytes: try await fetches.within { try await fetcher.fetch(url) })
        }
        let response = try await pool.run { try engine.search(query, options: settled) }
        ServerMetrics.requestTimer("search").recordInterval(since: started)
        return JSON.response(searchJSON(response, collection: collection))
    }

    static let topRange = 1...1000
    static let efRange = 1...10_000

    /// Options from the query string (filter and region errors become `bad_filter` and `bad_region`
    /// in `APIError.from`).
    func searchOptions(_ query: [String: Substring]) throws -> SearchOptions {
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
    func apply(_ body: SearchBody, to options: inout SearchOptions) throws {
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
    func checkCascade(_ options: SearchOptions, engine: Engine) throws {
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

    func checkModel(_ name: String, engine: Engine) throws {
        let registry = try engine.registry()
        guard let manifest = try? registry.manifest(named: name), registry.isInstalled(manifest) else {
            let installed = registry.manifests.filter { registry.isInstalled($0) }.map(\.name)
            throw APIError(.badRequest, "unknown_model", "no installed model named \(name) (installed: \(installed.joined(separator: ", ")))")
        }
    }
}
