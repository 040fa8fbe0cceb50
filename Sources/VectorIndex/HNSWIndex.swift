import Foundation
import LookalikeSupport

/// Approximate nearest-neighbour search with a Hierarchical Navigable Small World graph
/// (Malkov and Yashunin, 2016): a stack of proximity graphs, sparse at the top, where a search
/// descends greedily and then explores the bottom layer with a beam of width `efSearch`.
///
/// - Inserts are incremental. Searches run concurrently with each other; an insert holds the
///   write lock only for the one vector it adds, so readers wait at most one insert.
/// - Removal leaves a tombstone: the node still guides searches but is never returned.
///   `compact()` rebuilds the graph without tombstones; it runs by itself once they are half the graph.
/// - Filtered search checks the filter while exploring (rejected nodes still guide the search);
///   when few items pass, the planner scores just those exactly instead.
///
/// ```swift
/// let index = HNSWIndex(dimension: 1280, metric: .cosine)
/// try index.add(id: "a1", vector: embedding)
/// let hits = try index.search(query, k: 10, filter: nil)
/// ```
public final class HNSWIndex: VectorIndex, @unchecked Sendable {
    public struct Parameters: Sendable, Codable, Equatable {
        /// Links per node on the upper layers (twice as many on the bottom layer).
        public var m: Int
        /// Beam width while inserting: higher builds a better graph, more slowly.
        public var efConstruction: Int
        /// Default beam width while searching: higher finds more true neighbours, more slowly.
        public var efSearch: Int
        /// Seed of the level generator, so a build is reproducible.
        public var seed: UInt64
        /// When a filter lets at most this many items through, they are scored exactly instead.
        public var exactFilterThreshold: Int

        public init(m: Int = 16, efConstruction: Int = 200, efSearch: Int = 64, seed: UInt64 = 42,
                    exactFilterThreshold: Int = 2_000) {
            self.m = max(2, m)
            self.efConstruction = max(1, efConstruction)
            self.efSearch = max(1, efSearch)
            self.seed = seed
            self.exactFilterThreshold = max(0, exactFilterThreshold)
        }
    }

    public let dimension: Int
    public let metric: Metric
    public let parameters: Parameters
    let maxLinks: Int
    let maxLinksBottom: Int
    private let levelScale: Double

    let lock = ReaderWriterLock()
    private let visitedPool = VisitedPool()
    /// Pruning candidates of `link`; used only under the writer lock.
    private var linkScratch: [Neighbor] = []
    // Everything below is guarded by `lock` (internal, not private, for the snapshot code).
    var vectors: [Float] = []
    var levels: [Int32] = []
    /// Bottom-layer links: for node n, slot n * (maxLinksBottom + 1) holds the count, then the links.
    var bottomLinks: [Int32] = []
    /// Upper-layer links per node: for layer l >= 1, slot (l - 1) * (maxLinks + 1) holds the count.
    var upperLinks: [[Int32]] = []
    var labels: [String] = []
    var nodeOf: [String: Int32] = [:]
    var removed: [Bool] = []
    var removedCount = 0
    var entryPoint: Int32 = -1
    var topLevel = -1
    var random: SplitMix64

    /// `dimension` is at least 1 (a smaller value is taken as 1, and every vector is then refused).
    public init(dimension: Int, metric: Metric = .cosine, parameters: Parameters = Parameters()) {
        self.dimension = max(1, dimension)
        self.metric = metric
        self.parameters = parameters
        maxLinks = parameters.m
        maxLinksBottom = 2 * parameters.m
        levelScale = 1 / log(Double(parameters.m))
        random = SplitMix64(seed: parameters.seed)
    }

    public var count: Int { lock.reading { labels.count - removedCount } }

    /// Nodes in the graph, tombstones included.
    public var nodeCount: Int { lock.reading { labels.count } }

    public func contains(id: String) -> Bool { lock.reading { nodeOf[id] != nil } }

    /// The ids of the live (not removed) items.
    public func liveIDs() -> [String] { lock.reading { Array(nodeOf.keys) } }

    /// Approximate memory held by vectors and links, in bytes.
    public var memoryBytes: Int {
        lock.reading {
            vectors.count * 4 + bottomLinks.count * 4 + upperLinks.reduce(0) { $0 + $1.count * 4 } + levels.count * 4
        }
    }

    // MARK: Adding

    public func add(id: String, vector: [Float]) throws {
        guard vector.count == dimension else { throw VectorIndexError.dimensionMismatch(expected: dimension, got: vector.count) }
        let prepared = metric == .cosine ? FlatIndex.normalized(vector) : vector
        lock.writing {
            if let old = nodeOf[id] { tombstone(old) }
            insert(id: id, vector: prepared)
            if removedCount > 1_000 && removedCount * 2 > labels.count { rebuildWithoutTombstones() }
        }
    }

    private func insert(id: String, vector: [Float]) {
        let node = Int32(labels.count)
        let level = randomLevel()
        labels.append(id)
        nodeOf[id] = node
        removed.append(false)
        levels.append(Int32(level))
        vectors.append(contentsOf: vector)
        bottomLinks.append(contentsOf: repeatElement(0, count: maxLinksBottom + 1))
        upperLinks.append(level > 0 ? [Int32](repeating: 0, count: level * (maxLinks + 1)) : [])

        guard entryPoint >= 0 else {
            entryPoint = node
            topLevel = level
            return
        }
        let visited = visitedPool.take()
        defer { visitedPool.give(visited) }
        vectors.withUnsafeBufferPointer { all in
            // The vector was just appended and the dimension is at least 1: the buffer is never empty.
            guard let start = all.baseAddress else { return }
            let query = start + Int(node) * dimension
            var entry = Neighbor(distance: distance(query, all, entryPoint), node: entryPoint)
            if topLevel > level {
                for layer in stride(from: topLevel, to: level, by: -1) {
                    entry = greedyClosest(query, all, from: entry, layer: layer)
                }
            }
            var entries = [entry]
            for layer in stride(from: min(level, topLevel), through: 0, by: -1) {
                let found = searchLayer(query, all, entries: entries, ef: parameters.efConstruction, layer: layer,
                                        visited: visited, accept: nil).sortedByDistance()
                let chosen = selectNeighbors(found, limit: maxLinks, all)
                setLinks(node, layer: layer, to: chosen.map(\.node))
                for neighbor in chosen { link(neighbor.node, to: node, layer: layer, all) }
                // The next layer down starts from the closest node found here.
                entries = Array(found.prefix(1))
            }
        }
        if level > topLevel {
            topLevel = level
            entryPoint = node
        }
    }

    /// Adds `newNode` to `node`'s links on `layer`, pruning with the heuristic when they are full.
    /// Runs under the writer lock, so it reuses one scratch array instead of allocating per call.
    private func link(_ node: Int32, to newNode: Int32, layer: Int, _ all: UnsafeBufferPointer<Float>) {
        if appendLink(node, layer: layer, newNode) { return }
        guard let start = all.baseAddress else { return }
        let limit = layer == 0 ? maxLinksBottom : maxLinks
        let base = start + Int(node) * dimension
        linkScratch.removeAll(keepingCapacity: true)
        forEachLink(node, layer: layer) { linked in
            linkScratch.append(Neighbor(distance: distance(base, all, linked), node: linked))
        }
        linkScratch.append(Neighbor(distance: distance(base, all, newNode), node: newNode))
        linkScratch.sort { $0.distance < $1.distance }
        setLinks(node, layer: layer, to: selectNeighbors(linkScratch, limit: limit, all).map(\.node))
    }

    /// Appends a link in place when the list has room; returns false when it is full.
    private func appendLink(_ node: Int32, layer: Int, _ newNode: Int32) -> Bool {
        if layer == 0 {
            let start = Int(node) * (maxLinksBottom + 1)
            let count = Int(bottomLinks[start])
            guard count < maxLinksBottom else { return false }
            bottomLinks[start + 1 + count] = newNode
            bottomLinks[start] = Int32(count + 1)
        } else {
            let start = (layer - 1) * (maxLinks + 1)
            let count = Int(upperLinks[Int(node)][start])
            guard count < maxLinks else { return false }
            upperLinks[Int(node)][start + 1 + count] = newNode
            upperLinks[Int(node)][start] = Int32(count + 1)
        }
        return true
    }

    /// The neighbour-selection heuristic: keep a candidate only if it is closer to the base than to
    /// every neighbour already kept, which spreads links in all directions. `candidates` are sorted.
    private func selectNeighbors(_ candidates: [Neighbor], limit: Int, _ all: UnsafeBufferPointer<Float>) -> [Neighbor] {
        if candidates.count <= limit { return candidates }
        var kept: [Neighbor] = []
        kept.reserveCapacity(limit)
        guard let start = all.baseAddress else { return [] }
        for candidate in candidates {
            let point = start + Int(candidate.node) * dimension
            var diverse = true
            for other in kept where distance(point, all, other.node) < candidate.distance {
                diverse = false
                break
            }
            if diverse {
                kept.append(candidate)
                if kept.count == limit { break }
            }
        }
        return kept
    }

    // MARK: Removing

    @discardableResult
    public func remove(id: String) -> Bool {
        lock.writing {
            guard let node = nodeOf[id] else { return false }
            tombstone(node)
            if removedCount > 1_000 && removedCount * 2 > labels.count { rebuildWithoutTombstones() }
            return true
        }
    }

    private func tombstone(_ node: Int32) {
        nodeOf.removeValue(forKey: labels[Int(node)])
        removed[Int(node)] = true
        removedCount += 1
    }

    /// Rebuilds the graph from the live vectors, reclaiming the space of removed ones.
    public func compact() {
        lock.writing { rebuildWithoutTombstones() }
    }

    private func rebuildWithoutTombstones() {
        let live = labels.indices.filter { !removed[$0] }
        let oldVectors = vectors
        let oldLabels = labels
        vectors = []
        levels = []
        bottomLinks = []
        upperLinks = []
        labels = []
        nodeOf = [:]
        removed = []
        removedCount = 0
        entryPoint = -1
        topLevel = -1
        vectors.reserveCapacity(live.count * dimension)
        for node in live {
            insert(id: oldLabels[node], vector: Array(oldVectors[(node * dimension)..<((node + 1) * dimension)]))
        }
    }

    // MARK: Searching

    public func search(_ query: [Float], k: Int, filter: SearchFilter? = nil) throws -> [SearchHit] {
        try search(query, k: k, efSearch: parameters.efSearch, filter: filter)
    }

    /// As `search(_:k:filter:)`, with the beam width for this query.
    public func search(_ query: [Float], k: Int, efSearch: Int, filter: SearchFilter? = nil) throws -> [SearchHit] {
        guard query.count == dimension else { throw VectorIndexError.dimensionMismatch(expected: dimension, got: query.count) }
        guard k > 0 else { return [] }
        let prepared = metric == .cosine ? FlatIndex.normalized(query) : query
        return lock.reading {
            guard entryPoint >= 0 else { return [] }
            if let filter, let matching = filter.matchingCount, matching <= parameters.exactFilterThreshold {
                return exactSearch(prepared, k: k, filter: filter)
            }
            return graphSearch(prepared, k: k, ef: max(efSearch, k), filter: filter)
        }
    }

    private func graphSearch(_ query: [Float], k: Int, ef: Int, filter: SearchFilter?) -> [SearchHit] {
        let visited = visitedPool.take()
        defer { visitedPool.give(visited) }
        let accept: ((Int32) -> Bool)?
        if removedCount > 0 || filter != nil {
            accept = { [labels, removed] node in
                !removed[Int(node)] && (filter?.allows(labels[Int(node)]) ?? true)
            }
        } else {
            accept = nil
        }
        return query.withUnsafeBufferPointer { q in
            vectors.withUnsafeBufferPointer { all in
                guard let point = q.baseAddress else { return [] }
                var entry = Neighbor(distance: distance(point, all, entryPoint), node: entryPoint)
                for layer in stride(from: topLevel, to: 0, by: -1) {
                    entry = greedyClosest(point, all, from: entry, layer: layer)
                }
                let found = searchLayer(point, all, entries: [entry], ef: ef, layer: 0, visited: visited, accept: accept)
                return found.sortedByDistance().prefix(k).map {
                    SearchHit(id: labels[Int($0.node)], score: metric.score(distance: $0.distance))
                }
            }
        }
    }

    /// Scores every live item that passes `filter`: exact, and cheap when few pass.
    private func exactSearch(_ query: [Float], k: Int, filter: SearchFilter) -> [SearchHit] {
        var best = NeighborHeap(closestFirst: false, capacity: k + 1)
        query.withUnsafeBufferPointer { q in
            vectors.withUnsafeBufferPointer { all in
                guard let point = q.baseAddress else { return }
                for node in labels.indices where !removed[node] && filter.allows(labels[node]) {
                    let candidate = Neighbor(distance: distance(point, all, Int32(node)), node: Int32(node))
                    if best.count < k {
                        best.push(candidate)
                    } else if let worst = best.top, candidate.distance < worst.distance {
                        best.pop()
                        best.push(candidate)
                    }
                }
            }
        }
        return best.sortedByDistance().map { SearchHit(id: labels[Int($0.node)], score: metric.score(distance: $0.distance)) }
    }

    /// Greedy descent on an upper layer: move to the closest neighbour until none is closer.
    private func greedyClosest(_ query: UnsafePointer<Float>, _ all: UnsafeBufferPointer<Float>, from start: Neighbor,
                               layer: Int) -> Neighbor {
        var best = start
        var improved = true
        while improved {
            improved = false
            let current = best.node
            forEachLink(current, layer: layer) { neighbor in
                let candidate = distance(query, all, neighbor)
                if candidate < best.distance {
                    best = Neighbor(distance: candidate, node: neighbor)
                    improved = true
                }
            }
        }
        return best
    }

    /// Beam search on one layer. Nodes `accept` rejects (removed, filtered out) are explored but
    /// never enter the results; while fewer than `ef` results are found the search goes on.
    private func searchLayer(_ query: UnsafePointer<Float>, _ all: UnsafeBufferPointer<Float>, entries: [Neighbor], ef: Int,
                             layer: Int, visited: VisitedMarks, accept: ((Int32) -> Bool)?) -> NeighborHeap {
        visited.reset(count: labels.count)
        var candidates = NeighborHeap(closestFirst: true, capacity: ef * 2)
        var results = NeighborHeap(closestFirst: false, capacity: ef + 1)
        for entry in entries {
            guard visited.visit(entry.node) else { continue }
            candidates.push(entry)
            if accept?(entry.node) ?? true { results.push(entry) }
        }
        while results.count > ef { results.pop() }

        func explore(_ links: UnsafePointer<Int32>) {
            let count = Int(links.pointee)
            var offset = 0
            while offset < count {
                offset += 1
                let neighbor = links[offset]
                guard visited.visit(neighbor) else { continue }
                let candidateDistance = distance(query, all, neighbor)
                if results.count < ef || candidateDistance < (results.top?.distance ?? .infinity) {
                    candidates.push(Neighbor(distance: candidateDistance, node: neighbor))
                    if accept?(neighbor) ?? true {
                        results.push(Neighbor(distance: candidateDistance, node: neighbor))
                        if results.count > ef { results.pop() }
                    }
                }
            }
        }

        if layer == 0 {
            let stride = maxLinksBottom + 1
            bottomLinks.withUnsafeBufferPointer { links in
                guard let base = links.baseAddress else { return }
                while let current = candidates.pop() {
                    if results.count >= ef, let worst = results.top, current.distance > worst.distance { break }
                    explore(base + Int(current.node) * stride)
                }
            }
        } else {
            let start = (layer - 1) * (maxLinks + 1)
            while let current = candidates.pop() {
                if results.count >= ef, let worst = results.top, current.distance > worst.distance { break }
                upperLinks[Int(current.node)].withUnsafeBufferPointer { links in
                    if let base = links.baseAddress { explore(base + start) }
                }
            }
        }
        return results
    }

    // MARK: Links and distances

    @inline(__always)
    private func forEachLink(_ node: Int32, layer: Int, _ body: (Int32) -> Void) {
        if layer == 0 {
            let start = Int(node) * (maxLinksBottom + 1)
            bottomLinks.withUnsafeBufferPointer { links in
                let count = Int(links[start])
                for offset in 0..<count { body(links[start + 1 + offset]) }
            }
        } else {
            let start = (layer - 1) * (maxLinks + 1)
            upperLinks[Int(node)].withUnsafeBufferPointer { links in
                let count = Int(links[start])
                for offset in 0..<count { body(links[start + 1 + offset]) }
            }
        }
    }

    private func setLinks(_ node: Int32, layer: Int, to nodes: [Int32]) {
        if layer == 0 {
            let start = Int(node) * (maxLinksBottom + 1)
            bottomLinks[start] = Int32(nodes.count)
            for (offset, linked) in nodes.enumerated() { bottomLinks[start + 1 + offset] = linked }
        } else {
            let start = (layer - 1) * (maxLinks + 1)
            upperLinks[Int(node)][start] = Int32(nodes.count)
            for (offset, linked) in nodes.enumerated() { upperLinks[Int(node)][start + 1 + offset] = linked }
        }
    }

    @inline(__always)
    private func distance(_ query: UnsafePointer<Float>, _ all: UnsafeBufferPointer<Float>, _ node: Int32) -> Float {
        guard let start = all.baseAddress else { return .infinity }
        let point = UnsafeBufferPointer(start: start + Int(node) * dimension, count: dimension)
        let q = UnsafeBufferPointer(start: query, count: dimension)
        switch metric {
        case .cosine: return 1 - VectorMath.dot(q, point)
        case .innerProduct: return -VectorMath.dot(q, point)
        case .l2: return VectorMath.squaredDistance(q, point)
        }
    }

    private func randomLevel() -> Int {
        let uniform = max(Double(random.next() >> 11) / Double(1 << 53), Double.leastNonzeroMagnitude)
        return min(Int(-log(uniform) * levelScale), 32)
    }
}

/// A small, fast, seedable generator (SplitMix64), so index builds are reproducible.
struct SplitMix64 {
    private(set) var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
