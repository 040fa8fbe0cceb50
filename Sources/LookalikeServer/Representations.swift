import Foundation
import Hummingbird
import Lookalike

/// How items and hits look in the API: what both tell of a stored image (the source path itself
/// stays on the server) and the links to its image and thumbnail.
extension LookalikeServer {
    /// A search's answer: the engine's JSON form, each hit without its source path and with the
    /// links and name an item has.
    func searchJSON(_ response: SearchResponse, collection: String) -> [String: Any] {
        response.jsonObject { object, hit in
            var object = object
            object.removeValue(forKey: "path")
            return object.merging(links(id: hit.id, path: hit.path, collection: collection)) { $1 }
        }
    }

    /// Near-duplicate groups: the engine's JSON form, each item without its source path and with
    /// its links and name.
    func duplicatesJSON(_ report: DuplicateReport, collection: String) -> [String: Any] {
        report.jsonObject { object, item in
            var object = object
            object.removeValue(forKey: "path")
            return object.merging(links(id: item.id, path: item.sourcePath, collection: collection)) { $1 }
        }
    }

    func itemJSON(_ item: Item, collection: String) -> [String: Any] {
        [
            "id": item.id, "width": item.width, "height": item.height, "metadata": JSON.object(item.metadata),
            "added_at": Jobs.Job.timestamp(item.addedAt),
        ].merging(links(id: item.id, path: item.sourcePath, collection: collection)) { $1 }
    }

    /// What the API adds to an item and a hit alike: the file's name (its path stays on the server)
    /// and the addresses of its image and thumbnail.
    func links(id: String, path: String, collection: String) -> [String: Any] {
        let url = "/v1/collections/\(collection)/items/\(id)"
        return ["image": url + "/image", "thumbnail": url + "/thumbnail", "name": URL(fileURLWithPath: path).lastPathComponent]
    }
}
