import Embedding
import Foundation
import Storage

/// The model a store uses when a search or an add names none: the installed default unless the
/// store was given another (a tuned model, or the copy detector for a collection kept for copies).
extension Engine {
    /// How long a default read from the store is trusted: a change made by this engine is seen at
    /// once, one made by another process or server of the store within this many seconds.
    static let defaultModelFreshness: TimeInterval = 5

    /// The model searches use when none is named: the store's choice, else the installed default.
    public func defaultModel() throws -> String {
        if let cached = defaultModelCache.value(maxAge: Self.defaultModelFreshness) { return cached }
        var chosen: String
        do {
            chosen = try store.setting(StoreSetting.defaultModel) ?? ModelManifest.defaultName
        } catch {
            // A store that cannot be read now (a PostgreSQL primary away, no replica): the last
            // choice read still holds; searches that can be answered are answered.
            if let stale = defaultModelCache.value(maxAge: .infinity) { return stale }
            throw error
        }
        // Removing a tuned model clears the setting with it; one removed while it was being chosen
        // is passed over. (When the tuned models cannot be read, the choice stands.)
        if chosen.contains(TunedModels.separator) {
            do {
                if try models.tunedRecord(chosen) == nil { chosen = ModelManifest.defaultName }
            } catch {
                logger.warning("the tuned models cannot be read to check the default model \(chosen): \(error)")
            }
        }
        defaultModelCache.keep(chosen)
        return chosen
    }

    /// The model images are added with when none is named: the default model, or a tuned
    /// default's base (its own vectors follow by projection).
    public func defaultAddModel() throws -> String {
        let name = try defaultModel()
        guard name.contains(TunedModels.separator) else { return name }
        // The tuned model's embedder knows its base (loaded once and kept).
        return try models.embedder(name).baseModel?.manifest.name ?? ModelManifest.defaultName
    }

    /// Makes `name` the store's default model; nil goes back to the installed default. It must be
    /// one of the store's tuned models or an installed model of images (not one made of words,
    /// which answers words only). Returns the default model now.
    @discardableResult
    public func setDefaultModel(_ name: String?) throws -> String {
        guard let name, name != ModelManifest.defaultName else {
            try store.setSetting(StoreSetting.defaultModel, to: nil)
            defaultModelCache.keep(ModelManifest.defaultName)  // seen at once here, whatever a replica says yet
            return ModelManifest.defaultName
        }
        if try models.tunedRecord(name) == nil {
            let registry = try models.registry()
            guard let manifest = registry.manifests.first(where: { $0.name == name }) else {
                let tuned = try store.tunedModels().map(\.name)
                let known = registry.manifests.filter { $0.modality == .image && $0.concepts == nil }.map(\.name) + tuned
                throw EngineError.badOption("no model named \(name) to make the default (models: \(known.joined(separator: ", ")))")
            }
            guard manifest.modality == .image, manifest.concepts == nil else {
                throw EngineError.badOption("\(name) answers words only; the default model must search with images")
            }
            guard registry.isInstalled(manifest) else {
                throw EngineError.badOption("\(name) is not installed; to install it, \(manifest.installHint)")
            }
        }
        try store.setSetting(StoreSetting.defaultModel, to: name)
        defaultModelCache.keep(name)
        return name
    }
}

/// The default model as last read from the store, and when.
final class DefaultModelCache: @unchecked Sendable {
    private let lock = NSLock()
    private var kept: (name: String, at: Date)?

    func value(maxAge: TimeInterval) -> String? {
        lock.withLock { kept.flatMap { Date().timeIntervalSince($0.at) < maxAge ? $0.name : nil } }
    }

    func keep(_ name: String) {
        lock.withLock { kept = (name, Date()) }
    }

    func forget() {
        lock.withLock { kept = nil }
    }
}
