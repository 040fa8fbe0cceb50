import Foundation
import Testing
@testable import Catalog

@Suite("Metadata filters")
struct MetadataFilterTests {
    /// Six items: typed values, a nested object, no metadata, and metadata that is not JSON.
    func catalog(_ directory: URL) throws -> (Catalog, [String: String]) {
        let catalog = try Catalog(directory: directory)
        let records: [(String, String?)] = [
            ("red45", #"{"color": "red", "price": 45, "sale": true, "size": {"eu": 42}}"#),
            ("red80", #"{"color": "red", "price": 80.5, "sale": false}"#),
            ("blue20", #"{"color": "blue", "price": 20, "tag": null}"#),
            ("white", #"{"color": "white"}"#),
            ("none", nil),
            ("broken", "not json"),
        ]
        var ids: [String: String] = [:]
        for (index, (name, metadata)) in records.enumerated() {
            let hash = String(repeating: String(index + 1, radix: 16), count: 64)
            let item = Item(id: Item.id(forContentHash: hash), contentHash: hash, sourcePath: "/p/\(name).jpg", width: 1, height: 1,
                            metadata: metadata, addedAt: Date())
            try catalog.insert([(item, [1, 0])], model: "m")
            ids[name] = item.id
        }
        return (catalog, ids)
    }

    @Test("each operator selects exactly the items it should, across types, nesting and missing metadata")
    func operators() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("filter-tests-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (catalog, ids) = try catalog(directory)
        func names(_ json: String) throws -> Set<String> {
            let matched = try catalog.itemIDs(matching: MetadataFilter(json: json))
            return Set(ids.filter { matched.contains($0.value) }.keys)
        }
        #expect(try names(#"{"color": "red"}"#) == ["red45", "red80"])
        #expect(try names(#"{"color": "red", "price": {"$lt": 50}}"#) == ["red45"])
        #expect(try names(#"{"price": {"$gte": 45, "$lte": 80.5}}"#) == ["red45", "red80"])
        #expect(try names(#"{"price": {"$gt": 80}}"#) == ["red80"])
        #expect(try names(#"{"sale": true}"#) == ["red45"])
        #expect(try names(#"{"sale": false}"#) == ["red80"])
        #expect(try names(#"{"size.eu": 42}"#) == ["red45"])
        #expect(try names(#"{"color": {"$in": ["blue", "white"]}}"#) == ["blue20", "white"])
        #expect(try names(#"{"color": {"$in": []}}"#).isEmpty)
        #expect(try names(#"{"tag": null}"#) == ["blue20"])
        #expect(try names(#"{"price": {"$exists": true}}"#) == ["red45", "red80", "blue20"])
        // Items without a field (no metadata, or text that is not JSON) pass $ne and $exists: false.
        #expect(try names(#"{"price": {"$exists": false}}"#) == ["white", "none", "broken"])
        #expect(try names(#"{"color": {"$ne": "red"}}"#) == ["blue20", "white", "none", "broken"])
        #expect(try names(#"{"tag": {"$ne": null}}"#) == ["red45", "red80", "white", "none", "broken"])
        #expect(try names("{}").count == 6)
    }

    @Test("malformed filters name the field and the reason")
    func malformed() {
        let cases = [
            "[1]", "not json", #"{"a": {"$near": 1}}"#, #"{"a": {"$lt": true}}"#, #"{"a": {"$in": 3}}"#, #"{"a": {"$exists": 1}}"#,
            #"{"a": [1, 2]}"#, #"{"a": {"b": 1}}"#, #"{"a": {"$lt": 1, "b": 2}}"#, #"{"$where": 1}"#, #"{"a..b": 1}"#,
            #"{"a\"b": 1}"#, #"{"a\u0000b": 1}"#,
            "{" + (0...MetadataFilter.maxConditions).map { "\"k\($0)\": 1" }.joined(separator: ", ") + "}",
        ]
        for text in cases {
            #expect(throws: MetadataFilter.ParseError.self, "\(text.prefix(40))") { try MetadataFilter(json: text) }
        }
        #expect((try? MetadataFilter(json: #"{"price": {"$near": 1}}"#)) == nil)
        do {
            _ = try MetadataFilter(json: #"{"price": {"$near": 1}}"#)
        } catch {
            #expect("\(error)".contains("price"))
            #expect("\(error)".contains("$near"))
        }
    }
}
