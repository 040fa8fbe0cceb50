import Foundation
import Storage

/// The answer to a search: ranked hits, best first.
public struct SearchResponse: Sendable, Encodable {
    public struct Hit: Sendable, Encodable, Equatable {
        public let id: String
        public let path: String
        /// Cosine similarity to the query, in [-1, 1]; higher is more alike.
        public let score: Float
        public let width: Int
        public let height: Int
        /// The item's metadata as a JSON object text, if it has any.
        public let metadata: String?
        /// Whether the score reaches the model's calibrated duplicate threshold: very likely a copy
        /// of the query (cropped, recompressed, recoloured...), not just a similar image.
        public let duplicate: Bool

        init(item: Item, score: Float, duplicate: Bool) {
            id = item.id
            path = item.sourcePath
            self.score = score
            width = item.width
            height = item.height
            metadata = item.metadata
            self.duplicate = duplicate
        }
    }

    public let model: String
    /// Milliseconds from reading the query file to ranked hits (decode, embed, search).
    public let tookMs: Double
    /// How many items of the collection have a vector for `model` (all were compared).
    public let searched: Int
    public let hits: [Hit]
}

// MARK: JSON

extension SearchResponse.Hit {
    /// The hit as the CLI and the API both print it: score to six decimals, metadata as an object.
    public var jsonObject: [String: Any] {
        [
            "id": id, "path": path, "score": (Double(score) * 1e6).rounded() / 1e6, "width": width, "height": height,
            "metadata": Metadata.object(metadata) ?? NSNull(), "duplicate": duplicate,
        ]
    }
}

extension SearchResponse {
    /// The answer as one JSON object with stable keys (`model`, `took_ms`, `searched`, `hits`), the
    /// one shape of every front door. `hit` rewrites each hit's object (a server hides the source
    /// path and adds links, say).
    public func jsonObject(hit: ([String: Any], Hit) -> [String: Any] = { object, _ in object }) -> [String: Any] {
        [
            "model": model,
            "took_ms": (tookMs * 10).rounded() / 10,
            "searched": searched,
            "hits": hits.map { hit($0.jsonObject, $0) },
        ]
    }
}
