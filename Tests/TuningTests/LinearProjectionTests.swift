import Testing
@testable import Tuning

@Suite struct LinearProjectionTests {
    @Test func bytesRoundTrip() throws {
        let weights: [Float] = [1, -2.5, 0, 3e-7, .pi, 42]
        let projection = try #require(LinearProjection(inputDimension: 3, outputDimension: 2, weights: weights))
        let read = try #require(LinearProjection(bytes: projection.bytes, inputDimension: 3, outputDimension: 2))
        #expect(read == projection)
        #expect(LinearProjection(bytes: projection.bytes, inputDimension: 2, outputDimension: 2) == nil)
        #expect(LinearProjection(inputDimension: 1, outputDimension: 1, weights: [.nan]) == nil)
    }

    @Test func twoLayerHeadBytesAndProjection() throws {
        // W1: 3 -> 2 (the second hidden unit is switched off by the ReLU for this input), W2: 2 -> 2.
        let head = try #require(TwoLayerHead(inputDimension: 3, hiddenDimension: 2, outputDimension: 2,
                                             first: [1, 0, 0, 0, -1, 0], second: [2, 0, 1, 1]))
        let tuned = TunedHead.twoLayer(head)
        let read = try #require(TunedHead(bytes: tuned.bytes, inputDimension: 3, outputDimension: 2))
        #expect(read == tuned)
        // x = (3, 4, 0): hidden relu(3, -4) = (3, 0); output (6, 3), normalised.
        let out = try #require(tuned.project([[3, 4, 0]]).first ?? nil)
        let norm = (36 + 9 as Float).squareRoot()
        #expect(abs(out[0] - 6 / norm) < 1e-6 && abs(out[1] - 3 / norm) < 1e-6)
        // A linear projection's bytes still read as one; the wrong shape reads as nothing.
        let linear = try #require(LinearProjection(inputDimension: 3, outputDimension: 2, weights: [1, 0, 0, 0, 1, 0]))
        #expect(TunedHead(bytes: linear.bytes, inputDimension: 3, outputDimension: 2) == .linear(linear))
        #expect(TunedHead(bytes: tuned.bytes, inputDimension: 4, outputDimension: 2) == nil)
        #expect(TunedHead(bytes: Array(tuned.bytes.dropLast(4)), inputDimension: 3, outputDimension: 2) == nil)
    }
}
