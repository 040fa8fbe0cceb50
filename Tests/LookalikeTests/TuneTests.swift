import Foundation
import Embedding
import Lookalike
import TestSupport
import Testing
import Tuning

/// `tune`: a projection learned from a metadata field, kept as a derived model, on real product
/// photos (Fashion-MNIST) and on both stores.
@Suite("Tuned models", .serialized)
struct TuneTests {
    static let base = ModelManifest.defaultName

    /// A collection of the labelled photos, all but the last; the first half of each class carries
    /// its `category`, the second half carries none (the queries the measure is taken on).
    struct Collection {
        let engine: Engine
        let folder: URL
        let ids: [String: String]
        let category: [String: String]
        let unlabelled: Set<String>
        let spare: String
    }

    func collection(_ kind: String, label: String) throws -> Collection {
        let images = try TestData.categoryImages()
        let folder = try TestData.temporaryDirectory(label)
        let engine = try Engine(configuration: EngineConfiguration(store: folder.appendingPathComponent("store"),
                                                                   database: TestStores.database(kind)))
        var seen: [String: Int] = [:]
        var records: [String: String] = [:]
        var unlabelledPaths: Set<String> = []
        for (path, category) in images {
            let position = seen[category, default: 0]
            seen[category] = position + 1
            if position % 2 == 0 {
                records[path] = "{\"category\": \"\(category)\", \"shop\": \"demo\"}"
            } else {
                records[path] = "{\"shop\": \"demo\"}"
                unlabelledPaths.insert(path)
            }
        }
        let spare = try #require(images.last?.path)
        let report = try engine.add(images.map(\.path).filter { $0 != spare },
                                    options: AddOptions(metadata: MetadataFile(records: records)))
        #expect(report.failures.isEmpty, "\(report.failures)")
        let ids = Dictionary(uniqueKeysWithValues: report.added.map { ($0.id, $0.path) })
        let category = Dictionary(uniqueKeysWithValues: images.map { ($0.path, $0.category) })
        return Collection(engine: engine, folder: folder, ids: ids, category: category,
                          unlabelled: Set(ids.filter { unlabelledPaths.contains($0.value) }.keys), spare: spare)
    }

    /// Mean precision of the ten nearest unlabelled items of each unlabelled item: items the
    /// tuning never saw a label of, answered from the model's index.
    func unlabelledPrecision(_ c: Collection, model: String) throws -> Double {
        var total = 0.0
        for id in c.unlabelled.sorted() {
            let hits = try c.engine.search(.item(id), options: SearchOptions(top: 60, model: model)).hits
            let others = hits.filter { $0.id != id && c.unlabelled.contains($0.id) }.prefix(10)
            let query = c.category[c.ids[id] ?? ""]
            total += Double(others.filter { c.category[c.ids[$0.id] ?? ""] == query }.count) / 10
        }
        return total / Double(c.unlabelled.count)
    }

    @Test("a tuning on half of each class's labels brings same-class items closer for the other half", arguments: TestStores.kinds)
    func tuningHelpsUnlabelledItems(_ kind: String) throws {
        let c = try collection(kind, label: "tune-gain")
        defer { try? FileManager.default.removeItem(at: c.folder) }
        let report = try c.engine.tune(TuneOptions(name: "shop", labels: "category"))
        let tuned = "\(Self.base)+shop"
        #expect(report.created)
        #expect(report.model == tuned)
        #expect(report.classes == 10)
        #expect(report.labelledItems == 200 && report.unlabelledItems == c.ids.count - 200)
        #expect(report.best > report.baseline + 0.02, "held-out mAP@R \(report.baseline) -> \(report.best)")
        #expect(report.vectorsProjected == c.ids.count)
        #expect(try c.engine.stats().vectors[tuned] == c.ids.count)

        let before = try unlabelledPrecision(c, model: Self.base)
        let after = try unlabelledPrecision(c, model: tuned)
        #expect(after > before + 0.03, "P@10 of the unlabelled half: \(before) with the base model, \(after) tuned")

        // The record carries what it was made from and its report.
        let record = try #require(try c.engine.tunedModels().first)
        #expect(record.base == Self.base && record.name == tuned)
        #expect(record.fingerprint.contains("labels category") && record.fingerprint.contains("seed 1"))
        #expect(record.inputDimension == 1280)
        #expect(record.outputDimension == (report.head == "linear" ? 1280 : 256), "\(report.head ?? "no head")")
        #expect(record.fingerprint.contains("head \(report.head ?? "")"))
    }

    @Test("equal seeds learn equal projections, other seeds other ones", arguments: TestStores.kinds)
    func deterministicUnderSeed(_ kind: String) throws {
        let c = try collection(kind, label: "tune-seed")
        defer { try? FileManager.default.removeItem(at: c.folder) }
        var options = TuneOptions(name: "a", labels: "category", force: true)
        options.training.maxEpochs = 3
        let first = try c.engine.tune(options)
        options.name = "b"
        let second = try c.engine.tune(options)
        options.name = "c"
        options.training.seed = 7
        let third = try c.engine.tune(options)
        #expect(first.epochs == second.epochs)
        let records = Dictionary(uniqueKeysWithValues: try c.engine.tunedModels().map { ($0.name, $0) })
        let a = try #require(records["\(Self.base)+a"])
        let b = try #require(records["\(Self.base)+b"])
        let other = try #require(records["\(Self.base)+c"])
        #expect(a.weights == b.weights && a.fingerprint == b.fingerprint)
        #expect(a.weights != other.weights && a.fingerprint != other.fingerprint)
        #expect(third.seed == 7)
    }

    @Test("a tuned model follows adds and removals, is replaced only when asked, and its removal leaves the base", arguments: TestStores.kinds)
    func lifeCycle(_ kind: String) throws {
        let c = try collection(kind, label: "tune-life")
        defer { try? FileManager.default.removeItem(at: c.folder) }
        let tuned = "\(Self.base)+shop"
        var options = TuneOptions(name: "shop", labels: "category", force: true)
        options.training.maxEpochs = 2
        _ = try c.engine.tune(options)

        // A new image gets the tuned model's vector with its base vector, and a search finds it.
        let added = try c.engine.add([c.spare])
        let spareID = try #require(added.added.first?.id)
        let stats = try c.engine.stats()
        #expect(stats.vectors[tuned] == c.ids.count + 1 && stats.vectors[Self.base] == c.ids.count + 1)
        let hits = try c.engine.search(.image(path: c.spare), options: SearchOptions(top: 3, model: tuned)).hits
        #expect(hits.first?.id == spareID)
        #expect(hits.first.map { $0.score > 0.999 } == true)

        // Adding with the tuned model itself is refused: it has no images of its own.
        #expect(throws: EngineError.self) { try c.engine.add([c.spare], options: AddOptions(model: tuned)) }

        // A removed item leaves both models.
        _ = try c.engine.remove(ids: [spareID])
        #expect(try c.engine.stats().vectors[tuned] == c.ids.count)

        // The same name again: refused, unless replaced.
        #expect(throws: (any Error).self) { try c.engine.tune(options) }
        options.replace = true
        options.training.seed = 2
        let replaced = try c.engine.tune(options)
        #expect(replaced.created && replaced.vectorsProjected == c.ids.count)
        #expect(try c.engine.tunedModels().count == 1)
        #expect(try c.engine.tunedModels().first?.fingerprint.contains("seed 2") == true)

        // Removed: its vectors go, the base model's stay and still answer.
        let baseHits = try c.engine.search(.item(try #require(c.unlabelled.first)), options: SearchOptions(top: 5)).hits
        #expect(try c.engine.removeTunedModel(tuned) == c.ids.count)
        #expect(try c.engine.tunedModels().isEmpty)
        #expect(try c.engine.stats().vectors[tuned, default: 0] == 0)
        #expect(try c.engine.stats().vectors[Self.base] == c.ids.count)
        #expect(try c.engine.search(.item(try #require(c.unlabelled.first)), options: SearchOptions(top: 5)).hits == baseHits)
        #expect(throws: (any Error).self) { try c.engine.search(.item(spareID), options: SearchOptions(model: tuned)) }
        #expect(throws: EngineError.self) { try c.engine.removeTunedModel(tuned) }
    }

    @Test("similar pairs teach as labels do; unmatched and contradicting pairs are counted, not fatal", arguments: TestStores.kinds)
    func pairsTeach(_ kind: String) throws {
        let c = try collection(kind, label: "tune-pairs")
        defer { try? FileManager.default.removeItem(at: c.folder) }
        // Each class's labelled items chained by similar pairs (by path, the first by item id);
        // one not-similar pair between neighbouring classes, one inside a class (a contradiction),
        // and one naming an image that is not stored.
        let labelled = c.ids.filter { !c.unlabelled.contains($0.key) }
        var byClass: [String: [(id: String, path: String)]] = [:]
        for (id, path) in labelled { byClass[c.category[path] ?? "", default: []].append((id, path)) }
        var lines: [String] = []
        for members in byClass.values.map({ $0.sorted { $0.path < $1.path } }) {
            for (first, second) in zip(members, members.dropFirst()) {
                let a = first.path == members[0].path ? first.id : first.path
                lines.append("{\"a\": \"\(a)\", \"b\": \"\(second.path)\", \"similar\": true}")
            }
        }
        let classes = byClass.keys.sorted()
        let one = try #require(byClass[classes[0]]?.sorted { $0.path < $1.path })
        let two = try #require(byClass[classes[1]]?.first)
        lines.append("{\"a\": \"\(one[0].path)\", \"b\": \"\(two.path)\", \"similar\": false}")
        lines.append("{\"a\": \"\(one[0].path)\", \"b\": \"\(one[3].path)\", \"similar\": \"no\"}")
        lines.append("{\"a\": \"/nowhere/missing.png\", \"b\": \"\(two.path)\", \"similar\": 1}")
        let file = c.folder.appendingPathComponent("pairs.jsonl")
        try Data(lines.joined(separator: "\n").utf8).write(to: file)

        let report = try c.engine.tune(TuneOptions(name: "pairs", pairs: try PairsFile(path: file.path)))
        let summary = try #require(report.pairs)
        #expect(summary.groups == 10 && summary.notSimilar == 2 && summary.similar == lines.count - 2)
        #expect(summary.unmatched == 1 && summary.unmatchedExamples == ["/nowhere/missing.png"])
        #expect(summary.conflicts == 1)
        #expect(report.labelledItems == 200 && report.classes == 10)
        #expect(report.created, "\(report.reason ?? "")")
        let before = try unlabelledPrecision(c, model: Self.base)
        let after = try unlabelledPrecision(c, model: "\(Self.base)+pairs")
        #expect(after > before + 0.03, "P@10 of the unlabelled half: \(before) with the base model, \(after) tuned from pairs")

        // A malformed pairs file is refused with its line and the reason.
        let bad = c.folder.appendingPathComponent("bad.csv")
        try Data("a,b,similar\n\(one[0].path),\(two.path),maybe\n".utf8).write(to: bad)
        do {
            _ = try PairsFile(path: bad.path)
            Issue.record("a pair marked \"maybe\" was read")
        } catch {
            #expect("\(error)".contains("bad.csv:2") && "\(error)".contains("similar"), "\(error)")
        }
    }

    @Test("the feedback log teaches too: a query and the hits marked relevant are alike", arguments: TestStores.kinds)
    func feedbackTeaches(_ kind: String) throws {
        let c = try collection(kind, label: "tune-feedback")
        defer { try? FileManager.default.removeItem(at: c.folder) }
        #expect(throws: EngineError.self) { try c.engine.tune(TuneOptions(name: "marks", feedback: true)) }

        // Four searches per class by a labelled item, each marking five items of its class
        // relevant (the last as a click) and two of other classes not relevant; one search by the
        // image that is not stored.
        let labelled = c.ids.filter { !c.unlabelled.contains($0.key) }
        var byClass: [String: [String]] = [:]
        for (id, path) in labelled { byClass[c.category[path] ?? "", default: []].append(id) }
        let classes = byClass.keys.sorted()
        for (position, name) in classes.enumerated() {
            let members = (byClass[name] ?? []).sorted()
            let others = (byClass[classes[(position + 1) % classes.count]] ?? []).sorted()
            for query in 0..<4 {
                let start = query * 5 % members.count
                let relevant = (1...5).map { members[(start + $0) % members.count] }
                let marks: [(id: String, mark: Feedback.Mark)] = relevant.enumerated().map { ($1, $0 == 4 ? .click : .relevant) }
                    + others.prefix(2 + query).suffix(2).map { ($0, .notRelevant) }
                _ = try c.engine.recordFeedback(.item(members[start]), marks: marks)
            }
        }
        let spareClass = c.category[c.spare] ?? ""
        _ = try c.engine.recordFeedback(.image(path: c.spare), marks: (byClass[spareClass] ?? []).sorted().prefix(3).map { ($0, .relevant) })

        let report = try c.engine.tune(TuneOptions(name: "marks", feedback: true))
        let summary = try #require(report.feedback)
        #expect(summary.queries == 41 && summary.relevant == 203 && summary.notRelevant == 80, "\(summary)")
        #expect(summary.groups >= 10 && summary.groups <= 41, "\(summary)")
        #expect(report.labels == "feedback")
        #expect(report.created, "\(report.reason ?? "")")
        let before = try unlabelledPrecision(c, model: Self.base)
        let after = try unlabelledPrecision(c, model: "\(Self.base)+marks")
        #expect(after > before + 0.02, "P@10 of the unlabelled half: \(before) with the base model, \(after) tuned from feedback")
    }

    @Test("a tuned model made the store's default answers searches that name no model, adds go to its base, and its removal ends it",
          arguments: TestStores.kinds)
    func defaultModel(_ kind: String) throws {
        let c = try collection(kind, label: "tune-default")
        defer { try? FileManager.default.removeItem(at: c.folder) }
        let tuned = "\(Self.base)+shop"
        #expect(try c.engine.defaultModel() == Self.base)
        #expect(try c.engine.defaultAddModel() == Self.base)
        var options = TuneOptions(name: "shop", labels: "category", force: true)
        options.training.maxEpochs = 3
        _ = try c.engine.tune(options)
        #expect(try c.engine.setDefaultModel(tuned) == tuned)
        #expect(try c.engine.defaultModel() == tuned)
        #expect(try c.engine.defaultAddModel() == Self.base)

        // Kept in the store: another engine over it (another process, another server) sees it.
        func seenElsewhere() throws -> String { try Engine(configuration: c.engine.configuration, createStore: false).defaultModel() }
        #expect(try seenElsewhere() == tuned)
        let query = try #require(c.unlabelled.sorted().first)
        let asTuned = try c.engine.search(.item(query), options: SearchOptions(top: 5, model: try seenElsewhere()))
        #expect(asTuned.model == tuned)
        #expect(asTuned.hits.first?.id == query)

        // An upload names no model: it is added with the base, and the tuned model follows.
        let spareBytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: c.spare)))
        _ = try c.engine.addUpload(spareBytes, name: "spare.png", metadata: nil, limits: ImageLimits())
        #expect(try c.engine.stats().vectors[Self.base] == c.ids.count + 1)
        #expect(try c.engine.stats().vectors[tuned] == c.ids.count + 1)

        // Models that cannot be the default are refused with the reason; the default stays.
        for (name, reason) in [("no-such-model", "no model named no-such-model"), (ModelManifest.words.name, "words only"),
                               ("\(Self.base)+gone", "no model named")] {
            #expect(throws: EngineError.self) { try c.engine.setDefaultModel(name) }
            do { try c.engine.setDefaultModel(name) } catch { #expect("\(error)".contains(reason), "\(error)") }
        }
        #expect(try c.engine.defaultModel() == tuned)

        // Made again in its place (replace): still the default, for this engine and others.
        options.replace = true
        options.training.seed = 5
        _ = try c.engine.tune(options)
        #expect(try c.engine.defaultModel() == tuned)
        #expect(try seenElsewhere() == tuned)

        // Removing the tuned model removes it as the default too, in the same step.
        try c.engine.removeTunedModel(tuned)
        #expect(try c.engine.defaultModel() == Self.base)
        #expect(try c.engine.store.setting(StoreSetting.defaultModel) == nil)

        // Back to the installed default with nil.
        try c.engine.setDefaultModel("efficientnet-lite0")
        #expect(try c.engine.defaultModel() == "efficientnet-lite0")
        #expect(try seenElsewhere() == "efficientnet-lite0")
        #expect(try c.engine.setDefaultModel(nil) == Self.base)
        #expect(try c.engine.defaultModel() == Self.base)
        #expect(try seenElsewhere() == Self.base)
    }

    @Test("a tuning that learns nothing better than the base model makes nothing, and says why")
    func noGainNoModel() throws {
        let c = try collection("sqlite", label: "tune-refuse")
        defer { try? FileManager.default.removeItem(at: c.folder) }
        var options = TuneOptions(name: "still", labels: "category")
        // A linear head that never moves stays the identity: the base model, exactly.
        options.training.heads = [.linear]
        options.training.learningRate = 0
        options.training.maxEpochs = 2
        let report = try c.engine.tune(options)
        #expect(!report.created)
        #expect(report.bestEpoch == 0 && report.best == report.baseline)
        #expect(report.reason?.contains("--force") == true)
        #expect(try c.engine.tunedModels().isEmpty)
        #expect(try c.engine.stats().vectors["\(Self.base)+still"] == nil)
    }

    @Test("bad requests are refused with the field or name and the reason; nothing is made")
    func badRequests() throws {
        let c = try collection("sqlite", label: "tune-bad")
        defer { try? FileManager.default.removeItem(at: c.folder) }
        func message(_ options: TuneOptions) -> String {
            do {
                _ = try c.engine.tune(options)
                return "made"
            } catch {
                return "\(error)"
            }
        }
        #expect(message(TuneOptions(name: "shop", labels: "colour")).contains("\"colour\""))
        #expect(message(TuneOptions(name: "shop", labels: "shop")).contains("same label"))
        #expect(message(TuneOptions(name: "no spaces", labels: "category")).contains("no spaces"))
        #expect(message(TuneOptions(base: "no-such-model", name: "shop", labels: "category")).contains("no-such-model"))
        #expect(message(TuneOptions(base: "\(Self.base)+x", name: "shop", labels: "category")).contains("tuned"))
        #expect(try c.engine.tunedModels().isEmpty)
    }
}

/// `lookalike tune` as a person types it: the report, the exit status, --list and --remove.
@Suite("tune command", .serialized)
struct TuneCommandTests {
    func lookalike(_ arguments: [String]) throws -> CommandResult {
        try runCommand(try TestData.executable(), arguments)
    }

    @Test("tune makes BASE+NAME and says what it gained; a tuning without gain exits 2 and makes nothing")
    func tuneCommand() throws {
        let root = try TestData.temporaryDirectory("cli-tune")
        defer { try? FileManager.default.removeItem(at: root) }
        let images = try TestData.categoryImages()
        let metadata = root.appendingPathComponent("labels.jsonl")
        // Every other item labelled; the rest carry no category.
        let lines = images.enumerated().map { index, image in
            index % 2 == 0 ? "{\"path\": \"\(image.path)\", \"category\": \"\(image.category)\"}" : "{\"path\": \"\(image.path)\"}"
        }
        try Data(lines.joined(separator: "\n").utf8).write(to: metadata)
        let store = root.appendingPathComponent("store").path
        let added = try lookalike(["add"] + images.map(\.path) + ["--metadata", metadata.path, "--store", store, "--json"])
        #expect(added.status == 0, "\(added.stderr)")

        let base = "efficientnet-lite0-gem"
        let tuned = try lookalike(["tune", "--labels", "category", "--name", "shop", "--store", store])
        #expect(tuned.status == 0, "\(tuned.stderr)")
        #expect(tuned.stdout.contains("made \(base)+shop: \(images.count) vectors projected"), "\(tuned.stdout)")
        #expect(tuned.stderr.contains("epoch  0  held-out mAP@R"), "the progress goes to stderr: \(tuned.stderr)")

        let search = try lookalike(["search", images[1].path, "--model", "\(base)+shop", "--top", "3", "--store", store, "--json"])
        #expect(search.status == 0, "\(search.stderr)")
        #expect(search.stdout.contains(images[1].path))

        let list = try lookalike(["tune", "--list", "--store", store])
        #expect(list.stdout.contains("\(base)+shop") && list.stdout.contains("labels category"), "\(list.stdout)")

        // Made the store's default: a search that names no model uses it; --reset-default goes back.
        let chosen = try lookalike(["models", "--default", "\(base)+shop", "--store", store])
        #expect(chosen.status == 0 && chosen.stdout.contains("is now \(base)+shop"), "\(chosen.stdout) \(chosen.stderr)")
        let byDefault = try lookalike(["search", images[1].path, "--top", "3", "--store", store, "--json"])
        let answer = try #require(try JSONSerialization.jsonObject(with: Data(byDefault.stdout.utf8)) as? [String: Any])
        #expect(answer["model"] as? String == "\(base)+shop", "\(byDefault.stdout)")
        // Duplicates need calibrated copy thresholds, which a tuned model has not: they use its base.
        let duplicates = try lookalike(["duplicates", "--store", store, "--json"])
        #expect((try JSONSerialization.jsonObject(with: Data(duplicates.stdout.utf8)) as? [String: Any])?["model"] as? String == base,
                "\(duplicates.stdout) \(duplicates.stderr)")
        let shown = try lookalike(["models", "--store", store, "--json"])
        #expect((try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any])?["store_default"] as? String
                == "\(base)+shop", "\(shown.stdout)")
        let reset = try lookalike(["models", "--reset-default", "--store", store])
        #expect(reset.status == 0 && reset.stdout.contains("is now \(base)"), "\(reset.stdout)")
        let refused = try lookalike(["models", "--default", "nope", "--store", store])
        #expect(refused.status == 1 && refused.stderr.contains("no model named nope"), "\(refused.stderr)")

        // Learning nothing (a linear head and a step size of 1e-9) beats nothing: exit 2, the reason, no model.
        let still = try lookalike(["tune", "--labels", "category", "--name", "still", "--learning-rate", "1e-9", "--epochs", "1", "--head", "linear",
                                   "--store", store, "--json"])
        #expect(still.status == 2, "\(still.stdout) \(still.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(still.stdout.utf8)) as? [String: Any])
        #expect(report["created"] as? Bool == false)
        #expect((report["reason"] as? String)?.contains("--force") == true)

        // The same name again needs --replace; removal names what went.
        let again = try lookalike(["tune", "--labels", "category", "--name", "shop", "--store", store])
        #expect(again.status == 1 && again.stderr.contains("\(base)+shop"), "\(again.stderr)")
        let removed = try lookalike(["tune", "--remove", "\(base)+shop", "--store", store])
        #expect(removed.status == 0 && removed.stdout.contains("\(images.count) vectors"), "\(removed.stdout) \(removed.stderr)")
        #expect(try lookalike(["tune", "--list", "--store", store]).stdout.contains("no tuned models"))

        // --make-default: made and chosen in one step.
        let made = try lookalike(["tune", "--labels", "category", "--name", "shop2", "--epochs", "3", "--force", "--make-default", "--store", store])
        #expect(made.status == 0 && made.stdout.contains("the store's default model now"), "\(made.stdout) \(made.stderr)")
        #expect(try lookalike(["models", "--store", store]).stdout.contains("the store's default model: \(base)+shop2"))
        let missing = try lookalike(["tune", "--labels", "colour", "--name", "x", "--store", store])
        #expect(missing.status == 1 && missing.stderr.contains("\"colour\""), "\(missing.stderr)")

        // Labels from a field or from pairs, one of them; a pairs file's mistakes name the line.
        let pairs = root.appendingPathComponent("pairs.jsonl")
        try Data("{\"a\": \"\(images[0].path)\", \"b\": \"\(images[2].path)\", \"similar\": true}\n{\"a\": \"\(images[0].path)\"}\n".utf8)
            .write(to: pairs)
        let both = try lookalike(["tune", "--labels", "category", "--pairs", pairs.path, "--name", "x", "--store", store])
        #expect(both.status == 64 && both.stderr.contains("one of them"), "\(both.stderr)")
        #expect(try lookalike(["tune", "--name", "x", "--store", store]).status == 64)
        let broken = try lookalike(["tune", "--pairs", pairs.path, "--name", "x", "--store", store])
        #expect(broken.status == 1 && broken.stderr.contains("pairs.jsonl:2") && broken.stderr.contains("\"b\""), "\(broken.stderr)")
    }
}
