import CVectorKernels
import Foundation
import LookalikeSupport

/// Exact nearest-neighbour search by cosine similarity: every stored vector is scored.
///
/// Vectors are L2-normalised on the way in, so the score is a dot product. Storage is one
/// contiguous buffer of `count x dimension` floats; removal moves the last vector into the gap.
/// This is the correct baseline that any approximate index must match.
///
/// Searches may run concurrently; a write waits for them and holds the lock only while it changes storage.
///
/// ```swift
/// let index = FlatIndex(dimension: 1280)
/// try index.add(id: "a1", vector: embedding)
/// let hits = try index.search(query, k: 10)
/// ```
public final class FlatIndex: VectorIndex, @unchecked Sendable {
    public let dimension: Int
    public var metric: Metric { .cosine }
    private let lock = ReaderWriterLock()
    // Guarded by `lock`.
    private var ids: [String] = []
    private var positions: [String: Int] = [:]
    private var storage: [Float] = []

    public init(dimension: Int) {
        self.dimension = dimension
    }

    public var count: Int { lock.reading { ids.count } }

    /// Adds or replaces the vector stored under `id`.
    public func add(id: String, vector: [Float]) throws {
        guard vector.count == dimension else { throw VectorIndexError.dimensionMismatch(expected: dimension, got: vector.count) }
        let normalized = Self.normalized(vector)
        lock.writing { store(id: id, normalized: normalized) }
    }

    private func store(id: String, normalized: [Float]) {
        if let position = positions[id] {
            storage.replaceSubrange((position * dimension)..<((position + 1) * dimension), with: normalized)
            return
        }
        positions[id] = ids.count
        ids.append(id)
        storage.append(contentsOf: normalized)
    }

    /// Removes `id`; returns whether it was present.
    @discardableResult
    public func remove(id: String) -> Bool {
        lock.writing { removeLocked(id: id) }
    }

    private func removeLocked(id: String) -> Bool {
        guard let position = positions.removeValue(forKey: id) else { return false }
        let last = ids.count - 1
        if position != last {
            let lastID = ids[last]
            ids[position] = lastID
            positions[lastID] = position
            for offset in 0..<dimension {
                storage[position * dimension + offset] = storage[last * dimension + offset]
            }
        }
        ids.removeLast()
        storage.removeLast(dimension)
        return true
    }

    public func contains(id: String) -> Bool { lock.reading { positions[id] != nil } }

    /// The ids stored, in storage order.
    public func liveIDs() -> [String] { lock.reading { ids } }

    /// Every vector is kept at full precision: a ranking stage that needs candidates' vectors
    /// reads them here instead of asking the store again.
    public func fullPrecisionVectors(for ids: [String]) -> [[Float]?]? {
        lock.reading {
            ids.map { id in positions[id].map { Array(storage[$0 * dimension..<($0 + 1) * dimension]) } }
        }
    }

    public func search(_ query: [Float], k: Int, filter: SearchFilter?) throws -> [SearchHit] {
        try search(query, k: k, where: filter?.allows)
    }

    /// The `k` stored vectors most similar to `query`, best first. Ties keep insertion order.
    public func search(_ query: [Float], k: Int, where isAllowed: ((String) -> Bool)? = nil) throws -> [SearchHit] {
        guard query.count == dimension else { throw VectorIndexError.dimensionMismatch(expected: dimension, got: query.count) }
        let normalized = Self.normalized(query)
        return lock.reading { searchLocked(normalized, k: k, where: isAllowed) }
    }

    private func searchLocked(_ normalized: [Float], k: Int, where isAllowed: ((String) -> Bool)?) -> [SearchHit] {
        guard k > 0, !ids.isEmpty else { return [] }
        var best = TopK(capacity: min(k, ids.count))
        normalized.withUnsafeBufferPointer { q in
            storage.withUnsafeBufferPointer { all in
                guard let query = q.baseAddress, let rows = all.baseAddress else { return }
                for position in 0..<ids.count {
                    if let isAllowed, !isAllowed(ids[position]) { continue }
                    best.offer(position: position, score: lk_dot_f32(query, rows + position * dimension, dimension))
                }
            }
        }
        return best.sorted().map { SearchHit(id: ids[$0.position], score: $0.score) }
    }

    /// The `k` best stored vectors for each of many queries (an evaluation run, a deduplication
    /// pass), in query order. Stored vectors are read in blocks that stay in cache while every
    /// query of a group is scored against them, and groups of queries run on all cores.
    public func search(batch queries: [[Float]], k: Int) throws -> [[SearchHit]] {
        for query in queries where query.count != dimension {
            throw VectorIndexError.dimensionMismatch(expected: dimension, got: query.count)
        }
        guard k > 0, !queries.isEmpty else { return queries.map { _ in [] } }
        let prepared = queries.map(Self.normalized)
        return lock.reading {
            guard !ids.isEmpty else { return queries.map { _ in [] } }
            let groupSize = 32
            let groups = (prepared.count + groupSize - 1) / groupSize
            let results = ResultSlots(count: prepared.count)
            storage.withUnsafeBufferPointer { all in
                guard let base = all.baseAddress else { return }
                let shared = SharedRows(base: base)
                DispatchQueue.concurrentPerform(iterations: groups) { group in
                    let rows = shared.base
                    let range = (group * groupSize)..<min(prepared.count, (group + 1) * groupSize)
                    var best = range.map { _ in TopK(capacity: min(k, ids.count)) }
                    let blockRows = max(1, (64 * 1024) / (dimension * 4))
                    for blockStart in stride(from: 0, to: ids.count, by: blockRows) {
                        let blockEnd = min(ids.count, blockStart + blockRows)
                        for (slot, queryIndex) in range.enumerated() {
                            prepared[queryIndex].withUnsafeBufferPointer { q in
                                guard let query = q.baseAddress else { return }
                                for position in blockStart..<blockEnd {
                                    best[slot].offer(position: position, score: lk_dot_f32(query, rows + position * dimension, dimension))
                                }
                            }
                        }
                    }
                    for (slot, queryIndex) in range.enumerated() {
                        results.set(queryIndex, best[slot].sorted().map { SearchHit(id: ids[$0.position], score: $0.score) })
                    }
                }
            }
            return results.values()
        }
    }

    static func normalized(_ vector: [Float]) -> [Float] {
        var sum: Float = 0
        for value in vector { sum += value * value }
        let norm = sum.squareRoot()
        guard norm > 1e-12 else { return vector }
        return vector.map { $0 / norm }
    }
}

/// The stored rows, read (never written) by every worker of a batch search under the reader lock.
private struct SharedRows: @unchecked Sendable {
    let base: UnsafePointer<Float>
}

/// One result slot per query, filled by concurrent workers that each own distinct slots.
private final class ResultSlots: @unchecked Sendable {
    private var slots: [[SearchHit]]
    private let lock = NSLock()

    init(count: Int) { slots = Array(repeating: [], count: count) }

    func set(_ index: Int, _ hits: [SearchHit]) { lock.withLock { slots[index] = hits } }

    func values() -> [[SearchHit]] { lock.withLock { slots } }
}

/// Keeps the `capacity` best (position, score) pairs seen, in a min-heap on score.
struct TopK {
    struct Entry {
        let position: Int
        let score: Float
    }

    let capacity: Int
    private var heap: [Entry] = []

    init(capacity: Int) {
        self.capacity = capacity
        heap.reserveCapacity(capacity)
    }

    /// Lower score is "worse"; on equal scores the later position is worse, so ties keep insertion order.
    private static func worse(_ a: Entry, _ b: Entry) -> Bool {
        a.score < b.score || (a.score == b.score && a.position > b.position)
    }

    mutating func offer(position: Int, score: Float) {
        let entry = Entry(position: position, score: score)
        if heap.count < capacity {
            heap.append(entry)
            siftUp(heap.count - 1)
        } else if Self.worse(heap[0], entry) {
            heap[0] = entry
            siftDown(0)
        }
    }

    func sorted() -> [Entry] {
        heap.sorted { Self.worse($1, $0) }
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.worse(heap[child], heap[parent]) else { return }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var worst = parent
            if left < heap.count && Self.worse(heap[left], heap[worst]) { worst = left }
            if right < heap.count && Self.worse(heap[right], heap[worst]) { worst = right }
            if worst == parent { return }
            heap.swapAt(parent, worst)
            parent = worst
        }
    }
}

public enum VectorIndexError: Error, Sendable, Equatable, CustomStringConvertible {
    case dimensionMismatch(expected: Int, got: Int)

    public var description: String {
        switch self {
        case .dimensionMismatch(let expected, let got):
            return "vector has \(got) dimensions, the index holds \(expected)-dimensional vectors"
        }
    }
}
