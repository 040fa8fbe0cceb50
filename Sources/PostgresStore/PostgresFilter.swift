import Foundation
import Storage

/// The PostgreSQL rendering of a metadata filter, over a `jsonb` column that is NULL for items
/// without a JSON object. The same answers as the SQLite catalog's: values compare like with
/// like, `$in` is any of its values' `$eq`, and an item without the field passes `$ne` and
/// `$exists: false` only. Equality is a containment test (`@>`), which the column's GIN index serves.
extension MetadataFilter {
    /// `colors` is the column of the items' colour profiles (`jsonb`), for `$color` conditions.
    func postgresSQL(column metadataColumn: String, colors: String, firstParameter: Int) -> (String, [Parameter]) {
        var parameters: [Parameter] = []
        func placeholder(_ parameter: Parameter, cast: String) -> String {
            parameters.append(parameter)
            return "$\(firstParameter + parameters.count - 1)::\(cast)"
        }
        var clauses: [String] = []
        for condition in conditions {
            let column = condition.field == .colors ? colors : metadataColumn
            // The field's value (NULL when missing); a parameter only where it is used.
            func field() -> String { "(\(column) #> \(placeholder(.text(PostgresStore.array(condition.path)), cast: "text[]")))" }
            func equality(_ operand: JSONValue) -> String {
                guard operand.isScalar else { return "false" }
                return "coalesce(\(column) @> \(placeholder(.text(Self.nested(condition.path, operand)), cast: "jsonb")), false)"
            }
            switch condition.operation {
            case .equal(let operand):
                clauses.append(equality(operand))
            case .notEqual(let operand):
                clauses.append("NOT \(equality(operand))")
            case .less(let operand), .lessOrEqual(let operand), .greater(let operand), .greaterOrEqual(let operand):
                let comparison = condition.operation.orderingOperator
                let typed: (type: String, text: String, cast: String)?
                switch operand {
                case .string(let text): typed = ("string", text, "text")
                case .integer(let number): typed = ("number", String(number), "numeric")
                case .number(let number): typed = ("number", String(number), "numeric")
                default: typed = nil
                }
                guard let typed else {
                    clauses.append("false")
                    break
                }
                let value = field()
                let scalar = typed.type == "string" ? "(\(value) #>> '{}') COLLATE \"C\"" : "(\(value))::numeric"
                clauses.append("coalesce(jsonb_typeof(\(value)) = '\(typed.type)' AND \(scalar) \(comparison) "
                    + "\(placeholder(.text(typed.text), cast: typed.cast)), false)")
            case .oneOf(let values):
                clauses.append(values.isEmpty ? "false" : "(" + values.map(equality).joined(separator: " OR ") + ")")
            case .exists(let flag):
                clauses.append(flag ? "\(field()) IS NOT NULL" : "\(field()) IS NULL")
            }
        }
        return (clauses.isEmpty ? "true" : clauses.joined(separator: " AND "), parameters)
    }

    /// `{"a": {"b": operand}}` for the path a.b, as JSON text.
    static func nested(_ path: [String], _ operand: JSONValue) -> String {
        let encoder = JSONEncoder()
        func quoted(_ text: String) -> String {
            (try? encoder.encode(text)).map { String(decoding: $0, as: UTF8.self) } ?? "\"\""
        }
        var json = (try? encoder.encode(operand)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
        for key in path.reversed() {
            json = "{\(quoted(key)): \(json)}"
        }
        return json
    }
}
