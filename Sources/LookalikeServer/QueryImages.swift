import Foundation

/// Query images kept for a while so that a search by an uploaded image has an address: the page
/// puts the id in its URL, and Back, a bookmark or a shared link searches again with the same
/// image while it is kept. In memory only, within a byte budget, the oldest going first; each is
/// kept `lifetime` seconds from its upload.
final class QueryImages: @unchecked Sendable {
    struct Kept {
        let bytes: [UInt8]
        let expires: Date
    }

    let lifetime: TimeInterval
    let budget: Int
    private let lock = NSLock()
    private var kept: [String: Kept] = [:]
    private var order: [String] = []  // oldest first
    private var bytes = 0

    init(lifetime: TimeInterval = 3600, budget: Int) {
        self.lifetime = lifetime
        self.budget = max(1, budget)
    }

    /// Keeps an image; returns its id (random, unguessable) and when it expires.
    func keep(_ image: [UInt8], now: Date = Date()) -> (id: String, expires: Date) {
        var generator = SystemRandomNumberGenerator()
        let id = "q" + (0..<16).map { _ in String(generator.next(upperBound: UInt8(16)), radix: 16) }.joined()
        let expires = now.addingTimeInterval(lifetime)
        lock.withLock {
            dropExpired(now)
            while bytes + image.count > budget, let oldest = order.first { remove(oldest) }
            kept[id] = Kept(bytes: image, expires: expires)
            order.append(id)
            bytes += image.count
        }
        return (id, expires)
    }

    /// The image kept under `id`, unless it expired or was let go for newer ones.
    func image(_ id: String, now: Date = Date()) -> [UInt8]? {
        lock.withLock {
            dropExpired(now)
            return kept[id]?.bytes
        }
    }

    private func dropExpired(_ now: Date) {
        while let oldest = order.first, let entry = kept[oldest], entry.expires <= now { remove(oldest) }
    }

    private func remove(_ id: String) {
        if let entry = kept.removeValue(forKey: id) { bytes -= entry.bytes.count }
        order.removeAll { $0 == id }
    }
}
