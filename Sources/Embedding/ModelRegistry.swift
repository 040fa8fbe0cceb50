import Foundation

/// Why a model cannot be used.
public enum ModelError: Error, Sendable, CustomStringConvertible {
    case unknownModel(String, known: [String])
    case notInstalled(name: String, path: String, hint: String)
    case badManifest(path: String, reason: String)
    case unsupportedInput(name: String, reason: String)

    public var description: String {
        switch self {
        case .unknownModel(let name, let known):
            return "unknown model '\(name)'; known models: \(known.joined(separator: ", "))"
        case .notInstalled(let name, let path, let hint):
            return "model '\(name)' is not installed (no file at \(path)); to install it, \(hint)"
        case .badManifest(let path, let reason):
            return "model manifest \(path) is invalid: \(reason)"
        case .unsupportedInput(let name, let reason):
            return "model '\(name)' cannot be used: \(reason)"
        }
    }
}

/// The models Lookalike knows: the built-in ones plus any `<name>.json` manifest in the models folder.
public struct ModelRegistry: Sendable {
    public let directory: URL
    public let manifests: [ModelManifest]

    /// The models folder: `LOOKALIKE_MODELS`, else `$XDG_CACHE_HOME/lookalike/models`, else `~/.cache/lookalike/models`.
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let path = environment["LOOKALIKE_MODELS"], !path.isEmpty {
            return URL(fileURLWithPath: path, isDirectory: true)
        }
        let cache = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (NSHomeDirectory() as NSString).appendingPathComponent(".cache")
        return URL(fileURLWithPath: cache, isDirectory: true).appendingPathComponent("lookalike/models", isDirectory: true)
    }

    /// Reads the user manifests in `directory`. A broken manifest is an error naming the file.
    public init(directory: URL) throws {
        self.directory = directory
        var manifests = ModelManifest.builtIn
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for file in files.sorted() where file.hasSuffix(".json") {
            let path = directory.appendingPathComponent(file).path
            let manifest: ModelManifest
            do {
                manifest = try JSONDecoder().decode(ModelManifest.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
            } catch {
                throw ModelError.badManifest(path: path, reason: String(describing: error))
            }
            if let problem = manifest.problem { throw ModelError.badManifest(path: path, reason: problem) }
            manifests.removeAll { $0.name == manifest.name }
            manifests.append(manifest)
        }
        self.manifests = manifests
    }

    public func manifest(named name: String) throws -> ModelManifest {
        guard let manifest = manifests.first(where: { $0.name == name }) else {
            throw ModelError.unknownModel(name, known: manifests.map(\.name))
        }
        return manifest
    }

    /// Where the model's ONNX file is expected.
    public func path(of manifest: ModelManifest) -> String {
        directory.appendingPathComponent(manifest.file).path
    }

    public func isInstalled(_ manifest: ModelManifest) -> Bool {
        (try? installedPath(of: manifest)) != nil
    }

    /// The files a model needs besides its ONNX file: a text encoder's vocabulary; the class names
    /// of a model made of words, and its text encoder's files.
    func companionFiles(of manifest: ModelManifest) -> [String] {
        var files: [String] = []
        if let text = manifest.text { files.append(text.vocabulary) }
        if let concepts = manifest.concepts {
            files.append(concepts.classes)
            if let encoder = try? self.manifest(named: concepts.textModel), encoder.concepts == nil {
                files.append(encoder.file)
                files += companionFiles(of: encoder)
            } else {
                files.append(concepts.textModel)  // named in the error as the missing piece
            }
        }
        return files
    }

    /// The model's file (its companions checked too), or an error that says how to install it.
    public func installedPath(of manifest: ModelManifest) throws -> String {
        for file in [manifest.file] + companionFiles(of: manifest) {
            let path = directory.appendingPathComponent(file).path
            guard FileManager.default.fileExists(atPath: path) else {
                throw ModelError.notInstalled(name: manifest.name, path: path, hint: manifest.installHint)
            }
        }
        return path(of: manifest)
    }

    /// The ONNX Runtime version `make setup` installs.
    public static let runtimeVersion = "1.23.2"

    /// The ONNX Runtime library: `LOOKALIKE_ORT_LIBRARY`, else `onnxruntime/libonnxruntime.so.<runtimeVersion>` here.
    public func runtimeLibraryPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let path = environment["LOOKALIKE_ORT_LIBRARY"], !path.isEmpty { return path }
        return directory.appendingPathComponent("onnxruntime/libonnxruntime.so.\(Self.runtimeVersion)").path
    }
}
