import Foundation
import TestSupport
import Testing
import VectorIndex
@testable import Lookalike

/// The engine above its approximate-search threshold: HNSW with a snapshot in the store, kept in
/// step with the catalog, rebuilt when the snapshot is missing or damaged.
@Suite("Approximate search in the engine", .serialized)
struct ApproximateSearchTests {
    func engine(_ store: URL, encoding: IndexEncoding = .int8) throws -> Engine {
        try Engine(configuration: EngineConfiguration(store: store, approximateSearchThreshold: 10, indexEncoding: encoding))
    }

    @Test("above the threshold: same answers as exact search, a snapshot that follows adds, removals and damage")
    func lifecycle() throws {
        let photos = try TestData.photoPaths()
        let folder = try TestData.temporaryDirectory("approximate")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = folder.appendingPathComponent("store")
        let exactStore = folder.appendingPathComponent("exact")

        let first = try engine(store)
        _ = try first.add(Array(photos.dropLast(3)))
        let snapshot = first.snapshotURL(model: "efficientnet-lite0-gem")
        #expect(FileManager.default.fileExists(atPath: snapshot.path), "add above the threshold writes the snapshot")
        let exact = try Engine(configuration: EngineConfiguration(store: exactStore, approximateSearchThreshold: 1_000_000))
        _ = try exact.add(photos)

        // A new engine (as a new CLI process would) loads the snapshot and catches up with 3 more photos.
        let second = try engine(store)
        _ = try second.add(Array(photos.suffix(3)))
        let third = try engine(store)
        // The snapshot records the catalog generation it reflects, so this engine opens it as it is.
        #expect(try HNSWIndex.load(from: snapshot).externalVersion == UInt64(try third.store.vectorGeneration(model: "efficientnet-lite0-gem")))
        #expect(try third.indexStatuses().first?.kind == "hnsw")
        #expect(try third.indexStatuses().first?.vectors == photos.count)
        #expect(try third.indexStatuses().first?.encoding == "int8")
        for photo in photos {
            // The 8-bit graph's candidates are re-scored from the catalog: the scores are exact.
            let approximate = try third.search(imageAt: photo, top: 5, efSearch: 200).hits
            let truth = try exact.search(imageAt: photo, top: 5).hits
            #expect(approximate.map(\.id) == truth.map(\.id), "\(photo)")
            for (hit, expected) in zip(approximate, truth) { #expect(abs(hit.score - expected.score) < 1e-5, "\(photo)") }
        }

        // Removal: gone from answers, and from the snapshot the next engine loads.
        let victim = try #require(try third.search(imageAt: photos[0], top: 1).hits.first)
        #expect(try third.remove(ids: [victim.id]) == [victim.id])
        #expect(try !third.search(imageAt: photos[0], top: 10).hits.contains { $0.id == victim.id })
        let fourth = try engine(store)
        #expect(try !fourth.search(imageAt: photos[0], top: 10).hits.contains { $0.id == victim.id })
        #expect(try HNSWIndex.load(from: snapshot).count == photos.count - 1)

        // Damage: truncated snapshot, then a missing one. Answers stay right; the snapshot is rewritten.
        let bytes = try Data(contentsOf: snapshot)
        try bytes.prefix(bytes.count / 2).write(to: snapshot)
        let fifth = try engine(store)
        #expect(try fifth.search(imageAt: photos[1], top: 1).hits.first?.path == photos[1])
        #expect(try HNSWIndex.load(from: snapshot).count == photos.count - 1)
        try FileManager.default.removeItem(at: snapshot)
        #expect(try engine(store).search(imageAt: photos[2], top: 1).hits.first?.path == photos[2])
        #expect(FileManager.default.fileExists(atPath: snapshot.path))
    }

    @Test("a long-lived engine adds to its loaded graph instead of reloading it, and saves the snapshot")
    func liveUpdates() throws {
        let photos = try TestData.photoPaths()
        let folder = try TestData.temporaryDirectory("live")
        defer { try? FileManager.default.removeItem(at: folder) }
        let engine = try self.engine(folder)
        _ = try engine.add(Array(photos.dropLast(2)))
        let graph = try #require(engine.loadedIndex(model: "efficientnet-lite0-gem") as? HNSWIndex)
        _ = try engine.add(Array(photos.suffix(2)))
        #expect(engine.loadedIndex(model: "efficientnet-lite0-gem") as? HNSWIndex === graph, "the graph was reloaded")
        #expect(graph.count == photos.count)
        for photo in photos.suffix(2) {
            #expect(try engine.search(imageAt: photo, top: 1).hits.first?.path == photo)
        }
        #expect(try HNSWIndex.load(from: engine.snapshotURL(model: "efficientnet-lite0-gem")).count == photos.count)
        // Removal updates the loaded graph and the snapshot too.
        let victim = try #require(try engine.search(imageAt: photos[3], top: 1).hits.first)
        _ = try engine.remove(ids: [victim.id])
        #expect(engine.loadedIndex(model: "efficientnet-lite0-gem") as? HNSWIndex === graph)
        #expect(try !engine.search(imageAt: photos[3], top: 10).hits.contains { $0.id == victim.id })
        #expect(try HNSWIndex.load(from: engine.snapshotURL(model: "efficientnet-lite0-gem")).count == photos.count - 1)
    }

    @Test("with deferred saves, adds and removals reach the snapshot only when saveSnapshots() is called")
    func deferredSnapshotSaves() throws {
        let photos = try TestData.photoPaths()
        let folder = try TestData.temporaryDirectory("deferred")
        defer { try? FileManager.default.removeItem(at: folder) }
        var configuration = EngineConfiguration(store: folder, approximateSearchThreshold: 10)
        configuration.deferSnapshotSaves = true
        let engine = try Engine(configuration: configuration)
        let snapshot = engine.snapshotURL(model: "efficientnet-lite0-gem")
        _ = try engine.add(Array(photos.prefix(20)))
        // The graph's first snapshot is written when it is built.
        #expect(try HNSWIndex.load(from: snapshot).count == 20)
        _ = try engine.add(Array(photos[20..<25]))
        #expect(try engine.search(imageAt: photos[22], top: 1).hits.first?.path == photos[22])
        #expect(try HNSWIndex.load(from: snapshot).count == 20, "the add was saved at once")
        #expect(engine.saveSnapshots() == ["efficientnet-lite0-gem"])
        #expect(try HNSWIndex.load(from: snapshot).count == 25)
        #expect(engine.saveSnapshots().isEmpty, "nothing changed since the last save")
        _ = try engine.remove(ids: [try #require(try engine.search(imageAt: photos[0], top: 1).hits.first).id])
        #expect(try HNSWIndex.load(from: snapshot).count == 25)
        engine.saveSnapshots()
        #expect(try HNSWIndex.load(from: snapshot).count == 24)
        // A new engine on the store catches up from the catalog whatever the snapshot says.
        #expect(try Engine(configuration: configuration).search(imageAt: photos[1], top: 30).hits.count == 24)
    }

    @Test("a snapshot of another encoding than the configured one is rebuilt in the configured one")
    func encodingChange() throws {
        let photos = try TestData.photoPaths()
        let folder = try TestData.temporaryDirectory("encoding")
        defer { try? FileManager.default.removeItem(at: folder) }
        let snapshot = try self.engine(folder).snapshotURL(model: "efficientnet-lite0-gem")
        _ = try self.engine(folder, encoding: .int8).add(photos)
        #expect(try HNSWIndex.load(from: snapshot).encoding.name == "int8")
        for encoding in [IndexEncoding.float32, .float16] {
            let engine = try self.engine(folder, encoding: encoding)
            #expect(try engine.indexStatuses().first?.encoding == encoding.rawValue)
            #expect(try HNSWIndex.load(from: snapshot).encoding.name == encoding.rawValue)
            #expect(try engine.search(imageAt: photos[5], top: 1).hits.first?.path == photos[5])
        }
    }

    @Test("below the threshold the search is exact and no snapshot is written")
    func belowThreshold() throws {
        let photos = Array(try TestData.photoPaths().prefix(5))
        let folder = try TestData.temporaryDirectory("below")
        defer { try? FileManager.default.removeItem(at: folder) }
        let engine = try self.engine(folder)
        _ = try engine.add(photos)
        #expect(try engine.indexStatuses().first?.kind == "exact")
        #expect(!FileManager.default.fileExists(atPath: engine.snapshotURL(model: "efficientnet-lite0-gem").path))
    }
}
