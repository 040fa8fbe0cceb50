import Foundation

/// How a tuning learns.
public struct TuningOptions: Sendable, Equatable {
    public enum Loss: String, CaseIterable, Sendable, Codable {
        /// Normalised softmax over one learned proxy per class (Zhai and Wu, 2019; a proxy-based
        /// loss): every item of a batch is pulled to its class's proxy and pushed from the others,
        /// the nearest wrong proxies weighing most.
        case proxy
        /// Multi-similarity loss with its pair mining (Wang et al., 2019; a contrastive loss): in
        /// class-balanced batches, only the positives less similar than the hardest negative and the
        /// negatives more similar than the easiest positive count.
        case multiSimilarity = "multi-similarity"
    }

    /// Multi-similarity by default: on the held-out labelled items of both category sets it did at
    /// least as well as the proxy loss (docs/QUALITY.md, "Tuned models").
    public var loss: Loss = .multiSimilarity
    /// Seeds the validation split, the batches and the order: equal seeds, equal projections.
    public var seed: UInt64 = 1
    public var maxEpochs = 40
    /// Epochs without a better validation score before training stops.
    public var patience = 4
    public var batchSize = 128
    /// Adam's step size (the proxies take ten times this), chosen on held-out labelled items.
    public var learningRate: Float = 1e-3
    /// The share of each class's labelled items held out to choose the epoch (early stopping) and
    /// to report the gain; classes of one item stay in training.
    public var validationShare = 0.2
    /// Validation queries at most (chosen by the seed): scoring an epoch stays cheap on large sets.
    public var maxValidationQueries = 2_000

    public init() {}
}

/// One epoch of a tuning, as progress reports it.
public struct TuningEpoch: Sendable, Equatable, Codable {
    public let epoch: Int
    /// The mean training loss over the epoch's batches (0 for epoch 0, the base model).
    public let loss: Double
    /// mAP@R of the held-out labelled items (each against every other labelled item).
    public let validation: Double
}

/// What a tuning learned, and how much it helped the held-out items.
public struct TuningResult: Sendable {
    /// The best epoch's projection (the identity when no epoch beat the base model).
    public let projection: LinearProjection
    /// Validation mAP@R of the base model's vectors.
    public let baseline: Double
    /// Validation mAP@R of the best epoch.
    public let best: Double
    /// 0 when no epoch beat the base model.
    public let bestEpoch: Int
    public let epochs: [TuningEpoch]
    public let trainingItems: Int
    public let validationItems: Int
    public let classes: Int
    public var gain: Double { best - baseline }
}

public enum TuningError: Error, Sendable, CustomStringConvertible {
    case tooFewLabels(String)
    case badVector(index: Int, reason: String)

    public var description: String {
        switch self {
        case .tooFewLabels(let reason): return "not enough labels to tune: \(reason)"
        case .badVector(let index, let reason): return "vector \(index) cannot be used: \(reason)"
        }
    }
}

/// Learns a linear projection on top of frozen embeddings so that items with the same label come
/// closer than items with different labels (deep metric learning on the CPU, BLAS for the products).
/// The projection starts as the identity, so epoch 0 is the base model, and the epoch kept is the one
/// with the best mAP@R on a held-out part of the labels.
public enum MetricTrainer {
    public static func train(
        vectors: [[Float]], labels: [String], options: TuningOptions = TuningOptions(),
        progress: (TuningEpoch) -> Void = { _ in }
    ) throws -> TuningResult {
        guard vectors.count == labels.count else { throw TuningError.tooFewLabels("\(vectors.count) vectors for \(labels.count) labels") }
        guard let dimension = vectors.first?.count, dimension > 0 else { throw TuningError.tooFewLabels("no labelled vectors") }
        for (index, vector) in vectors.enumerated() {
            guard vector.count == dimension else {
                throw TuningError.badVector(index: index, reason: "\(vector.count) values where the others have \(dimension)")
            }
            guard vector.allSatisfy(\.isFinite) else { throw TuningError.badVector(index: index, reason: "a value is not finite") }
        }
        var generator = SeededGenerator(seed: options.seed)
        let names = Array(Set(labels)).sorted()
        let classOf = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        let classes = labels.map { classOf[$0] ?? 0 }
        var members = [[Int]](repeating: [], count: names.count)
        for (index, label) in classes.enumerated() { members[label].append(index) }
        guard members.contains(where: { $0.count >= 2 }) else {
            throw TuningError.tooFewLabels("no label is given to two items or more, so nothing says which items are alike")
        }
        guard names.count >= 2 else { throw TuningError.tooFewLabels("every item has the same label, so nothing says which items differ") }

        // Held out per class, by stochastic rounding of the share; every class keeps one item to train on.
        var training: [Int] = []
        var validation: [Int] = []
        for group in members {
            let shuffled = group.shuffled(using: &generator)
            var held = 0
            if group.count >= 2 {
                let wanted = options.validationShare * Double(group.count)
                held = Int(wanted) + (Double.random(in: 0..<1, using: &generator) < wanted - Double(Int(wanted)) ? 1 : 0)
                held = min(held, group.count - 1)
            }
            validation += shuffled.prefix(held)
            training += shuffled.dropFirst(held)
        }
        guard !validation.isEmpty else {
            throw TuningError.tooFewLabels("too few labelled items to hold some out for validation (\(vectors.count) labelled)")
        }
        training.sort()
        validation.sort()
        let queries = Array(validation.shuffled(using: &generator).prefix(options.maxValidationQueries)).sorted()

        let all = Matrix(rows: vectors.count, columns: dimension, values: vectors.flatMap { $0 })
        let scorer = Validation(vectors: all, classes: classes, queries: queries)
        var weights = Matrix.identity(dimension)
        let baseline = scorer.score(weights)
        progress(TuningEpoch(epoch: 0, loss: 0, validation: baseline))
        var epochs = [TuningEpoch(epoch: 0, loss: 0, validation: baseline)]
        var best = (score: baseline, epoch: 0, weights: weights)

        let inputs = all.gathering(training)
        let trainingClasses = training.map { classes[$0] }
        var loss: any BatchLoss = switch options.loss {
        case .proxy: ProxyLoss(inputs: inputs, classes: trainingClasses, classCount: names.count, learningRate: options.learningRate)
        case .multiSimilarity: MultiSimilarityLoss()
        }
        var adam = AdamState(count: weights.values.count, learningRate: options.learningRate)
        var stale = 0
        for epoch in 1...max(1, options.maxEpochs) {
            var total = 0.0
            let batches = loss.batches(classes: trainingClasses, size: options.batchSize, generator: &generator)
            for batch in batches {
                let x = inputs.gathering(batch)
                let y = Matrix.product(x, weights, transposeB: true)
                let (z, norms) = y.rowNormalized()
                let (value, gradientZ) = loss.step(z, classes: batch.map { trainingClasses[$0] })
                total += value
                let gradientY = Matrix.throughNormalization(gradientZ, unit: z, norms: norms)
                let gradientW = Matrix.product(gradientY, x, transposeA: true)
                adam.update(&weights.values, gradient: gradientW.values)
            }
            let score = scorer.score(weights)
            let record = TuningEpoch(epoch: epoch, loss: batches.isEmpty ? 0 : total / Double(batches.count), validation: score)
            epochs.append(record)
            progress(record)
            if score > best.score + 1e-4 {
                best = (score, epoch, weights)
                stale = 0
            } else {
                stale += 1
                if stale >= options.patience { break }
            }
        }
        return TuningResult(projection: LinearProjection(matrix: best.weights), baseline: baseline, best: best.score,
                            bestEpoch: best.epoch, epochs: epochs, trainingItems: training.count,
                            validationItems: validation.count, classes: names.count)
    }
}

/// A loss over a batch of normalised embeddings: its value and its gradient with respect to them.
protocol BatchLoss {
    /// The epoch's batches, as indices into the training items.
    func batches(classes: [Int], size: Int, generator: inout SeededGenerator) -> [[Int]]
    mutating func step(_ embeddings: Matrix, classes: [Int]) -> (Double, Matrix)
}

/// Normalised softmax with a learned proxy per class, scale 16 (temperature 1/16). Proxies start
/// at their class's mean base vector, so the first epochs refine a sensible arrangement.
struct ProxyLoss: BatchLoss {
    private var proxies: Matrix
    private var adam: AdamState
    private let scale: Float = 16

    init(inputs: Matrix, classes: [Int], classCount: Int, learningRate: Float) {
        var means = Matrix(zeros: classCount, inputs.columns)
        for (row, label) in classes.enumerated() {
            for column in 0..<inputs.columns { means[label, column] += inputs[row, column] }
        }
        proxies = means.rowNormalized().0
        // Proxies move faster than the projection (as in the proxy-loss literature): they are few.
        adam = AdamState(count: proxies.values.count, learningRate: learningRate * 10)
    }

    func batches(classes: [Int], size: Int, generator: inout SeededGenerator) -> [[Int]] {
        let order = Array(classes.indices).shuffled(using: &generator)
        return stride(from: 0, to: order.count, by: size).map { Array(order[$0..<min($0 + size, order.count)]) }
    }

    mutating func step(_ embeddings: Matrix, classes: [Int]) -> (Double, Matrix) {
        let (unitProxies, proxyNorms) = proxies.rowNormalized()
        var logits = Matrix.product(embeddings, unitProxies, transposeB: true, alpha: scale)
        let count = Float(embeddings.rows)
        var loss = 0.0
        for row in 0..<logits.rows {
            var largest = -Float.infinity
            for column in 0..<logits.columns { largest = max(largest, logits[row, column]) }
            var sum: Float = 0
            for column in 0..<logits.columns {
                let value = exp(logits[row, column] - largest)
                logits[row, column] = value
                sum += value
            }
            for column in 0..<logits.columns { logits[row, column] /= sum }
            loss -= Double(log(max(logits[row, classes[row]], 1e-30)))
            logits[row, classes[row]] -= 1
            for column in 0..<logits.columns { logits[row, column] /= count }
        }
        // logits now holds dLoss/dLogits.
        let gradientEmbeddings = Matrix.product(logits, unitProxies, alpha: scale)
        let gradientUnitProxies = Matrix.product(logits, embeddings, transposeA: true, alpha: scale)
        let gradientProxies = Matrix.throughNormalization(gradientUnitProxies, unit: unitProxies, norms: proxyNorms)
        adam.update(&proxies.values, gradient: gradientProxies.values)
        return (loss / Double(count), gradientEmbeddings)
    }
}

/// Multi-similarity loss (α 2, β 50, λ 0.5, mining margin 0.1) on class-balanced batches: up to 4
/// items from each of size / 4 classes, classes with two items or more first.
struct MultiSimilarityLoss: BatchLoss {
    var alpha: Float = 2
    var beta: Float = 50
    var base: Float = 0.5
    var margin: Float = 0.1
    var perClass = 4

    func batches(classes: [Int], size: Int, generator: inout SeededGenerator) -> [[Int]] {
        var members: [Int: [Int]] = [:]
        for (index, label) in classes.enumerated() { members[label, default: []].append(index) }
        // Each class's items in a shuffled order, dealt out perClass at a time until all are used.
        var queues = members.keys.sorted().map { (members[$0] ?? []).shuffled(using: &generator) }
        var batches: [[Int]] = []
        var current: [Int] = []
        while queues.contains(where: { !$0.isEmpty }) {
            for position in Array(queues.indices).shuffled(using: &generator) where !queues[position].isEmpty {
                let take = min(perClass, queues[position].count)
                current += queues[position].prefix(take)
                queues[position].removeFirst(take)
                if current.count >= size {
                    batches.append(current)
                    current = []
                }
            }
        }
        if current.count >= 2 { batches.append(current) }
        return batches
    }

    mutating func step(_ embeddings: Matrix, classes: [Int]) -> (Double, Matrix) {
        let n = embeddings.rows
        let similarities = Matrix.product(embeddings, embeddings, transposeB: true)
        var gradientS = Matrix(zeros: n, n)
        var loss = 0.0
        for i in 0..<n {
            var hardestNegative = -Float.infinity
            var easiestPositive = Float.infinity
            for j in 0..<n where j != i {
                let s = similarities[i, j]
                if classes[j] == classes[i] { easiestPositive = min(easiestPositive, s) } else { hardestNegative = max(hardestNegative, s) }
            }
            guard easiestPositive.isFinite, hardestNegative.isFinite else { continue }
            var positiveSum: Float = 0
            var negativeSum: Float = 0
            var kept: [(j: Int, positive: Bool, weight: Float)] = []
            for j in 0..<n where j != i {
                let s = similarities[i, j]
                if classes[j] == classes[i] {
                    guard s - margin < hardestNegative else { continue }
                    let weight = exp(-alpha * (s - base))
                    positiveSum += weight
                    kept.append((j, true, weight))
                } else {
                    guard s + margin > easiestPositive else { continue }
                    let weight = exp(beta * (s - base))
                    negativeSum += weight
                    kept.append((j, false, weight))
                }
            }
            loss += Double(log1p(positiveSum) / alpha + log1p(negativeSum) / beta)
            for entry in kept {
                let value = entry.positive ? -entry.weight / (1 + positiveSum) : entry.weight / (1 + negativeSum)
                gradientS[i, entry.j] += value / Float(n)
            }
        }
        // S = Z Zᵀ, so dL/dZ = (G + Gᵀ) Z.
        var symmetric = gradientS
        for i in 0..<n { for j in 0..<n { symmetric[i, j] = gradientS[i, j] + gradientS[j, i] } }
        return (loss / Double(n), Matrix.product(symmetric, embeddings))
    }
}

/// mAP@R (Musgrave et al., 2020) of the held-out queries, each against every other labelled item.
struct Validation {
    let vectors: Matrix
    let classes: [Int]
    let queries: [Int]
    private let relevantCounts: [Int]

    init(vectors: Matrix, classes: [Int], queries: [Int]) {
        self.vectors = vectors
        self.classes = classes
        self.queries = queries
        var sizes: [Int: Int] = [:]
        for label in classes { sizes[label, default: 0] += 1 }
        relevantCounts = queries.map { (sizes[classes[$0]] ?? 1) - 1 }
    }

    func score(_ weights: Matrix) -> Double {
        let projected = Matrix.product(vectors, weights, transposeB: true).rowNormalized().0
        var total = 0.0
        var counted = 0
        for start in stride(from: 0, to: queries.count, by: 256) {
            let chunk = Array(queries[start..<min(start + 256, queries.count)])
            let similarities = Matrix.product(projected.gathering(chunk), projected, transposeB: true)
            for (row, query) in chunk.enumerated() {
                let relevant = relevantCounts[start + row]
                guard relevant > 0 else { continue }
                var scored: [(score: Float, index: Int)] = []
                scored.reserveCapacity(vectors.rows - 1)
                for index in 0..<vectors.rows where index != query {
                    scored.append((similarities[row, index], index))
                }
                let top = Self.largest(&scored, count: relevant)
                var hits = 0
                var precisionSum = 0.0
                for (rank, entry) in top.enumerated() where classes[entry.index] == classes[query] {
                    hits += 1
                    precisionSum += Double(hits) / Double(rank + 1)
                }
                total += precisionSum / Double(relevant)
                counted += 1
            }
        }
        return counted == 0 ? 0 : total / Double(counted)
    }

    /// The `count` highest scores, best first (ties by index), by selection then a sort of those.
    static func largest(_ entries: inout [(score: Float, index: Int)], count: Int) -> [(score: Float, index: Int)] {
        func before(_ a: (score: Float, index: Int), _ b: (score: Float, index: Int)) -> Bool {
            a.score != b.score ? a.score > b.score : a.index < b.index
        }
        let k = min(count, entries.count)
        guard k < entries.count else { return entries.sorted(by: before) }
        var low = 0
        var high = entries.count - 1
        while low < high {
            let pivot = entries[(low + high) / 2]
            var i = low
            var j = high
            while i <= j {
                while before(entries[i], pivot) { i += 1 }
                while before(pivot, entries[j]) { j -= 1 }
                if i <= j {
                    entries.swapAt(i, j)
                    i += 1
                    j -= 1
                }
            }
            if k - 1 <= j { high = j } else if k - 1 >= i { low = i } else { break }
        }
        return entries[0..<k].sorted(by: before)
    }
}
