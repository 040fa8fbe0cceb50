import ArgumentParser
import Foundation
import Lookalike

struct Duplicates: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the groups of near-duplicate images in the store.",
        discussion: """
            Each item's nearest neighbours give the pairs scoring at least the threshold (the model's \
            calibrated copy threshold unless --threshold is given); the pairs' connected components are \
            split so that every member of a group reaches the threshold against the group's \
            representative, the member linked to the most others. Nothing is removed: pass the ids you \
            do not want to `lookalike remove`.

            With --json the output is one object: {"model", "threshold", "searched", "took_ms", "groups": \
            [{"size", "representative": {"id", "path", "width", "height", "added_at"}, "copies": [{... , \
            "score"}]}]}, largest groups first.
            """
    )

    @Option(help: ArgumentHelp("The embedding model (see `lookalike models`): sscd is the copy detector, the default model finds "
                               + "near-duplicates too. Default: the store's default model (a tuned one's base: only models of their "
                               + "own have calibrated copy thresholds)."))
    var model: String?

    @Option(help: ArgumentHelp("Pairs scoring at least this cosine similarity are copies (default: the model's calibrated threshold).",
                               valueName: "score"))
    var threshold: Float?

    @Option(help: ArgumentHelp("Neighbours looked up per item.", valueName: "k"))
    var neighbours = 10

    @Flag(help: "Print the groups as JSON.")
    var json = false

    @OptionGroup var storeOptions: StoreOptions

    func validate() throws {
        if let threshold, !(-1...1).contains(threshold) { throw ValidationError("--threshold must be between -1 and 1") }
        guard (1...1_000).contains(neighbours) else { throw ValidationError("--neighbours must be between 1 and 1000") }
    }

    func run() throws {
        let report: DuplicateReport
        do {
            let engine = try storeOptions.engine(createStore: false)
            report = try engine.duplicateGroups(DuplicateOptions(model: try model ?? engine.defaultAddModel(), threshold: threshold,
                                                                 neighbours: neighbours))
        } catch {
            throw fail(error)
        }
        if json {
            try printJSON(report.jsonObject())
            return
        }
        let copies = report.groups.reduce(0) { $0 + $1.copies.count }
        print(String(format: "%d groups, %d copies to review among %d images (model %@, threshold %.4f, %.1f s)",
                     report.groups.count, copies, report.searched, report.model, report.threshold, report.seconds))
        for group in report.groups {
            print("")
            print("  keep?   \(group.representative.id)  \(group.representative.width)x\(group.representative.height)  \(group.representative.sourcePath)")
            for copy in group.copies {
                print(String(format: "  %.4f  %@  %dx%d  %@", copy.score, copy.item.id, copy.item.width, copy.item.height, copy.item.sourcePath))
            }
        }
    }
}
