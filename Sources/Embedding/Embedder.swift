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

    public init(manifest: ModelManifest, registry: ModelRegistry, threads: Int = 0) throws {
        if let problem = manifest.problem { throw ModelError.unsupportedInput(name: manifest.name, reason: problem) }
        guard manifest.modality == .image else {
            // A text encoder's manifest is understood, but this build runs image models only.
            throw ModelError.unsupportedInput(name: manifest.name, reason: "running text encoders is not supported yet")
        }
        let modelPath = try registry.installedPath(of: manifest)
        fingerprint = try Self.fingerprint(modelPath: modelPath, manifest: manifest)
        let runtime = try OnnxRuntime.shared(libraryPath: registry.runtimeLibraryPath())
        session = try InferenceSession(runtime: runtime, modelPath: modelPath, threads: threads)
        self.manifest = manifest
        for (name, list) in [(manifest.input.name, session.inputNames), (manifest.embeddingOutput, session.outputNames)]
        where !list.contains(name) {
            throw ModelError.unsupportedInput(
                name: manifest.name, reason: "the ONNX file has no tensor named '\(name)' (it has \(list.joined(separator: ", ")))")
        }
    }

    private static func fingerprint(modelPath: String, manifest: ModelManifest) throws -> String {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: modelPath), options: .mappedIfSafe))
        // The text stays as it was when the resize policy was not optional, so stores keep matching.
        let sizing = manifest.resize.map { "\($0)" } ?? "text"
        return "\(ContentHash.sha256(bytes)) \(sizing) \(manifest.embeddingOutput)"
    }

    /// Sizes and decodes nothing: `images` must already follow the manifest's resize policy.
    /// Images of equal size run as one batch when the model allows it; the order of the result
    /// matches the order of `images`.
    public func embed(_ images: [Pixels]) throws -> [[Float]] {
        var vectors = [[Float]](repeating: [], count: images.count)
        for group in batches(images) {
            let first = images[group[0]]
            var values = [UInt8]()
            values.reserveCapacity(group.count * first.rgb.count)
            for index in group { values.append(contentsOf: images[index].rgb) }
            let input = Tensor(shape: [group.count, first.height, first.width, 3], values: values)
            let outputs = try session.run(input: manifest.input.name, uint8: input, outputs: [manifest.embeddingOutput])
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

    /// Runs the model's logits output (when it has one) for one image.
    public func logits(_ image: Pixels) throws -> [Float]? {
        guard let name = manifest.logitsOutput else { return nil }
        let input = Tensor(shape: [1, image.height, image.width, 3], values: image.rgb)
        return try session.run(input: manifest.input.name, uint8: input, outputs: [name])[name]?.values
    }

    /// Indices of `images` grouped by size (in first-seen order), so each group is one tensor.
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
        return order
    }
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
