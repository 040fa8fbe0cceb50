import Foundation
import Lookalike
import LookalikeSupport

/// The server's collections: the default one is the store itself (so `lookalike add --store`
/// and the server share it); the others are stores under `<store>/collections/<name>`.
/// Each has its own engine, opened on first use and kept open.
final class Collections: @unchecked Sendable {
    static let defaultName = "default"

    private let store: URL
    private let base: EngineConfiguration
    private let lock = NSLock()
    private var engines: [String: Engine] = [:]

    init(store: URL, engineConfiguration: EngineConfiguration) {
        self.store = store
        self.base = engineConfiguration
    }

    static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.unicodeScalars.count <= 64 else { return false }
        func lowerOrDigit(_ c: Unicode.Scalar) -> Bool { ("a"..."z").contains(c) || ("0"..."9").contains(c) }
        return lowerOrDigit(first) && name.unicodeScalars.allSatisfy { lowerOrDigit($0) || $0 == "-" || $0 == "_" }
    }

    func directory(_ name: String) -> URL {
        name == Self.defaultName ? store : store.appendingPathComponent("collections", isDirectory: true).appendingPathComponent(name, isDirectory: true)
    }

    private func exists(_ name: String) -> Bool {
        name == Self.defaultName
            || base.database == nil && FileManager.default.fileExists(atPath: directory(name).appendingPathComponent("catalog.sqlite").path)
    }

    /// The names of all collections, the default first.
    func names() -> [String] {
        let folder = store.appendingPathComponent("collections", isDirectory: true)
        let others = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
            .filter { Self.isValidName($0) && $0 != Self.defaultName && exists($0) }.sorted()
        return [Self.defaultName] + others
    }

    /// The engine of an existing collection, or `not_found`.
    func engine(_ name: String) throws -> Engine {
        guard Self.isValidName(name) else {
            throw APIError(.badRequest, "bad_collection_name", "collection names are 1 to 64 of a-z, 0-9, - and _, starting with a letter or digit")
        }
        return try lock.withLock {
            if let engine = engines[name] { return engine }
            guard exists(name) else { throw APIError.notFound("no collection named \(name)") }
            let engine = try open(name)
            engines[name] = engine
            return engine
        }
    }

    private func open(_ name: String) throws -> Engine {
        var configuration = base
        configuration.store = directory(name)
        let engine = try Engine(configuration: configuration, createStore: true)
        // Uploads cut short by a crash leave files no item uses; they go before new uploads come.
        try engine.removeOrphanedUploads()
        return engine
    }

    func create(_ name: String) throws -> Engine {
        guard Self.isValidName(name) else {
            throw APIError(.badRequest, "bad_collection_name", "collection names are 1 to 64 of a-z, 0-9, - and _, starting with a letter or digit")
        }
        guard base.database == nil else {
            throw APIError(.notImplemented, "collections_not_supported",
                           "a server on a PostgreSQL store serves its default collection only; give each collection its own schema (?schema=name) and server")
        }
        return try lock.withLock {
            if exists(name) { throw APIError(.conflict, "collection_exists", "a collection named \(name) exists already") }
            // Leftovers of a deleted collection (a writer that still held its engine may have made
            // folders again) must not meet the new catalog: a stale index snapshot among them would.
            try? FileManager.default.removeItem(at: directory(name))
            let engine = try open(name)
            engines[name] = engine
            return engine
        }
    }

    /// Deletes a collection's folder; the default collection cannot be deleted.
    func delete(_ name: String, busy: (String) -> Bool) throws {
        guard Self.isValidName(name) else { throw APIError(.badRequest, "bad_collection_name", "not a collection name") }
        if name == Self.defaultName {
            throw APIError(.conflict, "collection_protected", "the default collection cannot be deleted (remove its items instead)")
        }
        try lock.withLock {
            guard exists(name) else { throw APIError.notFound("no collection named \(name)") }
            if busy(name) { throw APIError(.conflict, "collection_protected", "an indexing job is running on \(name); wait for it to end") }
            engines.removeValue(forKey: name)
            try FileManager.default.removeItem(at: directory(name))
        }
    }

    /// Every open engine (to save their snapshots).
    func openEngines() -> [Engine] {
        lock.withLock { Array(engines.values) }
    }
}
