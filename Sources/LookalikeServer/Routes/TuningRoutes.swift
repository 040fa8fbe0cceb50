import Foundation
import HTTPForms
import Hummingbird
import Lookalike

/// Tunings: teach a collection what "similar" means from its labels (`lookalike tune` as a job),
/// follow the validation curve, forget a tuned model.
extension LookalikeServer {
    func addTuningRoutes(to v1: Routes.Group) {
        v1.post("collections/:collection/tunings") { request, context in
            try await self.startTuning(request, collection: try context.parameters.require("collection"))
        }
        v1.get("collections/:collection/tunings") { _, context in
            let collection = try context.parameters.require("collection")
            _ = try self.collections.engine(collection)
            return JSON.response(["tunings": self.tunings.all(collection: collection).map(\.json)])
        }
        v1.get("tunings/:tuning") { _, context in
            JSON.response(try self.tuning(context).json)
        }
        v1.get("tunings/:tuning/events") { _, context in
            try self.tuningEvents(try self.tuning(context).id)
        }
        v1.delete("collections/:collection/tuned-models/:model") { _, context in
            let engine = try self.collections.engine(try context.parameters.require("collection"))
            // "+" arrives as it is or percent-encoded ("%2B", as encodeURIComponent writes it).
            let given = try context.parameters.require("model")
            let model = given.removingPercentEncoding ?? given
            guard try engine.tunedModels().contains(where: { $0.name == model }) else {
                throw APIError.notFound("no tuned model named \(model) in this collection")
            }
            let removed = try await self.pool.run { try engine.removeTunedModel(model) }
            return JSON.response(["model": model, "vectors_removed": removed])
        }
    }

    func startTuning(_ request: Request, collection: String) async throws -> Response {
        struct Pair: Decodable {
            let a: String
            let b: String
            let similar: Bool
        }
        struct Body: RequestBody {
            let name: String
            let labels: String?
            let pairs: [Pair]?
            let feedback: Bool?
            let model: String?
            let head: String?
            let loss: String?
            let seed: UInt64?
            let epochs: Int?
            let learning_rate: Float?
            let force: Bool?
            let replace: Bool?
            let make_default: Bool?
            static let fields = ["name", "labels", "pairs", "feedback", "model", "head", "loss", "seed", "epochs", "learning_rate",
                                 "force", "replace", "make_default"]
            static let nestedFields = ["pairs": ["a", "b", "similar"]]
        }
        let engine = try collections.engine(collection)
        let body: Body = try decodeJSON(try await readJSONBody(request))
        let sources = [body.labels != nil, body.pairs != nil, body.feedback == true].filter { $0 }.count
        guard sources == 1 else {
            throw APIError.badRequest("give labels (the metadata field to learn from), pairs, or feedback: true, one of them")
        }
        guard Engine.isValidTuningName(body.name) else {
            throw APIError.badRequest("name takes letters, digits, '-', '_' and '.' (at most 40): \"\(body.name)\" is not one")
        }
        let base = try body.model ?? engine.defaultAddModel()
        guard !base.contains("+") else { throw APIError.badRequest("model: tune a model of its own, not a tuned one (\(base))") }
        try checkModel(base, engine: engine, tuned: false)
        var training = TuningOptions()
        if let head = body.head {
            guard head == "both" || TuningOptions.Head(rawValue: head) != nil else {
                throw APIError.badRequest("head is linear, two-layer or both")
            }
            training.heads = TuningOptions.Head(rawValue: head).map { [$0] } ?? TuningOptions.Head.allCases
        }
        if let loss = body.loss {
            guard let chosen = TuningOptions.Loss(rawValue: loss) else {
                throw APIError.badRequest("loss is \(TuningOptions.Loss.allCases.map(\.rawValue).joined(separator: " or "))")
            }
            training.loss = chosen
        }
        if let seed = body.seed { training.seed = seed }
        if let epochs = body.epochs { training.maxEpochs = try QueryString.checked(epochs, field: "epochs", range: 1...1_000) }
        if let rate = body.learning_rate {
            guard rate > 0, rate <= 1 else { throw APIError.badRequest("learning_rate must be above 0 and at most 1") }
            training.learningRate = rate
        }
        if let labels = body.labels, labels.trimmingCharacters(in: .whitespaces).isEmpty {
            throw APIError.badRequest("labels names a metadata field; it is empty")
        }
        if let pairs = body.pairs {
            guard !pairs.isEmpty, pairs.count <= Self.maxTuningPairs else {
                throw APIError.badRequest("pairs holds 1 to \(Self.maxTuningPairs) pairs")
            }
            for (index, pair) in pairs.enumerated() {
                for (key, end) in [("a", pair.a), ("b", pair.b)] where end.trimmingCharacters(in: .whitespaces).isEmpty {
                    throw APIError.badRequest("pairs[\(index)].\(key) names no item (an item id or an image path on the server)")
                }
            }
        }
        let model = base + "+" + body.name
        if body.replace != true, try engine.tunedModels().contains(where: { $0.name == model }) {
            throw APIError(.conflict, "tuned_model_exists", "\(model) exists already; give replace: true to make it again")
        }
        let pairsFile = body.pairs.map { PairsFile(source: "in the request", pairs: $0.map { ($0.a, $0.b, $0.similar) }) }
        let options = TuneOptions(base: base, name: body.name, labels: body.labels ?? "", pairs: pairsFile, feedback: body.feedback == true,
                                  training: training, force: body.force == true, replace: body.replace == true)
        let labels = body.labels ?? (body.pairs != nil ? "pairs" : "feedback")
        let tuning = try tunings.submit(collection: collection, engine: engine, options: options, labels: labels,
                                        makeDefault: body.make_default == true)
        var response = JSON.response(tuning.json, status: .accepted)
        response.headers[.location] = "/v1/tunings/\(tuning.id)"
        return response
    }

    static let maxTuningPairs = 1_000_000

    func tuning(_ context: BasicRequestContext) throws -> Tunings.Tuning {
        let id = try context.parameters.require("tuning")
        guard let tuning = tunings.tuning(id) else { throw APIError.notFound("no tuning with id \(id)") }
        return tuning
    }

    /// Server-sent events: the tuning as it changes (each epoch adds a point to its curve), then `end`.
    func tuningEvents(_ id: String) throws -> Response {
        let tunings = self.tunings
        return try progressEvents {
            tunings.tuning(id).map { (JSON.data($0.json), $0.revision, $0.isOver) }
        }
    }
}
