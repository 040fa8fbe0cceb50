/// Limits checked before any pixel is decoded, so a hostile or broken file cannot exhaust memory.
public struct ImageLimits: Sendable, Equatable {
    /// Largest accepted file, in bytes.
    public var maxBytes: Int
    /// Largest accepted image, in pixels (width x height of the first frame).
    public var maxPixels: Int
    /// Longest a decode may run, in seconds (at least a millisecond, at most a day); a slower one
    /// is stopped and the file refused.
    public var decodeSeconds: Double

    /// Most scans a JPEG may have. Baseline JPEGs have one, progressive ones about ten (libjpeg's
    /// default script) to a few dozen: 500 leaves room for any encoder's script.
    public var maxJPEGScans: Int

    public init(maxBytes: Int = 256 * 1024 * 1024, maxPixels: Int = 100_000_000, decodeSeconds: Double = 15, maxJPEGScans: Int = 500) {
        self.maxJPEGScans = max(1, maxJPEGScans)
        self.maxBytes = maxBytes
        self.maxPixels = maxPixels
        self.decodeSeconds = decodeSeconds.isFinite ? min(86_400, max(0.001, decodeSeconds)) : 86_400
    }

    public static let `default` = ImageLimits()
}
