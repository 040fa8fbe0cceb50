import Foundation

/// A node and its distance to the query.
struct Neighbor {
    var distance: Float
    var node: Int32
}

/// A binary heap of neighbours in raw storage that grows as needed; `closestFirst` decides whether
/// the top is the closest or the farthest. It lives in a pooled `SearchScratch`, so a search neither
/// allocates nor pays for array bounds and uniqueness checks in its innermost loop.
struct NeighborHeap {
    private(set) var items: UnsafeMutablePointer<Neighbor>
    private(set) var capacity: Int
    private(set) var count = 0
    let closestFirst: Bool

    init(closestFirst: Bool, capacity: Int = 64) {
        self.closestFirst = closestFirst
        self.capacity = max(1, capacity)
        items = .allocate(capacity: self.capacity)
    }

    /// Frees the storage; the owner calls it once.
    func deallocate() { items.deallocate() }

    var isEmpty: Bool { count == 0 }
    var top: Neighbor? { count > 0 ? items[0] : nil }

    mutating func removeAll() { count = 0 }

    @inline(__always)
    private func above(_ a: Neighbor, _ b: Neighbor) -> Bool {
        closestFirst ? a.distance < b.distance : a.distance > b.distance
    }

    @inline(__always)
    mutating func push(_ neighbor: Neighbor) {
        if count == capacity {
            let grown = UnsafeMutablePointer<Neighbor>.allocate(capacity: capacity * 2)
            grown.moveInitialize(from: items, count: count)
            items.deallocate()
            items = grown
            capacity *= 2
        }
        var child = count
        count += 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard above(neighbor, items[parent]) else { break }
            items[child] = items[parent]
            child = parent
        }
        items[child] = neighbor
    }

    @discardableResult @inline(__always)
    mutating func pop() -> Neighbor? {
        guard count > 0 else { return nil }
        let first = items[0]
        count -= 1
        guard count > 0 else { return first }
        let last = items[count]
        var parent = 0
        while true {
            let left = 2 * parent + 1
            guard left < count else { break }
            let right = left + 1
            let best = right < count && above(items[right], items[left]) ? right : left
            guard above(items[best], last) else { break }
            items[parent] = items[best]
            parent = best
        }
        items[parent] = last
        return first
    }

    /// Empties the heap into an array, closest first; equal distances in node order.
    mutating func drainClosestFirst() -> [Neighbor] {
        var sorted = [Neighbor](repeating: Neighbor(distance: 0, node: 0), count: count)
        if closestFirst {
            for position in 0..<sorted.count { sorted[position] = pop() ?? sorted[position] }
        } else {
            for position in stride(from: sorted.count - 1, through: 0, by: -1) { sorted[position] = pop() ?? sorted[position] }
        }
        // Ties come out in heap order: an insertion pass (linear on sorted input) orders them by node.
        for position in sorted.indices.dropFirst() {
            let moving = sorted[position]
            var slot = position
            while slot > 0, sorted[slot - 1].distance == moving.distance, sorted[slot - 1].node > moving.node {
                sorted[slot] = sorted[slot - 1]
                slot -= 1
            }
            sorted[slot] = moving
        }
        return sorted
    }
}

/// Marks which nodes one search has visited; reset in O(1) by bumping a generation number.
/// Raw storage: this is touched once per explored link, the innermost loop of every search.
final class VisitedMarks {
    private(set) var marks: UnsafeMutablePointer<UInt32>
    private var capacity: Int
    private(set) var generation: UInt32 = 0

    init() {
        capacity = 1024
        marks = .allocate(capacity: capacity)
        marks.initialize(repeating: 0, count: capacity)
    }

    deinit {
        marks.deallocate()
    }

    /// Starts a new search over `count` nodes; returns the marks for it.
    func reset(count: Int) -> Visits {
        if capacity < count {
            let grown = max(count, capacity * 2)
            let replacement = UnsafeMutablePointer<UInt32>.allocate(capacity: grown)
            replacement.initialize(repeating: 0, count: grown)
            marks.deallocate()
            marks = replacement
            capacity = grown
            generation = 0
        }
        generation &+= 1
        if generation == 0 {
            marks.update(repeating: 0, count: capacity)
            generation = 1
        }
        return Visits(marks: marks, generation: generation)
    }
}

/// The marks of one search, held in locals so the inner loop reads no class properties.
struct Visits {
    let marks: UnsafeMutablePointer<UInt32>
    let generation: UInt32

    /// Marks `node`; returns false when it was already marked in this search.
    @inline(__always)
    func visit(_ node: Int32) -> Bool {
        let slot = marks + Int(node)
        if slot.pointee == generation { return false }
        slot.pointee = generation
        return true
    }
}

/// Everything one search needs besides the graph: visited marks and the two heaps.
final class SearchScratch {
    let visited = VisitedMarks()
    var candidates = NeighborHeap(closestFirst: true)
    var results = NeighborHeap(closestFirst: false)

    deinit {
        candidates.deallocate()
        results.deallocate()
    }
}

/// A pool of `SearchScratch`, so concurrent searches never share one and never allocate per query.
final class ScratchPool: @unchecked Sendable {
    private var free: [SearchScratch] = []
    private let lock = NSLock()

    func take() -> SearchScratch {
        lock.withLock { free.popLast() } ?? SearchScratch()
    }

    func give(_ scratch: SearchScratch) {
        lock.withLock { free.append(scratch) }
    }
}
