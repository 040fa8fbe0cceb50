import Foundation
import Testing
@testable import Catalog

@Suite("Metadata filters")
struct MetadataFilterTests {
    @Test("malformed filters name the field and the reason")
    func malformed() {
        let cases = [
            "[1]", "not json", #"{"a": {"$near": 1}}"#, #"{"a": {"$lt": true}}"#, #"{"a": {"$in": 3}}"#, #"{"a": {"$exists": 1}}"#,
            #"{"a": [1, 2]}"#, #"{"a": {"b": 1}}"#, #"{"a": {"$lt": 1, "b": 2}}"#, #"{"$where": 1}"#, #"{"a..b": 1}"#,
            #"{"a\"b": 1}"#, #"{"a\u0000b": 1}"#, #"{"$color": "reddish"}"#, #"{"$color": 3}"#, #"{"$color": {"red": "a lot"}}"#,
            #"{"$color": {"red": {"$eq": 0.2}}}"#, #"{"$color": {}}"#, #"{"$color": [1]}"#,
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
        do {
            _ = try MetadataFilter(json: #"{"$color": "reddish"}"#)
        } catch {
            #expect("\(error)".contains("$color") && "\(error)".contains("reddish") && "\(error)".contains("purple"), "\(error)")
        }
    }
}
