import Foundation

/// The web page and the OpenAPI document, read once from the resource bundle next to the binary.
struct WebAssets: Sendable {
    struct Asset: Sendable {
        let bytes: [UInt8]
        let contentType: String
    }

    let files: [String: Asset]

    /// Content types by file extension; files of other kinds in the folder are not served.
    static let types: [String: String] = [
        "html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8",
        "yaml": "application/yaml; charset=utf-8", "png": "image/png", "svg": "image/svg+xml",
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
            // Every file of a known type, the page's ES modules in subfolders included, by its
            // path relative to the folder ("index.html", "js/search.js").
            let walker = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: [.isRegularFileKey])
            let prefix = folder.standardizedFileURL.path + "/"
            while let url = walker?.nextObject() as? URL {
                let path = url.standardizedFileURL.path
                guard path.hasPrefix(prefix), let type = types[url.pathExtension.lowercased()],
                      let data = FileManager.default.contents(atPath: path) else { continue }
                files[String(path.dropFirst(prefix.count))] = Asset(bytes: [UInt8](data), contentType: type)
            }
            return WebAssets(files: files)
        }
        return WebAssets(files: [:])
    }
}
