import Foundation
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
}
