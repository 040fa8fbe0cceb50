import Embedding
import Foundation
import Imaging
import Storage
import Tuning

/// What `tune` learns from and how.
public struct TuneOptions: Sendable {
    /// The model whose vectors are projected.
    public var base: String
    /// The tuned model is `<base>+<name>`.
    public var name: String
    /// The metadata field whose values are the labels: items with equal values are alike.
    public var labels: String
    /// Pairs judged alike or not, instead of a metadata field: items joined by similar pairs
    /// share a label (`labels` is then ignored).
    public var pairs: PairsFile?
    /// Learn from the marks of the collection's feedback log instead (`labels` is then ignored):
    /// a search's query and the hits marked relevant or clicked share a label.
    public var feedback: Bool
    public var training: TuningOptions
    /// Keep the projection even when it does not beat the base model on the held-out labels.
    public var force: Bool
    /// Replace a tuned model of the same name (its vectors are made again).
    public var replace: Bool

    public init(base: String = ModelManifest.defaultName, name: String, labels: String = "", pairs: PairsFile? = nil,
                feedback: Bool = false, training: TuningOptions = TuningOptions(), force: Bool = false, replace: Bool = false) {
        self.base = base
        self.name = name
        self.labels = labels
        self.pairs = pairs
        self.feedback = feedback
        self.training = training
        self.force = force
        self.replace = replace
    }
}

/// How far a tuning is.
public enum TuneProgress: Sendable {
    /// Labelled vectors read so far.
    case reading(done: Int)
    case epoch(TuningEpoch)
    /// Vectors of the tuned model made so far.
    case projecting(done: Int, total: Int)
}

/// What a tuning did: the labels it learned from, its validation curve, and whether the tuned
/// model was made (only when it beat the base model on the held-out labels, unless forced).
public struct TuneReport: Sendable, Codable {
    public var model: String
    public var base: String
    /// The metadata field learned from, or `pairs FILE`.
    public var labels: String
    /// What the pairs file came to, when the labels were pairs.
    public var pairs: PairsSummary?
    /// What the feedback log came to, when the labels were its marks.
    public var feedback: FeedbackSummary?
    public var loss: String
    public var seed: UInt64
    /// Items with a vector from the base model and a label.
    public var labelledItems: Int
    /// Items with a vector from the base model and no usable label (they are projected too).
    public var unlabelledItems: Int
    public var classes: Int
    public var trainingItems: Int
    public var validationItems: Int
    /// What the held-out items were ranked among: "held-out" (one another, as unlabelled items
    /// are) or "labelled" (every labelled item, when too few held-out items share a label).
    public var rankedAmong: String?
    /// mAP@R of the held-out labelled items with the base model's vectors.
    public var baseline: Double
    /// mAP@R of the held-out labelled items with the best epoch's head.
    public var best: Double
    public var bestEpoch: Int
    /// The head kept ("linear" or "two-layer"; nil when nothing beat the base model).
    public var head: String?
    /// Each head trained, with its best held-out score.
    public var candidates: [HeadOutcome]?
    public var epochs: [TuningEpoch]
    public var created: Bool
    /// Why the model was not made, when it was not.
    public var reason: String?
    public var vectorsProjected: Int
    public var trainingSeconds: Double
    public var projectionSeconds: Double

    public var gain: Double { best - baseline }
}

/// Tuned models: names, manifests and embedders made from a store's projection records.
enum TunedModels {
    static let separator: Character = "+"

    /// A name a tuning may take: letters, digits, `-`, `_` and `.`, at most 40.
    static func validName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 40 && name.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || "-_.".contains($0) }
    }

    /// The tuned model's manifest: its base model's, renamed, with the projection's dimension and no
    /// calibrated thresholds (scores on a tuned scale mean something else).
    static func manifest(of record: TunedModelRecord, base: ModelManifest) -> ModelManifest {
        var manifest = base
        manifest.name = record.name
        manifest.summary = "\(base.name) tuned by `lookalike tune` (a learned projection of its vectors)"
        manifest.dimension = record.outputDimension
        manifest.space = nil
        manifest.concepts = nil
        manifest.duplicateThreshold = nil
        manifest.similarThreshold = nil
        return manifest
    }

    static func embedder(of record: TunedModelRecord, base: Embedder) throws -> Embedder {
        guard let head = TunedHead(bytes: record.weights, inputDimension: record.inputDimension,
                                   outputDimension: record.outputDimension) else {
            throw EngineError.incompatibleVectors(model: record.name, reason: "its stored projection is damaged (wrong size or values not finite)")
        }
        return try Embedder(deriving: manifest(of: record, base: base.manifest), from: base,
                            projection: TunedProjection(head: head), fingerprint: record.fingerprint)
    }
}

/// What a tuning learns from: a label for each item that has one, labelled vectors that are no
/// item's (the queries of the feedback log), how the source is named, and what it came to.
struct TuneLabelSet {
    var byItem: [String: String]
    var extra: [(vector: [Float], label: String)] = []
    var name: String
    var pairs: PairsSummary?
    var feedback: FeedbackSummary?
}

/// A learned head as the embedder applies it.
struct TunedProjection: EmbeddingProjection {
    let head: TunedHead
    var inputDimension: Int { head.inputDimension }
    var outputDimension: Int { head.outputDimension }
    func project(_ vectors: [[Float]]) -> [[Float]?] { head.project(vectors) }
}

extension Engine {
    /// Learns a projection of `options.base`'s vectors from the labels in a metadata field, and,
    /// when it helps the held-out labelled items (or `force`), records it as the model
    /// `<base>+<name>` and gives every item with a base vector a vector of the tuned model. No
    /// image is decoded: the stored vectors are the input.
    public func tune(_ options: TuneOptions, progress: (@Sendable (TuneProgress) -> Void)? = nil) throws -> TuneReport {
        guard TunedModels.validName(options.name) else {
            throw EngineError.badOption("a tuned model's name takes letters, digits, '-', '_' and '.' (at most 40): \"\(options.name)\" is not one")
        }
        guard !options.base.contains(TunedModels.separator) else {
            throw EngineError.badOption("tune a model of its own, not a tuned one (\(options.base))")
        }
        let name = options.base + String(TunedModels.separator) + options.name
        let base = try models.embedder(options.base)
        try models.check(base, record: false)
        if !options.replace, try models.tunedRecord(name) != nil { throw TunedModelError.exists(name) }
        let taught = try tuneLabels(options)
        let labels = taught.byItem
        let labelsName = taught.name
        var unlabelled = 0
        let started = Date()
        var vectors: [[Float]] = []
        var vectorLabels: [String] = []
        try store.forEachVectorPage(model: options.base, pageSize: 1_000) { page in
            for entry in page {
                if let label = labels[entry.id] {
                    vectors.append(entry.vector)
                    vectorLabels.append(label)
                } else {
                    unlabelled += 1
                }
            }
            progress?(.reading(done: vectors.count))
            return true
        }
        for entry in taught.extra where entry.vector.count == base.manifest.dimension {
            vectors.append(entry.vector)
            vectorLabels.append(entry.label)
        }
        guard !vectors.isEmpty else {
            throw EngineError.badOption("no item labelled by \(labelsName) has a vector of \(options.base); add them with --model \(options.base)")
        }
        let result: TuningResult
        do {
            result = try MetricTrainer.train(vectors: vectors, labels: vectorLabels, options: options.training) { epoch in
                progress?(.epoch(epoch))
            }
        } catch let error as TuningError {
            throw EngineError.badOption("\(error)")
        }
        var report = TuneReport(
            model: name, base: options.base, labels: labelsName, pairs: taught.pairs, feedback: taught.feedback, loss: options.training.loss.rawValue,
            seed: options.training.seed,
            labelledItems: vectors.count, unlabelledItems: unlabelled, classes: result.classes, trainingItems: result.trainingItems,
            validationItems: result.validationItems, rankedAmong: result.heldOutAmongThemselves ? "held-out" : "labelled",
            baseline: result.baseline, best: result.best, bestEpoch: result.bestEpoch,
            head: result.bestEpoch == 0 ? nil : result.head.kind, candidates: result.candidates, epochs: result.epochs,
            created: false, reason: nil, vectorsProjected: 0,
            trainingSeconds: Date().timeIntervalSince(started), projectionSeconds: 0)
        if result.bestEpoch == 0 && !options.force {
            report.reason = "no epoch did better than \(options.base) itself on the held-out labelled items "
                + "(mAP@R \(String(format: "%.3f", result.baseline))); nothing was made (--force makes it anyway)"
            return report
        }

        // Recorded, then projected: a tuning interrupted while projecting is completed by the next
        // add or search with the tuned model.
        let weights = result.head.bytes
        let fingerprint = "labels \(labelsName) loss \(options.training.loss.rawValue) seed \(options.training.seed) "
            + "head \(result.head.kind) weights \(ContentHash.sha256(weights))"
        report.created = true
        let reportJSON = String(decoding: (try? JSONEncoder().encode(report)) ?? Data("{}".utf8), as: UTF8.self)
        // A tuned model replaced keeps its place as the store's default model (removing it clears that).
        let wasDefault = try options.replace && store.setting(StoreSetting.defaultModel) == name
        if options.replace { _ = try removeTunedModel(name, mustExist: false) }
        // Tiles left by an earlier tuning of this name whose removal was cut short must not meet these.
        try store.removeModel(Tiles.model(of: name))
        try store.saveTunedModel(TunedModelRecord(
            name: name, base: options.base, fingerprint: fingerprint, inputDimension: result.head.inputDimension,
            outputDimension: result.head.outputDimension, weights: weights, report: reportJSON, createdAt: Date()))
        models.forget(name)
        let projecting = Date()
        report.vectorsProjected = try projectMissing(try models.embedder(name), progress: progress)
        report.projectionSeconds = Date().timeIntervalSince(projecting)
        if wasDefault { try setDefaultModel(name) }
        return report
    }

    /// What a tuning learns from, by its source: the feedback log, a pairs file, or a metadata field.
    private func tuneLabels(_ options: TuneOptions) throws -> TuneLabelSet {
        if options.feedback {
            let learned = FeedbackLabels.labels(try store.feedback(model: options.base, limit: Self.maxFeedbackMarks))
            guard learned.summary.queries > 0 else {
                throw EngineError.badOption("the feedback log holds no search of \(options.base) with a hit marked relevant or clicked; "
                    + "mark hits with `lookalike feedback` or on the page first")
            }
            // The query vectors learn too: a query is alike to what was marked relevant for it.
            return TuneLabelSet(byItem: learned.labels, extra: learned.queries, name: "feedback", feedback: learned.summary)
        }
        if let pairs = options.pairs {
            var idByPath: [String: String] = [:]
            var ids: Set<String> = []
            try store.forEachItemPage { page in
                for item in page {
                    idByPath[item.sourcePath] = item.id
                    ids.insert(item.id)
                }
                return true
            }
            let (labels, summary) = PairLabels.labels(pairs) { end in ids.contains(end) ? end : idByPath[end] }
            guard summary.unmatched < summary.pairs else {
                throw EngineError.badOption(
                    "no pair names two stored items (pairs \(pairs.path); for example \(summary.unmatchedExamples.first ?? "?"))")
            }
            return TuneLabelSet(byItem: labels, name: "pairs \(pairs.path)", pairs: summary)
        }
        // Every item with a scalar value in the field.
        let field = options.labels.trimmingCharacters(in: .whitespaces)
        guard !field.isEmpty else { throw EngineError.badOption("--labels names a metadata field; it is empty") }
        var labels: [String: String] = [:]
        var fieldSeen = false
        let decoder = JSONDecoder()
        try store.forEachItemPage { page in
            for item in page {
                guard let text = item.metadata, case .object(let object)? = try? decoder.decode(JSONValue.self, from: Data(text.utf8)),
                      let value = object[field] else { continue }
                fieldSeen = true
                if let label = Self.label(value) { labels[item.id] = label }
            }
            return true
        }
        guard fieldSeen else {
            throw EngineError.badOption("no item has the metadata field \"\(field)\"; give labels with `add --metadata`")
        }
        return TuneLabelSet(byItem: labels, name: field)
    }

    /// Forgets a tuned model: its projection, its vectors, its index; its base model is untouched.
    /// Returns how many vectors were removed.
    @discardableResult
    public func removeTunedModel(_ name: String) throws -> Int {
        try removeTunedModel(name, mustExist: true)
    }

    private func removeTunedModel(_ name: String, mustExist: Bool) throws -> Int {
        guard try models.tunedRecord(name) != nil else {
            if !mustExist { return 0 }
            let known = try store.tunedModels().map(\.name)
            throw EngineError.badOption("no tuned model named \(name)" + (known.isEmpty ? " (there are none)" : " (tuned: \(known.joined(separator: ", ")))"))
        }
        let removed = try store.removeModel(name)
        try store.removeModel(Tiles.model(of: name))
        tileIndexes.forgetModel(Tiles.model(of: name))
        defaultModelCache.forget()  // the store cleared the default if it named this model
        models.forget(name)
        indexes.forgetModel(name)
        return removed
    }

    /// The store's tuned models, with their reports.
    public func tunedModels() throws -> [TunedModelRecord] {
        try store.tunedModels()
    }

    /// Marks read from the feedback log at most (the newest first).
    static let maxFeedbackMarks = 200_000

    /// Gives every item with a vector of the tuned model's base a vector of the tuned model
    /// (projected, nothing decoded); returns how many were made.
    @discardableResult
    func projectMissing(_ tuned: Embedder, progress: (@Sendable (TuneProgress) -> Void)? = nil) throws -> Int {
        guard let base = tuned.baseModel else { return 0 }
        try models.check(tuned, record: true)
        let have = Set(try store.vectorIDs(model: tuned.manifest.name))
        let missing = try store.vectorIDs(model: base.manifest.name).filter { !have.contains($0) }
        var made = 0
        for start in stride(from: 0, to: missing.count, by: 1_000) {
            let chunk = Array(missing[start..<min(start + 1_000, missing.count)])
            let stored = try store.vectors(model: base.manifest.name, ids: chunk)
            let items = try store.items(ids: stored.map(\.id))
            let projected = try tuned.project(fromBase: stored.map(\.vector))
            let entries = zip(stored, projected).compactMap { entry, vector in items[entry.id].map { (item: $0, vector: vector) } }
            try store.insert(entries, model: tuned.manifest.name)
            indexes.added(entries.map { ($0.item.id, $0.vector) }, model: tuned.manifest.name)
            made += entries.count
            progress?(.projecting(done: made, total: missing.count))
        }
        if made > 0 { try indexes.settled(tuned.manifest) }
        try projectMissingTiles(tuned, base: base)
        return made
    }

    /// Gives every item with region tiles of the tuned model's base the tuned model's tiles: each
    /// part's vector projected as a whole image's is (nothing decoded). Returns how many items gained them.
    @discardableResult
    func projectMissingTiles(_ tuned: Embedder, base: Embedder) throws -> Int {
        let baseTiles = Tiles.model(of: base.manifest.name)
        guard try store.vectorCount(model: baseTiles) > 0 else { return 0 }
        let tunedTiles = Tiles.model(of: tuned.manifest.name)
        try store.checkModel(tunedTiles, fingerprint: Tiles.fingerprint(of: tuned.fingerprint),
                             dimension: tuned.manifest.dimension * Tiles.parts, space: nil, record: true)
        let have = Set(try store.vectorIDs(model: tunedTiles))
        let missing = try store.vectorIDs(model: baseTiles).filter { !have.contains($0) }
        var made = 0
        for start in stride(from: 0, to: missing.count, by: 1_000) {
            let stored = try store.vectors(model: baseTiles, ids: Array(missing[start..<min(start + 1_000, missing.count)]))
            let items = try store.items(ids: stored.map(\.id))
            var entries: [(item: Item, vector: [Float])] = []
            var parts: [(id: String, vector: [Float])] = []
            for entry in stored {
                guard let item = items[entry.id] else { continue }
                guard let split = Tiles.split(entry.vector, dimension: base.manifest.dimension) else {
                    throw EngineError.incompatibleVectors(model: baseTiles, reason: "the tiles vector of item \(entry.id) is not \(Tiles.parts) parts")
                }
                let projected = try tuned.project(fromBase: split)
                entries.append((item, Tiles.joined(projected)))
                parts += zip(Tiles.partIDs(of: item.id), projected).map { ($0, $1) }
            }
            try store.insert(entries, model: tunedTiles)
            tileIndexes.added(parts, model: tunedTiles)
            made += entries.count
        }
        if made > 0 { try tileIndexes.settled(Tiles.manifest(of: tuned.manifest)) }
        return made
    }

    /// Brings a tuned model's vectors level with its base model's when they differ in number
    /// (items added since, or a projection cut short); nothing for a model of its own.
    func catchUpTuned(_ embedder: Embedder) throws {
        guard let base = embedder.baseModel else { return }
        let tuned = embedder.manifest.name, own = base.manifest.name
        guard try store.vectorCount(model: tuned) != store.vectorCount(model: own)
                || store.vectorCount(model: Tiles.model(of: tuned)) != store.vectorCount(model: Tiles.model(of: own)) else { return }
        try projectMissing(embedder)
    }

    /// A label from a metadata value: text as it is (trimmed), numbers and booleans as written;
    /// nil for null, empty text, lists and objects.
    static func label(_ value: JSONValue) -> String? {
        switch value {
        case .string(let text):
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            return trimmed.isEmpty ? nil : trimmed
        case .integer(let number): return String(number)
        case .number(let number): return String(number)
        case .bool(let flag): return flag ? "true" : "false"
        case .null, .array, .object: return nil
        }
    }
}

extension Engine {
    /// Whether `name` may name a tuning (`<base>+<name>`): letters, digits, `-`, `_` and `.`, at most 40.
    public static func isValidTuningName(_ name: String) -> Bool {
        TunedModels.validName(name)
    }
}
