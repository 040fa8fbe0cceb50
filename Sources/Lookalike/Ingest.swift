import Catalog
import Embedding
import Foundation
import Imaging
import Storage

/// The add pipeline: files are found, then taken `chunkSize` at a time; each chunk is read,
/// hashed and decoded in parallel, embedded (equal-sized images as one batch), and stored in one
/// transaction, and the loaded index takes the new vectors.
extension Engine {
    /// Inputs handled per round: decoded in parallel, embedded, then stored in one transaction.
    static let chunkSize = 32

    /// Adds image files (and, with `recursive`, the images inside folders). Each input ends up
    /// added, a duplicate of an item already stored, or failed with a reason; a failure never
    /// stops the batch, and what is stored is committed chunk by chunk.
    public func add(
        _ paths: [String], options: AddOptions = AddOptions(), progress: (@Sendable (IngestProgress) -> Void)? = nil
    ) throws -> IngestReport {
        let started = Date()
        let embedder = try models.embedder(options.model)
        if let base = embedder.baseModel {
            throw EngineError.badOption("\(options.model) is a tuned model: add with its base model, \(base.manifest.name), "
                + "and the tuned model gets the new items' vectors by projection")
        }
        try models.check(embedder, record: true)
        let tilesModel = Tiles.model(of: embedder.manifest.name)
        if options.tiles {
            guard embedder.manifest.modality == .image else {
                throw EngineError.badOption("\(options.model) embeds text: only an image model has region tiles")
            }
            try store.checkModel(tilesModel, fingerprint: Tiles.fingerprint(of: embedder.fingerprint),
                                 dimension: embedder.manifest.dimension * Tiles.parts, space: nil, record: true)
        }
        // Confined: the walk does not enter folders outside the roots, and each file is checked
        // on the descriptor it is read through (so a link swapped in meanwhile cannot escape).
        let confinement = options.allowedRoots.map { PathConfinement(roots: $0) }
        let discovered = FileDiscovery.collect(paths, recursive: options.recursive, confinement: confinement)
        let total = discovered.files.count + discovered.failures.count
        var report = IngestReport(model: embedder.manifest.name)
        report.tiles = options.tiles
        func record(_ path: String, _ outcome: IngestProgress.Outcome) {
            switch outcome {
            case .added(let id): report.added.append(.init(id: id, path: path))
            case .duplicate(let existing): report.duplicates.append(.init(path: path, existingId: existing))
            case .failed(let reason): report.failures.append(IngestFailure(path: path, reason: reason))
            }
            progress?(IngestProgress(path: path, outcome: outcome, done: report.processed, total: total))
        }
        report.skipped = discovered.skipped
        if let records = options.metadata?.records {
            let inputs = Set(discovered.files).union(discovered.failures.map(\.path))
            report.unmatchedMetadata = records.keys.filter { !inputs.contains($0) }.sorted()
        }
        for failure in discovered.failures { record(failure.path, .failed(reason: failure.reason)) }

        var storedInThisRun: [String: String] = [:]  // content hash -> id, once committed
        var start = 0
        while start < discovered.files.count {
            let chunk = Array(discovered.files[start..<min(start + Self.chunkSize, discovered.files.count)])
            start += chunk.count
            let prepared = chunk.parallelMap(workers: configuration.decodeWorkers) { path in
                self.prepare(path, manifest: embedder.manifest, tiles: options.tiles, confinement: confinement)
            }
            var toEmbed: [(path: String, item: Item, pixels: Pixels, tiles: [Pixels]?)] = []
            var toTile: [(path: String, item: Item, tiles: [Pixels])] = []
            var firstCopy: [String: (path: String, index: Int)] = [:]  // content hash -> input of toEmbed, within this chunk
            var laterCopies: [(path: String, hash: String)] = []
            var metadataUpdates: [(id: String, metadata: String)] = []
            for (path, outcome) in zip(chunk, prepared) {
                switch outcome {
                case .failure(let reason):
                    record(path, .failed(reason: reason))
                case .storeFailure(let error):
                    if report.storeError == nil { report.noteStoreError(error) }
                    record(path, .failed(reason: "not stored, the store cannot be read: \(error)"))
                case .stored(let item):
                    if let metadata = options.metadata?.records[path], metadata != item.metadata {
                        metadataUpdates.append((item.id, metadata))
                    }
                    record(path, .duplicate(of: item.id))
                case .storedWithoutTiles(let item, let tiles):
                    if let metadata = options.metadata?.records[path], metadata != item.metadata {
                        metadataUpdates.append((item.id, metadata))
                    }
                    toTile.append((path, item, tiles))
                    record(path, .duplicate(of: item.id))
                case .decoded(let hash, let info, let pixels, let tiles):
                    // A copy of an input of this batch: its metadata record, if any, is applied to
                    // the item the way it would be to an item stored before (the later record wins).
                    let metadata = options.metadata?.records[path]
                    if let id = storedInThisRun[hash] {
                        if let metadata { metadataUpdates.append((id, metadata)) }
                        record(path, .duplicate(of: id))
                    } else if let first = firstCopy[hash] {
                        if let metadata { toEmbed[first.index].item.metadata = metadata }
                        laterCopies.append((path, hash))
                    } else {
                        firstCopy[hash] = (path, toEmbed.count)
                        let item = Item(id: Item.id(forContentHash: hash), contentHash: hash, sourcePath: path,
                                        width: info.width, height: info.height,
                                        metadata: metadata, addedAt: Date(), colors: ColorProfile(of: pixels).json)
                        toEmbed.append((path, item, pixels, tiles))
                    }
                }
            }
            if report.storeError != nil {
                // Earlier chunks stay; nothing more is tried while the store cannot be read.
                for entry in toEmbed { record(entry.path, .failed(reason: "not stored: the store cannot be read")) }
                for copy in laterCopies { record(copy.path, .failed(reason: "not stored: the store cannot be read")) }
                for path in discovered.files[start...] { record(path, .failed(reason: "not attempted: the store cannot be read")) }
                break
            }
            var entries: [(item: Item, vector: [Float])] = []
            var failedReasons: [String: String] = [:]  // content hash -> reason
            for (entry, vector) in zip(toEmbed, embedEach(toEmbed.map(\.pixels), embedder: embedder)) {
                switch vector {
                case .success(let vector): entries.append((entry.item, vector))
                case .failure(let error): failedReasons[entry.item.contentHash] = IngestError.embeddingFailed("\(error)").description
                }
            }
            do {
                try store.insert(entries, model: embedder.manifest.name, metadataUpdates: metadataUpdates)
            } catch {
                // Earlier chunks are committed and stay; this one is rolled back as a whole.
                let reason = "not stored, the store refused the write: \(error)"
                for entry in entries { record(entry.item.sourcePath, .failed(reason: reason)) }
                for copy in laterCopies { record(copy.path, .failed(reason: reason)) }
                for (path, hashReason) in toEmbed.compactMap({ entry in failedReasons[entry.item.contentHash].map { (entry.path, $0) } }) {
                    record(path, .failed(reason: hashReason))
                }
                for path in discovered.files[start...] { record(path, .failed(reason: "not attempted: an earlier write to the store failed")) }
                report.noteStoreError(error)
                break
            }
            indexes.added(entries.map { ($0.item.id, $0.vector) }, model: embedder.manifest.name)
            for entry in toEmbed {
                if let reason = failedReasons[entry.item.contentHash] {
                    record(entry.path, .failed(reason: reason))
                } else {
                    storedInThisRun[entry.item.contentHash] = entry.item.id
                    record(entry.path, .added(id: entry.item.id))
                    if let tiles = entry.tiles { toTile.append((entry.path, entry.item, tiles)) }
                }
            }
            if !toTile.isEmpty { addTiles(toTile, embedder: embedder, model: tilesModel, report: &report) }
            for copy in laterCopies {
                if let id = storedInThisRun[copy.hash] {
                    record(copy.path, .duplicate(of: id))
                } else {
                    record(copy.path, .failed(reason: "same bytes as \(firstCopy[copy.hash]?.path ?? "another input"), which failed"))
                }
            }
        }
        if report.tiled > 0 { try tileIndexes.settled(Tiles.manifest(of: embedder.manifest)) }
        if !report.added.isEmpty || report.tiled > 0 {
            if !report.added.isEmpty { try indexes.settled(embedder.manifest) }
            // Tuned models of this model get the new items (and new tiles) too: their vectors are these, projected.
            for tuned in try models.tunedEmbedders(of: embedder.manifest.name) {
                do {
                    try projectMissing(tuned)
                } catch {
                    logger.warning("the vectors of \(tuned.manifest.name) were not made for the new items (a search with it makes them): \(error)")
                }
            }
        }
        report.seconds = Date().timeIntervalSince(started)
        logger.debug("added \(report.added.count), duplicates \(report.duplicates.count), failed \(report.failures.count)")
        return report
    }

    enum Prepared: Sendable {
        case failure(String)
        /// The store could not be read (a database that is away): the batch stops.
        case storeFailure(any Error)
        case stored(Item)
        /// Stored with the model's vector, but without the region tiles asked for: only those are made.
        case storedWithoutTiles(Item, tiles: [Pixels])
        /// New bytes, decoded for the model (and cut into region tiles when asked).
        case decoded(hash: String, info: ImageInfo, pixels: Pixels, tiles: [Pixels]?)
    }

    /// Embeds the region tiles of items just stored (or stored before without tiles) and stores
    /// each item's parts as one vector of the tiles model. An item whose tiles fail keeps its
    /// whole-image vector; the failure is reported, and adding the file again with tiles retries.
    private func addTiles(_ batch: [(path: String, item: Item, tiles: [Pixels])], embedder: Embedder, model: String,
                          report: inout IngestReport) {
        let vectors = embedEach(batch.flatMap(\.tiles), embedder: embedder)
        var entries: [(item: Item, vector: [Float])] = []
        var partsOf: [(id: String, vector: [Float])] = []  // for the index, as embedded
        var paths: [String] = []
        for (offset, entry) in batch.enumerated() {
            let parts = vectors[(offset * Tiles.parts)..<((offset + 1) * Tiles.parts)]
            if let failure = parts.lazy.compactMap({ result -> Error? in
                if case .failure(let error) = result { return error }
                return nil
            }).first {
                report.tileFailures.append(IngestFailure(path: entry.path, reason: "tiles not made: embedding failed: \(failure)"))
                continue
            }
            let embedded = parts.compactMap { try? $0.get() }
            entries.append((entry.item, Tiles.joined(embedded)))
            partsOf += zip(Tiles.partIDs(of: entry.item.id), embedded).map { ($0, $1) }
            paths.append(entry.path)
        }
        do {
            try store.insert(entries, model: model)
            tileIndexes.added(partsOf, model: model)
            report.tiled += entries.count
        } catch {
            for path in paths { report.tileFailures.append(IngestFailure(path: path, reason: "tiles not stored: \(error)")) }
        }
    }

    /// Reads, hashes and decodes one file; answers early when its bytes are already stored.
    func prepare(_ path: String, manifest: ModelManifest, tiles: Bool = false, confinement: PathConfinement?) -> Prepared {
        do {
            let bytes = try FileReader.read(path, maxBytes: configuration.limits.maxBytes, confinement: confinement)
            let hash = ContentHash.sha256(bytes)
            do {
                let existing = try store.item(contentHash: hash)
                if let existing, try store.hasVector(itemId: existing.id, model: manifest.name) {
                    guard tiles, try !store.hasVector(itemId: existing.id, model: Tiles.model(of: manifest.name)) else {
                        return .stored(existing)
                    }
                    return .storedWithoutTiles(existing, tiles: try tilePixels(bytes, manifest: manifest))
                }
                // New bytes: their id must not already belong to other bytes.
                if existing == nil, try !store.items(ids: [Item.id(forContentHash: hash)]).isEmpty {
                    throw IngestError.idCollision(id: Item.id(forContentHash: hash))
                }
            } catch let error as IngestError {
                throw error
            } catch {
                return .storeFailure(error)
            }
            let (info, pixels) = try decoder.load(bytes, policy: try manifest.imagePolicy())
            return .decoded(hash: hash, info: info, pixels: pixels, tiles: tiles ? try tilePixels(bytes, manifest: manifest) : nil)
        } catch {
            return .failure("\(error)")
        }
    }

    /// The region tiles of an image: decoded once at twice the model's size, each part cut from it.
    private func tilePixels(_ bytes: [UInt8], manifest: ModelManifest) throws -> [Pixels] {
        let policy = try manifest.imagePolicy()
        return try decoder.regions(of: try decoder.decode(bytes, policy: policy.doubled), Tiles.regions, policy: policy)
    }

    /// Embeds in batches; if a batch fails, retries one by one so only the culprit fails.
    func embedEach(_ images: [Pixels], embedder: Embedder) -> [Result<[Float], Error>] {
        if images.isEmpty { return [] }
        if let vectors = try? Models.timedEmbed(images, embedder: embedder) { return vectors.map { .success($0) } }
        return images.map { image in Result { try Models.timedEmbed([image], embedder: embedder)[0] } }
    }
}
