import Foundation
import HummingbirdTesting
import Lookalike
@testable import LookalikeServer
import TestSupport
import Testing

/// A collection's tuned models over HTTP: listed with the collection, searched by name.
@Suite("HTTP API: tuned models", .serialized)
struct ServerTunedModelTests {
    @Test("a tuned model is listed with its collection and searches like any model; jobs add with base models only",
          arguments: TestStores.kinds)
    func tunedModelOverHTTP(_ kind: String) async throws {
        let images = try TestData.categoryImages()
        let folder = try TestData.temporaryDirectory("server-tuned")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = folder.appendingPathComponent("store")
        let database = TestStores.database(kind)
        let tuned = "\(ModelManifest.defaultName)+shop"
        let firstID: String
        do {
            let engine = try Engine(configuration: EngineConfiguration(store: store, database: database))
            var records: [String: String] = [:]
            for (index, image) in images.enumerated() where index % 2 == 0 { records[image.path] = "{\"category\": \"\(image.category)\"}" }
            let added = try engine.add(images.map(\.path), options: AddOptions(metadata: MetadataFile(records: records)))
            firstID = try #require(added.added.first { $0.path == images[1].path }?.id)
            var options = TuneOptions(name: "shop", labels: "category", force: true)
            options.training.maxEpochs = 2
            _ = try engine.tune(options)
        }
        let app = try makeServer(store: store, database: database).application()
        try await app.test(.router) { client in
            let collection = try await client.call(.get, "/v1/collections/default")
            #expect(collection.status == 200, "\(collection.text)")
            let listed = try #require((collection.json["tuned_models"] as? [[String: Any]])?.first)
            #expect(listed["name"] as? String == tuned)
            #expect(listed["base"] as? String == ModelManifest.defaultName)
            #expect(listed["labels"] as? String == "category")
            #expect((collection.json["vectors"] as? [String: Int])?[tuned] == images.count)

            let search = try await client.postJSON("/v1/collections/default/search", ["id": firstID, "model": tuned, "top": 3])
            #expect(search.status == 200, "\(search.text)")
            #expect(search.json["model"] as? String == tuned)
            #expect(search.hitIDs.first == firstID)

            let unknown = try await client.postJSON("/v1/collections/default/search", ["id": firstID, "model": "\(tuned)x"])
            #expect(unknown.status == 400 && unknown.errorCode == "unknown_model")
            #expect(unknown.errorMessage.contains(tuned), "the tuned models are among those named: \(unknown.errorMessage)")

            let job = try await client.postJSON("/v1/collections/default/jobs", ["path": TestData.photos.path, "model": tuned])
            #expect(job.status == 400 && job.errorCode == "unknown_model", "\(job.text)")
        }
    }

    /// Waits until a tuning has ended; returns it.
    func waitForTuning(_ client: some TestClientProtocol, _ id: String, seconds: Double = 300) async throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let tuning = try await client.call(.get, "/v1/tunings/\(id)").json
            if let state = tuning["state"] as? String, state == "finished" || state == "failed" { return tuning }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestData.Missing(what: "the end of tuning \(id) within \(seconds) s")
    }

    @Test("a tuning started over HTTP reports its curve and report, becomes the default model when asked, and is removed over HTTP",
          arguments: TestStores.kinds)
    func tuningJob(_ kind: String) async throws {
        let images = try TestData.categoryImages()
        let folder = try TestData.temporaryDirectory("server-tuning")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = folder.appendingPathComponent("store")
        let database = TestStores.database(kind)
        let base = ModelManifest.defaultName
        let tuned = "\(base)+shop"
        var ids: [String: String] = [:]
        do {
            let engine = try Engine(configuration: EngineConfiguration(store: store, database: database))
            var records: [String: String] = [:]
            for (index, image) in images.enumerated() where index % 2 == 0 { records[image.path] = "{\"category\": \"\(image.category)\"}" }
            let added = try engine.add(images.map(\.path), options: AddOptions(metadata: MetadataFile(records: records)))
            for entry in added.added { ids[entry.path] = entry.id }
        }
        let idOf = ids
        let query = try #require(idOf[images[1].path])
        let app = try makeServer(store: store, database: database).application()
        try await app.test(.router) { client in
            let before = try await client.call(.get, "/v1/collections/default")
            #expect(before.json["default_model"] as? String == base, "\(before.text)")

            // Refused at once, with the field and the reason: nothing is queued.
            for (body, words) in [(["name": "shop"], "one of them"), (["name": "shop", "labels": "category", "feedback": true], "one of them"),
                                  (["name": "no spaces", "labels": "category"], "no spaces"),
                                  (["name": "shop", "labels": "category", "head": "three-layer"], "head"),
                                  (["name": "shop", "labels": "category", "epochs": 0], "epochs"),
                                  (["name": "shop", "labels": "category", "model": "\(base)+x"], "tuned"),
                                  (["name": "shop", "labels": "category", "colour": "red"], "colour")] as [([String: Any], String)] {
                let refused = try await client.postJSON("/v1/collections/default/tunings", body)
                #expect(refused.status == 400 && refused.errorMessage.contains(words), "\(body): \(refused.text)")
            }
            #expect(try await client.call(.get, "/v1/collections/default/tunings").json["tunings"] as? [Any] != nil)
            #expect((try await client.call(.get, "/v1/collections/default/tunings").json["tunings"] as? [Any])?.isEmpty == true)

            let started = try await client.postJSON("/v1/collections/default/tunings",
                                                     ["name": "shop", "labels": "category", "make_default": true, "epochs": 6])
            #expect(started.status == 202, "\(started.text)")
            let id = try #require(started.json["id"] as? String)
            #expect(started.headers[.location] == "/v1/tunings/\(id)")
            #expect(started.json["model"] as? String == tuned)
            let ended = try await waitForTuning(client, id)
            #expect(ended["state"] as? String == "finished", "\(ended)")
            #expect(ended["phase"] as? String == "done")
            // The curve: the base model at epoch 0, then each head's epochs, each with its held-out score.
            let curve = try #require(ended["curve"] as? [[String: Any]])
            #expect(curve.first?["epoch"] as? Int == 0 && curve.first?["head"] is NSNull, "\(curve.first ?? [:])")
            #expect(Set(curve.compactMap { $0["head"] as? String }) == ["linear", "two-layer"], "\(curve)")
            #expect(curve.allSatisfy { ($0["held_out"] as? Double).map { (0...1).contains($0) } == true })
            let report = try #require(ended["report"] as? [String: Any])
            #expect(report["created"] as? Bool == true, "\(report)")
            let gain = (report["best"] as? Double ?? 0) - (report["baseline"] as? Double ?? 1)
            #expect(gain > 0.02, "held-out gain \(gain)")
            #expect(report["vectorsProjected"] as? Int == images.count, "\(report)")
            #expect(ended["made_default"] as? Bool == true)
            #expect(ended["to_project"] as? Int == images.count && ended["projected"] as? Int == images.count)

            // The collection's default now: a search that names no model uses it.
            let after = try await client.call(.get, "/v1/collections/default")
            #expect(after.json["default_model"] as? String == tuned, "\(after.text)")
            let search = try await client.postJSON("/v1/collections/default/search", ["id": query, "top": 3])
            #expect(search.status == 200 && search.json["model"] as? String == tuned, "\(search.text)")
            #expect(search.hitIDs.first == query)
            let listed = try await client.call(.get, "/v1/collections/default/tunings")
            #expect((listed.json["tunings"] as? [[String: Any]])?.first?["id"] as? String == id)

            // The same name again without replace: 409 at once.
            let again = try await client.postJSON("/v1/collections/default/tunings", ["name": "shop", "labels": "category"])
            #expect(again.status == 409 && again.errorCode == "tuned_model_exists", "\(again.text)")

            // A tuning that fails while it runs (no such field) ends failed, with the reason.
            let failing = try await client.postJSON("/v1/collections/default/tunings", ["name": "other", "labels": "colour"])
            #expect(failing.status == 202)
            let failed = try await waitForTuning(client, try #require(failing.json["id"] as? String))
            #expect(failed["state"] as? String == "failed" && (failed["error"] as? String)?.contains("\"colour\"") == true, "\(failed)")

            // Pairs in the body teach as a pairs file does: items joined by similar pairs share a label.
            var pairs: [[String: Any]] = []
            for (index, image) in images.enumerated() where index + 10 < images.count {
                guard let a = idOf[image.path], let b = idOf[images[index + 10].path] else { continue }
                pairs.append(["a": a, "b": b, "similar": image.category == images[index + 10].category])
            }
            let emptyEnd = try await client.postJSON("/v1/collections/default/tunings",
                                                     ["name": "pairs", "pairs": [["a": "", "b": query, "similar": true]]])
            #expect(emptyEnd.status == 400 && emptyEnd.errorMessage.contains("pairs[0].a"), "\(emptyEnd.text)")
            let byPairs = try await client.postJSON("/v1/collections/default/tunings",
                                                    ["name": "pairs", "pairs": pairs, "force": true, "epochs": 2])
            #expect(byPairs.status == 202 && byPairs.json["labels"] as? String == "pairs", "\(byPairs.text)")
            let pairsEnded = try await waitForTuning(client, try #require(byPairs.json["id"] as? String))
            let pairsReport = pairsEnded["report"] as? [String: Any]
            #expect(pairsEnded["state"] as? String == "finished" && pairsReport?["created"] as? Bool == true, "\(pairsEnded)")
            #expect(pairsReport?["labels"] as? String == "pairs in the request", "\(pairsReport ?? [:])")
            #expect(pairsEnded["made_default"] as? Bool == false)

            // Switched back and forth with PATCH; a model that cannot be the default is a 400, and the default stays.
            func patch(_ object: Any) async throws -> Reply {
                try await client.call(.patch, "/v1/collections/default", contentType: "application/json",
                                      body: [UInt8](try JSONSerialization.data(withJSONObject: object)))
            }
            let back = try await patch(["default_model": NSNull()])
            #expect(back.status == 200 && back.json["default_model"] as? String == base, "\(back.text)")
            let bad = try await patch(["default_model": "words"])
            #expect(bad.status == 400 && bad.errorMessage.contains("words only"), "\(bad.text)")
            #expect(try await patch([String: Any]()).status == 400)
            let chosen = try await patch(["default_model": tuned])
            #expect(chosen.status == 200 && chosen.json["default_model"] as? String == tuned, "\(chosen.text)")

            // Removed over HTTP: its vectors go, and the default is the installed one again.
            let encoded = tuned.replacingOccurrences(of: "+", with: "%2B")  // as a page's encodeURIComponent writes it
            let removed = try await client.call(.delete, "/v1/collections/default/tuned-models/\(encoded)")
            #expect(removed.status == 200 && removed.json["vectors_removed"] as? Int == images.count, "\(removed.text)")
            let gone = try await client.call(.get, "/v1/collections/default")
            #expect(gone.json["default_model"] as? String == base, "\(gone.text)")
            #expect((gone.json["tuned_models"] as? [[String: Any]])?.map { $0["name"] as? String } == ["\(base)+pairs"], "\(gone.text)")
            #expect(try await client.call(.delete, "/v1/collections/default/tuned-models/\(tuned)").status == 404)
            #expect(try await client.call(.get, "/v1/tunings/nope").status == 404)
        }
    }
}
