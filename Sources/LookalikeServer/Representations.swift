import Foundation
import Hummingbird
import Lookalike

/// How items and hits look in the API: what both tell of a stored image (the source path itself
/// stays on the server) and the links to its image and thumbnail.
extension LookalikeServer {
    func hitJSON(_ hit: SearchResponse.Hit, collection: String) -> [String: Any] {
        itemFields(id: hit.id, path: hit.path, width: hit.width, height: hit.height, metadata: hit.metadata, collection: collection)
            .merging(["score": (Double(hit.score) * 1e6).rounded() / 1e6, "duplicate": hit.duplicate]) { $1 }
    }

    func itemJSON(_ item: Item, collection: String) -> [String: Any] {
        itemFields(id: item.id, path: item.sourcePath, width: item.width, height: item.height, metadata: item.metadata,
                   collection: collection)
            .merging(["added_at": Jobs.Job.timestamp(item.addedAt)]) { $1 }
    }

    /// What an item and a hit both tell of the stored image; the source path itself stays on the server.
    func itemFields(id: String, path: String, width: Int, height: Int, metadata: String?, collection: String) -> [String: Any] {
        let url = "/v1/collections/\(collection)/items/\(id)"
        return [
            "id": id, "width": width, "height": height, "metadata": JSON.object(metadata), "image": url + "/image",
            "thumbnail": url + "/thumbnail", "name": URL(fileURLWithPath: path).lastPathComponent,
        ]
    }
}
