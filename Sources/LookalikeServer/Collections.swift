import Foundation
import Lookalike
import LookalikeSupport

/// The server's collections: the default one is the store itself (so `lookalike add --store`
/// and the server share it); the others are stores under `<store>/collections/<name>`, or, on a
/// PostgreSQL store, stores in schemas of their own listed in the default store's database (every
/// server of the database sees them; their files still go under `<store>/collections/<name>`).
/// Each has its own engine, opened on first use and kept open; at most `maxOpen` at once (each
/// holds its indexes in memory), the least recently used closed first, its snapshots saved. The
/// default collection is never closed.
final class Collections: @unchecked Sendable {
    static let defaultName = "default"

    private let store: URL
    private let base: EngineConfiguration
    private let maxOpen: Int
    private let lock = NSLock()
    /// The open engines, each with when it was last asked for (a counter).
    private var engines: [String: (engine: Engine, used: UInt64)] = [:]
    private var uses: UInt64 = 0

    init(store: URL, engineConfiguration: EngineConfiguration, maxOpen: Int = 64) {
        self.store = store
        self.base = engineConfiguration
        self.maxOpen = max(1, maxOpen)
    }

    static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.unicodeScalars.count <= 64 else { return false }
        func lowerOrDigit(_ c: Unicode.Scalar) -> Bool { ("a"..."z").contains(c) || ("0"..."9").contains(c) }
        return lowerOrDigit(first) && name.unicodeScalars.allSatisfy { lowerOrDigit($0) || $0 == "-" || $0 == "_" }
    }

    func directory(_ name: String) -> URL {
        name == Self.defaultName ? store : store.appendingPathComponent("collections", isDirectory: true).appendingPathComponent(name, isDirectory: true)
    }

    /// The default collection's PostgreSQL store, which lists the others (nil on SQLite). Runs under `lock`.
    private func listing() throws -> PostgresStore? {
        guard base.database != nil else { return nil }
        if let open = engines[Self.defaultName] { return open.engine.store as? PostgresStore }
        let engine = try open(Self.defaultName)
        _ = keep(engine, Self.defaultName)
        return engine.store as? PostgresStore
    }

    /// The schema of a collection on a PostgreSQL store (nil for the default one, or on SQLite). Runs under `lock`.
    private func schema(_ name: String) throws -> String? {
        guard name != Self.defaultName, let listing = try listing() else { return nil }
        return try listing.collectionSchema(name)
    }

    /// Runs under `lock`.
    private func exists(_ name: String) throws -> Bool {
        if name == Self.defaultName { return true }
        if base.database != nil { return try schema(name) != nil }
        return FileManager.default.fileExists(atPath: directory(name).appendingPathComponent("catalog.sqlite").path)
    }

    /// The names of all collections, the default first.
    func names() throws -> [String] {
        let others: [String]
        if base.database != nil {
            others = try lock.withLock { try listing()?.collections().map(\.name) ?? [] }
        } else {
            let folder = store.appendingPathComponent("collections", isDirectory: true)
            others = try lock.withLock {
                try ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
                    .filter { Self.isValidName($0) && $0 != Self.defaultName }.filter { try exists($0) }.sorted()
            }
        }
        return [Self.defaultName] + others
    }

    /// The engine of an existing collection, or `not_found`.
    func engine(_ name: String) throws -> Engine {
        guard Self.isValidName(name) else {
            throw APIError(.badRequest, "bad_collection_name", "collection names are 1 to 64 of a-z, 0-9, - and _, starting with a letter or digit")
        }
        let (engine, closed) = try lock.withLock {
            if let open = engines[name] {
                uses += 1
                engines[name] = (open.engine, uses)
                return (open.engine, [Engine]())
            }
            guard try exists(name) else { throw APIError.notFound("no collection named \(name)") }
            let engine = try open(name)
            return (engine, keep(engine, name))
        }
        for other in closed { other.saveSnapshots() }
        return engine
    }

    /// Keeps a newly opened engine, and lets go of the least recently used ones past `maxOpen`
    /// (returned, for their snapshots to be saved outside the lock; requests still using one
    /// finish with it).
    private func keep(_ engine: Engine, _ name: String) -> [Engine] {
        uses += 1
        engines[name] = (engine, uses)
        var closed: [Engine] = []
        while engines.count > maxOpen,
              let oldest = engines.filter({ $0.key != name && $0.key != Self.defaultName }).min(by: { $0.value.used < $1.value.used })?.key,
              let open = engines.removeValue(forKey: oldest) {
            closed.append(open.engine)
        }
        return closed
    }

    /// Runs under `lock`.
    private func open(_ name: String) throws -> Engine {
        var configuration = base
        configuration.store = directory(name)
        if let database = base.database, name != Self.defaultName {
            // Never the default store's schema for another collection (one deleted meanwhile is not found).
            guard let schema = try schema(name) else { throw APIError.notFound("no collection named \(name)") }
            configuration.database = PostgresStore.address(database, schema: schema)
        }
        let engine = try Engine(configuration: configuration, createStore: true)
        // Uploads cut short by a crash leave files no item uses; they go before new uploads come.
        try engine.removeOrphanedUploads()
        return engine
    }

    func create(_ name: String) throws -> Engine {
        guard Self.isValidName(name) else {
            throw APIError(.badRequest, "bad_collection_name", "collection names are 1 to 64 of a-z, 0-9, - and _, starting with a letter or digit")
        }
        let (engine, closed) = try lock.withLock {
            if try exists(name) { throw APIError(.conflict, "collection_exists", "a collection named \(name) exists already") }
            if let listing = try listing() {
                // Recorded first: of two servers creating one name at once, one wins and the other answers 409.
                do {
                    _ = try listing.addCollection(name)
                } catch is PostgresStore.CollectionExists {
                    throw APIError(.conflict, "collection_exists", "a collection named \(name) exists already")
                }
            }
            // Leftovers of a deleted collection (a writer that still held its engine may have made
            // folders again) must not meet the new catalog: a stale index snapshot among them would.
            try? FileManager.default.removeItem(at: directory(name))
            let engine = try open(name)
            return (engine, keep(engine, name))
        }
        for other in closed { other.saveSnapshots() }
        return engine
    }

    /// Deletes a collection's folder; the default collection cannot be deleted.
    func delete(_ name: String, busy: (String) -> Bool) throws {
        guard Self.isValidName(name) else { throw APIError(.badRequest, "bad_collection_name", "not a collection name") }
        if name == Self.defaultName {
            throw APIError(.conflict, "collection_protected", "the default collection cannot be deleted (remove its items instead)")
        }
        try lock.withLock {
            guard try exists(name) else { throw APIError.notFound("no collection named \(name)") }
            if busy(name) { throw APIError(.conflict, "collection_protected", "an indexing job or a tuning is running on \(name); wait for it to end") }
            engines.removeValue(forKey: name)
            try listing()?.removeCollection(name)
            if FileManager.default.fileExists(atPath: directory(name).path) { try FileManager.default.removeItem(at: directory(name)) }
        }
    }

    /// Every open engine (to save their snapshots).
    func openEngines() -> [Engine] {
        lock.withLock { engines.values.map(\.engine) }
    }
}
