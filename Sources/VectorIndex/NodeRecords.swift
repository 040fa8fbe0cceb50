import CVectorKernels

/// The bottom layer of an HNSW graph in one contiguous block, a record per node: the link count,
/// the link slots, then the node's encoded vector. A search that follows a link finds the
/// neighbour's vector and its own links on the same few cache lines, as in hnswlib.
///
/// Not thread-safe by itself: `HNSWIndex` guards it with its reader-writer lock.
final class NodeRecords {
    /// Link slots a record holds, counting the slot with the link count.
    let linkSlots: Int
    /// Bytes of one encoded vector.
    let codeBytes: Int
    /// Bytes of one record: the links, then the code padded to 4 bytes.
    let stride: Int
    private(set) var base: UnsafeMutableRawPointer
    private(set) var capacity: Int
    private(set) var count = 0

    init(linkSlots: Int, codeBytes: Int, capacity: Int = 64) {
        self.linkSlots = linkSlots
        self.codeBytes = codeBytes
        stride = 4 * linkSlots + (codeBytes + 3) / 4 * 4
        self.capacity = max(1, capacity)
        base = UnsafeMutableRawPointer.allocate(byteCount: self.capacity * stride, alignment: 64)
    }

    deinit { base.deallocate() }

    /// Bytes in use.
    var bytes: Int { count * stride }

    /// Makes room for `total` records without moving them again.
    func reserve(_ total: Int) {
        guard total > capacity else { return }
        let grown = UnsafeMutableRawPointer.allocate(byteCount: total * stride, alignment: 64)
        grown.copyMemory(from: base, byteCount: count * stride)
        base.deallocate()
        base = grown
        capacity = total
    }

    /// Adds a record with no links and a zeroed code; returns its node number.
    func append() -> Int32 {
        if count == capacity { reserve(capacity * 2) }
        (base + count * stride).initializeMemory(as: UInt8.self, repeating: 0, count: stride)
        count += 1
        return Int32(count - 1)
    }

    /// Replaces every record with `count` records copied from `bytes` (a snapshot's section).
    func load(_ bytes: UnsafeRawBufferPointer, count: Int) {
        reserve(count)
        if let source = bytes.baseAddress, count > 0 { base.copyMemory(from: source, byteCount: count * stride) }
        self.count = count
    }

    /// The node's link count, followed by its link slots.
    @inline(__always)
    func links(_ node: Int32) -> UnsafeMutablePointer<Int32> {
        (base + Int(node) * stride).assumingMemoryBound(to: Int32.self)
    }

    /// The node's encoded vector.
    @inline(__always)
    func code(_ node: Int32) -> UnsafeMutableRawPointer {
        base + Int(node) * stride + 4 * linkSlots
    }

    @inline(__always)
    func prefetch(_ node: Int32) {
        lk_prefetch(base + Int(node) * stride)
    }
}

/// Distances from one prepared query to encoded vectors: the kernel for the index's encoding and
/// metric, with whatever per-query terms the encoding needs worked out once.
struct Scorer {
    enum Kernel {
        case float32Dot, float32L2, float16Dot, float16L2, int8Dot, int8L2
    }

    let kernel: Kernel
    /// For dot kernels: distance = offset - sign * dot; `offset` 1 for cosine, 0 for inner product.
    let offset: Float
    /// The query as the kernel wants it: itself, or multiplied or shifted by the quantiser.
    let query: UnsafePointer<Float>
    /// The quantiser's step sizes (8-bit L2 only).
    let scale: UnsafePointer<Float>?
    /// The part of an 8-bit dot product that does not depend on the code: dot(query, minimum).
    let constant: Float
    let dimension: Int

    @inline(__always)
    func distance(_ code: UnsafeRawPointer) -> Float {
        switch kernel {
        case .float32Dot:
            return offset - lk_dot_f32(query, code.assumingMemoryBound(to: Float.self), dimension)
        case .float32L2:
            return lk_l2_f32(query, code.assumingMemoryBound(to: Float.self), dimension)
        case .float16Dot:
            return offset - lk_dot_f16(query, code.assumingMemoryBound(to: UInt16.self), dimension)
        case .float16L2:
            return lk_l2_f16(query, code.assumingMemoryBound(to: UInt16.self), dimension)
        case .int8Dot:
            return offset - (constant + lk_dot_u8(query, code.assumingMemoryBound(to: UInt8.self), dimension))
        case .int8L2:
            return lk_l2_u8(query, scale ?? query, code.assumingMemoryBound(to: UInt8.self), dimension)
        }
    }
}
