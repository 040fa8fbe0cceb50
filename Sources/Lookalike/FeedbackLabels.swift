import Foundation
import Storage

/// What the feedback log came to as labels for `tune --feedback`.
public struct FeedbackSummary: Sendable, Codable, Equatable {
    /// Marks read (the newest mark of a hit for a query counts, older ones of the same pair do not).
    public var marks: Int
    /// Searches with a hit marked relevant or clicked: each is a training vector too.
    public var queries: Int
    /// Marks saying relevant, clicks included.
    public var relevant: Int
    public var notRelevant: Int
    /// Groups of a query and its relevant hits, merged where they share a hit.
    public var groups: Int
}

enum FeedbackLabels {
    /// Every search with a hit marked relevant or clicked makes one group of its query vector and
    /// those hits (groups that share a hit are one); a hit marked not relevant and relevant
    /// nowhere gets a label of its own, so that it teaches what differs. Marks come newest first:
    /// the newest mark of a hit for a query is the one that counts.
    static func labels(_ marks: [Feedback]) -> (labels: [String: String], queries: [(vector: [Float], label: String)], summary: FeedbackSummary) {
        var queryIndex: [[Float]: Int] = [:]
        var queryVectors: [[Float]] = []
        var seen: Set<String> = []
        var positive: [(query: Int, item: String)] = []
        var negative: [(query: Int, item: String)] = []
        for mark in marks {
            let query: Int
            if let known = queryIndex[mark.query] {
                query = known
            } else {
                query = queryVectors.count
                queryIndex[mark.query] = query
                queryVectors.append(mark.query)
            }
            guard seen.insert("\(query) \(mark.itemID)").inserted else { continue }
            if mark.mark == .notRelevant { negative.append((query, mark.itemID)) } else { positive.append((query, mark.itemID)) }
        }

        var groups = UnionFind()
        for (query, item) in positive { groups.join("q\(query)", "i" + item) }

        var labels: [String: String] = [:]
        var roots: Set<String> = []
        for node in Array(groups.members) {
            let group = groups.root(node)
            roots.insert(group)
            if node.hasPrefix("i") { labels[String(node.dropFirst())] = "feedback-" + group }
        }
        let answered = Set(positive.map(\.query))
        for (query, item) in negative where labels[item] == nil && answered.contains(query) {
            labels[item] = "feedback-apart-" + item
        }
        let queries = answered.sorted().map { (vector: queryVectors[$0], label: "feedback-" + groups.root("q\($0)")) }
        let summary = FeedbackSummary(marks: positive.count + negative.count, queries: answered.count, relevant: positive.count,
                                      notRelevant: negative.count, groups: roots.count)
        return (labels, queries, summary)
    }
}
