import Foundation

/// A learned linear map from a model's embedding space to a tuned one: `y = W x`, then L2
/// normalisation, so cosine similarity keeps its meaning. `weights` holds W row by row
/// (`outputDimension` rows of `inputDimension` values).
public struct LinearProjection: Sendable, Equatable {
    public let inputDimension: Int
    public let outputDimension: Int
    public let weights: [Float]

    /// Nil when the weights do not fill the shape or are not all finite.
    public init?(inputDimension: Int, outputDimension: Int, weights: [Float]) {
        guard inputDimension > 0, outputDimension > 0, weights.count == inputDimension * outputDimension,
              weights.allSatisfy(\.isFinite) else { return nil }
        self.inputDimension = inputDimension
        self.outputDimension = outputDimension
        self.weights = weights
    }

    init(matrix: Matrix) {
        inputDimension = matrix.columns
        outputDimension = matrix.rows
        weights = matrix.values
    }

    var matrix: Matrix { Matrix(rows: outputDimension, columns: inputDimension, values: weights) }

    /// The map that changes nothing.
    public static func identity(dimension: Int) -> LinearProjection {
        LinearProjection(matrix: .identity(dimension))
    }

    /// Each vector projected and scaled to length 1, in one matrix product per 4,096 vectors; nil
    /// for a vector of the wrong dimension, or one that projects to zero or to something not finite.
    public func project(_ vectors: [[Float]]) -> [[Float]?] {
        let map = matrix
        return TunedHead.project(vectors, inputDimension: inputDimension, outputDimension: outputDimension) {
            Matrix.product($0, map, transposeB: true)
        }
    }

    /// The weights as little-endian float32 bytes, row by row (how stores keep them).
    public var bytes: [UInt8] { Self.littleEndianBytes(weights) }

    /// Reads `bytes` written by `bytes`; nil when they do not fill the shape or are not finite.
    public init?(bytes: [UInt8], inputDimension: Int, outputDimension: Int) {
        guard inputDimension > 0, outputDimension > 0, bytes.count == inputDimension * outputDimension * 4 else { return nil }
        self.init(inputDimension: inputDimension, outputDimension: outputDimension, weights: Self.floats(bytes))
    }

    static func littleEndianBytes(_ values: [Float]) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(values.count * 4)
        for value in values {
            withUnsafeBytes(of: value.bitPattern.littleEndian) { out += $0 }
        }
        return out
    }

    /// Little-endian float32 values (a trailing partial value is ignored).
    static func floats(_ bytes: [UInt8]) -> [Float] {
        (0..<bytes.count / 4).map { index in
            let offset = index * 4
            return Float(bitPattern: UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16
                | UInt32(bytes[offset + 3]) << 24)
        }
    }
}
