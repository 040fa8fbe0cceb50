import Embedding
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
        /// How close the hit is by the model's calibrated thresholds: `copy` (very likely a copy
        /// of the query: cropped, recompressed, recoloured...), `similar`, or `weak` (about what
        /// unrelated images score). Nil when the model has no calibrated similar threshold and
        /// the hit is not a copy.
        public let label: ModelManifest.MatchLabel?
        /// Near-duplicates of this hit folded into it when copies are collapsed, best first.
        public let copies: [String]
        /// The colours covering at least `ColorProfile.defaultShare` of the image, most first (nil:
        /// the item has no colour profile).
        public let colors: [String]?
        /// The part of the stored image that matched, when its region tile scored it (a detail of
        /// a scene found through the scene's quarter); nil when the whole image did.
        public let part: ImageRegion?
        /// The crop of the query that matched, when a crop scored it (`QueryCrops`: a copy framed
        /// in a larger picture found through the crop around it); nil when the whole query did.
        public let queryPart: ImageRegion?

        /// Whether the score reaches the model's calibrated duplicate threshold.
        public var duplicate: Bool { label == .copy }

        init(item: Item, score: Float, label: ModelManifest.MatchLabel?, copies: [String] = [], part: ImageRegion? = nil,
             queryPart: ImageRegion? = nil) {
            self.part = part
            self.queryPart = queryPart
            id = item.id
            path = item.sourcePath
            self.score = score
            width = item.width
            height = item.height
            metadata = item.metadata
            self.label = label
            self.copies = copies
            colors = item.colors.flatMap(ColorProfile.init(json:))?.dominant(minimum: ColorProfile.defaultShare)
        }
    }

    /// What the answer amounts to, by its best hit: a copy of the query was found, something
    /// similar, or no close match (the best hit is weak, or there are no hits).
    public enum Match: String, Sendable, Encodable {
        case copy, similar, none

        /// Nil when the model is not calibrated well enough to say.
        init?(best: Float?, manifest: ModelManifest) {
            guard let best else {
                self = .none
                return
            }
            switch manifest.label(score: best) {
            case .copy: self = .copy
            case .similar: self = .similar
            case .weak: self = .none
            case nil: return nil
            }
        }
    }

    public let model: String
    /// Milliseconds from reading the query file to ranked hits (decode, embed, search).
    public let tookMs: Double
    /// How many items of the collection have a vector for `model` (all were compared).
    public let searched: Int
    public let hits: [Hit]
    /// Nil when the model has no calibrated thresholds to judge by.
    public let match: Match?
    /// With a metadata filter: how many items pass it (whatever their vectors).
    public var filtered: Int?
    /// Why an answer is empty or smaller than it might be, and what to do about it.
    public var notes: [Note] = []
    /// How words of the query were read (nil for a query without words, or with interpretation off).
    public var parsed: ParsedQuery?

    /// A remark on the answer, with a stable code for programs and a sentence for people:
    /// `empty_collection`, `no_vectors_for_model`, `unknown_field`, `filter_matches_nothing`,
    /// `text_truncated`, `missing_vectors` (a cascade's model lacks some images' vectors),
    /// `no_color_profiles`, `conflicting_query` (words that no item can satisfy), `words_not_ranked`.
    public struct Note: Sendable, Encodable, Equatable {
        public let code: String
        public let message: String
    }
}

// MARK: JSON

extension SearchResponse.Hit {
    /// The hit as the CLI and the API both print it: score to six decimals, metadata as an object.
    public var jsonObject: [String: Any] {
        [
            "id": id, "path": path, "score": (Double(score) * 1e6).rounded() / 1e6, "width": width, "height": height,
            "metadata": Metadata.object(metadata) ?? NSNull(), "duplicate": duplicate,
            "label": label?.rawValue ?? NSNull(), "copies": copies, "colors": colors ?? NSNull(),
            "part": part.map(Self.regionObject) ?? NSNull(),
            "query_part": queryPart.map(Self.regionObject) ?? NSNull(),
        ]
    }

    static func regionObject(_ region: ImageRegion) -> [String: Any] {
        ["x": region.x, "y": region.y, "width": region.width, "height": region.height]
    }
}

extension SearchResponse {
    /// The answer as one JSON object with stable keys (`model`, `took_ms`, `searched`, `match`, `hits`, `filtered`, `notes`), the
    /// one shape of every front door. `hit` rewrites each hit's object (a server hides the source
    /// path and adds links, say).
    public func jsonObject(hit: ([String: Any], Hit) -> [String: Any] = { object, _ in object }) -> [String: Any] {
        [
            "model": model,
            "took_ms": (tookMs * 10).rounded() / 10,
            "searched": searched,
            "match": match?.rawValue ?? NSNull(),
            "hits": hits.map { hit($0.jsonObject, $0) },
            "filtered": filtered.map { $0 as Any } ?? NSNull(),
            "notes": notes.map { ["code": $0.code, "message": $0.message] },
            "parsed": parsed?.jsonObject ?? NSNull(),
        ]
    }
}
