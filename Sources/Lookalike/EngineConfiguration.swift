import Embedding
import Foundation
import Imaging

/// How an `Engine` is set up. Every field has a working default.
public struct EngineConfiguration: Sendable {
    /// The store folder (catalog and, later, index snapshots).
    public var store: URL
    /// The models folder (ONNX files, manifests, the ONNX Runtime library).
    public var models: URL
    /// Threads one model run may use (0: ONNX Runtime decides, one per core).
    public var inferenceThreads: Int
    /// Images decoded at once while adding.
    public var decodeWorkers: Int
    public var limits: ImageLimits

    public init(
        store: URL = StoreLocation.resolve(nil),
        models: URL = ModelRegistry.defaultDirectory(),
        inferenceThreads: Int = 0,
        decodeWorkers: Int = ProcessInfo.processInfo.activeProcessorCount,
        limits: ImageLimits = .default
    ) {
        self.store = store
        self.models = models
        self.inferenceThreads = inferenceThreads
        self.decodeWorkers = max(1, decodeWorkers)
        self.limits = limits
    }
}
