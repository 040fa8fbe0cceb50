import Embedding
import Foundation
import Imaging
import TestSupport
import Testing

@Suite("ModelRegistry")
struct ModelRegistryTests {
    func folder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("registry-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test("the built-in models are known; an unknown name lists them")
    func unknown() throws {
        let directory = try folder()
        defer { try? FileManager.default.removeItem(at: directory) }
        let registry = try ModelRegistry(directory: directory)
        #expect(registry.manifests.map(\.name) == ["efficientnet-lite0", "efficientnet-lite0-gem", "sscd", "sscd-distilled", "phash", "minilm-l6", "words"])
        do {
            _ = try registry.manifest(named: "clip")
            Issue.record("an unknown model should be an error")
        } catch let error as ModelError {
            #expect("\(error)" == "unknown model 'clip'; known models: efficientnet-lite0, efficientnet-lite0-gem, sscd, sscd-distilled, phash, minilm-l6, words")
        }
    }

    @Test("a model that is not installed says where it was looked for and how to install it")
    func notInstalled() throws {
        let directory = try folder()
        defer { try? FileManager.default.removeItem(at: directory) }
        let registry = try ModelRegistry(directory: directory)
        #expect(!registry.isInstalled(.efficientNetLite0))
        do {
            _ = try Embedder(manifest: .efficientNetLite0, registry: registry)
            Issue.record("a missing model should be an error")
        } catch let error as ModelError {
            let text = "\(error)"
            #expect(text.contains(directory.appendingPathComponent("efficientnet-lite0.onnx").path))
            #expect(text.contains("make setup"))
        }
    }

    @Test("a JSON manifest in the models folder adds a model; a broken one names its file")
    func userManifests() throws {
        let directory = try folder()
        defer { try? FileManager.default.removeItem(at: directory) }
        var manifest = ModelManifest.sscdDistilled
        manifest.name = "my-copy-model"
        manifest.file = "mine.onnx"
        try JSONEncoder().encode(manifest).write(to: directory.appendingPathComponent("my-copy-model.json"))
        let registry = try ModelRegistry(directory: directory)
        #expect(try registry.manifest(named: "my-copy-model") == manifest)

        try Data("{\"name\": 3}".utf8).write(to: directory.appendingPathComponent("broken.json"))
        do {
            _ = try ModelRegistry(directory: directory)
            Issue.record("a broken manifest should be an error")
        } catch let error as ModelError {
            #expect("\(error)".contains(directory.appendingPathComponent("broken.json").path))
        }
    }

    @Test("manifests with impossible values are refused", arguments: [
        (ResizePolicy.centerCrop(size: 0), 512, "resize policy"),
        (ResizePolicy.shorterSide(size: 20000, maxLonger: 80000), 512, "resize policy"),
        (ResizePolicy.shorterSide(size: 224, maxLonger: 100), 512, "resize policy"),
        (ResizePolicy.shorterSide(size: 224, maxLonger: 896), 0, "dimension 0"),
    ])
    func impossibleManifests(resize: ResizePolicy, dimension: Int, complaint: String) throws {
        let directory = try folder()
        defer { try? FileManager.default.removeItem(at: directory) }
        var manifest = ModelManifest.sscdDistilled
        manifest.name = "odd"
        manifest.resize = resize
        manifest.dimension = dimension
        try JSONEncoder().encode(manifest).write(to: directory.appendingPathComponent("odd.json"))
        do {
            _ = try ModelRegistry(directory: directory)
            Issue.record("the manifest should be refused")
        } catch let error as ModelError {
            #expect("\(error)".contains(complaint), "\(error)")
        }
    }

    @Test("a manifest naming tensors the model lacks is refused with the names it has")
    func wrongTensorNames() throws {
        let installed = try TestModels.registry()
        let directory = try folder()
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createSymbolicLink(
            at: directory.appendingPathComponent("effnet.onnx"),
            withDestinationURL: URL(fileURLWithPath: installed.path(of: .efficientNetLite0)))
        try FileManager.default.createSymbolicLink(
            at: directory.appendingPathComponent("onnxruntime"),
            withDestinationURL: installed.directory.appendingPathComponent("onnxruntime"))
        var manifest = ModelManifest.efficientNetLite0
        manifest.name = "wrong-output"
        manifest.file = "effnet.onnx"
        manifest.embeddingOutput = "pooled"
        try JSONEncoder().encode(manifest).write(to: directory.appendingPathComponent("wrong-output.json"))
        let registry = try ModelRegistry(directory: directory)
        do {
            _ = try Embedder(manifest: try registry.manifest(named: "wrong-output"), registry: registry)
            Issue.record("a manifest with a wrong output name should be refused")
        } catch let error as ModelError {
            #expect("\(error)".contains("no tensor named 'pooled'") && "\(error)".contains("embedding"))
        }
    }
}

/// The copy-detection models, loaded as published, on real photos.
@Suite("SSCD models")
struct SSCDTests {
    @Test("SSCD and SSCD-distilled give unit 512-d vectors; an edited copy is closer than another photo",
          arguments: ["sscd", "sscd-distilled"])
    func embeddings(name: String) throws {
        let registry = try TestModels.registry()
        let embedder = try Embedder(manifest: try registry.manifest(named: name), registry: registry, threads: 2)
        let decoder = ImageDecoder()
        let data = TestData.data
        func vector(_ path: String) throws -> [Float] {
            let bytes = [UInt8](try Data(contentsOf: data.appendingPathComponent(path)))
            return try embedder.embed([try decoder.decode(bytes, policy: try embedder.manifest.imagePolicy())])[0]
        }
        let original = try vector("photos/skimage-coffee.png")
        let edited = try vector("edits/skimage-coffee__crop80.jpg")
        let other = try vector("photos/skimage-chelsea.png")
        #expect(original.count == 512)
        let norm = original.map { $0 * $0 }.reduce(0, +).squareRoot()
        #expect(abs(norm - 1) < 1e-4)
        func cosine(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { $0 * $1 }.reduce(0, +) }
        #expect(cosine(original, edited) > 0.5, "copy similarity \(cosine(original, edited))")
        #expect(cosine(original, edited) > cosine(original, other) + 0.3)
    }
}
