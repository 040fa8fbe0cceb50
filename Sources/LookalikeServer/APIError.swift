import Foundation
import HTTPForms
import Hummingbird
import Lookalike
import NIOCore

/// An error answered to a client: an HTTP status, a stable code for programs, and a message for
/// people. Nothing else of an error (no stack, no internal type names) reaches a client.
public struct APIError: Error, HTTPResponseError, Sendable, CustomStringConvertible {
    public let status: HTTPResponse.Status
    public let code: String
    public let message: String
    /// Extra response headers (Retry-After for `busy`, WWW-Authenticate for `unauthorized`).
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = JSON.response(["error": ["code": code, "message": message]], status: status)
        response.headers.append(contentsOf: headers)
        return response
    }

    static func badRequest(_ message: String) -> APIError { APIError(.badRequest, "bad_request", message) }
    static func notFound(_ message: String) -> APIError { APIError(.notFound, "not_found", message) }
    static func tooLarge(_ message: String) -> APIError { APIError(.contentTooLarge, "too_large", message) }
    /// The PostgreSQL store cannot be reached: retry once it is back.
    static func storeUnavailable(_ message: String) -> APIError {
        var error = APIError(.serviceUnavailable, "store_unavailable", message)
        error.headers = [.retryAfter: "5"]
        return error
    }

    /// The client-facing form of an error thrown while handling a request.
    static func from(_ error: Error) -> APIError? {
        switch error {
        case let error as APIError:
            return error
        case let error as ImagingError:
            switch error {
            case .fileTooLarge, .tooManyPixels: return APIError(.contentTooLarge, "too_large", error.description)
            case .emptyFile, .unsupportedFormat, .refusedFormat, .tooManyScans, .decodeTooSlow, .decodeFailed: return APIError(.unprocessableContent, "bad_image", error.description)
            }
        case let error as EngineError:
            switch error {
            case .unknownItem: return APIError(.notFound, "not_found", error.description)
            case .noVector: return APIError(.badRequest, "unknown_model", error.description)
            case .incompatibleVectors: return nil
            case .noDuplicateThreshold, .noTextEncoder, .badExamples, .badOption: return .badRequest(error.description)
            case .regionNeedsImage: return APIError(.badRequest, "bad_region", error.description)
            }
        case let error as MetadataFilter.ParseError:
            return APIError(.badRequest, "bad_filter", error.description)
        case let error as FormError:
            return .badRequest(error.message)
        case let error as ImageRegion.Invalid:
            return APIError(.badRequest, "bad_region", error.reason)
        case is NIOTooManyBytesError:
            return .tooLarge("the request body is over the server's limit")
        case let error as PostgresStoreError where error.isUnavailable:
            return .storeUnavailable(error.description)
        case let error as HTTPError:
            switch error.status {
            case .contentTooLarge: return .tooLarge("the request body is over the server's limit")
            case .notFound: return .notFound("no such endpoint")
            case .methodNotAllowed: return APIError(.methodNotAllowed, "method_not_allowed", "method not allowed here")
            case .badRequest: return .badRequest(error.body ?? "bad request")
            default: return nil
            }
        default:
            return nil
        }
    }
}

/// Turns every error into a JSON error response; unexpected ones are logged with their detail and
/// answered with a generic 500.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            if let api = APIError.from(error) {
                return try api.response(from: request, context: context)
            }
            context.logger.error("internal error on \(request.method) \(request.uri.path): \(error)")
            return try APIError(.internalServerError, "internal", "the server failed to handle this request; its log has the details")
                .response(from: request, context: context)
        }
    }
}

/// JSON bodies made from plain dictionaries and arrays (JSONSerialization keeps `null`s and
/// arbitrary metadata objects as they are).
enum JSON {
    static func data(_ object: Any) -> Data {
        (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    }

    static func response(_ object: Any, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8"],
                 body: ResponseBody(byteBuffer: ByteBuffer(bytes: data(object))))
    }

    /// A metadata text as a JSON object (or NSNull when absent or not an object).
    static func object(_ text: String?) -> Any {
        Metadata.object(text) ?? NSNull()
    }
}
