import Foundation
import Testing
@testable import Tuning

/// The trainer's mathematics: each loss's gradient against finite differences, the gradient
/// through normalisation, the product against a plain loop, and the refusals.
@Suite struct MetricTrainerTests {
    /// Rows of unit length, from a seeded generator.
    func unitRows(_ rows: Int, _ columns: Int, seed: UInt64) -> Matrix {
        var generator = SeededGenerator(seed: seed)
        let values = (0..<rows * columns).map { _ in Float.random(in: -1...1, using: &generator) }
        return Matrix(rows: rows, columns: columns, values: values).rowNormalized().0
    }

    /// The loss's gradient with respect to the embeddings against central differences (each probe
    /// on a copy of the loss, so a loss that learns, such as the proxies, starts from the same state):
    /// the share of the probed entries that agree, and the largest entry.
    func gradientAgreement<L: BatchLoss>(_ loss: L, embeddings: Matrix, classes: [Int], step: Float) -> (agree: Double, largest: Float) {
        var probe = loss
        let (_, analytic) = probe.step(embeddings, classes: classes)
        let largest = analytic.values.map(abs).max() ?? 0
        var agree = 0
        var probed = 0
        for index in stride(from: 0, to: embeddings.values.count, by: 3) {
            var plus = embeddings
            var minus = embeddings
            plus.values[index] += step
            minus.values[index] -= step
            var a = loss
            var b = loss
            let numeric = Float((a.step(plus, classes: classes).0 - b.step(minus, classes: classes).0) / Double(2 * step))
            if abs(numeric - analytic.values[index]) <= 0.02 * largest + 1e-4 { agree += 1 }
            probed += 1
        }
        return (Double(agree) / Double(probed), largest)
    }

    @Test("the proxy loss's gradient matches finite differences")
    func proxyGradient() {
        let inputs = unitRows(24, 8, seed: 3)
        let classes = (0..<24).map { $0 % 4 }
        let loss = ProxyLoss(embeddings: inputs, classes: classes, classCount: 4, learningRate: 1e-3)
        let check = gradientAgreement(loss, embeddings: unitRows(12, 8, seed: 4), classes: Array(classes.prefix(12)), step: 1e-2)
        #expect(check.largest > 1e-4, "the gradient is zero everywhere")
        #expect(check.agree == 1, "\(check)")
    }

    @Test("the multi-similarity loss's gradient matches finite differences")
    func multiSimilarityGradient() {
        let embeddings = unitRows(16, 6, seed: 5)
        let classes = (0..<16).map { $0 % 4 }
        // With a mining margin so wide that every pair is kept, the loss is smooth: every entry agrees.
        let smooth = gradientAgreement(MultiSimilarityLoss(margin: 10), embeddings: embeddings, classes: classes, step: 1e-3)
        #expect(smooth.largest > 1e-4, "the gradient is zero everywhere")
        #expect(smooth.agree == 1, "\(smooth)")
        // With the mining margin, a probe that moves a pair across it jumps; those are rare.
        let mined = gradientAgreement(MultiSimilarityLoss(), embeddings: embeddings, classes: classes, step: 1e-3)
        #expect(mined.largest > 1e-4 && mined.agree >= 0.9, "\(mined)")
    }

    @Test("the gradient through normalisation matches finite differences of a linear function of the unit rows")
    func normalisationGradient() {
        var generator = SeededGenerator(seed: 9)
        let raw = Matrix(rows: 3, columns: 5, values: (0..<15).map { _ in Float.random(in: 0.2...2, using: &generator) })
        let weights = (0..<15).map { _ in Float.random(in: -1...1, using: &generator) }
        func value(_ m: Matrix) -> Float { zip(m.rowNormalized().0.values, weights).map { $0 * $1 }.reduce(0, +) }
        let (unit, norms) = raw.rowNormalized()
        let analytic = Matrix.throughNormalization(Matrix(rows: 3, columns: 5, values: weights), unit: unit, norms: norms)
        for index in 0..<15 {
            var plus = raw
            var minus = raw
            plus.values[index] += 1e-3
            minus.values[index] -= 1e-3
            #expect(abs((value(plus) - value(minus)) / 2e-3 - analytic.values[index]) < 2e-3)
        }
    }

    @Test("BLAS products agree with a plain loop, with and without transposes")
    func products() {
        let a = unitRows(4, 3, seed: 1)
        let b = unitRows(5, 3, seed: 2)
        let product = Matrix.product(a, b, transposeB: true, alpha: 2)
        for i in 0..<4 {
            for j in 0..<5 {
                let expected = 2 * (0..<3).map { a[i, $0] * b[j, $0] }.reduce(0, +)
                #expect(abs(product[i, j] - expected) < 1e-5)
            }
        }
        let gram = Matrix.product(a, a, transposeA: true)
        for i in 0..<3 {
            for j in 0..<3 {
                #expect(abs(gram[i, j] - (0..<4).map { a[$0, i] * a[$0, j] }.reduce(0, +)) < 1e-5)
            }
        }
    }

    @Test("the identity changes nothing but the length; a wrong dimension projects to nothing")
    func identityProjection() throws {
        let projection = LinearProjection.identity(dimension: 3)
        let out = projection.project([[3, 0, 4], [1, 2], [0, 0, 0]])
        let first = try #require(out[0])
        #expect(zip(first, [0.6, 0, 0.8] as [Float]).allSatisfy { abs($0 - $1) < 1e-6 })
        #expect(out[1] == nil && out[2] == nil)
    }

    @Test("validation scores mAP@R: 1 when every class is together, lower when classes mix")
    func validationScore() {
        // Two tight classes far apart, then the same points with the labels crossed.
        let vectors = Matrix(rows: 4, columns: 2, values: [1, 0, 0.99, 0.14, 0, 1, 0.14, 0.99])
        let together = Validation(vectors: vectors, classes: [0, 0, 1, 1], queries: [0, 1, 2, 3])
        #expect(abs(together.score(vectors) - 1) < 1e-9)
        let crossed = Validation(vectors: vectors, classes: [0, 1, 0, 1], queries: [0, 1, 2, 3])
        #expect(crossed.score(vectors) == 0)
    }

    @Test("labels that cannot teach anything are refused with the reason")
    func refusals() {
        func reason(_ vectors: [[Float]], _ labels: [String]) -> String {
            do {
                _ = try MetricTrainer.train(vectors: vectors, labels: labels)
                return "trained"
            } catch {
                return "\(error)"
            }
        }
        let v: [[Float]] = [[1, 0], [0, 1], [1, 1], [0.5, 1]]
        #expect(reason(v, ["a", "a", "a", "a"]).contains("same label"))
        #expect(reason(v, ["a", "b", "c", "d"]).contains("two items or more"))
        #expect(reason([[1, 0], [0, 1, 2], [1, 1], [0.5, 1]], ["a", "a", "b", "b"]).contains("vector 1"))
        #expect(reason([[1, 0], [.nan, 1], [1, 1], [0.5, 1]], ["a", "a", "b", "b"]).contains("not finite"))
        #expect(reason(v, ["a", "a", "b"]).contains("3 labels"))
        #expect(reason([], []).contains("no labelled vectors"))
    }
}
