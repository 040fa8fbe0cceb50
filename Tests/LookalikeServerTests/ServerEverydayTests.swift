import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Lookalike
@testable import LookalikeServer
import TestSupport
import Testing

/// What a person trying the API with curl runs into: methods, HEAD, misspelt fields, answers that
/// say why they are empty.
@Suite("Server: everyday answers")
struct ServerEverydayTests {
    @Test("a known path asked with another method is 405 with Allow; HEAD works wherever GET does")
    func methodsAndHead() async throws {
        let app = try makeServer().application()
        try await app.test(.router) { client in
            let get = try await client.call(.get, "/v1/collections/default/search")
            #expect(get.status == 405, "\(get.text)")
            #expect(get.errorCode == "method_not_allowed")
            #expect(get.headers[.allow] == "POST")
            let put = try await client.call(.put, "/v1/collections/default/items/0123456789abcdef")
            #expect(put.status == 405)
            #expect(put.headers[.allow] == "GET, DELETE, HEAD")
            let postHealth = try await client.call(.post, "/healthz")
            #expect(postHealth.status == 405)
            #expect(postHealth.headers[.allow] == "GET, HEAD")
            for path in ["/", "/healthz", "/v1/server", "/openapi.yaml"] {
                let head = try await client.call(.head, path)
                #expect(head.status == 200, "HEAD \(path)")
                #expect(head.bytes.isEmpty, "HEAD \(path) has no body")
            }
            #expect(try await client.call(.get, "/v1/nothing-here").status == 404, "an unknown path is still 404")
        }
    }

    @Test("unknown fields of a JSON body are refused by name, with the nearest known one")
    func unknownFields() async throws {
        let app = try makeServer().application()
        try await app.test(.router) { client in
            let typo = try await client.postJSON("/v1/collections/default/search", ["id": "0123456789abcdef", "topk": 3])
            #expect(typo.status == 400)
            #expect(typo.errorMessage.contains(#"unknown field "topk" (did you mean "top"?)"#), "\(typo.errorMessage)")
            let region = try await client.postJSON("/v1/collections/default/search",
                                                   ["id": "0123456789abcdef", "region": ["x": 0, "y": 0, "w": 1, "height": 1]])
            #expect(region.status == 400)
            #expect(region.errorMessage.contains(#"unknown field "region.w""#), "\(region.errorMessage)")
            let mark = try await client.postJSON("/v1/collections/default/feedback",
                                                 ["id": "0123456789abcdef", "marks": [["id": "0123456789abcdef", "mrk": "relevant"]]])
            #expect(mark.status == 400)
            #expect(mark.errorMessage.contains(#"unknown field "marks.mrk" (did you mean "marks.mark"?)"#), "\(mark.errorMessage)")
            let collection = try await client.postJSON("/v1/collections", ["name": "x", "nmae": "y"])
            #expect(collection.status == 400)
            #expect(collection.errorMessage.contains("nmae"))
        }
    }

    @Test("an empty answer says why: a misspelt filter field, a filter nothing passes, a model the collection has no vectors of")
    func emptyAnswersSayWhy() async throws {
        let store = try TestData.temporaryDirectory("server-notes")
        defer { try? FileManager.default.removeItem(at: store) }
        let photos = ["skimage-chelsea.png", "skimage-coffee.png"]
        let app = try makeServer(store: store).application()
        try await app.test(.router) { client in
            var ids: [String] = []
            for (name, color) in zip(photos, ["red", "blue"]) {
                let reply = try await client.postImage("/v1/collections/default/items?metadata=%7B%22color%22%3A%22\(color)%22%7D&name=\(name)",
                                                       try ServerTestData.bytes(name))
                #expect(reply.status == 201, "\(reply.text)")
                ids.append((reply.json["item"] as? [String: Any])?["id"] as? String ?? "")
            }
            let query = try ServerTestData.editedCopy(photos[0])
            let misspelt = try await client.postImage("/v1/collections/default/search?filter=%7B%22colour%22%3A%22red%22%7D", query)
            #expect(misspelt.status == 200)
            #expect(misspelt.hits.isEmpty)
            #expect(misspelt.json["filtered"] as? Int == 0)
            let notes = misspelt.json["notes"] as? [[String: String]] ?? []
            #expect(notes.map { $0["code"] } == ["unknown_field"])
            #expect(notes.first?["message"]?.contains(#"did you mean "color"?"#) == true, "\(notes)")

            let none = try await client.postImage("/v1/collections/default/search?filter=%7B%22color%22%3A%22green%22%7D", query)
            #expect((none.json["notes"] as? [[String: String]])?.map { $0["code"] } == ["filter_matches_nothing"])
            let red = try await client.postImage("/v1/collections/default/search?filter=%7B%22color%22%3A%22red%22%7D", query)
            #expect(red.hits.count == 1)
            #expect(red.json["filtered"] as? Int == 1)
            #expect((red.json["notes"] as? [Any])?.isEmpty == true)

            let otherModel = try await client.postImage("/v1/collections/default/search?model=efficientnet-lite0", query)
            #expect(otherModel.status == 200)
            #expect(otherModel.json["searched"] as? Int == 0)
            let why = otherModel.json["notes"] as? [[String: String]] ?? []
            #expect(why.first?["code"] == "no_vectors_for_model")
            #expect(why.first?["message"]?.contains("holds 2 images, none embedded with model efficientnet-lite0") == true, "\(why)")
            let plain = try await client.postImage("/v1/collections/default/search", query)
            #expect(plain.json["filtered"] is NSNull)
            #expect(plain.json["parsed"] is NSNull)
            #expect((plain.hits.first?["colors"] as? [String])?.contains("brown") == true, "the cat is brown: \(plain.hits)")

            // Words beside a stored item narrow it by the images' own colours: the coffee shows red, the cat does not.
            let brown = try await client.postJSON("/v1/collections/default/search", ["id": ids[1], "text": "brown, not red"])
            #expect(brown.status == 200, "\(brown.text)")
            #expect(brown.hits.compactMap { $0["id"] as? String } == [ids[0]])
            let parsed = brown.json["parsed"] as? [String: Any]
            #expect((parsed?["parts"] as? [[String: String]])?.map { $0["kind"] } == ["color", "not_color"])
            let conflict = try await client.postJSON("/v1/collections/default/search", ["id": ids[1], "text": "under 10 and over 50"])
            #expect(conflict.hits.isEmpty)
            #expect((conflict.json["notes"] as? [[String: String]])?.map { $0["code"] } == ["conflicting_query"])
            let literal = try await client.postJSON("/v1/collections/default/search", ["id": ids[1], "text": "brown", "literal": true])
            #expect(literal.status == 400, "\(literal.text)")
        }
    }

    @Test("a search in words uses the words model; a collection without its vectors says so; an image model refuses words")
    func words() async throws {
        let app = try makeServer().application()
        try await app.test(.router) { client in
            let reply = try await client.postJSON("/v1/collections/default/search", ["text": "a cat on a sofa", "top": 3])
            #expect(reply.status == 200, "\(reply.text)")
            #expect(reply.json["model"] as? String == "words")
            #expect((reply.json["notes"] as? [[String: String]])?.first?["code"] == "no_vectors_for_model")
            let imageModel = try await client.postJSON("/v1/collections/default/search", ["text": "a cat", "model": "efficientnet-lite0-gem"])
            #expect(imageModel.status == 400)
            #expect(imageModel.errorMessage.contains("no text encoder"), "\(imageModel.errorMessage)")
            let empty = try await client.postJSON("/v1/collections/default/search", ["text": "   "])
            #expect(empty.status == 400)
            #expect(empty.errorMessage.contains("empty"))
            // Words beside an id narrow that search: the id has to name a stored item.
            let both = try await client.postJSON("/v1/collections/default/search", ["text": "a cat", "id": "0123456789abcdef"])
            #expect(both.status == 404)
            let two = try await client.postJSON("/v1/collections/default/search", ["query": "0123456789abcdef", "id": "0123456789abcdef"])
            #expect(two.status == 400)
            let info = try await client.call(.get, "/v1/server")
            let names = (info.json["models"] as? [[String: Any]])?.compactMap { $0["name"] as? String } ?? []
            #expect(names.contains("words") && !names.contains("minilm-l6"), "text encoders are not offered as models to search images with: \(names)")
        }
    }

    @Test("a megabyte of metadata is refused with its size, and nothing is stored")
    func metadataCeiling() async throws {
        let store = try TestData.temporaryDirectory("server-metadata-cap")
        defer { try? FileManager.default.removeItem(at: store) }
        let app = try makeServer(store: store).application()
        try await app.test(.router) { client in
            let huge = Array(#"{"note": ""#.utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: 1 << 20) + Array(#""}"#.utf8)
            let reply = try await client.postImage(
                "/v1/collections/default/items",
                multipart([("image", "c.png", "image/png", try ServerTestData.bytes("skimage-chelsea.png")),
                           ("metadata", nil, "application/json", huge)]),
                contentType: "multipart/form-data; boundary=lookalike-test-boundary")
            #expect(reply.status == 400)
            #expect(reply.errorCode == "bad_metadata")
            #expect(reply.errorMessage.contains("at most 65536"), "\(reply.errorMessage)")
            #expect((try await client.call(.get, "/v1/collections/default").json["items"] as? Int) == 0)
        }
    }
}
