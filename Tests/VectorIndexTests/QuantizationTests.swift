import CVectorKernels
import Foundation
import LookalikeSupport
import Testing
@testable import VectorIndex

/// The distance kernels and the compressed encodings of the HNSW index.
@Suite("Quantization and kernels", .serialized)
struct QuantizationTests {
    static func randomVector(_ count: Int, _ random: inout SplitMix64, range: ClosedRange<Float> = -1...1) -> [Float] {
        (0..<count).map { _ in
            range.lowerBound + (range.upperBound - range.lowerBound) * Float(random.next() >> 40) / Float(1 << 24)
        }
    }

    static func close(_ a: Float, _ b: Float, relative: Float = 1e-4) -> Bool {
        abs(a - b) <= relative * max(1, abs(a), abs(b))
    }

    @Test("a quantizer trained one vector at a time equals one trained on all at once; a vector of another dimension is left out")
    func trainerMatchesBatch() {
        var random = SplitMix64(seed: 11)
        let dimension = 96
        let vectors = (0..<500).map { _ in Self.randomVector(dimension, &random, range: -3...2) }
        let whole = ScalarQuantizer.train(on: vectors.flatMap { $0 }, dimension: dimension, normalizeForCosine: true)
        var trainer = ScalarQuantizer.Trainer(dimension: dimension, normalizeForCosine: true)
        for vector in vectors { trainer.add(vector) }
        trainer.add([1, 2, 3])  // another dimension: ignored
        #expect(trainer.count == vectors.count)
        #expect(trainer.quantizer() == whole)
        #expect(whole.scale.allSatisfy { $0 > 0 })
        let empty = ScalarQuantizer.Trainer(dimension: dimension).quantizer()
        #expect(empty.scale.allSatisfy { $0 == 0 } && empty.minimum.allSatisfy { $0 == 0 })
    }

    @Test("every kernel set the CPU has (portable, AVX2, AVX-512) agrees with a plain sum at every length and alignment")
    func kernels() {
        var random = SplitMix64(seed: 3)
        var tested: [String] = []
        // Each set is called through its own pointers: the kernels in use stay as they are for
        // the tests running meanwhile.
        for level in [LK_KERNELS_PORTABLE, LK_KERNELS_AVX2, LK_KERNELS_AVX512] {
            var set = lk_kernel_set()
            guard lk_kernels_get(Int32(level), &set) == 1, let dotF32 = set.dot_f32, let l2F32 = set.l2_f32,
                  let dotF16 = set.dot_f16, let l2F16 = set.l2_f16, let dotU8 = set.dot_u8, let l2U8 = set.l2_u8,
                  let name = set.name else { continue }
            let kernels = String(cString: name)
            tested.append(kernels)
            for count in [1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 128, 1280] {
                // One element of slack so the vectors start off a 32-byte boundary too.
                let a = Self.randomVector(count + 1, &random)
                let b = Self.randomVector(count + 1, &random)
                let scale = Self.randomVector(count + 1, &random, range: 0...0.01)
                let codes = (0...count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                let halves = b.map { Float16($0).bitPattern }
                for shift in 0...1 {
                    let x = Array(a[shift..<(shift + count)])
                    let y = Array(b[shift..<(shift + count)])
                    let s = Array(scale[shift..<(shift + count)])
                    let c = Array(codes[shift..<(shift + count)])
                    let h = Array(halves[shift..<(shift + count)])
                    let halfValues = h.map { Float(Float16(bitPattern: $0)) }
                    let dot = zip(x, y).reduce(Float(0)) { $0 + $1.0 * $1.1 }
                    let l2 = zip(x, y).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
                    let dotHalf = zip(x, halfValues).reduce(Float(0)) { $0 + $1.0 * $1.1 }
                    let l2Half = zip(x, halfValues).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
                    let dotCode = zip(x, c).reduce(Float(0)) { $0 + $1.0 * Float($1.1) }
                    var l2Code: Float = 0
                    for i in 0..<count {
                        let d = x[i] - s[i] * Float(c[i])
                        l2Code += d * d
                    }
                    #expect(Self.close(dotF32(x, y, count), dot), "\(kernels) dot_f32 at \(count)")
                    #expect(Self.close(l2F32(x, y, count), l2), "\(kernels) l2_f32 at \(count)")
                    #expect(Self.close(dotF16(x, h, count), dotHalf), "\(kernels) dot_f16 at \(count)")
                    #expect(Self.close(l2F16(x, h, count), l2Half), "\(kernels) l2_f16 at \(count)")
                    #expect(Self.close(dotU8(x, c, count), dotCode), "\(kernels) dot_u8 at \(count)")
                    #expect(Self.close(l2U8(x, s, c, count), l2Code), "\(kernels) l2_u8 at \(count)")
                    var decoded = [Float](repeating: 0, count: count)
                    lk_decode_f16(h, &decoded, count)
                    #expect(decoded == halfValues)
                }
            }
        }
        #expect(tested.contains("portable"))
        print("kernel sets tested: \(tested.joined(separator: ", "))")
    }

    @Test("half-precision decoding is exact for zeros, subnormals, infinities and the extremes")
    func halfEdgeCases() {
        let values: [Float16] = [0, -Float16.zero, 1, -2.5, .leastNonzeroMagnitude, .leastNormalMagnitude, .greatestFiniteMagnitude,
                                 -.greatestFiniteMagnitude, .infinity, -.infinity]
        var decoded = [Float](repeating: 0, count: values.count)
        lk_decode_f16(values.map(\.bitPattern), &decoded, values.count)
        #expect(decoded == values.map { Float($0) })
        #expect(decoded[1].sign == .minus)
    }

    @Test("the 8-bit quantiser learns each dimension's range, rounds to the nearest step and clamps")
    func quantizer() {
        let quantizer = ScalarQuantizer.train(on: [0, -1, 10, 3, 5, 4, 2, 1], dimension: 2)
        #expect(quantizer.minimum == [0, -1])
        #expect(quantizer.scale == [10.0 / 255, 5.0 / 255])
        var code = [UInt8](repeating: 0, count: 2)
        quantizer.encode([5.1, 100], into: &code)
        #expect(code == [130, 255])  // 5.1 is step 130.05; 100 is above the range and clamped
        quantizer.encode([-7, 1.6], into: &code)
        #expect(code == [0, 133])  // -7 is below the range; 1.6 is step 132.6
        var back = [Float](repeating: 0, count: 2)
        quantizer.decode(code, into: &back)
        #expect(back[0] == 0)
        #expect(abs(back[1] - 1.6) <= 5.0 / 255 / 2 + 1e-6)
        // A constant dimension has no range: every value codes to 0 and decodes to the constant.
        let flat = ScalarQuantizer.train(on: [2, 2, 2], dimension: 1)
        var one = [UInt8](repeating: 9, count: 1)
        flat.encode([7], into: &one)
        #expect(one == [0])
        var constant = [Float](repeating: 0, count: 1)
        flat.decode(one, into: &constant)
        #expect(constant == [2])
    }

    /// The full-precision vectors of the shared 20k set, for re-scoring.
    struct Exact: ExactVectorSource {
        let vectors: [[Float]]
        func exactVectors(for ids: [String]) throws -> [[Float]?] {
            ids.map { id in Int(id.dropFirst()).map { vectors[$0] } }
        }
    }

    static func recall(_ index: HNSWIndex, _ built: HNSWIndexTests.Built, rescoring: Bool) throws -> Double {
        let source = Exact(vectors: built.vectors)
        var found = 0
        for query in built.queries {
            let truth = Set(try built.exact.search(query, k: 10, where: nil).map(\.id))
            let hits = try index.search(query, k: 10, efSearch: 64, filter: nil, rescoringFrom: rescoring ? source : nil)
            found += hits.filter { truth.contains($0.id) }.count
        }
        return Double(found) / Double(built.queries.count * 10)
    }

    @Test("int8 and float16 graphs with re-scoring lose at most one point of recall@10 against float32",
          arguments: ["int8", "float16"])
    func compressedRecall(encodingName: String) throws {
        let built = try HNSWIndexTests.shared.get()
        let flat = built.vectors.flatMap { $0 }
        let encoding: VectorEncoding = encodingName == "int8"
            ? .int8(ScalarQuantizer.train(on: flat, dimension: 128, normalizeForCosine: true)) : .float16
        let index = HNSWIndex(dimension: 128, encoding: encoding)
        try index.add(ids: built.vectors.indices.map { "v\($0)" }, vectors: built.vectors)
        #expect(index.encoding.name == encodingName)
        let baseline = try Self.recall(built.index, built, rescoring: false)
        let rescored = try Self.recall(index, built, rescoring: true)
        let raw = try Self.recall(index, built, rescoring: false)
        #expect(rescored >= baseline - 0.01, "\(encodingName): \(rescored) with re-scoring against float32 \(baseline)")
        #expect(raw > 0.8, "\(encodingName) without re-scoring: \(raw)")
        #expect(index.vectorBytes * (encodingName == "int8" ? 4 : 2) == built.index.vectorBytes)
        // Re-scored scores are the exact cosine similarities.
        let query = built.queries[0]
        let hits = try index.search(query, k: 5, efSearch: 64, filter: nil, rescoringFrom: Exact(vectors: built.vectors))
        let truth = try built.exact.search(query, k: 5, where: nil)
        #expect(hits.map(\.id) == truth.map(\.id))
        for (hit, exact) in zip(hits, truth) { #expect(abs(hit.score - exact.score) < 1e-5) }
    }

    @Test("compressed encodings rank like exact search under every metric", arguments: Metric.allCases)
    func compressedMetrics(metric: Metric) throws {
        let vectors = HNSWIndexTests.clustered(count: 500, dimension: 24, clusters: 10, seed: 11)
        let query = vectors[42].map { $0 * 1.5 }
        let distances = vectors.map { vector -> Float in
            let dot = zip(vector, query).map { $0 * $1 }.reduce(0, +)
            switch metric {
            case .cosine: return -dot / vector.map { $0 * $0 }.reduce(0, +).squareRoot()
            case .innerProduct: return -dot
            case .l2: return zip(vector, query).map { ($0 - $1) * ($0 - $1) }.reduce(0, +)
            }
        }
        let expected = distances.indices.sorted { distances[$0] < distances[$1] }.prefix(5).map { "v\($0)" }
        let quantizer = ScalarQuantizer.train(on: vectors.flatMap { $0 }, dimension: 24, normalizeForCosine: metric == .cosine)
        for encoding in [VectorEncoding.float16, .int8(quantizer)] {
            let index = HNSWIndex(dimension: 24, metric: metric, encoding: encoding)
            for (offset, vector) in vectors.enumerated() { try index.add(id: "v\(offset)", vector: vector) }
            let hits = try index.search(query, k: 5, efSearch: 500, filter: nil, rescoringFrom: Exact(vectors: vectors))
            #expect(hits.map(\.id) == expected, "\(metric) \(encoding.name)")
        }
    }

    @Test("compressed indexes round-trip through a snapshot with their quantiser", arguments: ["int8", "float16"])
    func compressedSnapshot(encodingName: String) throws {
        let folder = try HNSWSnapshotTests.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let vectors = HNSWIndexTests.clustered(count: 1_000, dimension: 20, clusters: 10, seed: 5)
        let encoding: VectorEncoding = encodingName == "int8"
            ? .int8(ScalarQuantizer.train(on: vectors.flatMap { $0 }, dimension: 20, normalizeForCosine: true)) : .float16
        let index = HNSWIndex(dimension: 20, encoding: encoding)
        for (offset, vector) in vectors.enumerated() { try index.add(id: "v\(offset)", vector: vector) }
        let file = folder.appendingPathComponent("index.hnsw")
        try index.save(to: file)
        let loaded = try HNSWIndex.load(from: file)
        #expect(loaded.encoding == index.encoding)
        for query in vectors.prefix(50) {
            #expect(try loaded.search(query, k: 10, filter: nil) == (try index.search(query, k: 10, filter: nil)))
        }
    }

    @Test("an int8 quantiser of the wrong dimension falls back to float32 instead of misreading vectors")
    func wrongQuantizer() {
        let index = HNSWIndex(dimension: 8, encoding: .int8(ScalarQuantizer.train(on: [1, 2, 3], dimension: 3)))
        #expect(index.encoding == .float32)
    }
}
