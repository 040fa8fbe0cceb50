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
    let decoder: ImageDecoder
    let maxBytes: Int

    /// The stages a search's options turn on, in the order they run: registered stages first
    /// (the cascade), then those the caller passed in `SearchOptions.stages`.
    static func stages(for options: SearchOptions) -> [any RankingStage] {
        var stages: [any RankingStage] = []
        let cascade = options.cascade.filter { $0 != options.model }
        if !cascade.isEmpty { stages.append(CascadeStage(models: cascade)) }
        return stages + options.stages
    }

    func run(_ query: Query, options: SearchOptions) throws -> SearchResponse {
        let embedder = try models.embedder(options.model)
        let started = DispatchTime.now()
        let region = query.region ?? (query.isImage ? options.region : nil)
        if region != nil && !query.isImage { throw EngineError.regionNeedsImage }
        let encoder = QueryEncoder(query, region: region, store: store, models: models, decoder: decoder, maxBytes: maxBytes)
        try encoder.prepare()
        try models.check(embedder, record: false)
        let manifest = embedder.manifest
        guard let vector = try encoder.vector(for: embedder, required: true) else {
            throw EngineError.noVector(id: "the query", model: manifest.name)
        }
        let top = max(0, options.top)
        let parameters = SearchParameters(efSearch: options.efSearch)
        let filter = try options.filter.map { filter in
            do {
                return SearchFilter.ids(try store.itemIDs(matching: filter))
            } catch {
                throw MetadataFilter.ParseError(field: "", reason: "the store could not evaluate the filter (\(error))")
            }
        }
        let index = try indexes.index(for: manifest)
        let stages = Self.stages(for: options)
        let pool = stages.reduce(top) { max($0, $1.candidatePool(top: top, collection: index.count)) }
        var candidates: [Candidate]
        if let pushed = try store.nearest(model: manifest.name, to: vector, k: pool, filter: options.filter) {
            candidates = pushed.map { Candidate(id: $0.id, score: $0.score) }
        } else {
            candidates = try index.search(vector, k: pool, filter: filter, parameters: parameters)
                .map { Candidate(id: $0.id, score: $0.score) }
        }
        let context = RankingContext(model: manifest, top: top, parameters: parameters, filter: filter, encoder: encoder,
                                     models: models, indexes: indexes, store: store)
        for stage in stages {
            if stage.needsVectors { candidates = try withVectors(candidates, index: index, model: manifest.name) }
            candidates = try stage.rank(candidates, context: context)
        }
        return try hits(Array(candidates.prefix(top)), manifest: manifest, searched: index.count, started: started)
    }

    /// The main model's vectors of the candidates that lack one: from the index when it holds them
    /// at full precision (an exact index does), else from the store in one lookup.
    private func withVectors(_ candidates: [Candidate], index: any VectorIndex, model: String) throws -> [Candidate] {
        let missing = candidates.filter { $0.vector == nil }.map(\.id)
        if missing.isEmpty { return candidates }
        var found: [String: [Float]] = [:]
        if let held = index.fullPrecisionVectors(for: missing) {
            for (id, vector) in zip(missing, held) { found[id] = vector }
        }
        let unheld = missing.filter { found[$0] == nil }
        if !unheld.isEmpty {
            for (id, vector) in try store.vectors(model: model, ids: unheld) where found[id] == nil { found[id] = vector }
        }
        return candidates.map { candidate in
            var candidate = candidate
            if candidate.vector == nil { candidate.vector = found[candidate.id] }
            return candidate
        }
    }

    /// Hydration: the store's record of each ranked item (an item removed meanwhile is left out).
    private func hits(_ ranked: [Candidate], manifest: ModelManifest, searched: Int, started: DispatchTime) throws -> SearchResponse {
        let items = try store.items(ids: ranked.map(\.id))
        let hits = ranked.compactMap { candidate -> SearchResponse.Hit? in
            guard let item = items[candidate.id] else { return nil }
            return SearchResponse.Hit(item: item, score: candidate.score,
                                      duplicate: manifest.duplicateThreshold.map { candidate.score >= $0 } ?? false)
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e6
        return SearchResponse(model: manifest.name, tookMs: elapsed, searched: searched, hits: hits)
    }
}
