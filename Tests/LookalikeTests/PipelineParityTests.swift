import Embedding
import Foundation
import Imaging
import TestSupport
import Testing

/// The Swift pipeline (libvips decode and resize + ONNX Runtime) against the Python reference
/// pipeline (Pillow + onnxruntime, same model, same size policy) on the real photo set.
@Suite("Pipeline parity with the Python reference")
struct PipelineParityTests {
    struct Reference: Decodable {
        struct Item: Decodable {
            let path: String
            let embedding: [Float]
        }
        let items: [Item]
    }

    @Test("mean cosine >= 0.995 and minimum >= 0.98 over the photo set")
    func parity() throws {
        let photos = try TestData.photoPaths()
        let registry = try ModelRegistry(directory: ModelRegistry.defaultDirectory())
        let manifest = ModelManifest.efficientNetLite0
        let output = try TestData.temporaryDirectory("parity").appendingPathComponent("reference.json")
        defer { try? FileManager.default.removeItem(at: output.deletingLastPathComponent()) }
        guard case .shorterSide(let size, let maxLonger) = manifest.resize else {
            Issue.record("the default model is expected to keep aspect ratio")
            return
        }
        let result = try runCommand(TestData.python, [
            TestData.repository.appendingPathComponent("tools/reference_pipeline.py").path,
            "--model", try registry.installedPath(of: manifest), "--short-side", "\(size)", "--max-long", "\(maxLonger)",
            "--threads", "2", "--out", output.path,
        ] + photos)
        #expect(result.status == 0, "reference pipeline failed: \(result.stderr)")
        let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: output))
        #expect(reference.items.count == photos.count)

        let embedder = try Embedder(manifest: manifest, registry: registry, threads: 2)
        let decoder = ImageDecoder()
        var cosines: [(String, Float)] = []
        for item in reference.items {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: item.path)))
            let vector = try embedder.embed([try decoder.decode(bytes, policy: try manifest.imagePolicy())])[0]
            let cosine = zip(vector, VectorNormalization.normalized(item.embedding)).map { $0 * $1 }.reduce(0, +)
            cosines.append((URL(fileURLWithPath: item.path).lastPathComponent, cosine))
        }
        let mean = cosines.map(\.1).reduce(0, +) / Float(cosines.count)
        let worst = try #require(cosines.min { $0.1 < $1.1 })
        print("pipeline parity over \(cosines.count) photos: mean cosine \(mean), minimum \(worst.1) (\(worst.0))")
        #expect(mean >= 0.995)
        #expect(worst.1 >= 0.98, "\(worst.0) has cosine \(worst.1)")
    }
}
