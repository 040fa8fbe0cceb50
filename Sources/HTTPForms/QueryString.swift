import Foundation

/// Why a request's form (query string, multipart body, an option's value) cannot be used: a
/// sentence naming the field, answered as 400 Bad Request.
public struct FormError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }

    public init(_ message: String) { self.message = message }
}

/// A request's query string, decoded as HTML forms encode it (`+` is a space, then percent
/// escapes; the first value of a repeated name wins), with readers that check a value's kind and
/// range and name the field when it is wrong.
public struct QueryString: Sendable {
    public let values: [String: Substring]

    public init(_ raw: String?) {
        var values: [String: Substring] = [:]
        for pair in (raw ?? "").split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                let spaced = text.replacingOccurrences(of: "+", with: " ")
                return spaced.removingPercentEncoding ?? spaced
            }
            let name = decode(parts[0])
            if values[name] == nil { values[name] = Substring(parts.count == 2 ? decode(parts[1]) : "") }
        }
        self.values = values
    }

    public subscript(_ name: String) -> Substring? { values[name] }

    /// A whole number in `range`, if the field is given.
    public func integer(_ name: String, range: ClosedRange<Int>) throws(FormError) -> Int? {
        guard let text = values[name] else { return nil }
        return try Self.checked(Int(text), field: name, range: range)
    }

    /// A finite number in `range`, if the field is given.
    public func number(_ name: String, range: ClosedRange<Float>) throws(FormError) -> Float? {
        guard let text = values[name] else { return nil }
        return try Self.checked(Float(text), field: name, range: range)
    }

    /// `true`, `1` or nothing (`?collapse`) for true; `false` or `0` for false.
    public func flag(_ name: String) throws(FormError) -> Bool? {
        guard let text = values[name] else { return nil }
        switch text.lowercased() {
        case "true", "1", "": return true
        case "false", "0": return false
        default: throw FormError("\(name) must be true or false")
        }
    }

    /// A comma-separated list, if the field is given.
    public func list(_ name: String) -> [String]? {
        values[name].map { $0.split(separator: ",").map(String.init) }
    }

    public static func checked(_ value: Int?, field: String, range: ClosedRange<Int>) throws(FormError) -> Int {
        guard let value, range.contains(value) else {
            throw FormError("\(field) must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    public static func checked(_ value: Float?, field: String, range: ClosedRange<Float>) throws(FormError) -> Float {
        guard let value, value.isFinite, range.contains(value) else {
            throw FormError("\(field) must be a number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }
}
