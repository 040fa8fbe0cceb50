import Embedding
import Foundation
import Storage

/// The model a store uses when a search or an add names none: the installed default unless the
/// store was given another (a tuned model, or the copy detector for a collection kept for copies).
extension Engine {
    /// The model searches use when none is named: the store's choice, else the installed default.
    public func defaultModel() throws -> String {
        guard let chosen = try store.setting(StoreSetting.defaultModel) else { return ModelManifest.defaultName }
        // Removing a tuned model clears the setting with it; one removed while it was being chosen is passed over.
        if chosen.contains(TunedModels.separator), try models.tunedRecord(chosen) == nil { return ModelManifest.defaultName }
        return chosen
    }

    /// The model images are added with when none is named: the default model, or a tuned
    /// default's base (its own vectors follow by projection).
    public func defaultAddModel() throws -> String {
        let name = try defaultModel()
        return try models.tunedRecord(name)?.base ?? name
    }

    /// Makes `name` the store's default model; nil goes back to the installed default. It must be
    /// one of the store's tuned models or an installed model of images (not one made of words,
    /// which answers words only). Returns the default model now.
    @discardableResult
    public func setDefaultModel(_ name: String?) throws -> String {
        guard let name, name != ModelManifest.defaultName else {
            try store.setSetting(StoreSetting.defaultModel, to: nil)
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
        return name
    }
}
