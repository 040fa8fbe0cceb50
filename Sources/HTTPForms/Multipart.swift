import Foundation

/// A reader of multipart/form-data bodies (RFC 7578): parts by their `name`, nothing else.
///
/// Our own, small and strict, because the multipart parser we first used crashed the process on a
/// header byte above 0x7F. Headers must be ASCII, every part must be closed by a delimiter, and
/// the closing delimiter must come. Every malformed body is a thrown `FormError`, never a crash
/// (fuzzed: `scripts/fuzz.sh`).
public enum Multipart {
    public struct Part: Equatable, Sendable {
        public var bytes: [UInt8]
        /// The `filename` of the part's Content-Disposition, if any.
        public var filename: String?

        public init(bytes: [UInt8], filename: String?) {
            self.bytes = bytes
            self.filename = filename
        }
    }

    public static func parts(_ body: [UInt8], boundary: String) throws(FormError) -> [String: Part] {
        guard (1...70).contains(boundary.utf8.count), boundary.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
            throw malformed("the boundary must be 1 to 70 printable ASCII characters")
        }
        let delimiter = Array("--\(boundary)".utf8)
        let separator = Array("\r\n--\(boundary)".utf8)
        // The first delimiter starts the body or follows a CRLF (anything before it is preamble).
        var position: Int
        if body.starts(with: delimiter) {
            position = delimiter.count
        } else if let found = search(separator, in: body, from: 0) {
            position = found + separator.count
        } else {
            throw malformed("no part starts with the boundary")
        }
        var parts: [String: Part] = [:]
        while true {
            // After a delimiter: "--" ends the body; otherwise optional padding, then CRLF.
            if body.count >= position + 2, body[position] == 0x2D, body[position + 1] == 0x2D { return parts }
            while position < body.count, body[position] == 0x20 || body[position] == 0x09 { position += 1 }
            guard body.count >= position + 2, body[position] == 0x0D, body[position + 1] == 0x0A else {
                throw malformed("a boundary line is not followed by a line break")
            }
            position += 2
            // The headers end at an empty line; a part without headers starts with it.
            let headerEnd: Int
            if body.count >= position + 2, body[position] == 0x0D, body[position + 1] == 0x0A {
                headerEnd = position - 2
            } else if let found = search([0x0D, 0x0A, 0x0D, 0x0A], in: body, from: position) {
                headerEnd = found
            } else {
                throw malformed("a part's headers do not end with an empty line")
            }
            let (name, filename) = try disposition(headers: headerEnd > position ? Array(body[position..<headerEnd]) : [])
            let contentStart = headerEnd + 4
            guard let contentEnd = search(separator, in: body, from: contentStart) else {
                throw malformed("a part is not closed by the boundary")
            }
            if let name, parts[name] == nil { parts[name] = Part(bytes: Array(body[contentStart..<contentEnd]), filename: filename) }
            position = contentEnd + separator.count
        }
    }

    /// The `name` and `filename` of a part from its header lines (ASCII only).
    private static func disposition(headers: [UInt8]) throws(FormError) -> (name: String?, filename: String?) {
        guard headers.allSatisfy({ $0 < 0x80 }) else { throw malformed("a part's headers are not ASCII") }
        let text = String(decoding: headers, as: UTF8.self)
        for line in text.split(separator: "\r\n", omittingEmptySubsequences: true) {
            let pair = line.split(separator: ":", maxSplits: 1)
            guard pair.count == 2 else { throw malformed("a part's header line has no colon") }
            if pair[0].trimmingCharacters(in: .whitespaces).lowercased() == "content-disposition" {
                let value = "form-data; " + String(pair[1])
                return (parameter("name", in: value), parameter("filename", in: value))
            }
        }
        return (nil, nil)
    }

    /// The first index of `pattern` in `bytes` at or after `start` (Knuth-Morris-Pratt: linear time
    /// whatever the body holds).
    public static func search(_ pattern: [UInt8], in bytes: [UInt8], from start: Int) -> Int? {
        guard !pattern.isEmpty, start >= 0, bytes.count - start >= pattern.count else { return nil }
        var failure = [Int](repeating: 0, count: pattern.count)
        var k = 0
        for i in 1..<pattern.count {
            while k > 0 && pattern[i] != pattern[k] { k = failure[k - 1] }
            if pattern[i] == pattern[k] { k += 1 }
            failure[i] = k
        }
        var matched = 0
        for i in start..<bytes.count {
            while matched > 0 && bytes[i] != pattern[matched] { matched = failure[matched - 1] }
            if bytes[i] == pattern[matched] { matched += 1 }
            if matched == pattern.count { return i - pattern.count + 1 }
        }
        return nil
    }

    /// A parameter of a header value such as `multipart/form-data; boundary="x"` (unquoted).
    public static func parameter(_ name: String, in header: String) -> String? {
        for part in header.split(separator: ";").dropFirst() {
            let pair = part.split(separator: "=", maxSplits: 1)
            if pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces).lowercased() == name {
                let value = pair[1].trimmingCharacters(in: .whitespaces)
                return value.hasPrefix("\"") && value.hasSuffix("\"") && value.count >= 2 ? String(value.dropFirst().dropLast()) : value
            }
        }
        return nil
    }

    private static func malformed(_ reason: String) -> FormError {
        FormError("the multipart body is malformed: \(reason)")
    }
}
