import Foundation
import HTTPForms
import Imaging
import Storage
import TestSupport
import Testing
import VectorIndex

/// The fuzzers' corpora (`Fuzz/corpus/<target>/`: the seeds, and every input that once crashed a
/// parser, kept once fixed), replayed through the parsers on every test run: each is refused with
/// the parser's own error or parsed, and a snapshot that loads can be searched.
@Suite("Fuzzing corpora replayed")
struct FuzzCorpusTests {
    static func inputs(_ target: String) throws -> [URL] {
        let folder = TestData.repository.appendingPathComponent("Fuzz/corpus/\(target)")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { !$0.hasPrefix(".") }.sorted()
        return names.map { folder.appendingPathComponent($0) }
    }

    @Test("metadata filters: every input parses or is refused as a filter error")
    func filters() throws {
        let inputs = try Self.inputs("filter")
        #expect(!inputs.isEmpty)
        var parsed = 0
        for input in inputs {
            let text = String(decoding: try Data(contentsOf: input), as: UTF8.self)
            do {
                _ = try MetadataFilter(json: text)
                parsed += 1
            } catch is MetadataFilter.ParseError {
                // refused, as it should be when it is not a filter
            } catch {
                Issue.record("\(input.lastPathComponent): \(error) is not a filter error")
            }
        }
        #expect(parsed >= 2, "the seeds that are filters parse")
    }

    @Test("HNSW snapshots: every input loads or is refused as a snapshot error; one that loads is searched")
    func snapshots() throws {
        let inputs = try Self.inputs("snapshot")
        #expect(!inputs.isEmpty)
        var loaded = 0
        for input in inputs {
            do {
                let index = try HNSWIndex.load(from: input)
                if index.count > 0 {
                    let hits = try index.search([Float](repeating: 0.5, count: index.dimension), k: 5, filter: nil)
                    #expect(hits.count == min(5, index.count), "\(input.lastPathComponent)")
                }
                loaded += 1
            } catch is SnapshotError {
                // refused, as a damaged file should be
            } catch {
                Issue.record("\(input.lastPathComponent): \(error) is not a snapshot error")
            }
        }
        #expect(loaded >= 1, "the seed snapshot loads")
    }

    @Test("multipart bodies: every input is read or refused as a form error; the seeds are read")
    func multipartBodies() throws {
        var read: [String: [String: Multipart.Part]] = [:]
        for input in try Self.inputs("multipart") {
            let bytes = try [UInt8](Data(contentsOf: input))
            let newline = bytes.firstIndex(of: 0x0A) ?? bytes.count
            let header = "multipart/form-data; boundary=" + String(decoding: bytes[..<newline], as: UTF8.self)
            guard let boundary = Multipart.parameter("boundary", in: header) else { continue }
            do {
                read[input.lastPathComponent] = try Multipart.parts(newline < bytes.count ? Array(bytes[(newline + 1)...]) : [], boundary: boundary)
            } catch {
                #expect(error.message.hasPrefix("the multipart body is malformed"), "\(input.lastPathComponent): \(error)")
            }
        }
        let seed = try #require(read["image-and-options"])
        #expect(seed["image"]?.filename == "a.jpg")
        #expect(seed["image"]?.bytes.starts(with: [0xFF, 0xD8, 0xFF]) == true)
        #expect(seed["options"]?.bytes == Array("{\"top\": 3}".utf8))
        #expect(read["quoted-boundary"]?["feedback"]?.bytes == Array("{\"marks\": []}".utf8))
    }

    @Test("search query strings: every input is read or refused naming its field")
    func queryStrings() throws {
        var read: [String: SearchForm] = [:]
        for input in try Self.inputs("query") {
            let text = String(decoding: try Data(contentsOf: input), as: UTF8.self)
            do {
                read[input.lastPathComponent] = try SearchForm(QueryString(text))
            } catch is FormError, is MetadataFilter.ParseError, is ImageRegion.Invalid {
                // refused, naming the field
            } catch {
                Issue.record("\(input.lastPathComponent): \(error) is not a form, filter or region error")
            }
        }
        let all = try #require(read["all-options"])
        #expect(all.top == 5 && all.ef == 64 && all.expand == 3 && all.collapse == true && all.feedback == false)
        #expect(all.cascade == ["sscd", "phash"] && all.diversity == 0.3 && all.minScore == 0.2)
        #expect(all.filter == (try MetadataFilter(json: #"{"price": {"$lt": 50}}"#)))
        #expect(all.region == (try ImageRegion(x: 0.1, y: 0.2, width: 0.5, height: 0.5)))
        #expect(read["out-of-range"] == nil, "top=0 is refused (the first value of a repeated name wins)")
    }
}
