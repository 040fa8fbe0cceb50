import Foundation
import Hummingbird
import Lookalike

/// Feedback: marks people give the hits of a search (relevant, not relevant, clicks), recorded
/// with the search's query so later searches near it use them; and forgetting them.
extension LookalikeServer {
    func addFeedbackRoutes(to v1: Routes.Group) {
        v1.post("collections/:collection/feedback") { request, context in
            try await self.recordFeedback(request, collection: try context.parameters.require("collection"))
        }
        v1.delete("collections/:collection/feedback") { request, context in
            let engine = try self.collections.engine(try context.parameters.require("collection"))
            let model = Self.query(request)["model"].map(String.init)
            let forgotten = try engine.forgetFeedback(model: model)
            return JSON.response(["forgotten": forgotten])
        }
    }

    /// The marks, as JSON: `{"marks": [{"id", "mark"}], "model"?}` with the query as a search
    /// names it (`"id"` of a stored item), or multipart with the query `image` and that object
    /// in a part `feedback`.
    struct FeedbackBody: RequestBody {
        struct Mark: Decodable {
            let id: String
            let mark: Feedback.Mark
        }

        var id: String?
        var model: String?
        var marks: [Mark]

        static let fields = ["id", "model", "marks"]
        static let nestedFields = ["marks": ["id", "mark"]]
    }

    func recordFeedback(_ request: Request, collection: String) async throws -> Response {
        let engine = try collections.engine(collection)
        let body: FeedbackBody
        let query: Query
        switch try await readBody(request, allowJSON: true) {
        case .json(let data):
            body = try decodeJSON(data)
            guard let id = body.id else { throw APIError.badRequest("name the search's query: \"id\" of a stored item, or send the image as multipart") }
            query = .item(id)
        case .multipart(let parts):
            body = try decodeJSON(try Self.part("feedback", of: parts).bytes)
            query = .image(bytes: try Self.part("image", of: parts).bytes)
        case .image:
            throw APIError.badRequest("send the marks as JSON, or the query image and the marks as multipart")
        }
        guard !body.marks.isEmpty else { throw APIError.badRequest("marks is empty") }
        let model = try body.model ?? engine.defaultModel()
        try checkModel(model, engine: engine)
        let marks = body.marks.map { (id: $0.id, mark: $0.mark) }
        let recorded = try await pool.run { try engine.recordFeedback(query, model: model, marks: marks) }
        return JSON.response(["recorded": recorded], status: .created)
    }
}
