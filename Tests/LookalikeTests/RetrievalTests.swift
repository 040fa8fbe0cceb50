import Foundation
@testable import Catalog
import Embedding
import Imaging
import Lookalike
import TestSupport
import Testing

/// The promise of the product on real photos: an edited copy finds its original at rank 1.
@Suite("Retrieval of edited copies", .serialized)
struct RetrievalTests {
    @Test("every edit (50% resize, 80% crop, JPEG q30, EXIF rotation, +30% brightness) finds its original at rank 1",
          arguments: TestStores.kinds)
    func editsFindOriginals(_ kind: String) throws {
        let photos = try TestData.photoPaths()
        let store = try TestData.temporaryDirectory("retrieval")
        defer { try? FileManager.default.removeItem(at: store) }
        let engine = try Engine(configuration: EngineConfiguration(store: store, database: TestStores.database(kind)))
        let report = try engine.add(photos)
        #expect(report.failures.isEmpty, "\(report.failures)")
        #expect(report.added.count == photos.count)
        let idByPath = Dictionary(uniqueKeysWithValues: report.added.map { ($0.path, $0.id) })

        var misses: [String] = []
        var margins: [Float] = []
        for photo in photos {
            let stem = URL(fileURLWithPath: photo).deletingPathExtension().lastPathComponent
            for kind in TestData.editKinds {
                let edit = TestData.edits.appendingPathComponent("\(stem)__\(kind).jpg").path
                guard FileManager.default.fileExists(atPath: edit) else { throw TestData.Missing(what: edit) }
                let answer = try engine.search(imageAt: edit, top: 2)
                if answer.hits.first?.id != idByPath[photo] {
                    misses.append("\(stem)__\(kind) -> \(answer.hits.first?.path ?? "nothing")")
                } else if answer.hits.count == 2 {
                    margins.append(answer.hits[0].score - answer.hits[1].score)
                }
            }
        }
        #expect(misses.isEmpty, "edits not found at rank 1: \(misses)")
        let queries = photos.count * TestData.editKinds.count
        print("retrieval: \(queries - misses.count)/\(queries) edits at rank 1; smallest margin over rank 2: \(margins.min() ?? 0)")
    }

    @Test("adding the same bytes again is a duplicate, and remove deletes the item from search", arguments: TestStores.kinds)
    func duplicatesAndRemoval(_ kind: String) throws {
        let photos = Array(try TestData.photoPaths().prefix(3))
        let store = try TestData.temporaryDirectory("duplicates")
        defer { try? FileManager.default.removeItem(at: store) }
        let copy = store.appendingPathComponent("copy-of-first.png")
        try FileManager.default.copyItem(atPath: photos[0], toPath: copy.path)
        let engine = try Engine(configuration: EngineConfiguration(store: store.appendingPathComponent("store"),
                                                                   database: TestStores.database(kind)))
        let first = try engine.add(photos)
        #expect(first.added.count == 3)
        let second = try engine.add(photos + [copy.path])
        #expect(second.added.isEmpty)
        #expect(second.duplicates.count == 4)
        #expect(second.duplicates.last?.existingId == first.added[0].id)

        let removed = try engine.remove(ids: [first.added[0].id, "nonexistent"])
        #expect(removed == [first.added[0].id])
        let answer = try engine.search(imageAt: photos[0], top: 5)
        #expect(answer.searched == 2)
        #expect(!answer.hits.contains { $0.id == first.added[0].id })
        #expect(try engine.stats().items == 2)
    }

    @Test("the same bytes twice in one batch are stored once; metadata given later updates a stored item",
          arguments: TestStores.kinds)
    func duplicatesInOneBatch(_ kind: String) throws {
        let photo = try TestData.photoPaths()[0]
        let folder = try TestData.temporaryDirectory("same-batch")
        defer { try? FileManager.default.removeItem(at: folder) }
        let copy = folder.appendingPathComponent("copy.png").path
        try FileManager.default.copyItem(atPath: photo, toPath: copy)
        let engine = try Engine(configuration: EngineConfiguration(store: folder.appendingPathComponent("store"),
                                                                   database: TestStores.database(kind)))
        let report = try engine.add([photo, copy])
        #expect(report.added.map(\.path) == [photo])
        #expect(report.duplicates.map(\.path) == [copy])
        #expect(report.duplicates.first?.existingId == report.added.first?.id)

        let csv = folder.appendingPathComponent("meta.csv")
        try "path,sku\ncopy.png,007\n".write(to: csv, atomically: false, encoding: .utf8)
        let again = try engine.add([copy], options: AddOptions(metadata: try MetadataFile(path: csv.path)))
        #expect(again.duplicates.count == 1)
        let hit = try #require(try engine.search(imageAt: photo, top: 1).hits.first)
        #expect(hit.metadata == #"{"sku":"007"}"#, "a code with a leading zero stays text")
    }

    @Test("a store that refuses a write stops the batch: earlier chunks stay, the rest is reported")
    func refusedWrite() throws {
        let photos = try TestData.photoPaths()
        let folder = try TestData.temporaryDirectory("store-write")
        defer { try? FileManager.default.removeItem(at: folder) }
        // 40 distinct files: the first chunk (32) is stored, the second holds the file the store refuses.
        var inputs: [String] = []
        for index in 0..<40 {
            let name = index == 35 ? "refuse-me-\(index).png" : "photo-\(index).png"
            let path = folder.appendingPathComponent(name).path
            var bytes = try Data(contentsOf: URL(fileURLWithPath: photos[index % photos.count]))
            if index >= photos.count { bytes.append(contentsOf: [UInt8(index)]) }  // different bytes, same picture
            try bytes.write(to: URL(fileURLWithPath: path))
            inputs.append(path)
        }
        let engine = try Engine(configuration: EngineConfiguration(store: folder.appendingPathComponent("store")))
        try #require(engine.store as? Catalog).withDatabaseForTesting { db in
            try db.execute(sql: """
                CREATE TRIGGER refuse BEFORE INSERT ON item WHEN NEW.source_path LIKE '%refuse-me-%'
                BEGIN SELECT RAISE(ABORT, 'disk full (simulated)'); END
                """)
        }
        let report = try engine.add(inputs)
        #expect(report.storeError?.contains("disk full (simulated)") == true, "\(report.storeError ?? "no error")")
        #expect(report.added.count == 32)
        #expect(report.failures.count == 8)
        #expect(report.failures.allSatisfy { $0.reason.contains("not stored") || $0.reason.contains("not attempted") })
        #expect(try engine.stats().items == 32)
        let hit = try #require(try engine.search(imageAt: inputs[0], top: 1).hits.first)
        #expect(hit.path == inputs[0])
    }

    @Test("a cascade: the perceptual hash vouches for a tiny, blocky thumbnail that the copy model cannot see")
    func cascade() throws {
        let photos = try TestData.photoPaths()
        let chelsea = try #require(photos.first { $0.hasSuffix("skimage-chelsea.png") })
        let absent = try #require(photos.first { $0.hasSuffix("mate-garden.jpg") })
        let folder = try TestData.temporaryDirectory("cascade")
        defer { try? FileManager.default.removeItem(at: folder) }
        let engine = try Engine(configuration: EngineConfiguration(store: folder.appendingPathComponent("store")))
        let stored = photos.filter { $0 != absent }
        for model in ["sscd-distilled", "phash"] {
            #expect(try engine.add(stored, options: AddOptions(model: model)).failures.isEmpty)
        }
        // 56 px on the longer side at JPEG quality 8, as thumbnails scraped from elsewhere look.
        let decoder = ImageDecoder()
        func thumbnail(_ path: String) throws -> [UInt8] {
            try decoder.thumbnailJPEG(try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))), size: 56, quality: 8)
        }
        let alone = SearchOptions(top: 5, model: "sscd-distilled")
        var backed = alone
        backed.cascade = ["phash"]

        let plain = try engine.search(bytes: try thumbnail(chelsea), options: alone)
        #expect(!plain.hits.contains { $0.path == chelsea && $0.duplicate }, "the copy model alone is not sure")
        let cascaded = try engine.search(bytes: try thumbnail(chelsea), options: backed)
        #expect(cascaded.hits.first?.path == chelsea)
        #expect(cascaded.hits.first?.duplicate == true)
        #expect(cascaded.hits.filter(\.duplicate).count == 1)
        #expect(cascaded.hits.map(\.score) == cascaded.hits.map(\.score).sorted(by: >))
        #expect(cascaded.model == "sscd-distilled" && cascaded.searched == stored.count)
        // The other hits keep their own scores from the copy model.
        #expect(Array(cascaded.hits.dropFirst().map(\.id)) == Array(plain.hits.filter { $0.path != chelsea }.map(\.id).prefix(4)))

        // A photo that is not stored: the hash is sure of nothing, so nothing is marked a copy.
        let stranger = try engine.search(bytes: try thumbnail(absent), options: backed)
        #expect(!stranger.hits.contains { $0.duplicate })
        // "More like this" backs up with the stored item's own pHash.
        let id = try #require(cascaded.hits.first?.id)
        let itself = try engine.search(itemID: id, options: backed)
        #expect(itself.hits.first?.id == id && itself.hits.first?.duplicate == true)
    }

    @Test("the cascade from the command line: add with two models, search with one backing the other")
    func cascadeCommand() throws {
        let photos = try TestData.photoPaths()
        let chelsea = try #require(photos.first { $0.hasSuffix("skimage-chelsea.png") })
        let folder = try TestData.temporaryDirectory("cascade-cli")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = folder.appendingPathComponent("store").path
        let lookalike = try TestData.executable()
        let added = try runCommand(lookalike, ["add"] + Array(photos.prefix(12)) + [chelsea, "--model", "sscd-distilled",
                                                                                   "--model", "phash", "--json", "--store", store])
        #expect(added.status == 0, "\(added.stderr)")
        let reports = try #require(try JSONSerialization.jsonObject(with: Data(added.stdout.utf8)) as? [[String: Any]])
        #expect(reports.map { $0["model"] as? String } == ["sscd-distilled", "phash"])
        #expect(reports.allSatisfy { ($0["added"] as? [Any])?.count == 13 })

        let thumbnail = folder.appendingPathComponent("thumbnail.jpg")
        try Data(try ImageDecoder().thumbnailJPEG(try [UInt8](Data(contentsOf: URL(fileURLWithPath: chelsea))), size: 56, quality: 8))
            .write(to: thumbnail)
        let search = try runCommand(lookalike, ["search", thumbnail.path, "--model", "sscd-distilled", "--cascade", "phash",
                                                "--top", "3", "--json", "--store", store])
        #expect(search.status == 0, "\(search.stderr)")
        let answer = try #require(try JSONSerialization.jsonObject(with: Data(search.stdout.utf8)) as? [String: Any])
        let first = try #require((answer["hits"] as? [[String: Any]])?.first)
        #expect(first["path"] as? String == chelsea)
        #expect(first["duplicate"] as? Bool == true)
        let text = try runCommand(lookalike, ["add", chelsea, "--model", "sscd-distilled", "--model", "phash", "--store", store])
        #expect(text.stdout.split(separator: "\n").count == 2 && text.stdout.contains("duplicates 1, failed 0 (model phash"))
    }

    @Test("a store refuses vectors from a changed model under the same name")
    func changedModel() throws {
        let photos = Array(try TestData.photoPaths().prefix(2))
        let folder = try TestData.temporaryDirectory("changed-model")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = folder.appendingPathComponent("store")
        let mean = AddOptions(model: ModelManifest.efficientNetLite0.name)
        _ = try Engine(configuration: EngineConfiguration(store: store)).add([photos[0]], options: mean)

        // The same name, the same file, another preprocessing: its vectors would not be comparable.
        let installed = try ModelRegistry(directory: ModelRegistry.defaultDirectory())
        let models = folder.appendingPathComponent("models")
        try FileManager.default.createDirectory(at: models, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            at: models.appendingPathComponent("efficientnet-lite0.onnx"),
            withDestinationURL: URL(fileURLWithPath: installed.path(of: .efficientNetLite0)))
        try FileManager.default.createSymbolicLink(
            at: models.appendingPathComponent("onnxruntime"),
            withDestinationURL: installed.directory.appendingPathComponent("onnxruntime"))
        var changed = ModelManifest.efficientNetLite0
        changed.resize = .shorterSide(size: 320, maxLonger: 1280)
        try JSONEncoder().encode(changed).write(to: models.appendingPathComponent("efficientnet-lite0.json"))
        let engine = try Engine(configuration: EngineConfiguration(store: store, models: models))
        #expect(throws: CatalogError.self) { _ = try engine.add([photos[1]], options: mean) }
        #expect(throws: CatalogError.self) { _ = try engine.search(imageAt: photos[1], model: mean.model) }
        #expect(try engine.stats().items == 1)
    }

    @Test("metadata from a JSON Lines file is stored with its images")
    func metadata() throws {
        let photos = Array(try TestData.photoPaths().prefix(2))
        let folder = try TestData.temporaryDirectory("metadata")
        defer { try? FileManager.default.removeItem(at: folder) }
        let lines = photos.enumerated().map { #"{"path": "\#($1)", "price": \#(10 * ($0 + 1)), "colour": "red"}"# }
        let file = folder.appendingPathComponent("meta.jsonl")
        try lines.joined(separator: "\n").write(to: file, atomically: false, encoding: .utf8)
        let engine = try Engine(configuration: EngineConfiguration(store: folder.appendingPathComponent("store")))
        _ = try engine.add(photos, options: AddOptions(metadata: try MetadataFile(path: file.path)))
        let hit = try #require(try engine.search(imageAt: photos[1], top: 1).hits.first)
        #expect(hit.metadata == #"{"colour":"red","price":20}"#)
    }
}

/// The pHash baseline runs through the same engine as the neural models.
@Suite("pHash baseline", .serialized)
struct PerceptualHashTests {
    @Test("pHash finds JPEG-q30 and half-size copies at rank 1, with scores 1 - 2 * hamming / 64")
    func phash() throws {
        let photos = try TestData.photoPaths()
        let store = try TestData.temporaryDirectory("phash")
        defer { try? FileManager.default.removeItem(at: store) }
        let engine = try Engine(configuration: EngineConfiguration(store: store))
        let report = try engine.add(photos, options: AddOptions(model: "phash"))
        #expect(report.failures.isEmpty, "\(report.failures)")
        let idByPath = Dictionary(uniqueKeysWithValues: report.added.map { ($0.path, $0.id) })
        var misses: [String] = []
        for photo in photos {
            let stem = URL(fileURLWithPath: photo).deletingPathExtension().lastPathComponent
            for kind in ["q30", "half"] {
                let answer = try engine.search(imageAt: TestData.edits.appendingPathComponent("\(stem)__\(kind).jpg").path,
                                               top: 3, model: "phash")
                if answer.hits.first?.id != idByPath[photo] { misses.append("\(stem)__\(kind)") }
                // The calibrated threshold (Hamming distance 6 of 64) marks the copy, not the rest.
                if kind == "q30", let first = answer.hits.first, first.id == idByPath[photo] {
                    #expect(first.duplicate, "\(stem)__q30 scored \(first.score)")
                }
                #expect(answer.hits.dropFirst().allSatisfy { !$0.duplicate }, "\(stem)__\(kind): an unrelated photo marked as a copy")
                for hit in answer.hits {
                    // A cosine of two +-1 hashes of 64 bits is a multiple of 1/32.
                    let steps = (hit.score * 32).rounded()
                    #expect(abs(hit.score * 32 - steps) < 1e-3, "score \(hit.score) is not 1 - 2h/64")
                }
            }
        }
        #expect(misses.isEmpty, "\(misses)")
    }
}
