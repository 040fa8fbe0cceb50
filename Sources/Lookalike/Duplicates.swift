import Dispatch
import Embedding
import Foundation
import Storage
import VectorIndex

/// Options of `Engine.duplicateGroups`.
public struct DuplicateOptions: Sendable {
    public var model: String
    /// Pairs scoring at least this are copies; nil: the model's calibrated duplicate threshold.
    public var threshold: Float?
    /// Neighbours looked up per item: a group larger than this is still found whole (through its
    /// members' own neighbours), but each item only links to this many.
    public var neighbours: Int

    public init(model: String = ModelManifest.defaultName, threshold: Float? = nil, neighbours: Int = 10) {
        self.model = model
        self.threshold = threshold
        self.neighbours = neighbours
    }
}

/// Near-duplicate groups of a whole collection.
public struct DuplicateReport: Sendable {
    /// One group: the item most alike to the rest, and its copies with their similarity to it.
    public struct Group: Sendable {
        public let representative: Item
        /// Best first; every one scores at least the threshold against the representative.
        public let copies: [(item: Item, score: Float)]
    }

    public let model: String
    public let threshold: Float
    /// Items with a vector of the model: all were looked at.
    public let searched: Int
    /// Largest first, then by the representative's id.
    public let groups: [Group]
    public let seconds: Double
}

extension Engine {
    /// The collection's near-duplicate groups by `options.model`, from the index: each item's
    /// nearest neighbours give the pairs scoring at least the threshold (not all pairs: a
    /// collection of a million items costs a million searches, not a trillion comparisons); the
    /// connected components of those pairs are then split so that no chain of "a is like b, b is
    /// like c" puts two unlike images in one group: a group is a representative (the member alike
    /// to the most others) and the members that reach the threshold against it, and the rest of
    /// the component is grouped again the same way.
    public func duplicateGroups(_ options: DuplicateOptions) throws -> DuplicateReport {
        let started = DispatchTime.now()
        let embedder = try models.embedder(options.model)
        try models.check(embedder, record: false)
        let manifest = embedder.manifest
        guard let threshold = options.threshold ?? manifest.duplicateThreshold else {
            throw EngineError.noDuplicateThreshold(model: manifest.name)
        }
        guard threshold.isFinite, (-1...1).contains(threshold) else {
            throw EngineError.badOption("the duplicate threshold must be a cosine similarity between -1 and 1")
        }
        guard (1...1_000).contains(options.neighbours) else {
            throw EngineError.badOption("neighbours must be between 1 and 1000")
        }
        let source = CandidateSource(store: store, indexes: indexes, filter: nil, metadataFilter: nil, parameters: SearchParameters())
        // The collection is walked a page at a time, so memory holds one page of vectors, the
        // pairs found, and then only the vectors of the images that have a pair.
        let workers = max(1, ProcessInfo.processInfo.activeProcessorCount)
        var searched = 0
        var adjacent: [String: Set<String>] = [:]  // the pairs at the threshold, both ways
        try store.forEachVectorPage(model: manifest.name, pageSize: 1_000) { page in
            let lists = page.parallelMap(workers: workers) { entry -> Result<[Candidate], Error> in
                Result { try source.candidates(manifest, entry.vector, k: options.neighbours + 1) }
            }
            for (entry, list) in zip(page, lists) {
                searched += 1
                for neighbour in try list.get() where neighbour.id != entry.id && neighbour.score >= threshold {
                    adjacent[entry.id, default: []].insert(neighbour.id)
                    adjacent[neighbour.id, default: []].insert(entry.id)
                }
            }
            return true
        }
        let components = Self.components(adjacent)
        var vectors: [String: [Float]] = [:]
        for (id, vector) in try store.vectors(model: manifest.name, ids: components.flatMap { $0 }) { vectors[id] = vector }
        var grouped: [(representative: String, copies: [(String, Float)])] = []
        for component in components {
            grouped += Self.split(component.filter { vectors[$0] != nil }, adjacent: adjacent, vectors: vectors, threshold: threshold)
        }
        let items = try store.items(ids: grouped.flatMap { [$0.representative] + $0.copies.map(\.0) })
        let groups = grouped.compactMap { group -> DuplicateReport.Group? in
            guard let representative = items[group.representative] else { return nil }
            let copies = group.copies.compactMap { id, score in items[id].map { (item: $0, score: score) } }
            return copies.isEmpty ? nil : DuplicateReport.Group(representative: representative, copies: copies)
        }.sorted { ($0.copies.count, $1.representative.id) > ($1.copies.count, $0.representative.id) }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
        return DuplicateReport(model: manifest.name, threshold: threshold, searched: searched, groups: groups, seconds: seconds)
    }

    /// The connected components of the pair graph, each sorted, in the order of their first id
    /// (only images with a pair are in the graph, so every component has two or more).
    static func components(_ adjacent: [String: Set<String>]) -> [[String]] {
        var seen: Set<String> = []
        var components: [[String]] = []
        for start in adjacent.keys.sorted() where !seen.contains(start) {
            var component: [String] = []
            var frontier = [start]
            seen.insert(start)
            while let id = frontier.popLast() {
                component.append(id)
                for next in adjacent[id] ?? [] where seen.insert(next).inserted { frontier.append(next) }
            }
            components.append(component.sorted())
        }
        return components
    }

    /// A connected component cut into groups with no chaining: the member linked to the most
    /// others leads a group of every member that reaches the threshold against it (measured
    /// exactly); then the same again on the rest.
    static func split(_ component: [String], adjacent: [String: Set<String>], vectors: [String: [Float]],
                      threshold: Float) -> [(representative: String, copies: [(String, Float)])] {
        var remaining = Set(component)
        var groups: [(representative: String, copies: [(String, Float)])] = []
        while remaining.count > 1 {
            func links(_ id: String) -> Int { adjacent[id]?.reduce(0) { remaining.contains($1) ? $0 + 1 : $0 } ?? 0 }
            guard let lead = remaining.max(by: { (links($0), $1) < (links($1), $0) }) else { break }
            let leadVector = vectors[lead] ?? []
            var copies: [(String, Float)] = []
            for member in remaining where member != lead {
                let score = VectorMath.dot(leadVector, vectors[member] ?? [])
                if score >= threshold { copies.append((member, score)) }
            }
            copies.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
            remaining.remove(lead)
            if copies.isEmpty { continue }
            groups.append((lead, copies))
            remaining.subtract(copies.map { $0.0 })
        }
        return groups
    }
}

// MARK: JSON

extension DuplicateReport {
    /// The report as the CLI and the API both print it: `model`, `threshold`, `searched`,
    /// `took_ms`, and `groups`, each `{"size", "representative": ITEM, "copies": [ITEM + "score"]}`.
    /// `item` rewrites each item's object (a server hides the source path and adds links, say).
    public func jsonObject(item: ([String: Any], Item) -> [String: Any] = { object, _ in object }) -> [String: Any] {
        func object(_ stored: Item) -> [String: Any] {
            item(["id": stored.id, "path": stored.sourcePath, "width": stored.width, "height": stored.height,
                  "added_at": ISO8601DateFormatter().string(from: stored.addedAt)], stored)
        }
        return [
            "model": model, "threshold": Double(threshold), "searched": searched,
            "took_ms": (seconds * 10_000).rounded() / 10,
            "groups": groups.map { group -> [String: Any] in
                [
                    "size": group.copies.count + 1, "representative": object(group.representative),
                    "copies": group.copies.map { copy in
                        object(copy.item).merging(["score": (Double(copy.score) * 1e6).rounded() / 1e6]) { _, new in new }
                    },
                ]
            },
        ]
    }
}
