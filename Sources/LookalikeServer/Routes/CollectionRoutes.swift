import Foundation
import Hummingbird
import Lookalike

/// Collections: list, create, describe and delete (each one a store with its own engine).
extension LookalikeServer {
    func addCollectionRoutes(to v1: Routes.Group) {
        v1.get("collections") { _, _ in try await self.listCollections() }
        v1.post("collections") { request, _ in try await self.createCollection(request) }
        v1.get("collections/:collection") { _, context in
            try await self.collectionInfo(try context.parameters.require("collection"))
        }
        v1.patch("collections/:collection") { request, context in
            try await self.changeCollection(request, name: try context.parameters.require("collection"))
        }
        v1.delete("collections/:collection") { _, context in
            let name = try context.parameters.require("collection")
            try self.collections.delete(name) { self.jobs.isBusy(collection: $0) || self.tunings.isBusy(collection: $0) }
            return Response(status: .noContent)
        }
    }

    func collectionJSON(_ name: String) throws -> [String: Any] {
        let engine = try collections.engine(name)
        let stats = try engine.stats()
        // The collection's tuned models (`lookalike tune`), searchable by name like any model.
        let tuned: [[String: Any]] = try engine.tunedModels().map { record in
            let report = try? JSONDecoder().decode(TuneReport.self, from: Data(record.report.utf8))
            return ["name": record.name, "base": record.base, "dimension": record.outputDimension,
                    "labels": report?.labels ?? NSNull(), "head": report?.head ?? NSNull(),
                    "held_out_base": report?.baseline ?? NSNull(), "held_out_tuned": report?.best ?? NSNull(),
                    "created_at": ISO8601DateFormatter().string(from: record.createdAt)]
        }
        return ["name": name, "items": stats.items, "vectors": stats.vectors, "deletable": name != Collections.defaultName,
                "tuned_models": tuned, "default_model": try engine.defaultModel()]
    }

    /// Changes a collection's settings: `default_model`, the model its searches use when they
    /// name none (an installed image model or one of its tuned models; null: the installed default).
    func changeCollection(_ request: Request, name: String) async throws -> Response {
        struct Body: RequestBody {
            let default_model: String?
            static let fields = ["default_model"]
        }
        let engine = try collections.engine(name)
        let bytes = try await readJSONBody(request)
        let body: Body = try decodeJSON(bytes)
        guard let object = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any], object["default_model"] != nil else {
            throw APIError.badRequest("give default_model: a model's name, or null for \(ModelManifest.defaultName)")
        }
        let chosen = body.default_model
        _ = try await pool.run { try engine.setDefaultModel(chosen) }
        return JSON.response(try collectionJSON(name))
    }

    func listCollections() async throws -> Response {
        let names = try collections.names()
        let list = try names.map { try self.collectionJSON($0) }
        return JSON.response(["collections": list])
    }

    func collectionInfo(_ name: String) async throws -> Response {
        JSON.response(try collectionJSON(name))
    }

    func createCollection(_ request: Request) async throws -> Response {
        struct Body: RequestBody {
            let name: String
            static let fields = ["name"]
        }
        let body: Body = try decodeJSON(try await readJSONBody(request))
        _ = try collections.create(body.name)
        return JSON.response(try collectionJSON(body.name), status: .created)
    }
}
