import Catalog
import Embedding
import Foundation
import Imaging
import Logging
import PostgresStore
import Storage
import VectorIndex

/// Lookalike's engine: adds images to a store and answers "which images look like this one?".
/// A facade: the add pipeline (`Ingest.swift`), the search pipeline with its ranking stages
/// (`Ranking/`), the indexes (`ModelIndexes`), the models (`Models`) and the store (any `Store`)
/// each live on their own. The CLI, the HTTP server and `eval` are thin front doors over it.
///
/// ```swift
/// let engine = try Engine(configuration: EngineConfiguration(store: storeURL))
/// let report = try engine.add(["photos/"], options: AddOptions(recursive: true))
/// let answer = try engine.search(.image(path: "query.jpg"), options: SearchOptions(top: 10))
/// ```
public final class Engine: @unchecked Sendable {
    public let configuration: EngineConfiguration
    /// Where items, metadata and vectors are kept: the truth.
    public let store: any Store
    let models: Models
    let indexes: ModelIndexes
    /// The indexes of the models' region tiles, a part per vector (`Tiles`).
    let tileIndexes: ModelIndexes
    let decoder: ImageDecoder
    let logger = Logger(label: "lookalike.engine")
    /// The store's default model, as last read (`defaultModel()`).
    let defaultModelCache = DefaultModelCache()

    /// Opens the store; with `createStore` false, a store that does not exist yet is an error
    /// (a search in a mistyped folder must not answer "no hits").
    public convenience init(configuration: EngineConfiguration = EngineConfiguration(), createStore: Bool = true) throws {
        let store: any Store
        if let database = configuration.database {
            store = try PostgresStore(address: database, directory: configuration.store, create: createStore,
                                      replicas: configuration.readReplicas)
        } else {
            store = try Catalog(directory: configuration.store, create: createStore)
        }
        try self.init(configuration: configuration, store: store)
    }

    /// An engine over a store of the caller's choosing.
    public init(configuration: EngineConfiguration, store: any Store) throws {
        self.configuration = configuration
        self.store = store
        models = Models(directory: configuration.models, store: store, threads: configuration.inferenceThreads)
        indexes = ModelIndexes(store: StoredVectors(store: store), configuration: configuration)
        tileIndexes = ModelIndexes(store: TileVectors(store: store), configuration: configuration)
        decoder = ImageDecoder(limits: configuration.limits)
    }

    /// The store as a person names it: its folder, or its PostgreSQL address without the password.
    public var storeDescription: String {
        (store as? PostgresStore).map { "\($0.displayAddress) (schema \($0.schema))" } ?? configuration.store.path
    }

    /// The models; a broken manifest in the models folder fails only the commands that need a model.
    public func registry() throws -> ModelRegistry {
        try models.registry()
    }

    // MARK: Searching

    /// The one entry point of every search: the stored images most like `query`, best first,
    /// among those that pass `options.filter`, ranked by `options.model` and the ranking stages
    /// the options turn on. `tookMs` covers reading, decoding, embedding and ranking; loading the
    /// model the first time is not counted.
    public func search(_ query: Query, options: SearchOptions) throws -> SearchResponse {
        // A tuned model's vectors are made from its base's: items added since are projected first.
        if options.model.contains(TunedModels.separator), let embedder = try? models.embedder(options.model) {
            try catchUpTuned(embedder)
        }
        return try pipeline.run(query, options: options)
    }

    private var pipeline: SearchPipeline {
        SearchPipeline(store: store, models: models, indexes: indexes, tileIndexes: tileIndexes, decoder: decoder, maxBytes: configuration.limits.maxBytes)
    }

    /// The `top` stored images most similar to the image file at `path`, best first.
    /// `efSearch` sets the HNSW beam width for this query.
    public func search(
        imageAt path: String, top: Int = 10, model: String = ModelManifest.defaultName, efSearch: Int? = nil
    ) throws -> SearchResponse {
        try search(.image(path: path), options: SearchOptions(top: top, model: model, efSearch: efSearch))
    }

    /// As `search(_:options:)` with the image file at `path`.
    public func search(imageAt path: String, options: SearchOptions) throws -> SearchResponse {
        try search(.image(path: path), options: options)
    }

    /// The `top` stored images most similar to the encoded image `bytes`, best first.
    public func search(
        bytes: [UInt8], top: Int = 10, model: String = ModelManifest.defaultName, efSearch: Int? = nil
    ) throws -> SearchResponse {
        try search(.image(bytes: bytes), options: SearchOptions(top: top, model: model, efSearch: efSearch))
    }

    /// As `search(_:options:)` with the encoded image `bytes` (or the part `options.region` marks).
    public func search(bytes: [UInt8], options: SearchOptions) throws -> SearchResponse {
        try search(.image(bytes: bytes), options: options)
    }

    /// "More like this": the stored images most similar to the stored item `id` (which is among
    /// them, as the most similar of all). The item's stored vector is the query: nothing is decoded.
    public func search(itemID id: String, options: SearchOptions) throws -> SearchResponse {
        try search(.item(id), options: options)
    }

    /// The model's embedding of the image file at `path` (L2-normalised), without searching.
    public func embedding(imageAt path: String, model: String = ModelManifest.defaultName) throws -> [Float] {
        let encoder = QueryEncoder(.image(path: path), region: nil, store: store, models: models, decoder: decoder,
                                   maxBytes: configuration.limits.maxBytes)
        return try encoder.vector(for: try models.embedder(model))
    }

    // MARK: Managing

    /// Deletes items and their vectors; returns the ids that existed. Loaded indexes drop them
    /// at once, and HNSW snapshots are saved again; files the store made for them (an upload,
    /// thumbnails) are deleted too.
    public func remove(ids: [String]) throws -> [String] {
        let items = try store.items(ids: ids)
        let removed = try store.remove(ids: ids)
        removeFiles(of: removed.compactMap { items[$0] })
        indexes.removed(removed) { model in try? self.models.manifest(named: model) }
        tileIndexes.removed(removed.flatMap(Tiles.partIDs(of:))) { model in
            Tiles.base(of: model).flatMap { try? self.models.manifest(named: $0) }.map(Tiles.manifest(of:))
        }
        return removed
    }

    public func stats() throws -> CatalogStats {
        try store.stats()
    }

    // MARK: Indexes

    /// How a model's vectors are searched, for `stats`.
    public struct IndexStatus: Sendable {
        public let model: String
        /// `exact` or `hnsw` (the engine's own), or `store` (the store's own index, pgvector's).
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
        return try store.stats().vectors.keys.sorted().compactMap { name in
            // A model's region tiles: the index of their parts, a part per vector.
            if let base = Tiles.base(of: name).flatMap({ try? models.manifest(named: $0) }) {
                return try tileIndexes.status(of: Tiles.manifest(of: base))
            }
            guard let manifest = try? models.manifest(named: name) else { return nil }
            return try indexes.status(of: manifest)
        }
    }

    /// Where the HNSW snapshot of a model lives in the store.
    public func snapshotURL(model: String) -> URL {
        indexes.snapshotURL(model: model)
    }

    /// Saves the snapshots of loaded graphs that changed since they were last saved (a server
    /// that defers saves calls this on a timer and when it stops). Returns the models saved.
    @discardableResult
    public func saveSnapshots() -> [String] {
        indexes.saveSnapshots()
    }

    /// The model's index if one is loaded, as built (for tests).
    func loadedIndex(model: String) -> (any VectorIndex)? {
        indexes.loadedBase(model: model)
    }
}
