import Foundation
import Imaging

/// Turns text into L2-normalised vectors with a text encoder (a model of modality `text`): the
/// text is tokenized by `WordPieceTokenizer`, a batch is padded to its longest text, and the
/// model's `embeddingOutput` gives one vector per text.
///
/// ```swift
/// let encoder = try TextEncoder(manifest: .miniLM, registry: registry)
/// let vectors = try encoder.embed(["a dog on a beach"]).map(\.vector)
/// ```
public final class TextEncoder: Sendable {
    public let manifest: ModelManifest
    public let session: InferenceSession
    public let tokenizer: WordPieceTokenizer
    /// Identifies the network and its vocabulary.
    public let fingerprint: String

    /// One text's vector, and whether the text was longer than the model takes (and was cut).
    public struct Encoded: Sendable {
        public let vector: [Float]
        public let truncated: Bool
    }

    public init(manifest: ModelManifest, registry: ModelRegistry, threads: Int = 0) throws {
        if let problem = manifest.problem { throw ModelError.unsupportedInput(name: manifest.name, reason: problem) }
        guard manifest.modality == .text, let text = manifest.text else {
            throw ModelError.unsupportedInput(name: manifest.name, reason: "it encodes images, not text")
        }
        let modelPath = try registry.installedPath(of: manifest)
        let vocabulary = registry.directory.appendingPathComponent(text.vocabulary)
        tokenizer = try WordPieceTokenizer(vocabularyFile: vocabulary, maxTokens: text.maxTokens, lowercase: text.lowercase)
        fingerprint = "\(try ContentHash.sha256(fileAt: modelPath)) \(try ContentHash.sha256(fileAt: vocabulary.path)) "
            + "\(text.maxTokens) \(manifest.embeddingOutput)"
        let runtime = try OnnxRuntime.shared(libraryPath: registry.runtimeLibraryPath())
        session = try InferenceSession(runtime: runtime, modelPath: modelPath, threads: threads)
        self.manifest = manifest
        for name in [text.ids, text.attentionMask] + (text.tokenTypes.map { [$0] } ?? []) where !session.inputNames.contains(name) {
            throw ModelError.unsupportedInput(
                name: manifest.name, reason: "the ONNX file has no input named '\(name)' (it has \(session.inputNames.joined(separator: ", ")))")
        }
        guard session.outputNames.contains(manifest.embeddingOutput) else {
            throw ModelError.unsupportedInput(name: manifest.name, reason: "the ONNX file has no output named '\(manifest.embeddingOutput)'")
        }
    }

    /// The vectors of `texts`, in order, `batchSize` texts per run.
    public func embed(_ texts: [String], batchSize: Int = 64) throws -> [Encoded] {
        guard let text = manifest.text else { return [] }
        var encoded: [Encoded] = []
        encoded.reserveCapacity(texts.count)
        var start = 0
        while start < texts.count {
            let batch = texts[start..<min(start + max(1, batchSize), texts.count)].map(tokenizer.encode)
            start += batch.count
            let length = batch.map(\.ids.count).max() ?? 0
            var ids = [Int64](repeating: 0, count: batch.count * length)
            var mask = [Int64](repeating: 0, count: batch.count * length)
            for (row, encoding) in batch.enumerated() {
                for (column, id) in encoding.ids.enumerated() {
                    ids[row * length + column] = Int64(id)
                    mask[row * length + column] = 1
                }
            }
            let shape = [batch.count, length]
            var inputs = [(name: text.ids, tensor: Tensor(shape: shape, values: ids)),
                          (name: text.attentionMask, tensor: Tensor(shape: shape, values: mask))]
            if let types = text.tokenTypes {
                inputs.append((name: types, tensor: Tensor(shape: shape, values: [Int64](repeating: 0, count: ids.count))))
            }
            let outputs = try session.run(int64: inputs, outputs: [manifest.embeddingOutput])
            guard let embedding = outputs[manifest.embeddingOutput], embedding.shape == [batch.count, manifest.dimension] else {
                throw ModelError.unsupportedInput(
                    name: manifest.name, reason: "output '\(manifest.embeddingOutput)' has shape "
                        + "\(outputs[manifest.embeddingOutput]?.shape ?? []), expected [\(batch.count), \(manifest.dimension)]")
            }
            for (row, encoding) in batch.enumerated() {
                guard let vector = VectorNormalization.unitVector(Array(embedding.row(row))) else {
                    throw ModelError.unsupportedInput(name: manifest.name, reason: "the embedding of a text is zero or not finite")
                }
                encoded.append(Encoded(vector: vector, truncated: encoding.truncated))
            }
        }
        return encoded
    }
}
