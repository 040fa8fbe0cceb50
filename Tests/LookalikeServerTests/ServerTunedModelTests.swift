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
}
