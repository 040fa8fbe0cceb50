import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Imaging
import Lookalike
import NIOCore
@testable import LookalikeServer
import TestSupport
import Testing

@Suite("HTTP API guards: keys, limits, SSRF", .serialized)
struct ServerGuardTests {
    let admin = "admin-key-for-tests-0123456789"
    let reader = "read-key-for-tests-9876543210"

    @Test("keys: writes need the admin key, reads (and metrics) the read key or admin; health and the page stay open")
    func keys() async throws {
        let store = try TestData.temporaryDirectory("server-keys")
        defer { try? FileManager.default.removeItem(at: store) }
        let app = try makeServer(store: store) { $0.adminKey = admin; $0.readKey = reader }.application()
        let photo = try ServerTestData.bytes("skimage-coffee.png")
        try await app.test(.router) { client in
            for (key, status, code) in [(nil, 401, "unauthorized"), ("wrong", 401, "unauthorized"), (reader, 403, "forbidden"),
                                        (admin + "x", 401, "unauthorized"), (String(admin.dropLast()), 401, "unauthorized")] {
                let reply = try await client.postImage("/v1/collections/default/items", photo, key: key)
                #expect(reply.status == status, "key \(key ?? "none")")
                #expect(reply.errorCode == code)
                #expect(!reply.text.contains(admin))
            }
            // Other spellings of the same routes are checked too.
            for path in ["//v1/collections", "/v1//collections", "/v1/collections/"] {
                #expect(try await client.postJSON(path, ["name": "sneaky"]).status != 201, "\(path)")
                let read = try await client.call(.get, path)
                #expect(read.status == 401 || read.status == 404, "\(path): \(read.status)")
            }
            #expect(try await client.call(.get, "/v1/collections/sneaky", key: admin).status == 404)
            let missing = try await client.call(.get, "/v1/collections")
            #expect(missing.status == 401)
            #expect(missing.headers[.wwwAuthenticate]?.hasPrefix("Bearer") == true)
            #expect(try await client.postJSON("/v1/collections", ["name": "x"], key: reader).status == 403)
            #expect(try await client.call(.delete, "/v1/collections/default/items/0123456789abcdef", key: reader).status == 403)

            #expect(try await client.postImage("/v1/collections/default/items", photo, key: admin).status == 201)
            for key in [reader, admin] {
                #expect(try await client.call(.get, "/v1/collections", key: key).status == 200)
                // A search is a read, although it is a POST.
                #expect(try await client.postImage("/v1/collections/default/search", photo, key: key).status == 200)
            }
            #expect(try await client.postImage("/v1/collections/default/search", photo).status == 401)
            // X-API-Key works as well as a bearer token.
            let viaHeader = try await client.execute(uri: "/v1/collections", method: .get, headers: [HTTPField.Name("X-API-Key")!: reader]) {
                Int($0.status.code)
            }
            #expect(viaHeader == 200)
            for open in ["/healthz", "/", "/openapi.yaml"] {
                #expect(try await client.call(.get, open).status == 200, "\(open)")
            }
            // Metrics name the collections: with a read key, they need a key too.
            #expect(try await client.call(.get, "/metrics").status == 401)
            #expect(try await client.call(.get, "/metrics", key: reader).status == 200)
        }
    }

    @Test("browsers elsewhere: cross-site writes are refused; a keyless server answers loopback names only")
    func browserGuard() async throws {
        let store = try TestData.temporaryDirectory("server-origin")
        defer { try? FileManager.default.removeItem(at: store) }
        let app = try makeServer(store: store).application()
        try await app.test(.router) { client in
            let body = try JSONSerialization.data(withJSONObject: ["name": "evil"])
            let crossSite = try await client.execute(uri: "/v1/collections", method: .post,
                                                     headers: [.origin: "https://evil.example", .contentType: "application/json"],
                                                     body: ByteBuffer(bytes: body)) { Int($0.status.code) }
            #expect(crossSite == 403)
            #expect(try await client.call(.get, "/v1/collections/evil").status == 404)
            let search = try await client.execute(uri: "/v1/collections/default/search", method: .post,
                                                  headers: [.origin: "https://evil.example", .contentType: "image/jpeg"],
                                                  body: ByteBuffer(bytes: [1, 2, 3])) { Int($0.status.code) }
            #expect(search == 403)
            // A sandboxed frame or a file: page says "null": not the server's own page either.
            let sandboxed = try await client.execute(uri: "/v1/collections", method: .post,
                                                     headers: [.origin: "null", .contentType: "application/json"],
                                                     body: ByteBuffer(bytes: body)) { Int($0.status.code) }
            #expect(sandboxed == 403)
            #expect(try await client.call(.get, "/v1/collections/evil").status == 404)
        }
        for host in ["localhost", "localhost:8080", "127.0.0.1:8080", "127.1.2.3", "[::1]:8080"] {
            #expect(BrowserGuard<BasicRequestContext>.isLoopback(authority: host), "\(host)")
        }
        for host in ["evil.example", "evil.example:8080", "127.0.0.1.evil.example", "[::2]:80", "10.0.0.1:8080", "localhost.evil:80"] {
            #expect(!BrowserGuard<BasicRequestContext>.isLoopback(authority: host), "\(host)")
        }
    }

    @Test("wrong keys: after a burst of 20, more wrong keys are answered 429 for a while; the right key always works")
    func wrongKeyThrottle() async throws {
        let store = try TestData.temporaryDirectory("server-wrong-keys")
        defer { try? FileManager.default.removeItem(at: store) }
        let app = try makeServer(store: store) { $0.adminKey = admin; $0.readKey = reader }.application()
        try await app.test(.router) { client in
            var statuses: [Int] = []
            for attempt in 0..<40 {
                statuses.append(try await client.call(.get, "/v1/collections", key: "guess-\(attempt)-0123456789").status)
            }
            #expect(statuses.prefix(20).allSatisfy { $0 == 401 }, "\(statuses)")
            #expect(statuses.suffix(10).allSatisfy { $0 == 429 }, "\(statuses)")
            let throttled = try await client.call(.get, "/v1/collections", key: "one-more-guess-0123456789")
            #expect(throttled.errorCode == "too_many_wrong_keys")
            #expect(try await client.call(.get, "/v1/collections", key: reader).status == 200, "the right key is never throttled")
            #expect(try await client.call(.get, "/v1/collections", key: nil).status == 401, "no key is not a guess")
            try await Task.sleep(for: .milliseconds(500))
            #expect(try await client.call(.get, "/v1/collections", key: "later-guess-0123456789").status == 401, "tokens come back")
        }
    }

    @Test("constant-time key comparison: equal only for equal strings, whatever the lengths")
    func constantTimeComparison() {
        #expect(KeyCheck.constantTimeEqual("secret", "secret"))
        #expect(!KeyCheck.constantTimeEqual("secret", "secreT"))
        #expect(!KeyCheck.constantTimeEqual("secret", "secret\0"))
        #expect(!KeyCheck.constantTimeEqual("", "x"))
        #expect(KeyCheck.constantTimeEqual("", ""))
        #expect(!KeyCheck.constantTimeEqual("ab", "ba"))
    }

    @Test("configuration: no admin key off loopback is refused; keys and roots come from a config file or the environment")
    func configuration() throws {
        #expect(throws: ServerConfiguration.Invalid.self) {
            try ServerConfiguration(host: "0.0.0.0").validate()
        }
        try ServerConfiguration(host: "0.0.0.0", adminKey: "a-key-of-16-chars").validate()
        #expect(throws: ServerConfiguration.Invalid.self, "a key short enough to guess") {
            try ServerConfiguration(host: "0.0.0.0", adminKey: "k").validate()
        }
        #expect(throws: ServerConfiguration.Invalid.self) {
            try ServerConfiguration(adminKey: "same-same-same-same", readKey: "same-same-same-same").validate()
        }
        #expect(throws: ServerConfiguration.Invalid.self, "a read key alone would leave writes open") {
            try ServerConfiguration(readKey: "read-read-read-read").validate()
        }
        let folder = try TestData.temporaryDirectory("server-config")
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("config.json")
        try Data(#"{"admin_key": "from-file", "index_roots": ["/srv/images"], "max_body_bytes": 1000}"#.utf8).write(to: file)
        var configuration = ServerConfiguration()
        try configuration.load(configFile: file.path, environment: ["LOOKALIKE_ADMIN_KEY": "from-env", "LOOKALIKE_READ_KEY": "read-env"])
        #expect(configuration.adminKey == "from-file")
        #expect(configuration.readKey == "read-env")
        #expect(configuration.indexRoots == ["/srv/images"])
        #expect(configuration.maxBodyBytes == 1000)
        try Data(#"{"admin_kee": "typo"}"#.utf8).write(to: file)
        var typo = ServerConfiguration()
        #expect(throws: ServerConfiguration.Invalid.self) { try typo.load(configFile: file.path, environment: [:]) }
        #expect(throws: ServerConfiguration.Invalid.self) { try typo.load(configFile: folder.appendingPathComponent("none").path, environment: [:]) }
    }

    @Test("limits: a body over the size limit and an image over the pixel limit are refused with 413")
    func limits() async throws {
        let photo = try ServerTestData.bytes("skimage-coffee.png")  // 600 x 400, about 450 kB
        let small = try makeServer { $0.maxBodyBytes = 100_000 }.application()
        try await small.test(.router) { client in
            let reply = try await client.postImage("/v1/collections/default/search", photo)
            #expect(reply.status == 413)
            #expect(reply.errorCode == "too_large")
            #expect(try await client.postImage("/v1/collections/default/items", photo).status == 413)
        }
        let fewPixels = try makeServer { $0.maxImagePixels = 100_000 }.application()
        try await fewPixels.test(.router) { client in
            let reply = try await client.postImage("/v1/collections/default/search", photo)
            #expect(reply.status == 413)
            #expect(reply.errorCode == "too_large")
            #expect(reply.errorMessage.contains("pixels"))
        }
    }

    @Test("body ceilings: a JSON body over 1 MiB is 413, a filter nested 10,000 deep or with 100,000 values 400, 1 MiB of metadata 400")
    func bodyCeilings() async throws {
        let app = try makeServer().application()
        let chelsea = try ServerTestData.bytes("skimage-chelsea.png")
        try await app.test(.router) { client in
            let id = try #require(try await client.postImage("/v1/collections/default/search?top=1", chelsea).json["hits"]
                .flatMap { ($0 as? [[String: Any]])?.first?["id"] as? String })
            let values = "[" + (0..<300_000).map(String.init).joined(separator: ",") + "]"
            let huge = Array("{\"id\": \"\(id)\", \"filter\": {\"n\": {\"$in\": \(values)}}}".utf8)
            #expect(huge.count > 1 << 20)
            let tooLarge = try await client.call(.post, "/v1/collections/default/search", contentType: "application/json", body: huge)
            #expect(tooLarge.status == 413)
            #expect(tooLarge.errorMessage.contains("JSON body"))

            let many = "[" + (0..<100_000).map { String($0 % 10) }.joined(separator: ",") + "]"
            let wide = Array("{\"id\": \"\(id)\", \"filter\": {\"n\": {\"$in\": \(many)}}}".utf8)
            #expect(wide.count < 1 << 20)
            let refused = try await client.call(.post, "/v1/collections/default/search", contentType: "application/json", body: wide)
            #expect(refused.status == 400)
            #expect(refused.errorMessage.contains("$in"))

            let nested = String(repeating: "{\"a\": ", count: 10_000) + "1" + String(repeating: "}", count: 10_000)
            let deep = Array("{\"id\": \"\(id)\", \"filter\": \(nested)}".utf8)
            let deepReply = try await client.call(.post, "/v1/collections/default/search", contentType: "application/json", body: deep)
            #expect(deepReply.status == 400)

            let metadata = "{\"note\": \"" + String(repeating: "x", count: 1 << 20) + "\"}"
            let upload = try await client.postImage("/v1/collections/default/items", multipart([
                ("image", "photo.jpg", "image/jpeg", try ServerTestData.editedCopy("skimage-chelsea.png")),
                ("metadata", nil, "application/json", Array(metadata.utf8)),
            ]), contentType: "multipart/form-data; boundary=lookalike-test-boundary")
            #expect(upload.status == 400)
            #expect(upload.errorCode == "bad_metadata")

            // Still answering, as before.
            #expect(try await client.postImage("/v1/collections/default/search?top=1", chelsea).status == 200)
        }
    }

    @Test("jobs kept in memory: past the limit, the oldest finished ones are forgotten, never one still running")
    func jobHistory() async throws {
        let folder = try TestData.temporaryDirectory("job-history")
        defer { try? FileManager.default.removeItem(at: folder) }
        let engine = try Engine(configuration: EngineConfiguration(store: folder.appendingPathComponent("store")))
        let empty = folder.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let jobs = Jobs(roots: [folder.path], kept: 5)
        var ids: [String] = []
        for _ in 0..<12 {
            ids.append(try jobs.submit(collection: "default", engine: engine, path: empty.path, options: AddOptions()).id)
            let deadline = ContinuousClock.now + .seconds(30)
            while try jobs.job(ids.last ?? "")?.isOver != true && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        let kept = try jobs.all().map(\.id)
        #expect(kept == Array(ids.suffix(5).reversed()), "the newest five, newest first")
        #expect(try jobs.job(ids[0]) == nil)
    }

    @Test("jobs kept in memory are journalled: a job its server was killed in runs again at the next start, a finished one stays")
    func jobJournal() async throws {
        let folder = try TestData.temporaryDirectory("job-journal")
        defer { try? FileManager.default.removeItem(at: folder) }
        let engine = try Engine(configuration: EngineConfiguration(store: folder.appendingPathComponent("store")))
        let photos = folder.appendingPathComponent("photos")
        try FileManager.default.createDirectory(at: photos, withIntermediateDirectories: true)
        for photo in try TestData.photoPaths().prefix(5) {
            try FileManager.default.copyItem(atPath: photo, toPath: photos.appendingPathComponent(URL(fileURLWithPath: photo).lastPathComponent).path)
        }
        // As a killed server left it: one job running (with progress it will count again), one finished.
        let journal = folder.appendingPathComponent("jobs.json")
        let record = { (id: String, state: String) -> [String: Any] in
            ["id": id, "collection": "default", "path": photos.path, "options": ["recursive": true, "model": ModelManifest.defaultName],
             "state": state, "createdAt": "2026-12-01T10:00:00Z", "attempts": 1,
             "progress": #"{"total": 5, "done": \#(state == "finished" ? 5 : 2), "added": \#(state == "finished" ? 5 : 2)}"#]
        }
        try JSONSerialization.data(withJSONObject: [record("finishedjob01", "finished"), record("killedjob001", "running")])
            .write(to: journal)

        let jobs = Jobs(journal: journal, roots: [folder.path], engine: { _ in engine })
        let deadline = ContinuousClock.now + .seconds(60)
        while try jobs.job("killedjob001")?.isOver != true && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        let resumed = try #require(try jobs.job("killedjob001"))
        #expect(resumed.state == .finished)
        #expect(resumed.attempts == 2)
        #expect(resumed.added + resumed.duplicates == 5)
        #expect(try engine.stats().items == 5)
        let finished = try #require(try jobs.job("finishedjob01"))
        #expect(finished.state == .finished && finished.attempts == 1, "a finished job is not run again")
        #expect(finished.added == 5 && finished.total == 5, "and keeps the counts it ended with")
        // The journal now says so too.
        let written = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: journal)) as? [[String: Any]])
        #expect(written.map { $0["state"] as? String } == ["finished", "finished"])
    }

    @Test("inference queue: when the threads are taken and the queue is full, a request is refused as busy at once")
    func busy() async throws {
        let pool = InferencePool(threads: 1, maxQueued: 0)
        let gate = DispatchSemaphore(value: 0)
        let started = DispatchSemaphore(value: 0)
        let blocked = Task { try await pool.run { started.signal(); gate.wait(); return 1 } }
        started.wait()
        do {
            _ = try await pool.run { 2 }
            Issue.record("a second request was admitted although the pool was full")
        } catch let error as APIError {
            #expect(error.code == "busy")
            #expect(error.status == .serviceUnavailable)
            #expect(error.headers[.retryAfter] == "1")
        }
        gate.signal()
        #expect(try await blocked.value == 1)
        #expect(try await pool.run { 3 } == 3)
        await pool.shutdown()
    }

    @Test("body budget: bodies are counted in bytes as they arrive; past the budget a request is busy, and its bytes come back")
    func bodyBudget() throws {
        let budget = BodyBudget(limit: 1_000)
        let first = budget.reservation()
        let second = budget.reservation()
        try first.grow(600)
        try second.grow(300)
        #expect(budget.bytesHeld == 900)
        #expect(throws: APIError.self) { try second.grow(200) }
        #expect(budget.bytesHeld == 900, "a refused chunk takes nothing")
        first.release()
        try second.grow(200)
        #expect(budget.bytesHeld == 500)
        second.release()
        second.release()
        #expect(budget.bytesHeld == 0, "released once, whatever the calls")
    }

    @Test("connection deadlines: a head within its timeout; a body within its grace plus a second per 16 KiB, at most 2 minutes")
    func connectionDeadlines() {
        let policy = ConnectionPolicy.standard(maxConnections: 100, headTimeout: 10)
        let head = NIODeadline.uptimeNanoseconds(1_000_000_000)
        #expect(policy.bodyDeadline(head: head, bytes: 0) == head + .seconds(10))
        #expect(policy.bodyDeadline(head: head, bytes: 16 * 1024 * 5) == head + .seconds(15))
        #expect(policy.bodyDeadline(head: head, bytes: 1 << 30) == head + .seconds(120))
    }

    @Test("open collections are capped: the least recently used is closed (its snapshots saved), the default never; a closed one reopens")
    func collectionCap() throws {
        let store = try TestData.temporaryDirectory("server-collection-cap")
        defer { try? FileManager.default.removeItem(at: store) }
        let collections = Collections(store: store, engineConfiguration: EngineConfiguration(store: store), maxOpen: 3)
        let main = try collections.engine(Collections.defaultName)
        let a = try collections.create("a"), b = try collections.create("b"), c = try collections.create("c")
        func isOpen(_ engine: Engine) -> Bool { collections.openEngines().contains { $0 === engine } }
        #expect(collections.openEngines().count == 3)
        #expect(!isOpen(a), "a, the least recently used, was closed to make room for c")
        #expect(isOpen(main) && isOpen(b) && isOpen(c))
        #expect(try collections.engine("b") === b, "b is still open, and now used more recently than c")
        let reopened = try collections.engine("a")
        #expect(reopened !== a)
        #expect(collections.openEngines().count == 3)
        #expect(isOpen(main) && isOpen(b) && isOpen(reopened) && !isOpen(c), "c was the least recently used")
        #expect(try collections.names() == ["default", "a", "b", "c"], "closing an engine deletes nothing")
        #expect(try reopened.stats().items == 0)
    }

    @Test("job event streams are capped: past the cap, 503 with advice to poll; a finished stream gives its place back")
    func eventStreamCap() async throws {
        let store = try TestData.temporaryDirectory("server-stream-cap")
        defer { try? FileManager.default.removeItem(at: store) }
        let server = try makeServer(store: store) { $0.maxEventStreams = 1 }
        let app = server.application()
        try await app.test(.router) { client in
            // With tiles, so that the job outlasts the first stream's start on a busy machine.
            let started = try await client.postJSON("/v1/collections/default/jobs", ["path": TestData.photos.path, "tiles": true])
            #expect(started.status == 202, "\(started.text)")
            let id = try #require(started.json["id"] as? String)
            async let following = client.call(.get, "/v1/jobs/\(id)/events")
            // The first stream holds the only place once it has started (not after a fixed wait).
            let deadline = Date().addingTimeInterval(30)
            while server.eventStreams.occupied == 0 && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(server.eventStreams.occupied == 1)
            let refused = try await client.call(.get, "/v1/jobs/\(id)/events")
            #expect(refused.status == 503 && refused.errorCode == "busy", "\(refused.text)")
            #expect(refused.text.contains("poll GET /v1/jobs/"))
            let stream = try await following
            #expect(stream.text.contains("event: end\ndata: {"), "the first stream ran to the job's end")
            let again = try await client.call(.get, "/v1/jobs/\(id)/events")
            #expect(again.status == 200 && again.text.contains("event: end"), "its place was given back")
        }
    }

    // MARK: SSRF

    @Test("address policy: loopback, private, link-local, multicast, mapped and reserved addresses are refused")
    func addressPolicy() {
        let policy = AddressPolicy()
        for address in ["127.0.0.1", "127.8.9.10", "10.0.0.1", "172.16.5.4", "172.31.255.255", "192.168.1.1", "169.254.169.254",
                        "100.64.0.1", "0.0.0.0", "224.0.0.1", "239.255.255.250", "255.255.255.255", "::1", "::", "fe80::1",
                        "fc00::1", "fd12:3456::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.1.2.3", "64:ff9b::a9fe:a9fe", "2001:db8::1"] {
            let bytes = AddressPolicy.parse(address)
            #expect(bytes != nil, "\(address) parses")
            #expect(bytes.flatMap(policy.refusal) != nil, "\(address) is refused")
        }
        for address in ["93.184.216.34", "8.8.8.8", "172.32.0.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            #expect(AddressPolicy.parse(address).flatMap(policy.refusal) == nil, "\(address) is allowed")
        }
        let exception = AddressPolicy(allowing: ["127.0.0.2/32"])
        #expect(AddressPolicy.parse("127.0.0.2").flatMap(exception.refusal) == nil)
        #expect(AddressPolicy.parse("127.0.0.1").flatMap(exception.refusal) != nil)
        #expect(AddressPolicy.Network("10.0.0.0/33") == nil)
        #expect(AddressPolicy.Network("nonsense") == nil)
    }

    @Test("URL queries naming loopback, private and link-local hosts are refused before any connection is made")
    func ssrfRefusedBeforeConnecting() async throws {
        let trap = try ListeningSocket(host: "127.0.0.1")
        let trap6 = try? ListeningSocket(host: "::1")
        let app = try makeServer().application()
        try await app.test(.router) { client in
            var urls = ["http://127.0.0.1:\(trap.port)/cat.jpg", "http://localhost:\(trap.port)/cat.jpg",
                        "http://10.0.0.1/cat.jpg", "http://169.254.169.254/latest/meta-data/", "http://[::1]:\(trap6?.port ?? 80)/cat.jpg",
                        "http://[::ffff:127.0.0.1]:\(trap.port)/", "http://2130706433:\(trap.port)/", "https://127.0.0.1:\(trap.port)/"]
            urls.append("http://0x7f.0.0.1:\(trap.port)/")
            for url in urls {
                let started = Date()
                let reply = try await client.postJSON("/v1/collections/default/search", ["url": url])
                #expect(reply.status == 403 || reply.status == 502, "\(url): \(reply.text)")
                if reply.status == 403 { #expect(reply.errorCode == "url_not_allowed", "\(url)") }
                #expect(Date().timeIntervalSince(started) < 2, "\(url) was refused at once, not after a connection attempt")
            }
            for url in ["file:///etc/passwd", "ftp://example.com/a.jpg", "gopher://127.0.0.1/", "http://user:pw@example.com/a.jpg", "not a url"] {
                let reply = try await client.postJSON("/v1/collections/default/search", ["url": url])
                #expect(reply.status == 400, "\(url)")
                #expect(reply.errorCode == "bad_url", "\(url)")
            }
        }
        #expect(trap.acceptedConnections() == 0, "nothing connected to the loopback listener")
        #expect(trap6?.acceptedConnections() ?? 0 == 0)
    }

    @Test("SSRF through a resolver: a name answering an allowed address, then loopback, stays pinned to the first; mixed answers, this machine's addresses and other ports are refused alike")
    func ssrfResolver() async throws {
        let trap = try ListeningSocket(host: "127.0.0.1")
        let photo = try ServerTestData.bytes("skimage-chelsea.png")
        // The "public" image server is 127.0.0.2, allowed by an exception, as in a private deployment.
        let origin = try await ImageOrigin.start(host: "127.0.0.2", photo: photo, redirectTo: "http://127.0.0.1:\(trap.port)/")
        defer { origin.stop() }
        // This machine's own address, allowed by an exception too: still never fetched.
        let own = AddressPolicy.interfaceAddresses().first { $0.count == 4 && $0[0] != 127 } ?? [127, 0, 0, 1]
        let answers = ResolverAnswers()
        var fetcher = URLFetcher(policy: AddressPolicy(allowing: ["127.0.0.2/32", AddressPolicy.text(own) + "/32"]),
                                 maxBytes: 1 << 24, maxRedirects: 2, timeout: .seconds(10))
        fetcher.resolve = { host in
            switch host {
            case "rebind.example": return answers.next() == 0 ? [[127, 0, 0, 2]] : [[127, 0, 0, 1]]
            case "mixed.example": return [[127, 0, 0, 2], [10, 0, 0, 1]]
            case "self.example": return [own]
            default: return [[127, 0, 0, 1]]
            }
        }
        // The first answer is checked and connected to; nothing asks the name again mid-fetch.
        #expect(try await fetcher.fetch("http://rebind.example:\(origin.port)/photo.png") == photo)
        var messages: [String] = []
        for url in ["http://rebind.example:\(trap.port)/", "http://mixed.example:\(origin.port)/photo.png",
                    "http://self.example:\(origin.port)/photo.png", "http://127.0.0.2:22/photo.png", "http://127.0.0.2:25/",
                    "https://127.0.0.2:5432/", "http://\(AddressPolicy.text(own)):\(origin.port)/photo.png"] {
            do {
                _ = try await fetcher.fetch(url)
                Issue.record("\(url) was fetched")
            } catch let error as APIError {
                #expect(error.code == "url_not_allowed", "\(url): \(error.message)")
                let host = URL(string: url)?.host ?? ""
                messages.append(error.message.replacingOccurrences(of: host, with: "HOST"))
            }
        }
        #expect(Set(messages).count == 1, "one message for every refusal: \(Set(messages))")
        #expect(trap.acceptedConnections() == 0, "nothing reached the loopback listener")
    }

    @Test("a URL that redirects to a loopback address is refused at the redirect; an allowed one is fetched and searched")
    func ssrfRedirect() async throws {
        let trap = try ListeningSocket(host: "127.0.0.1")
        let photo = try ServerTestData.bytes("skimage-chelsea.png")
        // A "public" image server on 127.0.0.2, allowed by an explicit exception.
        let origin = try await ImageOrigin.start(host: "127.0.0.2", photo: photo, redirectTo: "http://127.0.0.1:\(trap.port)/cat.jpg")
        defer { origin.stop() }
        let app = try makeServer { $0.urlAllowedNetworks = ["127.0.0.2/32"] }.application()
        try await app.test(.router) { client in
            let direct = try await client.postJSON("/v1/collections/default/search", ["url": "http://127.0.0.2:\(origin.port)/photo.png", "top": 1])
            #expect(direct.status == 200, "\(direct.text)")
            #expect(direct.hitIDs == [ServerTestData.id(photo)])
            let hop = try await client.postJSON("/v1/collections/default/search", ["url": "http://127.0.0.2:\(origin.port)/hop", "top": 1])
            #expect(hop.status == 200, "\(hop.text)")
            let redirected = try await client.postJSON("/v1/collections/default/search", ["url": "http://127.0.0.2:\(origin.port)/redirect"])
            #expect(redirected.status == 403, "\(redirected.text)")
            #expect(redirected.errorCode == "url_not_allowed")
            #expect(redirected.errorMessage.contains("127.0.0.1"))
            let notFound = try await client.postJSON("/v1/collections/default/search", ["url": "http://127.0.0.2:\(origin.port)/missing"])
            #expect(notFound.status == 502)
            #expect(notFound.errorCode == "url_fetch_failed")
        }
        #expect(trap.acceptedConnections() == 0, "the redirect target was never connected to")
    }
}

/// Counts the answers a test resolver gave.
final class ResolverAnswers: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func next() -> Int { lock.withLock { defer { count += 1 }; return count } }
}

/// A TCP socket listening on loopback that never accepts: afterwards it tells how many connections
/// were made to it (they wait in its backlog).
final class ListeningSocket: @unchecked Sendable {
    let descriptor: Int32
    let port: Int

    struct Failure: Error { let what: String }

    init(host: String) throws {
        let v6 = host.contains(":")
        let descriptor = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.descriptor = descriptor
        guard descriptor >= 0 else { throw Failure(what: "socket") }
        var bound: Int32
        if v6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            inet_pton(AF_INET6, host, &address.sin6_addr)
            bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            inet_pton(AF_INET, host, &address.sin_addr)
            bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        guard bound == 0, listen(descriptor, 16) == 0 else {
            close(descriptor)
            throw Failure(what: "bind/listen on \(host)")
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) } }
        port = withUnsafePointer(to: &storage) { pointer in
            v6 ? Int(UInt16(bigEndian: pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_port }))
               : Int(UInt16(bigEndian: pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_port }))
        }
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
    }

    /// Accepts whatever waits, without blocking, and counts it.
    func acceptedConnections() -> Int {
        var count = 0
        while true {
            let connection = accept(descriptor, nil, nil)
            if connection < 0 { break }
            close(connection)
            count += 1
        }
        return count
    }

    deinit { close(descriptor) }
}

/// A small HTTP server (Hummingbird) playing a public image host: /photo.png answers the photo,
/// /hop redirects to /photo.png, /redirect redirects to `redirectTo`.
struct ImageOrigin: Sendable {
    let port: Int
    let task: Task<Void, Error>

    static func start(host: String, photo: [UInt8], redirectTo: String) async throws -> ImageOrigin {
        let router = Router()
        router.get("photo.png") { _, _ in
            Response(status: .ok, headers: [.contentType: "image/png"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: photo)))
        }
        router.get("hop") { _, _ in Response(status: .found, headers: [.location: "/photo.png"]) }
        router.get("redirect") { _, _ in Response(status: .found, headers: [.location: redirectTo]) }
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: 0)),
                              onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) })
        let task = Task { try await app.run() }
        var iterator = stream.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else { throw ListeningSocket.Failure(what: "the image origin did not start") }
        return ImageOrigin(port: port, task: task)
    }

    func stop() { task.cancel() }
}
