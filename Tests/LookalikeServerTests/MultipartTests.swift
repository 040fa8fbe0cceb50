import Foundation
import HTTPForms
import Testing

@Suite("multipart/form-data reader")
struct MultipartTests {
    func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test("parts by name, binary content kept byte for byte, preamble and padding tolerated")
    func wellFormed() throws {
        let binary: [UInt8] = [0, 0xFF, 0x0D, 0x0A, 0x2D, 0x2D, 0x42, 0x80, 0x0D]  // CRLF and "--B" inside content
        let body = bytes("preamble\r\n--XyZ  \r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n"
                         + "Content-Type: image/jpeg\r\n\r\n") + binary
            + bytes("\r\n--XyZ\r\nContent-Disposition: form-data; name=options\r\n\r\n{\"top\": 3}\r\n--XyZ\r\n\r\nheaderless\r\n--XyZ--\r\nepilogue")
        let parts = try Multipart.parts(body, boundary: "XyZ")
        #expect(parts["image"] == Multipart.Part(bytes: binary, filename: "a.jpg"))
        #expect(parts["options"] == Multipart.Part(bytes: bytes("{\"top\": 3}"), filename: nil))
        #expect(parts.count == 2)
        #expect(try Multipart.parts(bytes("--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\r\n--B--"), boundary: "B")["a"]?.bytes == [])
    }

    @Test("malformed bodies are errors, never crashes: non-ASCII headers, missing delimiters, truncation")
    func malformed() {
        let cases: [(String, [UInt8])] = [
            ("a header byte above 0x7F", bytes("--B\r\n") + [0xC3, 0xAF] + bytes("--B--\r\n")),
            ("non-ASCII header line", bytes("--B\r\nContent-Disposition: form-data; name=\"") + [0xFF] + bytes("\"\r\n\r\nx\r\n--B--")),
            ("no boundary at all", bytes("hello")),
            ("unclosed part", bytes("--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nnever closed")),
            ("headers without an end", bytes("--B\r\nContent-Disposition: form-data")),
            ("boundary not followed by a line break", bytes("--Bxx")),
            ("empty body", []),
            ("header line without colon", bytes("--B\r\nnonsense\r\n\r\nx\r\n--B--")),
        ]
        for (label, body) in cases {
            #expect(throws: FormError.self, "\(label)") { try Multipart.parts(body, boundary: "B") }
        }
        #expect(throws: FormError.self) { try Multipart.parts(bytes("--\r\n"), boundary: "") }
        #expect(throws: FormError.self) { try Multipart.parts(bytes("x"), boundary: String(repeating: "b", count: 71)) }
    }

    @Test("the substring search finds the first match in linear time, also in long runs of near-matches")
    func search() {
        #expect(Multipart.search(bytes("abab"), in: bytes("xxabaabababx"), from: 0) == 5)
        #expect(Multipart.search(bytes("abc"), in: bytes("abc"), from: 1) == nil)
        #expect(Multipart.search(bytes("a"), in: [], from: 0) == nil)
        let long = [UInt8](repeating: 0x2D, count: 2_000_000) + bytes("--B!")
        #expect(Multipart.search(bytes("\r\n--B"), in: long, from: 0) == nil)
        #expect(Multipart.search(bytes("--B!"), in: long, from: 0) == 2_000_000)
    }
}
