import Foundation

extension Array where Element: Sendable {
    /// Maps the elements on up to `workers` threads; results keep the input order.
    func parallelMap<T: Sendable>(workers: Int, _ transform: @Sendable (Element) -> T) -> [T] {
        guard count > 1, workers > 1 else { return map(transform) }
        let results = ResultSlots<T>(count: count)
        let elements = self
        let next = Counter()
        DispatchQueue.concurrentPerform(iterations: Swift.min(workers, count)) { _ in
            while let index = next.take(below: elements.count) {
                results.set(index, transform(elements[index]))
            }
        }
        return results.values()
    }
}

/// A lock-protected shared counter handing out indices to worker threads.
private final class Counter: @unchecked Sendable {
    private var value = 0
    private let lock = NSLock()

    func take(below limit: Int) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard value < limit else { return nil }
        value += 1
        return value - 1
    }
}

/// Result slots written by worker threads, each slot by exactly one worker.
private final class ResultSlots<T>: @unchecked Sendable {
    private var slots: [T?]
    private let lock = NSLock()

    init(count: Int) {
        slots = Array(repeating: nil, count: count)
    }

    func set(_ index: Int, _ value: T) {
        lock.lock()
        slots[index] = value
        lock.unlock()
    }

    func values() -> [T] {
        lock.lock()
        defer { lock.unlock() }
        return slots.compactMap { $0 }
    }
}
