import Foundation
import Lookalike

/// How `lookalike serve` is set up. Keys come from the environment or a config file and are
/// never logged or answered.
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// The default collection's store; other collections live in `<store>/collections/<name>`.
    public var store: URL
    /// A PostgreSQL store's address, when the default collection is one (`store` then holds its files).
    public var database: String?
    /// Streaming replicas of `database` that searches may read from (`--read-replica`).
    public var readReplicas: [String] = []
    public var models: URL
    /// Folders the server may index on request (with everything below them).
    public var indexRoots: [String]
    /// Needed for every write; when set with no `readKey`, reads are open.
    public var adminKey: String?
    /// Needed (or the admin key) for every read under /v1, when set.
    public var readKey: String?
    /// Largest request body, in bytes.
    public var maxBodyBytes: Int
    /// Largest image, in pixels, of an upload or a fetched URL.
    public var maxImagePixels: Int
    /// Requests embedding images at the same time; more wait in a queue.
    public var maxConcurrentInference: Int
    /// Threads one model run may use (0: one per core). By default the cores are shared among the
    /// concurrent inferences (cores / `maxConcurrentInference`, at least 1): measured on 2 cores,
    /// 20% more searches per second under load than two threads per run, for 15 ms instead of 12 ms
    /// at a single connection (BENCHMARKS.md).
    public var inferenceThreads: Int?
    /// Requests that may wait for inference before the server answers `busy` (503).
    public var maxQueuedInference: Int
    /// URL queries: time limit for the whole fetch, redirects followed, and address exceptions
    /// (CIDR blocks that are allowed although private; for tests and private deployments).
    public var urlFetchTimeout: Duration
    public var urlMaxRedirects: Int
    public var urlAllowedNetworks: [String]
    /// How often changed HNSW snapshots are written, in seconds.
    public var snapshotInterval: Double
    /// Connections held at once (when full, the one idle longest is closed for a new one).
    public var maxConnections: Int = 1024
    /// Seconds a connection may take to send a request head, from its opening or the end of the
    /// last answer on it (slower clients are closed).
    public var headTimeout: Double = 10
    /// Job event streams open at once (each polls its job five times a second); past it, 503.
    public var maxEventStreams: Int = 64
    /// Collections whose engines (and indexes) are kept open at once.
    public var maxOpenCollections: Int = 64
    /// Bytes of request bodies held in memory at once, whatever the number of requests.
    public var maxBodyMemory: Int { max(256 << 20, 8 * maxBodyBytes) }
    /// On a PostgreSQL store: how long a job stays a server's without news from it before another
    /// server takes it over, in seconds (`LOOKALIKE_JOB_LEASE`, default 30).
    public var jobLease: Double = 30

    public init(
        host: String = "127.0.0.1",
        port: Int = 8080,
        store: URL = StoreLocation.resolve(nil),
        models: URL? = nil,
        indexRoots: [String] = [],
        adminKey: String? = nil,
        readKey: String? = nil,
        maxBodyBytes: Int = 32 * 1024 * 1024,
        maxImagePixels: Int = 50_000_000,
        maxConcurrentInference: Int = ProcessInfo.processInfo.activeProcessorCount,
        maxQueuedInference: Int = 64,
        urlFetchTimeout: Duration = .seconds(15),
        urlMaxRedirects: Int = 5,
        urlAllowedNetworks: [String] = [],
        snapshotInterval: Double = 30
    ) {
        self.host = host
        self.port = port
        self.store = store
        self.models = models ?? EngineConfiguration().models
        self.indexRoots = indexRoots
        self.adminKey = adminKey.flatMap { $0.isEmpty ? nil : $0 }
        self.readKey = readKey.flatMap { $0.isEmpty ? nil : $0 }
        self.maxBodyBytes = maxBodyBytes
        self.maxImagePixels = maxImagePixels
        self.maxConcurrentInference = max(1, maxConcurrentInference)
        self.maxQueuedInference = max(0, maxQueuedInference)
        self.urlFetchTimeout = urlFetchTimeout
        self.urlMaxRedirects = urlMaxRedirects
        self.urlAllowedNetworks = urlAllowedNetworks
        self.snapshotInterval = snapshotInterval
    }

    /// Why a configuration cannot be used.
    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// Reads a config file (JSON) and the environment: `LOOKALIKE_ADMIN_KEY`, `LOOKALIKE_READ_KEY`,
    /// `LOOKALIKE_INDEX_ROOTS` (colon-separated), `LOOKALIKE_JOB_LEASE`. The file wins over the environment; the command
    /// line applies its own values after this, so it wins over both.
    public mutating func load(configFile: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        if adminKey == nil { adminKey = environment["LOOKALIKE_ADMIN_KEY"].flatMap { $0.isEmpty ? nil : $0 } }
        if readKey == nil { readKey = environment["LOOKALIKE_READ_KEY"].flatMap { $0.isEmpty ? nil : $0 } }
        if let lease = environment["LOOKALIKE_JOB_LEASE"].flatMap(Double.init), lease >= 1 { jobLease = lease }
        if indexRoots.isEmpty, let roots = environment["LOOKALIKE_INDEX_ROOTS"] {
            indexRoots = roots.split(separator: ":").map(String.init)
        }
        guard let configFile else { return }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: configFile))
        } catch {
            throw Invalid(description: "\(configFile): cannot read the config file: \(error.localizedDescription)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw Invalid(description: "\(configFile): not a JSON object")
        }
        let known: Set<String> = ["admin_key", "read_key", "index_roots", "max_body_bytes", "max_image_pixels",
                                  "max_concurrent_inference", "url_allowed_networks", "max_connections", "head_timeout"]
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw Invalid(description: "\(configFile): unknown field \"\(unknown)\" (known: \(known.sorted().joined(separator: ", ")))")
        }
        func string(_ key: String) throws -> String? {
            guard let value = object[key] else { return nil }
            guard let text = value as? String, !text.isEmpty else { throw Invalid(description: "\(configFile): \"\(key)\" must be a non-empty string") }
            return text
        }
        func strings(_ key: String) throws -> [String]? {
            guard let value = object[key] else { return nil }
            guard let list = value as? [String] else { throw Invalid(description: "\(configFile): \"\(key)\" must be a list of strings") }
            return list
        }
        func integer(_ key: String) throws -> Int? {
            guard let value = object[key] else { return nil }
            guard let number = value as? Int, number > 0 else { throw Invalid(description: "\(configFile): \"\(key)\" must be a positive integer") }
            return number
        }
        if let key = try string("admin_key") { adminKey = key }
        if let key = try string("read_key") { readKey = key }
        if let roots = try strings("index_roots"), !roots.isEmpty { indexRoots = roots }
        if let value = try integer("max_body_bytes") { maxBodyBytes = value }
        if let value = try integer("max_image_pixels") { maxImagePixels = value }
        if let value = try integer("max_concurrent_inference") { maxConcurrentInference = value }
        if let networks = try strings("url_allowed_networks") { urlAllowedNetworks = networks }
        if let value = try integer("max_connections") { maxConnections = value }
        if let value = try integer("head_timeout") { headTimeout = Double(value) }
    }

    /// Refuses settings that would make an open or broken service.
    public func validate() throws {
        if adminKey == nil && !Self.isLoopback(host) {
            throw Invalid(description: "refusing to serve on \(host) without an admin key: set LOOKALIKE_ADMIN_KEY "
                + "(or admin_key in the config file), or serve on 127.0.0.1")
        }
        if readKey != nil && adminKey == nil {
            throw Invalid(description: "a read key without an admin key would leave writes open: set LOOKALIKE_ADMIN_KEY too")
        }
        if !readReplicas.isEmpty && database == nil {
            throw Invalid(description: "--read-replica needs a PostgreSQL store (--store postgres://…)")
        }
        for replica in readReplicas where !PostgresStore.isAddress(replica) {
            throw Invalid(description: "read replica \(replica) is not a postgres:// address")
        }
        for (name, key) in [("admin", adminKey), ("read", readKey)] {
            if let key, key.count < KeyCheck.minimumLength {
                throw Invalid(description: "the \(name) key has \(key.count) characters; use at least \(KeyCheck.minimumLength) "
                    + "(a random one: openssl rand -hex 16)")
            }
        }
        if let adminKey, let readKey, adminKey == readKey {
            throw Invalid(description: "the read key and the admin key must differ")
        }
        for network in urlAllowedNetworks where AddressPolicy.Network(network) == nil {
            throw Invalid(description: "url_allowed_networks: \(network) is not a CIDR block like 10.0.0.0/8")
        }
        guard (0...65535).contains(port) else { throw Invalid(description: "port \(port) is out of range") }
    }

    /// `localhost`, an address in 127.0.0.0/8, or ::1.
    static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" { return true }
        guard let address = AddressPolicy.parse(host) else { return false }
        return address.count == 4 ? address[0] == 127 : address == [UInt8](repeating: 0, count: 15) + [1]
    }

    var imageLimits: ImageLimits { ImageLimits(maxBytes: maxBodyBytes, maxPixels: maxImagePixels) }
}
