import ArgumentParser
import Foundation
import Lookalike

struct Search: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Find the stored images most like a query image.",
        discussion: """
            With --json the output is one object: {"model", "took_ms", "searched", "hits": [{"id", "path", \
            "score", "width", "height", "metadata", "duplicate"}]}, hits best first; score is the cosine similarity; \
            duplicate is true when the score reaches the model's calibrated copy threshold.
            """
    )

    @Argument(help: "The query image.")
    var image: String

    @Option(name: [.short, .long], help: "How many hits to return.")
    var top = 10

    @Option(help: "The embedding model (see `lookalike models`).")
    var model = ModelManifest.defaultName

    @Option(help: ArgumentHelp(
        "A copy detector that backs --model up (repeatable): an image it scores past its own duplicate threshold ranks, "
            + "and is marked, as a copy. `--model sscd --cascade phash` is the best copy detector measured; "
            + "the store needs vectors of both (`lookalike add --model sscd --model phash ...`).",
        valueName: "model"))
    var cascade: [String] = []

    @Option(name: .customLong("ef"), help: ArgumentHelp(
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

    @Flag(help: "Print the answer as JSON.")
    var json = false

    @OptionGroup var storeOptions: StoreOptions

    func validate() throws {
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
        let engine: Engine
        do {
            let options = SearchOptions(top: top, model: model, efSearch: efSearch, filter: try filter.map { try MetadataFilter(json: $0) },
                                        region: try region.map { try ImageRegion(parsing: Substring($0)) }, cascade: cascade)
            engine = try storeOptions.engine(createStore: false)
            response = try engine.search(.image(path: image), options: options)
        } catch let error as ImagingError {
            throw fail(InputError(path: image, underlying: error))
        } catch let error as IngestError {
            throw fail(InputError(path: image, underlying: error))
        } catch {
            throw fail(error)
        }
        if json {
            try printJSON(response.jsonObject())
            return
        }
        print(String(format: "%d hits from %d images (model %@, %.1f ms)", response.hits.count, response.searched,
                     response.model, response.tookMs))
        if response.searched == 0 {
            // A store made with another model (the default before it changed, say) has items but
            // no vectors of this one: say how to get them.
            let stats = try? engine.stats()
            let others = (stats?.vectors ?? [:]).filter { $0.key != response.model && $0.value > 0 }.keys.sorted()
            if let stats, stats.items > 0, !others.isEmpty {
                print("the store holds \(stats.items) image\(stats.items == 1 ? "" : "s"), none embedded with model \(response.model) (it has vectors of "
                      + "\(others.joined(separator: ", "))): run `lookalike add PATH... --model \(response.model)` on them, "
                      + "or search with `--model \(others[0])`")
            } else {
                print("the store has no images for model \(response.model) yet: add some with `lookalike add PATH...`")
            }
        }
        for (rank, hit) in response.hits.enumerated() {
            print(String(format: "%3d  %.4f  %@  %@%@", rank + 1, hit.score, hit.id, hit.path, hit.duplicate ? "  (copy)" : ""))
        }
    }
}

/// An error about one named input file.
struct InputError: Error, CustomStringConvertible {
    let path: String
    let underlying: Error
    var description: String { "\(path): \(underlying)" }
}
