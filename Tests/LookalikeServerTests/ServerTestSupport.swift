import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Imaging
import Lookalike
@testable import LookalikeServer
import TestSupport

/// Real photos and a store holding them, shared by the server tests (`make test` builds the photos).
enum ServerTestData {
    static func photo(_ name: String) throws -> URL {
        let url = TestData.photos.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else { throw TestData.Missing(what: url.path) }
        return url
    }

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: try photo(name)))
    }

    /// The id the catalog gives these bytes: the first 16 hex digits of their SHA-256.
    static func id(_ bytes: [UInt8]) -> String {
        String(ContentHash.sha256(bytes).prefix(16))
    }

    /// A store with every photo of the set, made once per test process and kind of store
    /// (`TestStores.kinds`): its folder, and its database address for PostgreSQL.
    static let sharedStores: [String: Result<(folder: URL, database: String?), Error>] = Dictionary(
        uniqueKeysWithValues: TestStores.kinds.map { kind in
            (kind, Result {
                let store = try TestData.temporaryDirectory("server-store")
                let database = TestStores.database(kind)
                let engine = try Engine(configuration: EngineConfiguration(store: store, database: database))
                let report = try engine.add([TestData.photos.path], options: AddOptions(recursive: true))
                guard report.added.count >= 20, report.failures.isEmpty else {
                    throw TestData.Missing(what: "the photo set (\(TestData.photos.path), at least 20 photos that index cleanly)")
                }
                return (store, database)
            })
        })

    static func sharedStore(_ kind: String = "sqlite") throws -> (folder: URL, database: String?) {
        guard let store = sharedStores[kind] else { throw TestData.Missing(what: "a \(kind) store") }
        return try store.get()
    }

    /// A cropped, shrunk, recompressed copy of a photo: what a user would search with.
    static func editedCopy(_ name: String) throws -> [UInt8] {
        let decoder = ImageDecoder()
        let full = try decoder.decodeFullSize(try bytes(name))
        let region = try ImageRegion(x: 0.1, y: 0.1, width: 0.8, height: 0.8)
        let crop = try decoder.decode(ImageEncoder.jpeg(full, quality: 95), policy: .shorterSide(size: 200, maxLonger: 800), region: region)
        return try ImageEncoder.jpeg(crop, quality: 40)
    }
}

/// A server over the shared store of a kind (or `store`, on `database` when given), with the photo
/// folder as its index root.
func makeServer(kind: String = "sqlite", store: URL? = nil, database: String? = nil,
                _ change: (inout ServerConfiguration) -> Void = { _ in }) throws -> LookalikeServer {
    let shared = store == nil ? try ServerTestData.sharedStore(kind) : nil
    var configuration = ServerConfiguration(store: store ?? shared?.folder ?? TestData.photos,
                                            indexRoots: [TestData.photos.path], snapshotInterval: 3600)
    configuration.database = store == nil ? shared?.database : database
    change(&configuration)
    return try LookalikeServer(configuration: configuration)
}

/// One exchange with the server.
struct Reply {
    let status: Int
    let headers: HTTPFields
    let bytes: [UInt8]

    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] ?? [:]
    }

    var text: String { String(decoding: bytes, as: UTF8.self) }

    /// The stable code of a JSON error body.
    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    var errorMessage: String { (json["error"] as? [String: Any])?["message"] as? String ?? "" }

    var hits: [[String: Any]] { json["hits"] as? [[String: Any]] ?? [] }
    var hitIDs: [String] { hits.compactMap { $0["id"] as? String } }
}

extension TestClientProtocol {
    func call(_ method: HTTPRequest.Method, _ uri: String, key: String? = nil, contentType: String? = nil,
              body: [UInt8]? = nil) async throws -> Reply {
        var headers: HTTPFields = [:]
        if let key { headers[.authorization] = "Bearer \(key)" }
        if let contentType { headers[.contentType] = contentType }
        return try await execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(bytes: $0) }) { response in
            Reply(status: Int(response.status.code), headers: response.headers, bytes: Array(response.body.readableBytesView))
        }
    }

    func postJSON(_ uri: String, _ object: Any, key: String? = nil) async throws -> Reply {
        let data = try JSONSerialization.data(withJSONObject: object)
        return try await call(.post, uri, key: key, contentType: "application/json", body: [UInt8](data))
    }

    func postImage(_ uri: String, _ bytes: [UInt8], key: String? = nil, contentType: String = "image/jpeg") async throws -> Reply {
        try await call(.post, uri, key: key, contentType: contentType, body: bytes)
    }
}

/// A multipart/form-data body.
func multipart(_ parts: [(name: String, filename: String?, type: String, bytes: [UInt8])], boundary: String = "lookalike-test-boundary") -> [UInt8] {
    var body: [UInt8] = []
    for part in parts {
        var head = "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(part.name)\""
        if let filename = part.filename { head += "; filename=\"\(filename)\"" }
        head += "\r\nContent-Type: \(part.type)\r\n\r\n"
        body += Array(head.utf8) + part.bytes + Array("\r\n".utf8)
    }
    body += Array("--\(boundary)--\r\n".utf8)
    return body
}

/// Waits until a job has ended; returns it.
func waitForJob(_ client: some TestClientProtocol, _ id: String, key: String? = nil, seconds: Double = 120) async throws -> [String: Any] {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        let job = try await client.call(.get, "/v1/jobs/\(id)", key: key).json
        if let state = job["state"] as? String, state == "finished" || state == "failed" { return job }
        try await Task.sleep(for: .milliseconds(100))
    }
    throw TestData.Missing(what: "the end of job \(id) within \(seconds) s")
}
