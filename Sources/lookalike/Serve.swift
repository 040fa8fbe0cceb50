import ArgumentParser
import Foundation
import Logging
import Lookalike
import LookalikeServer

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the HTTP API and the web page.",
        discussion: """
            The API is under /v1 (its OpenAPI document at /openapi.yaml), the web page at /, \
            health at /healthz and Prometheus metrics at /metrics.

            Keys come from LOOKALIKE_ADMIN_KEY and LOOKALIKE_READ_KEY, or from the config file \
            (admin_key, read_key). With an admin key, writes need it; with a read key, reads need \
            one of the two. Without keys the server only binds to loopback.

            Folders the server may index on request: --index-root (repeatable), index_roots in the \
            config file, or LOOKALIKE_INDEX_ROOTS (colon-separated).
            """
    )

    @Option(help: "The address to bind to.")
    var host = "127.0.0.1"

    @Option(help: "The port (0: any free port).")
    var port = 8080

    @Option(name: .customLong("index-root"), help: ArgumentHelp("A folder the server may index on request (repeatable).", valueName: "dir"))
    var indexRoots: [String] = []

    @Option(help: ArgumentHelp("A JSON config file (admin_key, read_key, index_roots, max_body_bytes, max_image_pixels, max_concurrent_inference, url_allowed_networks, max_connections, head_timeout).", valueName: "file"))
    var config: String?

    @Option(name: .customLong("max-inference"), help: "Requests embedding images at once (default: one per core).")
    var maxInference: Int?

    @Option(name: .long, help: ArgumentHelp("The store of the default collection: a folder, or a PostgreSQL address (postgres://…).", valueName: "store"))
    var store: String?

    @Option(name: .customLong("read-replica"), help: ArgumentHelp(
        "A streaming replica of the PostgreSQL store that searches may read from (repeatable); one that is down or over 10 s behind is skipped.",
        valueName: "address"))
    var readReplicas: [String] = []

    @Option(name: .customLong("max-connections"), help: "Connections held at once (default 1024); when full, the one idle longest makes room.")
    var maxConnections: Int?

    @Option(name: .customLong("head-timeout"), help: ArgumentHelp("Seconds a client may take to send a request's head (default 10); slower ones are closed.", valueName: "seconds"))
    var headTimeout: Double?

    @Option(name: .long, help: "Threads for one model run (0: one per core; default: cores / --max-inference, so concurrent requests share the cores).")
    var threads: Int?

    func validate() throws {
        if let maxInference, !(1...64).contains(maxInference) { throw ValidationError("--max-inference must be between 1 and 64") }
        if let threads, !(0...256).contains(threads) { throw ValidationError("--threads must be between 0 and 256") }
        if let maxConnections, !(16...1_000_000).contains(maxConnections) {
            throw ValidationError("--max-connections must be between 16 and 1000000")
        }
        if let headTimeout, !(headTimeout >= 0.1 && headTimeout <= 3600) {
            throw ValidationError("--head-timeout must be between 0.1 and 3600 seconds")
        }
    }

    func run() async throws {
        let location = StoreLocation.resolveStore(store)
        var configuration = ServerConfiguration(host: host, port: port, store: location.folder)
        configuration.database = location.database
        configuration.readReplicas = readReplicas
        let server: LookalikeServer
        do {
            try configuration.load(configFile: config)
            // The command line wins over the config file and the environment.
            if !indexRoots.isEmpty { configuration.indexRoots = indexRoots.map { URL(fileURLWithPath: $0).standardizedFileURL.path } }
            if let maxInference { configuration.maxConcurrentInference = maxInference }
            if let threads { configuration.inferenceThreads = threads }
            if let maxConnections { configuration.maxConnections = maxConnections }
            if let headTimeout { configuration.headTimeout = headTimeout }
            for root in configuration.indexRoots where !FileManager.default.fileExists(atPath: root) {
                throw ValidationError("index root \(root) does not exist")
            }
            server = try LookalikeServer(configuration: configuration)
        } catch {
            throw fail(error)
        }
        let host = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
        let store = configuration.database == nil ? configuration.store.path : location.display
        do {
            try await server.run { port in
                let line = "Lookalike is serving on http://\(host):\(port)/ (store \(store)); Ctrl-C stops it\n"
                FileHandle.standardOutput.write(Data(line.utf8))
            }
        } catch {
            throw fail(ServerConfiguration.Invalid(description: "cannot serve on \(host):\(configuration.port): \(error)"))
        }
    }
}
