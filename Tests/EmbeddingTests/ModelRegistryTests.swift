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
        #expect(registry.manifests.map(\.name) == ["efficientnet-lite0", "efficientnet-lite0-gem", "efficientnet-lite0-int8",
                                                  "efficientnet-lite0-gem-int8", "sscd", "sscd-distilled", "phash", "minilm-l6", "words"])
        do {
            _ = try registry.manifest(named: "clip")
            Issue.record("an unknown model should be an error")
        } catch let error as ModelError {
            #expect("\(error)" == "unknown model 'clip'; known models: efficientnet-lite0, efficientnet-lite0-gem, "
                    + "efficientnet-lite0-int8, efficientnet-lite0-gem-int8, sscd, sscd-distilled, phash, minilm-l6, words")
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

/// The 8-bit models (tools/quantize_model.py at setup) against their float32 originals, on the
/// same decoded pixels of every photo of the test set. Measured 2026-12-05: mean 0.953 and 0.957,
/// minimum 0.75 and 0.78 (textures: grass, gravel); a model quantised with full-range weights,
/// which overflow in the x86 kernels without VNNI, gave mean 0.89 and minimum 0.70.
@Suite("8-bit models")
struct EightBitTests {
    @Test("int8 vectors stay close to float32's (cosine mean >= 0.94, min >= 0.72) but are not the same model's",
          arguments: [("efficientnet-lite0", "efficientnet-lite0-int8"), ("efficientnet-lite0-gem", "efficientnet-lite0-gem-int8")])
    func closeToFloat(names: (String, String)) throws {
        let registry = try TestModels.registry()
        let float = try Embedder(manifest: try registry.manifest(named: names.0), registry: registry, threads: 2)
        let quantised = try Embedder(manifest: try registry.manifest(named: names.1), registry: registry, threads: 2)
        #expect(quantised.manifest.dimension == float.manifest.dimension)
        let decoder = ImageDecoder()
        let photos = try FileManager.default.contentsOfDirectory(atPath: TestData.data.appendingPathComponent("photos").path)
            .filter { $0.hasSuffix(".jpg") || $0.hasSuffix(".png") }.sorted()
        #expect(photos.count >= 40)
        var cosines: [Float] = []
        for photo in photos {
            let bytes = [UInt8](try Data(contentsOf: TestData.data.appendingPathComponent("photos/\(photo)")))
            let pixels = try decoder.decode(bytes, policy: try float.manifest.imagePolicy())
            let a = try float.embed([pixels])[0], b = try quantised.embed([pixels])[0]
            cosines.append(zip(a, b).map { $0 * $1 }.reduce(0, +))
        }
        let mean = cosines.reduce(0, +) / Float(cosines.count)
        let worst = cosines.min() ?? 0
        print("\(names.1) against \(names.0) over \(cosines.count) photos: mean cosine \(mean), minimum \(worst)")
        #expect(mean >= 0.94)
        #expect(worst >= 0.72)
        #expect(mean < 0.9999, "the 8-bit file gives the float32 model's vectors")
    }
}
