import Foundation
import Imaging

/// Reads a whole file with POSIX calls, so a failure says exactly why (permission denied, is a
/// directory, ...) and an oversized file is refused from its size before any byte is read.
enum FileReader {
    /// With `confinement`, the file actually opened (whatever links led to it, and whenever they
    /// were changed) must lie inside its roots: the check is made on the open descriptor.
    static func read(_ path: String, maxBytes: Int, confinement: PathConfinement? = nil) throws -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)  // a FIFO must not block us
        guard descriptor >= 0 else { throw IngestError.unreadable(reason: String(cString: strerror(errno)).lowercased()) }
        defer { close(descriptor) }
        if let confinement, !confinement.allows(descriptorPath(descriptor) ?? "") {
            throw IngestError.outsideRoots
        }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw IngestError.unreadable(reason: String(cString: strerror(errno)).lowercased()) }
        guard (status.st_mode & S_IFMT) == S_IFREG else { throw IngestError.notARegularFile }
        let size = Int(status.st_size)
        if size == 0 { throw ImagingError.emptyFile }
        if size > maxBytes { throw ImagingError.fileTooLarge(bytes: size, limit: maxBytes) }
        var bytes = [UInt8](repeating: 0, count: size)
        var offset = 0
        while offset < size {
            let count = bytes.withUnsafeMutableBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return Foundation.read(descriptor, base + offset, size - offset)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw IngestError.unreadable(reason: String(cString: strerror(errno)).lowercased())
            }
            if count == 0 { break }
            offset += count
        }
        return offset == size ? bytes : Array(bytes.prefix(offset))
    }

    /// The real path of an open file (Linux: the /proc/self/fd link).
    private static func descriptorPath(_ descriptor: Int32) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/fd/\(descriptor)", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
