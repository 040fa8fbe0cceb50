import Dispatch
import Embedding
import Foundation
import Imaging
import Metrics
import Storage

/// The engine's models: the registry, each embedder loaded once, and the check (once per model)
/// that the store's vectors under a model's name were made by this very model.
final class Models: @unchecked Sendable {
    private let loadedRegistry: Result<ModelRegistry, Error>
    private let store: any Store
    private let threads: Int
    private let lock = NSLock()
    private var embedders: [String: Embedder] = [:]
    private var checked: Set<String> = []

    init(directory: URL, store: any Store, threads: Int) {
        loadedRegistry = Result { try ModelRegistry(directory: directory) }
        self.store = store
        self.threads = threads
    }

    /// A broken manifest in the models folder fails only the calls that need a model.
    func registry() throws -> ModelRegistry {
        try loadedRegistry.get()
    }

    /// An installed model's manifest, or a tuned model's (made from its base's).
    func manifest(named name: String) throws -> ModelManifest {
        if let embedder = lock.withLock({ embedders[name] }) { return embedder.manifest }
        let registry = try registry()
        if registry.manifests.contains(where: { $0.name == name }) { return try registry.manifest(named: name) }
        if let tuned = try tunedRecord(name) { return try TunedModels.manifest(of: tuned, base: registry.manifest(named: tuned.base)) }
        return try registry.manifest(named: name)  // the unknown-model error, listing the known ones
    }

    /// The tuned model of this name in the store, if any (nil for a name that cannot be one).
    func tunedRecord(_ name: String) throws -> TunedModelRecord? {
        guard name.contains(TunedModels.separator) else { return nil }
        return try store.tunedModels().first { $0.name == name }
    }

    /// The tuned models derived from `base`, loaded.
    func tunedEmbedders(of base: String) throws -> [Embedder] {
        try store.tunedModels().filter { $0.base == base }.map { try embedder($0.name) }
    }

    /// Forgets a loaded tuned model (after it was removed or replaced).
    func forget(_ name: String) {
        lock.withLock {
            _ = embedders.removeValue(forKey: name)
            _ = checked.remove(name)
        }
    }

    /// The model's embedder, loaded on first use and kept; a tuned model's is its base model's
    /// embedder with the projection after it.
    func embedder(_ name: String) throws -> Embedder {
        if let embedder = lock.withLock({ embedders[name] }) { return embedder }
        let registry = try registry()
        if !registry.manifests.contains(where: { $0.name == name }), let tuned = try tunedRecord(name) {
            let embedder = try TunedModels.embedder(of: tuned, base: try self.embedder(tuned.base))
            lock.withLock { embedders[name] = embedder }
            return embedder
        }
        let manifest = try registry.manifest(named: name)
        // A model made of words shares its text model with the queries in words of its space.
        let encoder = try manifest.concepts.map { try textEncoder(named: $0.textModel) }
        let embedder = try Embedder(manifest: manifest, registry: registry, threads: threads, textEncoder: encoder)
        lock.withLock { embedders[name] = embedder }
        return embedder
    }

    private var textEncoders: [String: TextEncoder] = [:]

    /// The text encoder of an embedding space (an installed text model naming that space); nil
    /// when none is installed.
    func textEncoder(space: String) throws -> TextEncoder? {
        let registry = try registry()
        guard let manifest = registry.manifests.first(where: { $0.modality == .text && $0.embeddingSpace == space && registry.isInstalled($0) })
        else { return nil }
        return try textEncoder(named: manifest.name)
    }

    /// A text model, loaded on first use and kept.
    func textEncoder(named name: String) throws -> TextEncoder {
        if let encoder = lock.withLock({ textEncoders[name] }) { return encoder }
        let registry = try registry()
        let encoder = try TextEncoder(manifest: try registry.manifest(named: name), registry: registry, threads: threads)
        lock.withLock { textEncoders[name] = encoder }
        return encoder
    }

    /// The store's vectors for this model name come from this very model; with `record`, a model
    /// used for the first time is recorded (with its embedding space).
    func check(_ embedder: Embedder, record: Bool) throws {
        let name = embedder.manifest.name
        if lock.withLock({ checked.contains(name) }) { return }
        let recorded = try store.checkModel(
            name, fingerprint: embedder.fingerprint, dimension: embedder.manifest.dimension,
            space: embedder.manifest.space, record: record)
        if recorded { _ = lock.withLock { checked.insert(name) } }
    }

    /// Runs the model, and records how long it took in the `lookalike_model_inference_seconds`
    /// timer (swift-metrics: a no-op unless the process installed a metrics backend, as the server does).
    static func timedEmbed(_ images: [Pixels], embedder: Embedder) throws -> [[Float]] {
        let started = DispatchTime.now()
        defer {
            Metrics.Timer(label: "lookalike_model_inference_seconds", dimensions: [("model", embedder.manifest.name)],
                          preferredDisplayUnit: .seconds).recordInterval(since: started)
        }
        return try embedder.embed(images)
    }
}
