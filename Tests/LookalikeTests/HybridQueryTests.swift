import Foundation
import Embedding
import Imaging
@testable import Lookalike
import Storage
import TestSupport
import Testing

/// "Red shoes under $50": words read into colours, prices, exclusions and an order
/// (`PlainLanguage`), colours seen in the pixels (`ColorProfile`), and both applied to a search.
@Suite("Plain-language queries")
struct PlainLanguageTests {
    private func labels(_ parsed: ParsedQuery) -> [String] { parsed.parts.map(\.label) }

    @Test("shoppers' phrases become colours, price bounds, exclusions and an order; the rest stays words")
    func phrases() {
        var parsed = PlainLanguage.parse("red shoes under $50")
        #expect(parsed.text == "shoes")
        #expect(labels(parsed) == ["red", "price < 50"])
        #expect(parsed.parts.map(\.phrase) == ["red", "under $50"])
        #expect(parsed.filter?.conditions.count == 2)
        #expect(parsed.conflict == nil)

        parsed = PlainLanguage.parse("Blue sofa between 200 and 400")
        #expect(parsed.text == "sofa")
        #expect(labels(parsed) == ["blue", "200 ≤ price ≤ 400"])

        parsed = PlainLanguage.parse("boots not leather, cheapest first")
        #expect(parsed.text == "boots")
        #expect(parsed.without == ["leather"])
        #expect(parsed.order == .priceAscending)
        #expect(labels(parsed) == ["not leather", "cheapest first"])

        parsed = PlainLanguage.parse("light navy-coloured jacket up to €1,200.50 without a hood", priceField: "offer.price")
        #expect(parsed.text == "jacket")
        #expect(parsed.colors == ["blue"])
        #expect(parsed.maximumPrice == ParsedQuery.Bound(value: 1200.5, inclusive: true))
        #expect(parsed.without == ["hood"])
        #expect(parsed.filter?.conditions.contains { $0.path == ["offer", "price"] } == false, "the field is one name, dots and all")
        #expect(parsed.filter?.conditions.contains { $0.path == ["offer.price"] } == true)

        parsed = PlainLanguage.parse("dresses from $20 to $40, not red, most expensive first")
        #expect(parsed.text == "dresses")
        #expect(parsed.notColors == ["red"])
        #expect(parsed.order == .priceDescending)
        #expect(parsed.minimumPrice == ParsedQuery.Bound(value: 20, inclusive: true))
        #expect(parsed.maximumPrice == ParsedQuery.Bound(value: 40, inclusive: true))

        parsed = PlainLanguage.parse("grey coat over 100 dollars and under 90")
        #expect(parsed.conflict?.contains("over 100") == true, "\(parsed.conflict ?? "no conflict")")
        #expect(PlainLanguage.parse("under $10 over $50").conflict != nil)
        #expect(PlainLanguage.parse("red shoes not red").conflict?.contains("red") == true)
        // Two bounds on one side: the narrower holds.
        parsed = PlainLanguage.parse("shoes under 80 below 60")
        #expect(parsed.maximumPrice == ParsedQuery.Bound(value: 60, inclusive: false))
    }

    @Test("words that are not shopping phrases are left alone, whatever the script or length")
    func plainWords() {
        for text in ["a dog on a beach", "size 42 sneakers", "東京の猫", "красные туфли до 50", "Съешь ещё 🐱", "redwood forest",
                     "control\u{7}\u{0}chars", "", "   "] {
            let parsed = PlainLanguage.parse(text)
            #expect(!parsed.isStructured, "\(text.debugDescription): \(labels(parsed))")
            #expect(parsed.text == text.lowercased().split(whereSeparator: { $0.isWhitespace }).joined(separator: " "))
        }
        let long = String(repeating: "red shoes under $50 ", count: 500)
        let parsed = PlainLanguage.parse(long)
        #expect(parsed.colors == ["red"])
        #expect(parsed.maximumPrice?.value == 50)
    }
}

@Suite("Colours and words on a catalogue", .serialized)
struct HybridQueryTests {
    struct Entry {
        let path: String
        let category: String
        let color: String
        let price: Double
    }

    /// The tests' catalogue (`scripts/make_catalogue.py --split train`): dyed Fashion-MNIST photos
    /// whose colour and price are known.
    static func catalogue() throws -> (folder: URL, entries: [Entry]) {
        let folder = TestData.data.appendingPathComponent("fixtures/catalogue")
        guard let text = try? String(contentsOf: folder.appendingPathComponent("catalogue.jsonl"), encoding: .utf8) else {
            throw TestData.Missing(what: "the catalogue fixture (\(folder.path))")
        }
        let entries = text.split(separator: "\n").compactMap { line -> Entry? in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let path = object["path"] as? String, let category = object["category"] as? String,
                  let color = object["color"] as? String, let price = object["price"] as? Double else { return nil }
            return Entry(path: folder.appendingPathComponent(path).path, category: category, color: color, price: price)
        }
        guard entries.count >= 100 else { throw TestData.Missing(what: "the catalogue's entries (at least 100)") }
        return (folder, entries)
    }

    static let shared: Result<(Engine, [String: Entry]), Error> = Result {
        let (folder, entries) = try catalogue()
        let store = try TestData.temporaryDirectory("catalogue")
        let engine = try Engine(configuration: EngineConfiguration(store: store.appendingPathComponent("store")))
        let metadata = try MetadataFile(path: folder.appendingPathComponent("metadata.jsonl").path)
        let report = try engine.add(entries.map(\.path), options: AddOptions(model: ModelManifest.words.name, metadata: metadata))
        guard report.failures.isEmpty, report.added.count == entries.count else {
            throw TestData.Missing(what: "the catalogue embedded with words (\(report.failures.prefix(3)))")
        }
        let byPath = Dictionary(uniqueKeysWithValues: entries.map { ($0.path, $0) })
        return (engine, Dictionary(uniqueKeysWithValues: report.added.compactMap { added in byPath[added.path].map { (added.id, $0) } }))
    }

    private func profile(_ path: String) throws -> ColorProfile {
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        return ColorProfile(of: try ImageDecoder().decode(bytes, policy: try ModelManifest.efficientNetLite0.imagePolicy()))
    }

    @Test("grey photos are all black, white and grey; colourful ones show the colour they are named for")
    func photoColors() throws {
        let photos = Dictionary(uniqueKeysWithValues: try TestData.photoPaths().map { (URL(fileURLWithPath: $0).lastPathComponent, $0) })
        for name in ["skimage-camera.png", "skimage-coins.png", "skimage-moon.png", "skimage-brick.png", "skimage-gravel.png",
                     "skimage-clock_motion.png", "skimage-cell.png"] {
            let profile = try profile(try #require(photos[name]))
            #expect(profile["black"] + profile["white"] + profile["gray"] >= 0.99, "\(name): \(profile.json)")
        }
        for (name, color) in [("mate-greenmeadow.jpg", "green"), ("mate-aqua.jpg", "blue"), ("mate-freshflower.jpg", "red"),
                              ("mate-yellowflower.jpg", "yellow"), ("skimage-retina.jpg", "red"), ("skimage-chelsea.png", "brown"),
                              ("mate-wood.jpg", "brown")] {
            let profile = try profile(try #require(photos[name]))
            #expect(profile.dominant(minimum: ColorProfile.defaultShare).contains(color), "\(name): \(profile.json)")
        }
    }

    @Test("a dyed product shows its dye: the colour passes the default share for nine in ten")
    func dyes() throws {
        let (_, entries) = try Self.catalogue()
        var right = 0
        var wrong: [String] = []
        for entry in entries {
            if try Double(profile(entry.path)[entry.color]) >= ColorProfile.defaultShare { right += 1 } else { wrong.append(entry.path) }
        }
        #expect(Double(right) / Double(entries.count) >= 0.9, "missed: \(wrong.map { URL(fileURLWithPath: $0).lastPathComponent })")
    }

    @Test("red shoes under $50: every hit is red and under 50, and the count that passes is the brute-force count")
    func hybrid() throws {
        let (engine, entries) = try Self.shared.get()
        let answer = try engine.search(.text("red shoes under $50"), options: SearchOptions(top: 100, model: ModelManifest.words.name))
        let parsed = try #require(answer.parsed)
        #expect(parsed.text == "shoes")
        #expect(parsed.parts.map(\.kind) == [.color, .price])
        // Brute force over the stored items: their profiles and prices.
        let items = try engine.items(after: nil, limit: 10_000)
        let expected = items.filter { item in
            Double(item.colors.flatMap(ColorProfile.init(json:))?["red"] ?? 0) >= ColorProfile.defaultShare
                && (SearchPipeline.number(at: ["price"], in: item.metadata) ?? .infinity) < 50
        }
        #expect(!expected.isEmpty)
        #expect(answer.filtered == expected.count)
        #expect(Set(answer.hits.map(\.id)) == Set(expected.map(\.id)))
        let dyedRed = answer.hits.filter { entries[$0.id]?.color == "red" }.count
        #expect(dyedRed * 10 >= answer.hits.count * 9, "\(dyedRed) of \(answer.hits.count) hits were dyed red")
        for hit in answer.hits {
            #expect(hit.colors?.contains("red") == true)
            #expect((entries[hit.id]?.price ?? 100) < 50)
        }
    }

    @Test("the words left over rank: a hybrid query answers as its words alone would, with its filter given by hand")
    func wordsRank() throws {
        let (engine, _) = try Self.shared.get()
        let hybrid = try engine.search(.text("a shoe, not red, under $100"), options: SearchOptions(top: 30, model: ModelManifest.words.name))
        #expect(hybrid.parsed?.text == "a shoe")
        let byHand = try MetadataFilter(json: #"{"$color": {"red": {"$lt": 0.1}}, "price": {"$lt": 100}}"#)
        let plain = try engine.search(.text("a shoe"), options: SearchOptions(top: 30, model: ModelManifest.words.name, filter: byHand))
        #expect(hybrid.hits.count == 30)
        #expect(hybrid.hits.map(\.id) == plain.hits.map(\.id))
        #expect(hybrid.filtered == plain.filtered)
        // "not red" as words would steer away from the word; as a colour it only filters.
        #expect(hybrid.parsed?.without.isEmpty == true)
        let steered = try engine.search(.text("a shoe without laces"), options: SearchOptions(top: 30, model: ModelManifest.words.name))
        let unsteered = try engine.search(.text("a shoe"), options: SearchOptions(top: 30, model: ModelManifest.words.name))
        #expect(steered.parsed?.without == ["laces"])
        #expect(steered.hits.map(\.score) != unsteered.hits.map(\.score))
    }

    @Test("cheapest first sorts by price; a query no item can satisfy answers empty and says why")
    func orderAndConflict() throws {
        let (engine, _) = try Self.shared.get()
        let options = SearchOptions(top: 10, model: ModelManifest.words.name)
        let cheapest = try engine.search(.text("blue bag, cheapest first"), options: options)
        let prices = cheapest.hits.compactMap { SearchPipeline.number(at: ["price"], in: $0.metadata) }
        #expect(prices.count == cheapest.hits.count && prices.count > 1)
        #expect(prices == prices.sorted())
        let conflict = try engine.search(.text("coat under $10 over $50"), options: options)
        #expect(conflict.hits.isEmpty)
        #expect(conflict.notes.map(\.code) == ["conflicting_query"])
        #expect(conflict.parsed?.conflict != nil)
        // Interpretation off: the words go to the text model as they are.
        var literal = options
        literal.interpretText = false
        let plain = try engine.search(.text("red shoes under $50"), options: literal)
        #expect(plain.parsed == nil && plain.filtered == nil && plain.hits.count == 10)
    }

    @Test("an image with words: 'but blue' keeps the image's ranking among blue items only")
    func imageAndWords() throws {
        let (engine, entries) = try Self.shared.get()
        let query = try #require(entries.values.first { $0.category == "sneaker" && $0.color == "red" })
        var search = Query.image(path: query.path)
        search.words = "but blue under 200"
        let answer = try engine.search(search, options: SearchOptions(top: 10, model: ModelManifest.words.name))
        #expect(answer.hits.count == 10)
        #expect(answer.parsed?.colors == ["blue"])
        for hit in answer.hits { #expect(hit.colors?.contains("blue") == true) }
        #expect(answer.hits.filter { entries[$0.id]?.color == "blue" }.count >= 9)
        #expect(answer.notes.isEmpty, "\(answer.notes)")
        search.words = "but blue sneakers"
        let worded = try engine.search(search, options: SearchOptions(top: 10, model: ModelManifest.words.name))
        #expect(worded.notes.map(\.code) == ["words_not_ranked"])
    }

    @Test("the CLI prints how it read the words, and narrows an image search by them")
    func commandLine() throws {
        let folder = try TestData.temporaryDirectory("hybrid-cli")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = folder.appendingPathComponent("store").path
        let photos = Dictionary(uniqueKeysWithValues: try TestData.photoPaths().map { (URL(fileURLWithPath: $0).lastPathComponent, $0) })
        let cat = try #require(photos["skimage-chelsea.png"]), coffee = try #require(photos["skimage-coffee.png"])
        let binary = try TestData.executable()
        let added = try runCommand(binary, ["add", cat, coffee, "--store", store])
        #expect(added.status == 0, "\(added.stderr)")
        let narrowed = try runCommand(binary, ["search", coffee, "--text", "brown, not red", "--store", store])
        #expect(narrowed.status == 0, "\(narrowed.stderr)")
        #expect(narrowed.stdout.contains("understood: brown · not red"), "\(narrowed.stdout)")
        #expect(narrowed.stdout.contains("1 hit from 2 images, 1 of them passing the filter"), "\(narrowed.stdout)")
        #expect(narrowed.stdout.contains(cat) && !narrowed.stdout.contains(coffee), "\(narrowed.stdout)")
        let json = try runCommand(binary, ["search", coffee, "--text", "red", "--json", "--store", store])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect((object["parsed"] as? [String: Any])?["text"] as? String == "")
        #expect((object["hits"] as? [[String: Any]])?.map { $0["path"] as? String } == [coffee])
        let literal = try runCommand(binary, ["search", coffee, "--text", "red", "--literal", "--store", store])
        #expect(literal.status == 64, "\(literal.stderr)")
    }
}
