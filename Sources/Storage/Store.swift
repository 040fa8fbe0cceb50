import Foundation

/// Counts reported by `stats`.
public struct CatalogStats: Sendable, Equatable {
    public var items: Int
    /// Number of vectors per model name.
    public var vectors: [String: Int]
    /// Size of the database files on disk, in bytes.
    public var bytesOnDisk: Int

    public init(items: Int, vectors: [String: Int], bytesOnDisk: Int) {
        self.items = items
        self.vectors = vectors
        self.bytesOnDisk = bytesOnDisk
    }
}

/// Why a store refused a request of the seam itself.
public enum StoreError: Error, Sendable, CustomStringConvertible {
    /// `nearest` was asked of a store that does not search vectors.
    case noVectorSearch

    public var description: String {
        switch self {
        case .noVectorSearch: return "this store does not search vectors itself; the engine's own index does"
        }
    }
}

/// Where a model's vectors live: the model that made them and the embedding space they belong
/// to. An image vector and a text vector made for one space can be compared; two models of one
/// space share it by name (a text encoder and the image model trained or mapped into its space).
public struct VectorSpace: Sendable, Hashable, CustomStringConvertible {
    public let model: String
    public let space: String

    public init(model: String, space: String? = nil) {
        self.model = model
        self.space = space ?? model
    }

    public var description: String { model == space ? model : "\(model) (space \(space))" }
}

/// A model as a store recorded it the first time its vectors were stored.
public struct ModelRecord: Sendable, Equatable {
    public let name: String
    public let fingerprint: String
    public let dimension: Int
    /// The embedding space, nil when the model is its own.
    public let space: String?

    public init(name: String, fingerprint: String, dimension: Int, space: String?) {
        self.name = name
        self.fingerprint = fingerprint
        self.dimension = dimension
        self.space = space
    }
}

/// A stored vector, as stores hand them out.
public typealias StoredEmbedding = (id: String, vector: [Float])

/// What the engine needs from storage: items and their metadata, vectors by model (streamed in
/// pages, never all at once), change generations, the ids a parsed filter matches, and,
/// optionally, a vector search of the store's own (a store with a vector index of its own, such
/// as pgvector, says `searchesVectors` and answers `nearest`). `Catalog` on SQLite is the first implementation.
///
/// Every write is atomic: a failed call leaves the store as it was. The store is the truth;
/// indexes built from it are caches that `vectorGeneration` tells when to refresh.
/// The settings a store keeps (`Store.setting`).
public enum StoreSetting {
    /// The model searches and adds use when none is named (a tuned model's adds go to its base).
    public static let defaultModel = "default_model"
}

public protocol Store: AnyObject, Sendable {
    /// A folder of the store's own, for files kept beside its records (index snapshots,
    /// uploads, thumbnails).
    var directory: URL { get }
    /// A random identity the store was given when it was created, never changed: an index built
    /// from one store is not mistaken for another's when their generations happen to agree.
    func identity() throws -> UUID

    // MARK: Items

    /// The item holding exactly these bytes, if any.
    func item(contentHash: String) throws -> Item?
    /// The items among `ids` that exist, by id.
    func items(ids: [String]) throws -> [String: Item]
    /// Items in id order, `limit` at a time, starting after the id `after`.
    func items(after: String?, limit: Int) throws -> [Item]
    func itemCount() throws -> Int
    /// The ids of the items whose metadata passes `filter`.
    func itemIDs(matching filter: MetadataFilter) throws -> Set<String>
    /// Stores items with their vectors from `model`, and replaces the metadata of items already
    /// stored, all in one transaction. An item already present keeps its row and gains the vector.
    func insert(_ entries: [(item: Item, vector: [Float])], model: String,
                metadataUpdates: [(id: String, metadata: String)]) throws
    /// Deletes items and their vectors; returns the ids that existed.
    @discardableResult func remove(ids: [String]) throws -> [String]

    // MARK: Models

    /// Checks that `model` is the model the store's vectors of that name were made with (same
    /// fingerprint and dimension); with `record`, a model used for the first time is recorded,
    /// with its embedding space. Returns whether the model is recorded (and matched).
    @discardableResult
    func checkModel(_ model: String, fingerprint: String, dimension: Int, space: String?, record: Bool) throws -> Bool
    /// The models with vectors in the store and the spaces they were recorded with.
    func vectorSpaces() throws -> [VectorSpace]
    /// Every recorded model with its fingerprint, dimension and space, by name.
    func modelRecords() throws -> [ModelRecord]

    /// Forgets a model: its vectors, its record, the marks given to its searches, its projection
    /// if it is tuned, and the default model setting if it names it, in one transaction. Returns how many vectors were deleted.
    @discardableResult func removeModel(_ name: String) throws -> Int

    // MARK: Tuned models

    /// Records a tuned model's projection; a name already taken is `TunedModelError.exists`.
    func saveTunedModel(_ model: TunedModelRecord) throws
    /// Every tuned model, by name.
    func tunedModels() throws -> [TunedModelRecord]

    // MARK: Settings

    /// A setting of the store's own (such as `StoreSetting.defaultModel`), nil when unset.
    func setting(_ key: String) throws -> String?
    /// Sets a setting, or clears it with nil.
    func setSetting(_ key: String, to value: String?) throws

    // MARK: Vectors

    /// Whether `itemId` already has a vector from `model`.
    func hasVector(itemId: String, model: String) throws -> Bool
    /// How many items have a vector from `model`.
    func vectorCount(model: String) throws -> Int
    /// The vectors of `model` for the given items (those that have one).
    func vectors(model: String, ids: [String]) throws -> [StoredEmbedding]
    /// Every vector of `model` in insertion order, `pageSize` at a time: memory stays flat
    /// whatever the size of the collection. `body` returning false stops the walk.
    func forEachVectorPage(model: String, pageSize: Int, _ body: ([StoredEmbedding]) throws -> Bool) throws
    /// The ids of the items with a vector from `model`, in insertion order.
    func vectorIDs(model: String) throws -> [String]
    /// The ids with a vector from `model` and the generation they belong to, read together.
    func vectorIDsAndGeneration(model: String) throws -> (ids: [String], generation: Int64)
    /// How many times the vectors of `model` have changed (0 if never): equal generations mean
    /// identical sets of vectors.
    func vectorGeneration(model: String) throws -> Int64

    // MARK: Search pushed down

    /// Whether the store searches vectors itself (`nearest`); when it does, the engine builds no
    /// index of its own for searches.
    var searchesVectors: Bool { get }
    /// The `k` items nearest to `query` among `model`'s vectors that pass `filter`, best first,
    /// scored by cosine similarity. Asked only of a store that `searchesVectors`.
    func nearest(model: String, to query: [Float], k: Int, filter: MetadataFilter?) throws -> [(id: String, score: Float)]

    // MARK: Feedback

    /// Records marks and clicks in one transaction; every item must exist.
    func recordFeedback(_ feedback: [Feedback]) throws
    /// The newest `limit` marks given to searches with `model`'s query vectors, newest first.
    func feedback(model: String, limit: Int) throws -> [Feedback]
    /// Forgets the marks of `model` (nil: of every model); returns how many were forgotten.
    /// Removing an item forgets its marks too.
    @discardableResult func removeFeedback(model: String?) throws -> Int

    func stats() throws -> CatalogStats
}

extension Store {
    /// Every item in id order, starting after the id `after`, `pageSize` at a time; `body` returns
    /// false to stop.
    public func forEachItemPage(after: String? = nil, pageSize: Int = 1000, _ body: ([Item]) throws -> Bool) throws {
        var cursor = after
        while true {
            let page = try items(after: cursor, limit: pageSize)
            guard !page.isEmpty, try body(page), page.count == pageSize, let last = page.last else { return }
            cursor = last.id
        }
    }

    /// As `checkModel(_:fingerprint:dimension:space:record:)`, for a model that is its own space.
    @discardableResult
    public func checkModel(_ model: String, fingerprint: String, dimension: Int, record: Bool) throws -> Bool {
        try checkModel(model, fingerprint: fingerprint, dimension: dimension, space: nil, record: record)
    }

    /// As `insert(_:model:metadataUpdates:)`, without metadata updates.
    public func insert(_ entries: [(item: Item, vector: [Float])], model: String) throws {
        try insert(entries, model: model, metadataUpdates: [])
    }

    public var searchesVectors: Bool { false }

    public func nearest(model: String, to query: [Float], k: Int, filter: MetadataFilter?) throws -> [(id: String, score: Float)] {
        throw StoreError.noVectorSearch
    }

    /// Every vector of `model`, gathered from its pages (for small collections and tools).
    public func vectors(model: String) throws -> [StoredEmbedding] {
        var all: [StoredEmbedding] = []
        try forEachVectorPage(model: model, pageSize: 1_000) { page in
            all += page
            return true
        }
        return all
    }
}
