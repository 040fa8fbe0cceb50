import Embedding
import Foundation
import Hummingbird
import HummingbirdTesting
import Imaging
import Lookalike
@testable import LookalikeServer
import TestSupport
import Testing

@Suite("HTTP API: search, items, collections, jobs", .serialized)
struct ServerAPITests {
    let chelsea = "skimage-chelsea.png"
    let coffee = "skimage-coffee.png"

    @Test("service endpoints: health, server info, the OpenAPI document, the page with its assets, metrics")
    func serviceEndpoints() async throws {
        let app = try makeServer().application()
        try await app.test(.router) { client in
            let health = try await client.call(.get, "/healthz")
            #expect(health.status == 200)
            #expect(health.json["status"] as? String == "ok")

            let info = try await client.call(.get, "/v1/server")
            #expect(info.status == 200)
            #expect(info.json["default_model"] as? String == "efficientnet-lite0-gem")
            let models = (info.json["models"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            #expect(models.contains("efficientnet-lite0"))
            let gem = (info.json["models"] as? [[String: Any]] ?? []).first { $0["name"] as? String == "efficientnet-lite0-gem" }
            #expect(gem?["duplicate_threshold"] as? Double != nil && gem?["similar_threshold"] as? Double != nil, "\(info.text)")
            #expect(info.json["index_roots"] as? [String] == [PathConfinement.resolved(TestData.photos.path) ?? ""])

            let document = try await client.call(.get, "/openapi.yaml")
            #expect(document.status == 200)
            #expect(document.text.hasPrefix("openapi: 3.1"))
            #expect(document.text.contains("/v1/collections/{collection}/search:"))

            let page = try await client.call(.get, "/")
            #expect(page.status == 200)
            #expect(page.headers[.contentType]?.hasPrefix("text/html") == true)
            #expect(page.headers[.contentSecurityPolicy]?.contains("default-src 'self'") == true)
            #expect(page.text.contains("/app.js"))
            for asset in ["/app.js", "/app.css"] {
                #expect(try await client.call(.get, asset).status == 200, "\(asset)")
            }

            // A search, then its traces in the metrics.
            let search = try await client.postImage("/v1/collections/default/search", try ServerTestData.editedCopy(chelsea))
            #expect(search.status == 200)
            let metrics = try await client.call(.get, "/metrics")
            #expect(metrics.status == 200)
            #expect(metrics.text.contains("lookalike_model_inference_seconds_count{model=\"efficientnet-lite0-gem\"}"))
            #expect(metrics.text.contains("lookalike_image_request_seconds_count{kind=\"search\"}"))
            #expect(metrics.text.contains("lookalike_index_vectors{collection=\"default\",model=\"efficientnet-lite0-gem\"}"))
            #expect(metrics.text.contains("lookalike_collection_items{collection=\"default\"}"))
            #expect(metrics.text.contains("http_server_request_duration"))
        }
    }

    @Test("search by upload (raw body and multipart) finds the original of an edited copy first", arguments: TestStores.kinds)
    func searchByUpload(_ kind: String) async throws {
        let query = try ServerTestData.editedCopy(chelsea)
        let original = ServerTestData.id(try ServerTestData.bytes(chelsea))
        let app = try makeServer(kind: kind).application()
        try await app.test(.router) { client in
            let raw = try await client.postImage("/v1/collections/default/search?top=5", query)
            #expect(raw.status == 200, "\(raw.text)")
            #expect(raw.hitIDs.count == 5)
            #expect(raw.hitIDs.first == original)
            let scores = raw.hits.compactMap { $0["score"] as? Double }
            #expect(scores == scores.sorted(by: >))
            #expect(raw.json["model"] as? String == "efficientnet-lite0-gem")
            #expect((raw.json["searched"] as? Int ?? 0) >= 20)
            let first = try #require(raw.hits.first)
            #expect(first["thumbnail"] as? String == "/v1/collections/default/items/\(original)/thumbnail")
            #expect(first["name"] as? String == chelsea)

            let body = multipart([("image", "query.jpg", "image/jpeg", query),
                                  ("options", nil, "application/json", Array(#"{"top": 3}"#.utf8))])
            let form = try await client.postImage("/v1/collections/default/search", body,
                                                  contentType: "multipart/form-data; boundary=lookalike-test-boundary")
            #expect(form.status == 200, "\(form.text)")
            #expect(form.hitIDs == Array(raw.hitIDs.prefix(3)))
        }
    }

    @Test("a cascade: pHash backs the model up on a tiny, blocky thumbnail; its errors are the client's")
    func cascadeSearch() async throws {
        let store = try TestData.temporaryDirectory("cascade-store")
        defer { try? FileManager.default.removeItem(at: store) }
        let engine = try Engine(configuration: EngineConfiguration(store: store))
        for model in [ModelManifest.defaultName, "phash"] {
            #expect(try engine.add([TestData.photos.path], options: AddOptions(recursive: true, model: model)).failures.isEmpty)
        }
        let original = ServerTestData.id(try ServerTestData.bytes(chelsea))
        let thumbnail = try ImageDecoder().thumbnailJPEG(try ServerTestData.bytes(chelsea), size: 56, quality: 8)
        // One image added by the main model only, as an add stopped between its models leaves it.
        let late = store.appendingPathComponent("late.jpg")
        try Data(try ImageDecoder().thumbnailJPEG(try ServerTestData.bytes(coffee), size: 300, quality: 60)).write(to: late)
        #expect(try engine.add([late.path], options: AddOptions(model: ModelManifest.defaultName)).added.count == 1)
        let app = try makeServer(store: store).application()
        try await app.test(.router) { client in
            let incomplete = try await client.postImage("/v1/collections/default/search?top=3&cascade=phash", thumbnail)
            let notes = incomplete.json["notes"] as? [[String: Any]] ?? []
            #expect(notes.count == 1 && notes.first?["code"] as? String == "missing_vectors", "\(incomplete.text)")
            let photos = try TestData.photoPaths().count
            #expect((notes.first?["message"] as? String)?.contains("model phash has vectors for \(photos) of the \(photos + 1)") == true,
                    "\(incomplete.text)")
            #expect(try engine.add([late.path], options: AddOptions(model: "phash")).failures.isEmpty)
            let complete = try await client.postImage("/v1/collections/default/search?top=3&cascade=phash", thumbnail)
            #expect((complete.json["notes"] as? [Any])?.isEmpty != false, "\(complete.text)")

            let alone = try await client.postImage("/v1/collections/default/search?top=3", thumbnail)
            #expect(alone.status == 200, "\(alone.text)")
            #expect(!alone.hits.contains { $0["id"] as? String == original && $0["duplicate"] as? Bool == true })
            let backed = try await client.postImage("/v1/collections/default/search?top=3&cascade=phash", thumbnail)
            #expect(backed.status == 200, "\(backed.text)")
            #expect(backed.hitIDs.first == original)
            #expect(backed.hits.first?["duplicate"] as? Bool == true)
            #expect(backed.hits.filter { $0["duplicate"] as? Bool == true }.count == 1)
            // The same as JSON options, by stored item.
            let byID = try await client.postJSON("/v1/collections/default/search", ["id": original, "top": 2, "cascade": ["phash"]])
            #expect(byID.status == 200, "\(byID.text)")
            #expect(byID.hitIDs.first == original)

            let unknown = try await client.postImage("/v1/collections/default/search?cascade=clip", thumbnail)
            #expect(unknown.status == 400 && unknown.errorCode == "unknown_model", "\(unknown.text)")
            let many = try await client.postImage("/v1/collections/default/search?cascade=phash,phash,phash,phash,phash", thumbnail)
            #expect(many.status == 400 && many.errorCode == "bad_request", "\(many.text)")
        }
    }

    @Test("ranking over HTTP: labels and the answer's match, copies collapsed, like and unlike, a minimum score, duplicate groups")
    func rankingOptions() async throws {
        let store = try TestData.temporaryDirectory("ranking-store")
        defer { try? FileManager.default.removeItem(at: store) }
        let copyFile = store.appendingPathComponent("chelsea-copy.jpg")
        // A smaller, recompressed copy: a copy by the default model's threshold.
        let copy = try ImageDecoder().thumbnailJPEG(try ServerTestData.bytes(chelsea), size: 380, quality: 75)
        try Data(copy).write(to: copyFile)
        let engine = try Engine(configuration: EngineConfiguration(store: store.appendingPathComponent("store")))
        #expect(try engine.add([TestData.photos.path, copyFile.path], options: AddOptions(recursive: true)).failures.isEmpty)
        let original = ServerTestData.id(try ServerTestData.bytes(chelsea))
        let copyID = ServerTestData.id(copy)
        let coffeeID = ServerTestData.id(try ServerTestData.bytes(coffee))
        let app = try makeServer(store: store.appendingPathComponent("store")).application()
        try await app.test(.router) { client in
            let plain = try await client.postImage("/v1/collections/default/search?top=3", copy)
            #expect(plain.status == 200, "\(plain.text)")
            #expect(Set(plain.hitIDs.prefix(2)) == [original, copyID])
            #expect(plain.json["match"] as? String == "copy")
            #expect(plain.hits.first?["label"] as? String == "copy")
            #expect(plain.hits.allSatisfy { ["copy", "similar", "weak"].contains($0["label"] as? String ?? "") })

            let collapsed = try await client.postImage("/v1/collections/default/search?top=3&collapse=true", copy)
            #expect(collapsed.status == 200, "\(collapsed.text)")
            #expect(collapsed.hitIDs.first == copyID)
            #expect(collapsed.hits.first?["copies"] as? [String] == [original])
            #expect(!collapsed.hitIDs.contains(original))
            #expect(collapsed.hitIDs.count == 3)

            let floor = try await client.postImage("/v1/collections/default/search?top=10&min_score=0.999", copy)
            #expect(floor.hitIDs == [copyID], "\(floor.text)")

            let liked = try await client.postJSON("/v1/collections/default/search", ["like": [coffeeID], "top": 2])
            #expect(liked.status == 200, "\(liked.text)")
            #expect(liked.hitIDs.first == coffeeID)
            let steered = try await client.postJSON("/v1/collections/default/search", ["id": original, "unlike": [copyID], "top": 3])
            #expect(steered.status == 200, "\(steered.text)")
            #expect(steered.hitIDs.first == original)
            let unliked = try await client.postJSON("/v1/collections/default/search", ["unlike": [copyID]])
            #expect(unliked.status == 400, "\(unliked.text)")
            let badDiversity = try await client.postImage("/v1/collections/default/search?diversity=2", copy)
            #expect(badDiversity.status == 400 && badDiversity.text.contains("diversity"), "\(badDiversity.text)")

            let groups = try await client.call(.get, "/v1/collections/default/duplicates")
            #expect(groups.status == 200, "\(groups.text)")
            let listed = groups.json["groups"] as? [[String: Any]] ?? []
            let members = listed.map { group in
                Set([(group["representative"] as? [String: Any])?["id"] as? String ?? ""]
                    + ((group["copies"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String })
            }
            #expect(members.contains([original, copyID]), "\(groups.text)")
            #expect(!groups.text.contains(TestData.photos.path), "a source path leaked")
            let badThreshold = try await client.call(.get, "/v1/collections/default/duplicates?threshold=3")
            #expect(badThreshold.status == 400)

            // Feedback: a hit marked not relevant for a query leaves the next search for it.
            let base = try await client.postJSON("/v1/collections/default/search", ["id": coffeeID, "top": 5])
            let stranger = try #require(base.hitIDs.last)
            let marked = try await client.postJSON("/v1/collections/default/feedback",
                                                   ["id": coffeeID, "marks": [["id": stranger, "mark": "not_relevant"]]])
            #expect(marked.status == 201, "\(marked.text)")
            #expect(marked.json["recorded"] as? Int == 1)
            let again = try await client.postJSON("/v1/collections/default/search", ["id": coffeeID, "top": 5])
            #expect(again.hitIDs.first == coffeeID && !again.hitIDs.contains(stranger), "\(again.hitIDs)")
            let ignoring = try await client.postJSON("/v1/collections/default/search", ["id": coffeeID, "top": 5, "feedback": false])
            #expect(ignoring.hitIDs == base.hitIDs)
            let byImage = multipart([("image", "query.jpg", "image/jpeg", copy),
                                     ("feedback", nil, "application/json", Array(#"{"marks": [{"id": "\#(original)", "mark": "click"}]}"#.utf8))])
            let clicked = try await client.postImage("/v1/collections/default/feedback", byImage,
                                                     contentType: "multipart/form-data; boundary=lookalike-test-boundary")
            #expect(clicked.status == 201, "\(clicked.text)")
            let badMark = try await client.postJSON("/v1/collections/default/feedback", ["id": coffeeID, "marks": [["id": stranger, "mark": "love"]]])
            #expect(badMark.status == 400 && badMark.text.contains("mark"), "\(badMark.text)")
            let unknownItem = try await client.postJSON("/v1/collections/default/feedback",
                                                        ["id": coffeeID, "marks": [["id": "0000000000000bad", "mark": "click"]]])
            #expect(unknownItem.status == 404, "\(unknownItem.text)")
            let forgotten = try await client.call(.delete, "/v1/collections/default/feedback")
            #expect(forgotten.status == 200 && forgotten.json["forgotten"] as? Int == 2, "\(forgotten.text)")
        }
    }

    @Test("more like this: a search by item id answers the item itself first, with score 1", arguments: TestStores.kinds)
    func searchByID(_ kind: String) async throws {
        let id = ServerTestData.id(try ServerTestData.bytes(coffee))
        let app = try makeServer(kind: kind).application()
        try await app.test(.router) { client in
            let reply = try await client.postJSON("/v1/collections/default/search", ["id": id, "top": 4])
            #expect(reply.status == 200, "\(reply.text)")
            #expect(reply.hitIDs.first == id)
            #expect(abs((reply.hits.first?["score"] as? Double ?? 0) - 1) < 1e-4)
            #expect(reply.hits.first?["duplicate"] as? Bool == true)
            #expect(reply.hitIDs.count == 4)

            let unknown = try await client.postJSON("/v1/collections/default/search", ["id": "0123456789abcdef"])
            #expect(unknown.status == 404)
            #expect(unknown.errorCode == "not_found")
            let both = try await client.postJSON("/v1/collections/default/search", ["id": id, "url": "https://example.com/a.jpg"])
            #expect(both.status == 400)
        }
    }

    @Test("region search: each half of a side-by-side picture finds its own photo")
    func regionSearch() async throws {
        let decoder = ImageDecoder()
        let left = try decoder.decode(try ServerTestData.bytes(chelsea), policy: .stretch(size: 300))
        let right = try decoder.decode(try ServerTestData.bytes(coffee), policy: .stretch(size: 300))
        var rgb: [UInt8] = []
        for row in 0..<300 {
            rgb += left.rgb[(row * 900)..<(row * 900 + 900)]
            rgb += right.rgb[(row * 900)..<(row * 900 + 900)]
        }
        let pair = try ImageEncoder.jpeg(Pixels(width: 600, height: 300, rgb: rgb), quality: 90)
        let chelseaID = ServerTestData.id(try ServerTestData.bytes(chelsea))
        let coffeeID = ServerTestData.id(try ServerTestData.bytes(coffee))
        let app = try makeServer().application()
        try await app.test(.router) { client in
            let leftHalf = try await client.postImage("/v1/collections/default/search?top=1&region=0,0,0.5,1", pair)
            let rightHalf = try await client.postImage("/v1/collections/default/search?top=1&region=0.5,0,0.5,1", pair)
            #expect(leftHalf.hitIDs == [chelseaID], "\(leftHalf.text)")
            #expect(rightHalf.hitIDs == [coffeeID], "\(rightHalf.text)")

            // No region, crops asked for: the pair is no copy of either photo whole, so its crops
            // search too, and the two photos come first through crops of their own halves.
            let cropped = try await client.postImage("/v1/collections/default/search?top=2&crops=true", pair)
            #expect(Set(cropped.hitIDs) == [chelseaID, coffeeID], "\(cropped.text)")
            let notes = (cropped.json["notes"] as? [[String: Any]] ?? []).compactMap { $0["code"] as? String }
            #expect(notes.contains("query_crops"), "\(cropped.text)")
            for hit in cropped.hits {
                let crop = try #require(hit["query_part"] as? [String: Double], "\(cropped.text)")
                // Chelsea is the left half of the pair, coffee the right: each found by a crop over its side.
                let x = try #require(crop["x"]), width = try #require(crop["width"])
                let centre = x + width / 2
                #expect(hit["id"] as? String == chelseaID ? centre < 0.5 : centre > 0.5, "\(hit)")
            }
            let plain = try await client.postImage("/v1/collections/default/search?top=2", pair)
            #expect(plain.hits.allSatisfy { $0["query_part"] is NSNull }, "\(plain.text)")
            #expect(try await client.postImage("/v1/collections/default/search?crops=maybe", pair).status == 400)

            let bad = try await client.postImage("/v1/collections/default/search?region=0.8,0,0.5,1", pair)
            #expect(bad.status == 400)
            #expect(bad.errorCode == "bad_region")
            let badJSON = try await client.postJSON("/v1/collections/default/search",
                                                    ["url": "https://example.com/a.jpg", "region": ["x": -1, "y": 0, "width": 1, "height": 1]])
            #expect(badJSON.status == 400)
            #expect(badJSON.errorCode == "bad_region")
        }
    }

    @Test("uploads with metadata, filtered search, item pages, image and thumbnail, delete", arguments: TestStores.kinds)
    func itemsAndFilters(_ kind: String) async throws {
        let store = try TestData.temporaryDirectory("server-items")
        defer { try? FileManager.default.removeItem(at: store) }
        let photos = ["skimage-chelsea.png", "skimage-coffee.png", "skimage-astronaut.png", "skimage-rocket.jpg"]
        let metadata = [#"{"color": "red", "price": 45}"#, #"{"color": "red", "price": 80}"#, #"{"color": "blue", "price": 20}"#,
                        #"{"color": "white"}"#]
        let app = try makeServer(store: store, database: TestStores.database(kind)).application()
        try await app.test(.router) { client in
            var ids: [String] = []
            for (name, text) in zip(photos, metadata) {
                let encoded = text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
                let reply = try await client.postImage("/v1/collections/default/items?metadata=\(encoded)&name=../shop/\(name)",
                                                       try ServerTestData.bytes(name), contentType: "application/octet-stream")
                #expect(reply.status == 201, "\(reply.text)")
                #expect(reply.json["status"] as? String == "added")
                let item = try #require(reply.json["item"] as? [String: Any])
                ids.append(try #require(item["id"] as? String))
                #expect(item["id"] as? String == ServerTestData.id(try ServerTestData.bytes(name)))
                #expect(item["name"] as? String == name, "the upload keeps its file name, without the path")
            }
            // The same bytes again: the stored item, 200. With multipart and new metadata, the metadata is replaced.
            let again = try await client.postImage(
                "/v1/collections/default/items",
                multipart([("image", "c.png", "image/png", try ServerTestData.bytes(photos[0])),
                           ("metadata", nil, "application/json", Array(#"{"color": "red", "price": 40}"#.utf8))]),
                contentType: "multipart/form-data; boundary=lookalike-test-boundary")
            #expect(again.status == 200, "\(again.text)")
            #expect(again.json["status"] as? String == "duplicate")
            #expect(((again.json["item"] as? [String: Any])?["metadata"] as? [String: Any])?["price"] as? Int == 40)
            // With tiles=true an upload gets its region tiles; a stored image uploaded again gains them.
            let tiled = try await client.postImage("/v1/collections/default/items?tiles=true", try ServerTestData.bytes(photos[2]),
                                                   contentType: "image/png")
            #expect(tiled.status == 200 && tiled.json["status"] as? String == "duplicate", "\(tiled.text)")
            let vectors = try await client.call(.get, "/v1/collections/default").json["vectors"] as? [String: Int]
            #expect(vectors?["efficientnet-lite0-gem#tiles"] == 1, "\(vectors ?? [:])")
            let maybe = try await client.postImage("/v1/collections/default/items?tiles=maybe", try ServerTestData.bytes(photos[2]),
                                                   contentType: "image/png")
            #expect(maybe.status == 400 && maybe.errorMessage.contains("tiles"), "\(maybe.text)")

            let query = try ServerTestData.editedCopy(photos[1])
            func search(_ filter: String) async throws -> Reply {
                let encoded = filter.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
                return try await client.postImage("/v1/collections/default/search?top=10&filter=\(encoded)", query)
            }
            #expect(try await search(#"{"color": "red", "price": {"$lt": 50}}"#).hitIDs == [ids[0]])
            #expect(Set(try await search(#"{"color": {"$in": ["red", "blue"]}}"#).hitIDs) == Set(ids[0...2]))
            #expect(try await search(#"{"price": {"$exists": false}}"#).hitIDs == [ids[3]])
            #expect(Set(try await search(#"{"color": {"$ne": "red"}}"#).hitIDs) == [ids[2], ids[3]])
            #expect(try await search(#"{"color": "green"}"#).hitIDs.isEmpty)
            let unfiltered = try await client.postImage("/v1/collections/default/search?top=10", query)
            #expect(unfiltered.hitIDs.first == ids[1])
            #expect(unfiltered.hitIDs.count == 4)
            let json = try await client.postJSON("/v1/collections/default/search",
                                                 ["id": ids[1], "filter": ["price": ["$gte": 40]], "top": 10])
            #expect(json.hitIDs.first == ids[1])
            #expect(Set(json.hitIDs) == [ids[0], ids[1]])

            let badFilter = try await search(#"{"price": {"$near": 3}}"#)
            #expect(badFilter.status == 400)
            #expect(badFilter.errorCode == "bad_filter")
            #expect(badFilter.errorMessage.contains("price"))
            #expect(try await search("[1, 2]").errorCode == "bad_filter")
            let many = "{" + (0...100).map { "\"k\($0)\": 1" }.joined(separator: ", ") + "}"
            #expect(try await search(many).errorCode == "bad_filter")
            #expect(try await search(#"{"a\u0000b": 1}"#).errorCode == "bad_filter")
            #expect(try await search("{not json").errorCode == "bad_filter")

            // Pages of items, in id order.
            let firstPage = try await client.call(.get, "/v1/collections/default/items?limit=3")
            let page1 = (firstPage.json["items"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            let next = try #require(firstPage.json["next"] as? String)
            let secondPage = try await client.call(.get, "/v1/collections/default/items?limit=3&after=\(next)")
            let page2 = (secondPage.json["items"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            #expect(page1 + page2 == ids.sorted())
            #expect(secondPage.json["next"] is NSNull)

            // The stored image comes back byte for byte; the thumbnail is a small JPEG of it.
            let image = try await client.call(.get, "/v1/collections/default/items/\(ids[2])/image")
            #expect(image.status == 200)
            #expect(image.bytes == (try ServerTestData.bytes(photos[2])))
            #expect(image.headers[.contentType] == "image/png")
            let thumbnail = try await client.call(.get, "/v1/collections/default/items/\(ids[2])/thumbnail?size=128")
            #expect(thumbnail.status == 200)
            #expect(thumbnail.headers[.contentType] == "image/jpeg")
            let info = try ImageDecoder().info(thumbnail.bytes)
            #expect(max(info.width, info.height) == 128)
            #expect(try await client.call(.get, "/v1/collections/default/items/\(ids[2])/thumbnail?size=100").status == 400)

            // An original replaced since it was added is not served (nor thumbnailed) as the item.
            let stored = try FileManager.default.contentsOfDirectory(atPath: store.appendingPathComponent("uploads").path)
                .map { store.appendingPathComponent("uploads/\($0)") }
                .first { (try? FileManager.default.contentsOfDirectory(atPath: $0.path))?.first == photos[3] }
            let replaced = try #require(stored).appendingPathComponent(photos[3])
            try Data(try ServerTestData.bytes(photos[0])).write(to: replaced)
            #expect(try await client.call(.get, "/v1/collections/default/items/\(ids[3])/image").status == 410)
            #expect(try await client.call(.get, "/v1/collections/default/items/\(ids[3])/thumbnail?size=512").status == 410)

            let item = try await client.call(.get, "/v1/collections/default/items/\(ids[0])")
            #expect(item.status == 200)
            #expect((item.json["metadata"] as? [String: Any])?["color"] as? String == "red")

            // Delete: gone from items and from searches; its uploaded file is gone too.
            #expect(try await client.call(.delete, "/v1/collections/default/items/\(ids[1])").status == 204)
            #expect(try await client.call(.get, "/v1/collections/default/items/\(ids[1])").status == 404)
            #expect(try await client.call(.delete, "/v1/collections/default/items/\(ids[1])").status == 404)
            let after = try await client.postImage("/v1/collections/default/search?top=10", query)
            #expect(!after.hitIDs.contains(ids[1]))
            #expect(after.hitIDs.count == 3)
            let uploads = try FileManager.default.contentsOfDirectory(atPath: store.appendingPathComponent("uploads").path)
            #expect(uploads.count == 3)
            #expect(try await client.call(.get, "/v1/collections/default/items/XYZ").status == 400)
        }
    }

    @Test("collections: create, list, search an empty one, delete; the default one is protected; on PostgreSQL every server sees them",
          arguments: TestStores.kinds)
    func collections(_ kind: String) async throws {
        let store = try TestData.temporaryDirectory("server-collections")
        let otherStore = try TestData.temporaryDirectory("server-collections-other")
        defer { for folder in [store, otherStore] { try? FileManager.default.removeItem(at: folder) } }
        let database = TestStores.database(kind)
        let app = try makeServer(store: store, database: database).application()
        try await app.test(.router) { client in
            // Leftovers in the folder of a collection that no longer exists are cleared when it is created again.
            let leftover = store.appendingPathComponent("collections/shoes/index")
            try FileManager.default.createDirectory(at: leftover, withIntermediateDirectories: true)
            try Data("stale".utf8).write(to: leftover.appendingPathComponent("efficientnet-lite0.hnsw"))
            let created = try await client.postJSON("/v1/collections", ["name": "shoes"])
            #expect(!FileManager.default.fileExists(atPath: leftover.appendingPathComponent("efficientnet-lite0.hnsw").path))
            #expect(created.status == 201, "\(created.text)")
            #expect(created.json["items"] as? Int == 0)
            #expect(try await client.postJSON("/v1/collections", ["name": "shoes"]).errorCode == "collection_exists")
            #expect(try await client.postJSON("/v1/collections", ["name": "Bad Name"]).errorCode == "bad_collection_name")
            #expect(try await client.postJSON("/v1/collections", ["name": "../x"]).errorCode == "bad_collection_name")
            #expect(try await client.postJSON("/v1/collections", ["nom": "x"]).status == 400)
            #expect(try await client.call(.post, "/v1/collections", contentType: "text/plain", body: Array("x".utf8)).status == 415)

            // A name that is no schema name (a "-", and long): a store of its own all the same.
            let long = "summer-" + String(repeating: "x", count: 50)
            #expect(try await client.postJSON("/v1/collections", ["name": long]).status == 201)

            let list = try await client.call(.get, "/v1/collections")
            let names = (list.json["collections"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            #expect(names == ["default", "shoes", long])

            // Each collection is a store of its own: an image added to one is not in the others.
            let added = try await client.postImage("/v1/collections/\(long)/items", try ServerTestData.bytes(chelsea), contentType: "image/png")
            #expect(added.status == 201, "\(added.text)")
            let found = try await client.postImage("/v1/collections/\(long)/search", try ServerTestData.editedCopy(chelsea))
            #expect(found.hitIDs.first == ServerTestData.id(try ServerTestData.bytes(chelsea)), "\(found.text)")
            #expect(try await client.call(.get, "/v1/collections/shoes").json["items"] as? Int == 0)
            #expect(try await client.call(.get, "/v1/collections/default").json["items"] as? Int == 0)

            if database != nil {
                // Another server of the same database (its own folder) sees the same collections and their items.
                let other = try makeServer(store: otherStore, database: database).application()
                try await other.test(.router) { second in
                    let seen = try await second.call(.get, "/v1/collections")
                    #expect((seen.json["collections"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String } == ["default", "shoes", long])
                    #expect(try await second.call(.get, "/v1/collections/\(long)").json["items"] as? Int == 1)
                    #expect(try await second.postJSON("/v1/collections", ["name": "shoes"]).errorCode == "collection_exists")
                }
            }
            #expect(try await client.call(.delete, "/v1/collections/\(long)").status == 204)

            let empty = try await client.postImage("/v1/collections/shoes/search", try ServerTestData.editedCopy(chelsea))
            #expect(empty.status == 200)
            #expect(empty.hitIDs.isEmpty)
            #expect(try await client.postImage("/v1/collections/boots/search", try ServerTestData.editedCopy(chelsea)).status == 404)

            let protected = try await client.call(.delete, "/v1/collections/default")
            #expect(protected.status == 409)
            #expect(protected.errorCode == "collection_protected")
            #expect(try await client.call(.delete, "/v1/collections/shoes").status == 204)
            #expect(try await client.call(.get, "/v1/collections/shoes").status == 404)
            #expect(!FileManager.default.fileExists(atPath: store.appendingPathComponent("collections/shoes").path))
        }
    }

    @Test("indexing a server folder: a job with progress events; paths outside the roots are refused", arguments: TestStores.kinds)
    func indexingJobs(_ kind: String) async throws {
        let database = TestStores.database(kind)
        let store = try TestData.temporaryDirectory("server-jobs")
        let root = try TestData.temporaryDirectory("server-root")
        let outside = try TestData.temporaryDirectory("server-outside")
        defer { for url in [store, root, outside] { try? FileManager.default.removeItem(at: url) } }
        // The root holds three photos and a link to a photo outside it, which must not be indexed.
        for name in [chelsea, coffee, "skimage-astronaut.png"] {
            try FileManager.default.copyItem(at: try ServerTestData.photo(name), to: root.appendingPathComponent(name))
        }
        try FileManager.default.copyItem(at: try ServerTestData.photo("skimage-rocket.jpg"), to: outside.appendingPathComponent("rocket.jpg"))
        try FileManager.default.createSymbolicLink(at: root.appendingPathComponent("escape.jpg"),
                                                   withDestinationURL: outside.appendingPathComponent("rocket.jpg"))
        // ... and a link to a folder outside it, which must not be entered.
        try FileManager.default.createSymbolicLink(at: root.appendingPathComponent("elsewhere"), withDestinationURL: outside)
        let app = try makeServer(store: store, database: database) { $0.indexRoots = [root.path] }.application()
        try await app.test(.router) { client in
            let started = try await client.postJSON("/v1/collections/default/jobs", ["path": root.path])
            #expect(started.status == 202, "\(started.text)")
            let id = try #require(started.json["id"] as? String)
            let events = try await client.call(.get, "/v1/jobs/\(id)/events")
            #expect(events.headers[.contentType] == "text/event-stream")
            #expect(events.text.contains("event: end\ndata: {"))
            let job = try await waitForJob(client, id)
            #expect(job["state"] as? String == "finished")
            #expect(job["added"] as? Int == 3)
            #expect(job["failed"] as? Int == 2)
            let failures = job["failures"] as? [[String: Any]] ?? []
            #expect(failures.allSatisfy { ($0["reason"] as? String)?.contains("outside the folders") == true })
            #expect(Set(failures.compactMap { $0["path"] as? String }.map { URL(fileURLWithPath: $0).lastPathComponent }) == ["escape.jpg", "elsewhere"],
                    "the outside folder's own files are neither walked nor named")
            #expect((try await client.call(.get, "/v1/collections/default").json["items"] as? Int) == 3)
            let jobs = try await client.call(.get, "/v1/jobs")
            #expect((jobs.json["jobs"] as? [[String: Any]])?.first?["id"] as? String == id)

            // The same folder again with region tiles: nothing is stored twice, the photos gain their parts.
            let tiled = try await client.postJSON("/v1/collections/default/jobs", ["path": root.path, "tiles": true])
            #expect(tiled.status == 202, "\(tiled.text)")
            let again = try await waitForJob(client, try #require(tiled.json["id"] as? String))
            #expect(again["state"] as? String == "finished" && again["added"] as? Int == 0)
            let vectors = try await client.call(.get, "/v1/collections/default").json["vectors"] as? [String: Int]
            #expect(vectors?["efficientnet-lite0-gem#tiles"] == 3, "\(vectors ?? [:])")
            #expect(try await client.postJSON("/v1/collections/default/jobs", ["path": root.path, "tiles": "yes"]).status == 400)

            for path in [outside.path, root.path + "/../" + outside.lastPathComponent, root.appendingPathComponent("escape.jpg").path, "/etc"] {
                let refused = try await client.postJSON("/v1/collections/default/jobs", ["path": path])
                #expect(refused.status == 403, "\(path)")
                #expect(refused.errorCode == "path_not_allowed")
            }
            #expect(try await client.postJSON("/v1/collections/default/jobs", ["path": root.path + "/missing"]).status == 404)
            #expect(try await client.postJSON("/v1/collections/default/jobs", ["path": "relative/path"]).status == 400)
            #expect(try await client.call(.get, "/v1/jobs/0123456789ab").status == 404)
            #expect(try await client.call(.get, "/v1/jobs/0123456789ab/events").status == 404)
        }
        // A server with no roots indexes nothing.
        let closed = try makeServer(store: store, database: database) { $0.indexRoots = [] }.application()
        try await closed.test(.router) { client in
            let refused = try await client.postJSON("/v1/collections/default/jobs", ["path": root.path])
            #expect(refused.status == 403)
            #expect(refused.errorCode == "path_not_allowed")
        }
    }

    @Test("bad requests: not an image, wrong media type, bad JSON, out-of-range options, unknown model, unknown route")
    func badRequests() async throws {
        let app = try makeServer().application()
        try await app.test(.router) { client in
            let notImage = try await client.postImage("/v1/collections/default/search", Array("hello, not an image".utf8))
            #expect(notImage.status == 422)
            #expect(notImage.errorCode == "bad_image")
            let truncated = Array(try ServerTestData.bytes("skimage-rocket.jpg").prefix(2000))
            #expect(try await client.postImage("/v1/collections/default/search", truncated).errorCode == "bad_image")
            let empty = try await client.postImage("/v1/collections/default/search", [])
            #expect(empty.status == 422)
            // SVG, PDF and PSD bytes (named .jpg on disk) never reach librsvg, poppler or ImageMagick.
            for (name, told) in [("svg.jpg", "SVG"), ("pdf.jpg", "PDF"), ("psd.jpg", "ImageMagick")] {
                let bytes = Array(try Data(contentsOf: TestData.fixtures.appendingPathComponent(name)))
                for path in ["/v1/collections/default/search", "/v1/collections/default/items"] {
                    let refused = try await client.postImage(path, bytes)
                    #expect(refused.status == 422, "\(name) to \(path)")
                    #expect(refused.errorCode == "bad_image", "\(name) to \(path)")
                    #expect(refused.errorMessage.contains(told) && refused.errorMessage.contains("not accepted"), "\(refused.errorMessage)")
                }
            }
            let text = try await client.call(.post, "/v1/collections/default/search", contentType: "text/plain", body: Array("x".utf8))
            #expect(text.status == 415)
            #expect(text.errorCode == "unsupported_media_type")
            let badJSON = try await client.call(.post, "/v1/collections/default/search", contentType: "application/json", body: Array("{".utf8))
            #expect(badJSON.status == 400)
            let wrongType = try await client.postJSON("/v1/collections/default/search", ["id": 12])
            #expect(wrongType.status == 400)
            #expect(wrongType.errorMessage.contains("id"))
            let query = try ServerTestData.editedCopy(chelsea)
            #expect(try await client.postImage("/v1/collections/default/search?top=0", query).status == 400)
            #expect(try await client.postImage("/v1/collections/default/search?top=abc", query).status == 400)
            let model = try await client.postImage("/v1/collections/default/search?model=nope", query)
            #expect(model.status == 400)
            #expect(model.errorCode == "unknown_model")
            let noImagePart = try await client.postImage("/v1/collections/default/search", multipart([("other", nil, "text/plain", [1])]),
                                                         contentType: "multipart/form-data; boundary=lookalike-test-boundary")
            #expect(noImagePart.status == 400)
            let missing = try await client.call(.get, "/v1/nothing-here")
            #expect(missing.status == 404)
            #expect(missing.errorCode == "not_found")
            let badMetadata = try await client.postImage("/v1/collections/default/items?metadata=%5B1%5D", query)
            #expect(badMetadata.errorCode == "bad_metadata")
            // A multipart header with a byte above 0x7F once crashed the server's parser.
            for uri in ["/v1/collections/default/items", "/v1/collections/default/search"] {
                let hostile = try await client.postImage(uri, Array("--B\r\n".utf8) + [0xC3, 0xAF] + Array("--B--\r\n".utf8),
                                                         contentType: "multipart/form-data; boundary=B")
                #expect(hostile.status == 400, "\(uri)")
            }
            // Query strings are read as forms write them: "+" is a space.
            let plus = try await client.postImage("/v1/collections/default/search?top=2&filter=%7B%22a%22:+1%7D", query)
            #expect(plus.status == 200, "\(plus.text)")
        }
    }
}
