import Foundation
import HTTPForms
import Hummingbird
import Lookalike

/// Search: by an uploaded image, a URL or a stored item, with options from the query string and
/// a JSON body; every form becomes one `Query` for `Engine.search(_:options:)`.
extension LookalikeServer {
    func addSearchRoutes(to v1: Routes.Group) {
        v1.post("collections/:collection/search") { request, context in
            try await self.search(request, collection: try context.parameters.require("collection"))
        }
        v1.get("collections/:collection/duplicates") { request, context in
            try await self.duplicates(request, collection: try context.parameters.require("collection"))
        }
        v1.post("queries") { request, _ in try await self.keepQuery(request) }
        v1.get("queries/:query/image") { _, context in try self.keptQueryImage(try context.parameters.require("query")) }
    }

    /// Keeps an uploaded query image for a while (`QueryImages`), so a search by it has an address.
    func keepQuery(_ request: Request) async throws -> Response {
        let image: [UInt8]
        switch try await readBody(request, allowJSON: false) {
        case .image(let bytes): image = bytes
        case .multipart(let parts): image = try Self.part("image", of: parts).bytes
        case .json: throw APIError.badRequest("send the query image as the body")
        }
        guard !image.isEmpty else { throw APIError(.unprocessableContent, "bad_image", "the body is empty: send an image") }
        guard Self.contentType(sniffing: image).hasPrefix("image/") else {
            throw APIError(.unprocessableContent, "bad_image", "not an image in a supported format (JPEG, PNG, WebP, GIF, TIFF, HEIC/AVIF, BMP)")
        }
        let (id, expires) = queryImages.keep(image)
        return JSON.response(["id": id, "expires_at": ISO8601DateFormatter().string(from: expires),
                              "image": "/v1/queries/\(id)/image"], status: .created)
    }

    func keptQueryImage(_ id: String) throws -> Response {
        let bytes = try keptQuery(id)
        return Response(status: .ok, headers: [.contentType: Self.contentType(sniffing: bytes), .cacheControl: "private, max-age=3600",
                                               .xContentTypeOptions: "nosniff"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    func keptQuery(_ id: String) throws -> [UInt8] {
        guard let bytes = queryImages.image(id) else {
            throw APIError(.notFound, "query_expired",
                           "the query image \(id) is no longer kept (query images are kept for an hour); search with the image again")
        }
        return bytes
    }

    /// The collection's near-duplicate groups (`Engine.duplicateGroups`): `model` (default: the
    /// collection's default model, a tuned one's base), `threshold` and `neighbours` from the query string.
    func duplicates(_ request: Request, collection: String) async throws -> Response {
        let engine = try collections.engine(collection)
        let query = Self.query(request)
        var options = DuplicateOptions()
        options.model = try query["model"].map(String.init) ?? engine.defaultAddModel()
        if let threshold = try query.number("threshold", range: SearchForm.scoreRange) { options.threshold = threshold }
        if let neighbours = try query.integer("neighbours", range: 1...100) { options.neighbours = neighbours }
        try checkModel(options.model, engine: engine)
        let asked = options
        let report = try await pool.run { try engine.duplicateGroups(asked) }
        return JSON.response(duplicatesJSON(report, collection: collection))
    }


    /// Options of a search as JSON (the body of a JSON search, or the `options` part).
    struct SearchBody: RequestBody {
        var url: String?
        var id: String?
        /// A query image kept by POST /v1/queries.
        var query: String?
        /// Words, for a model made of words (`words` unless `model` names another).
        var text: String?
        var top: Int?
        var model: String?
        var filter: JSONValue?
        var region: ImageRegion?
        var ef: Int?
        var cascade: [String]?
        var like: [String]?
        var unlike: [String]?
        var collapse: Bool?
        var diversity: Float?
        var expand: Int?
        var minScore: Float?
        var feedback: Bool?
        var tiles: Bool?
        var crops: Bool?
        /// Give `text` to the text model as it is (no colours, prices or order read from it).
        var literal: Bool?
        /// The metadata field prices are kept in, for price phrases.
        var priceField: String?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case url, id, query, text, top, model, filter, region, ef, cascade, like, unlike, collapse, diversity, expand, feedback, literal, tiles, crops
            case minScore = "min_score", priceField = "price_field"
        }

        static let fields = CodingKeys.allCases.map(\.rawValue)
        static let nestedFields = ["region": ["x", "y", "width", "height"]]

        /// The stored items that refine the query ("more like these, not like those").
        var examples: (like: [String], unlike: [String])? {
            let like = like ?? [], unlike = unlike ?? []
            return like.isEmpty && unlike.isEmpty ? nil : (like, unlike)
        }
    }

    func search(_ request: Request, collection: String) async throws -> Response {
        let engine = try collections.engine(collection)
        var options = try searchOptions(Self.query(request))
        // The collection's default model, unless the query string or the body names one.
        var modelNamed = Self.query(request)["model"] != nil
        let started = DispatchTime.now()
        /// A URL is fetched after the checks, so nothing is downloaded for a request that cannot succeed.
        enum Asked { case query(Query), url(String) }
        let asked: Asked
        var examples: (like: [String], unlike: [String])?
        /// Words beside an image or item ("but blue under 100").
        var words: String?
        switch try await readBody(request, allowJSON: true) {
        case .json(let data):
            let body: SearchBody = try decodeJSON(data)
            try apply(body, to: &options)
            modelNamed = modelNamed || body.model != nil
            examples = body.examples
            let liked = !(body.like ?? []).isEmpty
            // Text beside url, id, query or liked items narrows that search; alone, it is the query.
            words = body.text
            switch (body.url, body.id, body.query) {
            case (let url?, nil, nil): asked = .url(url)
            case (nil, let id?, nil): asked = .query(.item(id))
            case (nil, nil, let kept?): asked = .query(.image(bytes: try keptQuery(kept)))
            case (nil, nil, nil) where body.text != nil && !liked:
                asked = .query(.text(body.text ?? ""))
                words = nil
                if !modelNamed {
                    options.model = ModelManifest.words.name
                    modelNamed = true
                }
            case (nil, nil, nil) where liked: asked = .query(.examples([]))
            default:
                throw APIError.badRequest("a JSON search names exactly one of \"url\", \"id\", \"query\" and \"text\", or liked "
                    + "items in \"like\" (\"text\" beside one of the others narrows it); to search with an image, send it as the body")
            }
        case .multipart(let parts):
            let image = try Self.part("image", of: parts).bytes
            if let text = parts["options"]?.bytes {
                let body: SearchBody = try decodeJSON(text)
                try apply(body, to: &options)
                modelNamed = modelNamed || body.model != nil
                examples = body.examples
                words = body.text
            }
            asked = .query(.image(bytes: image))
        case .image(let bytes):
            asked = .query(.image(bytes: bytes))
        }
        if !modelNamed { options.model = try engine.defaultModel() }
        if let examples, examples.like.count + examples.unlike.count > Self.maxExamples {
            throw APIError.badRequest("like and unlike name at most \(Self.maxExamples) items together")
        }
        try checkModel(options.model, engine: engine)
        try checkCascade(options, engine: engine)
        let settled = options
        var query: Query
        switch asked {
        case .query(let given):
            guard given.isImage || settled.region == nil else {
                throw APIError(.badRequest, "bad_region", "a search by id uses the stored vector; region is for images")
            }
            query = given
        case .url(let url):
            query = .image(bytes: try await fetches.within { try await fetcher.fetch(url) })
        }
        if let examples {
            guard settled.region == nil else {
                throw APIError(.badRequest, "bad_region", "a search refined by like and unlike cannot take a region")
            }
            query = try query.refined(like: examples.like, unlike: examples.unlike)
        }
        // Checked by the engine (length; "literal" words beside an image are refused with the reason).
        query.words = words
        let asking = query
        let response = try await pool.run { try engine.search(asking, options: settled) }
        ServerMetrics.requestTimer("search").recordInterval(since: started)
        return JSON.response(searchJSON(response, collection: collection))
    }

    static let maxExamples = 100

    /// Options from the query string (`SearchForm`; filter and region errors become
    /// `bad_filter` and `bad_region` in `APIError.from`).
    func searchOptions(_ query: QueryString) throws -> SearchOptions {
        let given = try SearchForm(query)
        var options = SearchOptions(top: given.top ?? 10)
        if let model = given.model { options.model = model }
        if let ef = given.ef { options.efSearch = ef }
        if let filter = given.filter { options.filter = filter }
        if let region = given.region { options.region = region }
        if let cascade = given.cascade { options.cascade = cascade }
        if let collapse = given.collapse { options.collapseCopies = collapse }
        if let diversity = given.diversity { options.diversity = diversity }
        if let expand = given.expand { options.expansion = expand }
        if let minScore = given.minScore { options.minScore = minScore }
        if let feedback = given.feedback { options.feedback = feedback }
        if let tiles = given.tiles { options.tiles = tiles }
        if let crops = given.crops { options.crops = crops }
        return options
    }

    /// Options from a JSON body, over those of the query string.
    func apply(_ body: SearchBody, to options: inout SearchOptions) throws {
        if let top = body.top { options.top = try QueryString.checked(top, field: "top", range: SearchForm.topRange) }
        if let model = body.model { options.model = model }
        if let ef = body.ef { options.efSearch = try QueryString.checked(ef, field: "ef", range: SearchForm.efRange) }
        if let filter = body.filter { options.filter = try MetadataFilter(filter) }
        if let region = body.region { options.region = region }
        if let cascade = body.cascade { options.cascade = cascade }
        if let collapse = body.collapse { options.collapseCopies = collapse }
        if let diversity = body.diversity { options.diversity = try QueryString.checked(diversity, field: "diversity", range: 0...1) }
        if let expand = body.expand { options.expansion = try QueryString.checked(expand, field: "expand", range: SearchForm.expandRange) }
        if let minScore = body.minScore { options.minScore = try QueryString.checked(minScore, field: "min_score", range: SearchForm.scoreRange) }
        if let feedback = body.feedback { options.feedback = feedback }
        if let tiles = body.tiles { options.tiles = tiles }
        if let crops = body.crops { options.crops = crops }
        if let literal = body.literal { options.interpretText = !literal }
        if let field = body.priceField {
            guard !field.isEmpty, field.count <= 200 else { throw APIError.badRequest("price_field must name a metadata field") }
            options.priceField = field
        }
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

    /// An installed model, or (where `tuned`) one of the collection's tuned models over one.
    func checkModel(_ name: String, engine: Engine, tuned: Bool = true) throws {
        let registry = try engine.registry()
        if let manifest = try? registry.manifest(named: name), registry.isInstalled(manifest) { return }
        let tunedModels = tuned ? try engine.tunedModels() : []
        if let record = tunedModels.first(where: { $0.name == name }),
           let base = try? registry.manifest(named: record.base), registry.isInstalled(base) { return }
        let installed = registry.manifests.filter { registry.isInstalled($0) }.map(\.name) + tunedModels.map(\.name)
        throw APIError(.badRequest, "unknown_model", "no installed model named \(name) (installed: \(installed.joined(separator: ", ")))")
    }
}
