import ArgumentParser
import Foundation
import Lookalike

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show what the store holds.")

    @Flag(help: "Print as JSON.")
    var json = false

    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        let engine: Engine
        let stats: CatalogStats
        let indexes: [Engine.IndexStatus]
        do {
            engine = try storeOptions.engine(createStore: false)
            stats = try engine.stats()
            indexes = try engine.indexStatuses()
        } catch {
            throw fail(error)
        }
        if json {
            try printJSON(["store": engine.configuration.store.path, "items": stats.items, "vectors": stats.vectors,
                           "bytes_on_disk": stats.bytesOnDisk,
                           "indexes": indexes.map { status in
                               [
                                   "model": status.model, "kind": status.kind, "vectors": status.vectors,
                                   "memory_bytes": status.memoryBytes, "encoding": status.encoding.map { $0 as Any } ?? NSNull(),
                                   "snapshot_age_s": status.snapshotSaved.map { (-$0.timeIntervalSinceNow).rounded() as Any } ?? NSNull(),
                               ] as [String: Any]
                           }])
            return
        }
        print("store: \(engine.configuration.store.path)")
        print("items: \(stats.items)")
        for (model, count) in stats.vectors.sorted(by: { $0.key < $1.key }) {
            print("vectors (\(model)): \(count)")
        }
        for status in indexes {
            let kind = status.encoding.map { "\(status.kind) (\($0) vectors)" } ?? status.kind
            var line = String(format: "index (%@): %@, %d vectors, %.1f MB in memory", status.model, kind,
                              status.vectors, Double(status.memoryBytes) / 1_048_576)
            if let saved = status.snapshotSaved {
                line += String(format: ", snapshot saved %.0f s ago", -saved.timeIntervalSinceNow)
            }
            print(line)
        }
        print(String(format: "catalog on disk: %.1f MB", Double(stats.bytesOnDisk) / 1_048_576))
    }
}

struct Remove: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Remove items (and their vectors) by id.")

    @Argument(help: "Item ids, as `search` and `add --json` print them.")
    var ids: [String]

    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        let removed: [String]
        do {
            removed = try storeOptions.engine(createStore: false).remove(ids: ids)
        } catch {
            throw fail(error)
        }
        let missing = ids.filter { !removed.contains($0) }
        print("removed \(removed.count)")
        for id in missing {
            FileHandle.standardError.write(Data("lookalike: no item with id \(id)\n".utf8))
        }
        if !missing.isEmpty { throw ExitCode(2) }
    }
}

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the embedding models and whether they are installed.")

    @Flag(help: "Print as JSON.")
    var json = false

    func run() throws {
        let registry: ModelRegistry
        do {
            registry = try ModelRegistry(directory: ModelRegistry.defaultDirectory())
        } catch {
            throw fail(error)
        }
        if json {
            try printJSON(["folder": registry.directory.path, "models": registry.manifests.map { manifest -> [String: Any] in
                ["name": manifest.name, "dimension": manifest.dimension, "installed": registry.isInstalled(manifest),
                 "modality": manifest.modality.rawValue, "space": manifest.embeddingSpace, "summary": manifest.summary,
                 "duplicate_threshold": manifest.duplicateThreshold.map { Double($0) as Any } ?? NSNull(),
                 "similar_threshold": manifest.similarThreshold.map { Double($0) as Any } ?? NSNull()]
            }])
            return
        }
        print("models folder: \(registry.directory.path)")
        for manifest in registry.manifests {
            let state = registry.isInstalled(manifest) ? "installed" : "not installed: to install it, \(manifest.installHint)"
            print("\(manifest.name)  \(manifest.dimension)-d  \(state)")
            print("    \(manifest.summary)")
            let thresholds = [manifest.duplicateThreshold.map { String(format: "copy from %.3f", $0) },
                              manifest.similarThreshold.map { String(format: "similar from %.3f", $0) }].compactMap { $0 }
            if !thresholds.isEmpty { print("    labels: \(thresholds.joined(separator: ", ")) (cosine similarity)") }
            print("    licence: \(manifest.licence)")
        }
    }
}
