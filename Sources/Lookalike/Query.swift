import Imaging

/// What a search looks for. Every front door (the CLI, the HTTP API, `eval`) builds one and hands
/// it to `Engine.search(_:options:)`.
///
/// ```swift
/// try engine.search(.image(path: "query.jpg"), options: SearchOptions(top: 10))
/// try engine.search(.item("596aa1e7cb875eb7"), options: SearchOptions())
/// try engine.search(.examples([.item("596aa1e7cb875eb7"), .item("665e5abf8a539907", weight: -0.5)]), options: SearchOptions())
/// ```
public struct Query: Sendable {
    public enum Source: Sendable {
        /// An image file, read when the search runs.
        case imageFile(path: String)
        /// An encoded image (JPEG, PNG, ...).
        case imageBytes([UInt8])
        /// A stored item: its stored vector is the query, nothing is decoded ("more like this").
        case item(id: String)
        /// Stored items or vectors with weights: positive ones pull, negative ones push
        /// ("more like these, less like those"). The query is the normalised weighted sum.
        case examples([Example])
        /// Words, for a model whose embedding space has a text encoder.
        case text(String)
    }

    /// One example of `Source.examples`.
    public struct Example: Sendable {
        public enum Of: Sendable {
            case item(id: String)
            /// A vector made by `model` (in that model's space).
            case vector([Float], model: String)
            /// An encoded image, embedded by the searching model.
            case image(bytes: [UInt8])
            /// An image file, read and embedded by the searching model.
            case imageFile(path: String)
        }

        public let of: Of
        /// Positive: more like this; negative: less like this.
        public let weight: Float

        public init(_ of: Of, weight: Float = 1) {
            self.of = of
            self.weight = weight
        }

        public static func item(_ id: String, weight: Float = 1) -> Example {
            Example(.item(id: id), weight: weight)
        }
    }

    public var source: Source
    /// For an image: search with this part of it only (fractions of the upright image).
    public var region: ImageRegion?
    /// Words beside an image, a stored item or examples ("this photo, but red under $50"): read
    /// by `PlainLanguage`, their colours, prices and order narrow and sort the search.
    public var words: String?

    public init(_ source: Source, region: ImageRegion? = nil, words: String? = nil) {
        self.source = source
        self.region = region
        self.words = words
    }

    public static func image(path: String, region: ImageRegion? = nil) -> Query {
        Query(.imageFile(path: path), region: region)
    }

    public static func image(bytes: [UInt8], region: ImageRegion? = nil) -> Query {
        Query(.imageBytes(bytes), region: region)
    }

    public static func item(_ id: String) -> Query {
        Query(.item(id: id))
    }

    public static func examples(_ examples: [Example]) -> Query {
        Query(.examples(examples))
    }

    public static func text(_ words: String) -> Query {
        Query(.text(words))
    }

    /// Rocchio's weights for refining a query by examples: the query counts 1, the liked items
    /// together `liked` (each its share), the unliked together `-unliked`.
    public static let rocchio = (liked: Float(0.75), unliked: Float(0.25))

    /// This query steered by stored items, "more like these, not like those", as every front door
    /// asks it: the query's own image or item weighs 1 (examples keep their weights), the liked
    /// items together `rocchio.liked`, the unliked together `-rocchio.unliked`. A query with
    /// nothing of its own (no examples) is the liked items, weighing 1 together.
    public func refined(like: [String], unlike: [String]) throws -> Query {
        guard !like.isEmpty || !unlike.isEmpty else { return self }
        var examples: [Example]
        switch source {
        case .imageFile(let path): examples = [Example(.imageFile(path: path))]
        case .imageBytes(let bytes): examples = [Example(.image(bytes: bytes))]
        case .item(let id): examples = [.item(id)]
        case .examples(let given): examples = given
        case .text: throw EngineError.badExamples("a query in words cannot be steered by stored items yet")
        }
        let liked = examples.isEmpty ? 1 : Self.rocchio.liked
        examples += like.map { Example.item($0, weight: liked / Float(like.count)) }
            + unlike.map { Example.item($0, weight: -Self.rocchio.unliked / Float(unlike.count)) }
        return .examples(examples)
    }

    /// Whether the query is words.
    public var isText: Bool {
        if case .text = source { return true }
        return false
    }

    /// Whether the query is an image to decode (a region applies only to those).
    public var isImage: Bool {
        switch source {
        case .imageFile, .imageBytes: return true
        case .item, .examples, .text: return false
        }
    }
}
