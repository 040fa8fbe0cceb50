import Embedding
import Foundation
import Imaging
import Storage
import VectorIndex

/// A query's vectors, one per model, each made the first time a stage asks for it: an image is
/// decoded for that model's input size and embedded, a stored item gives its stored vector,
/// examples their weighted sum. The main model's vector must exist (`vector(for:)`: its absence is
/// the error the user sees); a backing model without one is simply left out (`backingVector(for:)`).
final class QueryEncoder: @unchecked Sendable {
    private let query: Query
    private let region: ImageRegion?
    private let store: any Store
    private let models: Models
    private let decoder: ImageDecoder
    private let maxBytes: Int
    private var bytes: [UInt8]?
    private var vectors: [String: Made] = [:]
    private let lock = NSLock()
    private var truncatedText = false
    /// Longer text is refused before it is tokenized (the model reads its first 254 tokens anyway).
    static let maxTextCharacters = 10_000

    /// Refuses words longer than `maxTextCharacters`, with their length.
    static func checkLength(_ words: String) throws {
        guard words.count <= maxTextCharacters else {
            throw EngineError.badOption("the text is \(words.count) characters long; a text query takes at most \(maxTextCharacters)")
        }
    }

    /// Whether a text query was longer than its text encoder takes, and was cut.
    var textWasTruncated: Bool { lock.withLock { truncatedText } }

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
        if case .imageFile = query.source { _ = try fileBytes() }
    }

    /// The file's bytes, read once.
    private func fileBytes() throws -> [UInt8] {
        if let bytes { return bytes }
        guard case .imageFile(let path) = query.source else { return [] }
        let read = try FileReader.read(path, maxBytes: maxBytes)
        bytes = read
        return read
    }

    /// A query's vector by one model, or why the query has none for that model.
    private enum Made {
        case vector([Float])
        case missing(EngineError)
    }

    /// The query's vector by the main model: a query that has none is an error.
    func vector(for embedder: Embedder) throws -> [Float] {
        switch try made(embedder) {
        case .vector(let vector): return vector
        case .missing(let reason): throw reason
        }
    }

    /// The query's vector by a backing model, nil when the query has none for it.
    func backingVector(for embedder: Embedder) throws -> [Float]? {
        if case .vector(let vector) = try made(embedder) { return vector }
        return nil
    }

    private func made(_ embedder: Embedder) throws -> Made {
        let name = embedder.manifest.name
        if let known = lock.withLock({ vectors[name] }) { return known }
        let made = try make(embedder)
        lock.withLock { vectors[name] = made }
        return made
    }

    private func make(_ embedder: Embedder) throws -> Made {
        let manifest = embedder.manifest
        switch query.source {
        case .imageFile:
            return .vector(try embed(try fileBytes(), embedder))
        case .imageBytes(let bytes):
            return .vector(try embed(bytes, embedder))
        case .item(let id):
            return try storedVector(id, model: manifest.name)
        case .examples(let examples):
            return try combine(examples, embedder: embedder)
        case .text(let words):
            // Words go through the text encoder of the model's embedding space.
            try Self.checkLength(words)
            guard words.contains(where: { !$0.isWhitespace }) else { throw EngineError.badOption("the text query is empty: give some words") }
            guard let encoder = try models.textEncoder(space: manifest.embeddingSpace) else {
                return .missing(.noTextEncoder(model: manifest.name, space: manifest.embeddingSpace))
            }
            guard let encoded = try encoder.embed([words]).first else { throw EngineError.badOption("the text query is empty") }
            lock.withLock { truncatedText = encoded.truncated }
            return .vector(encoded.vector)
        }
    }

    /// The vectors of crops of the query image (`regions`, fractions of the image after the query's
    /// own region), cut from one decode at twice the model's size and embedded in one batch; nil
    /// for a query that is no image.
    func cropVectors(for embedder: Embedder, regions: [ImageRegion]) throws -> [[Float]]? {
        let bytes: [UInt8]
        switch query.source {
        case .imageFile: bytes = try fileBytes()
        case .imageBytes(let given): bytes = given
        default: return nil
        }
        let policy = try embedder.manifest.imagePolicy()
        let decoded = try decoder.decode(bytes, policy: policy.doubled, region: region)
        return try Models.timedEmbed(try decoder.regions(of: decoded, regions, policy: policy), embedder: embedder)
    }

    private func embed(_ bytes: [UInt8], _ embedder: Embedder) throws -> [Float] {
        let pixels = try decoder.decode(bytes, policy: try embedder.manifest.imagePolicy(), region: region)
        return try Models.timedEmbed([pixels], embedder: embedder)[0]
    }

    private func storedVector(_ id: String, model: String) throws -> Made {
        if let vector = try store.vectors(model: model, ids: [id]).first?.vector { return .vector(vector) }
        return .missing(try store.items(ids: [id]).isEmpty ? .unknownItem(id: id) : .noVector(id: id, model: model))
    }

    /// The normalised weighted sum of the examples' vectors (Rocchio's query refinement).
    private func combine(_ examples: [Query.Example], embedder: Embedder) throws -> Made {
        let manifest = embedder.manifest
        guard !examples.isEmpty else { throw EngineError.badExamples("a query by examples needs at least one example") }
        var sum = [Float](repeating: 0, count: manifest.dimension)
        for example in examples {
            let vector: [Float]
            switch example.of {
            case .item(let id):
                let stored = try storedVector(id, model: manifest.name)
                guard case .vector(let found) = stored else { return stored }
                vector = found
            case .vector(let given, let model):
                guard model == manifest.name else {
                    return .missing(.badExamples("an example vector was made by model \(model), not \(manifest.name)"))
                }
                vector = given
            case .image(let bytes):
                vector = try embed(bytes, embedder)
            case .imageFile(let path):
                vector = try embed(try FileReader.read(path, maxBytes: maxBytes), embedder)
            }
            guard vector.count == manifest.dimension, example.weight.isFinite else {
                throw EngineError.badExamples("an example has \(vector.count) values or a weight that is not finite; "
                    + "model \(manifest.name) makes \(manifest.dimension)")
            }
            VectorMath.add(vector, scaledBy: example.weight, to: &sum)
        }
        guard let unit = VectorNormalization.unitVector(sum) else {
            throw EngineError.badExamples("the examples' weights cancel out: there is nothing left to search for")
        }
        return .vector(unit)
    }
}
