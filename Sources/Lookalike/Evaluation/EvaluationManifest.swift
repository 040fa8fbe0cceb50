import Foundation

/// An evaluation set: JSONL, one image a line.
///
///     {"path": "gallery/cat.jpg", "role": "gallery", "group": "cat"}
///     {"path": "queries/cat-crop.jpg", "role": "query", "group": "cat", "kind": "crop"}
///     {"path": "other/dog.jpg", "role": "distractor"}
///
/// - `path`: relative paths are taken from the manifest's folder.
/// - `role`: `query` (searched for), `gallery` (indexed; correct for the queries of its group) or
///   `distractor` (indexed; correct for no query).
/// - `group`: which gallery items are correct for a query. Queries need one; a query whose group
///   has no gallery item is a query without a match (copy detection's negative queries).
/// - `kind` (optional): a label to break results down by, such as the edit a copy went through.
/// - `text` (optional): a description; a query with `text` and no `path` is searched in words
///   (text-to-image evaluation, with a model made of words such as `words`).
public struct EvaluationManifest: Sendable {
    public enum Role: String, Sendable {
        case query, gallery, distractor
    }

    public struct Entry: Sendable, Equatable {
        public let path: String
        public let role: Role
        public let group: String?
        public let kind: String?
        public let text: String?
        /// The line of the manifest it came from (1-based), for error messages.
        public let line: Int
    }

    public let entries: [Entry]

    public var queries: [Entry] { entries.filter { $0.role == .query } }
    public var indexed: [Entry] { entries.filter { $0.role != .query } }

    public init(entries: [Entry]) {
        self.entries = entries
    }

    /// Reads a manifest; any malformed line is an error naming the file, the line and the field.
    public static func load(_ url: URL) throws -> EvaluationManifest {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw EvaluationError.unreadableManifest(path: url.path, reason: error.localizedDescription)
        }
        let base = url.deletingLastPathComponent()
        var entries: [Entry] = []
        for (offset, rawLine) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = offset + 1
            let text = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if text.isEmpty { continue }
            func bad(_ reason: String) -> EvaluationError {
                .badManifestLine(path: url.path, line: line, reason: reason)
            }
            guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                throw bad("not a JSON object")
            }
            let known: Set<String> = ["path", "role", "group", "kind", "text"]
            if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
                throw bad("unknown field \"\(unknown)\" (fields: path, role, group, kind, text)")
            }
            guard let roleName = object["role"] as? String else { throw bad("\"role\" must be a string") }
            guard let role = Role(rawValue: roleName) else {
                throw bad("\"role\" is \"\(roleName)\"; it must be query, gallery or distractor")
            }
            // A query in words has its text and no image.
            let isTextQuery = role == .query && (object["text"] as? String).map { !$0.isEmpty } == true && object["path"] == nil
            guard isTextQuery || (object["path"] as? String).map({ !$0.isEmpty }) == true else {
                throw bad("\"path\" must be a non-empty string (a query in words has \"text\" instead)")
            }
            let path = object["path"] as? String ?? ""
            func optionalString(_ field: String) throws -> String? {
                guard let value = object[field], !(value is NSNull) else { return nil }
                guard let string = value as? String, !string.isEmpty else { throw bad("\"\(field)\" must be a non-empty string") }
                return string
            }
            let group = try optionalString("group")
            if role != .distractor, group == nil { throw bad("a \(role.rawValue) needs a \"group\"") }
            if role == .distractor, group != nil { throw bad("a distractor has no \"group\": it is correct for no query") }
            // Standardised as `add` reports paths, so the two can be matched.
            let resolved = path.isEmpty ? "" : (path.hasPrefix("/") ? URL(fileURLWithPath: path) : base.appendingPathComponent(path))
                .standardizedFileURL.path
            entries.append(Entry(path: resolved, role: role, group: group, kind: try optionalString("kind"),
                                 text: try optionalString("text"), line: line))
        }
        guard entries.contains(where: { $0.role == .query }) else {
            throw EvaluationError.badManifest(path: url.path, reason: "it has no queries")
        }
        guard entries.contains(where: { $0.role != .query }) else {
            throw EvaluationError.badManifest(path: url.path, reason: "it has no gallery or distractor images")
        }
        return EvaluationManifest(entries: entries)
    }
}

/// Why an evaluation could not run.
public enum EvaluationError: Error, Sendable, Equatable, CustomStringConvertible {
    case unreadableManifest(path: String, reason: String)
    case badManifestLine(path: String, line: Int, reason: String)
    case badManifest(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadableManifest(let path, let reason): return "cannot read manifest \(path): \(reason)"
        case .badManifestLine(let path, let line, let reason): return "\(path), line \(line): \(reason)"
        case .badManifest(let path, let reason): return "manifest \(path) cannot be evaluated: \(reason)"
        }
    }
}
