/// Limits checked before any pixel is decoded, so a hostile or broken file cannot exhaust memory.
public struct ImageLimits: Sendable, Equatable {
    /// Largest accepted file, in bytes.
    public var maxBytes: Int
    /// Largest accepted image, in pixels (width x height of the first frame).
    public var maxPixels: Int
    /// Longest a decode may run, in seconds; a slower one is stopped and the file refused.
    public var decodeSeconds: Int

    public init(maxBytes: Int = 256 * 1024 * 1024, maxPixels: Int = 100_000_000, decodeSeconds: Int = 15) {
        self.maxBytes = maxBytes
        self.maxPixels = maxPixels
        self.decodeSeconds = max(1, decodeSeconds)
    }

    public static let `default` = ImageLimits()
}
