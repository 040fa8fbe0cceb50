import Foundation

/// The web page and the OpenAPI document, read once from the resource bundle next to the binary.
struct WebAssets: Sendable {
    struct Asset: Sendable {
        let bytes: [UInt8]
        let contentType: String
    }

    let files: [String: Asset]

    static let names: [(file: String, type: String)] = [
        ("index.html", "text/html; charset=utf-8"), ("app.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"), ("openapi.yaml", "application/yaml; charset=utf-8"),
    ]

    /// Looks in the resource bundle SwiftPM places beside the executable (and beside the test
    /// runner), or in `LOOKALIKE_WEB` when set. Missing files make those paths answer 404 with a
    /// JSON error; the API still works.
    static func load() -> WebAssets {
        var candidates: [URL] = []
        if let override = ProcessInfo.processInfo.environment["LOOKALIKE_WEB"] {
            candidates.append(URL(fileURLWithPath: override, isDirectory: true))
        }
        let bundleName = "Lookalike_LookalikeServer.resources"
        let executable = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath().deletingLastPathComponent()
        candidates.append(executable.appendingPathComponent(bundleName).appendingPathComponent("Web"))
        candidates.append(Bundle.main.bundleURL.appendingPathComponent(bundleName).appendingPathComponent("Web"))
        for bundle in Bundle.allBundles where bundle.bundleURL.lastPathComponent.hasSuffix(".xctest") {
            candidates.append(bundle.bundleURL.deletingLastPathComponent().appendingPathComponent(bundleName).appendingPathComponent("Web"))
        }
        for folder in candidates where FileManager.default.fileExists(atPath: folder.appendingPathComponent("openapi.yaml").path) {
            var files: [String: Asset] = [:]
            for (name, type) in names {
                if let data = FileManager.default.contents(atPath: folder.appendingPathComponent(name).path) {
                    files[name] = Asset(bytes: [UInt8](data), contentType: type)
                }
            }
            return WebAssets(files: files)
        }
        return WebAssets(files: [:])
    }
}
