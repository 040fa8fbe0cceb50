import Foundation
import Embedding
import Imaging
import Lookalike
import TestSupport
import Testing
import VectorIndex

/// Ranking the way people judge results, on the photo set and its edited copies (each photo has
/// five: half size, an 80% crop, JPEG quality 30, an EXIF rotation, brighter): copies collapsed
/// into one answer, diversity, query expansion, duplicate groups of the whole store, labels and
/// the honest "no close match".
@Suite("Ranking stages", .serialized)
struct RankingStagesTests {
    /// One store of the photos and their edits, made once for the suite; `family[id]` is the
    /// photo every item comes from.
    final class Collection: @unchecked Sendable {
        let engine: Engine
        let folder: URL
        let family: [String: String]
        let idOfPath: [String: String]

        init(_ kind: String) throws {
            folder = try TestData.temporaryDirectory("ranking")
            engine = try Engine(configuration: EngineConfiguration(store: folder.appendingPathComponent("store"),
                                                                   database: TestStores.database(kind)))
            var family: [String: String] = [:]
            var ids: [String: String] = [:]
            let photos = try TestData.photoPaths()
            var paths = photos
            for photo in photos {
                let stem = URL(fileURLWithPath: photo).deletingPathExtension().lastPathComponent
                for kind in TestData.editKinds {
                    let edit = TestData.edits.appendingPathComponent("\(stem)__\(kind).jpg").path
                    if FileManager.default.fileExists(atPath: edit) { paths.append(edit) }
                }
            }
            let report = try engine.add(paths)
            guard report.failures.isEmpty else { throw TestData.Missing(what: "\(report.failures)") }
            // A family is the file name before "__" (photos have none).
            for added in report.added {
                ids[added.path] = added.id
                family[added.id] = URL(fileURLWithPath: added.path).deletingPathExtension().lastPathComponent.components(separatedBy: "__")[0]
            }
            self.family = family
            idOfPath = ids
        }

        deinit { try? FileManager.default.removeItem(at: folder) }
    }

    /// One collection per kind of store, made on first use.
    static let shared: [String: Result<Collection, Error>] = Dictionary(uniqueKeysWithValues: TestStores.kinds.map { kind in
        (kind, Result { try Collection(kind) })
    })

    private func collection(_ kind: String) throws -> Collection {
        guard let collection = Self.shared[kind] else { throw TestData.Missing(what: "a \(kind) store") }
        return try collection.get()
    }

    @Test("collapse: one rank per copy group, the copies listed with the hit that kept them", arguments: TestStores.kinds)
    func collapse(_ kind: String) throws {
        let store = try collection(kind)
        let photo = try #require(try TestData.photoPaths().first)
        let id = try #require(store.idOfPath[photo])
        let plain = try store.engine.search(.item(id), options: SearchOptions(top: 5))
        // Without collapsing, the photo's own copies fill the first ranks.
        #expect(plain.hits.filter { store.family[$0.id] == store.family[id] }.count >= 4)

        let collapsed = try store.engine.search(.item(id), options: SearchOptions(top: 5, collapseCopies: true))
        #expect(collapsed.hits.count == 5)
        #expect(collapsed.hits.first?.id == id)
        let first = try #require(collapsed.hits.first)
        #expect(first.copies.count >= 4, "only \(first.copies) were folded into the photo")
        #expect(first.copies.allSatisfy { store.family[$0] == store.family[id] }, "a stranger was folded in: \(first.copies)")
        // No two hits left are copies of each other by the model's threshold.
        let threshold = try #require(try store.engine.registry().manifest(named: ModelManifest.defaultName).duplicateThreshold)
        let vectors = try store.engine.store.vectors(model: ModelManifest.defaultName, ids: collapsed.hits.map(\.id)).map(\.vector)
        #expect(vectors.count == 5)
        for (offset, a) in vectors.enumerated() {
            for b in vectors[(offset + 1)...] { #expect(VectorMath.dot(a, b) < threshold) }
        }
        #expect(collapsed.hits.dropFirst().allSatisfy { !first.copies.contains($0.id) })
        // Fewer ranks go to the photo's own copies than without collapsing.
        let own = { (hits: [SearchResponse.Hit]) in hits.filter { store.family[$0.id] == store.family[id] }.count }
        #expect(own(collapsed.hits) < own(plain.hits))
    }

    @Test("diversity: a low λ trades the photo's copies for other photos; λ = 1 is the plain ranking", arguments: TestStores.kinds)
    func diversity(_ kind: String) throws {
        let store = try collection(kind)
        let photo = try #require(try TestData.photoPaths().dropFirst(3).first)
        let id = try #require(store.idOfPath[photo])
        let plain = try store.engine.search(.item(id), options: SearchOptions(top: 8))
        let same = try store.engine.search(.item(id), options: SearchOptions(top: 8, diversity: 1))
        #expect(plain.hits.map(\.id) == same.hits.map(\.id))
        let diverse = try store.engine.search(.item(id), options: SearchOptions(top: 8, diversity: 0.3))
        #expect(diverse.hits.first?.id == id)
        let families = { (hits: [SearchResponse.Hit]) in Set(hits.compactMap { store.family[$0.id] }).count }
        #expect(families(diverse.hits) > families(plain.hits), "plain \(families(plain.hits)), diverse \(families(diverse.hits))")
        // Scores stay each hit's own cosine similarity to the query.
        let byID = Dictionary(uniqueKeysWithValues: try store.engine.search(.item(id), options: SearchOptions(top: 300)).hits.map { ($0.id, $0.score) })
        for hit in diverse.hits { #expect(abs((byID[hit.id] ?? -2) - hit.score) < 1e-4) }
        #expect(throws: EngineError.self) { try store.engine.search(.item(id), options: SearchOptions(diversity: 1.5)) }
    }

    @Test("query expansion searches with the query plus its neighbours weighted by similarity cubed", arguments: TestStores.kinds)
    func expansion(_ kind: String) throws {
        let store = try collection(kind)
        let photos = try TestData.photoPaths()
        let id = try #require(store.idOfPath[photos[5]])
        let first = try store.engine.search(.item(id), options: SearchOptions(top: 3))
        // The expanded query, made by hand from the stored vectors.
        let model = ModelManifest.defaultName
        let vectors = Dictionary(uniqueKeysWithValues: try store.engine.store.vectors(model: model, ids: first.hits.map(\.id) + [id])
            .map { ($0.id, $0.vector) })
        var sum = try #require(vectors[id])
        for hit in first.hits.prefix(2) {
            let vector = try #require(vectors[hit.id])
            let weight = hit.score * hit.score * hit.score
            for offset in sum.indices { sum[offset] += weight * vector[offset] }
        }
        let expected = try store.engine.search(.examples([Query.Example(.vector(sum, model: model))]), options: SearchOptions(top: 10))
        let expanded = try store.engine.search(.item(id), options: SearchOptions(top: 10, expansion: 2))
        #expect(expanded.hits.map(\.id) == expected.hits.map(\.id))
        for (a, b) in zip(expanded.hits, expected.hits) { #expect(abs(a.score - b.score) < 1e-4) }
        #expect(throws: EngineError.self) { try store.engine.search(.item(id), options: SearchOptions(expansion: 0)) }
    }

    @Test("duplicate groups: each photo with its copies, never two photos in one group", arguments: TestStores.kinds)
    func duplicateGroups(_ kind: String) throws {
        let store = try collection(kind)
        let report = try store.engine.duplicateGroups(DuplicateOptions())
        #expect(report.searched == store.family.count)
        var right = 0, wrong = 0
        for group in report.groups {
            let members = [group.representative.id] + group.copies.map(\.item.id)
            for (offset, a) in members.enumerated() {
                for b in members[(offset + 1)...] {
                    if store.family[a] == store.family[b] { right += 1 } else { wrong += 1 }
                }
            }
            // No chaining: every copy reaches the threshold against the representative.
            #expect(group.copies.allSatisfy { $0.score >= report.threshold })
        }
        var sizes: [String: Int] = [:]
        for family in store.family.values { sizes[family, default: 0] += 1 }
        let truePairs = sizes.values.reduce(0) { $0 + $1 * ($1 - 1) / 2 }
        let precision = Double(right) / Double(max(1, right + wrong))
        let recall = Double(right) / Double(truePairs)
        #expect(precision >= 0.99, "pair precision \(precision): \(wrong) wrong pairs")
        #expect(recall >= 0.8, "pair recall \(recall) of \(truePairs) pairs")
        // A threshold above every score finds nothing; a bad one is refused.
        #expect(try store.engine.duplicateGroups(DuplicateOptions(threshold: 1)).groups.allSatisfy { $0.copies.allSatisfy { $0.score >= 1 } })
        #expect(throws: EngineError.self) { try store.engine.duplicateGroups(DuplicateOptions(threshold: 2)) }
    }

    @Test("labels: an edited copy is labelled copy and the answer says so; a minimum score drops the rest", arguments: TestStores.kinds)
    func labels(_ kind: String) throws {
        let store = try collection(kind)
        let photos = try TestData.photoPaths()
        let stem = URL(fileURLWithPath: photos[2]).deletingPathExtension().lastPathComponent
        let edit = TestData.edits.appendingPathComponent("\(stem)__q30.jpg").path
        let manifest = try store.engine.registry().manifest(named: ModelManifest.defaultName)
        let answer = try store.engine.search(.image(path: edit), options: SearchOptions(top: 20))
        let best = try #require(answer.hits.first)
        #expect(best.label == .copy && best.duplicate)
        #expect(answer.match == .copy)
        for hit in answer.hits { #expect(hit.label == manifest.label(score: hit.score)) }
        let floor = try #require(answer.hits.dropFirst(5).first?.score)
        let cut = try store.engine.search(.image(path: edit), options: SearchOptions(top: 20, minScore: floor))
        #expect(cut.hits.allSatisfy { $0.score >= floor })
        #expect(cut.hits.map(\.id) == Array(answer.hits.prefix(cut.hits.count)).map(\.id))
        #expect(cut.hits.count >= 6 && cut.hits.count < answer.hits.count)
        // Nothing reaches a minimum above the best score: no hits, and the answer is "no match".
        let none = try store.engine.search(.image(path: edit), options: SearchOptions(top: 5, minScore: best.score + 1e-3))
        #expect(none.hits.isEmpty && none.match == SearchResponse.Match.none)
    }

    @Test("no close match: a checkerboard and a flat grey picture find only weak hits among photos; a photo's copy does not", arguments: TestStores.kinds)
    func noCloseMatch(_ kind: String) throws {
        let store = try collection(kind)
        var checker = [UInt8](repeating: 255, count: 400 * 300 * 3)
        for y in 0..<300 {
            for x in 0..<400 where (x / 50 + y / 50) % 2 == 1 {
                let offset = (y * 400 + x) * 3
                checker[offset] = 0
                checker[offset + 1] = 0
                checker[offset + 2] = 0
            }
        }
        let grey = [UInt8](repeating: 128, count: 400 * 300 * 3)
        for pixels in [checker, grey] {
            let image = try ImageEncoder.jpeg(Pixels(width: 400, height: 300, rgb: pixels))
            let answer = try store.engine.search(.image(bytes: image), options: SearchOptions(top: 5))
            #expect(answer.hits.count == 5)
            #expect(answer.match == SearchResponse.Match.none, "best \(answer.hits.first?.score ?? -2)")
            #expect(answer.hits.allSatisfy { $0.label == .weak })
        }
        let photos = try TestData.photoPaths()
        let stem = URL(fileURLWithPath: photos[7]).deletingPathExtension().lastPathComponent
        let edit = TestData.edits.appendingPathComponent("\(stem)__bright.jpg").path
        let answer = try store.engine.search(.image(path: edit), options: SearchOptions(top: 5))
        #expect(answer.match != SearchResponse.Match.none && answer.match != nil)
    }

    @Test("feedback: marks move later searches near the same query, and only those; forgetting them restores the ranking", arguments: TestStores.kinds)
    func feedback(_ kind: String) throws {
        let store = try collection(kind)
        defer { _ = try? store.engine.forgetFeedback() }
        let photos = try TestData.photoPaths()
        let id = try #require(store.idOfPath[photos[10]])
        let options = SearchOptions(top: 10)
        let before = try store.engine.search(.item(id), options: options)
        let deeper = try store.engine.search(.item(id), options: SearchOptions(top: 40))
        let strangers = before.hits.filter { store.family[$0.id] != store.family[id] }.map(\.id)
        #expect(!strangers.isEmpty)
        // A photo far down the list, marked relevant, and the strangers in the first ten marked not.
        let wanted = try #require(deeper.hits.dropFirst(25).first?.id)
        let marks = [(id: wanted, mark: Feedback.Mark.relevant)] + strangers.map { (id: $0, mark: Feedback.Mark.notRelevant) }
        #expect(try store.engine.recordFeedback(.item(id), marks: marks) == marks.count)

        let after = try store.engine.search(.item(id), options: options)
        #expect(after.hits.first?.id == id)
        #expect(after.hits.contains { $0.id == wanted }, "the item marked relevant did not rise into the first ten")
        #expect(!after.hits.contains { strangers.contains($0.id) }, "an item marked not relevant stayed in the first ten")
        // An edited copy of the query is near it: the marks apply there too.
        let stem = URL(fileURLWithPath: photos[10]).deletingPathExtension().lastPathComponent
        let copy = TestData.edits.appendingPathComponent("\(stem)__q30.jpg").path
        let nearby = try store.engine.search(.image(path: copy), options: options)
        #expect(!nearby.hits.contains { strangers.contains($0.id) })
        // Another photo's search is not moved, and the option turns feedback off.
        let other = try #require(store.idOfPath[photos[20]])
        let otherPlain = try store.engine.search(.item(other), options: SearchOptions(top: 10, feedback: false))
        #expect(try store.engine.search(.item(other), options: options).hits.map(\.id) == otherPlain.hits.map(\.id))
        #expect(try store.engine.search(.item(id), options: SearchOptions(top: 10, feedback: false)).hits.map(\.id) == before.hits.map(\.id))
        // Marks for items that do not exist are refused whole.
        #expect(throws: EngineError.self) {
            try store.engine.recordFeedback(.item(id), marks: [(id: wanted, mark: .click), (id: "0000000000000bad", mark: .click)])
        }
        #expect(try store.engine.forgetFeedback() == marks.count)
        #expect(try store.engine.search(.item(id), options: options).hits.map(\.id) == before.hits.map(\.id))
    }
}
