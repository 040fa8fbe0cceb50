import Embedding
import Foundation
import Testing

/// The converted EfficientNet-Lite0, run from Swift through our ONNX Runtime bindings, must give
/// the reference implementation's outputs on the exact reference pixels.
///
/// Tolerances: features and logits |Δ| <= 1e-4, embedding |Δ| <= 1e-5. The reference measured
/// float32 noise of about 7e-6 (features/logits) and 5e-7 (embedding) between equivalent
/// float32 runs, so these bounds leave ~15x headroom, while a padding-convention mistake
/// moves logits by 0.4-1.1 and a conversion bug by 1e-2 or more.
@Suite("EfficientNet-Lite0 reference parity")
struct ReferenceParityTests {
    static let images = ["astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "ihc", "camera",
                         "retina", "coins", "clock_motion", "china", "flower"]

    let session: InferenceSession

    init() throws {
        let registry = try TestModels.registry()
        let path = try registry.installedPath(of: .efficientNetLite0)
        let runtime = try OnnxRuntime.shared(libraryPath: registry.runtimeLibraryPath())
        session = try InferenceSession(runtime: runtime, modelPath: path, threads: 2)
    }

    @Test("model declares a dynamic uint8 NHWC input and the three outputs")
    func signature() throws {
        #expect(session.inputNames == ["image"])
        #expect(Set(session.outputNames) == ["embedding", "logits", "features"])
        let input = try session.inputShape(0)
        #expect(input.elementType == 2)  // uint8
        #expect(input.shape == [-1, -1, -1, 3])
    }

    @Test("crop224 and short224 (SAME padding) outputs match", arguments: ["crop224", "short224"])
    func parity(variant: String) throws {
        let prefix = variant == "crop224" ? "crop224" : "short224_samepad"
        let expected = try ["features", "embedding", "logits"].map {
            try NumpyArray(contentsOf: TestModels.reference.appendingPathComponent("\(prefix)_\($0).npy"))
        }
        for (row, image) in Self.images.enumerated() {
            let input = try NumpyArray(contentsOf: TestModels.reference.appendingPathComponent("inputs/\(image)_\(variant).npy"))
            let tensor = Tensor(shape: [1] + input.shape, values: input.uint8)
            let outputs = try session.run(input: "image", uint8: tensor, outputs: ["features", "embedding", "logits"])
            for (index, name) in ["features", "embedding", "logits"].enumerated() {
                let got = try #require(outputs[name]).values
                let want = expected[index].floatRow(row)
                #expect(got.count == want.count, "\(image) \(variant) \(name): \(got.count) values, expected \(want.count)")
                let worst = zip(got, want).map { abs($0 - $1) }.max() ?? .infinity
                let tolerance: Float = name == "embedding" ? 1e-5 : 1e-4
                #expect(worst <= tolerance, "\(image) \(variant) \(name): max |Δ| = \(worst)")
            }
            let logits = try #require(outputs["logits"]).values
            #expect(top5(logits) == top5(expected[2].floatRow(row)), "\(image) \(variant): top-5 classes differ")
        }
    }

    @Test("a batch of the 12 crop224 inputs gives the same embeddings as one at a time")
    func batch() throws {
        var values: [UInt8] = []
        for image in Self.images {
            values += try NumpyArray(contentsOf: TestModels.reference.appendingPathComponent("inputs/\(image)_crop224.npy")).uint8
        }
        let outputs = try session.run(
            input: "image", uint8: Tensor(shape: [12, 224, 224, 3], values: values), outputs: ["embedding"])
        let embedding = try #require(outputs["embedding"])
        #expect(embedding.shape == [12, 1280])
        let expected = try NumpyArray(contentsOf: TestModels.reference.appendingPathComponent("crop224_embedding.npy"))
        for row in 0..<12 {
            let worst = zip(embedding.row(row), expected.floatRow(row)).map { abs($0 - $1) }.max() ?? .infinity
            #expect(worst <= 1e-5, "row \(row): max |Δ| = \(worst)")
        }
    }

    @Test("a bad model file gives ONNX Runtime's error, not a crash")
    func badModel() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lookalike-not-a-model.onnx")
        try Data("not a model".utf8).write(to: path)
        defer { try? FileManager.default.removeItem(at: path) }
        #expect(throws: OnnxRuntimeError.self) {
            _ = try InferenceSession(runtime: session.runtime, modelPath: path.path)
        }
    }

    private func top5(_ logits: [Float]) -> [Int] {
        Array(logits.indices.sorted { logits[$0] > logits[$1] }.prefix(5))
    }
}
