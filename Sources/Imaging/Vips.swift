import Foundation
import LookalikeSupport
import CVips

/// An owned reference to a libvips image, released when the last Swift reference goes.
final class VipsImageRef {
    let pointer: UnsafeMutablePointer<VipsImage>

    init(_ pointer: UnsafeMutablePointer<VipsImage>) {
        self.pointer = pointer
    }

    deinit {
        lk_g_object_unref(pointer)
    }
}

/// Process-wide libvips start-up and error handling.
///
/// libvips keeps one error buffer for the whole process, and some failures (a truncated JPEG)
/// show up only there while pixels still come back. So decodes run `shared` (many at once, under a
/// shared lock) and never read or clear the buffer; any failure, or an error pending afterwards,
/// sends the image to a second run `alone` (exclusive lock), where the buffer is cleared first and
/// every message in it is this image's own.
enum Vips {
    enum Mode {
        case shared
        case alone
    }

    /// Thrown in shared mode when a libvips call failed: the caller redoes the work alone.
    struct RetryAlone: Error {}

    static let decodeLock = ReaderWriterLock()

    /// Runs `body` shared, and again alone when libvips failed or left an error pending. With
    /// `alone`, only alone: for images whose loader always leaves an error pending (libheif's
    /// header probe leaves "bad seek"), which a shared run would only repeat.
    static func run<T>(alone: Bool = false, _ body: (Mode) throws -> T) throws -> T {
        let shared: T? = alone ? nil : try decodeLock.reading {
            do {
                let result = try body(.shared)
                return lk_vips_has_error() != 0 ? nil : result
            } catch is RetryAlone {
                return nil
            }
        }
        if let shared { return shared }
        return try decodeLock.writing {
            clearError()
            defer { clearError() }
            return try body(.alone)
        }
    }

    /// The error for a failed libvips call: the message when alone, a retry request when shared.
    static func failure(_ mode: Mode) -> Error {
        mode == .alone ? ImagingError.decodeFailed(takeError()) : RetryAlone()
    }

    private static let started: Bool = lk_vips_init() == 0

    static func start() throws {
        if !started { throw ImagingError.decodeFailed("libvips failed to start") }
    }

    /// Runs a libvips operation that writes an image to `out`, turning failure into an error.
    static func make(_ mode: Mode, _ operation: (inout UnsafeMutablePointer<VipsImage>?) -> Int32) throws -> VipsImageRef {
        var out: UnsafeMutablePointer<VipsImage>?
        let status = operation(&out)
        guard status == 0, let image = out else {
            if let image = out { lk_g_object_unref(image) }
            throw failure(mode)
        }
        return VipsImageRef(image)
    }

    /// The pending libvips error message, tidied to one line.
    static func takeError() -> String {
        var buffer = [CChar](repeating: 0, count: 1024)
        lk_vips_take_error(&buffer, buffer.count)
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return lines.isEmpty ? "unknown libvips error" : lines.joined(separator: "; ")
    }

    static func clearError() {
        var buffer = [CChar](repeating: 0, count: 16)
        lk_vips_take_error(&buffer, buffer.count)
    }
}
