import ArgumentParser
import Foundation
import Logging
import Lookalike

@main
struct LookalikeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lookalike",
        abstract: "Find the images that look like this one.",
        discussion: """
            Lookalike turns images into vectors with a neural network and answers a query image with \
            its nearest neighbours by cosine similarity.

            Exit status: 0 on success; 1 on an error that stopped the command; \
            2 when `add` could not add some inputs (the others were added); 64 on a usage error.
            """,
        subcommands: [Add.self, Search.self, List.self, Duplicates.self, FeedbackCommand.self, Tune.self, Stats.self, Remove.self, Migrate.self, Models.self, Eval.self, Serve.self]
    )

    /// Log lines go to standard error at `LOOKALIKE_LOG_LEVEL` (default: warning), so they never mix with results.
    static func main() async {
        let level = ProcessInfo.processInfo.environment["LOOKALIKE_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var command: ParsableCommand
        do {
            command = try parseAsRoot()
            if var asynchronous = command as? AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// Options every command that opens a store shares.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The store: a folder, or a PostgreSQL address (postgres://user@host:port/db[?schema=name]).",
        discussion: "Default: $LOOKALIKE_STORE, else $XDG_DATA_HOME/lookalike/store (~/.local/share/lookalike/store).",
        valueName: "store"))
    var store: String?

    @Option(name: .long, help: "Threads for one model run (0: one per core).")
    var threads: Int = 0

    func validate() throws {
        guard (0...256).contains(threads) else { throw ValidationError("--threads must be between 0 and 256") }
    }

    /// The engine over the chosen store; only `add` creates a store that does not exist yet.
    func engine(createStore: Bool) throws -> Engine {
        let location = StoreLocation.resolveStore(store)
        return try Engine(configuration: EngineConfiguration(store: location.folder, database: location.database, inferenceThreads: threads),
                          createStore: createStore)
    }
}

/// Prints an error the way every command does and turns it into exit status 1.
func fail(_ error: Error) -> ExitCode {
    FileHandle.standardError.write(Data("lookalike: \(error)\n".utf8))
    return ExitCode.failure
}

func printJSON(_ object: Any) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
    print(String(decoding: data, as: UTF8.self))
}

/// Metadata text stored as a JSON object, back to an object for JSON output.
func jsonObject(_ text: String?) -> Any {
    Metadata.object(text) ?? NSNull()
}

/// "1 hit", "2 hits"; the plural form when it is not the singular plus "s".
func plural(_ count: Int, _ singular: String, _ pluralForm: String? = nil) -> String {
    "\(count) \(count == 1 ? singular : pluralForm ?? singular + "s")"
}
