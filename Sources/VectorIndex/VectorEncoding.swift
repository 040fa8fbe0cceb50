import CVectorKernels

/// How an index stores its vectors. Smaller encodings hold more vectors in memory and read less of
/// it per distance, at some precision; `HNSWIndex.search(_:k:efSearch:filter:rescoringFrom:)`
/// re-scores the candidates from full-precision vectors to win the precision back.
public enum VectorEncoding: Sendable, Equatable {
    /// 4 bytes a dimension, exact.
    case float32
    /// IEEE half precision, 2 bytes a dimension: about three decimal digits.
    case float16
    /// 1 byte a dimension, on a per-dimension range learned from data.
    case int8(ScalarQuantizer)

    /// Bytes one encoded vector takes.
    func codeBytes(dimension: Int) -> Int {
        switch self {
        case .float32: return 4 * dimension
        case .float16: return 2 * dimension
        case .int8: return dimension
        }
    }

    /// A stable name, for reports and the snapshot file.
    public var name: String {
        switch self {
        case .float32: return "float32"
        case .float16: return "float16"
        case .int8: return "int8"
        }
    }

    var code: UInt32 {
        switch self {
        case .float32: return 0
        case .float16: return 1
        case .int8: return 2
        }
    }
}

/// Scalar quantisation to 8 bits: each dimension's range [minimum, minimum + 255 * scale] is
/// learned from training vectors, and a value is stored as the nearest of its 256 steps. Values
/// outside the trained range are clamped to it.
public struct ScalarQuantizer: Sendable, Equatable {
    public let minimum: [Float]
    public let scale: [Float]

    public var dimension: Int { minimum.count }

    /// A quantiser with the given range per dimension; `scale` is the size of one of the 255 steps.
    public init(minimum: [Float], scale: [Float]) {
        self.minimum = minimum
        self.scale = scale.count == minimum.count ? scale : [Float](repeating: 0, count: minimum.count)
    }

    /// Learns each dimension's range from `vectors` (row-major, `dimension` values a row). For an
    /// index with the cosine metric, pass vectors normalised as the index stores them
    /// (`normalizeForCosine: true` does it here).
    public static func train(on vectors: [Float], dimension: Int, normalizeForCosine: Bool = false) -> ScalarQuantizer {
        var trainer = Trainer(dimension: dimension, normalizeForCosine: normalizeForCosine)
        let rows = vectors.count / trainer.dimension
        for row in 0..<rows {
            trainer.add(Array(vectors[(row * trainer.dimension)..<((row + 1) * trainer.dimension)]))
        }
        return trainer.quantizer()
    }

    /// Trains a quantizer one vector at a time, holding only each dimension's lowest and highest
    /// value: a graph of 100,000 vectors is trained without reading them all into memory at once.
    public struct Trainer: Sendable {
        public let dimension: Int
        /// How many vectors were taken.
        public private(set) var count = 0
        let normalizeForCosine: Bool
        var low: [Float]
        var high: [Float]

        public init(dimension: Int, normalizeForCosine: Bool = false) {
            self.dimension = max(1, dimension)
            self.normalizeForCosine = normalizeForCosine
            low = [Float](repeating: .infinity, count: self.dimension)
            high = [Float](repeating: -.infinity, count: self.dimension)
        }

        /// Takes one vector into the ranges; one of another dimension is ignored.
        public mutating func add(_ vector: [Float]) {
            guard vector.count == dimension else { return }
            let vector = normalizeForCosine ? FlatIndex.normalized(vector) : vector
            for (position, value) in vector.enumerated() where value.isFinite {
                low[position] = min(low[position], value)
                high[position] = max(high[position], value)
            }
            count += 1
        }

        /// The quantizer of the vectors taken so far (every step 0 when none was).
        public func quantizer() -> ScalarQuantizer {
            var low = self.low, high = self.high
            var scale = [Float](repeating: 0, count: dimension)
            for position in 0..<dimension {
                if !low[position].isFinite || !high[position].isFinite {
                    low[position] = 0
                    high[position] = 0
                }
                scale[position] = (high[position] - low[position]) / 255
            }
            return ScalarQuantizer(minimum: low, scale: scale)
        }
    }

    /// Writes the 8-bit code of `vector` to `code`.
    func encode(_ vector: UnsafePointer<Float>, into code: UnsafeMutablePointer<UInt8>) {
        for position in 0..<dimension {
            let step = scale[position]
            guard step > 0 else {
                code[position] = 0
                continue
            }
            let level = ((vector[position] - minimum[position]) / step).rounded()
            code[position] = UInt8(max(0, min(255, level.isNaN ? 0 : level)))
        }
    }

    /// The vector a code stands for.
    func decode(_ code: UnsafePointer<UInt8>, into vector: UnsafeMutablePointer<Float>) {
        for position in 0..<dimension {
            vector[position] = minimum[position] + scale[position] * Float(code[position])
        }
    }
}

/// Full-precision vectors of stored items, for re-scoring candidates found on compressed codes
/// (FAISS calls the same composition `IndexRefine`). The catalog is one such source.
public protocol ExactVectorSource {
    /// The stored vectors of `ids`, in the same order; nil for an id the source does not have.
    func exactVectors(for ids: [String]) throws -> [[Float]?]
}
