import Foundation

/// A small two-layer head: `y = W2 relu(W1 x)`, then L2 normalisation. `first` holds W1 row by
/// row (`hiddenDimension` rows of `inputDimension`), `second` W2 (`outputDimension` rows of
/// `hiddenDimension`).
public struct TwoLayerHead: Sendable, Equatable {
    public let inputDimension: Int
    public let hiddenDimension: Int
    public let outputDimension: Int
    public let first: [Float]
    public let second: [Float]

    /// Nil when the weights do not fill the shapes or are not all finite.
    public init?(inputDimension: Int, hiddenDimension: Int, outputDimension: Int, first: [Float], second: [Float]) {
        guard inputDimension > 0, hiddenDimension > 0, outputDimension > 0, first.count == hiddenDimension * inputDimension,
              second.count == outputDimension * hiddenDimension, first.allSatisfy(\.isFinite), second.allSatisfy(\.isFinite) else { return nil }
        self.inputDimension = inputDimension
        self.hiddenDimension = hiddenDimension
        self.outputDimension = outputDimension
        self.first = first
        self.second = second
    }

    init(first: Matrix, second: Matrix) {
        inputDimension = first.columns
        hiddenDimension = first.rows
        outputDimension = second.rows
        self.first = first.values
        self.second = second.values
    }

    /// The rows of `x` through the head, before normalisation.
    func apply(_ x: Matrix) -> Matrix {
        var hidden = Matrix.product(x, Matrix(rows: hiddenDimension, columns: inputDimension, values: first), transposeB: true)
        for index in hidden.values.indices where hidden.values[index] < 0 { hidden.values[index] = 0 }
        return Matrix.product(hidden, Matrix(rows: outputDimension, columns: hiddenDimension, values: second), transposeB: true)
    }
}

/// What `tune` learned: a linear projection or a two-layer head over a model's vectors.
public enum TunedHead: Sendable, Equatable {
    case linear(LinearProjection)
    case twoLayer(TwoLayerHead)

    /// "linear" or "two-layer", as `TuningOptions.Head` names them.
    public var kind: String {
        switch self {
        case .linear: return TuningOptions.Head.linear.rawValue
        case .twoLayer: return TuningOptions.Head.twoLayer.rawValue
        }
    }

    public var inputDimension: Int {
        switch self {
        case .linear(let projection): return projection.inputDimension
        case .twoLayer(let head): return head.inputDimension
        }
    }

    public var outputDimension: Int {
        switch self {
        case .linear(let projection): return projection.outputDimension
        case .twoLayer(let head): return head.outputDimension
        }
    }

    /// Each vector through the head and scaled to length 1, 4,096 at a time; nil for a vector of
    /// the wrong dimension, or one that maps to zero or to something not finite.
    public func project(_ vectors: [[Float]]) -> [[Float]?] {
        switch self {
        case .linear(let projection): return projection.project(vectors)
        case .twoLayer(let head): return Self.project(vectors, inputDimension: head.inputDimension, outputDimension: head.outputDimension, head.apply)
        }
    }

    static func project(_ vectors: [[Float]], inputDimension: Int, outputDimension: Int, _ apply: (Matrix) -> Matrix) -> [[Float]?] {
        var out: [[Float]?] = []
        out.reserveCapacity(vectors.count)
        var start = 0
        while start < vectors.count {
            let batch = vectors[start..<min(start + 4_096, vectors.count)]
            start += batch.count
            var values = [Float]()
            values.reserveCapacity(batch.count * inputDimension)
            for vector in batch {
                if vector.count == inputDimension { values += vector } else { values += repeatElement(0, count: inputDimension) }
            }
            let (unit, norms) = apply(Matrix(rows: batch.count, columns: inputDimension, values: values)).rowNormalized()
            for (row, vector) in batch.enumerated() {
                let slice = Array(unit.values[row * outputDimension..<(row + 1) * outputDimension])
                let usable = vector.count == inputDimension && norms[row] > 1e-12 && norms[row].isFinite && slice.allSatisfy { $0.isFinite }
                out.append(usable ? slice : nil)
            }
        }
        return out
    }

    /// Four bytes that open a two-layer head's bytes (a linear projection's are its weights alone).
    static let twoLayerMagic: [UInt8] = Array("LKH2".utf8)

    /// How stores keep it: a linear projection as its little-endian float32 weights; a two-layer
    /// head as `LKH2`, its hidden dimension (UInt32, little-endian), four zero bytes, then W1 and W2.
    public var bytes: [UInt8] {
        switch self {
        case .linear(let projection): return projection.bytes
        case .twoLayer(let head):
            var out = Self.twoLayerMagic
            withUnsafeBytes(of: UInt32(head.hiddenDimension).littleEndian) { out += $0 }
            out += [0, 0, 0, 0]
            out += LinearProjection.littleEndianBytes(head.first)
            out += LinearProjection.littleEndianBytes(head.second)
            return out
        }
    }

    /// Reads `bytes` written by `bytes`; nil when they fill neither shape or hold values not finite.
    public init?(bytes: [UInt8], inputDimension: Int, outputDimension: Int) {
        if bytes.count >= 12, Array(bytes[0..<4]) == Self.twoLayerMagic {
            let hidden = Int(UInt32(bytes[4]) | UInt32(bytes[5]) << 8 | UInt32(bytes[6]) << 16 | UInt32(bytes[7]) << 24)
            let firstCount = hidden * inputDimension
            let secondCount = outputDimension * hidden
            if hidden > 0, bytes.count == 12 + 4 * (firstCount + secondCount) {
                let floats = LinearProjection.floats(Array(bytes[12...]))
                guard let head = TwoLayerHead(inputDimension: inputDimension, hiddenDimension: hidden, outputDimension: outputDimension,
                                              first: Array(floats[0..<firstCount]), second: Array(floats[firstCount...])) else { return nil }
                self = .twoLayer(head)
                return
            }
        }
        guard let projection = LinearProjection(bytes: bytes, inputDimension: inputDimension, outputDimension: outputDimension) else { return nil }
        self = .linear(projection)
    }
}
