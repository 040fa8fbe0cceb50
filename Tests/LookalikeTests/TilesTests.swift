import Foundation
import Imaging
import Storage
import TestSupport
import Testing
@testable import Lookalike

/// Region tiles: a part of a photo finds the photo, on both stores, through the engine's graph
/// of parts; whole-image searches are left as they were; removals and later adds keep the parts
/// in step.
@Suite("Region tiles", .serialized)
struct TilesTests {
    static let model = "efficientnet-lite0-gem"

    /// A part of a photo as a query: cut from the photo at full size, saved as a JPEG.
    func part(of path: String, _ region: ImageRegion, into folder: URL, name: String) throws -> String {
        let decoder = ImageDecoder()
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let whole = try decoder.decodeFullSize(bytes)
        let box = region.pixels(width: whole.width, height: whole.height)
        let cut = try decoder.regions(of: whole, [region], policy: .shorterSide(size: min(box.width, box.height),
                                                                                maxLonger: max(box.width, box.height)))[0]
        let url = folder.appendingPathComponent(name)
        try Data(try ImageEncoder.jpeg(cut, quality: 90)).write(to: url)
        return url.path
    }

    @Test("the quarters of a photo find it first with tiles, scoring at least as well as without; whole-image searches can opt out",
          arguments: TestStores.kinds)
    func quartersFindTheirPhoto(_ kind: String) throws {
        let folder = try TestData.temporaryDirectory("tiles")
        defer { try? FileManager.default.removeItem(at: folder) }
        let photos = try TestData.photoPaths()
        // A threshold of 10: the parts (5 per photo) and, on SQLite, the whole images are searched
        // through HNSW graphs, as in a large collection.
        let engine = try Engine(configuration: EngineConfiguration(store: folder.appendingPathComponent("store"),
                                                                   database: TestStores.database(kind), approximateSearchThreshold: 10))
        let report = try engine.add(photos, options: AddOptions(tiles: true))
        #expect(report.failures.isEmpty && report.tileFailures.isEmpty, "\(report.failures) \(report.tileFailures)")
        #expect(report.tiled == photos.count)
        #expect(try engine.stats().vectors[Tiles.model(of: Self.model)] == photos.count)
        let ids = Dictionary(uniqueKeysWithValues: report.added.map { ($0.path, $0.id) })

        // Quarters are the parts the photos were stored with; thirds lie anywhere, across the
        // parts' edges. On 43 varied photos a quarter already finds its photo without tiles; a
        // third often does not.
        var first: [String: (tiles: Int, whole: Int, queries: Int)] = [:]
        let thirds = try [(0.0, 0.0), (2.0 / 3, 2.0 / 3), (0.4, 0.1), (0.1, 0.55)].map {
            try ImageRegion(x: $0.0, y: $0.1, width: 1.0 / 3, height: 1.0 / 3)
        }
        for (number, photo) in photos.enumerated() where number % 3 == 0 {
            let source = try #require(ids[photo])
            for (kind, regions) in [("quarter", Array(Tiles.regions.prefix(4))), ("third", thirds)] {
                for (index, region) in regions.enumerated() {
                    let query = try part(of: photo, region, into: folder, name: "q\(number)-\(kind)\(index).jpg")
                    let tiled = try engine.search(.image(path: query), options: SearchOptions(top: 5))
                    let whole = try engine.search(.image(path: query), options: SearchOptions(top: photos.count, tiles: false))
                    var tally = first[kind] ?? (0, 0, 0)
                    tally.queries += 1
                    if tiled.hits.first?.id == source { tally.tiles += 1 }
                    if whole.hits.first?.id == source { tally.whole += 1 }
                    first[kind] = tally
                    let wholeScore = try #require(whole.hits.first { $0.id == source }?.score)
                    if let tiledScore = tiled.hits.first(where: { $0.id == source })?.score {
                        #expect(tiledScore >= wholeScore - 1e-4, "an item scores the best of its whole image and its parts")
                        // A quarter is one of the parts the photo was stored with, cut the same way
                        // (from the original here, from a decode at twice the model's size there).
                        // A part counts less the margin.
                        if kind == "quarter" { #expect(tiledScore + Tiles.margin > 0.85, "\(photo) quarter \(index) scores \(tiledScore)") }
                    } else {
                        #expect(kind == "third", "\(photo) quarter \(index) is not among the first 5 with tiles")
                    }
                }
            }
        }
        let quarters = try #require(first["quarter"]), third = try #require(first["third"])
        print("tiles: at rank 1 with tiles / without: quarters \(quarters.tiles)/\(quarters.whole) of \(quarters.queries), "
              + "thirds \(third.tiles)/\(third.whole) of \(third.queries) (\(kind))")
        #expect(quarters.tiles == quarters.queries)
        #expect(third.tiles > third.whole, "tiles found \(third.tiles) of \(third.queries) thirds first, whole images \(third.whole)")
        #expect(Double(third.tiles) >= 0.8 * Double(third.queries))

        // `stats` shows the parts' own graph: five vectors a photo.
        let parts = try #require(try engine.indexStatuses().first { $0.model == Tiles.model(of: Self.model) })
        #expect(parts.kind == "hnsw" && parts.vectors == photos.count * Tiles.parts, "\(parts)")

        // A whole photo finds itself with or without tiles, at the same score.
        let photo = photos[1]
        let withTiles = try engine.search(.image(path: photo), options: SearchOptions(top: 3))
        let without = try engine.search(.image(path: photo), options: SearchOptions(top: 3, tiles: false))
        #expect(withTiles.hits.first?.id == ids[photo] && without.hits.first?.id == ids[photo])
        #expect(abs((withTiles.hits.first?.score ?? 0) - (without.hits.first?.score ?? 0)) < 1e-3)
    }

    @Test("a removed photo's parts are never found again; photos stored without tiles gain them when added again with tiles")
    func removalAndBackfill() throws {
        let folder = try TestData.temporaryDirectory("tiles-later")
        defer { try? FileManager.default.removeItem(at: folder) }
        let photos = Array(try TestData.photoPaths().prefix(12))
        let engine = try Engine(configuration: EngineConfiguration(store: folder.appendingPathComponent("store"),
                                                                   approximateSearchThreshold: 10))
        let first = try engine.add(photos)
        #expect(first.tiled == 0 && !first.tiles)
        #expect(try engine.stats().vectors[Tiles.model(of: Self.model)] == nil)
        let query = try part(of: photos[3], try ImageRegion(x: 0.5, y: 0.5, width: 0.5, height: 0.5), into: folder, name: "q.jpg")
        // No tiles stored: a search with tiles on is the whole-image search.
        let before = try engine.search(.image(path: query), options: SearchOptions(top: 12))
        #expect(before.hits.map(\.id) == (try engine.search(.image(path: query), options: SearchOptions(top: 12, tiles: false))).hits.map(\.id))

        let again = try engine.add(photos, options: AddOptions(tiles: true))
        #expect(again.added.isEmpty && again.duplicates.count == photos.count, "nothing is stored twice")
        #expect(again.tiled == photos.count)
        #expect(try engine.stats().vectors[Tiles.model(of: Self.model)] == photos.count)
        let source = try #require(first.added.first { $0.path == photos[3] }?.id)
        let after = try engine.search(.image(path: query), options: SearchOptions(top: 12))
        #expect(after.hits.first?.id == source)
        #expect((after.hits.first?.score ?? 0) + Tiles.margin > 0.85)
        // A cascade's backing model scores whole images; the parts are the main model's alone.
        _ = try engine.add(photos, options: AddOptions(model: "phash"))
        let backed = try engine.search(.image(path: query), options: SearchOptions(top: 12, cascade: ["phash"]))
        #expect(backed.hits.first?.id == source)
        #expect(backed.hits.map(\.id).sorted() == after.hits.map(\.id).sorted())
        // A third add with tiles has nothing left to do.
        #expect(try engine.add(photos, options: AddOptions(tiles: true)).tiled == 0)

        #expect(try engine.remove(ids: [source]) == [source])
        #expect(try engine.stats().vectors[Tiles.model(of: Self.model)] == photos.count - 1)
        let gone = try engine.search(.image(path: query), options: SearchOptions(top: 12))
        #expect(!gone.hits.contains { $0.id == source })
        #expect(gone.hits.count == photos.count - 1)
        // A fresh engine on the store (the snapshot of the parts' graph) agrees.
        let reopened = try Engine(configuration: EngineConfiguration(store: folder.appendingPathComponent("store"),
                                                                     approximateSearchThreshold: 10))
        #expect(try reopened.search(.image(path: query), options: SearchOptions(top: 12)).hits.map(\.id) == gone.hits.map(\.id))

        // The tiles alone forgotten: the items stay and are searched whole, as before they had tiles.
        #expect(try engine.removeTiles(model: Self.model) == photos.count - 1)
        #expect(try engine.stats().vectors[Tiles.model(of: Self.model)] == nil)
        #expect(try engine.stats().items == photos.count - 1)
        let whole = try engine.search(.image(path: query), options: SearchOptions(top: 12))
        #expect(whole.hits.allSatisfy { $0.part == nil })
        #expect(whole.hits.map(\.id) == (try engine.search(.image(path: query), options: SearchOptions(top: 12, tiles: false))).hits.map(\.id))
        let afterRestart = try Engine(configuration: EngineConfiguration(store: folder.appendingPathComponent("store"),
                                                                         approximateSearchThreshold: 10))
        #expect(try afterRestart.search(.image(path: query), options: SearchOptions(top: 12)).hits.allSatisfy { $0.part == nil })
    }

    @Test("a tuned model gets its base's tiles projected, searches with them, and loses them with its base's tiles or itself")
    func tunedModelsTiles() throws {
        let folder = try TestData.temporaryDirectory("tiles-tuned")
        defer { try? FileManager.default.removeItem(at: folder) }
        let photos = Array(try TestData.photoPaths().prefix(12))
        let engine = try Engine(configuration: EngineConfiguration(store: folder.appendingPathComponent("store")))
        // Labels only to have a tuning: a linear head a tiny step from the identity, so the tuned
        // model ranks as its base does and the parts' mechanics are what is tested.
        let records = Dictionary(uniqueKeysWithValues: photos.enumerated().map { ($1, "{\"kind\": \"k\($0 % 3)\"}") })
        let first = try engine.add(Array(photos.prefix(8)), options: AddOptions(metadata: MetadataFile(records: records), tiles: true))
        var options = TuneOptions(name: "t", labels: "kind", force: true)
        options.training.heads = [.linear]
        options.training.maxEpochs = 1
        options.training.learningRate = 1e-5
        _ = try engine.tune(options)
        let tuned = "\(Self.model)+t"
        #expect(try engine.stats().vectors[Tiles.model(of: tuned)] == 8)

        // Items added later with tiles bring the tuned model's tiles too.
        _ = try engine.add(Array(photos.suffix(4)), options: AddOptions(metadata: MetadataFile(records: records), tiles: true))
        #expect(try engine.stats().vectors[Tiles.model(of: tuned)] == 12)

        let source = try #require(first.added.first { $0.path == photos[3] }?.id)
        let quarter = try ImageRegion(x: 0.5, y: 0.5, width: 0.5, height: 0.5)
        let query = try part(of: photos[3], quarter, into: folder, name: "q.jpg")
        let withTiles = try engine.search(.image(path: query), options: SearchOptions(top: 5, model: tuned))
        #expect(withTiles.hits.first?.id == source, "\(withTiles.hits.map(\.id))")
        #expect(withTiles.hits.first?.part == quarter)
        #expect(try engine.search(.image(path: query), options: SearchOptions(top: 5, model: tuned, tiles: false)).hits.allSatisfy { $0.part == nil })

        // A tuned model's tiles are its base's: removing them alone is refused (the next add would bring them back).
        #expect(throws: EngineError.self) { try engine.removeTiles(model: tuned) }
        // The base's tiles removed: the tuned model's go with them.
        #expect(try engine.removeTiles(model: Self.model) == 12)
        #expect(try engine.stats().vectors[Tiles.model(of: tuned)] == nil)
        #expect(try engine.search(.image(path: query), options: SearchOptions(top: 5, model: tuned)).hits.allSatisfy { $0.part == nil })
        // Added again with tiles, then the tuned model removed: its tiles go, the base's stay.
        _ = try engine.add(photos, options: AddOptions(tiles: true))
        #expect(try engine.stats().vectors[Tiles.model(of: tuned)] == 12)
        try engine.removeTunedModel(tuned)
        #expect(try engine.stats().vectors[Tiles.model(of: tuned)] == nil)
        #expect(try engine.stats().vectors[Tiles.model(of: Self.model)] == 12)
    }

    @Test("a stored tiles vector that is not whole parts is an error naming the item")
    func brokenTilesVector() throws {
        let folder = try TestData.temporaryDirectory("tiles-broken")
        defer { try? FileManager.default.removeItem(at: folder) }
        let photos = Array(try TestData.photoPaths().prefix(3))
        let engine = try Engine(configuration: EngineConfiguration(store: folder.appendingPathComponent("store")))
        let report = try engine.add(photos)
        let item = try #require(try engine.store.items(ids: [report.added[0].id]).values.first)
        try engine.store.checkModel(Tiles.model(of: Self.model), fingerprint: "other", dimension: 7, space: nil, record: true)
        try engine.store.insert([(item, [Float](repeating: 0.1, count: 7))], model: Tiles.model(of: Self.model))
        let error = #expect(throws: EngineError.self) {
            try engine.search(.image(path: photos[0]), options: SearchOptions(top: 3))
        }
        #expect("\(error.map { "\($0)" } ?? "")".contains(item.id))
        // Whole-image searches are not affected.
        #expect(try engine.search(.image(path: photos[0]), options: SearchOptions(top: 3, tiles: false)).hits.first?.id == item.id)
    }
}
