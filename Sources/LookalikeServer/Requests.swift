import Foundation
import HTTPForms
import Hummingbird
import Lookalike
import NIOCore

/// A JSON request body: its field names, so that unknown ones are refused.
protocol RequestBody: Decodable {
    static var fields: [String] { get }
    /// Fields holding objects (or arrays of them), with the names those objects may have.
    static var nestedFields: [String: [String]] { get }
}

extension RequestBody {
    static var nestedFields: [String: [String]] { [:] }
}

/// Request parsing in one place: bodies by content type within the size limit, JSON with errors
/// that name the field, query strings (`HTTPForms.QueryString`: checked numbers), and content
/// sniffing for served images.
extension LookalikeServer {
    enum Body {
        case json([UInt8])
        case multipart([String: Multipart.Part])
        case image([UInt8])
    }

    /// Reads the body, within the size limit, by its content type.
    func readBody(_ request: Request, allowJSON: Bool) async throws -> Body {
        let type = request.headers[.contentType].map { $0.lowercased() } ?? ""
        let mediaType = type.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        if mediaType == "application/json" && allowJSON {
            return .json(try await collect(request, limit: Self.maxJSONBytes))
        }
        if mediaType == "multipart/form-data" {
            guard let boundary = Multipart.parameter("boundary", in: request.headers[.contentType] ?? "") else {
                throw APIError.badRequest("multipart/form-data without a boundary")
            }
            return .multipart(try Multipart.parts(try await collect(request), boundary: boundary))
        }
        if mediaType.hasPrefix("image/") || mediaType == "application/octet-stream" || mediaType.isEmpty {
            return .image(try await collect(request))
        }
        let accepted = allowJSON ? "image/*, application/octet-stream, multipart/form-data or application/json"
            : "image/*, application/octet-stream or multipart/form-data"
        throw APIError(.unsupportedMediaType, "unsupported_media_type", "cannot read a \(mediaType) body here; send \(accepted)")
    }

    /// A multipart body's part `name`, which must hold something.
    static func part(_ name: String, of parts: [String: Multipart.Part]) throws -> Multipart.Part {
        guard let part = parts[name], !part.bytes.isEmpty else {
            throw APIError.badRequest("the multipart body has no \"\(name)\" part")
        }
        return part
    }

    func readJSONBody(_ request: Request) async throws -> [UInt8] {
        let type = request.headers[.contentType]?.lowercased() ?? ""
        guard type.hasPrefix("application/json") else {
            throw APIError(.unsupportedMediaType, "unsupported_media_type", "send a JSON body (Content-Type: application/json)")
        }
        return try await collect(request, limit: Self.maxJSONBytes)
    }

    /// JSON bodies carry options, filters, marks and paths, never images: 1 MiB is far more than
    /// any needs, and keeps what a parser builds from one small, whatever the body limit.
    static let maxJSONBytes = 1 << 20

    /// The body, within the size limit, chunk by chunk as it arrives; each chunk is taken from
    /// the server's `BodyBudget` first, so bodies cost memory only for what they sent.
    func collect(_ request: Request, limit: Int? = nil) async throws -> [UInt8] {
        let limit = min(limit ?? configuration.maxBodyBytes, configuration.maxBodyBytes)
        let what = limit < configuration.maxBodyBytes ? "a JSON body" : "the request body"
        let tooLarge = APIError.tooLarge("\(what) is over the server's limit of \(limit) bytes")
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > limit { throw tooLarge }
        var bytes: [UInt8] = []
        for try await chunk in request.body {
            guard bytes.count + chunk.readableBytes <= limit else { throw tooLarge }
            try BodyBudget.current?.grow(chunk.readableBytes)
            bytes.append(contentsOf: chunk.readableBytesView)
        }
        return bytes
    }

    /// A body's fields are checked by name before its values: a misspelt option (`"topk": 3`) is
    /// an error naming it, never silently ignored.
    func decodeJSON<T: RequestBody>(_ bytes: [UInt8]) throws -> T {
        if let object = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] {
            try Self.checkFields(object, known: T.fields, at: "")
            for (field, known) in T.nestedFields {
                let values = (object[field] as? [Any]) ?? (object[field].map { [$0] } ?? [])
                for case let nested as [String: Any] in values {
                    try Self.checkFields(nested, known: known, at: field + ".")
                }
            }
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(bytes))
        } catch let error as ImageRegion.Invalid {
            throw error  // answered as bad_region
        } catch let error as DecodingError {
            throw APIError.badRequest(Self.explain(error))
        } catch {
            throw APIError.badRequest("the body is not valid JSON")
        }
    }

    static func checkFields(_ object: [String: Any], known: [String], at path: String) throws {
        guard let unknown = object.keys.sorted().first(where: { !known.contains($0) }) else { return }
        let hint = Spelling.closest(to: unknown, among: known).map { " (did you mean \"\(path)\($0)\"?)" } ?? ""
        throw APIError.badRequest("unknown field \"\(path)\(unknown)\"\(hint); the fields here are \(known.joined(separator: ", "))")
    }

    /// A decoding error as a sentence naming the field.
    static func explain(_ error: DecodingError) -> String {
        func path(_ keys: [CodingKey]) -> String {
            keys.isEmpty ? "the body" : "field \"" + keys.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".") + "\""
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "missing field \"\((context.codingPath + [key]).map(\.stringValue).joined(separator: "."))\""
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            return "\(path(context.codingPath)) must be \(Self.typeName(type))"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "the body is not valid JSON" : "\(path(context.codingPath)) is not valid"
        @unknown default:
            return "the body does not have the expected fields"
        }
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type, is Int64.Type: return "a whole number"
        case is Double.Type, is Float.Type: return "a number"
        case is Bool.Type: return "true or false"
        default: return "an object of the documented form"
        }
    }

    /// The query string's parameters (`QueryString`: decoded as HTML forms encode them).
    static func query(_ request: Request) -> QueryString {
        QueryString(request.uri.query)
    }

    static func contentType(sniffing bytes: [UInt8]) -> String {
        func starts(_ prefix: [UInt8], at offset: Int = 0) -> Bool {
            bytes.count >= offset + prefix.count && Array(bytes[offset..<offset + prefix.count]) == prefix
        }
        if starts([0xFF, 0xD8, 0xFF]) { return "image/jpeg" }
        if starts([0x89, 0x50, 0x4E, 0x47]) { return "image/png" }
        if starts(Array("GIF8".utf8)) { return "image/gif" }
        if starts(Array("RIFF".utf8)) && starts(Array("WEBP".utf8), at: 8) { return "image/webp" }
        if starts(Array("ftypavif".utf8), at: 4) { return "image/avif" }
        if starts(Array("ftyphei".utf8), at: 4) || starts(Array("ftypmif1".utf8), at: 4) { return "image/heic" }
        if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) { return "image/tiff" }
        if starts(Array("BM".utf8)) { return "image/bmp" }
        return "application/octet-stream"
    }
}
