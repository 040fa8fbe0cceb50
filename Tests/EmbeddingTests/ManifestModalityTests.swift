import Embedding
import Foundation
import Imaging
import TestSupport
import Testing

/// Manifests describe image models and text encoders, and the embedding space of their vectors.
@Suite("Manifests: image models, text encoders and embedding spaces")
struct ManifestModalityTests {
    @Test("a manifest written before modality existed reads as an image model of its own space")
    func olderManifest() throws {
        var json = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(ModelManifest.sscd)) as? [String: Any])
        json.removeValue(forKey: "modality")
        json.removeValue(forKey: "space")
        let manifest = try JSONDecoder().decode(ModelManifest.self, from: JSONSerialization.data(withJSONObject: json))
        #expect(manifest == ModelManifest.sscd)
        #expect(manifest.modality == .image && manifest.embeddingSpace == "sscd")
        #expect(try manifest.imagePolicy() == .shorterSide(size: 288, maxLonger: 1152))
    }

    @Test("a text encoder's manifest is read and checked; it has no image policy, and the image embedder refuses it")
    func textEncoder() throws {
        let text = """
            {"name": "minilm", "summary": "all-MiniLM-L6-v2", "file": "minilm.onnx", "modality": "text",
             "space": "minilm-l6", "input": {"name": "input_ids", "layout": "tokens", "dtype": "int64"},
             "text": {"vocabulary": "minilm-vocab.txt", "maxTokens": 128, "lowercase": true, "ids": "input_ids",
                      "attentionMask": "attention_mask", "tokenTypes": "token_type_ids"},
             "normalization": "mean pooling and L2 inside the graph", "embeddingOutput": "embedding",
             "dimension": 384, "batchable": true, "licence": "Apache-2.0", "installHint": "none"}
            """
        let manifest = try JSONDecoder().decode(ModelManifest.self, from: Data(text.utf8))
        #expect(manifest.problem == nil)
        #expect(manifest.modality == .text && manifest.embeddingSpace == "minilm-l6")
        #expect(throws: ModelError.self) { try manifest.imagePolicy() }
        var broken = manifest
        broken.text = nil
        #expect(broken.problem?.contains("text input") == true)
        broken = manifest
        broken.resize = .centerCrop(size: 224)
        #expect(broken.problem?.contains("no resize policy") == true)
        var image = ModelManifest.sscd
        image.resize = nil
        #expect(image.problem?.contains("resize policy") == true)

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("text-manifest-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data(text.utf8).write(to: directory.appendingPathComponent("minilm.json"))
        try Data("not a model".utf8).write(to: directory.appendingPathComponent("minilm.onnx"))
        let registry = try ModelRegistry(directory: directory)
        #expect(try registry.manifest(named: "minilm").modality == .text)
        do {
            _ = try Embedder(manifest: try registry.manifest(named: "minilm"), registry: registry)
            Issue.record("a text encoder was loaded")
        } catch let error as ModelError {
            #expect("\(error)".contains("text encoders"), "\(error)")
        }
    }
}
