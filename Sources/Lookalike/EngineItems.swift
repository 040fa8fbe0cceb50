import Foundation
import Imaging
import PostgresStore
import Storage

/// Items as the front doors need them: lookup and paging, the stored original, uploads kept in
/// the store, and cached thumbnails.
extension Engine {
    /// The stored item `id`, if there is one.
    public func item(id: String) throws -> Item? {
        try store.items(ids: [id])[id]
    }

    /// Items in id order, `limit` at a time, starting after the id `after`.
    public func items(after: String?, limit: Int) throws -> [Item] {
        try store.items(after: after, limit: limit)
    }

    /// Every item in id order, starting after the id `after`, a page at a time; `body` returns false to stop.
    public func forEachItemPage(after: String? = nil, _ body: ([Item]) throws -> Bool) throws {
        try store.forEachItemPage(after: after, body)
    }

    /// The ids of the items whose metadata passes `filter`.
    public func itemIDs(matching filter: MetadataFilter) throws -> Set<String> {
        try store.itemIDs(matching: filter)
    }

    /// What an item reference given by a person names: a stored item, nothing, or several.
    public enum Resolution: Sendable, Equatable {
        case item(String)
        case notFound(String)
        case ambiguous([String])
    }

    /// Resolves a reference to an item: its id, a prefix of an id that only one item has (at least
    /// 4 hex digits), or the path of an image file (the item holding that file's bytes, or else
    /// the item added from that path).
    public func resolve(_ reference: String) throws -> Resolution {
        let lowered = reference.lowercased()
        let isHex = !lowered.isEmpty && lowered.count <= 16 && lowered.allSatisfy(\.isHexDigit)
        if isHex, try store.items(ids: [lowered])[lowered] != nil { return .item(lowered) }
        if isHex, lowered.count >= 4, !FileManager.default.fileExists(atPath: reference) {
            let next = try store.items(after: lowered, limit: 3).filter { $0.id.hasPrefix(lowered) }.map(\.id)
            switch next.count {
            case 0: return .notFound("no item has an id starting with \(lowered)")
            case 1: return .item(next[0])
            default: return .ambiguous(next)
            }
        }
        let path = URL(fileURLWithPath: reference).standardizedFileURL.path
        if let bytes = try? FileReader.read(path, maxBytes: ImageLimits.default.maxBytes),
           let item = try store.item(contentHash: ContentHash.sha256(bytes)) {
            return .item(item.id)
        }
        // The file is gone or changed: the item added from that path, if any.
        var added: String?
        try store.forEachItemPage { page in
            added = page.first { $0.sourcePath == path }?.id
            return added == nil
        }
        if let added { return .item(added) }
        if isHex { return .notFound("no item has an id starting with \(lowered), and no image at \(path) is stored") }
        return .notFound("no stored image is \(path) (neither its bytes nor its path)")
    }

    /// The stored original of an item, read now from where it was added from, and checked to be
    /// still the same bytes (a file replaced since, or a link pointed elsewhere, is not served).
    public func originalBytes(of item: Item) throws -> [UInt8] {
        let bytes = try FileReader.read(item.sourcePath, maxBytes: ImageLimits.default.maxBytes)
        guard ContentHash.sha256(bytes) == item.contentHash else { throw IngestError.changedSinceAdded }
        return bytes
    }

    // MARK: Uploads

    /// What became of an upload.
    public enum UploadOutcome: Sendable {
        case added(Item)
        /// The store already held these bytes: the stored item, unchanged but for new metadata.
        case duplicate(Item)
    }

    /// Why an upload was not stored.
    public enum UploadError: Error, Sendable, CustomStringConvertible {
        /// Not an image, too large, or the model could not embed it.
        case badImage(String)
        /// The store refused the write (busy with another writer, or full).
        case storeRefused(String)
        /// The store cannot be reached (a database that is away).
        case storeUnavailable(String)

        public var description: String {
            switch self {
            case .badImage(let reason), .storeRefused(let reason), .storeUnavailable(let reason): return reason
            }
        }
    }

    /// The folder of uploads in the store.
    var uploadsFolder: URL { store.directory.appendingPathComponent("uploads", isDirectory: true) }

    /// Stores an uploaded image as a file of the store (`uploads/<hash>/<name>`, one folder per
    /// content, so the item keeps the name it was uploaded with) and adds it. The bytes are checked
    /// to be an image within `limits` before anything is written; a file this call wrote is removed
    /// again when it ends up unused. With `tiles`, its region tiles are embedded too (an image
    /// already stored gains them).
    public func addUpload(_ bytes: [UInt8], name: String?, metadata: String?, limits: ImageLimits, tiles: Bool = false) throws -> UploadOutcome {
        let info = try ImageDecoder(limits: limits).info(bytes)
        let model = try defaultAddModel()  // before any file is written
        let hash = ContentHash.sha256(bytes)
        let folder = uploadsFolder.appendingPathComponent(String(hash.prefix(32)), isDirectory: true)
        let existing = (try? FileManager.default.contentsOfDirectory(atPath: folder.path))?.filter { !$0.hasPrefix(".") }.sorted().first
        let path = folder.appendingPathComponent(existing ?? Self.uploadName(name, loader: info.format)).path
        if existing == nil {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
        }
        // Only the file this call wrote is removed again, and only when no item uses it.
        func removeOwnFile() {
            guard existing == nil else { return }
            try? FileManager.default.removeItem(atPath: path)
            rmdir(folder.path)  // only if empty: another upload may be in it
        }
        let report = try add([path], options: AddOptions(model: model, metadata: MetadataFile(records: metadata.map { [path: $0] } ?? [:]),
                                                         tiles: tiles))
        if let failure = report.failures.first {
            if (try? store.item(contentHash: hash)) == nil { removeOwnFile() }
            if let storeError = report.storeError {
                throw report.storeUnavailable ? UploadError.storeUnavailable(storeError) : UploadError.storeRefused(storeError)
            }
            throw UploadError.badImage(failure.reason)
        }
        if let added = report.added.first, let item = try item(id: added.id) { return .added(item) }
        guard let duplicate = report.duplicates.first, let item = try item(id: duplicate.existingId) else {
            throw UploadError.storeRefused("the image was not stored")
        }
        if item.sourcePath != path { removeOwnFile() }
        return .duplicate(item)
    }

    /// A safe file name for an upload: the client's name (its last component, letters, digits,
    /// `.`, `-`, `_` and spaces, at most 100 characters), else `upload.<format's extension>`.
    static func uploadName(_ given: String?, loader: String) -> String {
        let last = (given ?? "").split(separator: "/").last.map(String.init) ?? ""
        let kept = String(last.unicodeScalars.filter {
            CharacterSet.alphanumerics.contains($0) && $0.isASCII || "._- ".unicodeScalars.contains($0)
        }.map(Character.init).prefix(100)).trimmingCharacters(in: .whitespaces)
        if kept.isEmpty || kept.hasPrefix(".") { return "upload.\(fileExtension(loader))" }
        return kept
    }

    /// The usual file extension for a libvips loader's format.
    static func fileExtension(_ loader: String) -> String {
        let lower = loader.lowercased()
        for (key, ext) in [("jpeg", "jpg"), ("png", "png"), ("webp", "webp"), ("gif", "gif"), ("heif", "heic"), ("tiff", "tif"),
                           ("jxl", "jxl"), ("jp2k", "jp2"), ("magick", "img")] where lower.contains(key) {
            return ext
        }
        return "img"
    }

    // MARK: Thumbnails

    public static let thumbnailSizes = [128, 256, 512]

    func thumbnailURL(_ id: String, size: Int) -> URL {
        store.directory.appendingPathComponent("thumbnails/\(size)", isDirectory: true).appendingPathComponent("\(id).jpg")
    }

    /// The item's thumbnail if it was made before (a small file read, no decoding).
    public func cachedThumbnail(id: String, size: Int) -> [UInt8]? {
        guard let data = FileManager.default.contents(atPath: thumbnailURL(id, size: size).path), !data.isEmpty else { return nil }
        return [UInt8](data)
    }

    /// The item's thumbnail as JPEG, `size` pixels on its longer side (one of `thumbnailSizes`):
    /// made from the original on first request and cached in the store (ids are content hashes,
    /// so a thumbnail never changes). `original` reads the item's bytes when it must be made.
    public func thumbnail(of item: Item, size: Int, original: (Item) throws -> [UInt8]) throws -> [UInt8] {
        if let cached = cachedThumbnail(id: item.id, size: size) { return cached }
        let cached = thumbnailURL(item.id, size: size)
        // Stored items were accepted at indexing time, perhaps with larger limits than uploads get.
        let jpeg = try ImageDecoder(limits: .default).thumbnailJPEG(try original(item), size: size)
        try? FileManager.default.createDirectory(at: cached.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? Data(jpeg).write(to: cached, options: .atomic)
        return jpeg
    }

    /// Removes upload folders that no item uses: a process killed between writing an upload's file
    /// and storing its item leaves one. The folder is named by the content hash, whose first 16
    /// digits are the item's id, so the check is a lookup per folder. A server calls it as it
    /// opens a collection, before it takes uploads. Returns how many folders were removed.
    ///
    /// On a PostgreSQL store several servers may share one files folder, and another may be
    /// writing an upload right now: there only folders untouched for `sharedGrace` seconds go.
    @discardableResult
    public func removeOrphanedUploads(sharedGrace: TimeInterval = 600) throws -> Int {
        var names = ((try? FileManager.default.contentsOfDirectory(atPath: uploadsFolder.path)) ?? [])
            .filter { $0.count == 32 && $0.allSatisfy(\.isHexDigit) }
        if store is PostgresStore {
            let youngest = Date().addingTimeInterval(-sharedGrace)
            names.removeAll { name in
                let path = uploadsFolder.appendingPathComponent(name).path
                return ((try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date ?? .distantPast) >= youngest
            }
        }
        var removed = 0
        for start in stride(from: 0, to: names.count, by: 500) {
            let page = Array(names[start..<min(start + 500, names.count)])
            let items = try store.items(ids: page.map { String($0.prefix(16)) })
            for name in page {
                let folder = uploadsFolder.appendingPathComponent(name, isDirectory: true)
                if let item = items[String(name.prefix(16))], item.contentHash.hasPrefix(name),
                   item.sourcePath.hasPrefix(folder.path + "/") { continue }
                if (try? FileManager.default.removeItem(at: folder)) != nil { removed += 1 }
            }
        }
        if removed > 0 { logger.info("removed \(removed) upload folders no item used (left by an interrupted upload)") }
        return removed
    }

    /// Files the store made for removed items (uploads, thumbnails) go with them; files indexed
    /// from folders stay where they are.
    func removeFiles(of items: [Item]) {
        for item in items {
            if item.sourcePath.hasPrefix(uploadsFolder.path + "/") {
                try? FileManager.default.removeItem(at: URL(fileURLWithPath: item.sourcePath).deletingLastPathComponent())
            }
            for size in Self.thumbnailSizes { try? FileManager.default.removeItem(at: thumbnailURL(item.id, size: size)) }
        }
    }
}
