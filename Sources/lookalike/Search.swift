import ArgumentParser
import Foundation
import Lookalike

struct Search: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Find the stored images most like a query image, a stored item, examples, or words.",
        discussion: """
            The query is an image file, or a stored item (--item), or examples: --like and --unlike \
            stored items ("more like these, not like those"), with or without an image or an item.

            With --json the output is one object: {"model", "took_ms", "searched", "match", "hits": [{"id", \
            "path", "score", "width", "height", "metadata", "duplicate", "label", "copies", "colors", "part", "query_part"}]}, hits best first; \
            score is the cosine similarity; label is copy, similar or weak by the model's calibrated \
            thresholds (duplicate is label == copy); match says what the best hit amounts to: copy, \
            similar, or none (no close match); copies lists the near-duplicates folded into a hit by \
            --collapse; part is the region of the stored image that matched ({"x", "y", "width", \
            "height"}, fractions) when a region tile scored it (images added with --tiles), else null; \
            query_part is the crop of the query image that matched when a crop scored it (--crops), else null.
            """
    )

    @Argument(help: "The query image.")
    var image: String?

    @Option(help: ArgumentHelp("Search with a stored item's vector instead of an image (\"more like this\").", valueName: "id"))
    var item: String?

    @Option(help: ArgumentHelp(
        "Search in words: images whose vectors of a model made of words (default model `words`, added with "
            + "`lookalike add PATH... --model words`) are nearest the text. Shoppers' phrases are understood: colours "
            + "(\"red shoes\", from the images' own colours), prices (\"under $50\", \"between 200 and 400\", on --price-field), "
            + "\"not X\" and \"cheapest first\". Beside an image or --item, the words narrow and sort that search "
            + "(\"but blue under 100\").",
        valueName: "text"))
    var text: String?

    @Option(name: .customLong("price-field"), help: ArgumentHelp("The metadata field prices are kept in, for price phrases.", valueName: "field"))
    var priceField: String = PlainLanguage.defaultPriceField

    @Flag(help: "Give --text to the text model as it is: no colours, prices or order read from it.")
    var literal = false

    @Option(help: ArgumentHelp("A stored item the hits should be more like (repeatable).", valueName: "id"))
    var like: [String] = []

    @Option(help: ArgumentHelp("A stored item the hits should be less like (repeatable).", valueName: "id"))
    var unlike: [String] = []

    // Unconditional parsing: `--top -1` is a value out of range, not a missing value.
    @Option(name: [.short, .long], parsing: .unconditional, help: "How many hits to return.")
    var top = 10

    @Option(help: ArgumentHelp("The embedding model (see `lookalike models`); default the store's default model (efficientnet-lite0-gem "
                + "unless `lookalike models --default` chose another), or words with --text."))
    var model: String?

    /// The model searched: the one given, else the default for the kind of query (the store's
    /// default model for images and items).
    func searchedModel(_ engine: Engine) throws -> String {
        if let model { return model }
        return text != nil && image == nil && item == nil && like.isEmpty ? ModelManifest.words.name : try engine.defaultModel()
    }

    @Option(help: ArgumentHelp(
        "A copy detector that backs --model up (repeatable): an image it scores past its own duplicate threshold ranks, "
            + "and is marked, as a copy. `--model sscd --cascade phash` is the best copy detector measured; "
            + "the store needs vectors of both (`lookalike add --model sscd --model phash ...`).",
        valueName: "model"))
    var cascade: [String] = []

    @Option(name: .customLong("ef"), parsing: .unconditional, help: ArgumentHelp(
        "HNSW beam width for this query (collections above the approximate-search threshold); more finds more true neighbours, slower.",
        valueName: "n"))
    var efSearch: Int?

    @Option(help: ArgumentHelp(
        "Only items whose metadata passes this JSON filter, e.g. '{\"color\": \"red\", \"price\": {\"$lt\": 50}}' "
            + "(operators $eq $ne $lt $lte $gt $gte $in $exists; a dotted key reaches a nested field).",
        valueName: "json"))
    var filter: String?

    @Option(help: ArgumentHelp("Search with a part of the query image: x,y,width,height as fractions of it, e.g. 0.5,0,0.5,1 for the right half.",
                               valueName: "x,y,w,h"))
    var region: String?

    @Flag(help: "Fold near-duplicates of a hit into it: one rank per copy group, the others listed with it.")
    var collapse = false

    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Diversify the hits (maximal marginal relevance): 1 is the plain ranking, lower values trade relevance for variety; 0.7 is a mild setting.",
        valueName: "λ"))
    var diversity: Float?

    @Option(parsing: .unconditional, help: ArgumentHelp("Query expansion: search again with the query joined by its best n neighbours.", valueName: "n"))
    var expand: Int?

    @Flag(name: .customLong("no-feedback"), help: "Ignore the marks given to earlier searches near this one (`lookalike feedback`).")
    var noFeedback = false

    @Option(name: .customLong("min-score"), parsing: .unconditional, help: ArgumentHelp("Leave out hits scoring below this cosine similarity.", valueName: "score"))
    var minScore: Float?

    @Flag(name: .customLong("no-tiles"), help: "Score by whole images only, even where images were added with --tiles.")
    var noTiles = false

    @Flag(inversion: .prefixedNo, help: ArgumentHelp(
        "When the whole query image finds no copy, search with 18 crops of it too, so a copy framed in a larger picture "
            + "(a screenshot, padding, letterbox bars) is found (default: on for the copy detectors sscd and sscd-distilled)."))
    var crops: Bool?

    @Flag(help: "Print the answer as JSON.")
    var json = false

    @OptionGroup var storeOptions: StoreOptions

    func validate() throws {
        let sources = (image == nil ? 0 : 1) + (item == nil ? 0 : 1)
        if sources == 0 && text == nil && like.isEmpty { throw ValidationError("give a query: an image, --item ID, --text WORDS, or --like ID") }
        if sources > 1 { throw ValidationError("give one query: an image or --item (with --text, words narrow it)") }
        if let text {
            if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { throw ValidationError("--text is empty: give some words") }
            if sources == 0 && (!like.isEmpty || !unlike.isEmpty) {
                throw ValidationError("--like and --unlike steer image and item queries, not words (yet)")
            }
            if sources > 0 && literal { throw ValidationError("--literal words beside an image have nothing to do: drop one of them") }
        }
        if priceField.isEmpty || priceField.count > 200 { throw ValidationError("--price-field must name a metadata field") }
        if region != nil && image == nil { throw ValidationError("--region applies to a query image") }
        if let diversity, !(0...1).contains(diversity) { throw ValidationError("--diversity must be between 0 and 1") }
        if let expand, !(1...100).contains(expand) { throw ValidationError("--expand must be between 1 and 100") }
        if let minScore, !(-1...1).contains(minScore) { throw ValidationError("--min-score must be between -1 and 1") }
        guard (1...10_000).contains(top) else { throw ValidationError("--top must be between 1 and 10000") }
        if let efSearch, !(1...10_000).contains(efSearch) { throw ValidationError("--ef must be between 1 and 10000") }
        if let filter {
            do { _ = try MetadataFilter(json: filter) } catch { throw ValidationError("--filter: \(error)") }
        }
        if let region {
            do { _ = try ImageRegion(parsing: Substring(region)) } catch { throw ValidationError("--region: \(error)") }
        }
    }

    func run() throws {
        let response: SearchResponse
        do {
            let engine = try storeOptions.engine(createStore: false)
            var options = SearchOptions(top: top, model: try searchedModel(engine), efSearch: efSearch, filter: try filter.map { try MetadataFilter(json: $0) },
                                        region: try region.map { try ImageRegion(parsing: Substring($0)) }, cascade: cascade,
                                        expansion: expand, collapseCopies: collapse, diversity: diversity, minScore: minScore,
                                        feedback: !noFeedback, tiles: !noTiles, crops: crops)
            options.interpretText = !literal
            options.priceField = priceField
            response = try engine.search(try query(), options: options)
        } catch let error as ImagingError {
            throw fail(InputError(path: image ?? "", underlying: error))
        } catch let error as IngestError {
            throw fail(InputError(path: image ?? "", underlying: error))
        } catch {
            throw fail(error)
        }
        if json {
            try printJSON(response.jsonObject())
            return
        }
        var line = "\(plural(response.hits.count, "hit")) from \(plural(response.searched, "image"))"
        if let filtered = response.filtered {
            line += ", \(filtered) of them passing the filter"
        }
        print(line + String(format: " (model %@, %.1f ms)", response.model, response.tookMs))
        if let parsed = response.parsed, parsed.isStructured {
            let words = parsed.text.isEmpty ? "" : " · words \"\(parsed.text)\""
            print("understood: " + parsed.parts.map(\.label).joined(separator: " · ") + words)
        }
        for note in response.notes {
            print(note.message)
            switch note.code {
            case "no_vectors_for_model": print("  to embed them: `lookalike add PATH... --model \(response.model)`")
            case "empty_collection": print("  to add some: `lookalike add PATH...`")
            default: break
            }
        }
        if response.match == SearchResponse.Match.none && !response.hits.isEmpty {
            print("no close match: every hit is weak, about what unrelated images score with model \(response.model); the nearest anyway:")
        }
        for (rank, hit) in response.hits.enumerated() {
            let label = hit.label.map { "  (\($0.rawValue))" } ?? ""
            let copies = hit.copies.isEmpty ? "" : "  +\(hit.copies.count) more \(hit.copies.count == 1 ? "copy" : "copies")"
            var part = hit.part.map { "  [its \(Self.partName($0))]" } ?? ""
            if let crop = hit.queryPart {
                part += String(format: "  [through the query's crop at %.2f,%.2f,%.2f,%.2f]", crop.x, crop.y, crop.width, crop.height)
            }
            print(String(format: "%3d  %.4f  %@  %@%@%@%@", rank + 1, hit.score, hit.id, hit.path, label, copies, part))
        }
    }

    /// A region tile in words: "top-left quarter", "centre", or its fractions.
    static func partName(_ region: ImageRegion) -> String {
        switch (region.x, region.y, region.width, region.height) {
        case (0, 0, 0.5, 0.5): return "top-left quarter"
        case (0.5, 0, 0.5, 0.5): return "top-right quarter"
        case (0, 0.5, 0.5, 0.5): return "bottom-left quarter"
        case (0.5, 0.5, 0.5, 0.5): return "bottom-right quarter"
        case (0.25, 0.25, 0.5, 0.5): return "centre"
        default: return "part at \(region.x),\(region.y),\(region.width),\(region.height)"
        }
    }

    /// The query the arguments describe: an image or a stored item (or only liked items),
    /// steered by --like and --unlike.
    func query() throws -> Query {
        if let text, image == nil, item == nil, like.isEmpty { return .text(text) }
        let base: Query = image.map { .image(path: $0) } ?? item.map { .item($0) } ?? .examples([])
        var query = try base.refined(like: like, unlike: unlike)
        query.words = text
        return query
    }
}

/// An error about one named input file.
struct InputError: Error, CustomStringConvertible {
    let path: String
    let underlying: Error
    var description: String { "\(path): \(underlying)" }
}
