import Foundation

/// Where the tests of every target find their real photos and tools. `make test` builds all of it
/// first (`scripts/fetch_photos.py`, `scripts/make_edits.py`, `scripts/make_format_fixtures.py`).
public enum TestData {
    public static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    public static let data = ProcessInfo.processInfo.environment["LOOKALIKE_DATA"].map { URL(fileURLWithPath: $0) }
        ?? repository.appendingPathComponent(".data")
    public static let photos = data.appendingPathComponent("photos")
    public static let edits = data.appendingPathComponent("edits")
    public static let fixtures = data.appendingPathComponent("fixtures/formats")
    public static let python = repository.appendingPathComponent(".venv/bin/python").path

    public static let editKinds = ["half", "crop80", "q30", "exifrot", "bright"]

    public struct Missing: Error, CustomStringConvertible {
        public let what: String
        public init(what: String) { self.what = what }
        public var description: String { "\(what) is missing: run `make test`, which builds the test data first" }
    }

    /// The photos of the test set, sorted, as absolute paths.
    public static func photoPaths() throws -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: photos.path)) ?? []
        let paths = names.filter { $0.hasSuffix(".jpg") || $0.hasSuffix(".png") }.sorted()
            .map { photos.appendingPathComponent($0).path }
        guard paths.count >= 20 else { throw Missing(what: "the photo set (\(photos.path), at least 20 photos)") }
        return paths
    }

    /// Labelled product photos (Fashion-MNIST's training split, 40 of each of 10 classes), sorted by
    /// path, with their class (`scripts/make_tune_fixtures.py`).
    public static func categoryImages() throws -> [(path: String, category: String)] {
        let file = data.appendingPathComponent("fixtures/categories/labels.jsonl")
        guard let text = try? String(contentsOf: file, encoding: .utf8) else { throw Missing(what: file.path) }
        let entries: [(path: String, category: String)] = text.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String],
                  let path = object["path"], let category = object["category"] else { return nil }
            return (path, category)
        }
        guard entries.count >= 200 else { throw Missing(what: "the labelled images of \(file.path) (at least 200)") }
        return entries.sorted { $0.path < $1.path }
    }

    /// The `lookalike` executable built beside the test bundle (or `LOOKALIKE_BIN`).
    public static func executable() throws -> String {
        if let path = ProcessInfo.processInfo.environment["LOOKALIKE_BIN"] { return path }
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [beside, beside.deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent("lookalike").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw Missing(what: "the lookalike executable next to \(beside.path)")
    }

    /// A fresh temporary folder; the caller removes it.
    public static func temporaryDirectory(_ label: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lookalike-\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// The outcome of running a command.
public struct CommandResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

/// Runs a program to completion, collecting its output (through files, so no pipe can fill up).
public func runCommand(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> CommandResult {
    let folder = try TestData.temporaryDirectory("command")
    defer { try? FileManager.default.removeItem(at: folder) }
    let outURL = folder.appendingPathComponent("stdout")
    let errURL = folder.appendingPathComponent("stderr")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let out = try FileHandle(forWritingTo: outURL)
    let err = try FileHandle(forWritingTo: errURL)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    try out.close()
    try err.close()
    return CommandResult(status: process.terminationStatus,
                         stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
                         stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
}

/// The stores the engine and server tests run on: the SQLite store always, and a PostgreSQL store
/// when `LOOKALIKE_TEST_POSTGRES` names a database (`make test` starts a throwaway one).
public enum TestStores {
    public static let postgres = ProcessInfo.processInfo.environment["LOOKALIKE_TEST_POSTGRES"].flatMap { $0.isEmpty ? nil : $0 }

    public static var kinds: [String] { postgres == nil ? ["sqlite"] : ["sqlite", "postgres"] }

    /// The database address of a new, empty store of `kind` (a schema of its own); nil for SQLite.
    public static func database(_ kind: String) -> String? {
        guard kind == "postgres", let postgres else { return nil }
        let schema = "test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        return postgres + (postgres.contains("?") ? "&" : "?") + "schema=" + schema
    }
}
