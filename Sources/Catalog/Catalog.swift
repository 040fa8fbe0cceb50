@_exported import Storage
import Foundation
import GRDB

/// Why the catalog refused an operation.
public enum CatalogError: Error, Sendable, CustomStringConvertible {
    case cannotOpen(path: String, reason: String)
    case noStore(path: String)
    case modelChanged(model: String)
    case corruptVector(itemId: String, model: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason):
            return "cannot open the store at \(path): \(reason)"
        case .modelChanged(let model):
            return "the store's vectors for model \(model) were made by a different model file or size policy; "
                + "use a new store (or remove the items) to index with the changed model"
        case .noStore(let path):
            return "there is no store at \(path) (add images with `lookalike add` to create one)"
        case .corruptVector(let itemId, let model):
            return "stored vector of item \(itemId) for model \(model) is damaged"
        }
    }
}

/// The store's source of truth: items, their metadata and their vectors, in SQLite (WAL mode).
///
/// The file is `catalog.sqlite` in the store folder. Every change is a transaction, so a crash
/// or a failing file never leaves half an item behind; vector indexes are rebuilt from here.
public final class Catalog: Store {
    public let directory: URL
    private let database: DatabasePool

    public var databasePath: String { directory.appendingPathComponent("catalog.sqlite").path }

    /// Opens the catalog in `directory`, applying pending migrations; with `create`, makes it when missing.
    public init(directory: URL, create: Bool = true) throws {
        self.directory = directory
        let path = directory.appendingPathComponent("catalog.sqlite").path
        if !create && !FileManager.default.fileExists(atPath: path) { throw CatalogError.noStore(path: directory.path) }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)
            database = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(database)
        } catch {
            throw CatalogError.cannotOpen(path: path, reason: String(describing: error))
        }
    }

    /// A read transaction, for the catalog's other files.
    func read<T>(_ body: (Database) throws -> T) throws -> T {
        try database.read(body)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: items and vectors") { db in
            try db.create(table: "item") { table in
                table.primaryKey("id", .text)
                table.column("content_hash", .text).notNull().unique()
                table.column("source_path", .text).notNull()
                table.column("width", .integer).notNull()
                table.column("height", .integer).notNull()
                table.column("metadata", .text)
                table.column("added_at", .datetime).notNull()
            }
            try db.create(table: "vector") { table in
                table.column("item_id", .text).notNull().references("item", onDelete: .cascade)
                table.column("model", .text).notNull()
                table.column("dimension", .integer).notNull()
                table.column("data", .blob).notNull()
                table.primaryKey(["item_id", "model"])
            }
            try db.create(index: "vector_by_model", on: "vector", columns: ["model"])
        }
        migrator.registerMigration("v2: model fingerprints") { db in
            try db.create(table: "model") { table in
                table.primaryKey("name", .text)
                table.column("fingerprint", .text).notNull()
                table.column("dimension", .integer).notNull()
                table.column("first_used_at", .datetime).notNull()
            }
        }
        migrator.registerMigration("v3: vector generations") { db in
            // A counter per model that every change to its vectors bumps, inside the same
            // transaction (triggers, so no write path can forget it). An index records the
            // generation it reflects and skips comparing ids with the catalog when it still holds.
            try db.execute(sql: """
                CREATE TABLE vector_generation (model TEXT PRIMARY KEY NOT NULL, generation INTEGER NOT NULL);
                INSERT INTO vector_generation (model, generation) SELECT model, 1 FROM vector GROUP BY model;
                CREATE TRIGGER vector_inserted AFTER INSERT ON vector BEGIN
                    INSERT INTO vector_generation (model, generation) VALUES (NEW.model, 1)
                        ON CONFLICT (model) DO UPDATE SET generation = generation + 1;
                END;
                CREATE TRIGGER vector_updated AFTER UPDATE ON vector BEGIN
                    INSERT INTO vector_generation (model, generation) VALUES (NEW.model, 1)
                        ON CONFLICT (model) DO UPDATE SET generation = generation + 1;
                END;
                CREATE TRIGGER vector_deleted AFTER DELETE ON vector BEGIN
                    INSERT INTO vector_generation (model, generation) VALUES (OLD.model, 1)
                        ON CONFLICT (model) DO UPDATE SET generation = generation + 1;
                END;
                """)
        }
        migrator.registerMigration("v4: embedding spaces") { db in
            // The embedding space a model's vectors belong to (NULL: the model's own). Vectors of
            // two models recorded with one space can be compared, a text query with images, say.
            try db.alter(table: "model") { table in table.add(column: "space", .text) }
        }
        migrator.registerMigration("v5: feedback") { db in
            // Marks people gave hits, with the query vector of the search they came from; an
            // item's marks go with it.
            try db.create(table: "feedback") { table in
                table.autoIncrementedPrimaryKey("id")
                table.column("model", .text).notNull()
                table.column("query", .blob).notNull()
                table.column("item_id", .text).notNull().references("item", onDelete: .cascade)
                table.column("mark", .text).notNull()
                table.column("created_at", .datetime).notNull()
            }
            try db.create(index: "feedback_by_model", on: "feedback", columns: ["model", "id"])
        }
        migrator.registerMigration("v6: tuned models") { db in
            // Projections learned by `lookalike tune`: a tuned model's vectors are its base's, projected.
            try db.create(table: "tuned_model") { table in
                table.primaryKey("name", .text)
                table.column("base", .text).notNull()
                table.column("fingerprint", .text).notNull()
                table.column("input_dimension", .integer).notNull()
                table.column("output_dimension", .integer).notNull()
                table.column("weights", .blob).notNull()
                table.column("report", .text).notNull()
                table.column("created_at", .datetime).notNull()
            }
        }
        migrator.registerMigration("v7: store identity") { db in
            // Who this catalog is: index snapshots record it beside the generation they reflect,
            // so a catalog replaced by another whose counters agree is not served a stale graph.
            try db.execute(sql: "CREATE TABLE store_identity (id TEXT NOT NULL)")
            try db.execute(sql: "INSERT INTO store_identity (id) VALUES (?)", arguments: [UUID().uuidString])
        }
        migrator.registerMigration("v8: colour profiles") { db in
            // How much of each image every basic colour covers (`ColorProfile.json`), for
            // filters such as {"$color": "red"}; NULL for items stored before.
            try db.alter(table: "item") { table in table.add(column: "colors", .text) }
        }
        migrator.registerMigration("v9: settings") { db in
            // The store's own settings, such as the default model a search uses when it names none.
            try db.create(table: "setting") { table in
                table.primaryKey("key", .text)
                table.column("value", .text).notNull()
            }
        }
        return migrator
    }

    public func identity() throws -> UUID {
        let text = try database.read { db in try String.fetchOne(db, sql: "SELECT id FROM store_identity") }
        guard let text, let identity = UUID(uuidString: text) else {
            throw CatalogError.cannotOpen(path: databasePath, reason: "its store identity is missing or malformed")
        }
        return identity
    }

    /// How many times the vectors of `model` have changed (0 if never): equal generations mean
    /// identical sets of vectors.
    public func vectorGeneration(model: String) throws -> Int64 {
        try database.read { db in try Self.generation(db, model: model) }
    }

    /// The ids of the items with a vector from `model`, and the generation they belong to, read
    /// in one transaction.
    public func vectorIDsAndGeneration(model: String) throws -> (ids: [String], generation: Int64) {
        try database.read { db in
            let ids = try String.fetchAll(db, sql: "SELECT item_id FROM vector WHERE model = ? ORDER BY rowid", arguments: [model])
            return (ids, try Self.generation(db, model: model))
        }
    }

    private static func generation(_ db: Database, model: String) throws -> Int64 {
        try Int64.fetchOne(db, sql: "SELECT generation FROM vector_generation WHERE model = ?", arguments: [model]) ?? 0
    }

    /// The item holding exactly these bytes, if any.
    public func item(contentHash: String) throws -> Item? {
        try database.read { db in
            try Item.filter(Column("content_hash") == contentHash).fetchOne(db)
        }
    }

    public func items(ids: [String]) throws -> [String: Item] {
        try database.read { db in
            let items = try Item.filter(keys: ids).fetchAll(db)
            return Dictionary(items.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        }
    }

    /// Whether `itemId` already has a vector from `model`.
    public func hasVector(itemId: String, model: String) throws -> Bool {
        try database.read { db in
            try StoredVector.filter(Column("item_id") == itemId && Column("model") == model).fetchCount(db) > 0
        }
    }

    /// Checks that `model` is the same model the store's vectors for that name were made with;
    /// with `record`, a model used for the first time has its fingerprint recorded. Vectors of two
    /// different networks (or preprocessings) never mix under one name. Returns whether the model
    /// is recorded (and matched), so a caller need not check again. Only recording writes.
    @discardableResult
    public func checkModel(_ model: String, fingerprint: String, dimension: Int, space: String?, record: Bool) throws -> Bool {
        func matches(_ db: Database) throws -> Bool? {
            guard let row = try Row.fetchOne(db, sql: "SELECT fingerprint, dimension FROM model WHERE name = ?", arguments: [model])
            else { return nil }
            guard row["fingerprint"] == fingerprint, row["dimension"] == dimension else {
                throw CatalogError.modelChanged(model: model)
            }
            return true
        }
        if try database.read(matches) != nil { return true }
        guard record else { return false }
        return try database.write { db in
            if try matches(db) != nil { return true }  // recorded meanwhile by another writer
            try db.execute(
                sql: "INSERT INTO model (name, fingerprint, dimension, first_used_at, space) VALUES (?, ?, ?, ?, ?)",
                arguments: [model, fingerprint, dimension, Date(), space == model ? nil : space])
            return true
        }
    }

    /// Stores items with their vectors from `model`, and replaces the metadata of items already
    /// stored, all in one transaction. An item already present (same id) keeps its row and only
    /// gains the vector.
    public func insert(
        _ entries: [(item: Item, vector: [Float])], model: String, metadataUpdates: [(id: String, metadata: String)]
    ) throws {
        try database.write { db in
            for entry in entries {
                if try !Item.exists(db, key: entry.item.id) {
                    try entry.item.insert(db)
                } else if let colors = entry.item.colors {
                    // An item stored before colour profiles gets one when another model embeds it.
                    try db.execute(sql: "UPDATE item SET colors = ? WHERE id = ? AND colors IS NULL", arguments: [colors, entry.item.id])
                }
                try StoredVector(itemId: entry.item.id, model: model, vector: entry.vector).save(db)
            }
            for update in metadataUpdates {
                try db.execute(sql: "UPDATE item SET metadata = ? WHERE id = ?", arguments: [update.metadata, update.id])
            }
        }
    }

    /// Deletes items and their vectors; returns the ids that existed.
    @discardableResult
    public func remove(ids: [String]) throws -> [String] {
        try database.write { db in
            var removed: [String] = []
            for id in ids where try Item.deleteOne(db, key: id) {
                removed.append(id)
            }
            return removed
        }
    }

    public func forEachVectorPage(model: String, pageSize: Int, _ body: ([StoredEmbedding]) throws -> Bool) throws {
        var after: Int64 = 0
        while true {
            let rows = try database.read { db in
                try Row.fetchAll(
                    db, sql: "SELECT rowid, item_id, model, dimension, data FROM vector WHERE model = ? AND rowid > ? ORDER BY rowid LIMIT ?",
                    arguments: [model, after, max(1, pageSize)])
            }
            guard let last = rows.last else { return }
            after = last["rowid"]
            let page = try rows.map { row in
                try Self.decoded(StoredVector(itemId: row["item_id"], model: row["model"], dimension: row["dimension"], data: row["data"]))
            }
            if try !body(page) || rows.count < pageSize { return }
        }
    }

    public func vectorSpaces() throws -> [VectorSpace] {
        try database.read { db in
            try Row.fetchAll(db, sql: """
                SELECT used.model AS name, model.space AS space FROM (SELECT DISTINCT model FROM vector) AS used
                LEFT JOIN model ON model.name = used.model ORDER BY used.model
                """).map { row in VectorSpace(model: row["name"], space: row["space"]) }
        }
    }

    public func modelRecords() throws -> [ModelRecord] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT name, fingerprint, dimension, space FROM model ORDER BY name").map { row in
                ModelRecord(name: row["name"], fingerprint: row["fingerprint"], dimension: row["dimension"], space: row["space"])
            }
        }
    }

    @discardableResult
    public func removeModel(_ name: String) throws -> Int {
        try database.write { db in
            try db.execute(sql: "DELETE FROM vector WHERE model = ?", arguments: [name])
            let removed = db.changesCount
            try db.execute(sql: "DELETE FROM model WHERE name = ?", arguments: [name])
            try db.execute(sql: "DELETE FROM feedback WHERE model = ?", arguments: [name])
            try db.execute(sql: "DELETE FROM tuned_model WHERE name = ?", arguments: [name])
            try db.execute(sql: "DELETE FROM setting WHERE key = ? AND value = ?", arguments: [StoreSetting.defaultModel, name])
            return removed
        }
    }

    public func saveTunedModel(_ model: TunedModelRecord) throws {
        try database.write { db in
            guard try Row.fetchOne(db, sql: "SELECT 1 FROM tuned_model WHERE name = ?", arguments: [model.name]) == nil else {
                throw TunedModelError.exists(model.name)
            }
            try db.execute(sql: """
                INSERT INTO tuned_model (name, base, fingerprint, input_dimension, output_dimension, weights, report, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [model.name, model.base, model.fingerprint, model.inputDimension, model.outputDimension,
                                 Data(model.weights), model.report, model.createdAt])
        }
    }

    public func setting(_ key: String) throws -> String? {
        try database.read { db in try String.fetchOne(db, sql: "SELECT value FROM setting WHERE key = ?", arguments: [key]) }
    }

    public func setSetting(_ key: String, to value: String?) throws {
        try database.write { db in
            if let value {
                try db.execute(sql: "INSERT INTO setting (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                               arguments: [key, value])
            } else {
                try db.execute(sql: "DELETE FROM setting WHERE key = ?", arguments: [key])
            }
        }
    }

    public func tunedModels() throws -> [TunedModelRecord] {
        try database.read { db in
            try Row.fetchAll(db, sql: """
                SELECT name, base, fingerprint, input_dimension, output_dimension, weights, report, created_at
                FROM tuned_model ORDER BY name
                """).map { row in
                let weights: Data = row["weights"]
                return TunedModelRecord(name: row["name"], base: row["base"], fingerprint: row["fingerprint"],
                                        inputDimension: row["input_dimension"], outputDimension: row["output_dimension"],
                                        weights: [UInt8](weights), report: row["report"], createdAt: row["created_at"])
            }
        }
    }

    /// A stored vector's values, refusing a blob whose length does not match its dimension.
    private static func decoded(_ stored: StoredVector) throws -> (id: String, vector: [Float]) {
        guard stored.data.count == stored.dimension * MemoryLayout<Float>.size else {
            throw CatalogError.corruptVector(itemId: stored.itemId, model: stored.model)
        }
        return (stored.itemId, stored.vector)
    }

    /// Direct database access for tests that need to damage the store on purpose.
    func withDatabaseForTesting(_ body: (Database) throws -> Void) throws {
        try database.write(body)
    }

    /// How many items have a vector from `model`.
    public func vectorCount(model: String) throws -> Int {
        try database.read { db in try StoredVector.filter(Column("model") == model).fetchCount(db) }
    }

    /// The ids of the items with a vector from `model`.
    public func vectorIDs(model: String) throws -> [String] {
        try database.read { db in
            try String.fetchAll(db, sql: "SELECT item_id FROM vector WHERE model = ? ORDER BY rowid", arguments: [model])
        }
    }

    /// The vectors of `model` for the given items (those that have one).
    public func vectors(model: String, ids: [String]) throws -> [(id: String, vector: [Float])] {
        var result: [(id: String, vector: [Float])] = []
        for start in stride(from: 0, to: ids.count, by: 500) {
            let batch = Array(ids[start..<min(start + 500, ids.count)])
            result += try database.read { db in
                try StoredVector.filter(Column("model") == model && batch.contains(Column("item_id"))).fetchAll(db)
            }.map(Self.decoded)
        }
        return result
    }

    // MARK: Feedback

    public func recordFeedback(_ feedback: [Feedback]) throws {
        guard !feedback.isEmpty else { return }
        try database.write { db in
            for mark in feedback {
                try db.execute(
                    sql: "INSERT INTO feedback (model, query, item_id, mark, created_at) VALUES (?, ?, ?, ?, ?)",
                    arguments: [mark.model, mark.query.withUnsafeBufferPointer { Data(buffer: $0) }, mark.itemID,
                                mark.mark.rawValue, mark.at])
            }
        }
    }

    public func feedback(model: String, limit: Int) throws -> [Feedback] {
        try database.read { db in
            try Row.fetchAll(db, sql: """
                SELECT query, item_id, mark, created_at FROM feedback WHERE model = ? ORDER BY id DESC LIMIT ?
                """, arguments: [model, max(0, limit)])
        }.compactMap { row in
            // A mark this version does not know, or a damaged vector, is left out rather than failing searches.
            guard let mark = Feedback.Mark(rawValue: row["mark"]), let data: Data = row["query"],
                  !data.isEmpty, data.count % MemoryLayout<Float>.size == 0 else { return nil }
            let query = data.withUnsafeBytes { raw in Array(raw.bindMemory(to: Float.self)) }
            return Feedback(model: model, query: query, itemID: row["item_id"], mark: mark, at: row["created_at"])
        }
    }

    @discardableResult
    public func removeFeedback(model: String?) throws -> Int {
        try database.write { db in
            if let model {
                try db.execute(sql: "DELETE FROM feedback WHERE model = ?", arguments: [model])
            } else {
                try db.execute(sql: "DELETE FROM feedback")
            }
            return db.changesCount
        }
    }

    public func stats() throws -> CatalogStats {
        let (items, rows) = try database.read { db in
            let items = try Item.fetchCount(db)
            let rows = try Row.fetchAll(db, sql: "SELECT model, COUNT(*) AS n FROM vector GROUP BY model")
            return (items, rows)
        }
        var vectors: [String: Int] = [:]
        for row in rows {
            vectors[row["model"]] = row["n"]
        }
        let bytes = ["", "-wal", "-shm"].reduce(0) { total, suffix in
            let attributes = try? FileManager.default.attributesOfItem(atPath: databasePath + suffix)
            return total + ((attributes?[.size] as? Int) ?? 0)
        }
        return CatalogStats(items: items, vectors: vectors, bytesOnDisk: bytes)
    }
}
