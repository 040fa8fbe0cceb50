import Foundation
import GRDB
import Storage

/// The SQLite rendering of a metadata filter.
extension MetadataFilter {
    /// The SQL condition over `item.metadata`, with its arguments. Values compare like with like:
    /// a number with numbers, text with text (byte order), a boolean with booleans, so `true` never
    /// equals `1` and "cheap" is neither above nor below 50 (the PostgreSQL store answers the same).
    /// `$in` is any of its values' `$eq`. An item without metadata (or with text that is not JSON)
    /// has no field: it passes `$ne` and `$exists: false`, and fails every other condition.
    func sql() -> (String, StatementArguments) {
        var clauses: [String] = []
        var arguments = StatementArguments()
        for condition in conditions {
            let path = "$" + condition.path.map { ".\"\($0)\"" }.joined()
            let column = condition.field == .colors ? "colors" : "metadata"
            let type = "json_type(\(column), ?)"
            let value = "json_extract(\(column), ?)"
            /// The field holds exactly `operand`.
            func equality(_ operand: JSONValue) -> String {
                switch operand {
                case .null:
                    arguments += [path]
                    return "\(type) = 'null'"
                case .bool(let flag):
                    arguments += [path]
                    return "\(type) = '\(flag ? "true" : "false")'"
                case .integer, .number:
                    arguments += [path, path, operand.databaseValue]
                    return "(\(type) IN ('integer', 'real') AND \(value) = ?)"
                case .string:
                    arguments += [path, path, operand.databaseValue]
                    return "(\(type) = 'text' AND \(value) = ?)"
                case .array, .object:
                    return "0"
                }
            }
            var clause: String
            var passesWithoutField = false
            switch condition.operation {
            case .equal(let operand):
                clause = equality(operand)
            case .notEqual(let operand):
                clause = "NOT coalesce(\(equality(operand)), 0)"
                passesWithoutField = true
            case .less(let operand), .lessOrEqual(let operand), .greater(let operand), .greaterOrEqual(let operand):
                if case .string = operand {
                    clause = "(\(type) = 'text' AND \(value) \(condition.operation.orderingOperator) ?)"
                } else {
                    clause = "(\(type) IN ('integer', 'real') AND \(value) \(condition.operation.orderingOperator) ?)"
                }
                arguments += [path, path, operand.databaseValue]
            case .oneOf(let values):
                clause = values.isEmpty ? "0" : "(" + values.map(equality).joined(separator: " OR ") + ")"
            case .exists(let flag):
                clause = flag ? "\(type) IS NOT NULL" : "\(type) IS NULL"
                arguments += [path]
                passesWithoutField = !flag
            }
            // json_extract fails on text that is not JSON, so it is only reached for valid JSON.
            clauses.append("(CASE WHEN json_valid(\(column)) THEN coalesce(\(clause), 0) ELSE \(passesWithoutField ? 1 : 0) END)")
        }
        if clauses.isEmpty { return ("1", arguments) }
        return (clauses.joined(separator: " AND "), arguments)
    }
}

extension JSONValue {
    /// How SQLite's json_extract reports this value.
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
