import Foundation
import Imaging
import Storage

/// Moves a store's contents into another store (SQLite into PostgreSQL, and back): models, items
/// with their metadata, every model's vectors, feedback, tuned models' projections and the store's
/// settings (its default model). Resumable: it copies only what the
/// target lacks, page by page, each page in one write, so a run that stopped half-way is simply
/// run again. Verified: both stores' checksums (counts, and a digest of ids, metadata and vectors)
/// must agree at the end.
public enum StoreMigration {
    public struct Report: Sendable {
        /// Items written to the target (absent before).
        public var itemsCopied = 0
        /// Vectors written to the target, per model.
        public var vectorsCopied: [String: Int] = [:]
        /// Items of the target whose metadata was brought up to date.
        public var metadataUpdated = 0
        /// Marks of feedback copied (per model, only into a target that had none for it).
        public var feedbackCopied = 0
        /// Tuned models whose projections were copied (those the target lacked).
        public var tunedModelsCopied: [String] = []
        /// Whether the default model setting was copied (only into a target without one).
        public var defaultModelCopied = false
        /// Items of the source without a vector of any model (a store cannot hold those alone).
        public var itemsWithoutVectors: [String] = []
        public var source = Checksum()
        public var target = Checksum()
    }

    /// What two stores holding the same data agree on.
    public struct Checksum: Sendable, Equatable, CustomStringConvertible {
        public var items = 0
        public var vectors: [String: Int] = [:]
        /// SHA-256 over every item (id, content hash, size, metadata) and every vector (model, id,
        /// values), in id order.
        public var digest = ""

        public var description: String {
            let counts = vectors.keys.sorted().map { "\($0) \(vectors[$0] ?? 0)" }.joined(separator: ", ")
            return "\(items) items, vectors: \(counts.isEmpty ? "none" : counts), digest \(digest.prefix(16))"
        }
    }

    public struct Mismatch: Error, CustomStringConvertible {
        public let source: Checksum
        public let target: Checksum
        public var description: String {
            "the target does not hold what the source holds: source \(source); target \(target). "
                + "Run the migration again to copy what is missing."
        }
    }

    /// Copies what `target` lacks of `source`, then compares their checksums (throwing `Mismatch`
    /// when they differ). `progress` gets the items walked so far and the source's item count.
    public static func run(from source: any Store, to target: any Store, pageSize: Int = 500,
                           progress: (Int, Int) -> Void = { _, _ in }) throws -> Report {
        var report = Report()
        for record in try source.modelRecords() {
            // Refuses a target whose model of that name was another network.
            try target.checkModel(record.name, fingerprint: record.fingerprint, dimension: record.dimension,
                                  space: record.space, record: true)
        }
        // Tuned models' projections before their vectors, so a copy cut short never holds vectors
        // of a model it cannot embed queries with.
        let held = Set(try target.tunedModels().map(\.name))
        for tuned in try source.tunedModels() where !held.contains(tuned.name) {
            try target.saveTunedModel(tuned)
            report.tunedModelsCopied.append(tuned.name)
        }
        if let chosen = try source.setting(StoreSetting.defaultModel), try target.setting(StoreSetting.defaultModel) == nil {
            try target.setSetting(StoreSetting.defaultModel, to: chosen)
            report.defaultModelCopied = true
        }
        let models = try source.vectorSpaces().map(\.model)
        let total = try source.itemCount()
        var walked = 0
        try source.forEachItemPage(pageSize: max(1, pageSize)) { page in
            let ids = page.map(\.id)
            let present = try target.items(ids: ids)
            var updates: [(id: String, metadata: String)] = []
            for item in page {
                if let stored = present[item.id], stored.metadata != item.metadata, let metadata = item.metadata {
                    updates.append((item.id, metadata))
                }
            }
            var created = Set<String>()  // items the target gains in this page
            var withVectors = Set<String>()  // items with a vector of some model in the source
            for model in models {
                let vectors = try source.vectors(model: model, ids: ids)
                guard !vectors.isEmpty || !updates.isEmpty else { continue }
                let held = Set(try target.vectors(model: model, ids: vectors.map(\.id)).map(\.id))
                let byID = Dictionary(vectors.map { ($0.id, $0.vector) }, uniquingKeysWith: { first, _ in first })
                let entries = page.compactMap { item -> (item: Item, vector: [Float])? in
                    guard let vector = byID[item.id], !held.contains(item.id) else { return nil }
                    return (item, vector)
                }
                try target.insert(entries, model: model, metadataUpdates: updates)
                report.metadataUpdated += updates.count
                updates = []
                report.vectorsCopied[model, default: 0] += entries.count
                for (item, _) in entries where present[item.id] == nil { created.insert(item.id) }
                withVectors.formUnion(vectors.map(\.id))
            }
            report.itemsCopied += created.count
            report.itemsWithoutVectors += ids.filter { !withVectors.contains($0) }
            walked += page.count
            progress(walked, total)
            return true
        }
        for model in models where try target.feedback(model: model, limit: 1).isEmpty {
            // Oldest first, so the target keeps their order.
            let marks = try source.feedback(model: model, limit: Int(Int32.max))
            try target.recordFeedback(marks.reversed())
            report.feedbackCopied += marks.count
        }
        report.source = try checksum(source)
        report.target = try checksum(target)
        guard report.source == report.target else { throw Mismatch(source: report.source, target: report.target) }
        return report
    }

    /// The store's checksum: reads every item and vector once.
    public static func checksum(_ store: any Store, pageSize: Int = 1_000) throws -> Checksum {
        var checksum = Checksum()
        var lines: [String] = []
        let models = try store.vectorSpaces().map(\.model).sorted()
        try store.forEachItemPage(pageSize: pageSize) { page in
            let ids = page.map(\.id)
            var vectors: [String: [String: [Float]]] = [:]
            for model in models {
                for (id, vector) in try store.vectors(model: model, ids: ids) { vectors[id, default: [:]][model] = vector }
            }
            for item in page {
                var line = "\(item.id)\t\(item.contentHash)\t\(item.width)x\(item.height)\t\(item.metadata ?? "")"
                for model in models {
                    guard let vector = vectors[item.id]?[model] else { continue }
                    checksum.vectors[model, default: 0] += 1
                    let bytes = vector.withUnsafeBytes { [UInt8]($0) }
                    line += "\t\(model)=\(ContentHash.sha256(bytes))"
                }
                lines.append(ContentHash.sha256(Array(line.utf8)))
            }
            checksum.items += page.count
            return true
        }
        checksum.digest = ContentHash.sha256(Array(lines.joined(separator: "\n").utf8))
        return checksum
    }
}
