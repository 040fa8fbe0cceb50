import Embedding
import Foundation
import Imaging
import VectorIndex

/// How an `Engine` is set up. Every field has a working default.
public struct EngineConfiguration: Sendable {
    /// The store folder: the SQLite catalog and index snapshots, or, with `database`, only the
    /// files kept beside the records (uploads, thumbnails).
    public var store: URL
    /// A PostgreSQL store's address (`postgres://…`); nil for the SQLite store in `store`.
    public var database: String?
    /// Streaming replicas of `database` that searches may read from.
    public var readReplicas: [String] = []
    /// The models folder (ONNX files, manifests, the ONNX Runtime library).
    public var models: URL
    /// Threads one model run may use (0: ONNX Runtime decides, one per core).
    public var inferenceThreads: Int
    /// Images decoded at once while adding.
    public var decodeWorkers: Int
    public var limits: ImageLimits
    /// From this many vectors of a model on, searches use the HNSW graph (kept as a snapshot in the
    /// store); below it, exact search over all vectors is fast enough and always exact.
    /// Default 20,000, or `LOOKALIKE_APPROXIMATE_FROM`.
    public var approximateSearchThreshold: Int
    /// Graph parameters for new HNSW indexes.
    public var hnsw: HNSWIndex.Parameters
    /// How the HNSW graph stores vectors: `int8` (default; a quarter of the memory, candidates
    /// re-scored from the catalog's full-precision vectors), `float16` or `float32`.
    /// `LOOKALIKE_INDEX_ENCODING` sets it.
    public var indexEncoding: IndexEncoding
    /// When true, a write does not save the HNSW snapshot at once: `Engine.saveSnapshots()` does,
    /// when the owner calls it (a server, on a timer and at shutdown). The catalog stays the truth
    /// either way; a snapshot left behind only costs a catch-up at the next start.
    public var deferSnapshotSaves = false

    public init(
        store: URL = StoreLocation.resolve(nil),
        database: String? = nil,
        models: URL = ModelRegistry.defaultDirectory(),
        inferenceThreads: Int = 0,
        decodeWorkers: Int = ProcessInfo.processInfo.activeProcessorCount,
        limits: ImageLimits = .default,
        approximateSearchThreshold: Int = ProcessInfo.processInfo.environment["LOOKALIKE_APPROXIMATE_FROM"].flatMap(Int.init) ?? 20_000,
        hnsw: HNSWIndex.Parameters = HNSWIndex.Parameters(),
        indexEncoding: IndexEncoding = ProcessInfo.processInfo.environment["LOOKALIKE_INDEX_ENCODING"]
            .flatMap(IndexEncoding.init(rawValue:)) ?? .int8
    ) {
        self.store = store
        self.database = database
        self.models = models
        self.inferenceThreads = inferenceThreads
        self.decodeWorkers = max(1, decodeWorkers)
        self.limits = limits
        self.approximateSearchThreshold = max(0, approximateSearchThreshold)
        self.hnsw = hnsw
        self.indexEncoding = indexEncoding
    }
}

/// The vector encodings an engine's HNSW index can use; an 8-bit index learns its quantiser from
/// the vectors in the catalog when it is built.
public enum IndexEncoding: String, Sendable, CaseIterable {
    case float32, float16, int8
}
