import Foundation
import GRDB
import Storage

/// Items are rows of the `item` table.
extension Item: FetchableRecord, PersistableRecord {
    public static let databaseTableName = "item"
}

/// An embedding of one item by one model.
struct StoredVector: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "vector"

    var itemId: String
    var model: String
    var dimension: Int
    /// Little-endian float32 values.
    var data: Data

    enum CodingKeys: String, CodingKey {
        case itemId = "item_id", model, dimension, data
    }

    init(itemId: String, model: String, dimension: Int, data: Data) {
        self.itemId = itemId
        self.model = model
        self.dimension = dimension
        self.data = data
    }

    init(itemId: String, model: String, vector: [Float]) {
        self.itemId = itemId
        self.model = model
        self.dimension = vector.count
        self.data = vector.withUnsafeBufferPointer { Data(buffer: $0) }
    }

    var vector: [Float] {
        data.withUnsafeBytes { raw in Array(raw.bindMemory(to: Float.self).prefix(dimension)) }
    }
}
