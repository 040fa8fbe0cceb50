import Foundation
import TestSupport
import Testing

/// One `add` batch mixing good photos with every kind of bad input, through the real CLI.
/// Each bad input is reported with its reason, the good ones are added, the exit status is 2,
/// and what the store held before is intact and searchable.
@Suite("Bad input in an add batch", .serialized)
struct BadInputTests {
    /// As root, permission bits do not stop reads; the CLI then runs without the capabilities that
    /// bypass them (util-linux `setpriv`), so the unreadable file is really unreadable to it.
    func lookalike(_ arguments: [String]) throws -> CommandResult {
        let binary = try TestData.executable()
        if geteuid() == 0 {
            return try runCommand("/usr/bin/setpriv", [
                "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", binary,
            ] + arguments)
        }
        return try runCommand(binary, arguments)
    }

    @Test("each bad input is reported with its reason; the good images are indexed; the store stays intact")
    func mixedBatch() throws {
        let photos = try TestData.photoPaths()
        let root = try TestData.temporaryDirectory("bad-input")
        defer {
            chmod(root.appendingPathComponent("batch/unreadable.jpg").path, 0o644)
            try? FileManager.default.removeItem(at: root)
        }
        let store = root.appendingPathComponent("store").path
        let batch = root.appendingPathComponent("batch")
        let nested = batch.appendingPathComponent("nested")
        try FileManager.default.createDirectory(at: nested, withIntermediateDirectories: true)

        // The store already holds two photos before the bad batch arrives.
        let before = try lookalike(["add", photos[0], photos[1], "--store", store])
        #expect(before.status == 0, "\(before.stderr)")

        let fileManager = FileManager.default
        let good = [photos[2], photos[3], photos[4]]
        for (offset, photo) in good.enumerated() {
            let folder = offset == 2 ? nested : batch
            try fileManager.copyItem(atPath: photo, toPath: folder.appendingPathComponent(URL(fileURLWithPath: photo).lastPathComponent).path)
        }
        for name in ["empty.jpg", "truncated.jpg", "text.jpg", "huge-header.png", "svg.jpg", "pdf.jpg", "psd.jpg", "bmp.jpg"] {
            try fileManager.copyItem(at: TestData.fixtures.appendingPathComponent(name), to: batch.appendingPathComponent(name))
        }
        let unreadable = batch.appendingPathComponent("unreadable.jpg")
        try fileManager.copyItem(atPath: photos[5], toPath: unreadable.path)
        chmod(unreadable.path, 0)
        try fileManager.createSymbolicLink(atPath: nested.appendingPathComponent("loop").path, withDestinationPath: "..")

        let result = try lookalike(["add", batch.path, "--recursive", "--store", store])
        #expect(result.status == 2, "exit status \(result.status); stderr: \(result.stderr)")
        #expect(result.stdout.contains("added 3, duplicates 0, failed 10"), "\(result.stdout)")
        let expectedReasons = [
            "empty.jpg": "empty file",
            "truncated.jpg": "cannot decode image",
            "text.jpg": "not an image in a supported format",
            "huge-header.png": "40000x40000",
            "unreadable.jpg": "permission denied",
            "nested/loop": "symbolic link loop",
            // Formats read by libraries not hardened against hostile files, named .jpg: refused by
            // the CLI as by the server, before any of their bytes reach librsvg, poppler or ImageMagick.
            "svg.jpg": "the file is SVG, which is not accepted",
            "pdf.jpg": "the file is PDF, which is not accepted",
            "psd.jpg": "a format only ImageMagick reads",
            "bmp.jpg": "a format only ImageMagick reads",
        ]
        let failureLines = result.stdout.split(separator: "\n").filter { $0.contains("failed: ") }
        #expect(failureLines.count == expectedReasons.count, "\(result.stdout)")
        for (name, reason) in expectedReasons {
            let line = failureLines.first { $0.contains(batch.appendingPathComponent(name).path + ":") }
            #expect(line?.contains(reason) == true, "\(name): expected '\(reason)' in \(line.map(String.init) ?? "no line")")
        }

        let stats = try lookalike(["stats", "--json", "--store", store])
        let counts = try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as? [String: Any]
        #expect(counts?["items"] as? Int == 5)

        for photo in [photos[0], photos[1], photos[2], photos[4]] {
            let search = try lookalike(["search", photo, "--top", "1", "--json", "--store", store])
            #expect(search.status == 0, "\(search.stderr)")
            let answer = try JSONSerialization.jsonObject(with: Data(search.stdout.utf8)) as? [String: Any]
            let hits = answer?["hits"] as? [[String: Any]]
            #expect((hits?.first?["score"] as? Double ?? 0) > 0.999, "\(photo) should find itself")
            #expect(answer?["model"] as? String == "efficientnet-lite0-gem")
            #expect(answer?["took_ms"] is Double)
        }

        // The same batch again: the good images are duplicates now, the bad ones fail the same way.
        let again = try lookalike(["add", batch.path, "--recursive", "--store", store])
        #expect(again.status == 2)
        #expect(again.stdout.contains("added 0, duplicates 3, failed 10"), "\(again.stdout)")
    }

    @Test("a missing store, a missing or broken query: each names what is wrong and exits 1")
    func badQuery() throws {
        let root = try TestData.temporaryDirectory("bad-query")
        defer { try? FileManager.default.removeItem(at: root) }
        let store = root.appendingPathComponent("store").path
        let photo = try TestData.photoPaths()[0]
        let noStore = try lookalike(["search", photo, "--store", store])
        #expect(noStore.status == 1)
        #expect(noStore.stderr.contains("there is no store at \(store)"), "\(noStore.stderr)")
        #expect(!FileManager.default.fileExists(atPath: store), "a search must not create a store")

        #expect(try lookalike(["add", photo, "--store", store]).status == 0)
        let missing = root.appendingPathComponent("nope.jpg").path
        let result = try lookalike(["search", missing, "--store", store])
        #expect(result.status == 1)
        #expect(result.stderr.contains(missing) && result.stderr.contains("no such file"), "\(result.stderr)")
        let text = TestData.fixtures.appendingPathComponent("text.jpg").path
        let broken = try lookalike(["search", text, "--store", store])
        #expect(broken.status == 1)
        #expect(broken.stderr.contains("\(text): not an image"), "\(broken.stderr)")
    }

    @Test("usage errors exit 64: --top and --threads out of range, no paths")
    func usage() throws {
        let photo = try TestData.photoPaths()[0]
        for arguments in [["search", photo, "--top", "0"], ["search", photo, "--top", "100000000000"],
                          ["add", photo, "--threads", "3000000000"], ["add"]] {
            let result = try lookalike(arguments)
            #expect(result.status == 64, "\(arguments): \(result.status) \(result.stderr)")
        }
    }

    @Test("add --json reports every input in a stable shape")
    func addJSON() throws {
        let root = try TestData.temporaryDirectory("add-json")
        defer { try? FileManager.default.removeItem(at: root) }
        let photos = Array(try TestData.photoPaths().prefix(2))
        let text = TestData.fixtures.appendingPathComponent("text.jpg").path
        let result = try lookalike(["add", photos[0], photos[1], photos[0], text, "--json",
                                    "--store", root.appendingPathComponent("store").path])
        #expect(result.status == 2)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(Set(report.keys) == ["model", "seconds", "added", "duplicates", "failed", "skipped", "metadata_unmatched", "store_error",
                                     "tiled", "tiles_failed"])
        #expect(report["skipped"] as? Int == 0)
        #expect(report["tiled"] as? Int == 0 && (report["tiles_failed"] as? [Any])?.isEmpty == true, "no tiles were asked for")
        #expect(report["metadata_unmatched"] as? [String] == [])
        let added = try #require(report["added"] as? [[String: String]])
        #expect(added.map { $0["path"] } == photos)
        let duplicates = try #require(report["duplicates"] as? [[String: String]])
        #expect(duplicates.first?["existing_id"] == added.first?["id"])
        let failed = try #require(report["failed"] as? [[String: String]])
        #expect(failed.first?["path"] == text)
        #expect(report["store_error"] is NSNull)
    }

    @Test("an unknown model is an error listing the known ones")
    func unknownModel() throws {
        let root = try TestData.temporaryDirectory("bad-model")
        defer { try? FileManager.default.removeItem(at: root) }
        let result = try lookalike(["add", try TestData.photoPaths()[0], "--model", "clip-vit-b32",
                                    "--store", root.appendingPathComponent("store").path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("unknown model 'clip-vit-b32'") && result.stderr.contains("efficientnet-lite0"))
    }

    @Test("a store embedded with another model than the one searched says how to get its vectors")
    func storeOfAnotherModel() throws {
        let root = try TestData.temporaryDirectory("other-model")
        defer { try? FileManager.default.removeItem(at: root) }
        let store = root.appendingPathComponent("store").path
        let photos = try TestData.photoPaths()
        #expect(try lookalike(["add", photos[0], photos[1], "--model", "efficientnet-lite0", "--store", store]).status == 0)
        let search = try lookalike(["search", photos[0], "--store", store])
        #expect(search.status == 0, "\(search.stderr)")
        #expect(search.stdout.contains("0 hits from 0 images (model efficientnet-lite0-gem"))
        #expect(search.stdout.contains("the collection holds 2 images, none embedded with model efficientnet-lite0-gem"))
        #expect(search.stdout.contains("`lookalike add PATH... --model efficientnet-lite0-gem`"))
        #expect(search.stdout.contains("search with model efficientnet-lite0"))
        // Adding the same files with the searched model gives them its vectors.
        #expect(try lookalike(["add", photos[0], photos[1], "--store", store]).status == 0)
        #expect(try lookalike(["search", photos[0], "--store", store]).stdout.contains("2 hits from 2 images"))
    }
}
