import Foundation
import Embedding
import Imaging
import Storage
import TestSupport
import Testing
@testable import Lookalike

/// Query-side crops: a stored photo pasted into a larger picture (a screenshot-like canvas with
/// other things on it) is found through a crop of the query when its whole image finds no copy;
/// a query that finds a copy whole searches nothing more; only the copy detectors crop by default.
@Suite("Query crops", .serialized)
struct QueryCropsTests {
    static let model = "sscd"

    /// The photo at `scale` of a canvas 2.5 times its size, at a corner, on a grey page with
    /// coloured panels and stripes around it (like an app's chrome), saved as a JPEG.
    func framed(_ path: String, corner: Int, into folder: URL, name: String) throws -> String {
        let decoder = ImageDecoder()
        let photo = try decoder.decode(try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))),
                                       policy: .shorterSide(size: 300, maxLonger: 600))
        let width = photo.width * 5 / 2, height = photo.height * 5 / 2
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let at = (y * width + x) * 3
                // Horizontal bands of "text" and two solid panels.
                let panel = x > width * 3 / 4 ? (40, 90, 160) : y < height / 10 ? (220, 220, 225) : (245, 245, 245)
                let stripe = (y / 12) % 3 == 0 && (x / 7) % 5 != 0 && x < width * 3 / 4 && y > height / 10
                rgb[at] = UInt8(stripe ? 60 : panel.0)
                rgb[at + 1] = UInt8(stripe ? 60 : panel.1)
                rgb[at + 2] = UInt8(stripe ? 60 : panel.2)
            }
        }
        let left = corner % 2 == 0 ? width / 20 : width - photo.width - width / 5
        let top = corner / 2 == 0 ? height / 20 : height - photo.height - height / 20
        for y in 0..<photo.height {
            let from = y * photo.width * 3, to = ((top + y) * width + left) * 3
            rgb.replaceSubrange(to..<(to + photo.width * 3), with: photo.rgb[from..<(from + photo.width * 3)])
        }
        let url = folder.appendingPathComponent(name)
        try Data(try ImageEncoder.jpeg(Pixels(width: width, height: height, rgb: rgb), quality: 90)).write(to: url)
        return url.path
    }

    @Test("a photo framed in a larger picture is found through a crop, by default for the copy detector", arguments: TestStores.kinds)
    func framedCopiesAreFound(_ kind: String) throws {
        let folder = try TestData.temporaryDirectory("crops")
        defer { try? FileManager.default.removeItem(at: folder) }
        let photos = try TestData.photoPaths()
        let engine = try Engine(configuration: EngineConfiguration(store: folder.appendingPathComponent("store"),
                                                                   database: TestStores.database(kind)))
        let report = try engine.add(photos, options: AddOptions(model: Self.model))
        #expect(report.failures.isEmpty, "\(report.failures)")
        let ids = Dictionary(uniqueKeysWithValues: report.added.map { ($0.path, $0.id) })
        let threshold = try #require(ModelManifest.sscd.duplicateThreshold)

        var found = (crops: 0, whole: 0, queries: 0, labelled: 0, lifted: 0, wider: 0)
        for (number, photo) in photos.enumerated() where number % 4 == 0 {
            let source = try #require(ids[photo])
            let query = try framed(photo, corner: number / 4 % 4, into: folder, name: "framed\(number).jpg")
            let cropped = try engine.search(.image(path: query), options: SearchOptions(top: 5, model: Self.model))
            let whole = try engine.search(.image(path: query), options: SearchOptions(top: 5, model: Self.model, crops: false))
            found.queries += 1
            if whole.hits.first?.id == source { found.whole += 1 }
            let best = try #require(whole.hits.first?.score)
            #expect(!whole.notes.contains { $0.code == "query_crops" })
            #expect(whole.hits.allSatisfy { $0.queryPart == nil })
            guard best < threshold else {
                // A copy found whole: the crops are not tried.
                #expect(!cropped.notes.contains { $0.code == "query_crops" } && cropped.hits.allSatisfy { $0.queryPart == nil })
                if cropped.hits.first?.id == source { found.crops += 1 }
                continue
            }
            #expect(cropped.notes.contains { $0.code == "query_crops" }, "\(cropped.notes)")
            guard let first = cropped.hits.first else { continue }
            if first.id == source {
                found.crops += 1
                if first.label == .copy { found.labelled += 1 }
                // Found through a crop: the crop named, its score its own less the margin, above the whole image's.
                let crop = try #require(first.queryPart, "\(photo): the hit names the crop that found it")
                #expect(QueryCrops.regions.contains(crop))
                let wholeScore = whole.hits.first { $0.id == source }?.score ?? -1
                #expect(first.score > wholeScore)
                if first.score >= wholeScore + 0.15 { found.lifted += 1 }
                // The source stands further apart from the next image than it did whole.
                let gap = first.score - (cropped.hits.dropFirst().first?.score ?? -1)
                let wholeGap = whole.hits.first?.id == source ? best - (whole.hits.dropFirst().first?.score ?? -1) : 0
                if gap > wholeGap { found.wider += 1 }
            }
        }
        print("query crops (\(kind)): the source first with crops \(found.crops), whole \(found.whole), of \(found.queries); "
              + "labelled copy \(found.labelled); scored 0.15 higher \(found.lifted); further from the next image \(found.wider)")
        #expect(found.crops >= found.queries - 1, "crops found \(found.crops) of \(found.queries) framed photos first")
        // Among 43 photos the whole query already ranks its source first; what crops change is
        // how sure the answer is: the source's score and its lead over the next image.
        #expect(found.lifted >= found.queries - 1, "\(found.lifted) of \(found.queries) scored 0.15 higher through a crop")
        #expect(found.wider >= found.queries - 1, "\(found.wider) of \(found.queries) stood further apart")

        // The photo itself is a copy found whole: no crops, no note.
        let plain = try engine.search(.image(path: photos[1]), options: SearchOptions(top: 3, model: Self.model))
        #expect(plain.hits.first?.id == ids[photos[1]] && plain.hits.first?.queryPart == nil)
        #expect(!plain.notes.contains { $0.code == "query_crops" })
    }

    @Test("other models crop only when asked")
    func otherModelsCropWhenAsked() throws {
        let folder = try TestData.temporaryDirectory("crops-gem")
        defer { try? FileManager.default.removeItem(at: folder) }
        let photos = Array(try TestData.photoPaths().prefix(12))
        let engine = try Engine(configuration: EngineConfiguration(store: folder.appendingPathComponent("store")))
        let report = try engine.add(photos, options: AddOptions())
        #expect(report.failures.isEmpty)
        let query = try framed(photos[4], corner: 3, into: folder, name: "framed.jpg")
        let plain = try engine.search(.image(path: query), options: SearchOptions(top: 5))
        #expect(!plain.notes.contains { $0.code == "query_crops" } && plain.hits.allSatisfy { $0.queryPart == nil })
        let asked = try engine.search(.image(path: query), options: SearchOptions(top: 5, crops: true))
        #expect(asked.notes.contains { $0.code == "query_crops" }, "\(asked.notes)")
        let source = report.added.first { $0.path == photos[4] }?.id
        let before = plain.hits.first { $0.id == source }?.score ?? -1
        let after = try #require(asked.hits.first { $0.id == source }?.score)
        #expect(after >= before, "an item keeps the best of its whole-image and crop scores")
        // A query of 3 x 3 pixels has crops of a pixel or two: searched or not, the answer stands.
        let tiny = folder.appendingPathComponent("tiny.jpg")
        try Data(try ImageEncoder.jpeg(Pixels(width: 3, height: 3, rgb: [UInt8](repeating: 128, count: 27)))).write(to: tiny)
        let small = try engine.search(.image(path: tiny.path), options: SearchOptions(top: 5, crops: true))
        #expect(small.hits.count == 5)
        #expect(small.notes.contains { $0.code == "query_crops" || $0.code == "query_crops_failed" }, "\(small.notes)")
        // A stored item as the query has no pixels to crop: the option changes nothing.
        let byItem = try engine.search(.item(try #require(source)), options: SearchOptions(top: 5, crops: true))
        #expect(!byItem.notes.contains { $0.code == "query_crops" })
    }
}
