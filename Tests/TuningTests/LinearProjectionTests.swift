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
}
