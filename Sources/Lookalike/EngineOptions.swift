import Embedding
import Imaging
import Storage

/// Errors of the engine itself.
public enum EngineError: Error, Sendable, CustomStringConvertible {
    case incompatibleVectors(model: String, reason: String)
    case unknownItem(id: String)
    case noVector(id: String, model: String)
    case noDuplicateThreshold(model: String)
    case noTextEncoder(model: String, space: String)
    case badExamples(String)
    case regionNeedsImage
    /// A search option out of its range, named with the reason.
    case badOption(String)

    public var description: String {
        switch self {
        case .noDuplicateThreshold(let model):
            return "model \(model) has no duplicate threshold, which a cascade and collapsing copies need (set duplicateThreshold in its manifest)"
        case .noTextEncoder(let model, let space):
            return "model \(model) cannot answer words: no text encoder for its embedding space (\(space)) is installed"
        case .badExamples(let reason), .badOption(let reason):
            return reason
        case .regionNeedsImage:
            return "a region applies to an image query; a stored item or examples use stored vectors"
        case .unknownItem(let id):
            return "no item with id \(id)"
        case .noVector(let id, let model):
            return "item \(id) has no vector from model \(model) (it was added with another model)"
        case .incompatibleVectors(let model, let reason):
            return "the store's vectors for model \(model) do not fit the model (\(reason)); was the model changed?"
        }
    }
}

/// Options of `Engine.add`.
public struct AddOptions: Sendable {
    public var recursive: Bool
    public var model: String
    public var metadata: MetadataFile?
    /// When set, only files that lie inside these folders once symbolic links are resolved are
    /// added; the others fail with a reason (a server indexes only the folders it was given).
    public var allowedRoots: [String]?
    /// Region tiles (`Tiles`): beside the whole image, the vectors of its four quarters and its
    /// centre, so a detail of a scene finds the scene. Images already stored without tiles gain them.
    public var tiles: Bool

    public init(recursive: Bool = false, model: String = ModelManifest.defaultName, metadata: MetadataFile? = nil,
                allowedRoots: [String]? = nil, tiles: Bool = false) {
        self.tiles = tiles
        self.recursive = recursive
        self.model = model
        self.metadata = metadata
        self.allowedRoots = allowedRoots
    }
}

/// Options of a search.
public struct SearchOptions: Sendable {
    public var top: Int
    public var model: String
    /// HNSW beam width for this query (no effect while the collection is searched exactly).
    public var efSearch: Int?
    /// Only items whose metadata passes.
    public var filter: MetadataFilter?
    /// Search with this part of the query image only (for a `Query` without a region of its own).
    public var region: ImageRegion?
    /// Copy detectors that back `model` up, a cascade: each searches too, and a stored image it
    /// scores past its own duplicate threshold is lifted onto `model`'s scale (`model`'s threshold
    /// plus that margin), so it ranks, and is marked, as a copy. `sscd` backed by `phash` is the
    /// best copy detector measured (docs/QUALITY.md). Both models need their vectors in the store.
    public var cascade: [String]
    /// Average query expansion: the query joined by its best `expansion` neighbours searches
    /// again (`ExpansionStage`). Nil: off.
    public var expansion: Int?
    /// Fold near-duplicates of a hit into it (`CollapseStage`): one rank per copy group, the
    /// others listed as the hit's `copies`.
    public var collapseCopies: Bool
    /// Maximal marginal relevance with this λ (`DiversityStage`): 1 is the plain ranking, lower
    /// trades relevance for variety. Nil: off.
    public var diversity: Float?
    /// Score each item by the best of its whole image and its region tiles (`Tiles`), so a detail
    /// finds the scene it comes from; items without tiles score by their whole image. Only for
    /// image queries of a model whose items were added with tiles.
    public var tiles: Bool
    /// Query-side crops (`QueryCrops`): when the whole query image finds no copy, crops of it
    /// search too, so a copy framed in a larger picture is found. Nil: the model's default (on for
    /// the copy detectors). Only for image queries.
    public var crops: Bool?
    /// Hits scoring below this are left out (after every stage).
    public var minScore: Float?
    /// Use the marks people gave earlier searches near this query (`FeedbackStage`); on by
    /// default, and a no-op while nobody has marked anything near it.
    public var feedback: Bool
    /// Ranking stages to run after the registered ones, in order.
    public var stages: [any RankingStage]
    /// Read words as a shopper types them (`PlainLanguage`): colour words filter by the images'
    /// colours, price phrases by `priceField`, "not X" steers away, "cheapest first" sorts. Off:
    /// the words go to the text model as they are.
    public var interpretText: Bool = true
    /// The metadata field prices are kept in, for price phrases.
    public var priceField: String = PlainLanguage.defaultPriceField

    public init(top: Int = 10, model: String = ModelManifest.defaultName, efSearch: Int? = nil,
                filter: MetadataFilter? = nil, region: ImageRegion? = nil, cascade: [String] = [],
                expansion: Int? = nil, collapseCopies: Bool = false, diversity: Float? = nil, minScore: Float? = nil,
                feedback: Bool = true, tiles: Bool = true, crops: Bool? = nil, stages: [any RankingStage] = []) {
        self.tiles = tiles
        self.crops = crops
        self.top = top
        self.model = model
        self.efSearch = efSearch
        self.filter = filter
        self.region = region
        self.cascade = cascade
        self.expansion = expansion
        self.collapseCopies = collapseCopies
        self.diversity = diversity
        self.minScore = minScore
        self.feedback = feedback
        self.stages = stages
    }
}
