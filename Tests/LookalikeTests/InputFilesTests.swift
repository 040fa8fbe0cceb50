import Foundation
import TestSupport
import Testing
@testable import Lookalike

@Suite("Finding and describing input files")
struct InputFilesTests {
    @Test("folders need --recursive; walks are sorted, skip hidden and non-image files, and stop at loops")
    func discovery() throws {
        let root = try TestData.temporaryDirectory("discovery")
        defer { try? FileManager.default.removeItem(at: root) }
        let fileManager = FileManager.default
        try fileManager.createDirectory(at: root.appendingPathComponent("b/inner"), withIntermediateDirectories: true)
        for name in ["b/inner/z.JPG", "b/a.png", "notes.txt", ".hidden.jpg", "c.webp"] {
            try Data("x".utf8).write(to: root.appendingPathComponent(name))
        }
        try fileManager.createSymbolicLink(atPath: root.appendingPathComponent("b/inner/up").path, withDestinationPath: "../..")
        try fileManager.createSymbolicLink(atPath: root.appendingPathComponent("self-link.jpg").path, withDestinationPath: "self-link.jpg")

        let flat = FileDiscovery.collect([root.path], recursive: false)
        #expect(flat.files.isEmpty)
        #expect(flat.failures.first?.reason.contains("--recursive") == true)

        // Sibling folders linking to each other are walked once each, however many links there are.
        try fileManager.createDirectory(at: root.appendingPathComponent("d"), withIntermediateDirectories: true)
        try fileManager.createSymbolicLink(atPath: root.appendingPathComponent("d/to-b").path, withDestinationPath: "../b")
        try fileManager.createSymbolicLink(atPath: root.appendingPathComponent("b/inner/to-d").path, withDestinationPath: "../../d")
        let walked = FileDiscovery.collect([root.path, root.appendingPathComponent("missing.jpg").path], recursive: true)
        #expect(walked.files == ["b/a.png", "b/inner/z.JPG", "c.webp"].map { root.appendingPathComponent($0).path })
        let reasons = Dictionary(uniqueKeysWithValues: walked.failures.map {
            (String($0.path.dropFirst(root.path.count + 1)), $0.reason)
        })
        #expect(reasons["b/inner/up"]?.contains("symbolic link loop: leads back to \(root.path)") == true)
        #expect(reasons["self-link.jpg"]?.contains("symbolic link loop") == true)
        #expect(reasons["missing.jpg"] == "no such file or directory")

        let named = FileDiscovery.collect([root.appendingPathComponent("notes.txt").path], recursive: false)
        #expect(named.files == [root.appendingPathComponent("notes.txt").path], "a file named explicitly is always tried")
    }

    @Test("CSV metadata: quotes, commas and newlines inside fields, numbers as numbers, paths relative to the file")
    func csvMetadata() throws {
        let root = try TestData.temporaryDirectory("csv")
        defer { try? FileManager.default.removeItem(at: root) }
        let csv = """
            path,title,price
            shoes/red.jpg,"Red shoes, size 42",45
            /abs/blue.jpg,"The ""blue"" pair
            with laces",49.5\r
            """
        let file = root.appendingPathComponent("meta.csv")
        try csv.write(to: file, atomically: false, encoding: .utf8)
        let metadata = try MetadataFile(path: file.path)
        #expect(metadata.records[root.appendingPathComponent("shoes/red.jpg").path] == #"{"price":45,"title":"Red shoes, size 42"}"#)
        #expect(metadata.records["/abs/blue.jpg"] == #"{"price":49.5,"title":"The \"blue\" pair\nwith laces"}"#)
    }

    @Test("bad metadata files are refused with the file, the line and the reason", arguments: [
        ("bad.csv", "title,price\nx,1\n", "bad.csv:1: the header row has no \"path\" column"),
        ("short.csv", "path,title\na.jpg\n", "short.csv:2: row has 1 fields, the header has 2"),
        ("bad.jsonl", "{\"path\": \"a.jpg\"}\n[1, 2]\n", "bad.jsonl:2: not a JSON object"),
        ("nopath.jsonl", "{\"title\": \"x\"}\n", "nopath.jsonl:1: record has no \"path\" field"),
        ("open.csv", "path,title\na.jpg,\"never closed\n", "open.csv:2: a quoted field is never closed"),
        ("inner.csv", "path,title\na.jpg,x\"y\"z\n", "inner.csv:2: a quote inside an unquoted field (quote the whole field)"),
        ("twice.csv", "path,path\na.jpg,b.jpg\n", "twice.csv:1: the header row names the column \"path\" twice"),
        ("huge.jsonl", "{\"path\": \"a.jpg\"}\n{\"path\": \"b.jpg\", \"note\": \"\(String(repeating: "x", count: 70_000))\"}\n",
         "huge.jsonl:2: record has 70011 bytes of metadata; an item takes at most 65536"),
    ])
    func badMetadata(name: String, content: String, message: String) throws {
        let root = try TestData.temporaryDirectory("bad-metadata")
        defer { try? FileManager.default.removeItem(at: root) }
        let file = root.appendingPathComponent(name)
        try content.write(to: file, atomically: false, encoding: .utf8)
        do {
            _ = try MetadataFile(path: file.path)
            Issue.record("\(name) should be refused")
        } catch let error as MetadataFile.ParseError {
            #expect("\(error)".hasSuffix(message), "\(error)")
        }
    }

    @Test("CSV numbers: plain decimals only", arguments: [
        ("45", "45"), ("-3", "-3"), ("49.50", "49.5"), ("0.5", "0.5"), ("007", "\"007\""), ("nan", "\"nan\""),
        ("inf", "\"inf\""), ("1e400", "\"1e400\""), ("", "\"\""), ("12abc", "\"12abc\""),
    ])
    func csvNumbers(field: String, json: String) throws {
        let root = try TestData.temporaryDirectory("csv-number")
        defer { try? FileManager.default.removeItem(at: root) }
        let file = root.appendingPathComponent("m.csv")
        try "path,value\n/a.jpg,\(field)\n".write(to: file, atomically: false, encoding: .utf8)
        #expect(try MetadataFile(path: file.path).records["/a.jpg"] == "{\"value\":\(json)}")
    }

    @Test("the store folder: --store, then LOOKALIKE_STORE, then the XDG data folder")
    func storeLocation() {
        #expect(StoreLocation.resolve("/a", environment: ["LOOKALIKE_STORE": "/b"]).path == "/a")
        #expect(StoreLocation.resolve(nil, environment: ["LOOKALIKE_STORE": "/b"]).path == "/b")
        #expect(StoreLocation.resolve(nil, environment: ["XDG_DATA_HOME": "/x"]).path == "/x/lookalike/store")
    }

    @Test("reading files: the reason comes from the system, the size limit from fstat", .timeLimit(.minutes(1)))
    func reading() throws {
        let root = try TestData.temporaryDirectory("reading")
        defer { try? FileManager.default.removeItem(at: root) }
        #expect(throws: IngestError.notARegularFile) { _ = try FileReader.read(root.path, maxBytes: 100) }
        let fifo = root.appendingPathComponent("pipe.jpg").path
        #expect(mkfifo(fifo, 0o644) == 0)
        #expect(throws: IngestError.notARegularFile) { _ = try FileReader.read(fifo, maxBytes: 100) }
        let file = root.appendingPathComponent("data.bin")
        try Data(repeating: 7, count: 500).write(to: file)
        #expect(try FileReader.read(file.path, maxBytes: 500).count == 500)
        do {
            _ = try FileReader.read(file.path, maxBytes: 499)
            Issue.record("a file over the limit should be refused")
        } catch {
            #expect("\(error)" == "file is 500 bytes, over the limit of 499 bytes")
        }
    }
}
