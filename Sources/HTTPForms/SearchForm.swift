import Imaging
import Storage

/// The options of a search given in its query string (`?top=5&filter=...&region=...`), read and
/// checked: every value in range, the filter parsed, the region inside the image. What is not
/// given stays nil. Errors are a `FormError`, a `MetadataFilter.ParseError` or an
/// `ImageRegion.Invalid`, each naming the field.
public struct SearchForm: Sendable {
    public static let topRange = 1...1000
    public static let efRange = 1...10_000
    public static let expandRange = 1...100
    public static let scoreRange: ClosedRange<Float> = -1...1

    public var top: Int?
    public var model: String?
    public var ef: Int?
    public var filter: MetadataFilter?
    public var region: ImageRegion?
    public var cascade: [String]?
    public var collapse: Bool?
    public var diversity: Float?
    public var expand: Int?
    public var minScore: Float?
    public var feedback: Bool?
    public var tiles: Bool?
    public var crops: Bool?

    public init(_ query: QueryString) throws {
        top = try query.integer("top", range: Self.topRange)
        model = query["model"].map(String.init)
        ef = try query.integer("ef", range: Self.efRange)
        filter = try query["filter"].map { try MetadataFilter(json: String($0)) }
        region = try query["region"].map { try ImageRegion(parsing: $0) }
        cascade = query.list("cascade")
        collapse = try query.flag("collapse")
        diversity = try query.number("diversity", range: 0...1)
        expand = try query.integer("expand", range: Self.expandRange)
        minScore = try query.number("min_score", range: Self.scoreRange)
        feedback = try query.flag("feedback")
        tiles = try query.flag("tiles")
        crops = try query.flag("crops")
    }
}
