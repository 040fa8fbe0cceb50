import Foundation
import PostgresStore

/// Where the store lives: `--store`, else `LOOKALIKE_STORE`, else `$XDG_DATA_HOME/lookalike/store`
/// (by default `~/.local/share/lookalike/store`). Either a folder (the SQLite store) or a
/// PostgreSQL address, `postgres://user@host:port/database[?schema=name]`.
public enum StoreLocation {
    /// The folder the store's files go to, and the PostgreSQL address when the store is one.
    public struct Resolved: Sendable, Equatable {
        public var folder: URL
        public var database: String?
        /// How to name the store to a person: the folder, or the address without its password.
        public var display: String
    }

    public static func resolveStore(_ explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> Resolved {
        let given = explicit.flatMap { $0.isEmpty ? nil : $0 } ?? environment["LOOKALIKE_STORE"].flatMap { $0.isEmpty ? nil : $0 }
        if let given, PostgresStore.isAddress(given) {
            let display = (try? PostgresStore.parse(given).display) ?? given
            return Resolved(folder: filesFolder(forDatabase: given, environment: environment), database: given, display: display)
        }
        let folder = given.map { URL(fileURLWithPath: $0, isDirectory: true) }
            ?? dataHome(environment).appendingPathComponent("lookalike/store", isDirectory: true)
        return Resolved(folder: folder, database: nil, display: folder.path)
    }

    /// The store folder (for a PostgreSQL store, the folder of its files).
    public static func resolve(_ explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        resolveStore(explicit, environment: environment).folder
    }

    /// Files kept beside a PostgreSQL store's records (uploads, thumbnails): `LOOKALIKE_FILES`, else a
    /// folder per database and schema under `$XDG_DATA_HOME/lookalike/postgres`. Servers sharing a
    /// database share uploads only when this folder is shared storage.
    static func filesFolder(forDatabase address: String, environment: [String: String]) -> URL {
        if let files = environment["LOOKALIKE_FILES"], !files.isEmpty { return URL(fileURLWithPath: files, isDirectory: true) }
        let parsed = try? PostgresStore.parse(address)
        let name = (parsed?.display ?? address).unicodeScalars.map { scalar -> String in
            CharacterSet.alphanumerics.contains(scalar) && scalar.isASCII ? String(scalar) : "_"
        }.joined()
        return dataHome(environment).appendingPathComponent("lookalike/postgres", isDirectory: true)
            .appendingPathComponent(String(name.prefix(120)) + "_" + (parsed?.schema ?? PostgresStore.defaultSchema), isDirectory: true)
    }

    private static func dataHome(_ environment: [String: String]) -> URL {
        let data = environment["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (NSHomeDirectory() as NSString).appendingPathComponent(".local/share")
        return URL(fileURLWithPath: data, isDirectory: true)
    }
}
