import Embedding
import Foundation
import Logging
import Storage
import VectorIndex

/// The one owner of "which index searches this model's vectors": exact (`FlatIndex`) below the
/// approximate-search threshold, an HNSW graph from it on (kept as a snapshot in the store,
/// caught up with the store's changes, its quantiser learned from the stored vectors), wrapped in
/// a `RefineIndex` that re-scores the graph's candidates from the store's full-precision vectors.
/// Loaded once per engine and kept in step with adds and removals.
final class ModelIndexes: @unchecked Sendable {
    /// A loaded index, by kind: the graph is kept typed for snapshots and statistics.
    private enum Loaded {
        case exact(FlatIndex)
        case graph(HNSWIndex, refined: RefineIndex)

        var searchable: any VectorIndex {
            switch self {
            case .exact(let flat): return flat
            case .graph(_, let refined): return refined
            }
        }

        var graph: HNSWIndex? {
            if case .graph(let graph, _) = self { return graph }
            return nil
        }
    }

    private let store: any IndexedVectors
    private let configuration: EngineConfiguration
    private let logger = Logger(label: "lookalike.index")
    private let lock = NSLock()
    private var loaded: [String: Loaded] = [:]
    /// The store generation each loaded index is known to reflect. A search that finds the store
    /// at another (another process wrote, or an add of this one has not been compared yet) catches
    /// the index up before it searches.
    private var synced: [String: Int64] = [:]
    /// One lock per model, held while its index is loaded, caught up or changed: concurrent first
    /// searches make one build, and a catch-up never races an add.
    private var modelLocks: [String: NSRecursiveLock] = [:]
    /// Models whose HNSW snapshot is behind the loaded graph (when saves are deferred).
    private var unsaved: Set<String> = []
    /// The store's identity, read once (it never changes), recorded in every snapshot.
    private var knownIdentity: UUID?
    /// How many indexes were loaded or built, and how many caught up with other writers (for tests).
    private(set) var loads = 0
    private(set) var catchUps = 0

    init(store: any IndexedVectors, configuration: EngineConfiguration) {
        self.store = store
        self.configuration = configuration
    }

    /// The model's index, ready to search: loaded, built or caught up with the store if needed.
    func index(for manifest: ModelManifest) throws -> any VectorIndex {
        try current(manifest).searchable
    }

    /// The model's index if one is loaded, as built (the graph itself for HNSW; for tests).
    func loadedBase(model: String) -> (any VectorIndex)? {
        switch lock.withLock({ loaded[model] }) {
        case .exact(let flat)?: return flat
        case .graph(let graph, _)?: return graph
        case nil: return nil
        }
    }

    private func modelLock(_ model: String) -> NSRecursiveLock {
        lock.withLock {
            if let existing = modelLocks[model] { return existing }
            let created = NSRecursiveLock()
            modelLocks[model] = created
            return created
        }
    }

    /// The loaded index when it reflects the store's current generation of the model's vectors
    /// (one indexed read per search); else, under the model's lock, the index caught up with the
    /// store, or loaded for the first time.
    private func current(_ manifest: ModelManifest) throws -> Loaded {
        let model = manifest.name
        let now = try store.vectorGeneration(model: model)
        if let cached = lock.withLock({ synced[model] == now ? loaded[model] : nil }) { return cached }
        return try modelLock(model).withLock {
            let (cached, known) = lock.withLock { (loaded[model], synced[model]) }
            guard let cached else { return try load(manifest) }
            if known == now { return cached }
            lock.withLock { catchUps += 1 }
            return try catchUp(cached, manifest: manifest)
        }
    }

    /// Loads the model's index from the store (and its snapshot): exact below the threshold,
    /// HNSW from it on. Runs under the model's lock.
    private func load(_ manifest: ModelManifest) throws -> Loaded {
        let model = manifest.name
        let index: Loaded
        let reflects: Int64
        if try store.vectorCount(model: model) >= configuration.approximateSearchThreshold {
            let (graph, graphGeneration) = try graphIndex(for: manifest)
            index = .graph(graph, refined: RefineIndex(base: graph, exact: StoreVectors(store: store, model: model)))
            reflects = graphGeneration
        } else {
            // Read before the vectors: the index holds at least this generation's vectors.
            let generation = try store.vectorGeneration(model: model)
            let flat = FlatIndex(dimension: manifest.dimension)
            try store.forEachVectorPage(model: model, pageSize: 1_000) { page in
                for (id, vector) in page { try Self.add(flat, id: id, vector: vector, model: model) }
                return true
            }
            index = .exact(flat)
            reflects = generation
        }
        lock.withLock {
            loaded[model] = index
            synced[model] = reflects
            loads += 1
        }
        return index
    }

    /// Brings a loaded index in line with the store after writes it did not see (another
    /// process, or adds of this one not yet compared): ids compared, what is missing added, what
    /// is gone removed. An exact index that has grown past the threshold becomes a graph. Runs
    /// under the model's lock.
    private func catchUp(_ index: Loaded, manifest: ModelManifest) throws -> Loaded {
        let model = manifest.name
        switch index {
        case .graph(let graph, _):
            let (_, _, generation) = try catchUp(graph, manifest: manifest)
            lock.withLock { synced[model] = generation }
            return index
        case .exact(let flat):
            let (ids, generation) = try store.vectorIDsAndGeneration(model: model)
            if ids.count >= configuration.approximateSearchThreshold {
                lock.withLock { _ = loaded.removeValue(forKey: model) }
                return try load(manifest)
            }
            _ = try reconcile(flat, holding: flat.liveIDs(), with: ids, model: model)
            lock.withLock { synced[model] = generation }
            return index
        }
    }

    // MARK: Keeping in step with the store

    /// Adds freshly stored vectors to the model's loaded index, if one is loaded, so a long-lived
    /// engine never reloads its index after an add. An index that refuses them is dropped and
    /// rebuilt from the store when next needed. The index is compared with the store at the next
    /// search or at `settled`, whichever comes first (other writers may have written meanwhile).
    func added(_ entries: [(id: String, vector: [Float])], model: String) {
        modelLock(model).withLock {
            guard let cached = lock.withLock({ loaded[model] }) else { return }
            do {
                for (id, vector) in entries { try cached.searchable.add(id: id, vector: vector) }
            } catch {
                logger.warning("\(error); the index of \(model) will be rebuilt")
                invalidate(model)
            }
        }
    }

    /// At the end of an add: the model's index becomes the right kind for its size (exact below the
    /// threshold, HNSW from it on), and an HNSW index's snapshot is saved, so the next process
    /// opens it ready.
    func settled(_ manifest: ModelManifest) throws {
        guard !store.searchesVectors else { return }  // the store's own index searches
        let model = manifest.name
        try modelLock(model).withLock {
            let approximate = try store.vectorCount(model: model) >= configuration.approximateSearchThreshold
            switch lock.withLock({ loaded[model] }) {
            case .graph(let graph, _)?:
                // The graph took this add's vectors as they were stored; comparing with the store
                // also catches other writers, and records the generation the snapshot reflects.
                let (_, changed, generation) = try catchUp(graph, manifest: manifest)
                lock.withLock { synced[model] = generation }
                if changed { snapshotChanged(graph, model: model) }
            case .exact? where approximate:
                invalidate(model)
                _ = try load(manifest)
            case nil where approximate:
                _ = try load(manifest)  // loads and catches up the graph, and saves its snapshot
            default:
                break
            }
        }
    }

    /// Takes removed items out of every loaded index; graphs are compared with the store and
    /// their snapshots saved again.
    func removed(_ ids: [String], manifest: (String) -> ModelManifest?) {
        let models = lock.withLock { Array(loaded.keys) }
        for model in models {
            modelLock(model).withLock {
                guard let index = lock.withLock({ loaded[model] }) else { return }
                for id in ids { index.searchable.remove(id: id) }
                guard let graph = index.graph, !ids.isEmpty else { return }
                if let manifest = manifest(model), let (_, _, generation) = try? catchUp(graph, manifest: manifest) {
                    lock.withLock { synced[model] = generation }
                } else {
                    logger.warning("the index of \(model) could not be compared with the store after a removal")
                }
                snapshotChanged(graph, model: model)
            }
        }
    }

    /// Drops a model's loaded index and its snapshot file (the model was removed from the store).
    func forgetModel(_ model: String) {
        modelLock(model).withLock {
            invalidate(model)
            try? FileManager.default.removeItem(at: snapshotURL(model: model))
        }
    }

    private func invalidate(_ model: String) {
        lock.withLock {
            _ = loaded.removeValue(forKey: model)
            _ = synced.removeValue(forKey: model)
        }
    }

    private static func add(_ index: any VectorIndex, id: String, vector: [Float], model: String) throws {
        do {
            try index.add(id: id, vector: vector)
        } catch {
            throw EngineError.incompatibleVectors(model: model, reason: "\(error)")
        }
    }
}

// MARK: The HNSW graph's lifecycle

extension ModelIndexes {
    /// Where the HNSW snapshot of a model lives in the store.
    func snapshotURL(model: String) -> URL {
        store.directory.appendingPathComponent("index", isDirectory: true).appendingPathComponent("\(model).hnsw")
    }

    /// The model's HNSW index: from its snapshot when that is readable, has the configured
    /// encoding and was made from this store (its identity), else rebuilt from the store; then
    /// brought up to date with the store (items added or removed since the snapshot) and saved
    /// again if anything changed. The store is the truth; the snapshot only saves time. Returns the
    /// graph and the store generation it reflects.
    private func graphIndex(for manifest: ModelManifest) throws -> (HNSWIndex, generation: Int64) {
        let url = snapshotURL(model: manifest.name)
        let identity = try storeIdentity()
        var index: HNSWIndex?
        if FileManager.default.fileExists(atPath: url.path) {
            do {
                let loaded = try HNSWIndex.load(from: url)
                if loaded.dimension != manifest.dimension || loaded.metric != .cosine {
                    logger.warning("index snapshot \(url.path) does not fit model \(manifest.name); rebuilding it")
                } else if loaded.encoding.name != configuration.indexEncoding.rawValue {
                    logger.info("index snapshot \(url.path) holds \(loaded.encoding.name) vectors, \(configuration.indexEncoding.rawValue) are configured; rebuilding it")
                } else if let owner = loaded.externalIdentity, owner != identity {
                    logger.warning("index snapshot \(url.path) was made from another store; rebuilding it")
                } else {
                    // A snapshot written before stores had identities is compared id by id.
                    index = loaded
                }
            } catch {
                logger.warning("\(error); rebuilding the index from the store")
            }
        }
        // The snapshot records the store generation it reflects: when that is still current, the
        // graph is up to date and no ids need comparing.
        if let index, index.externalIdentity == identity, index.externalVersion != 0 {
            let generation = try store.vectorGeneration(model: manifest.name)
            if index.externalVersion == UInt64(clamping: generation) { return (index, generation) }
        }
        let (graph, changed, generation) = try catchUp(index, manifest: manifest)
        if changed || index == nil || !FileManager.default.fileExists(atPath: url.path) {
            saveSnapshot(graph, model: manifest.name)
        }
        return (graph, generation)
    }

    /// Brings `index` (or, when nil, a new graph trained on the store's vectors) in line with the
    /// store: adds what is missing, removes what is gone, and records the store's identity and the
    /// generation the comparison was made at. Vectors are read a page at a time. Returns whether
    /// anything changed, and the generation.
    private func catchUp(_ index: HNSWIndex?, manifest: ModelManifest) throws -> (HNSWIndex, changed: Bool, generation: Int64) {
        let (ids, generation) = try store.vectorIDsAndGeneration(model: manifest.name)
        let graph = try index ?? newGraph(for: manifest, ids: ids)
        var changed = try reconcile(graph, holding: index?.liveIDs() ?? [], with: ids, model: manifest.name)
        let version = UInt64(clamping: generation)
        if graph.externalVersion != version {
            graph.externalVersion = version
            changed = true
        }
        let owner = try storeIdentity()
        if graph.externalIdentity != owner {
            graph.externalIdentity = owner
            changed = true
        }
        return (graph, changed, generation)
    }

    private func storeIdentity() throws -> UUID {
        if let known = lock.withLock({ knownIdentity }) { return known }
        let identity = try store.identity()
        lock.withLock { knownIdentity = identity }
        return identity
    }

    /// Makes `index`, which holds `indexed`, hold exactly the store's `ids`: what is gone is
    /// removed, what is missing is read from the store a page at a time and added. For exact
    /// indexes and graphs alike. Returns whether anything changed.
    private func reconcile(_ index: any VectorIndex, holding indexed: [String], with ids: [String], model: String) throws -> Bool {
        let stored = Set(ids)
        let held = Set(indexed)
        var changed = false
        for id in held where !stored.contains(id) {
            index.remove(id: id)
            changed = true
        }
        let missing = ids.filter { !held.contains($0) }
        for start in stride(from: 0, to: missing.count, by: 500) {
            let page = Array(missing[start..<min(start + 500, missing.count)])
            for (id, vector) in try store.vectors(model: model, ids: page) {
                try Self.add(index, id: id, vector: vector, model: model)
                changed = true
            }
        }
        return changed
    }

    /// An empty graph with the configured encoding; an 8-bit one learns its quantiser from up to
    /// 100,000 of the vectors of `ids` (an even sample, read a page at a time).
    private func newGraph(for manifest: ModelManifest, ids: [String]) throws -> HNSWIndex {
        let encoding: VectorEncoding
        switch configuration.indexEncoding {
        case .float32: encoding = .float32
        case .float16: encoding = .float16
        case .int8:
            // Trained a page at a time: the sample (up to 100,000 vectors) is never held whole
            // (it was: 512 MB of a 712 MB peak when adding 100,000 images; BENCHMARKS.md).
            let step = max(1, ids.count / 100_000)
            let chosen = Array(stride(from: 0, to: ids.count, by: step).map { ids[$0] })
            // Each dimension's range does not depend on the order the vectors come in, and the
            // trainer leaves out vectors of another dimension.
            var trainer = ScalarQuantizer.Trainer(dimension: manifest.dimension, normalizeForCosine: true)
            for start in stride(from: 0, to: chosen.count, by: 1_000) {
                let page = Array(chosen[start..<min(start + 1_000, chosen.count)])
                for (_, vector) in try store.vectors(model: manifest.name, ids: page) { trainer.add(vector) }
            }
            encoding = trainer.count == 0 ? .float32 : .int8(trainer.quantizer())
        }
        return HNSWIndex(dimension: manifest.dimension, parameters: configuration.hnsw, encoding: encoding)
    }

    /// Writes a graph's snapshot into the store. A snapshot that cannot be written costs speed
    /// next time, never answers, so a failure is logged and not thrown.
    private func saveSnapshot(_ graph: HNSWIndex, model: String) {
        let url = snapshotURL(model: model)
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try graph.save(to: url)
        } catch {
            logger.warning("\(error)")
        }
    }

    /// After a write changed a loaded graph: saves its snapshot now, or, when saves are deferred,
    /// remembers that `saveSnapshots()` has work.
    private func snapshotChanged(_ graph: HNSWIndex, model: String) {
        if configuration.deferSnapshotSaves {
            _ = lock.withLock { unsaved.insert(model) }
        } else {
            saveSnapshot(graph, model: model)
        }
    }

    /// Saves the snapshots of loaded graphs that changed since they were last saved. Returns the
    /// models saved.
    func saveSnapshots() -> [String] {
        let pending: [(String, HNSWIndex)] = lock.withLock {
            let models = unsaved
            unsaved.removeAll()
            return models.compactMap { model in loaded[model]?.graph.map { (model, $0) } }
        }
        for (model, graph) in pending { saveSnapshot(graph, model: model) }
        return pending.map(\.0).sorted()
    }

    /// How a model's vectors are searched, for `stats`.
    func status(of manifest: ModelManifest) throws -> Engine.IndexStatus {
        if store.searchesVectors {
            return Engine.IndexStatus(model: manifest.name, kind: "store", vectors: try store.vectorCount(model: manifest.name),
                                      memoryBytes: 0, encoding: nil, snapshotSaved: nil)
        }
        let index = try current(manifest)
        if let graph = index.graph {
            let attributes = try? FileManager.default.attributesOfItem(atPath: snapshotURL(model: manifest.name).path)
            return Engine.IndexStatus(model: manifest.name, kind: "hnsw", vectors: graph.count, memoryBytes: graph.memoryBytes,
                                      encoding: graph.encoding.name, snapshotSaved: attributes?[.modificationDate] as? Date)
        }
        let count = index.searchable.count
        return Engine.IndexStatus(model: manifest.name, kind: "exact", vectors: count,
                                  memoryBytes: count * manifest.dimension * MemoryLayout<Float>.size, encoding: nil,
                                  snapshotSaved: nil)
    }
}

/// The store's full-precision vectors of one model, for re-scoring a compressed graph's candidates.
struct StoreVectors: ExactVectorSource, Sendable {
    let store: any IndexedVectors
    let model: String

    func exactVectors(for ids: [String]) throws -> [[Float]?] {
        let found = Dictionary(try store.vectors(model: model, ids: ids), uniquingKeysWith: { first, _ in first })
        return ids.map { found[$0] }
    }
}
