import Foundation

/// Pairs of images someone judged alike or not, for `tune --pairs`: JSON lines
/// (`{"a": ..., "b": ..., "similar": true}`) or CSV with the columns `a`, `b` and `similar`. `a`
/// and `b` name a stored item by its id or by its image's path (relative paths from the file's
/// folder); `similar` is true or false (also 1 or 0, yes or no).
public struct PairsFile: Sendable {
    public struct Pair: Sendable, Equatable {
        public let a: String
        public let b: String
        public let similar: Bool
        /// The line of the file the pair is on.
        public let line: Int
    }

    public let path: String
    public let pairs: [Pair]

    /// Pairs given as they are (over the API), `source` naming where they came from in reports.
    public init(source: String, pairs: [(a: String, b: String, similar: Bool)]) {
        path = source
        self.pairs = pairs.enumerated().map { index, pair in
            Pair(a: pair.a.trimmingCharacters(in: .whitespaces), b: pair.b.trimmingCharacters(in: .whitespaces), similar: pair.similar,
                 line: index + 1)
        }
    }

    public init(path: String) throws {
        let url = URL(fileURLWithPath: path)
        let text = try MetadataFile.text(of: url, path: path, what: "pairs file")
        let folder = url.deletingLastPathComponent()
        let objects = url.pathExtension.lowercased() == "csv"
            ? try MetadataFile.csvObjects(text, file: path, required: ["a", "b", "similar"], text: ["a", "b", "similar"])
            : try MetadataFile.jsonLinesObjects(text, file: path)
        var pairs: [Pair] = []
        for (line, object) in objects {
            var ends: [String] = []
            for key in ["a", "b"] {
                guard let value = object[key] as? String, !value.trimmingCharacters(in: .whitespaces).isEmpty else {
                    throw MetadataFile.ParseError(path: path, line: line, reason: "\"\(key)\" names no item (an item id or an image path)")
                }
                let trimmed = value.trimmingCharacters(in: .whitespaces)
                ends.append(Self.isItemID(trimmed) ? trimmed : URL(fileURLWithPath: trimmed, relativeTo: folder).standardizedFileURL.path)
            }
            guard let similar = Self.flag(object["similar"]) else {
                throw MetadataFile.ParseError(path: path, line: line, reason: "\"similar\" must be true or false (or 1/0, yes/no)")
            }
            pairs.append(Pair(a: ends[0], b: ends[1], similar: similar, line: line))
        }
        guard !pairs.isEmpty else { throw MetadataFile.ParseError(path: path, line: 0, reason: "the pairs file holds no pairs") }
        self.path = path
        self.pairs = pairs
    }

    /// Sixteen lowercase hexadecimal digits: how items are named.
    static func isItemID(_ text: String) -> Bool {
        text.count == 16 && text.allSatisfy { $0.isHexDigit && !$0.isUppercase }
    }

    static func flag(_ value: Any?) -> Bool? {
        switch value {
        case let flag as Bool: return flag
        case let number as NSNumber: return number == 1 ? true : number == 0 ? false : nil
        case let text as String:
            switch text.trimmingCharacters(in: .whitespaces).lowercased() {
            case "true", "1", "yes": return true
            case "false", "0", "no": return false
            default: return nil
            }
        default: return nil
        }
    }
}

/// What a pairs file came to: the groups its similar pairs join (connected components), each a
/// label for `tune`, and what could not be used.
public struct PairsSummary: Sendable, Codable, Equatable {
    public var pairs: Int
    public var similar: Int
    public var notSimilar: Int
    /// Pairs with an end that names no stored item.
    public var unmatched: Int
    /// Up to five of those ends, as written.
    public var unmatchedExamples: [String]
    /// Pairs marked not similar whose ends similar pairs join into one group anyway.
    public var conflicts: Int
    /// Groups of two items or more.
    public var groups: Int
}

enum PairLabels {
    /// A label per item named by a pair: items joined by similar pairs share one; an item only in
    /// pairs marked not similar has one of its own (it teaches what differs).
    static func labels(_ file: PairsFile, resolve: (String) -> String?) -> (labels: [String: String], summary: PairsSummary) {
        var groups = UnionFind()
        var summary = PairsSummary(pairs: file.pairs.count, similar: 0, notSimilar: 0, unmatched: 0, unmatchedExamples: [],
                                   conflicts: 0, groups: 0)
        var apart: [(String, String)] = []
        for pair in file.pairs {
            if pair.similar { summary.similar += 1 } else { summary.notSimilar += 1 }
            guard let a = resolve(pair.a), let b = resolve(pair.b) else {
                summary.unmatched += 1
                for end in [pair.a, pair.b] where resolve(end) == nil && summary.unmatchedExamples.count < 5 {
                    summary.unmatchedExamples.append(end)
                }
                continue
            }
            if pair.similar {
                groups.join(a, b)
            } else {
                groups.add(a)
                groups.add(b)
                apart.append((a, b))
            }
        }
        summary.conflicts = apart.filter { groups.root($0.0) == groups.root($0.1) }.count
        var labels: [String: String] = [:]
        var sizes: [String: Int] = [:]
        for id in Array(groups.members) {
            let group = groups.root(id)
            labels[id] = "group-" + group
            sizes[group, default: 0] += 1
        }
        summary.groups = sizes.values.filter { $0 >= 2 }.count
        return (labels, summary)
    }
}
