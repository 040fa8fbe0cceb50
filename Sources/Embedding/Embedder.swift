import Foundation
import Imaging

/// Turns images into L2-normalised embedding vectors with one model.
///
/// ```swift
/// let embedder = try Embedder(manifest: .efficientNetLite0, registry: registry, threads: 2)
/// let vectors = try embedder.embed([pixels])
/// ```
public final class Embedder: Sendable {
    public let manifest: ModelManifest
    public let session: InferenceSession
    /// Identifies the network and its preprocessing: SHA-256 of the ONNX file, resize policy, output.
    public let fingerprint: String
    /// For a model made of words (`ModelManifest.concepts`): each class name's text vector, one
    /// row per class, in the text encoder's space.
    let classVectors: Tensor<Float>?
    /// For a derived model (a tuned one): the model whose vectors it maps, and the map.
    private let base: Embedder?
    private let projection: (any EmbeddingProjection)?

    /// `textEncoder`, for a model made of words: its text model, when the caller has it loaded
    /// already (else it is loaded here, for the class names).
    public init(manifest: ModelManifest, registry: ModelRegistry, threads: Int = 0, textEncoder: TextEncoder? = nil) throws {
        if let problem = manifest.problem { throw ModelError.unsupportedInput(name: manifest.name, reason: problem) }
        guard manifest.modality == .image else {
            // A text encoder embeds words (`TextEncoder`), for the image models of its space.
            throw ModelError.unsupportedInput(name: manifest.name, reason: "text encoders embed words, not images: search "
                + "in words with an image model of its space (`words` for minilm-l6)")
        }
        let modelPath = try registry.installedPath(of: manifest)
        var fingerprint = try Self.fingerprint(modelPath: modelPath, manifest: manifest)
        if let concepts = manifest.concepts {
            let encoder = try textEncoder.flatMap { $0.manifest.name == concepts.textModel ? $0 : nil }
                ?? TextEncoder(manifest: try registry.manifest(named: concepts.textModel), registry: registry, threads: threads)
            let (vectors, encoderFingerprint) = try Self.classVectors(concepts, encoder: encoder, registry: registry)
            guard vectors.shape[1] == manifest.dimension else {
                throw ModelError.unsupportedInput(name: manifest.name, reason: "its text model \(concepts.textModel) makes "
                    + "\(vectors.shape[1])-d vectors, the manifest says \(manifest.dimension)")
            }
            classVectors = vectors
            fingerprint += " concepts \(concepts.top) \(ContentHash.sha256(vectors.values.withUnsafeBytes { Array($0) })) \(encoderFingerprint)"
        } else {
            classVectors = nil
        }
        self.fingerprint = fingerprint
        base = nil
        projection = nil
        let runtime = try OnnxRuntime.shared(libraryPath: registry.runtimeLibraryPath())
        session = try InferenceSession(runtime: runtime, modelPath: modelPath, threads: threads)
        self.manifest = manifest
        for (name, list) in [(manifest.input.name, session.inputNames), (manifest.embeddingOutput, session.outputNames)]
        where !list.contains(name) {
            throw ModelError.unsupportedInput(
                name: manifest.name, reason: "the ONNX file has no tensor named '\(name)' (it has \(list.joined(separator: ", ")))")
        }
    }

    /// A derived model: `base`'s vectors mapped by `projection` (a tuned model). It shares the
    /// base model's session, so images run through the network once for both. `manifest` is
    /// the derived model's (its name, its dimension); `fingerprint` identifies the projection and
    /// is joined to the base model's.
    public init(deriving manifest: ModelManifest, from base: Embedder, projection: any EmbeddingProjection, fingerprint: String) throws {
        guard projection.inputDimension == base.manifest.dimension, projection.outputDimension == manifest.dimension else {
            throw ModelError.unsupportedInput(name: manifest.name, reason: "its projection maps \(projection.inputDimension) to "
                + "\(projection.outputDimension) values; \(base.manifest.name) makes \(base.manifest.dimension)")
        }
        self.manifest = manifest
        session = base.session
        classVectors = nil
        self.base = base
        self.projection = projection
        self.fingerprint = "\(base.fingerprint) projection \(fingerprint)"
    }

    /// The model a derived model's vectors come from (nil for a model of its own).
    public var baseModel: Embedder? { base }

    private static func fingerprint(modelPath: String, manifest: ModelManifest) throws -> String {
        // The text stays as it was when the resize policy was not optional, so stores keep matching.
        let sizing = manifest.resize.map { "\($0)" } ?? "text"
        return "\(try ContentHash.sha256(fileAt: modelPath)) \(sizing) \(manifest.embeddingOutput)"
    }

    /// The class names of `concepts` embedded by its text encoder.
    private static func classVectors(
        _ concepts: ModelManifest.Concepts, encoder: TextEncoder, registry: ModelRegistry
    ) throws -> (Tensor<Float>, String) {
        let file = registry.directory.appendingPathComponent(concepts.classes)
        let names: [String]
        do {
            names = try String(contentsOf: file, encoding: .utf8).split(separator: "\n").map {
                $0.trimmingCharacters(in: .whitespacesAndNewlines)
            }
        } catch {
            throw ModelError.notInstalled(name: concepts.classes, path: file.path, hint: "run `make setup`")
        }
        guard !names.isEmpty, names.allSatisfy({ !$0.isEmpty }) else {
            throw ModelError.unsupportedInput(name: concepts.classes, reason: "\(file.path) has an empty line or no names")
        }
        let width = encoder.manifest.dimension
        // Embedding a thousand names takes seconds: the result is kept in the models folder, named by
        // what it depends on (the encoder and the names), and read back by later processes.
        let key = ContentHash.sha256(Array((encoder.fingerprint + "\n" + names.joined(separator: "\n")).utf8))
        let cache = registry.directory.appendingPathComponent("cache/concepts-\(key.prefix(32)).f32")
        if let data = try? Data(contentsOf: cache), data.count == names.count * width * MemoryLayout<Float>.size {
            let values = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            if values.allSatisfy(\.isFinite) { return (Tensor(shape: [names.count, width], values: values), encoder.fingerprint) }
        }
        let vectors = try encoder.embed(names).flatMap(\.vector)
        // Best effort: a read-only models folder only means the names are embedded again next time.
        try? FileManager.default.createDirectory(at: cache.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? vectors.withUnsafeBytes { Data($0) }.write(to: cache, options: .atomic)
        return (Tensor(shape: [names.count, width], values: vectors), encoder.fingerprint)
    }

    /// ConSE: the probability-weighted mean of the text vectors of the `top` most probable classes.
    private func conceptVector(_ logits: ArraySlice<Float>, classes: Tensor<Float>, top: Int) throws -> [Float] {
        guard logits.count == classes.shape[0] else {
            throw ModelError.unsupportedInput(name: manifest.name, reason: "the model scores \(logits.count) classes, "
                + "the class list has \(classes.shape[0])")
        }
        let largest = logits.max() ?? 0
        var probabilities = logits.map { Double(exp($0 - largest)) }
        let total = probabilities.reduce(0, +)
        for index in probabilities.indices { probabilities[index] /= total }
        let best = probabilities.indices.sorted { probabilities[$0] > probabilities[$1] }.prefix(top)
        let width = classes.shape[1]
        var mixed = [Float](repeating: 0, count: width)
        for index in best {
            let weight = Float(probabilities[index])
            let row = classes.row(index)
            for (offset, value) in row.enumerated() { mixed[offset] += weight * value }
        }
        guard let vector = VectorNormalization.unitVector(mixed) else {
            throw ModelError.unsupportedInput(name: manifest.name, reason: "the class probabilities of an image are not finite")
        }
        return vector
    }

    /// Sizes and decodes nothing: `images` must already follow the manifest's resize policy.
    /// Images of equal size run as one batch when the model allows it; the order of the result
    /// matches the order of `images`.
    public func embed(_ images: [Pixels]) throws -> [[Float]] {
        if let base, let projection { return try project(try base.embed(images), by: projection) }
        var vectors = [[Float]](repeating: [], count: images.count)
        for group in batches(images) {
            let first = images[group[0]]
            var values = [UInt8]()
            values.reserveCapacity(group.count * first.rgb.count)
            for index in group { values.append(contentsOf: images[index].rgb) }
            let input = Tensor(shape: [group.count, first.height, first.width, 3], values: values)
            let outputs = try session.run(input: manifest.input.name, uint8: input, outputs: [manifest.embeddingOutput])
            if let classVectors, let concepts = manifest.concepts, let logits = outputs[manifest.embeddingOutput], logits.shape.count == 2 {
                for (row, index) in group.enumerated() {
                    vectors[index] = try conceptVector(logits.row(row), classes: classVectors, top: concepts.top)
                }
                continue
            }
            guard let embedding = outputs[manifest.embeddingOutput], embedding.shape == [group.count, manifest.dimension] else {
                throw ModelError.unsupportedInput(
                    name: manifest.name,
                    reason: "output '\(manifest.embeddingOutput)' has shape \(outputs[manifest.embeddingOutput]?.shape ?? []), "
                        + "expected [\(group.count), \(manifest.dimension)]")
            }
            for (row, index) in group.enumerated() {
                guard let vector = VectorNormalization.unitVector(Array(embedding.row(row))) else {
                    throw ModelError.unsupportedInput(
                        name: manifest.name, reason: "the embedding of an image is zero or not finite")
                }
                vectors[index] = vector
            }
        }
        return vectors
    }

    /// A derived model's vectors made from its base model's.
    public func project(fromBase vectors: [[Float]]) throws -> [[Float]] {
        guard let projection else { return vectors }
        return try project(vectors, by: projection)
    }

    private func project(_ vectors: [[Float]], by projection: any EmbeddingProjection) throws -> [[Float]] {
        try projection.project(vectors).map { vector in
            guard let vector else {
                throw ModelError.unsupportedInput(name: manifest.name, reason: "the projection of an image's vector is zero or not finite")
            }
            return vector
        }
    }

    /// Runs the model's logits output (when it has one) for one image.
    public func logits(_ image: Pixels) throws -> [Float]? {
        if let base { return try base.logits(image) }
        guard let name = manifest.logitsOutput else { return nil }
        let input = Tensor(shape: [1, image.height, image.width, 3], values: image.rgb)
        return try session.run(input: manifest.input.name, uint8: input, outputs: [name])[name]?.values
    }

    /// Most images in one run of the model. Measured with `lookalike add` of 200 photos of 1 MP
    /// (2 threads): batches of 32 took 4.5 to 5.0 s at 0.89 to 0.96 GB peak memory, of 8 4.4 to
    /// 4.6 s at 370 MB, of 4 4.2 to 4.4 s at 287 MB, one at a time 5.2 to 5.3 s at 227 MB.
    static let maxBatch = 4

    /// Indices of `images` grouped by size (in first-seen order), so each group is one tensor,
    /// of at most `maxBatch` images.
    private func batches(_ images: [Pixels]) -> [[Int]] {
        guard manifest.batchable else { return images.indices.map { [$0] } }
        var order: [[Int]] = []
        var slot: [Int: Int] = [:]
        for (index, image) in images.enumerated() {
            let key = image.width << 32 | image.height
            if let position = slot[key] {
                order[position].append(index)
            } else {
                slot[key] = order.count
                order.append([index])
            }
        }
        return order.flatMap { group in
            stride(from: 0, to: group.count, by: Self.maxBatch).map { Array(group[$0..<min($0 + Self.maxBatch, group.count)]) }
        }
    }
}

/// A map from one model's vectors to a derived model's (a tuned model's learned projection).
public protocol EmbeddingProjection: Sendable {
    var inputDimension: Int { get }
    var outputDimension: Int { get }
    /// Each vector mapped to a unit vector; nil where it cannot be (zero or not finite).
    func project(_ vectors: [[Float]]) -> [[Float]?]
}

/// L2 normalisation, the one place it is done for stored and query vectors.
public enum VectorNormalization {
    /// The vector scaled to length 1, or nil when it is (near) zero or holds a NaN or infinity.
    public static func unitVector(_ vector: [Float]) -> [Float]? {
        var sum: Double = 0
        for value in vector { sum += Double(value) * Double(value) }
        let norm = sum.squareRoot()
        guard norm.isFinite, norm > 1e-12 else { return nil }
        let scale = Float(1 / norm)
        return vector.map { $0 * scale }
    }

    /// The vector scaled to length 1; a zero or non-finite vector comes back unchanged.
    public static func normalized(_ vector: [Float]) -> [Float] {
        unitVector(vector) ?? vector
    }
}
