/// Why an image could not be used. Every case carries what a user needs to act on it.
public enum ImagingError: Error, Sendable, Equatable, CustomStringConvertible {
    case emptyFile
    case fileTooLarge(bytes: Int, limit: Int)
    case tooManyPixels(width: Int, height: Int, limit: Int)
    case unsupportedFormat
    /// A format libvips recognises but Lookalike does not decode (SVG, PDF, PSD, ...): their
    /// loaders are not hardened against hostile files. The format's name.
    case refusedFormat(String)
    /// A JPEG of more scans than `ImageLimits.maxJPEGScans`: the count and the limit.
    case tooManyScans(Int, limit: Int)
    /// The decode ran past its deadline (`ImageLimits.decodeSeconds`) and was stopped.
    case decodeTooSlow(seconds: Double)
    case decodeFailed(String)

    public var description: String {
        switch self {
        case .emptyFile:
            return "empty file (0 bytes)"
        case .fileTooLarge(let bytes, let limit):
            return "file is \(bytes) bytes, over the limit of \(limit) bytes"
        case .tooManyPixels(let width, let height, let limit):
            return "image is \(width)x\(height) = \(width * height) pixels, over the limit of \(limit) pixels"
        case .unsupportedFormat:
            return "not an image in a supported format (JPEG, PNG, WebP, GIF, TIFF, HEIC/AVIF, ...)"
        case .refusedFormat(let format):
            return "the file is \(format), which is not accepted (Lookalike decodes JPEG, PNG, WebP, GIF, TIFF and "
                + "HEIC/AVIF only, whatever the file is called)"
        case .tooManyScans(let count, let limit):
            return "the JPEG has \(count) scans, over the limit of \(limit) (a file built to be slow to decode; photos have at most a few dozen)"
        case .decodeTooSlow(let seconds):
            return "decoding took longer than \(String(format: "%g", seconds)) s and was stopped (a file built to be slow, or one too large for this machine)"
        case .decodeFailed(let message):
            return "cannot decode image: \(message)"
        }
    }
}
