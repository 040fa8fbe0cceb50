import Embedding
import Foundation
import Imaging
import Storage

/// A query's vectors, one per model, each made the first time a stage asks for it: an image is
/// decoded for that model's input size and embedded, a stored item gives its stored vector,
/// examples their weighted sum. The main model's vector must exist (its absence is the error the
/// user sees); a backing model without one is simply left out (nil).
final class QueryEncoder: @unchecked Sendable {
    private let query: Query
    private let region: ImageRegion?
    private let store: any Store
    private let models: Models
    private let decoder: ImageDecoder
    private let maxBytes: Int
    private var bytes: [UInt8]?
    private var vectors: [String: [Float]?] = [:]
    private let lock = NSLock()

    init(_ query: Query, region: ImageRegion?, store: any Store, models: Models, decoder: ImageDecoder, maxBytes: Int) {
        self.query = query
        self.region = region
        self.store = store
        self.models = models
        self.decoder = decoder
        self.maxBytes = maxBytes
    }

    /// Reads an image file now, so an unreadable query fails before any model work.
    func prepare() throws {
        if case .imageFile(let path) = query.source {
            bytes = try FileReader.read(path, maxBytes: maxBytes)
        }
    }

    /// The query's vector by `embedder`'s model; with `required`, a query that has none is an error.
    func vector(for embedder: Embedder, required: Bool) throws -> [Float]? {
        let name = embedder.manifest.name
        if let known = lock.withLock({ vectors[name] }) { return known }
        let vector = try make(embedder, required: required)
        lock.withLock { vectors[name] = vector }
        return vector
    }

    private func make(_ embedder: Embedder, required: Bool) throws -> [Float]? {
        let manifest = embedder.manifest
        switch query.source {
        case .imageFile:
            guard let bytes else { try prepare(); return try make(embedder, required: required) }
            return try embed(bytes, embedder)
        case .imageBytes(let bytes):
            return try embed(bytes, embedder)
        case .item(let id):
            return try storedVector(id, model: manifest.name, required: required)
        case .examples(let examples):
            return try combine(examples, manifest: manifest, required: required)
        case .text:
            // Words need a text encoder in the model's embedding space; the engine runs none yet.
            guard required else { return nil }
            throw EngineError.noTextEncoder(model: manifest.name, space: manifest.embeddingSpace)
        }
    }

    private func embed(_ bytes: [UInt8], _ embedder: Embedder) throws -> [Float] {
        let pixels = try decoder.decode(bytes, policy: try embedder.manifest.imagePolicy(), region: region)
        return try Models.timedEmbed([pixels], embedder: embedder)[0]
    }

    private func storedVector(_ id: String, model: String, required: Bool) throws -> [Float]? {
        if let vector = try store.vectors(model: model, ids: [id]).first?.vector { return vector }
        guard required else { return nil }
        if try store.items(ids: [id]).isEmpty { throw EngineError.unknownItem(id: id) }
        throw EngineError.noVector(id: id, model: model)
    }

    /// The normalised weighted sum of the examples' vectors (Rocchio's query refinement).
    private func combine(_ examples: [Query.Example], manifest: ModelManifest, required: Bool) throws -> [Float]? {
        guard !examples.isEmpty else { throw EngineError.badExamples("a query by examples needs at least one example") }
        var sum = [Float](repeating: 0, count: manifest.dimension)
        for example in examples {
            let vector: [Float]
            switch example.of {
            case .item(let id):
                guard let stored = try storedVector(id, model: manifest.name, required: required) else { return nil }
                vector = stored
            case .vector(let given, let model):
                guard model == manifest.name else {
                    guard required else { return nil }
                    throw EngineError.badExamples("an example vector was made by model \(model), not \(manifest.name)")
                }
                vector = given
            }
            guard vector.count == manifest.dimension, example.weight.isFinite else {
                throw EngineError.badExamples("an example has \(vector.count) values or a weight that is not finite; "
                    + "model \(manifest.name) makes \(manifest.dimension)")
            }
            for offset in sum.indices { sum[offset] += example.weight * vector[offset] }
        }
        guard let unit = VectorNormalization.unitVector(sum) else {
            throw EngineError.badExamples("the examples' weights cancel out: there is nothing left to search for")
        }
        return unit
    }
}
