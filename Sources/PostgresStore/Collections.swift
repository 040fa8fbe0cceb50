import Foundation
import Storage

/// The collections of a server on a PostgreSQL store: each one a store of its own in a schema of
/// the same database, listed in the `collection` table of the default store's schema, so every
/// server of the database sees the same collections.
extension PostgresStore {
    /// A collection name that is taken already.
    public struct CollectionExists: Error, CustomStringConvertible {
        public let name: String
        public var description: String { "a collection named \(name) exists already" }
    }

    /// The collections, by name, with the schema each lives in.
    public func collections() throws -> [(name: String, schema: String)] {
        try pool.with(retry: true) { connection in
            let rows = try connection.execute("SELECT name, schema_name FROM collection ORDER BY name COLLATE \"C\"")
            return (0..<rows.count).compactMap { row in
                guard let name = rows.string(row, 0), let schema = rows.string(row, 1) else { return nil }
                return (name, schema)
            }
        }
    }

    /// The schema of a collection, nil when there is none of that name.
    public func collectionSchema(_ name: String) throws -> String? {
        try pool.with(retry: true) { connection in
            try connection.execute("SELECT schema_name FROM collection WHERE name = $1", [.text(name)]).string(0, 0)
        }
    }

    /// Records a new collection and returns the schema its store goes into: `<schema>__<name>`
    /// when that is a schema name (no `-`, at most 63 characters) that no schema of the database
    /// has yet, else `<schema>__c` and 16 random hexadecimal digits. No existing schema is ever
    /// touched: the collection starts empty. A name taken is `CollectionExists`.
    public func addCollection(_ name: String) throws -> String {
        try pool.with { connection in
            try connection.transaction {
                let readable = "\(self.schema)__\(name)"
                var schema = readable
                let free = try connection.execute("SELECT 1 FROM pg_namespace WHERE nspname = $1", [.text(readable)]).count == 0
                if !free || readable.count > 63
                    || name.contains(where: { !($0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_")) }) {
                    let random = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
                    schema = "\(self.schema.prefix(44))__c\(random)"
                }
                let taken = try connection.execute("""
                    INSERT INTO collection (name, schema_name) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING name
                    """, [.text(name), .text(schema)])
                guard taken.count == 1 else { throw CollectionExists(name: name) }
                return schema
            }
        }
    }

    /// Forgets a collection and drops its schema with everything in it, in one transaction.
    /// Returns whether there was one of that name.
    @discardableResult
    public func removeCollection(_ name: String) throws -> Bool {
        try pool.with { connection in
            try connection.transaction {
                guard let schema = try connection.execute("DELETE FROM collection WHERE name = $1 RETURNING schema_name",
                                                          [.text(name)]).string(0, 0) else { return false }
                try connection.execute("DROP SCHEMA IF EXISTS \(Self.identifier(schema)) CASCADE")
                return true
            }
        }
    }

    /// `address` with its `schema` parameter set to `schema` (the address of a collection's store).
    public static func address(_ address: String, schema: String) -> String {
        let parts = address.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let kept = (parts.count > 1 ? parts[1].split(separator: "&") : []).filter { !$0.hasPrefix("schema=") && $0 != "schema" }
        return String(parts[0]) + "?" + (kept.map(String.init) + ["schema=\(schema)"]).joined(separator: "&")
    }
}
