import ArgumentParser
import Foundation
import Lookalike

struct Add: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Add images to the store.",
        discussion: """
            Each input is added, recognised as a duplicate of stored bytes, or reported as failed with \
            its reason; failures never stop the batch. Exit status 2 when some inputs failed. \
            With --model repeated, the images are embedded by each model in turn (what a search \
            cascade such as --model sscd --cascade phash needs), and there is a report for each.
            """
    )

    @Argument(help: "Image files, or folders with --recursive.")
    var paths: [String]

    @Flag(name: [.short, .long], help: "Add the images inside folders, and inside their subfolders.")
    var recursive = false

    @Option(help: ArgumentHelp("The embedding model (see `lookalike models`); repeat it to embed with several. Default: the store's default "
                + "model (efficientnet-lite0-gem unless `lookalike models --default` chose another; a tuned default adds with its base)."))
    var model: [String] = []

    @Option(help: ArgumentHelp("Metadata for the images: JSON Lines or CSV, each record with a `path` field.", valueName: "file"))
    var metadata: String?

    @Flag(help: ArgumentHelp("Embed region tiles too (the four quarters and the centre), so a detail of a scene finds the scene; images already stored gain them.",
                             discussion: "Six vectors per image instead of one: adding takes about four times as long."))
    var tiles = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    @OptionGroup var storeOptions: StoreOptions

    func validate() throws {
        if !recursive, let folder = paths.first(where: { path in
            var isFolder: ObjCBool = false
            return FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) && isFolder.boolValue
        }) {
            throw ValidationError("\(folder) is a folder: add --recursive to add the images inside it (and inside its subfolders)")
        }
    }

    func run() throws {
        var reports: [IngestReport] = []
        do {
            let metadataFile = try metadata.map { try MetadataFile(path: $0) }
            let engine = try storeOptions.engine(createStore: true)
            for name in model.isEmpty ? [try engine.defaultAddModel()] : model {
                let display = ProgressDisplay(interactive: isatty(STDERR_FILENO) == 1)
                reports.append(try engine.add(
                    paths, options: AddOptions(recursive: recursive, model: name, metadata: metadataFile, tiles: tiles),
                    progress: { display.show($0) }))
                display.finish()
                if reports.last?.storeError != nil { break }
            }
        } catch {
            throw fail(error)
        }
        if json {
            // One model: its report. Several: a list of them, in the order given.
            let objects = reports.map(Self.object)
            try printJSON(objects.count == 1 ? objects[0] : objects)
        } else {
            // With several models, an input that failed the same way for each is listed once.
            var listed = Set<String>()
            print(reports.map { summary($0, listed: &listed) }.joined(separator: "\n"))
            if let first = reports.first, !first.unmatchedMetadata.isEmpty {
                let count = first.unmatchedMetadata.count
                print("metadata: \(count) record\(count == 1 ? "" : "s") of \(metadata ?? "the metadata file") name\(count == 1 ? "s" : "") no input, so nothing was stored for \(count == 1 ? "it" : "them"):")
                for path in first.unmatchedMetadata.prefix(20) { print("  \(path)") }
                if count > 20 { print("  ... and \(count - 20) more (--json lists them all)") }
            }
        }
        if reports.contains(where: { !$0.failures.isEmpty || !$0.tileFailures.isEmpty }) { throw ExitCode(2) }
    }

    private static func object(_ report: IngestReport) -> [String: Any] {
        [
            "model": report.model,
            "seconds": report.seconds,
            "added": report.added.map { ["id": $0.id, "path": $0.path] },
            "duplicates": report.duplicates.map { ["path": $0.path, "existing_id": $0.existingId] },
            "failed": report.failures.map { ["path": $0.path, "reason": $0.reason] },
            "skipped": report.skipped,
            "metadata_unmatched": report.unmatchedMetadata,
            "store_error": report.storeError.map { $0 as Any } ?? NSNull(),
            "tiled": report.tiled,
            "tiles_failed": report.tileFailures.map { ["path": $0.path, "reason": $0.reason] },
        ]
    }

    private func summary(_ report: IngestReport, listed: inout Set<String>) -> String {
        let rate = report.seconds > 0 ? Double(report.added.count) / report.seconds : 0
        let skipped = report.skipped > 0 ? ", skipped \(report.skipped) (hidden or not images)" : ""
        var lines = [String(
            format: "added %d, duplicates %d, failed %d%@ (model %@, %.1f s, %.1f images/s)",
            report.added.count, report.duplicates.count, report.failures.count, skipped, report.model, report.seconds, rate)]
        var repeated = 0
        for failure in report.failures {
            if listed.insert("\(failure.path)\u{0}\(failure.reason)").inserted {
                lines.append("  failed: \(failure.path): \(failure.reason)")
            } else {
                repeated += 1
            }
        }
        if repeated > 0 {
            lines.append("  (\(repeated) failed as listed above)")
        }
        if report.tiles {
            lines.append("tiles: \(report.tiled) image\(report.tiled == 1 ? "" : "s") gained region tiles"
                         + (report.tileFailures.isEmpty ? "" : ", \(report.tileFailures.count) did not"))
            for failure in report.tileFailures.prefix(20) { lines.append("  tiles failed: \(failure.path): \(failure.reason)") }
        }
        if let storeError = report.storeError {
            lines.append("stopped: the store refused a write (\(storeError)); images added before that are kept")
        }
        return lines.joined(separator: "\n")
    }
}

/// Progress on standard error: a redrawn bar on a terminal, one plain line per input otherwise.
final class ProgressDisplay: @unchecked Sendable {
    private let interactive: Bool
    private var drawn = false

    init(interactive: Bool) {
        self.interactive = interactive
    }

    func show(_ progress: IngestProgress) {
        let word: String
        switch progress.outcome {
        case .added: word = "added"
        case .duplicate: word = "duplicate"
        case .failed: word = "failed"
        }
        if interactive {
            let width = 30
            let filled = progress.total > 0 ? width * progress.done / progress.total : width
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            let name = (progress.path as NSString).lastPathComponent
            write("\r\u{1B}[K[\(bar)] \(progress.done)/\(progress.total) \(word) \(name.prefix(40))")
            drawn = true
        } else {
            write("[\(progress.done)/\(progress.total)] \(word) \(progress.path)\n")
        }
    }

    func finish() {
        if drawn { write("\n") }
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
