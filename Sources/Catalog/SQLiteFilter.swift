import Foundation
import GRDB
import Storage

/// The SQLite rendering of a metadata filter.
extension MetadataFilter {
    /// The SQL condition over `item.metadata`, with its arguments. An item without metadata (or
    /// with text that is not JSON) has no field: it passes `$ne` and `$exists: false`, and fails
    /// every other condition.
    func sql() -> (String, StatementArguments) {
        var clauses: [String] = []
        var arguments = StatementArguments()
        for condition in conditions {
            let path = "$" + condition.path.map { ".\"\($0)\"" }.joined()
            let value = "json_extract(metadata, ?)"
            let type = "json_type(metadata, ?)"
            var clause: String
            var passesWithoutField = false
            switch condition.operation {
            case .equal(.null):
                clause = "\(type) = 'null'"
                arguments += [path]
            case .notEqual(.null):
                clause = "(\(type) IS NULL OR \(type) != 'null')"
                arguments += [path, path]
                passesWithoutField = true
            case .equal(let operand), .notEqual(let operand), .less(let operand), .lessOrEqual(let operand),
                 .greater(let operand), .greaterOrEqual(let operand):
                clause = "\(value) \(condition.operation.sqlComparison) ?"
                arguments += [path, operand.databaseValue]
                if case .notEqual = condition.operation { passesWithoutField = true }
            case .oneOf(let values):
                if values.isEmpty {
                    clause = "0"
                } else {
                    clause = "\(value) IN (\(Array(repeating: "?", count: values.count).joined(separator: ", ")))"
                    arguments += [path]
                    for operand in values { arguments += [operand.databaseValue] }
                }
            case .exists(let flag):
                clause = flag ? "\(type) IS NOT NULL" : "\(type) IS NULL"
                arguments += [path]
                passesWithoutField = !flag
            }
            // json_extract fails on text that is not JSON, so it is only reached for valid JSON.
            clauses.append("(CASE WHEN json_valid(metadata) THEN \(clause) ELSE \(passesWithoutField ? 1 : 0) END)")
        }
        if clauses.isEmpty { return ("1", arguments) }
        return (clauses.joined(separator: " AND "), arguments)
    }
}

extension MetadataFilter.Operation {
    /// The SQL comparison of a field with one operand.
    var sqlComparison: String {
        switch self {
        case .equal: return "="
        case .notEqual: return "IS NOT"
        case .less: return "<"
        case .lessOrEqual: return "<="
        case .greater: return ">"
        case .greaterOrEqual: return ">="
        case .oneOf, .exists: return ""
        }
    }
}

extension JSONValue {

    /// How SQLite's json_extract reports this value: booleans as 1 and 0.
    var databaseValue: DatabaseValue {
        switch self {
        case .null: return .null
        case .bool(let flag): return (flag ? 1 : 0).databaseValue
        case .integer(let value): return value.databaseValue
        case .number(let value): return value.databaseValue
        case .string(let value): return value.databaseValue
        case .array, .object: return .null
        }
    }
}

extension Catalog {
    /// The ids of the items whose metadata passes `filter`.
    public func itemIDs(matching filter: MetadataFilter) throws -> Set<String> {
        let (condition, arguments) = filter.sql()
        return try read { db in
            Set(try String.fetchAll(db, sql: "SELECT id FROM item WHERE \(condition)", arguments: arguments))
        }
    }

    /// Items in id order, `limit` at a time, starting after the id `after`.
    public func items(after: String?, limit: Int) throws -> [Item] {
        try read { db in
            var request = Item.order(Column("id")).limit(max(0, limit))
            if let after { request = request.filter(Column("id") > after) }
            return try request.fetchAll(db)
        }
    }

    public func itemCount() throws -> Int {
        try read { db in try Item.fetchCount(db) }
    }
}
