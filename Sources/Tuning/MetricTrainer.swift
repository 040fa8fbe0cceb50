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

    public enum Head: String, CaseIterable, Sendable, Codable {
        /// `y = W x`, starting from the identity (epoch 0 is the base model).
        case linear
        /// `y = W2 relu(W1 x)`, from a seeded random start.
        case twoLayer = "two-layer"
    }

    /// The heads trained, each in turn; the one with the better held-out score is kept.
    public var heads: [Head] = [.linear, .twoLayer]
    public var hiddenDimension = 512
    /// The two-layer head's output dimension (a linear head keeps the base model's).
    public var twoLayerOutputDimension = 256
    /// The share of each class's labelled items held out to choose the epoch (early stopping) and
    /// to report the gain; classes of one item stay in training.
    public var validationShare = 0.2
    /// Validation queries at most (chosen by the seed): scoring an epoch stays cheap on large sets.
    public var maxValidationQueries = 2_000
    /// Held-out items are ranked among themselves when at least this many have another held-out
    /// item of their label (the unlabelled items' situation); otherwise among all labelled items.
    public var minimumHeldOutQueries = 50

    public init() {}
}

/// One epoch of a tuning, as progress reports it.
public struct TuningEpoch: Sendable, Equatable, Codable {
    /// The head being trained (nil for epoch 0, the base model).
    public var head: String? = nil
    public let epoch: Int
    /// The mean training loss over the epoch's batches (0 for epoch 0, the base model).
    public let loss: Double
    /// mAP@R of the held-out labelled items (each against every other labelled item).
    public let validation: Double
}

/// What a tuning learned, and how much it helped the held-out items.
public struct TuningResult: Sendable {
    /// The best epoch's head (the identity when no epoch beat the base model).
    public let head: TunedHead
    /// Each head trained, with its best held-out score and epoch.
    public let candidates: [HeadOutcome]
    /// Validation mAP@R of the base model's vectors.
    public let baseline: Double
    /// Validation mAP@R of the best epoch.
    public let best: Double
    /// 0 when no epoch beat the base model.
    public let bestEpoch: Int
    /// Epoch 0 (the base model), then every epoch of every head trained.
    public let epochs: [TuningEpoch]
    public let trainingItems: Int
    public let validationItems: Int
    /// True when the held-out items were ranked among themselves, false when among all labelled items.
    public let heldOutAmongThemselves: Bool
    public let classes: Int
    public var gain: Double { best - baseline }
}

/// How one head did on the held-out items.
public struct HeadOutcome: Sendable, Equatable, Codable {
    public let head: String
    public let best: Double
    /// 0 when no epoch beat the base model.
    public let bestEpoch: Int
    public let epochs: Int
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

/// Learns a head on top of frozen embeddings so that items with the same label come closer than
/// items with different labels (deep metric learning on the CPU, BLAS for the products). Epoch 0
/// is the base model; each head of `options.heads` is trained in turn (the linear one from the
/// identity, the two-layer one from a seeded random start), and the head and epoch kept are those
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
        // Held-out items are ranked among one another, as unlabelled items will be, when enough of
        // them have a held-out item of their class to find; otherwise among every labelled item.
        let heldOutAmongThemselves = Validation.answerable(queries, gallery: validation, classes: classes) >= options.minimumHeldOutQueries
        let scorer = Validation(vectors: all, classes: classes, queries: queries, gallery: heldOutAmongThemselves ? validation : nil)
        let baseline = scorer.score(all)
        progress(TuningEpoch(epoch: 0, loss: 0, validation: baseline))
        var epochs = [TuningEpoch(epoch: 0, loss: 0, validation: baseline)]
        let inputs = all.gathering(training)
        let trainingClasses = training.map { classes[$0] }

        var best: (score: Double, epoch: Int, head: TunedHead) = (baseline, 0, .linear(.identity(dimension: dimension)))
        var candidates: [HeadOutcome] = []
        for kind in options.heads {
            // Each kind of head from its own stream of the seed: training one alone or both, it learns the same.
            let stream = UInt64((TuningOptions.Head.allCases.firstIndex(of: kind) ?? 0) + 1)
            var headGenerator = SeededGenerator(seed: options.seed &+ 0x5EED &* stream)
            var head: any TrainableHead = switch kind {
            case .linear: LinearHead(dimension: dimension, learningRate: options.learningRate)
            case .twoLayer: TwoLayerTrainable(inputDimension: dimension, hiddenDimension: options.hiddenDimension,
                                              outputDimension: options.twoLayerOutputDimension, learningRate: options.learningRate,
                                              generator: &headGenerator)
            }
            let outcome = fit(&head, kind: kind, inputs: inputs, classes: trainingClasses, classCount: names.count, scorer: scorer,
                              all: all, baseline: baseline, options: options, generator: &headGenerator) { epoch in
                epochs.append(epoch)
                progress(epoch)
            }
            candidates.append(HeadOutcome(head: kind.rawValue, best: outcome.score, bestEpoch: outcome.epoch, epochs: outcome.epochs))
            if let learned = outcome.head, outcome.score > best.score + 1e-4 { best = (outcome.score, outcome.epoch, learned) }
        }
        return TuningResult(head: best.head, candidates: candidates, baseline: baseline, best: best.score,
                            bestEpoch: best.epoch, epochs: epochs, trainingItems: training.count,
                            validationItems: validation.count, heldOutAmongThemselves: heldOutAmongThemselves, classes: names.count)
    }

    /// Trains one head until the held-out score stops improving; its best epoch (nil head when
    /// none beat `baseline`).
    static func fit(
        _ head: inout any TrainableHead, kind: TuningOptions.Head, inputs: Matrix, classes: [Int], classCount: Int,
        scorer: Validation, all: Matrix, baseline: Double, options: TuningOptions, generator: inout SeededGenerator,
        report: (TuningEpoch) -> Void
    ) -> (score: Double, epoch: Int, head: TunedHead?, epochs: Int) {
        var loss: any BatchLoss = switch options.loss {
        case .proxy: ProxyLoss(embeddings: head.apply(inputs), classes: classes, classCount: classCount, learningRate: options.learningRate)
        case .multiSimilarity: MultiSimilarityLoss()
        }
        var best: (score: Double, epoch: Int, head: TunedHead?) = (baseline, 0, nil)
        var stale = 0
        var ran = 0
        for epoch in 1...max(1, options.maxEpochs) {
            ran = epoch
            var total = 0.0
            let batches = loss.batches(classes: classes, size: options.batchSize, generator: &generator)
            for batch in batches {
                let x = inputs.gathering(batch)
                let (y, hidden) = head.forward(x)
                let (z, norms) = y.rowNormalized()
                let (value, gradientZ) = loss.step(z, classes: batch.map { classes[$0] })
                total += value
                head.learn(x, hidden: hidden, gradient: Matrix.throughNormalization(gradientZ, unit: z, norms: norms))
            }
            let score = scorer.score(head.apply(all))
            report(TuningEpoch(head: kind.rawValue, epoch: epoch, loss: batches.isEmpty ? 0 : total / Double(batches.count), validation: score))
            if score > best.score + 1e-4 {
                best = (score, epoch, head.snapshot)
                stale = 0
            } else {
                stale += 1
                if stale >= options.patience { break }
            }
        }
        return (best.score, best.epoch, best.head, ran)
    }
}

/// A head being trained: its output for a batch, a step of Adam from the gradient of that output.
protocol TrainableHead {
    /// The rows of `x` through the head (before normalisation), and what `learn` needs besides.
    func forward(_ x: Matrix) -> (Matrix, hidden: Matrix?)
    mutating func learn(_ x: Matrix, hidden: Matrix?, gradient: Matrix)
    func apply(_ x: Matrix) -> Matrix
    var snapshot: TunedHead { get }
}

struct LinearHead: TrainableHead {
    var weights: Matrix
    var adam: AdamState

    init(dimension: Int, learningRate: Float) {
        weights = .identity(dimension)
        adam = AdamState(count: dimension * dimension, learningRate: learningRate)
    }

    func forward(_ x: Matrix) -> (Matrix, hidden: Matrix?) { (apply(x), nil) }

    mutating func learn(_ x: Matrix, hidden: Matrix?, gradient: Matrix) {
        adam.update(&weights.values, gradient: Matrix.product(gradient, x, transposeA: true).values)
    }

    func apply(_ x: Matrix) -> Matrix { Matrix.product(x, weights, transposeB: true) }

    var snapshot: TunedHead { .linear(LinearProjection(matrix: weights)) }
}

/// `W2 relu(W1 x)`: W1 from He's normal start, W2 from a normal of variance 1 / hidden.
struct TwoLayerTrainable: TrainableHead {
    var first: Matrix
    var second: Matrix
    var firstAdam: AdamState
    var secondAdam: AdamState

    init(inputDimension: Int, hiddenDimension: Int, outputDimension: Int, learningRate: Float, generator: inout SeededGenerator) {
        first = Matrix(rows: hiddenDimension, columns: inputDimension,
                       values: generator.normals(hiddenDimension * inputDimension, deviation: (2 / Float(inputDimension)).squareRoot()))
        second = Matrix(rows: outputDimension, columns: hiddenDimension,
                        values: generator.normals(outputDimension * hiddenDimension, deviation: (1 / Float(hiddenDimension)).squareRoot()))
        firstAdam = AdamState(count: first.values.count, learningRate: learningRate)
        secondAdam = AdamState(count: second.values.count, learningRate: learningRate)
    }

    func forward(_ x: Matrix) -> (Matrix, hidden: Matrix?) {
        var hidden = Matrix.product(x, first, transposeB: true)
        for index in hidden.values.indices where hidden.values[index] < 0 { hidden.values[index] = 0 }
        return (Matrix.product(hidden, second, transposeB: true), hidden)
    }

    mutating func learn(_ x: Matrix, hidden: Matrix?, gradient: Matrix) {
        guard let hidden else { return }
        let gradientSecond = Matrix.product(gradient, hidden, transposeA: true)
        var gradientHidden = Matrix.product(gradient, second)
        // Through the ReLU: no gradient where the unit was off.
        for index in gradientHidden.values.indices where hidden.values[index] <= 0 { gradientHidden.values[index] = 0 }
        let gradientFirst = Matrix.product(gradientHidden, x, transposeA: true)
        secondAdam.update(&second.values, gradient: gradientSecond.values)
        firstAdam.update(&first.values, gradient: gradientFirst.values)
    }

    func apply(_ x: Matrix) -> Matrix { forward(x).0 }

    var snapshot: TunedHead { .twoLayer(TwoLayerHead(first: first, second: second)) }
}

/// A loss over a batch of normalised embeddings: its value and its gradient with respect to them.
protocol BatchLoss {
    /// The epoch's batches, as indices into the training items.
    func batches(classes: [Int], size: Int, generator: inout SeededGenerator) -> [[Int]]
    mutating func step(_ embeddings: Matrix, classes: [Int]) -> (Double, Matrix)
}

/// Normalised softmax with a learned proxy per class, scale 16 (temperature 1/16). Proxies start
/// at their class's mean vector through the starting head, so the first epochs refine a sensible
/// arrangement.
struct ProxyLoss: BatchLoss {
    private var proxies: Matrix
    private var adam: AdamState
    private let scale: Float = 16

    /// `embeddings`: the training items through the head as it starts.
    init(embeddings: Matrix, classes: [Int], classCount: Int, learningRate: Float) {
        let unit = embeddings.rowNormalized().0
        var means = Matrix(zeros: classCount, unit.columns)
        for (row, label) in classes.enumerated() {
            for column in 0..<unit.columns { means[label, column] += unit[row, column] }
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
    /// The items each query is ranked among (itself left out).
    let gallery: [Int]
    /// The gallery is every vector, in order (so scoring needs no copy of them).
    private let everyVector: Bool
    private let relevantCounts: [Int]

    /// `gallery` nil: every vector.
    init(vectors: Matrix, classes: [Int], queries: [Int], gallery: [Int]? = nil) {
        self.vectors = vectors
        self.classes = classes
        self.queries = queries
        self.gallery = gallery ?? Array(0..<vectors.rows)
        everyVector = gallery == nil
        var sizes: [Int: Int] = [:]
        for index in self.gallery { sizes[classes[index], default: 0] += 1 }
        let inGallery = Set(self.gallery)
        relevantCounts = queries.map { (sizes[classes[$0]] ?? 0) - (inGallery.contains($0) ? 1 : 0) }
    }

    /// Queries with at least one other item of their class in `gallery`.
    static func answerable(_ queries: [Int], gallery: [Int], classes: [Int]) -> Int {
        var sizes: [Int: Int] = [:]
        for index in gallery { sizes[classes[index], default: 0] += 1 }
        return queries.filter { (sizes[classes[$0]] ?? 0) >= 2 }.count
    }

    /// `outputs`: every vector through the head being scored (row for row), before normalisation.
    func score(_ outputs: Matrix) -> Double {
        let candidates = (everyVector ? outputs : outputs.gathering(gallery)).rowNormalized().0
        let projectedQueries = outputs.gathering(queries).rowNormalized().0
        var total = 0.0
        var counted = 0
        for start in stride(from: 0, to: queries.count, by: 256) {
            let rows = Array(start..<min(start + 256, queries.count))
            let similarities = Matrix.product(projectedQueries.gathering(rows), candidates, transposeB: true)
            for (row, position) in rows.enumerated() {
                let query = queries[position]
                let relevant = relevantCounts[position]
                guard relevant > 0 else { continue }
                var scored: [(score: Float, index: Int)] = []
                scored.reserveCapacity(gallery.count)
                for (column, index) in gallery.enumerated() where index != query {
                    scored.append((similarities[row, column], index))
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
