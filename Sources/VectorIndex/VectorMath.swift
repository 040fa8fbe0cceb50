/// Vector arithmetic on the hot path of search, written for the compiler to vectorise.
public enum VectorMath {
    /// The dot product of two equally long vectors; for L2-normalised vectors it is their cosine.
    @inlinable
    public static func dot(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) -> Float {
        let count = min(a.count, b.count)
        guard let pa = a.baseAddress, let pb = b.baseAddress else { return 0 }
        var sums = SIMD16<Float>()
        var index = 0
        while index + 16 <= count {
            let va = UnsafeRawPointer(pa + index).loadUnaligned(as: SIMD16<Float>.self)
            let vb = UnsafeRawPointer(pb + index).loadUnaligned(as: SIMD16<Float>.self)
            sums += va * vb
            index += 16
        }
        var total = sums.sum()
        while index < count {
            total += pa[index] * pb[index]
            index += 1
        }
        return total
    }

    /// The squared Euclidean distance of two equally long vectors.
    @inlinable
    public static func squaredDistance(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) -> Float {
        let count = min(a.count, b.count)
        guard let pa = a.baseAddress, let pb = b.baseAddress else { return 0 }
        var sums = SIMD16<Float>()
        var index = 0
        while index + 16 <= count {
            let difference = UnsafeRawPointer(pa + index).loadUnaligned(as: SIMD16<Float>.self)
                - UnsafeRawPointer(pb + index).loadUnaligned(as: SIMD16<Float>.self)
            sums += difference * difference
            index += 16
        }
        var total = sums.sum()
        while index < count {
            let difference = pa[index] - pb[index]
            total += difference * difference
            index += 1
        }
        return total
    }

    public static func dot(_ a: [Float], _ b: [Float]) -> Float {
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in dot(pa, pb) } }
    }

    /// `sum += weight * vector`, element by element, over the length both have.
    public static func add(_ vector: [Float], scaledBy weight: Float, to sum: inout [Float]) {
        for offset in 0..<min(sum.count, vector.count) { sum[offset] += weight * vector[offset] }
    }
}
