import ArgumentParser
import Foundation
import Lookalike

struct Migrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy a store into another: a SQLite folder into PostgreSQL, or back.",
        discussion: """
            Copies models, items with their metadata, every model's vectors and feedback. Only what \
            the target lacks is copied, a page at a time, so a migration that stopped is finished by \
            running it again. At the end both stores' counts and a checksum of ids, metadata and \
            vectors must agree, or the command fails. Files beside the records (uploads, thumbnails) \
            are not copied: move them with the files themselves.
            """)

    @Option(name: .long, help: ArgumentHelp("The store to copy from: a folder or a postgres:// address.", valueName: "store"))
    var from: String

    @Option(name: .long, help: ArgumentHelp("The store to copy into (made if missing).", valueName: "store"))
    var to: String

    @Option(name: .long, help: "Items per page (one write each).")
    var pageSize = 500

    @Flag(help: "Print the report as JSON.")
    var json = false

    func validate() throws {
        guard (1...10_000).contains(pageSize) else { throw ValidationError("--page-size must be between 1 and 10000") }
        let (source, target) = (StoreLocation.resolveStore(from), StoreLocation.resolveStore(to))
        if source.folder.standardizedFileURL == target.folder.standardizedFileURL && source.database == target.database {
            throw ValidationError("--from and --to name the same store")
        }
    }

    func run() throws {
        let report: StoreMigration.Report
        do {
            func open(_ text: String, create: Bool) throws -> Engine {
                let location = StoreLocation.resolveStore(text)
                return try Engine(configuration: EngineConfiguration(store: location.folder, database: location.database), createStore: create)
            }
            let source = try open(from, create: false)
            let target = try open(to, create: true)
            var shown = -1
            report = try StoreMigration.run(from: source.store, to: target.store, pageSize: pageSize) { done, total in
                let percent = total == 0 ? 100 : done * 100 / total
                if !json && percent / 10 != shown / 10 {
                    shown = percent
                    FileHandle.standardError.write(Data("\(done)/\(total) items checked\n".utf8))
                }
            }
        } catch {
            throw fail(error)
        }
        if json {
            try printJSON(["items_copied": report.itemsCopied, "vectors_copied": report.vectorsCopied,
                           "metadata_updated": report.metadataUpdated, "feedback_copied": report.feedbackCopied,
                           "tuned_models_copied": report.tunedModelsCopied, "default_model_copied": report.defaultModelCopied,
                           "items_without_vectors": report.itemsWithoutVectors,
                           "items": report.target.items, "vectors": report.target.vectors, "checksum": report.target.digest])
            return
        }
        let vectors = report.vectorsCopied.values.reduce(0, +)
        print("copied \(report.itemsCopied) items, \(vectors) vectors, \(report.feedbackCopied) feedback marks; "
              + "updated the metadata of \(report.metadataUpdated)")
        if !report.tunedModelsCopied.isEmpty { print("copied the tuned models \(report.tunedModelsCopied.joined(separator: ", "))") }
        if !report.itemsWithoutVectors.isEmpty {
            print("left out \(report.itemsWithoutVectors.count) items without vectors: \(report.itemsWithoutVectors.prefix(5).joined(separator: ", "))")
        }
        print("verified: both stores hold \(report.target)")
    }
}
