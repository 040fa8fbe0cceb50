import CBLAS
import Foundation
import LookalikeSupport

/// A dense row-major matrix of floats, with the few BLAS products training needs.
struct Matrix: Sendable {
    var rows: Int
    var columns: Int
    var values: [Float]

    init(rows: Int, columns: Int, values: [Float]) {
        precondition(values.count == rows * columns, "a matrix's values must fill its shape")
        self.rows = rows
        self.columns = columns
        self.values = values
    }

    init(zeros rows: Int, _ columns: Int) {
        self.init(rows: rows, columns: columns, values: [Float](repeating: 0, count: rows * columns))
    }

    static func identity(_ size: Int) -> Matrix {
        var matrix = Matrix(zeros: size, size)
        for index in 0..<size { matrix.values[index * size + index] = 1 }
        return matrix
    }

    /// The rows `indices`, in that order.
    func gathering(_ indices: [Int]) -> Matrix {
        var out = [Float]()
        out.reserveCapacity(indices.count * columns)
        for index in indices { out += values[index * columns..<(index + 1) * columns] }
        return Matrix(rows: indices.count, columns: columns, values: out)
    }

    subscript(row: Int, column: Int) -> Float {
        get { values[row * columns + column] }
        set { values[row * columns + column] = newValue }
    }

    /// `alpha · op(a) · op(b)`, op being the transpose when asked (sgemm).
    static func product(_ a: Matrix, _ b: Matrix, transposeA: Bool = false, transposeB: Bool = false, alpha: Float = 1) -> Matrix {
        let m = transposeA ? a.columns : a.rows
        let k = transposeA ? a.rows : a.columns
        let n = transposeB ? b.rows : b.columns
        precondition(k == (transposeB ? b.columns : b.rows), "the inner dimensions of a product must agree")
        var out = Matrix(zeros: m, n)
        if m == 0 || n == 0 || k == 0 { return out }
        a.values.withUnsafeBufferPointer { pa in
            b.values.withUnsafeBufferPointer { pb in
                out.values.withUnsafeMutableBufferPointer { pc in
                    cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                                Int32(m), Int32(n), Int32(k), alpha, pa.baseAddress, Int32(a.columns),
                                pb.baseAddress, Int32(b.columns), 0, pc.baseAddress, Int32(n))
                }
            }
        }
        return out
    }

    /// Each row scaled to length 1, with the lengths before (a zero row stays zero, length 0).
    func rowNormalized() -> (Matrix, norms: [Float]) {
        var out = self
        var norms = [Float](repeating: 0, count: rows)
        for row in 0..<rows {
            var sum: Float = 0
            for column in 0..<columns { sum += values[row * columns + column] * values[row * columns + column] }
            let norm = sum.squareRoot()
            norms[row] = norm
            guard norm > 1e-12 else { continue }
            let scale = 1 / norm
            for column in 0..<columns { out.values[row * columns + column] *= scale }
        }
        return (out, norms)
    }

    /// The gradient with respect to the rows before `rowNormalized()`, given the gradient with
    /// respect to the normalised rows `unit` (norms `norms`): (g - u (u·g)) / |y| per row.
    static func throughNormalization(_ gradient: Matrix, unit: Matrix, norms: [Float]) -> Matrix {
        var out = gradient
        let columns = gradient.columns
        for row in 0..<gradient.rows {
            guard norms[row] > 1e-12 else {
                for column in 0..<columns { out.values[row * columns + column] = 0 }
                continue
            }
            var dot: Float = 0
            for column in 0..<columns { dot += unit.values[row * columns + column] * gradient.values[row * columns + column] }
            let scale = 1 / norms[row]
            for column in 0..<columns {
                let index = row * columns + column
                out.values[index] = (gradient.values[index] - unit.values[index] * dot) * scale
            }
        }
        return out
    }
}

/// Adam (Kingma and Ba, 2015) for one matrix of parameters.
struct AdamState: Sendable {
    private var first: [Float]
    private var second: [Float]
    private var step = 0
    let learningRate: Float
    let beta1: Float = 0.9
    let beta2: Float = 0.999
    let epsilon: Float = 1e-8

    init(count: Int, learningRate: Float) {
        first = [Float](repeating: 0, count: count)
        second = [Float](repeating: 0, count: count)
        self.learningRate = learningRate
    }

    mutating func update(_ parameters: inout [Float], gradient: [Float]) {
        step += 1
        let correction1 = 1 - pow(beta1, Float(step))
        let correction2 = 1 - pow(beta2, Float(step))
        let rate = learningRate * correction2.squareRoot() / correction1
        for index in parameters.indices {
            let g = gradient[index]
            first[index] = beta1 * first[index] + (1 - beta1) * g
            second[index] = beta2 * second[index] + (1 - beta2) * g * g
            parameters[index] -= rate * first[index] / (second[index].squareRoot() + epsilon)
        }
    }
}

/// The tuning's generator: equal seeds, equal splits, batches and starting weights.
typealias SeededGenerator = SplitMix64

extension SeededGenerator {
    /// `count` draws from a normal distribution of mean 0 (Box and Muller's transform).
    mutating func normals(_ count: Int, deviation: Float) -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(count + 1)
        while out.count < count {
            let u = Float.random(in: Float.ulpOfOne..<1, using: &self)
            let v = Float.random(in: 0..<1, using: &self)
            let radius = (-2 * log(u)).squareRoot() * deviation
            out.append(radius * cos(2 * .pi * v))
            out.append(radius * sin(2 * .pi * v))
        }
        return Array(out.prefix(count))
    }
}
