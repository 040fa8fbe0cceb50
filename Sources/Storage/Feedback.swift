import Foundation

/// One mark a person gave a hit of a search: relevant, not relevant, or a click (opening the hit:
/// weak evidence of relevance). Kept with the search's query vector, so later searches near the
/// same query can use it.
public struct Feedback: Sendable, Equatable {
    public enum Mark: String, Codable, Sendable, CaseIterable {
        case relevant
        case notRelevant = "not_relevant"
        case click
    }

    /// The model whose vector `query` is.
    public var model: String
    /// The query's vector by `model` (unit length).
    public var query: [Float]
    public var itemID: String
    public var mark: Mark
    public var at: Date

    public init(model: String, query: [Float], itemID: String, mark: Mark, at: Date = Date()) {
        self.model = model
        self.query = query
        self.itemID = itemID
        self.mark = mark
        self.at = at
    }
}
