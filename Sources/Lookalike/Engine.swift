import Catalog
import Embedding
import Foundation
import Imaging
import Logging
import Metrics
import VectorIndex

/// Lookalike's engine: adds images to a store and answers "which images look like this one?".
/// The CLI, and later the HTTP server, are thin front doors over it.
///
/// ```swift
/// let engine = try Engine(configuration: EngineConfiguration(store: storeURL))
/// let report = try engine.add(["photos/"], options: AddOptions(recursive: true))
/// let answer = try engine.search(imageAt: "query.jpg", top: 10)
/// ```
public final class Engine: @unchecked Sendable {
    public let configuration: EngineConfiguration
    public let catalog: Catalog
    private let loadedRegistry: Result<ModelRegistry, Error>
    private let decoder: ImageDecoder
    private let logger = Logger(label: "lookalike.engine")
    private let lock = NSLock()
    private var embedders: [String: Embedder] = [:]
    private var indexes: [String: any VectorIndex] = [:]
    /// Bumped whenever stored vectors change, so an index built meanwhile is not cached stale.
    private var generation = 0
    private var checkedModels: Set<String> = []
    /// Models whose HNSW snapshot is behind the loaded graph (when saves are deferred).
    private var unsavedSnapshots: Set<String> = []

    /// Inputs handled per round: decoded in parallel, embedded, then stored in one transaction.
    static let chunkSize = 32

    /// Opens the store; with `createStore` false, a store that does not exist yet is an error
    /// (a search in a mistyped folder must not answer "no hits").
    public init(configuration: EngineConfiguration = EngineConfiguration(), createStore: Bool = true) throws {
        self.configuration = configuration
        catalog = try Catalog(directory: configuration.store, create: createStore)
        loadedRegistry = Result { try ModelRegistry(directory: configuration.models) }
        decoder = ImageDecoder(limits: configuration.limits)
    }

    /// The models; a broken manifest in the models folder fails only the commands that need a model.
    public func registry() throws -> ModelRegistry {
        try loadedRegistry.get()
    }

    // MARK: Adding

    /// Adds image files (and, with `recursive`, the images inside folders). Each input ends up
    /// added, a duplicate of an item already stored, or failed with a reason; a failure never
    /// stops the batch, and what is stored is committed chunk by chunk.
    public func add(
        _ paths: [String], options: AddOptions = AddOptions(), progress: (@Sendable (IngestProgress) -> Void)? = nil
    ) throws -> IngestReport {
        let started = Date()
        let embedder = try self.embedder(options.model)
        try checkModel(embedder, record: true)
        // Confined: the walk does not enter folders outside the roots, and each file is checked
        // on the descriptor it is read through (so a link swapped in meanwhile cannot escape).
        let confinement = options.allowedRoots.map { PathConfinement(roots: $0) }
        let discovered = FileDiscovery.collect(paths, recursive: options.recursive, confinement: confinement)
        let total = discovered.files.count + discovered.failures.count
        var report = IngestReport(model: embedder.manifest.name)
        func record(_ path: String, _ outcome: IngestProgress.Outcome) {
            switch outcome {
            case .added(let id): report.added.append(.init(id: id, path: path))
            case .duplicate(let existing): report.duplicates.append(.init(path: path, existingId: existing))
            case .failed(let reason): report.failures.append(IngestFailure(path: path, reason: reason))
            }
            progress?(IngestProgress(path: path, outcome: outcome, done: report.processed, total: total))
        }
        for failure in discovered.failures { record(failure.path, .failed(reason: failure.reason)) }

        var storedInThisRun: [String: String] = [:]  // content hash -> id, once committed
        var start = 0
        while start < discovered.files.count {
            let chunk = Array(discovered.files[start..<min(start + Self.chunkSize, discovered.files.count)])
            start += chunk.count
            let prepared = chunk.parallelMap(workers: configuration.decodeWorkers) { path in
                self.prepare(path, manifest: embedder.manifest, confinement: confinement)
            }
            var toEmbed: [(path: String, item: Item, pixels: Pixels)] = []
            var firstCopy: [String: String] = [:]  // content hash -> path, within this chunk
            var laterCopies: [(path: String, hash: String)] = []
            var metadataUpdates: [(id: String, metadata: String)] = []
            for (path, outcome) in zip(chunk, prepared) {
                switch outcome {
                case .failure(let reason):
                    record(path, .failed(reason: reason))
                case .stored(let item):
                    if let metadata = options.metadata?.records[path], metadata != item.metadata {
                        metadataUpdates.append((item.id, metadata))
                    }
                    record(path, .duplicate(of: item.id))
                case .decoded(let hash, let info, let pixels):
                    if let id = storedInThisRun[hash] {
                        record(path, .duplicate(of: id))
                    } else if firstCopy[hash] != nil {
                        laterCopies.append((path, hash))
                    } else {
                        firstCopy[hash] = path
                        let item = Item(id: Item.id(forContentHash: hash), contentHash: hash, sourcePath: path,
                                        width: info.width, height: info.height,
                                        metadata: options.metadata?.records[path], addedAt: Date())
                        toEmbed.append((path, item, pixels))
                    }
                }
            }
            var entries: [(item: Item, vector: [Float])] = []
            var failedReasons: [String: String] = [:]  // content hash -> reason
            for (entry, vector) in zip(toEmbed, embedEach(toEmbed.map(\.pixels), embedder: embedder)) {
                switch vector {
                case .success(let vector): entries.append((entry.item, vector))
                case .failure(let error): failedReasons[entry.item.contentHash] = IngestError.embeddingFailed("\(error)").description
                }
            }
            do {
                try catalog.insert(entries, model: embedder.manifest.name, metadataUpdates: metadataUpdates)
            } catch {
                // Earlier chunks are committed and stay; this one is rolled back as a whole.
                let reason = "not stored, the store refused the write: \(error)"
                for entry in entries { record(entry.item.sourcePath, .failed(reason: reason)) }
                for copy in laterCopies { record(copy.path, .failed(reason: reason)) }
                for (path, hashReason) in toEmbed.compactMap({ entry in failedReasons[entry.item.contentHash].map { (entry.path, $0) } }) {
                    record(path, .failed(reason: hashReason))
                }
                for path in discovered.files[start...] { record(path, .failed(reason: "not attempted: an earlier write to the store failed")) }
                report.storeError = "\(error)"
                break
            }
            indexAdded(entries.map { ($0.item.id, $0.vector) }, model: embedder.manifest.name)
            for entry in toEmbed {
                if let reason = failedReasons[entry.item.contentHash] {
                    record(entry.path, .failed(reason: reason))
                } else {
                    storedInThisRun[entry.item.contentHash] = entry.item.id
                    record(entry.path, .added(id: entry.item.id))
                }
            }
            for copy in laterCopies {
                if let id = storedInThisRun[copy.hash] {
                    record(copy.path, .duplicate(of: id))
                } else {
                    record(copy.path, .failed(reason: "same bytes as \(firstCopy[copy.hash] ?? "another input"), which failed"))
                }
            }
        }
        if !report.added.isEmpty {
            try indexSettled(embedder.manifest)
        }
        report.seconds = Date().timeIntervalSince(started)
        logger.debug("added \(report.added.count), duplicates \(report.duplicates.count), failed \(report.failures.count)")
        return report
    }

    private enum Prepared: Sendable {
        case failure(String)
        case stored(Item)
        case decoded(hash: String, info: ImageInfo, pixels: Pixels)
    }

    /// Reads, hashes and decodes one file; answers early when its bytes are already stored.
    private func prepare(_ path: String, manifest: ModelManifest, confinement: PathConfinement?) -> Prepared {
        do {
            let bytes = try FileReader.read(path, maxBytes: configuration.limits.maxBytes, confinement: confinement)
            let hash = ContentHash.sha256(bytes)
            if let existing = try catalog.item(contentHash: hash) {
                if try catalog.hasVector(itemId: existing.id, model: manifest.name) { return .stored(existing) }
            } else {
                // New bytes: their id must not already belong to other bytes.
                let id = Item.id(forContentHash: hash)
                if try !catalog.items(ids: [id]).isEmpty { throw IngestError.idCollision(id: id) }
            }
            let (info, pixels) = try decoder.load(bytes, policy: manifest.resize)
            return .decoded(hash: hash, info: info, pixels: pixels)
        } catch {
            return .failure("\(error)")
        }
    }

    /// Embeds in batches; if a batch fails, retries one by one so only the culprit fails.
    private func embedEach(_ images: [Pixels], embedder: Embedder) -> [Result<[Float], Error>] {
        if images.isEmpty { return [] }
        if let vectors = try? timedEmbed(images, embedder: embedder) { return vectors.map { .success($0) } }
        return images.map { image in Result { try timedEmbed([image], embedder: embedder)[0] } }
    }

    /// Runs the model, and records how long it took in the `lookalike_model_inference_seconds`
    /// timer (swift-metrics: a no-op unless the process installed a metrics backend, as the server does).
    private func timedEmbed(_ images: [Pixels], embedder: Embedder) throws -> [[Float]] {
        let started = DispatchTime.now()
        defer {
            Metrics.Timer(label: "lookalike_model_inference_seconds", dimensions: [("model", embedder.manifest.name)],
                          preferredDisplayUnit: .seconds).recordInterval(since: started)
        }
        return try embedder.embed(images)
    }

    // MARK: Searching

    /// The `top` stored images most similar to the image file at `path`, best first.
    /// `tookMs` covers reading, decoding, embedding and ranking; loading the model the first time is not counted.
    /// `efSearch` sets the HNSW beam width for this query (more is slower and finds more true
    /// neighbours); it has no effect while the collection is searched exactly.
    public func search(
        imageAt path: String, top: Int = 10, model: String = ModelManifest.defaultName, efSearch: Int? = nil
    ) throws -> SearchResponse {
        try search(imageAt: path, options: SearchOptions(top: top, model: model, efSearch: efSearch))
    }

    /// As `search(bytes:options:)`, for the image file at `path`.
    public func search(imageAt path: String, options: SearchOptions) throws -> SearchResponse {
        let embedder = try self.embedder(options.model)
        let started = DispatchTime.now()
        let bytes = try FileReader.read(path, maxBytes: configuration.limits.maxBytes)
        return try search(bytes: bytes, options: options, embedder: embedder, started: started)
    }

    /// The `top` stored images most similar to the encoded image `bytes`, best first.
    public func search(
        bytes: [UInt8], top: Int = 10, model: String = ModelManifest.defaultName, efSearch: Int? = nil
    ) throws -> SearchResponse {
        try search(bytes: bytes, options: SearchOptions(top: top, model: model, efSearch: efSearch))
    }

    /// The stored images most similar to the encoded image `bytes` (or to the part of it that
    /// `options.region` marks), among those that pass `options.filter`, best first.
    public func search(bytes: [UInt8], options: SearchOptions) throws -> SearchResponse {
        let embedder = try self.embedder(options.model)
        return try search(bytes: bytes, options: options, embedder: embedder, started: DispatchTime.now())
    }

    /// "More like this": the stored images most similar to the stored item `id` (which is among
    /// them, as the most similar of all). The item's stored vector is the query: nothing is decoded.
    public func search(itemID id: String, options: SearchOptions) throws -> SearchResponse {
        let embedder = try self.embedder(options.model)
        let started = DispatchTime.now()
        try checkModel(embedder, record: false)
        guard let query = try catalog.vectors(model: embedder.manifest.name, ids: [id]).first?.vector else {
            if try catalog.items(ids: [id]).isEmpty { throw EngineError.unknownItem(id: id) }
            throw EngineError.noVector(id: id, model: embedder.manifest.name)
        }
        return try rank(query, options: options, embedder: embedder, started: started) { other in
            try self.catalog.vectors(model: other.manifest.name, ids: [id]).first?.vector
        }
    }

    private func search(bytes: [UInt8], options: SearchOptions, embedder: Embedder, started: DispatchTime) throws -> SearchResponse {
        try checkModel(embedder, record: false)
        let pixels = try decoder.decode(bytes, policy: embedder.manifest.resize, region: options.region)
        let query = try timedEmbed([pixels], embedder: embedder)[0]
        return try rank(query, options: options, embedder: embedder, started: started) { other in
            let pixels = try self.decoder.decode(bytes, policy: other.manifest.resize, region: options.region)
            return try self.timedEmbed([pixels], embedder: other)[0]
        }
    }

    /// Ranks the stored images against `query`, the embedding of `embedder`'s model; `queryFor`
    /// gives the query's embedding by another model, for a cascade (nil when it has none).
    private func rank(_ query: [Float], options: SearchOptions, embedder: Embedder, started: DispatchTime,
                      queryFor: (Embedder) throws -> [Float]?) throws -> SearchResponse {
        let top = max(0, options.top)
        let index = try self.index(for: embedder.manifest)
        let filter = try options.filter.map { filter in
            do {
                return SearchFilter.ids(try catalog.itemIDs(matching: filter))
            } catch {
                throw MetadataFilter.ParseError(field: "", reason: "the store could not evaluate the filter (\(error))")
            }
        }
        var ranked = try search(index, query, model: embedder.manifest.name, top: top, filter: filter, options: options)
        let cascade = options.cascade.filter { $0 != embedder.manifest.name }
        if !cascade.isEmpty {
            ranked = try lift(ranked, query: query, embedder: embedder, cascade: cascade, top: top, filter: filter,
                              options: options, queryFor: queryFor)
        }
        let items = try catalog.items(ids: ranked.map(\.id))
        let hits = ranked.compactMap { hit -> SearchResponse.Hit? in
            guard let item = items[hit.id] else { return nil }
            return SearchResponse.Hit(id: item.id, path: item.sourcePath, score: hit.score, width: item.width,
                                      height: item.height, metadata: item.metadata,
                                      duplicate: embedder.manifest.duplicateThreshold.map { hit.score >= $0 } ?? false)
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e6
        return SearchResponse(model: embedder.manifest.name, tookMs: elapsed, searched: index.count, hits: hits)
    }

    private func search(_ index: any VectorIndex, _ query: [Float], model: String, top: Int, filter: SearchFilter?,
                        options: SearchOptions) throws -> [SearchHit] {
        if let graph = index as? HNSWIndex {
            // A compressed graph finds candidates; the catalog's float32 vectors rank them exactly.
            return try graph.search(query, k: top, efSearch: options.efSearch ?? graph.parameters.efSearch, filter: filter,
                                    rescoringFrom: CatalogVectors(catalog: catalog, model: model))
        }
        return try index.search(query, k: top, filter: filter)
    }

    /// The cascade of `SearchOptions.cascade`: each backing model searches with its own embedding
    /// of the query, and every image it scores at or past its duplicate threshold gets the larger
    /// of its score by the main model and the main model's threshold plus the backing model's
    /// margin. Images that only a backing model found are scored by the main model exactly.
    private func lift(_ ranked: [SearchHit], query: [Float], embedder: Embedder, cascade: [String], top: Int,
                      filter: SearchFilter?, options: SearchOptions,
                      queryFor: (Embedder) throws -> [Float]?) throws -> [SearchHit] {
        guard let threshold = embedder.manifest.duplicateThreshold else {
            throw EngineError.noDuplicateThreshold(model: embedder.manifest.name)
        }
        var scores = Dictionary(ranked.map { ($0.id, $0.score) }, uniquingKeysWith: { first, _ in first })
        var lifted: [String: Float] = [:]
        for name in cascade {
            let other = try self.embedder(name)
            guard let otherThreshold = other.manifest.duplicateThreshold else {
                throw EngineError.noDuplicateThreshold(model: name)
            }
            try checkModel(other, record: false)
            guard let otherQuery = try queryFor(other) else { continue }
            let found = try search(try self.index(for: other.manifest), otherQuery, model: name, top: top, filter: filter,
                                   options: options)
            for hit in found where hit.score >= otherThreshold {
                lifted[hit.id] = Swift.max(lifted[hit.id] ?? -.infinity, threshold + (hit.score - otherThreshold))
            }
        }
        let unscored = lifted.keys.filter { scores[$0] == nil }
        for (id, vector) in try catalog.vectors(model: embedder.manifest.name, ids: unscored) where vector.count == query.count {
            scores[id] = zip(query, vector).reduce(0) { $0 + $1.0 * $1.1 }
        }
        for (id, score) in lifted { scores[id] = Swift.max(scores[id] ?? -.infinity, score) }
        return scores.map { SearchHit(id: $0.key, score: $0.value) }
            .sorted { $0.score != $1.score ? $0.score > $1.score : $0.id < $1.id }
            .prefix(top).map { $0 }
    }

    /// The model's embedding of the image file at `path` (L2-normalised), without searching.
    public func embedding(imageAt path: String, model: String = ModelManifest.defaultName) throws -> [Float] {
        let embedder = try self.embedder(model)
        let bytes = try FileReader.read(path, maxBytes: configuration.limits.maxBytes)
        let pixels = try decoder.decode(bytes, policy: embedder.manifest.resize)
        return try embedder.embed([pixels])[0]
    }

    // MARK: Managing

    /// Deletes items and their vectors; returns the ids that existed. Loaded indexes drop them
    /// at once, and HNSW snapshots are saved again.
    public func remove(ids: [String]) throws -> [String] {
        let removed = try catalog.remove(ids: ids)
        let cached = lock.withLock {
            generation += 1
            return indexes
        }
        for (model, index) in cached {
            for id in removed { index.remove(id: id) }
            if let graph = index as? HNSWIndex, !removed.isEmpty {
                if let manifest = try? registry().manifest(named: model), (try? catchUp(graph, manifest: manifest)) == nil {
                    logger.warning("the index of \(model) could not be compared with the catalog after a removal")
                }
                snapshotChanged(graph, model: model)
            }
        }
        return removed
    }

    /// The stored original of an item, read now from where it was added from, and checked to be
    /// still the same bytes (a file replaced since, or a link pointed elsewhere, is not served).
    public func originalBytes(of item: Item) throws -> [UInt8] {
        let bytes = try FileReader.read(item.sourcePath, maxBytes: ImageLimits.default.maxBytes)
        guard ContentHash.sha256(bytes) == item.contentHash else { throw IngestError.changedSinceAdded }
        return bytes
    }

    public func stats() throws -> CatalogStats {
        try catalog.stats()
    }

    // MARK: Caches

    private func embedder(_ name: String) throws -> Embedder {
        if let embedder = lock.withLock({ embedders[name] }) { return embedder }
        let registry = try registry()
        let manifest = try registry.manifest(named: name)
        let embedder = try Embedder(manifest: manifest, registry: registry, threads: configuration.inferenceThreads)
        lock.withLock { embedders[name] = embedder }
        return embedder
    }

    /// Once per model and engine: the store's vectors for this model name come from this very model.
    private func checkModel(_ embedder: Embedder, record: Bool) throws {
        let name = embedder.manifest.name
        if lock.withLock({ checkedModels.contains(name) }) { return }
        let recorded = try catalog.checkModel(
            name, fingerprint: embedder.fingerprint, dimension: embedder.manifest.dimension, record: record)
        if recorded { _ = lock.withLock { checkedModels.insert(name) } }
    }

    private func index(for manifest: ModelManifest) throws -> any VectorIndex {
        let (cached, builtAt) = lock.withLock { (indexes[manifest.name], generation) }
        if let cached { return cached }
        let index: any VectorIndex
        if try catalog.vectorCount(model: manifest.name) >= configuration.approximateSearchThreshold {
            index = try graphIndex(for: manifest)
        } else {
            let flat = FlatIndex(dimension: manifest.dimension)
            for (id, vector) in try catalog.vectors(model: manifest.name) {
                try addChecked(flat, id: id, vector: vector, model: manifest.name)
            }
            index = flat
        }
        lock.withLock { if generation == builtAt { indexes[manifest.name] = index } }
        return index
    }

    /// How a model's vectors are searched, for `stats`.
    public struct IndexStatus: Sendable {
        public let model: String
        /// `exact` or `hnsw`.
        public let kind: String
        public let vectors: Int
        public let memoryBytes: Int
        /// How the graph stores vectors: `int8`, `float16` or `float32` (HNSW only).
        public let encoding: String?
        /// When the snapshot file was last written (HNSW only).
        public let snapshotSaved: Date?
    }

    /// The index of every model that has vectors in the store (building or loading it if needed).
    public func indexStatuses() throws -> [IndexStatus] {
        let registry = try registry()
        return try catalog.stats().vectors.keys.sorted().compactMap { name in
            guard let manifest = try? registry.manifest(named: name) else { return nil }
            let index = try self.index(for: manifest)
            if let graph = index as? HNSWIndex {
                let attributes = try? FileManager.default.attributesOfItem(atPath: snapshotURL(model: name).path)
                return IndexStatus(model: name, kind: "hnsw", vectors: graph.count, memoryBytes: graph.memoryBytes,
                                   encoding: graph.encoding.name, snapshotSaved: attributes?[.modificationDate] as? Date)
            }
            return IndexStatus(model: name, kind: "exact", vectors: index.count,
                               memoryBytes: index.count * manifest.dimension * MemoryLayout<Float>.size, encoding: nil,
                               snapshotSaved: nil)
        }
    }

    /// Where the HNSW snapshot of a model lives in the store.
    public func snapshotURL(model: String) -> URL {
        configuration.store.appendingPathComponent("index", isDirectory: true).appendingPathComponent("\(model).hnsw")
    }

    /// The model's HNSW index: from its snapshot when that is readable and has the configured
    /// encoding, else rebuilt from the catalog; then brought up to date with the catalog (items added
    /// or removed since the snapshot) and saved again if anything changed. The catalog is the truth;
    /// the snapshot only saves time.
    private func graphIndex(for manifest: ModelManifest) throws -> HNSWIndex {
        let url = snapshotURL(model: manifest.name)
        var index: HNSWIndex?
        if FileManager.default.fileExists(atPath: url.path) {
            do {
                let loaded = try HNSWIndex.load(from: url)
                if loaded.dimension != manifest.dimension || loaded.metric != .cosine {
                    logger.warning("index snapshot \(url.path) does not fit model \(manifest.name); rebuilding it")
                } else if loaded.encoding.name != configuration.indexEncoding.rawValue {
                    logger.info("index snapshot \(url.path) holds \(loaded.encoding.name) vectors, \(configuration.indexEncoding.rawValue) are configured; rebuilding it")
                } else {
                    index = loaded
                }
            } catch {
                logger.warning("\(error); rebuilding the index from the catalog")
            }
        }
        // The snapshot records the catalog generation it reflects: when that is still current, the
        // graph is up to date and no ids need comparing.
        if let index, index.externalVersion != 0,
           index.externalVersion == UInt64(clamping: try catalog.vectorGeneration(model: manifest.name)) {
            return index
        }
        let (graph, changed) = try catchUp(index, manifest: manifest)
        if changed || index == nil || !FileManager.default.fileExists(atPath: url.path) {
            saveSnapshot(graph, model: manifest.name)
        }
        return graph
    }

    /// Brings `index` (or, when nil, a new graph trained on the catalog's vectors) in line with the
    /// catalog: adds what is missing, removes what is gone, and records the catalog generation the
    /// comparison was made at. Returns whether anything changed.
    private func catchUp(_ index: HNSWIndex?, manifest: ModelManifest) throws -> (HNSWIndex, changed: Bool) {
        let (ids, generation) = try catalog.vectorIDsAndGeneration(model: manifest.name)
        let stored = Set(ids)
        let indexed = Set(index?.liveIDs() ?? [])
        let missing = try catalog.vectors(model: manifest.name, ids: ids.filter { !indexed.contains($0) })
        let graph = try index ?? newGraph(for: manifest, training: missing)
        var changed = false
        for id in indexed.subtracting(stored) {
            graph.remove(id: id)
            changed = true
        }
        for (id, vector) in missing {
            try addChecked(graph, id: id, vector: vector, model: manifest.name)
            changed = true
        }
        let version = UInt64(clamping: generation)
        if graph.externalVersion != version {
            graph.externalVersion = version
            changed = true
        }
        return (graph, changed)
    }

    /// An empty graph with the configured encoding; an 8-bit one learns its quantiser from up to
    /// 100,000 of the `training` vectors (an even sample).
    private func newGraph(for manifest: ModelManifest, training: [(id: String, vector: [Float])]) throws -> HNSWIndex {
        let encoding: VectorEncoding
        switch configuration.indexEncoding {
        case .float32: encoding = .float32
        case .float16: encoding = .float16
        case .int8:
            let step = max(1, training.count / 100_000)
            var sample: [Float] = []
            sample.reserveCapacity(min(training.count, 100_000) * manifest.dimension)
            for row in stride(from: 0, to: training.count, by: step) where training[row].vector.count == manifest.dimension {
                sample += training[row].vector
            }
            encoding = sample.isEmpty ? .float32
                : .int8(ScalarQuantizer.train(on: sample, dimension: manifest.dimension, normalizeForCosine: true))
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
            _ = lock.withLock { unsavedSnapshots.insert(model) }
        } else {
            saveSnapshot(graph, model: model)
        }
    }

    /// Saves the snapshots of loaded graphs that changed since they were last saved (a server
    /// that defers saves calls this on a timer and when it stops). Returns the models saved.
    @discardableResult
    public func saveSnapshots() -> [String] {
        let pending: [(String, HNSWIndex)] = lock.withLock {
            let models = unsavedSnapshots
            unsavedSnapshots.removeAll()
            return models.compactMap { model in (indexes[model] as? HNSWIndex).map { (model, $0) } }
        }
        for (model, graph) in pending { saveSnapshot(graph, model: model) }
        return pending.map(\.0).sorted()
    }

    /// Adds freshly stored vectors to the model's loaded index, if one is loaded, so a long-lived
    /// engine never reloads its index after an add. An index that refuses them is dropped and
    /// rebuilt from the catalog when next needed.
    private func indexAdded(_ entries: [(id: String, vector: [Float])], model: String) {
        let cached = lock.withLock {
            generation += 1
            return indexes[model]
        }
        guard let cached else { return }
        do {
            for (id, vector) in entries { try cached.add(id: id, vector: vector) }
        } catch {
            logger.warning("\(error); the index of \(model) will be rebuilt")
            invalidateIndex(model)
        }
    }

    /// At the end of an add: the model's index becomes the right kind for its size (exact below the
    /// threshold, HNSW from it on), and an HNSW index's snapshot is saved, so the next process
    /// opens it ready.
    private func indexSettled(_ manifest: ModelManifest) throws {
        let approximate = try catalog.vectorCount(model: manifest.name) >= configuration.approximateSearchThreshold
        let cached = lock.withLock { indexes[manifest.name] }
        switch cached {
        case let graph as HNSWIndex:
            // The graph took this add's vectors as they were stored; comparing with the catalog
            // also catches other writers, and records the generation the snapshot reflects.
            if try catchUp(graph, manifest: manifest).changed { snapshotChanged(graph, model: manifest.name) }
        case .some where approximate:
            invalidateIndex(manifest.name)
            _ = try index(for: manifest)
        case nil where approximate:
            _ = try index(for: manifest)  // loads and catches up the graph, and saves its snapshot
        default:
            break
        }
    }

    private func addChecked(_ index: any VectorIndex, id: String, vector: [Float], model: String) throws {
        do {
            try index.add(id: id, vector: vector)
        } catch {
            throw EngineError.incompatibleVectors(model: model, reason: "\(error)")
        }
    }

    /// The model's index if one is loaded (for tests).
    func loadedIndex(model: String) -> (any VectorIndex)? {
        lock.withLock { indexes[model] }
    }

    private func invalidateIndex(_ model: String) {
        lock.withLock {
            generation += 1
            _ = indexes.removeValue(forKey: model)
        }
    }
}

/// The catalog's full-precision vectors of one model, for re-scoring a compressed graph's candidates.
struct CatalogVectors: ExactVectorSource {
    let catalog: Catalog
    let model: String

    func exactVectors(for ids: [String]) throws -> [[Float]?] {
        let found = Dictionary(try catalog.vectors(model: model, ids: ids), uniquingKeysWith: { first, _ in first })
        return ids.map { found[$0] }
    }
}

/// Errors of the engine itself.
public enum EngineError: Error, Sendable, CustomStringConvertible {
    case incompatibleVectors(model: String, reason: String)
    case unknownItem(id: String)
    case noVector(id: String, model: String)
    case noDuplicateThreshold(model: String)

    public var description: String {
        switch self {
        case .noDuplicateThreshold(let model):
            return "model \(model) has no duplicate threshold, which a cascade needs (set duplicateThreshold in its manifest)"
        case .unknownItem(let id):
            return "no item with id \(id)"
        case .noVector(let id, let model):
            return "item \(id) has no vector from model \(model) (it was added with another model)"
        case .incompatibleVectors(let model, let reason):
            return "the store's vectors for model \(model) do not fit the model (\(reason)); was the model changed?"
        }
    }
}

/// Options of `Engine.add`.
public struct AddOptions: Sendable {
    public var recursive: Bool
    public var model: String
    public var metadata: MetadataFile?
    /// When set, only files that lie inside these folders once symbolic links are resolved are
    /// added; the others fail with a reason (a server indexes only the folders it was given).
    public var allowedRoots: [String]?

    public init(recursive: Bool = false, model: String = ModelManifest.defaultName, metadata: MetadataFile? = nil,
                allowedRoots: [String]? = nil) {
        self.recursive = recursive
        self.model = model
        self.metadata = metadata
        self.allowedRoots = allowedRoots
    }
}

/// Options of a search.
public struct SearchOptions: Sendable {
    public var top: Int
    public var model: String
    /// HNSW beam width for this query (no effect while the collection is searched exactly).
    public var efSearch: Int?
    /// Only items whose metadata passes.
    public var filter: MetadataFilter?
    /// Search with this part of the query image only.
    public var region: ImageRegion?
    /// Copy detectors that back `model` up, a cascade: each searches too, and a stored image it
    /// scores past its own duplicate threshold is lifted onto `model`'s scale (`model`'s threshold
    /// plus that margin), so it ranks, and is marked, as a copy. `sscd` backed by `phash` is the
    /// best copy detector measured (docs/QUALITY.md). Both models need their vectors in the store.
    public var cascade: [String]

    public init(top: Int = 10, model: String = ModelManifest.defaultName, efSearch: Int? = nil,
                filter: MetadataFilter? = nil, region: ImageRegion? = nil, cascade: [String] = []) {
        self.top = top
        self.model = model
        self.efSearch = efSearch
        self.filter = filter
        self.region = region
        self.cascade = cascade
    }
}
