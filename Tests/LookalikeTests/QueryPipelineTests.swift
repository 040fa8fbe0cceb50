import Foundation
import Embedding
import Lookalike
import TestSupport
import Testing
import VectorIndex

/// The one search entry point: every form of query, ranking stages, the store seam, on real photos.
@Suite("Query pipeline", .serialized)
struct QueryPipelineTests {
    /// A store of the photo set and the ids of its photos, by path.
    private func photoStore(_ label: String) throws -> (Engine, [String: String], URL) {
        let folder = try TestData.temporaryDirectory(label)
        let engine = try Engine(configuration: EngineConfiguration(store: folder.appendingPathComponent("store")))
        let report = try engine.add(try TestData.photoPaths())
        #expect(report.failures.isEmpty, "\(report.failures)")
        return (engine, Dictionary(uniqueKeysWithValues: report.added.map { ($0.path, $0.id) }), folder)
    }

    @Test("an image file, its bytes and the stored item are three spellings of one query, with the same ranking")
    func sameQueryEveryForm() throws {
        let (engine, ids, folder) = try photoStore("forms")
        defer { try? FileManager.default.removeItem(at: folder) }
        let photo = try #require(try TestData.photoPaths().first)
        let options = SearchOptions(top: 6)
        let byFile = try engine.search(.image(path: photo), options: options)
        let byBytes = try engine.search(.image(bytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: photo)))), options: options)
        let byItem = try engine.search(.item(try #require(ids[photo])), options: options)
        #expect(byFile.hits.first?.id == ids[photo])
        #expect(byFile.hits.map(\.id) == byBytes.hits.map(\.id))
        #expect(byFile.hits.map(\.id) == byItem.hits.map(\.id))
        for (a, b) in zip(byFile.hits, byItem.hits) { #expect(abs(a.score - b.score) < 1e-4) }
        // The old entry points are the same pipeline.
        #expect(try engine.search(imageAt: photo, options: options).hits.map(\.id) == byFile.hits.map(\.id))
    }

    @Test("examples: one positive example is more-like-this; a negative one pushes its neighbours down")
    func examples() throws {
        let (engine, ids, folder) = try photoStore("examples")
        defer { try? FileManager.default.removeItem(at: folder) }
        let photos = try TestData.photoPaths()
        let anchor = try #require(ids[photos[0]])
        let single = try engine.search(.examples([.item(anchor)]), options: SearchOptions(top: 5))
        let item = try engine.search(.item(anchor), options: SearchOptions(top: 5))
        #expect(single.hits.map(\.id) == item.hits.map(\.id))

        // Push away from the anchor's nearest other photo: it must fall in the ranking, and the
        // anchor stays first.
        let total = try engine.stats().items
        let neighbour = try #require(item.hits.dropFirst().first?.id)
        let before = try engine.search(.item(anchor), options: SearchOptions(top: total))
        let steered = try engine.search(.examples([.item(anchor), .item(neighbour, weight: -0.5)]), options: SearchOptions(top: total))
        #expect(steered.hits.first?.id == anchor)
        let rankBefore = try #require(before.hits.firstIndex { $0.id == neighbour })
        let rankAfter = try #require(steered.hits.firstIndex { $0.id == neighbour })
        #expect(rankAfter > rankBefore, "the pushed-away photo stayed at rank \(rankAfter + 1)")

        // Examples that cancel out, or name nothing stored, are refused with a reason.
        #expect(throws: EngineError.self) {
            try engine.search(.examples([.item(anchor), .item(anchor, weight: -1)]), options: SearchOptions())
        }
        #expect(throws: EngineError.self) { try engine.search(.examples([]), options: SearchOptions()) }
        #expect(throws: EngineError.self) { try engine.search(.examples([.item("0000000000000000")]), options: SearchOptions()) }
    }

    @Test("words are refused with the reason while no text encoder shares the model's space; a region needs an image")
    func honestRefusals() throws {
        let (engine, ids, folder) = try photoStore("refusals")
        defer { try? FileManager.default.removeItem(at: folder) }
        do {
            _ = try engine.search(.text("a cat on a sofa"), options: SearchOptions())
            Issue.record("a text query was answered")
        } catch let error as EngineError {
            #expect("\(error)".contains("no text encoder"))
            #expect("\(error)".contains(ModelManifest.defaultName))
        }
        let id = try #require(ids.values.first)
        var item = Query.item(id)
        item.region = try ImageRegion(parsing: "0,0,0.5,0.5")
        #expect(throws: EngineError.self) { try engine.search(item, options: SearchOptions()) }
    }

    /// A stage that keeps only the candidates with an even score rank, to prove stages run, in
    /// order, over candidates that carry their vectors when asked.
    struct EveryOther: RankingStage {
        var name: String { "every-other" }
        var needsVectors: Bool { true }
        func candidatePool(top: Int, collection: Int) -> Int { top * 2 }
        func rank(_ candidates: [Candidate], context: RankingContext) throws -> [Candidate] {
            guard candidates.allSatisfy({ $0.vector?.count == context.model.dimension }) else {
                throw EngineError.badExamples("a candidate came without its vector")
            }
            return candidates.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
        }
    }

    @Test("a ranking stage gets a larger pool when it asks, with vectors, and its order is the answer")
    func customStage() throws {
        let (engine, ids, folder) = try photoStore("stage")
        defer { try? FileManager.default.removeItem(at: folder) }
        let anchor = try #require(ids[try TestData.photoPaths()[0]])
        let plain = try engine.search(.item(anchor), options: SearchOptions(top: 10))
        let staged = try engine.search(.item(anchor), options: SearchOptions(top: 5, stages: [EveryOther()]))
        #expect(staged.hits.map(\.id) == plain.hits.enumerated().filter { $0.offset % 2 == 0 }.map(\.element.id))
    }

    @Test("mean fusion as a stage: a model fused with itself ranks as the model alone, scores unchanged")
    func fusionStage() throws {
        let (engine, ids, folder) = try photoStore("fusion")
        defer { try? FileManager.default.removeItem(at: folder) }
        let anchor = try #require(ids[try TestData.photoPaths()[1]])
        let model = ModelManifest.defaultName
        let plain = try engine.search(.item(anchor), options: SearchOptions(top: 8))
        let fused = try engine.search(.item(anchor), options: SearchOptions(top: 8, stages: [FusionStage(models: [model, model])]))
        #expect(fused.hits.map(\.id) == plain.hits.map(\.id))
        for (a, b) in zip(fused.hits, plain.hits) { #expect(abs(a.score - b.score) < 1e-4) }
    }

    @Test("the store hands out a model's vectors page by page, all of them once, in insertion order")
    func pagedVectors() throws {
        let (engine, _, folder) = try photoStore("pages")
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = ModelManifest.defaultName
        var paged: [String] = []
        var pages = 0
        try engine.store.forEachVectorPage(model: model, pageSize: 7) { page in
            #expect(page.count <= 7)
            #expect(page.allSatisfy { $0.vector.count == 1280 })
            paged += page.map(\.id)
            pages += 1
            return true
        }
        #expect(paged == (try engine.store.vectorIDs(model: model)))
        #expect(pages == (paged.count + 6) / 7)
        #expect(try engine.store.vectorSpaces() == [VectorSpace(model: model)])
    }
}

@Suite("Refine index")
struct RefineIndexTests {
    @Test("a refined 8-bit graph returns exact scores and the same hits as the graph's own re-scoring")
    func refine() throws {
        var generator = SystemRandomNumberGenerator()
        let dimension = 32
        var vectors: [String: [Float]] = [:]
        for row in 0..<2_000 {
            vectors[String(format: "v%05d", row)] = (0..<dimension).map { _ in Float.random(in: -1...1, using: &generator) }
        }
        struct Exact: ExactVectorSource, Sendable {
            let vectors: [String: [Float]]
            func exactVectors(for ids: [String]) throws -> [[Float]?] { ids.map { vectors[$0] } }
        }
        let sample = vectors.values.flatMap { $0 }
        let graph = HNSWIndex(dimension: dimension, encoding: .int8(ScalarQuantizer.train(on: sample, dimension: dimension,
                                                                                          normalizeForCosine: true)))
        for (id, vector) in vectors.sorted(by: { $0.key < $1.key }) { try graph.add(id: id, vector: vector) }
        let refined = RefineIndex(base: graph, exact: Exact(vectors: vectors))
        #expect(!graph.scoresAreExact && refined.scoresAreExact)
        let flat = FlatIndex(dimension: dimension)
        for (id, vector) in vectors { try flat.add(id: id, vector: vector) }
        for _ in 0..<20 {
            let query = (0..<dimension).map { _ in Float.random(in: -1...1, using: &generator) }
            let hits = try refined.search(query, k: 10, filter: nil, parameters: SearchParameters(efSearch: 80))
            let own = try graph.search(query, k: 10, efSearch: 80, rescoringFrom: Exact(vectors: vectors))
            #expect(hits == own)
            let exact = Dictionary(uniqueKeysWithValues: try flat.search(query, k: 2_000, filter: nil).map { ($0.id, $0.score) })
            for hit in hits { #expect(abs(hit.score - (exact[hit.id] ?? 9)) < 1e-4) }
        }
    }
}
