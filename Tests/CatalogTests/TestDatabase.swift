import Foundation
import PostgresStore

/// The PostgreSQL database the tests may use: `LOOKALIKE_TEST_POSTGRES`, a throwaway server that
/// `make test` starts on loopback. Each store made here has a schema of its own.
enum TestDatabase {
    static var address: String? {
        ProcessInfo.processInfo.environment["LOOKALIKE_TEST_POSTGRES"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The address with a new schema named in it.
    static func uniqueAddress(_ address: String) -> String {
        let schema = "test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        return address + (address.contains("?") ? "&" : "?") + "schema=" + schema
    }

    static func store(_ address: String, folder: URL) throws -> PostgresStore {
        try PostgresStore(address: uniqueAddress(address), directory: folder)
    }
}
