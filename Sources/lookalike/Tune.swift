import ArgumentParser
import Foundation
import Lookalike

extension TuningOptions.Loss: ExpressibleByArgument {}

struct Tune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Teach a model what \"similar\" means here: learn a projection of its vectors from labels.",
        discussion: """
            Items whose metadata field (--labels) holds the same value are taught to come closer than \
            items with different values. A linear projection of the base model's stored vectors, and a \
            small two-layer head over them, are learned on the CPU (no image is decoded); part of each \
            label's items is held out, and the head and epoch with the best mAP@R on them are kept. The result is reported before anything is \
            switched on: only when it beats the base model on the held-out items is the tuned model \
            made, named <model>+<name>, with a vector for every item of the base model. Search with it \
            with `--model <model>+<name>`; items added later get its vectors too. Same labels and \
            seed, same projection.

            --list shows the tuned models and their reports; --remove NAME forgets one (its base model \
            is untouched).
            """
    )

    @Option(help: ArgumentHelp("The metadata field whose values are the labels.", valueName: "field"))
    var labels: String?

    @Option(help: ArgumentHelp("Pairs judged alike or not instead of a field: JSON lines {\"a\", \"b\", \"similar\"} or CSV a,b,similar; "
                               + "a and b are item ids or image paths.", valueName: "file"))
    var pairs: String?

    @Flag(help: "Learn from the feedback log instead: a search's query and the hits marked relevant or clicked are alike.")
    var feedback = false

    @Option(help: ArgumentHelp("The tuned model is <model>+<name>.", valueName: "name"))
    var name: String?

    @Option(help: ArgumentHelp("The base model whose vectors are projected (default: the store's default model, or a tuned default's base).", valueName: "name"))
    var model: String?

    @Option(help: ArgumentHelp("The loss: proxy (a learned proxy per label) or multi-similarity (pairs, hard ones mined).",
                               valueName: "proxy|multi-similarity"))
    var loss: TuningOptions.Loss = TuningOptions().loss

    @Option(help: ArgumentHelp("The head learned: linear, two-layer, or both, keeping the better on the held-out items.",
                               valueName: "linear|two-layer|both"))
    var head = "both"

    @Option(help: "Seeds the held-out split and the batches.")
    var seed: UInt64 = TuningOptions().seed

    @Option(help: ArgumentHelp("Epochs at most (training stops earlier when the held-out items stop improving).", valueName: "n"))
    var epochs = TuningOptions().maxEpochs

    @Option(name: .customLong("learning-rate"), help: ArgumentHelp("Adam's step size.", valueName: "rate"))
    var learningRate = TuningOptions().learningRate

    @Flag(help: "Make the tuned model even when it does not beat the base model on the held-out items.")
    var force = false

    @Flag(help: "Replace a tuned model of the same name.")
    var replace = false

    @Flag(name: .customLong("make-default"),
          help: "Make the tuned model the store's default model once it is made (searches that name no model use it).")
    var makeDefault = false

    @Flag(help: "List the tuned models.")
    var list = false

    @Option(help: ArgumentHelp("Forget a tuned model (<model>+<name>).", valueName: "model"))
    var remove: String?

    @Flag(help: "Print the report as JSON.")
    var json = false

    @OptionGroup var storeOptions: StoreOptions

    func validate() throws {
        if list || remove != nil {
            guard labels == nil, pairs == nil, !feedback, name == nil, !makeDefault else {
                throw ValidationError("--list and --remove take no --labels, --pairs, --feedback, --name or --make-default")
            }
            guard !(list && remove != nil) else { throw ValidationError("give --list or --remove, not both") }
            return
        }
        guard [labels != nil, pairs != nil, feedback].filter({ $0 }).count == 1 else {
            throw ValidationError("give --labels (the metadata field to learn from), --pairs (a file of pairs) or --feedback, one of them")
        }
        guard name != nil else { throw ValidationError("--name names the tuned model (<model>+<name>)") }
        guard ["linear", "two-layer", "both"].contains(head) else { throw ValidationError("--head is linear, two-layer or both") }
        guard (1...1_000).contains(epochs) else { throw ValidationError("--epochs must be between 1 and 1000") }
        guard learningRate > 0, learningRate <= 1 else { throw ValidationError("--learning-rate must be above 0 and at most 1") }
    }

    func run() throws {
        do {
            let engine = try storeOptions.engine(createStore: false)
            if list { return try printList(engine) }
            if let remove {
                let removed = try engine.removeTunedModel(remove)
                print("removed \(remove) and its \(removed) vector\(removed == 1 ? "" : "s")")
                return
            }
            var training = TuningOptions()
            training.loss = loss
            training.seed = seed
            training.maxEpochs = epochs
            training.learningRate = learningRate
            training.heads = TuningOptions.Head(rawValue: head).map { [$0] } ?? TuningOptions.Head.allCases
            let pairsFile = try pairs.map { try PairsFile(path: $0) }
            let base = try model ?? engine.defaultAddModel()
            let options = TuneOptions(base: base, name: name ?? "", labels: labels ?? "", pairs: pairsFile, feedback: feedback,
                                      training: training,
                                      force: force, replace: replace)
            let quiet = json
            let report = try engine.tune(options) { progress in
                guard !quiet else { return }
                switch progress {
                case .reading: break
                case .epoch(let epoch):
                    let line = epoch.epoch == 0
                        ? String(format: "epoch  0  held-out mAP@R %.4f (%@ as it is)", epoch.validation, base)
                        : String(format: "%@ epoch %2d  loss %.4f  held-out mAP@R %.4f", epoch.head ?? "", epoch.epoch, epoch.loss,
                                 epoch.validation)
                    FileHandle.standardError.write(Data((line + "\n").utf8))
                case .projecting(let done, let total):
                    FileHandle.standardError.write(Data("\rprojecting \(done)/\(total) vectors".utf8))
                    if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
                }
            }
            if makeDefault && report.created { try engine.setDefaultModel(report.model) }
            if json {
                let data = try JSONEncoder.sorted.encode(report)
                print(String(decoding: data, as: UTF8.self))
            } else {
                print(Self.summary(report, madeDefault: makeDefault && report.created))
            }
            if !report.created { throw ExitCode(2) }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw fail(error)
        }
    }

    static func summary(_ report: TuneReport, madeDefault: Bool = false) -> String {
        var lines = [String(format: "learned from %d labelled items in %d classes (%d trained on, %d held out; %d without a label)",
                            report.labelledItems, report.classes, report.trainingItems, report.validationItems, report.unlabelledItems)]
        if let pairs = report.pairs {
            var line = "pairs: \(pairs.similar) similar, \(pairs.notSimilar) not similar, \(pairs.groups) groups of two items or more"
            if pairs.unmatched > 0 {
                line += "; \(pairs.unmatched) naming no stored item (\(pairs.unmatchedExamples.joined(separator: ", ")))"
            }
            if pairs.conflicts > 0 { line += "; \(pairs.conflicts) marked not similar but joined by similar pairs" }
            lines.append(line)
        }
        if let marks = report.feedback {
            lines.append("feedback: \(marks.queries) searches with \(marks.relevant) hits marked relevant or clicked and "
                         + "\(marks.notRelevant) marked not relevant, in \(marks.groups) groups")
        }
        for candidate in report.candidates ?? [] {
            lines.append(String(format: "  %@ head: held-out mAP@R %.4f (best epoch %d of %d)", candidate.head, candidate.best,
                                candidate.bestEpoch, candidate.epochs))
        }
        lines.append(String(format: "held-out mAP@R: %.4f with %@, %.4f tuned (%+.4f, %@), %.1f s",
                            report.baseline, report.base, report.best, report.gain, report.head ?? "no head kept",
                            report.trainingSeconds))
        if report.created {
            lines.append(String(format: "made %@: %d vectors projected in %.1f s; ", report.model, report.vectorsProjected,
                                report.projectionSeconds)
                         + (madeDefault ? "the store's default model now (searches that name no model use it)"
                                        : "search with --model \(report.model)"))
        } else {
            lines.append("not made: \(report.reason ?? "no gain")")
        }
        return lines.joined(separator: "\n")
    }

    private func printList(_ engine: Engine) throws {
        let tuned = try engine.tunedModels()
        if json {
            let objects: [Any] = tuned.map { record in
                var object: [String: Any] = ["model": record.name, "base": record.base, "dimension": record.outputDimension,
                                             "created_at": ISO8601DateFormatter().string(from: record.createdAt)]
                object["report"] = (try? JSONSerialization.jsonObject(with: Data(record.report.utf8))) ?? NSNull()
                return object
            }
            return try printJSON(objects)
        }
        if tuned.isEmpty { return print("no tuned models") }
        for record in tuned {
            let report = try? JSONDecoder().decode(TuneReport.self, from: Data(record.report.utf8))
            let gain = report.map { String(format: "held-out mAP@R %.4f -> %.4f, labels %@", $0.baseline, $0.best, $0.labels) } ?? ""
            print("\(record.name)  (\(record.base), \(record.outputDimension)-d)  \(gain)")
        }
    }
}

extension JSONEncoder {
    /// Keys sorted, for output people and scripts read.
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
