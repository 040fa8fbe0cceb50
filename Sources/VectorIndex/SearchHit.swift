/// One result of a vector search: the item's id and its similarity to the query (cosine, higher is closer).
public struct SearchHit: Sendable, Equatable {
    public let id: String
    public let score: Float

    public init(id: String, score: Float) {
        self.id = id
        self.score = score
    }
}
