import Foundation
import Hummingbird
import Logging
import Lookalike
import Metrics
import NIOPosix
import ServiceLifecycle

/// `lookalike serve`: the JSON API under /v1 (described by openapi.yaml, served at
/// /openapi.yaml), the web page at /, /healthz and /metrics, on Hummingbird.
///
/// ```swift
/// let server = try LookalikeServer(configuration: ServerConfiguration(store: storeURL))
/// try await server.run()
/// ```
public final class LookalikeServer: Sendable {
    public static let version = "1.0.0"

    public let configuration: ServerConfiguration
    let collections: Collections
    let jobs: Jobs
    /// Tunings started over HTTP, kept in memory.
    let tunings = Tunings()
    let pool: InferencePool
    let fetcher: URLFetcher
    let keys: KeyCheck
    let assets: WebAssets
    let logger: Logger
    /// Request bodies held at once, in bytes as they arrive.
    let bodies: BodyBudget
    /// Open connections, for the cap and the deadlines of slow clients.
    let connections: ConnectionRegistry
    /// URL fetches in flight.
    let fetches: Gate
    /// Job event streams open.
    let eventStreams: Gate
    /// Uploaded query images kept for an hour, so that a search by one has an address.
    let queryImages: QueryImages

    public init(configuration: ServerConfiguration, logger: Logger = Logger(label: "lookalike.server")) throws {
        try configuration.validate()
        self.configuration = configuration
        self.logger = logger
        var engineConfiguration = EngineConfiguration(store: configuration.store, database: configuration.database,
                                                      models: configuration.models,
                                                      inferenceThreads: configuration.inferenceThreads
                                                          ?? max(1, ProcessInfo.processInfo.activeProcessorCount / configuration.maxConcurrentInference),
                                                      limits: configuration.imageLimits)
        engineConfiguration.deferSnapshotSaves = true
        engineConfiguration.readReplicas = configuration.readReplicas
        collections = Collections(store: configuration.store, engineConfiguration: engineConfiguration,
                                  maxOpen: configuration.maxOpenCollections)
        pool = InferencePool(threads: configuration.maxConcurrentInference, maxQueued: configuration.maxQueuedInference)
        fetcher = URLFetcher(policy: AddressPolicy(allowing: configuration.urlAllowedNetworks), maxBytes: configuration.maxBodyBytes,
                             maxRedirects: configuration.urlMaxRedirects, timeout: configuration.urlFetchTimeout)
        keys = KeyCheck(adminKey: configuration.adminKey, readKey: configuration.readKey)
        assets = WebAssets.load()
        ServerMetrics.bootstrap
        bodies = BodyBudget(limit: configuration.maxBodyMemory)
        connections = ConnectionRegistry(policy: .standard(maxConnections: Self.connectionCap(configuration.maxConnections, logger: logger),
                                                           headTimeout: configuration.headTimeout))
        fetches = Gate(limit: 16)
        eventStreams = Gate(limit: configuration.maxEventStreams,
                            busyMessage: "too many job event streams are open; poll GET /v1/jobs/{id} instead, or retry shortly")
        queryImages = QueryImages(budget: max(64 << 20, 2 * configuration.maxBodyBytes))
        // The default collection's store is opened (and made) at once, so a bad store path fails at start.
        let defaultEngine = try collections.engine(Collections.defaultName)
        // On a PostgreSQL store, jobs live in its database, for every server of the store.
        let collections = self.collections
        jobs = Jobs(shared: defaultEngine.store as? PostgresStore, journal: configuration.store.appendingPathComponent("jobs.json"),
                    lease: configuration.jobLease, roots: configuration.indexRoots, engine: { try collections.engine($0) })
    }

    /// The Hummingbird application (tests drive it with HummingbirdTesting).
    public func application(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        Application(
            router: router(),
            server: .http1(configuration: .init(additionalChannelHandlers: [ExpectContinueHandler(),
                                                                            ConnectionGuard(registry: self.connections, logger: self.logger)])),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "Lookalike"),
            services: [SnapshotSaver(server: self)],
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
            logger: logger
        )
    }

    /// Serves until SIGINT or SIGTERM (the `SnapshotSaver` service saves changed indexes on its way out).
    public func run(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        try await application(onServerRunning: onServerRunning).runService()
        jobs.stop()
        await pool.shutdown()
    }

    func saveSnapshots() {
        for engine in collections.openEngines() { engine.saveSnapshots() }
    }


    // MARK: Routes

    /// The route table: middlewares, then one group of routes per resource.
    func router() -> Router<BasicRequestContext> {
        let router = Router(options: .autoGenerateHeadEndpoints)
        router.middlewares.add(MetricsMiddleware())
        router.middlewares.add(ErrorMiddleware())
        router.middlewares.add(BrowserGuard(loopbackServer: ServerConfiguration.isLoopback(configuration.host)))
        router.middlewares.add(BodyBudgetMiddleware(budget: bodies))
        let routes = Routes(router: router)
        let root = routes.group("")
        addSystemRoutes(to: root)
        let v1 = routes.group("v1", middleware: AuthMiddleware(keys: keys))
        addServerRoutes(to: v1)
        addCollectionRoutes(to: v1)
        addSearchRoutes(to: v1)
        addFeedbackRoutes(to: v1)
        addItemRoutes(to: v1)
        addJobRoutes(to: v1)
        addTuningRoutes(to: v1)
        routes.refuseOtherMethods([root, v1])
        return router
    }

    /// The connection cap the process can keep: the open-file limit is raised to its hard limit
    /// first, and room is left for the store, models and snapshots (a socket is a file).
    static func connectionCap(_ wanted: Int, logger: Logger) -> Int {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return wanted }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        let room = Int(clamping: limit.rlim_cur) - 256
        if room < wanted {
            logger.warning("the open-file limit (\(limit.rlim_cur)) allows \(max(16, room)) connections, not \(wanted)")
        }
        return max(16, min(wanted, room))
    }
}

/// Gives each request a reservation in the server's `BodyBudget` for the bytes of its body,
/// returned when the request has been answered.
struct BodyBudgetMiddleware<Context: RequestContext>: RouterMiddleware {
    let budget: BodyBudget

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let reservation = budget.reservation()
        defer { reservation.release() }
        return try await BodyBudget.$current.withValue(reservation) { try await next(request, context) }
    }
}

/// Writes changed HNSW snapshots every `snapshotInterval` seconds, and once more at shutdown.
struct SnapshotSaver: Service {
    let server: LookalikeServer

    func run() async throws {
        let interval = server.configuration.snapshotInterval
        // Writing a snapshot blocks for as long as the file takes: on NIO's blocking-work threads,
        // not on the threads of Swift's concurrency.
        let save = { try? await NIOThreadPool.singleton.runIfActive { server.saveSnapshots() } }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(interval)) }
            await save()
        }
        await save()
    }
}
