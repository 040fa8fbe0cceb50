/// Limits checked before any pixel is decoded, so a hostile or broken file cannot exhaust memory.
public struct ImageLimits: Sendable, Equatable {
    /// Largest accepted file, in bytes.
    public var maxBytes: Int
    /// Largest accepted image, in pixels (width x height of the first frame).
    public var maxPixels: Int

    public init(maxBytes: Int = 256 * 1024 * 1024, maxPixels: Int = 100_000_000) {
        self.maxBytes = maxBytes
        self.maxPixels = maxPixels
    }

    public static let `default` = ImageLimits()
}
