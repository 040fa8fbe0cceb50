import CVips
import Foundation

/// The SHA-256 of a file's bytes, as lowercase hex: how Lookalike recognises the same file twice.
public enum ContentHash {
    public static func sha256(_ bytes: [UInt8]) -> String {
        var out = [CChar](repeating: 0, count: 65)
        bytes.withUnsafeBytes { buffer in
            lk_sha256_hex(buffer.baseAddress, buffer.count, &out)
        }
        return String(decoding: out.prefix(64).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The SHA-256 of a whole file (a model, say), read through a memory map, without a copy.
    public static func sha256(fileAt path: String) throws -> String {
        let data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)
        var out = [CChar](repeating: 0, count: 65)
        data.withUnsafeBytes { buffer in
            lk_sha256_hex(buffer.baseAddress, buffer.count, &out)
        }
        return String(decoding: out.prefix(64).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
