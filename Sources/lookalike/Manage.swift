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
            try printJSON(["store": engine.storeDescription, "items": stats.items, "vectors": stats.vectors,
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
        print("store: \(engine.storeDescription)")
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
    static let configuration = CommandConfiguration(
        abstract: "Remove items (and their vectors) by id, id prefix or image path.",
        discussion: """
            Each item is named by its id (as `search`, `list` and `add --json` print it), by the start of \
            its id when no other item's id starts the same way (at least 4 hex digits), or by the path \
            of the image file it was added from. The image files themselves are left alone. \
            Exit status 2 when some names match no item, or more than one.
            """)

    @Argument(help: "Item ids, unique id prefixes, or image paths.")
    var items: [String] = []

    @Flag(help: "Instead of items, forget the region tiles of --model (the images stay and are searched whole).")
    var tiles = false

    @Option(help: ArgumentHelp("With --tiles: the model whose tiles go (default: the store's default model, a tuned one's base).",
                               valueName: "name"))
    var model: String?

    @OptionGroup var storeOptions: StoreOptions

    func validate() throws {
        if tiles {
            guard items.isEmpty else { throw ValidationError("--tiles removes the tiles of a model, not items: give no items with it") }
        } else {
            guard !items.isEmpty else { throw ValidationError("name the items to remove (ids, id prefixes or image paths), or give --tiles") }
            guard model == nil else { throw ValidationError("--model goes with --tiles") }
        }
    }

    func run() throws {
        if tiles {
            do {
                let engine = try storeOptions.engine(createStore: false)
                let name = try model ?? engine.defaultAddModel()
                let count = try engine.removeTiles(model: name)
                print("removed the tiles of \(count) item\(count == 1 ? "" : "s") (model \(name))")
                return
            } catch {
                throw fail(error)
            }
        }
        let engine: Engine
        var ids: [String] = []
        var problems: [String] = []
        let removed: [String]
        do {
            engine = try storeOptions.engine(createStore: false)
            for reference in items {
                switch try engine.resolve(reference) {
                case .item(let id): ids.append(id)
                case .notFound(let reason): problems.append("\(reference): \(reason)")
                case .ambiguous(let candidates):
                    problems.append("\(reference): several items have ids starting so (\(candidates.joined(separator: ", ")), ...); give more of the id")
                }
            }
            var seen = Set<String>()
            removed = try engine.remove(ids: ids.filter { seen.insert($0).inserted })
        } catch {
            throw fail(error)
        }
        print("removed \(removed.count)")
        for problem in problems {
            FileHandle.standardError.write(Data("lookalike: \(problem)\n".utf8))
        }
        if !problems.isEmpty { throw ExitCode(2) }
    }
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the stored items: ids, sizes, paths and metadata.",
        discussion: """
            Items come in id order. With --json the output is one object: {"items": [{"id", "path", "width", \
            "height", "metadata", "added_at", "colors"}], "next"}; pass "next" as --after to get the following page.
            """)

    @Option(help: ArgumentHelp("Only items whose metadata passes this JSON filter (as `search --filter` takes it).", valueName: "json"))
    var filter: String?

    @Option(parsing: .unconditional, help: "List at most this many items (0: all).")
    var limit = 0

    @Option(help: ArgumentHelp("Start after this item id (the \"next\" of an earlier --json page).", valueName: "id"))
    var after: String?

    @Flag(help: "Print as JSON.")
    var json = false

    @OptionGroup var storeOptions: StoreOptions

    func validate() throws {
        guard limit >= 0 else { throw ValidationError("--limit must be 0 (all) or more") }
        if let filter {
            do { _ = try MetadataFilter(json: filter) } catch { throw ValidationError("--filter: \(error)") }
        }
    }

    func run() throws {
        var listed: [Item] = []
        var next: String?
        do {
            let engine = try storeOptions.engine(createStore: false)
            let passing = try filter.map { try engine.itemIDs(matching: try MetadataFilter(json: $0)) }
            let wanted = limit == 0 ? Int.max : limit
            try engine.forEachItemPage(after: after) { page in
                for item in page where passing?.contains(item.id) ?? true {
                    if listed.count == wanted {
                        next = listed.last?.id  // one more passes: the page ends here
                        return false
                    }
                    listed.append(item)
                }
                return true
            }
        } catch {
            throw fail(error)
        }
        if json {
            let formatter = ISO8601DateFormatter()
            try printJSON(["items": listed.map { item -> [String: Any] in
                ["id": item.id, "path": item.sourcePath, "width": item.width, "height": item.height,
                 "metadata": jsonObject(item.metadata), "added_at": formatter.string(from: item.addedAt),
                 "colors": jsonObject(item.colors)]
            }, "next": next.map { $0 as Any } ?? NSNull()])
            return
        }
        for item in listed {
            let metadata = item.metadata.map { "  \($0)" } ?? ""
            print("\(item.id)  \(item.width)x\(item.height)  \(item.sourcePath)\(metadata)")
        }
        let more = next.map { "; more after \($0) (--after \($0))" } ?? ""
        FileHandle.standardError.write(Data("\(plural(listed.count, "item"))\(more)\n".utf8))
    }
}

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the embedding models and whether they are installed; choose the store's default model.",
        discussion: """
            A store searches with its default model when a search names none, and adds with it when an \
            add names none (a tuned model's adds go to its base model, and its own vectors follow). It \
            is efficientnet-lite0-gem until --default chooses another: an installed image model, or one \
            of the store's tuned models (`lookalike tune --list`). Removing a tuned model that is the \
            default makes efficientnet-lite0-gem the default again.
            """)

    @Flag(help: "Print as JSON.")
    var json = false

    @Option(name: .customLong("default"), help: ArgumentHelp("Make this model the store's default.", valueName: "model"))
    var makeDefault: String?

    @Flag(name: .customLong("reset-default"), help: "Make efficientnet-lite0-gem the store's default again.")
    var resetDefault = false

    @OptionGroup var storeOptions: StoreOptions

    func validate() throws {
        guard !(makeDefault != nil && resetDefault) else { throw ValidationError("give --default or --reset-default, not both") }
    }

    func run() throws {
        let registry: ModelRegistry
        // The store's default model, when there is a store to ask.
        var storeDefault: String?
        do {
            if makeDefault != nil || resetDefault {
                let engine = try storeOptions.engine(createStore: false)
                let chosen = try engine.setDefaultModel(resetDefault ? nil : makeDefault)
                print("the default model of \(engine.storeDescription) is now \(chosen)")
                return
            }
            registry = try ModelRegistry(directory: ModelRegistry.defaultDirectory())
            storeDefault = try? storeOptions.engine(createStore: false).defaultModel()
        } catch {
            throw fail(error)
        }
        if json {
            try printJSON(["folder": registry.directory.path, "store_default": storeDefault ?? NSNull(),
                           "models": registry.manifests.map { manifest -> [String: Any] in
                ["name": manifest.name, "dimension": manifest.dimension, "installed": registry.isInstalled(manifest),
                 "modality": manifest.modality.rawValue, "space": manifest.embeddingSpace, "summary": manifest.summary,
                 "duplicate_threshold": manifest.duplicateThreshold.map { Double($0) as Any } ?? NSNull(),
                 "similar_threshold": manifest.similarThreshold.map { Double($0) as Any } ?? NSNull()]
            }])
            return
        }
        print("models folder: \(registry.directory.path)")
        if let storeDefault { print("the store's default model: \(storeDefault)") }
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
