import Foundation

/// One indexed image: the truth about it, as every store keeps it.
public struct Item: Codable, Sendable, Equatable {
    /// Stable id: the first 16 hex digits of the content hash.
    public var id: String
    /// SHA-256 of the file's bytes, hex.
    public var contentHash: String
    /// The path the image was added from (absolute).
    public var sourcePath: String
    /// Upright size in pixels.
    public var width: Int
    public var height: Int
    /// A JSON object of user metadata, or nil.
    public var metadata: String?
    public var addedAt: Date
    /// How much of the image each basic colour covers, as `ColorProfile.json` text; nil for an
    /// item stored before profiles were made. Filters reach it as `{"$color": "red"}`.
    public var colors: String?

    public init(id: String, contentHash: String, sourcePath: String, width: Int, height: Int, metadata: String?, addedAt: Date,
                colors: String? = nil) {
        self.id = id
        self.contentHash = contentHash
        self.sourcePath = sourcePath
        self.width = width
        self.height = height
        self.metadata = metadata
        self.addedAt = addedAt
        self.colors = colors
    }

    /// The id an item with this content hash gets.
    public static func id(forContentHash hash: String) -> String {
        String(hash.prefix(16))
    }

    /// The field names every store uses (the SQLite catalog's columns).
    public enum CodingKeys: String, CodingKey {
        case id, contentHash = "content_hash", sourcePath = "source_path", width, height, metadata, addedAt = "added_at", colors
    }
}

/// Metadata as it is stored: the text of a JSON object.
public enum Metadata {
    /// The most metadata one item may have, as JSON text: enough for any description, far too
    /// little to turn the catalog into a file store.
    public static let maxBytes = 64 * 1024

    /// The object a metadata text holds, or nil when there is none or it is not a JSON object.
    public static func object(_ text: String?) -> [String: Any]? {
        guard let text else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
    }
}
