import Foundation

/// A metadata file for `add --metadata`: JSON Lines (one object per line) or CSV with a header
/// row; either way each record names its image in a `path` field. Relative paths are taken
/// relative to the metadata file's folder. CSV fields that read as numbers are stored as numbers.
///
/// ```
/// {"path": "shoes/red-1.jpg", "colour": "red", "price": 45}
/// ```
public struct MetadataFile: Sendable {
    /// JSON object text (without `path`) by absolute image path.
    public let records: [String: String]

    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public let path: String
        public let line: Int
        public let reason: String
        public var description: String { "\(path):\(line): \(reason)" }
    }

    /// Metadata given directly: JSON object text by absolute image path.
    public init(records: [String: String]) {
        self.records = records
    }

    public init(path: String) throws {
        let url = URL(fileURLWithPath: path)
        let text = try Self.text(of: url, path: path, what: "metadata file")
        let base = url.deletingLastPathComponent()
        let objects = url.pathExtension.lowercased() == "csv"
            ? try Self.csvObjects(text, file: path)
            : try Self.jsonLinesObjects(text, file: path)
        var records: [String: String] = [:]
        for (line, object) in objects {
            guard let imagePath = object["path"] as? String, !imagePath.isEmpty else {
                throw ParseError(path: path, line: line, reason: "record has no \"path\" field")
            }
            var fields = object
            fields.removeValue(forKey: "path")
            let resolved = URL(fileURLWithPath: imagePath, relativeTo: base).standardizedFileURL.path
            guard JSONSerialization.isValidJSONObject(fields),
                  let data = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
            else {
                throw ParseError(path: path, line: line, reason: "record cannot be stored as JSON")
            }
            guard data.count <= Metadata.maxBytes else {
                throw ParseError(path: path, line: line,
                                 reason: "record has \(data.count) bytes of metadata; an item takes at most \(Metadata.maxBytes)")
            }
            records[resolved] = String(decoding: data, as: UTF8.self)
        }
        self.records = records
    }

    /// A file's text as UTF-8, or a ParseError naming `what` could not be read and why.
    static func text(of url: URL, path: String, what: String) throws -> String {
        do {
            return try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw ParseError(path: path, line: 0, reason: "cannot read the \(what): \(error.localizedDescription)")
        }
    }

    static func jsonLinesObjects(_ text: String, file: String) throws -> [(Int, [String: Any])] {
        var objects: [(Int, [String: Any])] = []
        for (offset, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            guard let object = (try? JSONSerialization.jsonObject(with: Data(trimmed.utf8))) as? [String: Any] else {
                throw ParseError(path: file, line: offset + 1, reason: "not a JSON object")
            }
            objects.append((offset + 1, object))
        }
        return objects
    }

    /// The rows of a CSV file with a header row as objects; `required` columns must be in the
    /// header, `text` columns stay text (others are numbers when written as plain numbers).
    static func csvObjects(_ text: String, file: String, required: [String] = ["path"], text textColumns: Set<String> = ["path"]) throws
        -> [(Int, [String: Any])] {
        let rows: [CSVRows.Row]
        do {
            rows = try CSVRows.parse(text)
        } catch let error as CSVRows.SyntaxError {
            throw ParseError(path: file, line: error.line, reason: error.reason)
        }
        guard let header = rows.first else { return [] }
        if let missing = required.first(where: { !header.fields.contains($0) }) {
            throw ParseError(path: file, line: 1, reason: "the header row has no \"\(missing)\" column")
        }
        if let repeated = header.fields.first(where: { name in header.fields.filter { $0 == name }.count > 1 }) {
            throw ParseError(path: file, line: 1, reason: "the header row names the column \"\(repeated)\" twice")
        }
        return try rows.dropFirst().compactMap { row in
            if row.fields.count == 1 && row.fields[0].isEmpty { return nil }
            guard row.fields.count == header.fields.count else {
                throw ParseError(path: file, line: row.line,
                                 reason: "row has \(row.fields.count) fields, the header has \(header.fields.count)")
            }
            var object: [String: Any] = [:]
            for (name, value) in zip(header.fields, row.fields) {
                object[name] = textColumns.contains(name) ? value : (Self.number(value) ?? value)
            }
            return (row.line, object)
        }
    }
}

extension MetadataFile {
    /// A CSV field as a number when it is written as a plain decimal number: `45`, `-3`, `49.50`.
    /// Leading zeros (`007`, a code), exponents, `nan` and `inf` stay text.
    static func number(_ text: String) -> Any? {
        guard text.range(of: #"^-?(0|[1-9][0-9]*)(\.[0-9]+)?$"#, options: .regularExpression) != nil,
              let value = Double(text), value.isFinite
        else { return nil }
        if !text.contains("."), let integer = Int(text) { return integer }
        return value
    }
}

/// RFC 4180 CSV: comma-separated, fields optionally in double quotes, `""` for a quote inside one.
enum CSVRows {
    struct Row {
        let line: Int
        let fields: [String]
    }

    struct SyntaxError: Error {
        let line: Int
        let reason: String
    }

    /// The rows of `text`; an unterminated quoted field or a quote inside an unquoted field is an error.
    static func parse(_ text: String) throws -> [Row] {
        var rows: [Row] = []
        var fields: [String] = []
        var field = ""
        var inQuotes = false
        var line = 1
        var rowLine = 1
        var characters = text.makeIterator()
        var pending = characters.next()
        while let character = pending {
            pending = characters.next()
            if inQuotes {
                if character == "\"" {
                    if pending == "\"" {
                        field.append("\"")
                        pending = characters.next()
                    } else {
                        inQuotes = false
                    }
                } else {
                    if character == "\n" { line += 1 }
                    field.append(character)
                }
                continue
            }
            switch character {
            case "\"":
                guard field.isEmpty else {
                    throw SyntaxError(line: line, reason: "a quote inside an unquoted field (quote the whole field)")
                }
                inQuotes = true
            case ",":
                fields.append(field)
                field = ""
            case "\n", "\r\n":
                fields.append(field)
                rows.append(Row(line: rowLine, fields: fields))
                fields = []
                field = ""
                line += 1
                rowLine = line
            case "\r": break
            default: field.append(character)
            }
        }
        if inQuotes { throw SyntaxError(line: rowLine, reason: "a quoted field is never closed") }
        if !field.isEmpty || !fields.isEmpty {
            fields.append(field)
            rows.append(Row(line: rowLine, fields: fields))
        }
        return rows
    }
}
