import Foundation
import VectorIndex

/// PCA-whitening learned from a set of vectors: centre them, rotate onto their principal axes and
/// scale each axis to unit variance, then L2-normalise. In retrieval it evens out the directions a
/// network over-uses (Jégou and Chum, 2012). Learned here from the gallery, which is smaller than
/// the dimension, so the principal axes come from the n x n Gram matrix rather than the d x d
/// covariance: the same axes, for the cost of an eigendecomposition of the smaller matrix.
public struct Whitening: Sendable {
    public let mean: [Float]
    /// One principal axis per row (unit length), largest variance first.
    public let axes: [[Float]]
    /// 1 / sqrt(variance + ridge) per axis.
    public let scales: [Float]

    /// Learns the whitening of `vectors` (at least two, all of one dimension). Axes whose variance
    /// is below 1e-6 of the largest are dropped; a ridge (`ridge` times the mean variance, 1e-3 by
    /// default) is added to every variance, which keeps the smallest axes from being blown up by noise.
    public init?(learningFrom vectors: [[Float]], ridge relativeRidge: Double = 1e-3) {
        guard vectors.count >= 2, let dimension = vectors.first?.count, dimension > 0,
              vectors.allSatisfy({ $0.count == dimension }) else { return nil }
        let n = vectors.count
        var mean = [Double](repeating: 0, count: dimension)
        for vector in vectors { for i in 0..<dimension { mean[i] += Double(vector[i]) } }
        for i in 0..<dimension { mean[i] /= Double(n) }
        let centred = vectors.map { vector in (0..<dimension).map { Double(vector[$0]) - mean[$0] } }
        var gram = [Double](repeating: 0, count: n * n)
        for a in 0..<n {
            for b in a..<n {
                var dot = 0.0
                for i in 0..<dimension { dot += centred[a][i] * centred[b][i] }
                gram[a * n + b] = dot
                gram[b * n + a] = dot
            }
        }
        let (values, vectorsOfGram) = Self.symmetricEigen(gram, size: n)
        let order = values.indices.sorted { values[$0] > values[$1] }
        guard let largest = order.first.map({ values[$0] }), largest > 0 else { return nil }
        let kept = order.filter { values[$0] > largest * 1e-6 }
        let variances = kept.map { values[$0] / Double(n) }
        let ridge = relativeRidge * variances.reduce(0, +) / Double(variances.count)
        var axes: [[Float]] = []
        var scales: [Float] = []
        for (position, index) in kept.enumerated() {
            // Axis u = X^T v / |X^T v| for the Gram eigenvector v.
            var axis = [Double](repeating: 0, count: dimension)
            for row in 0..<n {
                let weight = vectorsOfGram[row * n + index]
                if weight == 0 { continue }
                for i in 0..<dimension { axis[i] += weight * centred[row][i] }
            }
            let norm = axis.reduce(0) { $0 + $1 * $1 }.squareRoot()
            guard norm > 0 else { continue }
            axes.append(axis.map { Float($0 / norm) })
            scales.append(Float(1 / (variances[position] + ridge).squareRoot()))
        }
        self.mean = mean.map { Float($0) }
        self.axes = axes
        self.scales = scales
    }

    /// The whitened, L2-normalised form of `vector`.
    public func apply(_ vector: [Float]) -> [Float] {
        let centred = zip(vector, mean).map { $0 - $1 }
        var out = axes.enumerated().map { index, axis in VectorMath.dot(axis, centred) * scales[index] }
        let norm = out.reduce(0) { $0 + $1 * $1 }.squareRoot()
        if norm > 0 { out = out.map { $0 / norm } }
        return out
    }

    /// Eigenvalues and eigenvectors (column j of the row-major result) of a symmetric matrix, by
    /// cyclic Jacobi rotations: simple and accurate, fine for the few hundred rows of a gallery.
    static func symmetricEigen(_ matrix: [Double], size n: Int) -> (values: [Double], vectors: [Double]) {
        var a = matrix
        var v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { v[i * n + i] = 1 }
        for _ in 0..<60 {
            var off = 0.0
            for p in 0..<n { for q in (p + 1)..<max(p + 1, n) { off += a[p * n + q] * a[p * n + q] } }
            var diagonal = 0.0
            for p in 0..<n { diagonal += a[p * n + p] * a[p * n + p] }
            if off <= 1e-24 * max(diagonal, 1e-300) { break }
            for p in 0..<n {
                for q in (p + 1)..<max(p + 1, n) {
                    let apq = a[p * n + q]
                    if abs(apq) < 1e-300 { continue }
                    let theta = (a[q * n + q] - a[p * n + p]) / (2 * apq)
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot()
                    let s = t * c
                    for k in 0..<n {
                        let akp = a[k * n + p]
                        let akq = a[k * n + q]
                        a[k * n + p] = c * akp - s * akq
                        a[k * n + q] = s * akp + c * akq
                    }
                    for k in 0..<n {
                        let apk = a[p * n + k]
                        let aqk = a[q * n + k]
                        a[p * n + k] = c * apk - s * aqk
                        a[q * n + k] = s * apk + c * aqk
                    }
                    for k in 0..<n {
                        let vkp = v[k * n + p]
                        let vkq = v[k * n + q]
                        v[k * n + p] = c * vkp - s * vkq
                        v[k * n + q] = s * vkp + c * vkq
                    }
                }
            }
        }
        return ((0..<n).map { a[$0 * n + $0] }, v)
    }
}

