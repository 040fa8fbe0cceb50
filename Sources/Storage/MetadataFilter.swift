import Foundation

/// A JSON value, decoded without losing the difference between `true`, `1` and `1.0`.
public enum JSONValue: Sendable, Equatable, Codable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// Parses JSON text.
    public static func parse(_ text: String) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }
}

/// Which items a search may return, by their metadata: `{"color": "red", "price": {"$lt": 50}}`.
/// Every condition must hold. Operators: `$eq`, `$ne`, `$lt`, `$lte`, `$gt`, `$gte`, `$in` (a list of
/// values), `$exists` (true or false). A dotted key reaches into nested objects (`"size.eu": 42`).
/// `"$color"` asks the image's own colours (`ColorProfile`, made when it was added): `"red"` or
/// `["red", "white"]` (each covering at least `ColorProfile.defaultShare` of the image),
/// `{"red": 0.3}` (at least that share) or `{"red": {"$lt": 0.05}}` (any ordering operator).
/// A parsed tree: each store renders it in its own query language (the SQLite catalog with its
/// JSON functions), so the store answers with the exact set of matching items.
public struct MetadataFilter: Sendable, Equatable {
    public enum Operation: Sendable, Equatable {
        case equal(JSONValue)
        case notEqual(JSONValue)
        case less(JSONValue), lessOrEqual(JSONValue), greater(JSONValue), greaterOrEqual(JSONValue)
        case oneOf([JSONValue])
        case exists(Bool)
    }

    /// What a condition looks at: the item's metadata, or its colour profile (`Item.colors`).
    public enum Field: Sendable, Equatable {
        case metadata
        /// The share of the image a colour covers; the path is the colour's name.
        case colors
    }

    public struct Condition: Sendable, Equatable {
        /// The key's path segments (`size.eu` is `["size", "eu"]`); for a colour, its name.
        public let path: [String]
        public let operation: Operation
        public let field: Field

        public init(path: [String], operation: Operation, field: Field = .metadata) {
            self.path = path
            self.operation = operation
            self.field = field
        }

        /// The colour `name` covers at least `share` of the image.
        public static func color(_ name: String, atLeast share: Double = ColorProfile.defaultShare) -> Condition {
            Condition(path: [name], operation: .greaterOrEqual(.number(share)), field: .colors)
        }

        /// The colour `name` covers less than `share` of the image.
        public static func color(_ name: String, below share: Double) -> Condition {
            Condition(path: [name], operation: .less(.number(share)), field: .colors)
        }
    }

    public let conditions: [Condition]

    /// A filter that names the field (or operator) that is wrong, and why.
    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public let field: String
        public let reason: String
        public var description: String { field.isEmpty ? reason : "filter field \"\(field)\": \(reason)" }

        public init(field: String, reason: String) {
            self.field = field
            self.reason = reason
        }
    }

    public init(conditions: [Condition]) {
        self.conditions = conditions
    }

    /// Parses a filter given as JSON text.
    public init(json text: String) throws {
        let value: JSONValue
        do {
            value = try JSONValue.parse(text)
        } catch {
            throw ParseError(field: "", reason: "the filter is not valid JSON")
        }
        try self.init(value)
    }

    /// Builds a filter from a decoded JSON object.
    public init(_ value: JSONValue) throws {
        guard case .object(let fields) = value else {
            throw ParseError(field: "", reason: "a filter must be a JSON object, like {\"color\": \"red\", \"price\": {\"$lt\": 50}}")
        }
        var conditions: [Condition] = []
        for key in fields.keys.sorted() {
            guard let spec = fields[key] else { continue }
            if key == Self.colorKey {
                conditions += try Self.colorConditions(spec)
                continue
            }
            let path = try Self.path(key)
            if case .object(let operators) = spec {
                guard !operators.isEmpty, operators.keys.allSatisfy({ $0.hasPrefix("$") }) else {
                    throw ParseError(field: key, reason: "an operator object holds operators only, like {\"$lt\": 50}; a dotted key reaches a nested field")
                }
                for name in operators.keys.sorted() {
                    guard let operand = operators[name] else { continue }
                    conditions.append(Condition(path: path, operation: try Self.operation(name, operand, field: key)))
                }
            } else {
                guard spec.isScalar else {
                    throw ParseError(field: key, reason: "compare with a string, number, boolean or null, or use an operator object like {\"$lt\": 50}")
                }
                conditions.append(Condition(path: path, operation: .equal(spec)))
            }
        }
        guard conditions.count <= Self.maxConditions else {
            throw ParseError(field: "", reason: "a filter may have at most \(Self.maxConditions) conditions")
        }
        self.conditions = conditions
    }

    /// The key of conditions on the image's colours.
    public static let colorKey = "$color"

    private static func colorConditions(_ spec: JSONValue) throws -> [Condition] {
        func name(_ word: String) throws -> String {
            guard let name = ColorProfile.name(for: word) else {
                throw ParseError(field: colorKey, reason: "\"\(word)\" is not a colour name (known: \(ColorProfile.names.joined(separator: ", ")))")
            }
            return name
        }
        func atLeast(_ word: String, _ share: Double) throws -> Condition {
            .color(try name(word), atLeast: share)
        }
        let usage = "give a colour name, a list of them, or shares like {\"red\": 0.3} or {\"red\": {\"$lt\": 0.05}}"
        switch spec {
        case .string(let word):
            return [try atLeast(word, ColorProfile.defaultShare)]
        case .array(let words):
            return try words.map { word in
                guard case .string(let word) = word else { throw ParseError(field: colorKey, reason: usage) }
                return try atLeast(word, ColorProfile.defaultShare)
            }
        case .object(let shares):
            var conditions: [Condition] = []
            for word in shares.keys.sorted() {
                switch shares[word] {
                case .integer(let share)?: conditions.append(try atLeast(word, Double(share)))
                case .number(let share)?: conditions.append(try atLeast(word, share))
                case .object(let operators)?:
                    guard !operators.isEmpty else { throw ParseError(field: colorKey, reason: usage) }
                    for operatorName in operators.keys.sorted() {
                        guard let operand = operators[operatorName] else { continue }
                        let operation = try Self.operation(operatorName, operand, field: colorKey)
                        switch (operation.orderingOperator.isEmpty, operand) {
                        case (false, .integer), (false, .number):
                            conditions.append(Condition(path: [try name(word)], operation: operation, field: .colors))
                        default:
                            throw ParseError(field: colorKey, reason: "a colour's share is compared with $lt, $lte, $gt or $gte "
                                + "and a number from 0 to 1")
                        }
                    }
                default:
                    throw ParseError(field: colorKey, reason: usage)
                }
            }
            guard !conditions.isEmpty else { throw ParseError(field: colorKey, reason: usage) }
            return conditions
        default:
            throw ParseError(field: colorKey, reason: usage)
        }
    }

    /// SQLite refuses expressions nested deeper than 1000; a filter stays far below.
    public static let maxConditions = 100

    private static func path(_ key: String) throws -> [String] {
        let segments = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !key.isEmpty, key.count <= 200,
              segments.allSatisfy({ !$0.isEmpty && !$0.contains("\"") && !$0.contains("\\") && !$0.hasPrefix("$")
                  && !$0.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F } })
        else {
            throw ParseError(field: key, reason: "not a usable field name (dot-separated names, no quotes, not starting with $)")
        }
        return segments
    }

    private static func operation(_ name: String, _ operand: JSONValue, field: String) throws -> Operation {
        func scalar() throws -> JSONValue {
            guard operand.isScalar else { throw ParseError(field: field, reason: "\(name) takes a string, number, boolean or null") }
            return operand
        }
        func ordered() throws -> JSONValue {
            switch operand {
            case .integer, .number, .string: return operand
            default: throw ParseError(field: field, reason: "\(name) takes a number or a string")
            }
        }
        switch name {
        case "$eq": return .equal(try scalar())
        case "$ne": return .notEqual(try scalar())
        case "$lt": return .less(try ordered())
        case "$lte": return .lessOrEqual(try ordered())
        case "$gt": return .greater(try ordered())
        case "$gte": return .greaterOrEqual(try ordered())
        case "$in":
            guard case .array(let values) = operand, values.allSatisfy(\.isScalar), values.count <= 500 else {
                throw ParseError(field: field, reason: "$in takes a list of at most 500 strings, numbers or booleans")
            }
            return .oneOf(values)
        case "$exists":
            guard case .bool(let flag) = operand else { throw ParseError(field: field, reason: "$exists takes true or false") }
            return .exists(flag)
        default:
            throw ParseError(field: field, reason: "unknown operator \(name) (known: $eq, $ne, $lt, $lte, $gt, $gte, $in, $exists)")
        }
    }
}

extension MetadataFilter.Operation {
    /// The SQL operator of an ordering comparison (`<`, `<=`, `>`, `>=`); empty for the others.
    /// Both stores' renderings use it.
    public var orderingOperator: String {
        switch self {
        case .less: return "<"
        case .lessOrEqual: return "<="
        case .greater: return ">"
        case .greaterOrEqual: return ">="
        case .equal, .notEqual, .oneOf, .exists: return ""
        }
    }
}

extension JSONValue {
    /// Not an array or an object.
    public var isScalar: Bool {
        switch self {
        case .array, .object: return false
        default: return true
        }
    }
}
