import Foundation
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
enum Vips {
    static let decodeLock = ReadWriteLock()

    private static let started: Bool = lk_vips_init() == 0

    static func start() throws {
        if !started { throw ImagingError.decodeFailed("libvips failed to start") }
    }

    /// Runs a libvips operation that writes an image to `out`, turning failure into an error.
    static func make(_ operation: (inout UnsafeMutablePointer<VipsImage>?) -> Int32) throws -> VipsImageRef {
        var out: UnsafeMutablePointer<VipsImage>?
        let status = operation(&out)
        guard status == 0, let image = out else {
            if let image = out { lk_g_object_unref(image) }
            throw ImagingError.decodeFailed(takeError())
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

/// A readers-writer lock: many shared holders at once, or one exclusive holder.
final class ReadWriteLock: @unchecked Sendable {
    private var lock = pthread_rwlock_t()

    init() {
        pthread_rwlock_init(&lock, nil)
    }

    deinit {
        pthread_rwlock_destroy(&lock)
    }

    func shared<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_rdlock(&lock)
        defer { pthread_rwlock_unlock(&lock) }
        return try body()
    }

    func exclusive<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_wrlock(&lock)
        defer { pthread_rwlock_unlock(&lock) }
        return try body()
    }
}
