import Foundation
import Hummingbird
import Lookalike

/// Items: list, add by upload, fetch, delete, the original image and thumbnails.
extension LookalikeServer {
    func addItemRoutes(to v1: Routes.Group) {
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
    }

    func itemRoute(_ context: BasicRequestContext) throws -> (Engine, String, String) {
        let collection = try context.parameters.require("collection")
        let engine = try collections.engine(collection)
        let id = try context.parameters.require("id")
        guard id.count == 16, id.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
            throw APIError.badRequest("an item id is 16 lowercase hex digits")
        }
        return (engine, collection, id)
    }

    func item(_ id: String, in engine: Engine) throws -> Item {
        guard let item = try engine.item(id: id) else { throw APIError.notFound("no item with id \(id)") }
        return item
    }

    func listItems(_ request: Request, collection: String) throws -> Response {
        let engine = try collections.engine(collection)
        let query = Self.query(request)
        let limit = try query.integer("limit", range: 1...1000) ?? 100
        let after = query["after"].map(String.init)
        if let after, after.count > 64 { throw APIError.badRequest("after must be at most 64 characters") }
        let items = try engine.items(after: after, limit: limit + 1)
        let page = items.prefix(limit)
        return JSON.response([
            "items": page.map { itemJSON($0, collection: collection) },
            "next": items.count > limit ? (page.last?.id ?? "") : NSNull(),
        ] as [String: Any])
    }

    func addItem(_ request: Request, collection: String) async throws -> Response {
        let engine = try collections.engine(collection)
        let query = Self.query(request)
        var metadata = query["metadata"].map(String.init)
        var givenName = query["name"].map(String.init)
        let tiles = try query.flag("tiles") ?? false
        if let givenName, givenName.count > 255 { throw APIError.badRequest("name must be at most 255 characters") }
        let bytes: [UInt8]
        switch try await readBody(request, allowJSON: false) {
        case .image(let body):
            bytes = body
        case .multipart(let parts):
            let image = try Self.part("image", of: parts)
            bytes = image.bytes
            if givenName == nil { givenName = image.filename }
            if let text = parts["metadata"]?.bytes { metadata = String(decoding: text, as: UTF8.self) }
        case .json:
            throw APIError(.unsupportedMediaType, "unsupported_media_type", "send the image itself (image/* or multipart/form-data)")
        }
        if let metadata, metadata.utf8.count > Metadata.maxBytes {
            throw APIError(.badRequest, "bad_metadata", "metadata is \(metadata.utf8.count) bytes; an item takes at most \(Metadata.maxBytes)")
        }
        if let metadata, Metadata.object(metadata) == nil {
            throw APIError(.badRequest, "bad_metadata", "metadata must be a JSON object, like {\"color\": \"red\", \"price\": 45}")
        }
        let limits = configuration.imageLimits
        let (name, given) = (givenName, metadata)
        let started = DispatchTime.now()
        let outcome: Engine.UploadOutcome
        do {
            outcome = try await pool.run { try engine.addUpload(bytes, name: name, metadata: given, limits: limits, tiles: tiles) }
        } catch Engine.UploadError.storeUnavailable(let reason) {
            throw APIError.storeUnavailable(reason)
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

    func deleteItem(_ id: String, engine: Engine) async throws {
        _ = try item(id, in: engine)
        // The engine deletes the files the server made for the item; files indexed from folders stay.
        let removed = try await pool.run { try engine.remove(ids: [id]) }
        guard !removed.isEmpty else { throw APIError.notFound("no item with id \(id)") }
    }

    /// The item's original bytes, read from where it was added from and checked against its hash.
    func sourceBytes(_ item: Item, engine: Engine) throws -> [UInt8] {
        do {
            return try engine.originalBytes(of: item)
        } catch {
            throw APIError(.gone, "image_gone", "the image file of item \(item.id) is no longer the image that was indexed")
        }
    }

    func image(_ id: String, engine: Engine) async throws -> Response {
        let item = try item(id, in: engine)
        let bytes = try await pool.run { try self.sourceBytes(item, engine: engine) }  // may be large: off the event loop
        return Response(status: .ok, headers: [.contentType: Self.contentType(sniffing: bytes), .cacheControl: "private, max-age=3600"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    func thumbnail(_ id: String, engine: Engine, request: Request) async throws -> Response {
        let size = try Self.query(request).integer("size", range: 128...512) ?? 256
        guard Engine.thumbnailSizes.contains(size) else { throw APIError.badRequest("size must be 128, 256 or 512") }
        let item = try item(id, in: engine)
        let jpeg: [UInt8]
        if let cached = engine.cachedThumbnail(id: id, size: size) {
            jpeg = cached  // a small file read: no need to wait for an inference thread
        } else {
            jpeg = try await pool.run { try engine.thumbnail(of: item, size: size) { item in try self.sourceBytes(item, engine: engine) } }
        }
        // Ids are content hashes: an id's thumbnail never changes.
        return Response(status: .ok, headers: [.contentType: "image/jpeg", .cacheControl: "private, max-age=31536000, immutable"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: jpeg)))
    }
}
