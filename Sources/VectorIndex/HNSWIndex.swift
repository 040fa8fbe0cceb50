import Foundation
import CVectorKernels
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
    /// How vectors are stored in the graph.
    public let encoding: VectorEncoding
    let maxLinks: Int
    let maxLinksBottom: Int
    private let levelScale: Double
    private let kernel: Scorer.Kernel
    /// The 8-bit quantiser's minimum and step per dimension, at fixed addresses for the kernels.
    private let quantizerMinimum: UnsafeMutablePointer<Float>?
    private let quantizerScale: UnsafeMutablePointer<Float>?

    let lock = ReaderWriterLock()
    private let scratchPool = ScratchPool()
    // Scratch space of inserts, used only under the writer lock: pruning candidates, the prepared
    // query of the vector being inserted, and a decoded node with its prepared form.
    private var linkScratch: [Neighbor] = []
    private let insertQuery: UnsafeMutablePointer<Float>
    private let nodeVector: UnsafeMutablePointer<Float>
    private let nodeQuery: UnsafeMutablePointer<Float>
    // Everything below is guarded by `lock` (internal, not private, for the snapshot code).
    /// Bottom-layer links and encoded vectors, one record per node.
    var records: NodeRecords
    var levels: [Int32] = []
    /// Upper-layer links per node: for layer l >= 1, slot (l - 1) * (maxLinks + 1) holds the count.
    var upperLinks: [[Int32]] = []
    var labels: [String] = []
    var nodeOf: [String: Int32] = [:]
    var removed: [Bool] = []
    var removedCount = 0
    var entryPoint: Int32 = -1
    var topLevel = -1
    var random: SplitMix64
    var storedExternalVersion: UInt64 = 0
    var storedExternalIdentity: UUID?
    /// Changes made while a compaction builds its new graph, replayed onto it before it takes over;
    /// nil when no compaction is running.
    private var pendingChanges: [PendingChange]?

    private enum PendingChange {
        case add(id: String, vector: [Float])
        case remove(id: String)
    }

    /// `dimension` is at least 1 (a smaller value is taken as 1, and every vector is then refused).
    /// An `.int8` encoding must be trained on this dimension; otherwise it falls back to float32.
    public init(dimension: Int, metric: Metric = .cosine, parameters: Parameters = Parameters(),
                encoding: VectorEncoding = .float32) {
        let dimension = max(1, dimension)
        self.dimension = dimension
        self.metric = metric
        self.parameters = parameters
        if case .int8(let quantizer) = encoding, quantizer.dimension != dimension {
            self.encoding = .float32
        } else {
            self.encoding = encoding
        }
        maxLinks = parameters.m
        maxLinksBottom = 2 * parameters.m
        levelScale = 1 / log(Double(parameters.m))
        random = SplitMix64(seed: parameters.seed)
        records = NodeRecords(linkSlots: maxLinksBottom + 1, codeBytes: self.encoding.codeBytes(dimension: dimension))
        insertQuery = .allocate(capacity: dimension)
        nodeVector = .allocate(capacity: dimension)
        nodeQuery = .allocate(capacity: dimension)
        switch self.encoding {
        case .float32:
            kernel = metric == .l2 ? .float32L2 : .float32Dot
            quantizerMinimum = nil
            quantizerScale = nil
        case .float16:
            kernel = metric == .l2 ? .float16L2 : .float16Dot
            quantizerMinimum = nil
            quantizerScale = nil
        case .int8(let quantizer):
            kernel = metric == .l2 ? .int8L2 : .int8Dot
            let minimum = UnsafeMutablePointer<Float>.allocate(capacity: dimension)
            let scale = UnsafeMutablePointer<Float>.allocate(capacity: dimension)
            minimum.initialize(from: quantizer.minimum, count: dimension)
            scale.initialize(from: quantizer.scale, count: dimension)
            quantizerMinimum = minimum
            quantizerScale = scale
        }
    }

    deinit {
        insertQuery.deallocate()
        nodeVector.deallocate()
        nodeQuery.deallocate()
        quantizerMinimum?.deallocate()
        quantizerScale?.deallocate()
    }

    public var count: Int { lock.reading { labels.count - removedCount } }

    /// Nodes in the graph, tombstones included.
    public var nodeCount: Int { lock.reading { labels.count } }

    public func contains(id: String) -> Bool { lock.reading { nodeOf[id] != nil } }

    /// The ids of the live (not removed) items.
    public func liveIDs() -> [String] { lock.reading { Array(nodeOf.keys) } }

    /// Approximate memory held by the graph: node records (links and encoded vectors), upper-layer
    /// links, levels, tombstone flags and labels, in bytes.
    public var memoryBytes: Int {
        lock.reading {
            records.bytes + upperLinks.reduce(0) { $0 + $1.count * 4 + 32 } + levels.count * 5
                + labels.reduce(0) { $0 + 16 + ($1.utf8.count > 15 ? $1.utf8.count : 0) } + nodeOf.count * 24
        }
    }

    /// An opaque number the owner keeps with the index and its snapshot: the version of the data
    /// the index reflects (the engine stores the catalog's generation of the model's vectors).
    public var externalVersion: UInt64 {
        get { lock.reading { storedExternalVersion } }
        set { lock.writing { storedExternalVersion = newValue } }
    }

    /// An identity the owner keeps with the index and its snapshot beside `externalVersion`: which
    /// data the version counts (the engine stores the identity of the store, so a snapshot of
    /// another store at the same generation is told apart). Nil when none was set.
    public var externalIdentity: UUID? {
        get { lock.reading { storedExternalIdentity } }
        set { lock.writing { storedExternalIdentity = newValue } }
    }

    /// Bytes held by the encoded vectors alone.
    public var vectorBytes: Int { lock.reading { labels.count * encoding.codeBytes(dimension: dimension) } }

    // MARK: Adding

    public func add(id: String, vector: [Float]) throws {
        guard vector.count == dimension else { throw VectorIndexError.dimensionMismatch(expected: dimension, got: vector.count) }
        let prepared = metric == .cosine ? FlatIndex.normalized(vector) : vector
        let due = lock.writing { () -> Bool in
            if let old = nodeOf[id] { tombstone(old) }
            prepared.withUnsafeBufferPointer { buffer in
                if let start = buffer.baseAddress { insert(id: id, vector: start) }
            }
            pendingChanges?.append(.add(id: id, vector: prepared))
            return compactionDue
        }
        if due { compact() }
    }

    /// Adds many vectors; the same as calling `add` for each, with one reservation of space.
    public func add(ids: [String], vectors: [[Float]]) throws {
        guard ids.count == vectors.count else { throw VectorIndexError.dimensionMismatch(expected: ids.count, got: vectors.count) }
        lock.writing { records.reserve(records.count + ids.count) }
        for (id, vector) in zip(ids, vectors) { try add(id: id, vector: vector) }
    }

    /// Inserts a vector already prepared for the metric. Runs under the writer lock.
    private func insert(id: String, vector: UnsafePointer<Float>) {
        let node = records.append()
        encode(vector, into: records.code(node))
        let level = randomLevel()
        labels.append(id)
        nodeOf[id] = node
        removed.append(false)
        levels.append(Int32(level))
        upperLinks.append(level > 0 ? [Int32](repeating: 0, count: level * (maxLinks + 1)) : [])

        guard entryPoint >= 0 else {
            entryPoint = node
            topLevel = level
            return
        }
        let scratch = scratchPool.take()
        defer { scratchPool.give(scratch) }
        // The search for neighbours uses the exact vector, not its code.
        let scorer = prepare(vector, scratch: insertQuery)
        var entry = Neighbor(distance: scorer.distance(records.code(entryPoint)), node: entryPoint)
        if topLevel > level {
            for layer in stride(from: topLevel, to: level, by: -1) {
                entry = greedyClosest(scorer, from: entry, layer: layer)
            }
        }
        var entries = [entry]
        for layer in stride(from: min(level, topLevel), through: 0, by: -1) {
            let found = searchLayer(scorer, entries: entries, ef: parameters.efConstruction, layer: layer,
                                    scratch: scratch, accept: nil)
            let chosen = selectNeighbors(found, limit: maxLinks)
            setLinks(node, layer: layer, to: chosen)
            for neighbor in chosen { link(neighbor.node, to: node, layer: layer) }
            // The next layer down starts from the closest node found here.
            entries = Array(found.prefix(1))
        }
        if level > topLevel {
            topLevel = level
            entryPoint = node
        }
    }

    /// Adds `newNode` to `node`'s links on `layer`, pruning with the heuristic when they are full.
    /// Runs under the writer lock, so it reuses scratch space instead of allocating per call.
    private func link(_ node: Int32, to newNode: Int32, layer: Int) {
        if appendLink(node, layer: layer, newNode) { return }
        let limit = layer == 0 ? maxLinksBottom : maxLinks
        let scorer = prepare(decode(node, into: nodeVector), scratch: nodeQuery)
        linkScratch.removeAll(keepingCapacity: true)
        forEachLink(node, layer: layer) { linked in
            linkScratch.append(Neighbor(distance: scorer.distance(records.code(linked)), node: linked))
        }
        linkScratch.append(Neighbor(distance: scorer.distance(records.code(newNode)), node: newNode))
        linkScratch.sort { $0.distance < $1.distance }
        setLinks(node, layer: layer, to: selectNeighbors(linkScratch, limit: limit))
    }

    /// Appends a link in place when the list has room; returns false when it is full.
    private func appendLink(_ node: Int32, layer: Int, _ newNode: Int32) -> Bool {
        if layer == 0 {
            let links = records.links(node)
            let count = Int(links[0])
            guard count < maxLinksBottom else { return false }
            links[1 + count] = newNode
            links[0] = Int32(count + 1)
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
    private func selectNeighbors(_ candidates: [Neighbor], limit: Int) -> [Neighbor] {
        if candidates.count <= limit { return candidates }
        var kept: [Neighbor] = []
        kept.reserveCapacity(limit)
        for candidate in candidates {
            let scorer = prepare(decode(candidate.node, into: nodeVector), scratch: nodeQuery)
            var diverse = true
            for other in kept where scorer.distance(records.code(other.node)) < candidate.distance {
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
        let (found, due) = lock.writing { () -> (Bool, Bool) in
            guard let node = nodeOf[id] else { return (false, false) }
            tombstone(node)
            pendingChanges?.append(.remove(id: id))
            return (true, compactionDue)
        }
        if due { compact() }
        return found
    }

    /// Whether tombstones are half the graph (and enough to be worth a rebuild).
    private var compactionDue: Bool {
        pendingChanges == nil && removedCount > 1_000 && removedCount * 2 > labels.count
    }

    /// Whether a compaction is building its new graph right now.
    var isCompacting: Bool { lock.reading { pendingChanges != nil } }

    private func tombstone(_ node: Int32) {
        nodeOf.removeValue(forKey: labels[Int(node)])
        removed[Int(node)] = true
        removedCount += 1
    }

    /// Rebuilds the graph from the live vectors, reclaiming the space of removed ones. It runs
    /// automatically, in the call of the `add` or `remove` that makes tombstones half the graph.
    ///
    /// Searches never wait for the rebuild: the live vectors are copied under the writer lock, the
    /// new graph is built without holding any lock while this graph keeps answering (and taking
    /// adds and removals, which are logged), then the log is replayed onto the new graph and it
    /// takes over, under the writer lock again. One compaction runs at a time; a second call
    /// while one runs returns at once.
    public func compact() {
        let taken = lock.writing { () -> (ids: [String], vectors: [Float])? in
            guard pendingChanges == nil else { return nil }
            pendingChanges = []
            let live = labels.indices.filter { !removed[$0] }
            // Decoded live vectors: re-encoding a decoded code gives the same code back.
            var vectors = [Float](repeating: 0, count: live.count * dimension)
            vectors.withUnsafeMutableBufferPointer { buffer in
                guard let start = buffer.baseAddress else { return }
                for (row, node) in live.enumerated() {
                    (start + row * dimension).update(from: decode(Int32(node), into: nodeVector), count: dimension)
                }
            }
            return (live.map { labels[$0] }, vectors)
        }
        guard let taken else { return }
        // The new graph is this function's alone until it takes over: it needs no lock of its own.
        let fresh = HNSWIndex(dimension: dimension, metric: metric, parameters: parameters, encoding: encoding)
        fresh.records.reserve(taken.ids.count)
        taken.vectors.withUnsafeBufferPointer { buffer in
            guard let start = buffer.baseAddress else { return }
            for (row, id) in taken.ids.enumerated() { fresh.insert(id: id, vector: start + row * dimension) }
        }
        lock.writing {
            for change in pendingChanges ?? [] {
                switch change {
                case .add(let id, let vector):
                    if let old = fresh.nodeOf[id] { fresh.tombstone(old) }
                    vector.withUnsafeBufferPointer { buffer in
                        if let start = buffer.baseAddress { fresh.insert(id: id, vector: start) }
                    }
                case .remove(let id):
                    if let node = fresh.nodeOf[id] { fresh.tombstone(node) }
                }
            }
            pendingChanges = nil
            records = fresh.records
            levels = fresh.levels
            upperLinks = fresh.upperLinks
            labels = fresh.labels
            nodeOf = fresh.nodeOf
            removed = fresh.removed
            removedCount = fresh.removedCount
            entryPoint = fresh.entryPoint
            topLevel = fresh.topLevel
            random = fresh.random
        }
    }

    // MARK: Searching

    public func search(_ query: [Float], k: Int, filter: SearchFilter? = nil) throws -> [SearchHit] {
        try search(query, k: k, efSearch: parameters.efSearch, filter: filter)
    }

    /// As `search(_:k:filter:)`, with the beam width for this query.
    ///
    /// With a `source` of exact vectors, the best `rescoreFactor * k` candidates found on encoded
    /// vectors (at most the beam width) are scored again at full precision, and the best `k` of
    /// those are returned. A float32 index is exact already: the source is not asked.
    public func search(_ query: [Float], k: Int, efSearch: Int, filter: SearchFilter? = nil,
                       rescoringFrom source: ExactVectorSource? = nil, rescoreFactor: Int = 4) throws -> [SearchHit] {
        if let source {
            // Candidates on the codes, re-scored from exact vectors: the refine composition itself.
            return try RefineIndex(base: self, exact: source, factor: rescoreFactor)
                .search(query, k: k, filter: filter, parameters: SearchParameters(efSearch: efSearch))
        }
        guard query.count == dimension else { throw VectorIndexError.dimensionMismatch(expected: dimension, got: query.count) }
        guard k > 0 else { return [] }
        let prepared = metric == .cosine ? FlatIndex.normalized(query) : query
        let ef = max(efSearch, k)
        return lock.reading {
            guard entryPoint >= 0 else { return [] }
            var scratch = [Float](repeating: 0, count: dimension)
            return prepared.withUnsafeBufferPointer { q in
                scratch.withUnsafeMutableBufferPointer { buffer in
                    guard let point = q.baseAddress, let space = buffer.baseAddress else { return [] }
                    let scorer = prepare(point, scratch: space)
                    if let filter, let matching = filter.matchingCount, matching <= parameters.exactFilterThreshold {
                        return exactSearch(scorer, k: k, filter: filter)
                    }
                    return graphSearch(scorer, k: k, ef: ef, filter: filter)
                }
            }
        }
    }

    public func search(_ query: [Float], k: Int, filter: SearchFilter?, parameters: SearchParameters) throws -> [SearchHit] {
        try search(query, k: k, efSearch: parameters.efSearch ?? self.parameters.efSearch, filter: filter)
    }

    /// Scores on 8-bit or float16 codes are approximate; a `RefineIndex` re-scores them.
    public var scoresAreExact: Bool { encoding == .float32 }

    public func candidateBound(_ parameters: SearchParameters) -> Int? {
        parameters.efSearch ?? self.parameters.efSearch
    }

    private func graphSearch(_ scorer: Scorer, k: Int, ef: Int, filter: SearchFilter?) -> [SearchHit] {
        let scratch = scratchPool.take()
        defer { scratchPool.give(scratch) }
        let accept: ((Int32) -> Bool)?
        if removedCount > 0 || filter != nil {
            accept = { [labels, removed] node in
                !removed[Int(node)] && (filter?.allows(labels[Int(node)]) ?? true)
            }
        } else {
            accept = nil
        }
        var entry = Neighbor(distance: scorer.distance(records.code(entryPoint)), node: entryPoint)
        for layer in stride(from: topLevel, to: 0, by: -1) {
            entry = greedyClosest(scorer, from: entry, layer: layer)
        }
        let found = searchLayer(scorer, entries: [entry], ef: ef, layer: 0, scratch: scratch, accept: accept)
        return found.prefix(k).map {
            SearchHit(id: labels[Int($0.node)], score: metric.score(distance: $0.distance))
        }
    }

    /// Scores every live item that passes `filter`: exact, and cheap when few pass.
    private func exactSearch(_ scorer: Scorer, k: Int, filter: SearchFilter) -> [SearchHit] {
        let scratch = scratchPool.take()
        defer { scratchPool.give(scratch) }
        var best = scratch.results
        defer { scratch.results = best }
        best.removeAll()
        for node in labels.indices where !removed[node] && filter.allows(labels[node]) {
            let candidate = Neighbor(distance: scorer.distance(records.code(Int32(node))), node: Int32(node))
            if best.count < k {
                best.push(candidate)
            } else if let worst = best.top, candidate.distance < worst.distance {
                best.pop()
                best.push(candidate)
            }
        }
        return best.drainClosestFirst().map { SearchHit(id: labels[Int($0.node)], score: metric.score(distance: $0.distance)) }
    }

    /// Greedy descent on an upper layer: move to the closest neighbour until none is closer.
    private func greedyClosest(_ scorer: Scorer, from start: Neighbor, layer: Int) -> Neighbor {
        var best = start
        var improved = true
        while improved {
            improved = false
            let current = best.node
            forEachLink(current, layer: layer) { neighbor in
                let candidate = scorer.distance(records.code(neighbor))
                if candidate < best.distance {
                    best = Neighbor(distance: candidate, node: neighbor)
                    improved = true
                }
            }
        }
        return best
    }

    /// Beam search on one layer; returns up to `ef` nodes, closest first. Nodes `accept` rejects
    /// (removed, filtered out) are explored but never enter the results; while fewer than `ef`
    /// results are found the search goes on.
    private func searchLayer(_ scorer: Scorer, entries: [Neighbor], ef: Int, layer: Int, scratch: SearchScratch,
                             accept: ((Int32) -> Bool)?) -> [Neighbor] {
        let visits = scratch.visited.reset(count: labels.count)
        // The heaps, the records' address and their layout go into locals: the loop below then
        // touches no class property (each such access costs a runtime exclusivity check).
        var candidates = scratch.candidates
        var results = scratch.results
        defer {
            scratch.candidates = candidates
            scratch.results = results
        }
        candidates.removeAll()
        results.removeAll()
        let base = records.base
        let stride = records.stride
        let codeOffset = 4 * records.linkSlots
        for entry in entries {
            guard visits.visit(entry.node) else { continue }
            candidates.push(entry)
            if accept?(entry.node) ?? true { results.push(entry) }
        }
        while results.count > ef { results.pop() }

        @inline(__always)
        func explore(_ links: UnsafePointer<Int32>) {
            let count = Int(links.pointee)
            if count > 0 { lk_prefetch(base + Int(links[1]) * stride) }
            var offset = 0
            while offset < count {
                offset += 1
                let neighbor = links[offset]
                // Start loading the next neighbour's record while this one is scored.
                if offset < count { lk_prefetch(base + Int(links[offset + 1]) * stride) }
                guard visits.visit(neighbor) else { continue }
                let candidateDistance = scorer.distance(base + Int(neighbor) * stride + codeOffset)
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
            while let current = candidates.pop() {
                if results.count >= ef, let worst = results.top, current.distance > worst.distance { break }
                explore((base + Int(current.node) * stride).assumingMemoryBound(to: Int32.self))
            }
        } else {
            let start = (layer - 1) * (maxLinks + 1)
            while let current = candidates.pop() {
                if results.count >= ef, let worst = results.top, current.distance > worst.distance { break }
                upperLinks[Int(current.node)].withUnsafeBufferPointer { links in
                    if let first = links.baseAddress { explore(first + start) }
                }
            }
        }
        return results.drainClosestFirst()
    }

    // MARK: Links, codes and distances

    @inline(__always)
    private func forEachLink(_ node: Int32, layer: Int, _ body: (Int32) -> Void) {
        if layer == 0 {
            let links = records.links(node)
            let count = Int(links[0])
            for offset in 0..<count { body(links[1 + offset]) }
        } else {
            let start = (layer - 1) * (maxLinks + 1)
            upperLinks[Int(node)].withUnsafeBufferPointer { links in
                let count = Int(links[start])
                for offset in 0..<count { body(links[start + 1 + offset]) }
            }
        }
    }

    private func setLinks(_ node: Int32, layer: Int, to nodes: [Neighbor]) {
        if layer == 0 {
            let links = records.links(node)
            links[0] = Int32(nodes.count)
            for (offset, linked) in nodes.enumerated() { links[1 + offset] = linked.node }
        } else {
            let start = (layer - 1) * (maxLinks + 1)
            upperLinks[Int(node)][start] = Int32(nodes.count)
            for (offset, linked) in nodes.enumerated() { upperLinks[Int(node)][start + 1 + offset] = linked.node }
        }
    }

    /// Writes the encoded form of `vector` to a node's code.
    private func encode(_ vector: UnsafePointer<Float>, into code: UnsafeMutableRawPointer) {
        switch encoding {
        case .float32:
            code.assumingMemoryBound(to: Float.self).update(from: vector, count: dimension)
        case .float16:
            let halves = code.assumingMemoryBound(to: UInt16.self)
            for position in 0..<dimension { halves[position] = Float16(vector[position]).bitPattern }
        case .int8(let quantizer):
            quantizer.encode(vector, into: code.assumingMemoryBound(to: UInt8.self))
        }
    }

    /// The vector a node's code stands for: the code itself for float32, else decoded into `buffer`.
    private func decode(_ node: Int32, into buffer: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        let code = records.code(node)
        switch encoding {
        case .float32:
            return UnsafePointer(code.assumingMemoryBound(to: Float.self))
        case .float16:
            lk_decode_f16(code.assumingMemoryBound(to: UInt16.self), buffer, dimension)
        case .int8(let quantizer):
            quantizer.decode(code.assumingMemoryBound(to: UInt8.self), into: buffer)
        }
        return UnsafePointer(buffer)
    }

    /// A scorer for `query` (prepared for the metric); `scratch` holds `dimension` floats and must
    /// outlive the scorer.
    private func prepare(_ query: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>) -> Scorer {
        let offset: Float = metric == .cosine ? 1 : 0
        switch kernel {
        case .int8Dot:
            guard let minimum = quantizerMinimum, let scale = quantizerScale else { break }
            var constant: Float = 0
            for position in 0..<dimension {
                scratch[position] = query[position] * scale[position]
                constant += query[position] * minimum[position]
            }
            return Scorer(kernel: kernel, offset: offset, query: scratch, scale: nil, constant: constant, dimension: dimension)
        case .int8L2:
            guard let minimum = quantizerMinimum, let scale = quantizerScale else { break }
            for position in 0..<dimension { scratch[position] = query[position] - minimum[position] }
            return Scorer(kernel: kernel, offset: 0, query: scratch, scale: scale, constant: 0, dimension: dimension)
        default:
            break
        }
        return Scorer(kernel: kernel, offset: offset, query: query, scale: nil, constant: 0, dimension: dimension)
    }

    private func randomLevel() -> Int {
        let uniform = max(Double(random.next() >> 11) / Double(1 << 53), Double.leastNonzeroMagnitude)
        return min(Int(-log(uniform) * levelScale), 32)
    }
}
