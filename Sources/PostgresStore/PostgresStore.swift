import Foundation
import Storage

/// A store in PostgreSQL with pgvector: items, metadata (`jsonb`), vectors (`vector`), change
/// generations and feedback in one schema of a database that many Lookalike processes can share.
/// Searches are pushed down to pgvector's HNSW index, one partial index per model, with the
/// metadata filter in the same statement (iterative index scans, so a narrow filter still fills
/// the page), and re-scored exactly by cosine similarity.
///
/// The address is a libpq connection URL, `postgres://user@host:port/database`, with one
/// parameter of Lookalike's own: `schema` (default `lookalike`), so several stores can share a
/// database. Files kept beside the records (uploads, thumbnails) go to `directory`.
public final class PostgresStore: Store {
    public let directory: URL
    /// The schema holding this store's tables.
    public let schema: String
    /// The address given, without its password.
    public let displayAddress: String
    /// The HNSW beam width of a search (`hnsw.ef_search`), at least the number of hits asked for.
    public let efSearch: Int
    let pool: ConnectionPool
    /// Streaming replicas that searches may read from.
    let replicas: ReplicaSet

    public static let defaultSchema = "lookalike"

    /// Whether `text` names a PostgreSQL store rather than a folder.
    public static func isAddress(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    /// Connects to the database at `address` and opens the store in its schema, applying pending
    /// migrations; with `create` false, a schema without a store is an error. At most
    /// `connections` connections are open at once.
    ///
    /// Searches may go to streaming `replicas` (their addresses, without a schema: the primary's
    /// is used); writes and everything an add decides on go to the primary. A replica that is
    /// unreachable or more than `maxReplicaLag` seconds behind is skipped until it catches up.
    /// For a primary that may fail over, give every candidate host in one address with
    /// `target_session_attrs=read-write` (libpq connects to whichever accepts writes).
    public init(address: String, directory: URL, create: Bool = true, connections: Int = 8, efSearch: Int = 100,
                replicas: [String] = [], maxReplicaLag: TimeInterval = 10) throws {
        self.efSearch = max(1, efSearch)
        let (libpqAddress, schema, display) = try Self.parse(address)
        self.schema = schema
        self.displayAddress = display
        self.directory = directory
        let quoted = Self.identifier(schema)
        let setup: (Connection) throws -> Void = { connection in
            try connection.execute("SET search_path TO \(quoted), public")
        }
        pool = ConnectionPool(address: libpqAddress, limit: connections, setup: setup)
        self.replicas = ReplicaSet(try replicas.map { replica in
            let parsed = try Self.parse(replica)
            return (ConnectionPool(address: parsed.libpq, limit: connections, wait: 5, setup: setup), parsed.display)
        }, maxLag: maxReplicaLag)
        try pool.with(retry: true) { connection in
            let exists = try connection.execute(
                "SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = 'schema_migration'", [.text(schema)]).count > 0
            if !exists && !create { throw PostgresStoreError.noStore(schema: schema) }
            try Self.migrate(connection, schema: schema)
        }
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    /// Splits Lookalike's `schema` parameter off the URL (libpq refuses parameters it does not
    /// know), and gives the address without its password for messages. Read by hand rather than
    /// as a URL: libpq's addresses may list several hosts (`postgres://h1:5432,h2:5432/db`).
    public static func parse(_ address: String) throws -> (libpq: String, schema: String, display: String) {
        guard isAddress(address), !address.contains(where: { $0.isWhitespace || $0 == "\0" }) else {
            throw PostgresStoreError.badAddress(address, reason: "expected postgres://user@host:port/database[?schema=name]")
        }
        let parts = address.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let base = String(parts[0])
        var schema = defaultSchema
        var kept: [String] = []
        for parameter in parts.count > 1 ? parts[1].split(separator: "&") : [] {
            let pair = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if pair[0] == "schema" {
                schema = pair.count > 1 ? String(pair[1]) : ""
            } else {
                kept.append(String(parameter))
            }
        }
        guard schema.range(of: "^[a-z_][a-z0-9_]{0,62}$", options: .regularExpression) != nil else {
            throw PostgresStoreError.badAddress(address, reason: "schema must be 1 to 63 lower-case letters, digits or _, not starting with a digit")
        }
        // A database that does not answer must not hold a request for minutes.
        if !kept.contains(where: { $0.hasPrefix("connect_timeout=") }) { kept.append("connect_timeout=10") }
        let query = "?" + kept.joined(separator: "&")
        // The password is the part of user:password@ after the colon, before the hosts.
        var display = base
        if let scheme = base.range(of: "://") {
            let rest = base[scheme.upperBound...]
            let authority = rest.prefix { $0 != "/" }
            if let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") {
                display = String(base[..<colon]) + String(base[at...])
            }
        }
        return (base + query, schema, display + query)
    }

    // MARK: Schema

    /// Migrations, applied in order, each once, under a lock so that servers starting together
    /// do not race. Names are versioned like the SQLite catalog's.
    static func migrations(schema: String) -> [(name: String, sql: String)] {
        let quoted = identifier(schema)
        return [
            ("v1: items, models, vectors, generations, feedback", """
            CREATE TABLE item (
                id text COLLATE "C" PRIMARY KEY,
                content_hash text NOT NULL UNIQUE,
                source_path text NOT NULL,
                width integer NOT NULL,
                height integer NOT NULL,
                metadata text,
                metadata_json jsonb GENERATED ALWAYS AS (CASE WHEN metadata IS JSON OBJECT THEN metadata::jsonb END) STORED,
                added_at timestamptz NOT NULL
            );
            CREATE INDEX item_metadata ON item USING gin (metadata_json jsonb_path_ops);
            CREATE TABLE model (
                name text PRIMARY KEY,
                fingerprint text NOT NULL,
                dimension integer NOT NULL,
                space text,
                first_used_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE TABLE embedding (
                item_id text COLLATE "C" NOT NULL REFERENCES item (id) ON DELETE CASCADE,
                model text NOT NULL,
                seq bigserial NOT NULL,
                vec vector NOT NULL,
                PRIMARY KEY (item_id, model)
            );
            CREATE INDEX embedding_in_order ON embedding (model, seq);
            -- A counter per model that every statement changing its vectors bumps, in the same
            -- transaction, so no write path can forget it.
            CREATE TABLE vector_generation (model text PRIMARY KEY, generation bigint NOT NULL);
            CREATE FUNCTION bump_vector_generation() RETURNS trigger LANGUAGE plpgsql
                SET search_path = \(quoted), public AS $$
            BEGIN
                INSERT INTO vector_generation (model, generation) SELECT DISTINCT model, 1 FROM changed
                    ON CONFLICT (model) DO UPDATE SET generation = vector_generation.generation + 1;
                RETURN NULL;
            END $$;
            CREATE TRIGGER embedding_inserted AFTER INSERT ON embedding REFERENCING NEW TABLE AS changed
                FOR EACH STATEMENT EXECUTE FUNCTION bump_vector_generation();
            CREATE TRIGGER embedding_updated AFTER UPDATE ON embedding REFERENCING NEW TABLE AS changed
                FOR EACH STATEMENT EXECUTE FUNCTION bump_vector_generation();
            CREATE TRIGGER embedding_deleted AFTER DELETE ON embedding REFERENCING OLD TABLE AS changed
                FOR EACH STATEMENT EXECUTE FUNCTION bump_vector_generation();
            CREATE TABLE feedback (
                id bigserial PRIMARY KEY,
                model text NOT NULL,
                query vector NOT NULL,
                item_id text COLLATE "C" NOT NULL REFERENCES item (id) ON DELETE CASCADE,
                mark text NOT NULL,
                created_at timestamptz NOT NULL
            );
            CREATE INDEX feedback_by_model ON feedback (model, id);
            """),
            ("v2: shared jobs", """
            -- Background jobs any server of the store may run: claimed with a lease that the
            -- running server renews; a job whose lease ran out (its server died) is claimed again.
            CREATE TABLE job (
                id text PRIMARY KEY,
                collection text NOT NULL,
                path text NOT NULL,
                options jsonb NOT NULL,
                state text NOT NULL,
                progress jsonb NOT NULL DEFAULT '{}',
                error text,
                owner text,
                lease_until timestamptz,
                attempts integer NOT NULL DEFAULT 0,
                revision bigint NOT NULL DEFAULT 0,
                created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                finished_at timestamptz
            );
            CREATE INDEX job_open ON job (created_at) WHERE state IN ('queued', 'running');
            """),
            ("v3: tuned models", """
            -- Projections learned by `lookalike tune`: a tuned model's vectors are its base's, projected.
            CREATE TABLE tuned_model (
                name text PRIMARY KEY,
                base text NOT NULL,
                fingerprint text NOT NULL,
                input_dimension integer NOT NULL,
                output_dimension integer NOT NULL,
                weights bytea NOT NULL,
                report text NOT NULL,
                created_at timestamptz NOT NULL
            );
            """),
            ("v4: store identity", """
            -- Who this store is, recorded beside the generation an index snapshot reflects.
            CREATE TABLE store_identity (id uuid NOT NULL);
            INSERT INTO store_identity (id) VALUES (gen_random_uuid());
            """),
            ("v5: colour profiles", """
            -- How much of each image every basic colour covers, for filters such as
            -- {"$color": "red"}; NULL for items stored before. Kept as written, with its jsonb
            -- beside it for filters, as metadata is.
            ALTER TABLE item ADD COLUMN colors text;
            ALTER TABLE item ADD COLUMN colors_json jsonb
                GENERATED ALWAYS AS (CASE WHEN colors IS JSON OBJECT THEN colors::jsonb END) STORED;
            """),
            ("v6: settings", """
            -- The store's own settings, such as the default model a search uses when it names none.
            CREATE TABLE setting (key text PRIMARY KEY, value text NOT NULL);
            """),
            ("v7: collections", """
            -- A server's collections other than this store (the default one): each a store in a
            -- schema of its own, listed here so that every server of the database sees them.
            CREATE TABLE collection (
                name text PRIMARY KEY,
                schema_name text NOT NULL UNIQUE,
                created_at timestamptz NOT NULL DEFAULT now()
            );
            """),
        ]
    }

    private static func migrate(_ connection: Connection, schema: String) throws {
        let quoted = identifier(schema)
        let names = migrations(schema: schema)
        // Nothing to do (the common case) is found without taking the lock.
        if let applied = try? connection.execute("SELECT count(*) FROM \(quoted).schema_migration").int(0, 0),
           applied == names.count { return }
        try connection.transaction {
            try connection.execute("SELECT pg_advisory_xact_lock(hashtext($1))", [.text("lookalike migrations " + schema)])
            do {
                try connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
            } catch let error as PostgresStoreError {
                throw PostgresStoreError.unavailable(reason: "the pgvector extension is missing and cannot be created here "
                    + "(a superuser can run CREATE EXTENSION vector): \(error)")
            }
            try connection.execute("""
                CREATE SCHEMA IF NOT EXISTS \(quoted);
                CREATE TABLE IF NOT EXISTS \(quoted).schema_migration (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())
                """)
            let applied = try connection.execute("SELECT name FROM \(quoted).schema_migration")
            let done = Set((0..<applied.count).compactMap { applied.string($0, 0) })
            for migration in names where !done.contains(migration.name) {
                try connection.execute(migration.sql)
                try connection.execute("INSERT INTO \(quoted).schema_migration (name) VALUES ($1)", [.text(migration.name)])
            }
        }
    }

    /// Drops the store's schema and everything in it (tests and `migrate` back).
    public func destroy() throws {
        try pool.with { connection in _ = try connection.execute("DROP SCHEMA IF EXISTS \(Self.identifier(schema)) CASCADE") }
    }

    // MARK: Items

    private static let itemColumns = "id, content_hash, source_path, width, height, metadata, extract(epoch FROM added_at)::float8, colors"

    private static func items(_ rows: ResultSet) -> [Item] {
        (0..<rows.count).compactMap { row in
            guard let id = rows.string(row, 0), let hash = rows.string(row, 1), let path = rows.string(row, 2),
                  let width = rows.int(row, 3), let height = rows.int(row, 4), let added = rows.double(row, 6) else { return nil }
            return Item(id: id, contentHash: hash, sourcePath: path, width: width, height: height,
                        metadata: rows.string(row, 5), addedAt: Date(timeIntervalSince1970: added), colors: rows.string(row, 7))
        }
    }

    public func item(contentHash: String) throws -> Item? {
        try pool.with(retry: true) { connection in
            Self.items(try connection.execute("SELECT \(Self.itemColumns) FROM item WHERE content_hash = $1", [.text(contentHash)])).first
        }
    }

    public func items(ids: [String]) throws -> [String: Item] {
        guard !ids.isEmpty else { return [:] }
        return try reading { connection in
            let rows = try connection.execute("SELECT \(Self.itemColumns) FROM item WHERE id = ANY($1::text[])", [.text(Self.array(ids))])
            return Dictionary(Self.items(rows).map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        }
    }

    public func items(after: String?, limit: Int) throws -> [Item] {
        try pool.with(retry: true) { connection in
            Self.items(try connection.execute(
                "SELECT \(Self.itemColumns) FROM item WHERE $1::text IS NULL OR id > $1 ORDER BY id LIMIT $2",
                [.optional(after), .int(max(0, limit))]))
        }
    }

    public func itemCount() throws -> Int {
        try reading { connection in try connection.execute("SELECT count(*) FROM item").int(0, 0) ?? 0 }
    }

    public func itemIDs(matching filter: MetadataFilter) throws -> Set<String> {
        let (condition, parameters) = filter.postgresSQL(column: "metadata_json", colors: "colors_json", firstParameter: 1)
        return try reading { connection in
            let rows = try connection.execute("SELECT id FROM item WHERE \(condition)", parameters)
            return Set((0..<rows.count).compactMap { rows.string($0, 0) })
        }
    }

    public func insert(_ entries: [(item: Item, vector: [Float])], model: String,
                       metadataUpdates: [(id: String, metadata: String)]) throws {
        guard !entries.isEmpty || !metadataUpdates.isEmpty else { return }
        // One statement per table and 500 entries (arrays unnested), the last entry of an id winning.
        var seen = Set<String>()
        let unique = entries.reversed().filter { seen.insert($0.item.id).inserted }.reversed()
        let chunks = stride(from: 0, to: unique.count, by: 500).map { Array(unique.dropFirst($0).prefix(500)) }
        try pool.with { connection in
            try connection.transaction {
                for chunk in chunks {
                    let items = chunk.map(\.item)
                    try connection.execute("""
                        INSERT INTO item (id, content_hash, source_path, width, height, metadata, added_at, colors)
                        SELECT u.id, u.hash, u.path, u.width, u.height, u.metadata, to_timestamp(u.added), u.colors
                        FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::integer[], $6::text[], $7::float8[], $8::text[])
                            AS u(id, hash, path, width, height, metadata, added, colors)
                        ON CONFLICT (id) DO UPDATE SET colors = EXCLUDED.colors
                            WHERE item.colors IS NULL AND EXCLUDED.colors IS NOT NULL
                        """, [.text(Self.array(items.map(\.id))), .text(Self.array(items.map(\.contentHash))),
                              .text(Self.array(items.map(\.sourcePath))), .text(Self.array(items.map { String($0.width) })),
                              .text(Self.array(items.map { String($0.height) })), .text(Self.array(items.map(\.metadata))),
                              .text(Self.array(items.map { String($0.addedAt.timeIntervalSince1970) })),
                              .text(Self.array(items.map(\.colors)))])
                    try connection.execute("""
                        INSERT INTO embedding (item_id, model, vec) SELECT u.id, $2, u.vec FROM unnest($1::text[], $3::vector[]) AS u(id, vec)
                        ON CONFLICT (item_id, model) DO UPDATE SET vec = EXCLUDED.vec
                        """, [.text(Self.array(items.map(\.id))), .text(model), .vectors(chunk.map(\.vector))])
                }
                for update in metadataUpdates {
                    try connection.execute("UPDATE item SET metadata = $1 WHERE id = $2", [.text(update.metadata), .text(update.id)])
                }
            }
        }
    }

    @discardableResult
    public func remove(ids: [String]) throws -> [String] {
        guard !ids.isEmpty else { return [] }
        let removed = try pool.with { connection in
            let rows = try connection.execute("DELETE FROM item WHERE id = ANY($1::text[]) RETURNING id", [.text(Self.array(ids))])
            return Set((0..<rows.count).compactMap { rows.string($0, 0) })
        }
        var seen = Set<String>()
        return ids.filter { removed.contains($0) && seen.insert($0).inserted }
    }

    // MARK: Models

    @discardableResult
    public func checkModel(_ model: String, fingerprint: String, dimension: Int, space: String?, record: Bool) throws -> Bool {
        func matches(_ connection: Connection) throws -> Bool? {
            let rows = try connection.execute("SELECT fingerprint, dimension FROM model WHERE name = $1", [.text(model)])
            guard rows.count > 0 else { return nil }
            guard rows.string(0, 0) == fingerprint, rows.int(0, 1) == dimension else {
                throw PostgresStoreError.modelChanged(model: model)
            }
            return true
        }
        if try reading(matches) != nil { return true }
        guard record else { return false }
        return try pool.with { connection in
            try connection.transaction {
                try connection.execute("SELECT pg_advisory_xact_lock(hashtext($1))", [.text("lookalike model " + schema + " " + model)])
                if try matches(connection) != nil { return true }  // recorded meanwhile by another writer
                try connection.execute("INSERT INTO model (name, fingerprint, dimension, space) VALUES ($1, $2, $3, $4)",
                                       [.text(model), .text(fingerprint), .int(dimension), .optional(space == model ? nil : space)])
                if let cast = Self.indexCast(dimension) {
                    try connection.execute("""
                        CREATE INDEX IF NOT EXISTS \(Self.indexName(model)) ON embedding
                        USING hnsw ((vec::\(cast.type)(\(dimension))) \(cast.operators)) WHERE model = \(Self.literal(model))
                        """)
                }
                return true
            }
        }
    }

    @discardableResult
    public func removeModel(_ name: String) throws -> Int {
        try pool.with { connection in
            try connection.transaction {
                try connection.execute("SELECT pg_advisory_xact_lock(hashtext($1))", [.text("lookalike model " + schema + " " + name)])
                let removed = try connection.execute("DELETE FROM embedding WHERE model = $1", [.text(name)]).affected
                try connection.execute("DELETE FROM model WHERE name = $1", [.text(name)])
                try connection.execute("DELETE FROM feedback WHERE model = $1", [.text(name)])
                try connection.execute("DELETE FROM tuned_model WHERE name = $1", [.text(name)])
                try connection.execute("DELETE FROM setting WHERE key = $1 AND value = $2", [.text(StoreSetting.defaultModel), .text(name)])
                try connection.execute("DROP INDEX IF EXISTS \(Self.indexName(name))")
                return removed
            }
        }
    }

    public func saveTunedModel(_ model: TunedModelRecord) throws {
        try pool.with { connection in
            try connection.transaction {
                let taken = try connection.execute("SELECT 1 FROM tuned_model WHERE name = $1 FOR UPDATE", [.text(model.name)])
                guard taken.count == 0 else { throw TunedModelError.exists(model.name) }
                try connection.execute("""
                    INSERT INTO tuned_model (name, base, fingerprint, input_dimension, output_dimension, weights, report, created_at)
                    VALUES ($1, $2, $3, $4, $5, decode($6, 'base64'), $7, to_timestamp($8::float8))
                    """, [.text(model.name), .text(model.base), .text(model.fingerprint), .int(model.inputDimension),
                          .int(model.outputDimension), .text(Data(model.weights).base64EncodedString()), .text(model.report),
                          .text(String(model.createdAt.timeIntervalSince1970))])
            }
        }
    }

    public func setting(_ key: String) throws -> String? {
        // Read as searches read (a replica when there is one): a search must not need the primary.
        try reading { connection in
            try connection.execute("SELECT value FROM setting WHERE key = $1", [.text(key)]).string(0, 0)
        }
    }

    public func setSetting(_ key: String, to value: String?) throws {
        try pool.with { connection in
            if let value {
                try connection.execute("INSERT INTO setting (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                                       [.text(key), .text(value)])
            } else {
                try connection.execute("DELETE FROM setting WHERE key = $1", [.text(key)])
            }
        }
    }

    public func tunedModels() throws -> [TunedModelRecord] {
        try pool.with(retry: true) { connection in
            let rows = try connection.execute("""
                SELECT name, base, fingerprint, input_dimension, output_dimension, encode(weights, 'base64'), report,
                       extract(epoch FROM created_at)::text
                FROM tuned_model ORDER BY name COLLATE "C"
                """)
            return (0..<rows.count).compactMap { row in
                guard let name = rows.string(row, 0), let base = rows.string(row, 1), let fingerprint = rows.string(row, 2),
                      let input = rows.int(row, 3), let output = rows.int(row, 4),
                      let weights = rows.string(row, 5).flatMap({ Data(base64Encoded: $0, options: .ignoreUnknownCharacters) }),
                      let report = rows.string(row, 6), let created = rows.string(row, 7).flatMap(Double.init) else { return nil }
                return TunedModelRecord(name: name, base: base, fingerprint: fingerprint, inputDimension: input, outputDimension: output,
                                        weights: [UInt8](weights), report: report, createdAt: Date(timeIntervalSince1970: created))
            }
        }
    }

    public func vectorSpaces() throws -> [VectorSpace] {
        try reading { connection in
            let rows = try connection.execute("""
                SELECT used.model, model.space FROM (SELECT DISTINCT model FROM embedding) AS used
                LEFT JOIN model ON model.name = used.model ORDER BY used.model COLLATE "C"
                """)
            return (0..<rows.count).compactMap { row in
                rows.string(row, 0).map { VectorSpace(model: $0, space: rows.string(row, 1)) }
            }
        }
    }

    public func modelRecords() throws -> [ModelRecord] {
        try pool.with(retry: true) { connection in
            let rows = try connection.execute("SELECT name, fingerprint, dimension, space FROM model ORDER BY name COLLATE \"C\"")
            return (0..<rows.count).compactMap { row in
                guard let name = rows.string(row, 0), let fingerprint = rows.string(row, 1), let dimension = rows.int(row, 2) else { return nil }
                return ModelRecord(name: name, fingerprint: fingerprint, dimension: dimension, space: rows.string(row, 3))
            }
        }
    }

    // MARK: Vectors

    public func hasVector(itemId: String, model: String) throws -> Bool {
        try pool.with(retry: true) { connection in
            try connection.execute("SELECT 1 FROM embedding WHERE item_id = $1 AND model = $2", [.text(itemId), .text(model)]).count > 0
        }
    }

    public func vectorCount(model: String) throws -> Int {
        try reading { connection in
            try connection.execute("SELECT count(*) FROM embedding WHERE model = $1", [.text(model)]).int(0, 0) ?? 0
        }
    }

    /// Rows of (item id, vector), read in binary.
    private func embeddings(_ rows: ResultSet, model: String) throws -> [StoredEmbedding] {
        try (0..<rows.count).map { row in
            let id = rows.string(row, 0) ?? ""
            guard let vector = rows.vector(row, 1) else { throw PostgresStoreError.corruptVector(itemId: id, model: model) }
            return (id, vector)
        }
    }

    public func vectors(model: String, ids: [String]) throws -> [StoredEmbedding] {
        guard !ids.isEmpty else { return [] }
        return try reading { connection in
            try embeddings(try connection.execute(
                "SELECT item_id, vec FROM embedding WHERE model = $1 AND item_id = ANY($2::text[]) ORDER BY seq",
                [.text(model), .text(Self.array(ids))], binary: true), model: model)
        }
    }

    public func forEachVectorPage(model: String, pageSize: Int, _ body: ([StoredEmbedding]) throws -> Bool) throws {
        var after: Int64 = 0
        let size = max(1, pageSize)
        while true {
            let (page, last) = try pool.with(retry: true) { connection -> ([StoredEmbedding], Int64?) in
                let rows = try connection.execute(
                    "SELECT item_id, vec, seq FROM embedding WHERE model = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                    [.text(model), .text(String(after)), .int(size)], binary: true)
                return (try embeddings(rows, model: model), rows.count > 0 ? rows.binaryInt64(rows.count - 1, 2) : nil)
            }
            guard let last, !page.isEmpty else { return }
            after = last
            if try !body(page) || page.count < size { return }
        }
    }

    public func vectorIDs(model: String) throws -> [String] {
        try pool.with(retry: true) { connection in try Self.vectorIDs(connection, model: model) }
    }

    public func vectorIDsAndGeneration(model: String) throws -> (ids: [String], generation: Int64) {
        try pool.with(retry: true) { connection in
            try connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            defer { _ = try? connection.execute("COMMIT") }
            return (try Self.vectorIDs(connection, model: model), try Self.generation(connection, model: model))
        }
    }

    private static func vectorIDs(_ connection: Connection, model: String) throws -> [String] {
        let rows = try connection.execute("SELECT item_id FROM embedding WHERE model = $1 ORDER BY seq", [.text(model)])
        return (0..<rows.count).compactMap { rows.string($0, 0) }
    }

    public func identity() throws -> UUID {
        let text = try pool.with(retry: true) { connection in
            try connection.execute("SELECT id::text FROM store_identity").string(0, 0)
        }
        guard let text, let identity = UUID(uuidString: text) else {
            throw PostgresStoreError.failed(statement: "SELECT id FROM store_identity", message: "the store identity is missing or malformed",
                                            sqlState: nil)
        }
        return identity
    }

    public func vectorGeneration(model: String) throws -> Int64 {
        try pool.with(retry: true) { connection in try Self.generation(connection, model: model) }
    }

    private static func generation(_ connection: Connection, model: String) throws -> Int64 {
        Int64(try connection.execute("SELECT generation FROM vector_generation WHERE model = $1", [.text(model)]).string(0, 0) ?? "0") ?? 0
    }

    // MARK: Search pushed down

    /// Runs a read of the search path on a replica that is up and current, else on the primary.
    /// (What an add decides on, such as whether an image is stored already, is read from the primary.)
    func reading<T>(_ body: (Connection) throws -> T) throws -> T {
        for replica in replicas.usable() {
            do {
                return try replica.pool.with(retry: true, body)
            } catch let error as PostgresStoreError where error.isUnavailable {
                replicas.markDown(replica)
            }
        }
        return try pool.with(retry: true, body)
    }

    public var searchesVectors: Bool { true }

    public func nearest(model: String, to query: [Float], k: Int, filter: MetadataFilter?) throws -> [(id: String, score: Float)] {
        guard k > 0, !query.isEmpty else { return [] }
        let dimension = query.count
        // The order expression is the one the model's partial index was built on, so the planner
        // can use it; the score is the exact cosine similarity of the stored vector either way.
        let order = Self.indexCast(dimension).map { "e.vec::\($0.type)(\(dimension)) <=> $1::\($0.type)(\(dimension))" }
            ?? "e.vec <=> $1::vector"
        var sql = "SELECT e.item_id, (e.vec <=> $1::vector)::float8 AS distance FROM embedding e"
        var parameters: [Parameter] = [.vector(query)]
        var conditions = ["e.model = \(Self.literal(model))"]
        if let filter, !filter.conditions.isEmpty {
            sql += " JOIN item i ON i.id = e.item_id"
            let (condition, filterParameters) = filter.postgresSQL(column: "i.metadata_json", colors: "i.colors_json", firstParameter: 2)
            conditions.append(condition)
            parameters += filterParameters
        }
        let beam = min(1_000, max(efSearch, k))
        // A relaxed-order iterative scan returns neighbours roughly in order: the beam's worth of
        // them are taken, and the k nearest of those by exact distance (ties by id), best first.
        sql = "WITH candidates AS MATERIALIZED (" + sql + " WHERE " + conditions.joined(separator: " AND ")
            + " ORDER BY \(order) LIMIT \(beam)) SELECT item_id, 1 - distance FROM candidates ORDER BY distance, item_id LIMIT \(k)"
        return try reading { connection in
            try connection.transaction {
                try connection.execute("SET LOCAL hnsw.ef_search = \(beam); SET LOCAL hnsw.iterative_scan = relaxed_order")
                let rows = try connection.execute(sql, parameters)
                return (0..<rows.count).compactMap { row in
                    guard let id = rows.string(row, 0), let score = rows.double(row, 1), score.isFinite else { return nil }
                    return (id, Float(score))
                }
            }
        }
    }

    /// The type a model's vectors are indexed as: `vector` up to pgvector's 2,000 dimensions,
    /// `halfvec` up to 4,000; beyond, no index (exact search).
    static func indexCast(_ dimension: Int) -> (type: String, operators: String)? {
        if dimension <= 2_000 { return ("vector", "vector_cosine_ops") }
        if dimension <= 4_000 { return ("halfvec", "halfvec_cosine_ops") }
        return nil
    }

    /// The name of a model's HNSW index: derived from the name, so any model name gives a valid one.
    static func indexName(_ model: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a
        for byte in model.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        let safe = model.lowercased().map { $0.isLetter && $0.isASCII || $0.isNumber && $0.isASCII ? $0 : "_" }
        return "embedding_hnsw_" + String(safe.prefix(30)) + "_" + String(hash, radix: 16)
    }

    // MARK: Feedback

    public func recordFeedback(_ feedback: [Feedback]) throws {
        guard !feedback.isEmpty else { return }
        try pool.with { connection in
            try connection.transaction {
                for mark in feedback {
                    try connection.execute(
                        "INSERT INTO feedback (model, query, item_id, mark, created_at) VALUES ($1, $2, $3, $4, to_timestamp($5::float8))",
                        [.text(mark.model), .vector(mark.query), .text(mark.itemID), .text(mark.mark.rawValue),
                         .text(String(mark.at.timeIntervalSince1970))])
                }
            }
        }
    }

    public func feedback(model: String, limit: Int) throws -> [Feedback] {
        try reading { connection in
            let rows = try connection.execute("""
                SELECT query, item_id, mark, extract(epoch FROM created_at)::text FROM feedback
                WHERE model = $1 ORDER BY id DESC LIMIT $2
                """, [.text(model), .int(max(0, limit))], binary: true)
            return (0..<rows.count).compactMap { row in
                // A mark this version does not know, or a damaged vector, is left out rather than failing searches.
                guard let query = rows.vector(row, 0), !query.isEmpty, let id = rows.string(row, 1),
                      let mark = rows.string(row, 2).flatMap(Feedback.Mark.init(rawValue:)),
                      let at = rows.string(row, 3).flatMap(Double.init) else { return nil }
                return Feedback(model: model, query: query, itemID: id, mark: mark, at: Date(timeIntervalSince1970: at))
            }
        }
    }

    @discardableResult
    public func removeFeedback(model: String?) throws -> Int {
        try pool.with { connection in
            if let model {
                return try connection.execute("DELETE FROM feedback WHERE model = $1", [.text(model)]).affected
            }
            return try connection.execute("DELETE FROM feedback").affected
        }
    }

    public func stats() throws -> CatalogStats {
        try pool.with(retry: true) { connection in
            let items = try connection.execute("SELECT count(*) FROM item").int(0, 0) ?? 0
            let rows = try connection.execute("SELECT model, count(*) FROM embedding GROUP BY model")
            var vectors: [String: Int] = [:]
            for row in 0..<rows.count {
                if let model = rows.string(row, 0) { vectors[model] = rows.int(row, 1) ?? 0 }
            }
            let bytes = try connection.execute("""
                SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
                JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'
                """, [.text(schema)]).int(0, 0) ?? 0
            return CatalogStats(items: items, vectors: vectors, bytesOnDisk: bytes)
        }
    }

    // MARK: Quoting

    /// A quoted SQL identifier.
    static func identifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// A quoted SQL string literal (standard-conforming strings, PostgreSQL's default since 9.1).
    static func literal(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "\0", with: "").replacingOccurrences(of: "'", with: "''") + "'"
    }

    /// An array literal: every element quoted, quotes and backslashes escaped; nil is NULL.
    static func array(_ values: [String?]) -> String {
        "{" + values.map { value in
            guard let value else { return "NULL" }
            return "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }.joined(separator: ",") + "}"
    }
}
