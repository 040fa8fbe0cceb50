import Foundation

/// A node and its distance to the query.
struct Neighbor {
    var distance: Float
    var node: Int32
}

/// A binary heap of neighbours; `closestFirst` decides whether the top is the closest or the farthest.
/// Small and allocation-free once its storage has grown: the hot path of graph search.
struct NeighborHeap {
    private(set) var items: [Neighbor] = []
    let closestFirst: Bool

    init(closestFirst: Bool, capacity: Int = 0) {
        self.closestFirst = closestFirst
        items.reserveCapacity(capacity)
    }

    var count: Int { items.count }
    var isEmpty: Bool { items.isEmpty }
    var top: Neighbor? { items.first }

    @inline(__always)
    private func above(_ a: Neighbor, _ b: Neighbor) -> Bool {
        closestFirst ? a.distance < b.distance : a.distance > b.distance
    }

    mutating func removeAll() { items.removeAll(keepingCapacity: true) }

    mutating func push(_ neighbor: Neighbor) {
        items.append(neighbor)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard above(items[child], items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    @discardableResult
    mutating func pop() -> Neighbor? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var best = parent
                if left < items.count && above(items[left], items[best]) { best = left }
                if right < items.count && above(items[right], items[best]) { best = right }
                if best == parent { break }
                items.swapAt(parent, best)
                parent = best
            }
        }
        return first
    }

    /// The items, closest first.
    func sortedByDistance() -> [Neighbor] {
        items.sorted { $0.distance < $1.distance || ($0.distance == $1.distance && $0.node < $1.node) }
    }
}

/// Marks which nodes one search has visited; reset in O(1) by bumping a generation number.
/// Raw storage: this is touched once per explored link, the innermost loop of every search.
final class VisitedMarks {
    private var marks: UnsafeMutablePointer<UInt32>
    private var capacity: Int
    private var generation: UInt32 = 0

    init() {
        capacity = 1024
        marks = .allocate(capacity: capacity)
        marks.initialize(repeating: 0, count: capacity)
    }

    deinit {
        marks.deallocate()
    }

    /// Starts a new search over `count` nodes.
    func reset(count: Int) {
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
    }

    /// Marks `node`; returns false when it was already marked in this search.
    @inline(__always)
    func visit(_ node: Int32) -> Bool {
        let slot = marks + Int(node)
        if slot.pointee == generation { return false }
        slot.pointee = generation
        return true
    }
}

/// A pool of `VisitedMarks`, so concurrent searches never share one and never allocate per query.
final class VisitedPool: @unchecked Sendable {
    private var free: [VisitedMarks] = []
    private let lock = NSLock()

    func take() -> VisitedMarks {
        lock.withLock { free.popLast() } ?? VisitedMarks()
    }

    func give(_ marks: VisitedMarks) {
        lock.withLock { free.append(marks) }
    }
}
