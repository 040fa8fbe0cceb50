import Foundation
import Embedding
import Imaging
import Lookalike
import TestSupport
import Testing

/// Words find images: the photo set embedded with `words` (EfficientNet-Lite0's ImageNet classes
/// mixed in all-MiniLM-L6-v2's space), searched with plain descriptions.
@Suite("Text to image", .serialized)
struct TextSearchTests {
    static let shared: Result<(Engine, [String: String], URL), Error> = Result {
        let folder = try TestData.temporaryDirectory("words")
        let engine = try Engine(configuration: EngineConfiguration(store: folder.appendingPathComponent("store")))
        let report = try engine.add(try TestData.photoPaths(), options: AddOptions(model: ModelManifest.words.name))
        guard report.failures.isEmpty, report.added.count >= 20 else {
            throw TestData.Missing(what: "the photo set embedded with words (\(report.failures.prefix(3)))")
        }
        let ids = Dictionary(uniqueKeysWithValues: report.added.map { (URL(fileURLWithPath: $0.path).lastPathComponent, $0.id) })
        return (engine, ids, folder)
    }

    @Test("a description finds the photo it describes first", arguments: [
        ("a cat", "skimage-chelsea.png"), ("a rocket on the launch pad", "skimage-rocket.jpg"),
        ("a cup of coffee", "skimage-coffee.png"), ("a motorcycle", "skimage-motorcycle_left.png"),
        ("a dragonfly", "lomiri-dragonfly.jpg"), ("an old stone bridge", "lomiri-bridge.jpg"),
    ])
    func descriptions(text: String, photo: String) throws {
        let (engine, ids, _) = try Self.shared.get()
        let expected = try #require(ids[photo], "\(photo) is in the photo set")
        let answer = try engine.search(.text(text), options: SearchOptions(top: 5, model: ModelManifest.words.name))
        #expect(answer.hits.first?.id == expected,
                "\(text): ranked \(answer.hits.map { URL(fileURLWithPath: $0.path).lastPathComponent })")
        #expect(answer.notes.isEmpty)
    }

    @Test("text that cannot be searched gets a reason; text longer than the model takes is cut, and the answer says so")
    func badText() throws {
        let (engine, _, _) = try Self.shared.get()
        let options = SearchOptions(top: 3, model: ModelManifest.words.name)
        for (text, reason) in [("", "empty"), ("  \n\t ", "empty"), (String(repeating: "x", count: 10_001), "at most 10000")] {
            do {
                _ = try engine.search(.text(text), options: options)
                Issue.record("\(text.prefix(20).debugDescription) was searched")
            } catch let error as EngineError {
                #expect("\(error)".contains(reason), "\(error)")
            }
        }
        let long = try engine.search(.text(Array(repeating: "a cat on a sofa", count: 100).joined(separator: ", ")), options: options)
        #expect(long.notes.map(\.code) == ["text_truncated"])
        #expect(long.hits.count == 3)
        for text in ["東京の猫", "Съешь ещё 🐱", "control\u{7}\u{0}chars"] {
            #expect(try engine.search(.text(text), options: options).hits.count == 3, "\(text.debugDescription)")
        }
        // The image models have no text encoder in their space: still refused with the reason.
        #expect(throws: EngineError.self) { try engine.search(.text("a cat"), options: SearchOptions(model: ModelManifest.defaultName)) }
    }

    @Test("the CLI searches in words with the words model by default")
    func commandLine() throws {
        let (_, ids, folder) = try Self.shared.get()
        let result = try runCommand(try TestData.executable(), ["search", "--text", "a cup of coffee", "--top", "2", "--json",
                                                               "--store", folder.appendingPathComponent("store").path])
        #expect(result.status == 0, "\(result.stderr)")
        let answer = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(answer["model"] as? String == "words")
        #expect((answer["hits"] as? [[String: Any]])?.first?["id"] as? String == ids["skimage-coffee.png"])
        // Words beside an image narrow it (HybridQueryTests); an image and an item are two queries.
        let both = try runCommand(try TestData.executable(), ["search", "query.jpg", "--item", "0123456789abcdef", "--text", "a cat"])
        #expect(both.status == 64)
        #expect(both.stderr.contains("give one query"))
    }

    @Test("eval measures queries in words: each description finds its photo first")
    func evaluation() throws {
        let folder = try TestData.temporaryDirectory("words-eval")
        defer { try? FileManager.default.removeItem(at: folder) }
        let photos = try TestData.photoPaths()
        func photo(_ name: String) throws -> String { try #require(photos.first { $0.hasSuffix("/" + name) }) }
        var lines: [String] = []
        for (name, text) in [("skimage-chelsea.png", "a cat"), ("skimage-coffee.png", "a cup of coffee"), ("skimage-rocket.jpg", "a rocket")] {
            lines.append(#"{"path": "\#(try photo(name))", "role": "gallery", "group": "\#(name)"}"#)
            lines.append(#"{"text": "\#(text)", "role": "query", "group": "\#(name)"}"#)
        }
        for other in photos.filter({ !$0.contains("skimage-c") && !$0.contains("rocket") }).prefix(5) {
            lines.append(#"{"path": "\#(other)", "role": "distractor"}"#)
        }
        let manifest = folder.appendingPathComponent("words.jsonl")
        try lines.joined(separator: "\n").write(to: manifest, atomically: false, encoding: .utf8)
        let result = try runCommand(try TestData.executable(), ["eval", manifest.path, "--model", "words", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let overall = try #require(report["overall"] as? [String: Any])
        #expect(overall["queries"] as? Int == 3)
        #expect(overall["recall_at_1"] as? Double == 1, "\(report["queries"] ?? "")")
    }

    @Test("bring your own dual encoder: an image tower and a text tower naming one space search pictures by words")
    func dualEncoder() throws {
        let folder = try TestData.temporaryDirectory("dual-encoder")
        defer { try? FileManager.default.removeItem(at: folder) }
        // A models folder with a tiny CLIP-shaped pair (random weights but for the colour words)
        // and this machine's ONNX Runtime.
        let models = folder.appendingPathComponent("models")
        let made = try runCommand(TestData.python, [TestData.repository.appendingPathComponent("tests/python/make_tiny_clip.py").path, models.path])
        #expect(made.status == 0, "\(made.stderr)")
        try FileManager.default.createSymbolicLink(at: models.appendingPathComponent("onnxruntime"),
                                                   withDestinationURL: ModelRegistry.defaultDirectory().appendingPathComponent("onnxruntime"))
        let engine = try Engine(configuration: EngineConfiguration(store: folder.appendingPathComponent("store"), models: models))
        var paths: [String: String] = [:]
        for (name, rgb) in [("red", [220, 30, 40]), ("green", [30, 200, 60]), ("blue", [40, 50, 210]), ("grey", [128, 128, 128])] {
            let pixels = Pixels(width: 48, height: 40, rgb: (0..<(48 * 40)).flatMap { _ in rgb.map(UInt8.init) })
            let path = folder.appendingPathComponent("\(name).jpg").path
            try Data(try ImageEncoder.jpeg(pixels, quality: 95)).write(to: URL(fileURLWithPath: path))
            paths[name] = path
        }
        let report = try engine.add(Array(paths.values), options: AddOptions(model: "tiny-clip-image"))
        #expect(report.added.count == 4, "\(report.failures)")
        let ids = Dictionary(uniqueKeysWithValues: report.added.map { ($0.path, $0.id) })
        for (text, colour) in [("red", "red"), ("a photo of the colour green", "green"), ("Blue.", "blue")] {
            let answer = try engine.search(.text(text), options: SearchOptions(top: 4, model: "tiny-clip-image"))
            #expect(answer.hits.first?.id == ids[paths[colour] ?? ""], "\(text): \(answer.hits.map(\.path))")
        }
        // The text tower alone embeds no images.
        #expect(throws: (any Error).self) { try engine.add([paths["red"] ?? ""], options: AddOptions(model: "tiny-clip-text")) }
    }
}
