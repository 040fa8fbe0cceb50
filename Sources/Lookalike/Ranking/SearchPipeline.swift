import Dispatch
import Embedding
import Imaging
import Storage
import VectorIndex

/// One search, whatever asked for it: the query becomes a vector of the main model, the model's
/// index (or the store, when it searches vectors itself) gives candidates, the ranking stages
/// re-rank them in order, and the best `top` become hits with the store's paths, sizes and
/// metadata.
///
/// ```
/// Query ─► QueryEncoder ─► candidates (index or store) ─► stage ─► stage ─► … ─► top ─► hits
/// ```
struct SearchPipeline {
    let store: any Store
    let models: Models
    let indexes: ModelIndexes
    let tileIndexes: ModelIndexes
    let decoder: ImageDecoder
    let maxBytes: Int

    /// The stages a search's options turn on, in the order they run: the registered ones (the
    /// cascade, which decides scores; feedback and query expansion, which search again; collapsing copies;
    /// diversity, which only reorders), then those the caller passed in `SearchOptions.stages`.
    static func stages(for options: SearchOptions) throws -> [any RankingStage] {
        var stages: [any RankingStage] = []
        let cascade = options.cascade.filter { $0 != options.model }
        if !cascade.isEmpty { stages.append(CascadeStage(models: cascade)) }
        if options.feedback { stages.append(FeedbackStage()) }
        if let expansion = options.expansion { stages.append(try ExpansionStage(neighbours: expansion)) }
        if options.collapseCopies { stages.append(CollapseStage()) }
        if let diversity = options.diversity { stages.append(try DiversityStage(lambda: diversity)) }
        return stages + options.stages
    }

    func run(_ given: Query, options: SearchOptions) throws -> SearchResponse {
        let embedder = try models.embedder(options.model)
        let started = DispatchTime.now()
        let (query, parsed) = try interpreted(given, options: options)
        let region = query.region ?? (query.isImage ? options.region : nil)
        if region != nil && !query.isImage { throw EngineError.regionNeedsImage }
        let encoder = QueryEncoder(query, region: region, store: store, models: models, decoder: decoder, maxBytes: maxBytes)
        try encoder.prepare()
        try models.check(embedder, record: false)
        let manifest = embedder.manifest
        var vector = try encoder.vector(for: embedder)
        if let parsed, !parsed.without.isEmpty, case .text = query.source {
            vector = try steered(vector, awayFrom: parsed.without, manifest: manifest)
        }
        let top = max(0, options.top)
        let searchFilter = Self.joined(options.filter, parsed?.filter)
        let passing = try searchFilter.map { filter in
            do {
                return try store.itemIDs(matching: filter)
            } catch {
                throw MetadataFilter.ParseError(field: "", reason: "the store could not evaluate the filter (\(error))")
            }
        }
        let filter = passing.map { SearchFilter.ids($0) }
        var source = CandidateSource(store: store, indexes: indexes, filter: filter, metadataFilter: searchFilter,
                                     parameters: SearchParameters(efSearch: options.efSearch))
        if options.tiles && query.isImage {
            source.tiles = try store.vectorCount(model: Tiles.model(of: manifest.name)) > 0 ? (manifest.name, tileIndexes) : nil
        }
        let collection = try source.collectionSize(manifest)
        let stages = try Self.stages(for: options)
        if let minScore = options.minScore, !minScore.isFinite {
            throw EngineError.badOption("the minimum score must be a number between -1 and 1")
        }
        let pool = stages.reduce(top) { max($0, $1.candidatePool(top: top, collection: collection)) }
        if let conflict = parsed?.conflict {
            // Words no item can satisfy: an empty answer that says why, with the reading shown.
            var response = try hits([], manifest: manifest, searched: collection, started: started, order: nil, priceField: "")
            response.parsed = parsed
            response.notes = [SearchResponse.Note(code: "conflicting_query", message: conflict)]
            return response
        }
        var candidates = try source.candidates(manifest, vector, k: pool)
        var cropNote: SearchResponse.Note?
        if query.isImage, options.crops ?? QueryCrops.byDefault(manifest),
           QueryCrops.needed(best: candidates.first?.score, manifest: manifest) {
            // Crops only add to the whole image's answer: if they cannot be made, that answer stands.
            do {
                if let crops = try encoder.cropVectors(for: embedder, regions: QueryCrops.regions) {
                    candidates = QueryCrops.merged(candidates, crops: try crops.map { try source.candidates(manifest, $0, k: pool) },
                                                   k: pool)
                    cropNote = SearchResponse.Note(
                        code: "query_crops",
                        message: "the whole image found no copy, so \(QueryCrops.regions.count) crops of it were searched too "
                            + "(a copy framed in a larger picture is found through the crop around it)")
                }
            } catch {
                cropNote = SearchResponse.Note(code: "query_crops_failed",
                                               message: "the crops of the query image could not be searched (\(error)); "
                                                   + "the answer is the whole image's")
            }
        }
        let context = RankingContext(model: manifest, top: top, source: source, encoder: encoder, models: models, store: store)
        for stage in stages {
            if stage.needsVectors { candidates = try withVectors(candidates, manifest: manifest, source: source) }
            candidates = try stage.rank(candidates, context: context)
        }
        if let minScore = options.minScore { candidates.removeAll { $0.score < minScore } }
        var response = try hits(Array(candidates.prefix(top)), manifest: manifest, searched: collection, started: started,
                                order: parsed?.order, priceField: options.priceField)
        response.filtered = passing?.count
        response.parsed = parsed
        response.notes = try notes(manifest: manifest, collection: collection, passing: passing, filter: searchFilter)
        if let parsed, !query.isText, !parsed.text.isEmpty || !parsed.without.isEmpty {
            let words = ([parsed.text] + parsed.without.map { "not " + $0 }).filter { !$0.isEmpty }.joined(separator: ", ")
            response.notes.append(SearchResponse.Note(
                code: "words_not_ranked",
                message: "beside an image, words narrow and sort by colour and price; \"\(words)\" did not change the ranking "
                    + "(search in words alone to rank by them)"))
        }
        let backing = options.cascade.filter { $0 != options.model }
        if !backing.isEmpty {
            response.notes += try cascadeNotes(main: manifest, count: collection, backing: backing, context: context, source: source)
        }
        if let cropNote { response.notes.append(cropNote) }
        if encoder.textWasTruncated {
            response.notes.append(SearchResponse.Note(code: "text_truncated", message: "the text is longer than the text model "
                + "takes; only its beginning was searched"))
        }
        return response
    }

    /// The query with its words read (`PlainLanguage`), when the options ask for it: a query in
    /// words keeps for the text model only what was not understood as a colour, price or order.
    private func interpreted(_ query: Query, options: SearchOptions) throws -> (Query, ParsedQuery?) {
        if case .text(let words) = query.source {
            try QueryEncoder.checkLength(words)
            guard options.interpretText else { return (query, nil) }
            let parsed = PlainLanguage.parse(words, priceField: options.priceField)
            guard parsed.isStructured else { return (query, parsed) }
            var rewritten = query
            // Nothing but understood parts: the colours are the words ("red"), else the text as given.
            let text = !parsed.text.isEmpty ? parsed.text : parsed.colors.isEmpty ? words : parsed.colors.joined(separator: " ")
            rewritten.source = .text(text)
            return (rewritten, parsed)
        }
        guard let words = query.words, words.contains(where: { !$0.isWhitespace }) else { return (query, nil) }
        guard options.interpretText else {
            throw EngineError.badOption("words beside an image are read for colours, prices and order; that reading is off")
        }
        try QueryEncoder.checkLength(words)
        return (query, PlainLanguage.parse(words, priceField: options.priceField))
    }

    /// Both filters' conditions (nil when neither has any).
    static func joined(_ first: MetadataFilter?, _ second: MetadataFilter?) -> MetadataFilter? {
        let conditions = (first?.conditions ?? []) + (second?.conditions ?? [])
        return conditions.isEmpty ? nil : MetadataFilter(conditions: conditions)
    }

    /// A query in words pushed away from excluded words ("boots not leather"), the way examples
    /// push away from unliked items: each excluded phrase together weighs `-Query.rocchio.unliked`.
    private func steered(_ vector: [Float], awayFrom excluded: [String], manifest: ModelManifest) throws -> [Float] {
        guard let encoder = try models.textEncoder(space: manifest.embeddingSpace) else { return vector }
        var result = VectorNormalization.normalized(vector)
        let weight = -Query.rocchio.unliked / Float(excluded.count)
        for encoded in try encoder.embed(excluded) {
            VectorMath.add(VectorNormalization.normalized(encoded.vector), scaledBy: weight, to: &result)
        }
        return VectorNormalization.normalized(result)
    }

    /// A cascade compares an image by a backing model only where that model has its vector: an add
    /// stopped between its models (`add --model a --model b` killed after a's pass) leaves some
    /// without. Says which model lacks how many, and how to fill them in (an add of the same
    /// images with that model embeds only those missing).
    private func cascadeNotes(main: ModelManifest, count: Int, backing: [String], context: RankingContext,
                              source: CandidateSource) throws -> [SearchResponse.Note] {
        var counts = [(name: main.name, count: count)]
        for name in backing { counts.append((name, try source.collectionSize(try context.manifest(name)))) }
        let most = counts.map(\.count).max() ?? 0
        return counts.filter { $0.count < most }.map { name, count in
            SearchResponse.Note(code: "missing_vectors",
                                message: "model \(name) has vectors for \(count) of the \(most) images the cascade's models hold: the other "
                                    + "\(most - count) are not compared by it; add the images again with model \(name) to embed only those")
        }
    }

    /// Why an answer came out empty, with what to do: a collection without vectors of the model,
    /// or a filter no item passes (naming the fields no item has, with the nearest one that exists).
    private func notes(manifest: ModelManifest, collection: Int, passing: Set<String>?, filter: MetadataFilter?) throws -> [SearchResponse.Note] {
        if collection == 0 {
            let stats = try store.stats()
            let others = stats.vectors.filter { $0.key != manifest.name && $0.value > 0 }.keys.sorted()
            if stats.items > 0, let other = others.first {
                let images = stats.items == 1 ? "1 image" : "\(stats.items) images"
                return [SearchResponse.Note(
                    code: "no_vectors_for_model",
                    message: "the collection holds \(images), none embedded with model \(manifest.name) (it has vectors of "
                        + "\(others.joined(separator: ", "))): add the images again with model \(manifest.name), or search with model \(other)")]
            }
            return [SearchResponse.Note(code: "empty_collection",
                                        message: "the collection has no images for model \(manifest.name) yet: add some")]
        }
        guard let filter, let passing, passing.isEmpty else { return [] }
        let (known, anyColors) = try sampledFields()
        var notes: [SearchResponse.Note] = []
        var named = Set<String>()
        if filter.conditions.contains(where: { $0.field == .colors }), !anyColors {
            notes.append(SearchResponse.Note(code: "no_color_profiles",
                                             message: "no image of the collection has a colour profile (they are made when images are "
                                                 + "added; images stored before get one when a model they lack embeds them, "
                                                 + "e.g. `lookalike add PATH... --model phash`)"))
        }
        for condition in filter.conditions where condition.field == .metadata {
            let field = condition.path.joined(separator: ".")
            guard !known.contains(field), named.insert(field).inserted else { continue }
            var message = "no item has the metadata field \"\(field)\""
            if let near = Spelling.closest(to: field, among: known) {
                message += " (did you mean \"\(near)\"?)"
            } else if !known.isEmpty && known.count <= 20 {
                message += "; the fields are \(known.sorted().joined(separator: ", "))"
            }
            notes.append(SearchResponse.Note(code: "unknown_field", message: message))
        }
        if notes.isEmpty {
            notes.append(SearchResponse.Note(code: "filter_matches_nothing",
                                             message: "no item's metadata passes the filter (every condition must hold; "
                                                 + "a text value such as \"007\" does not equal the number 7)"))
        }
        return notes
    }

    /// The metadata field names (dotted for nested ones) of the first items of the store, and
    /// whether any of them has a colour profile: enough to name a misspelt field without reading a
    /// large collection whole.
    private func sampledFields(sample: Int = 5000) throws -> (fields: Set<String>, anyColors: Bool) {
        var fields = Set<String>()
        var anyColors = false
        func collect(_ object: [String: Any], prefix: String, depth: Int) {
            for (key, value) in object {
                fields.insert(prefix + key)
                if depth < 3, let nested = value as? [String: Any] { collect(nested, prefix: prefix + key + ".", depth: depth + 1) }
            }
        }
        var read = 0
        try store.forEachItemPage(pageSize: 500) { page in
            for item in page {
                if let object = Metadata.object(item.metadata) { collect(object, prefix: "", depth: 0) }
                anyColors = anyColors || item.colors != nil
            }
            read += page.count
            return read < sample
        }
        return (fields, anyColors)
    }

    /// The main model's vectors of the candidates that lack one: from the index when it holds them
    /// at full precision (an exact index does), else from the store in one lookup.
    private func withVectors(_ candidates: [Candidate], manifest: ModelManifest, source: CandidateSource) throws -> [Candidate] {
        let missing = candidates.filter { $0.vector == nil }.map(\.id)
        if missing.isEmpty { return candidates }
        var found: [String: [Float]] = [:]
        if let held = try source.heldVectors(manifest, ids: missing) {
            for (id, vector) in zip(missing, held) { found[id] = vector }
        }
        let unheld = missing.filter { found[$0] == nil }
        if !unheld.isEmpty {
            for (id, vector) in try store.vectors(model: manifest.name, ids: unheld) where found[id] == nil { found[id] = vector }
        }
        return candidates.map { candidate in
            var candidate = candidate
            if candidate.vector == nil { candidate.vector = found[candidate.id] }
            return candidate
        }
    }

    /// Hydration: the store's record of each ranked item (an item removed meanwhile is left out).
    /// With `order`, the ranked hits are sorted by their price (`priceField`); hits without one last.
    private func hits(_ ranked: [Candidate], manifest: ModelManifest, searched: Int, started: DispatchTime,
                      order: ParsedQuery.Order?, priceField: String) throws -> SearchResponse {
        let items = try store.items(ids: ranked.map(\.id))
        var hits = ranked.compactMap { candidate -> SearchResponse.Hit? in
            guard let item = items[candidate.id] else { return nil }
            return SearchResponse.Hit(item: item, score: candidate.score, label: manifest.label(score: candidate.score),
                                      copies: candidate.copies, part: candidate.part, queryPart: candidate.queryPart)
        }
        if let order {
            let path = priceField.split(separator: ".").map(String.init)
            let prices = hits.map { Self.number(at: path, in: $0.metadata) }
            let sorted = zip(hits, prices).enumerated().sorted { left, right in
                switch (left.element.1, right.element.1) {
                case (let a?, let b?) where a != b: return order == .priceAscending ? a < b : a > b
                case (.some, nil): return true
                case (nil, .some): return false
                default: return left.offset < right.offset
                }
            }
            hits = sorted.map(\.element.0)
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e6
        return SearchResponse(model: manifest.name, tookMs: elapsed, searched: searched, hits: hits,
                              match: SearchResponse.Match(best: hits.map(\.score).max(), manifest: manifest))
    }
}

extension SearchPipeline {
    /// The number at a dotted path of a metadata text (nil when missing or not a number).
    static func number(at path: [String], in metadata: String?) -> Double? {
        guard let metadata, var value = try? JSONValue.parse(metadata) else { return nil }
        for key in path {
            guard case .object(let fields) = value, let next = fields[key] else { return nil }
            value = next
        }
        switch value {
        case .integer(let number): return Double(number)
        case .number(let number): return number
        default: return nil
        }
    }
}

/// Where candidates come from, the same for the main model and for any model a stage asks:
/// the store itself when it searches vectors, else the model's index; with the search's filter
/// and parameters either way.
struct CandidateSource {
    let store: any Store
    let indexes: ModelIndexes
    /// The filter as the engine's indexes apply it (the ids that pass).
    let filter: SearchFilter?
    /// The same filter as the store renders it.
    let metadataFilter: MetadataFilter?
    let parameters: SearchParameters
    /// The model whose region tiles the search uses, with the index of its parts (`Tiles`): an
    /// item of that model then scores the best of its whole image and its parts. Other models
    /// (a cascade's) score whole images.
    var tiles: (model: String, indexes: ModelIndexes)?

    init(store: any Store, indexes: ModelIndexes, filter: SearchFilter?, metadataFilter: MetadataFilter?,
         parameters: SearchParameters, tiles: (model: String, indexes: ModelIndexes)? = nil) {
        self.store = store
        self.indexes = indexes
        self.filter = filter
        self.metadataFilter = metadataFilter
        self.parameters = parameters
        self.tiles = tiles
    }

    /// How many items have a vector of the model: what a search covers.
    func collectionSize(_ manifest: ModelManifest) throws -> Int {
        store.searchesVectors ? try store.vectorCount(model: manifest.name) : try indexes.index(for: manifest).count
    }

    /// The `k` best items for `vector`, a vector of `manifest`'s model, best first.
    func candidates(_ manifest: ModelManifest, _ vector: [Float], k: Int) throws -> [Candidate] {
        let whole: [Candidate]
        if store.searchesVectors {
            whole = try store.nearest(model: manifest.name, to: vector, k: k, filter: metadataFilter)
                .map { Candidate(id: $0.id, score: $0.score) }
        } else {
            whole = try indexes.index(for: manifest).search(vector, k: k, filter: filter, parameters: parameters)
                .map { Candidate(id: $0.id, score: $0.score) }
        }
        guard let tiles, tiles.model == manifest.name, k > 0 else { return whole }
        // The parts' nearest, enough of them for k items even when one item's parts crowd the
        // list; each item keeps its best score, its whole image's or a part's less the margin.
        let parts = filter.map { filter in
            SearchFilter(matchingCount: filter.matchingCount.map { $0 * Tiles.parts }) { filter.allows(Tiles.item(ofPart: $0)) }
        }
        let hits = try tiles.indexes.index(for: Tiles.manifest(of: manifest)).search(vector, k: k * Tiles.parts, filter: parts,
                                                                              parameters: parameters)
        return Candidate.bestPerItem(whole + hits.map {
            Candidate(id: Tiles.item(ofPart: $0.id), score: $0.score - Tiles.margin, part: Tiles.region(ofPart: $0.id))
        }, k: k)
    }

    /// The vectors the model's index holds at full precision for `ids`, when it holds them.
    func heldVectors(_ manifest: ModelManifest, ids: [String]) throws -> [[Float]?]? {
        store.searchesVectors ? nil : try indexes.index(for: manifest).fullPrecisionVectors(for: ids)
    }
}
