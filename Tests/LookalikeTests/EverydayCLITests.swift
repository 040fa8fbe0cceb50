import Foundation
import TestSupport
import Testing

/// The everyday CLI: what a person adding a folder, searching with a filter, listing and removing
/// items sees, through the real binary on real photos.
@Suite("Everyday CLI", .serialized)
struct EverydayCLITests {
    func lookalike(_ arguments: [String]) throws -> CommandResult {
        try runCommand(try TestData.executable(), arguments)
    }

    /// A folder of three photos, the first twice under two names, with a hidden file and a text file.
    func folder(_ root: URL) throws -> (folder: URL, photos: [String]) {
        let photos = try TestData.photoPaths()
        let folder = root.appendingPathComponent("in")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for (name, source) in [("a1.jpg", photos[0]), ("a2.jpg", photos[0]), ("b.jpg", photos[1]), ("c.jpg", photos[2])] {
            try FileManager.default.copyItem(atPath: source, toPath: folder.appendingPathComponent(name).path)
        }
        try Data("notes".utf8).write(to: folder.appendingPathComponent("notes.txt"))
        try Data("x".utf8).write(to: folder.appendingPathComponent(".hidden.jpg"))
        return (folder, ["a1.jpg", "a2.jpg", "b.jpg", "c.jpg"].map { folder.appendingPathComponent($0).path })
    }

    @Test("the metadata of a copy within one batch is kept; records naming no input are reported")
    func metadataOfCopiesInOneBatch() throws {
        let root = try TestData.temporaryDirectory("cli-metadata")
        defer { try? FileManager.default.removeItem(at: root) }
        let (folder, _) = try folder(root)
        let metadata = root.appendingPathComponent("meta.jsonl")
        try Data("""
            {"path": "in/a1.jpg", "color": "red"}
            {"path": "in/a2.jpg", "color": "blue", "price": 5}
            {"path": "in/b.jpg", "color": "green"}
            {"path": "in/missing.jpg", "color": "grey"}
            """.utf8).write(to: metadata)
        let store = root.appendingPathComponent("store").path
        let added = try lookalike(["add", folder.path, "--recursive", "--metadata", metadata.path, "--store", store, "--json"])
        #expect(added.status == 0, "\(added.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(added.stdout.utf8)) as? [String: Any])
        #expect((report["added"] as? [Any])?.count == 3)
        #expect((report["duplicates"] as? [Any])?.count == 1)
        #expect(report["metadata_unmatched"] as? [String] == [root.appendingPathComponent("in/missing.jpg").path])
        #expect(report["skipped"] as? Int == 2, "the hidden file and the text file")

        // The copy's record was applied to the item both names hold (the later record wins, as
        // it would for an item stored earlier); the other photo keeps its own.
        let blue = try lookalike(["list", "--filter", #"{"color": "blue"}"#, "--json", "--store", store])
        let items = try #require((try JSONSerialization.jsonObject(with: Data(blue.stdout.utf8)) as? [String: Any])?["items"] as? [[String: Any]])
        #expect(items.count == 1)
        #expect((items.first?["metadata"] as? [String: Any])?["price"] as? Int == 5)
        let green = try lookalike(["list", "--filter", #"{"color": "green"}"#, "--store", store])
        #expect(green.stdout.contains("in/b.jpg"), "\(green.stdout)")

        // In the summary too.
        let again = try lookalike(["add", folder.path, "--recursive", "--metadata", metadata.path, "--store", store])
        #expect(again.stdout.contains("metadata: 1 record of \(metadata.path) names no input"), "\(again.stdout)")
        #expect(again.stdout.contains("in/missing.jpg"))
        #expect(again.stdout.contains("skipped 2 (hidden or not images)"), "\(again.stdout)")
    }

    @Test("a folder without --recursive is a usage error that says what to add; failures are listed once for two models")
    func addFolders() throws {
        let root = try TestData.temporaryDirectory("cli-folders")
        defer { try? FileManager.default.removeItem(at: root) }
        let (folder, photos) = try folder(root)
        let store = root.appendingPathComponent("store").path
        let plain = try lookalike(["add", folder.path, "--store", store])
        #expect(plain.status == 64, "exit status \(plain.status)")
        #expect(plain.stderr.contains("\(folder.path) is a folder: add --recursive"), "\(plain.stderr)")
        #expect(!FileManager.default.fileExists(atPath: store), "nothing was done")

        let broken = root.appendingPathComponent("broken.jpg")
        try Data("not an image".utf8).write(to: broken)
        let twice = try lookalike(["add", photos[2], broken.path, "--model", "efficientnet-lite0-gem", "--model", "phash", "--store", store])
        #expect(twice.status == 2)
        #expect(twice.stdout.components(separatedBy: "failed: \(broken.path)").count == 2, "listed once:\n\(twice.stdout)")
        #expect(twice.stdout.contains("(1 failed as listed above)"), "\(twice.stdout)")
    }

    @Test("search counts in words, says what a filter passed, names a misspelt field, and checks --top")
    func searchWords() throws {
        let root = try TestData.temporaryDirectory("cli-search")
        defer { try? FileManager.default.removeItem(at: root) }
        let (folder, photos) = try folder(root)
        let metadata = root.appendingPathComponent("meta.csv")
        try Data("path,color,code\nin/a1.jpg,red,007\nin/b.jpg,blue,8\nin/c.jpg,red,9\n".utf8).write(to: metadata)
        let store = root.appendingPathComponent("store").path
        #expect(try lookalike(["add", folder.path, "-r", "--metadata", metadata.path, "--store", store]).status == 0)

        let one = try lookalike(["search", photos[0], "--top", "1", "--store", store])
        #expect(one.stdout.hasPrefix("1 hit from 3 images ("), "\(one.stdout)")
        let filtered = try lookalike(["search", photos[0], "--filter", #"{"color": "red"}"#, "--store", store])
        #expect(filtered.stdout.hasPrefix("2 hits from 3 images, 2 of them passing the filter ("), "\(filtered.stdout)")
        let code = try lookalike(["search", photos[0], "--filter", #"{"code": "007"}"#, "--json", "--store", store])
        let answer = try #require(try JSONSerialization.jsonObject(with: Data(code.stdout.utf8)) as? [String: Any])
        #expect((answer["hits"] as? [Any])?.count == 1, "a code with a leading zero stays text: \(code.stdout)")
        #expect(answer["filtered"] as? Int == 1)

        let misspelt = try lookalike(["search", photos[0], "--filter", #"{"colour": "red"}"#, "--json", "--store", store])
        let empty = try #require(try JSONSerialization.jsonObject(with: Data(misspelt.stdout.utf8)) as? [String: Any])
        let notes = try #require(empty["notes"] as? [[String: String]])
        #expect(notes.first?["code"] == "unknown_field")
        #expect(notes.first?["message"]?.contains(#"did you mean "color"?"#) == true, "\(notes)")
        let wrongValue = try lookalike(["search", photos[0], "--filter", #"{"color": "purple"}"#, "--store", store])
        #expect(wrongValue.stdout.contains("no item's metadata passes the filter"), "\(wrongValue.stdout)")

        let negative = try lookalike(["search", photos[0], "--top", "-1", "--store", store])
        #expect(negative.status == 64)
        #expect(negative.stderr.contains("--top must be between 1 and 10000"), "\(negative.stderr)")
        let belowZero = try lookalike(["search", photos[0], "--min-score", "-0.5", "--top", "1", "--store", store])
        #expect(belowZero.status == 0, "a negative minimum score is a value: \(belowZero.stderr)")
    }

    @Test("list shows ids, paths and metadata page by page; remove takes ids, unique id prefixes and paths")
    func listAndRemove() throws {
        let root = try TestData.temporaryDirectory("cli-list")
        defer { try? FileManager.default.removeItem(at: root) }
        let (folder, photos) = try folder(root)
        let store = root.appendingPathComponent("store").path
        let added = try lookalike(["add", folder.path, "-r", "--json", "--store", store])
        let report = try #require(try JSONSerialization.jsonObject(with: Data(added.stdout.utf8)) as? [String: Any])
        let ids = try #require((report["added"] as? [[String: String]])?.compactMap { $0["id"] }).sorted()
        #expect(ids.count == 3)

        let text = try lookalike(["list", "--store", store])
        #expect(text.stdout.split(separator: "\n").map { String($0.prefix(16)) } == ids)
        #expect(text.stderr.contains("3 items"))
        let first = try lookalike(["list", "--limit", "2", "--json", "--store", store])
        let page = try #require(try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [String: Any])
        #expect((page["items"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == Array(ids.prefix(2)))
        let next = try #require(page["next"] as? String)
        let rest = try lookalike(["list", "--after", next, "--json", "--store", store])
        let second = try #require(try JSONSerialization.jsonObject(with: Data(rest.stdout.utf8)) as? [String: Any])
        #expect((second["items"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [ids[2]])
        #expect(second["next"] is NSNull)

        // By path (b.jpg), by a unique prefix, and two names that match nothing.
        let bID = try #require((report["added"] as? [[String: String]])?.first { $0["path"] == photos[2] }?["id"])
        let other = try #require(ids.first { $0 != bID })
        let removed = try lookalike(["remove", photos[2], String(other.prefix(6)), "ffffffffffff", root.appendingPathComponent("none.jpg").path,
                                     "--store", store])
        #expect(removed.status == 2)
        #expect(removed.stdout.contains("removed 2"), "\(removed.stdout)")
        #expect(removed.stderr.contains("ffffffffffff: no item has an id starting with ffffffffffff"), "\(removed.stderr)")
        #expect(removed.stderr.contains("none.jpg: no stored image is"), "\(removed.stderr)")
        let left = try lookalike(["list", "--store", store])
        #expect(left.stdout.split(separator: "\n").count == 1)
        #expect(!left.stdout.contains(bID) && !left.stdout.contains(other))

        // Tiles alone: added, then forgotten; the item stays.
        #expect(try lookalike(["add", folder.path, "-r", "--tiles", "--store", store]).status == 0)
        let untiled = try lookalike(["remove", "--tiles", "--store", store])
        #expect(untiled.status == 0 && untiled.stdout.contains("removed the tiles of 3 items (model efficientnet-lite0-gem)"),
                "\(untiled.stdout) \(untiled.stderr)")
        #expect(try lookalike(["list", "--store", store]).stdout.split(separator: "\n").count == 3)
        #expect(try lookalike(["remove", "--tiles", ids[0], "--store", store]).status == 64)
        #expect(try lookalike(["remove", "--store", store]).status == 64)
    }
}
