/// A decoded image: 8-bit sRGB, three interleaved channels (RGB), rows top to bottom.
public struct Pixels: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// `width * height * 3` bytes.
    public let rgb: [UInt8]

    public init(width: Int, height: Int, rgb: [UInt8]) {
        precondition(rgb.count == width * height * 3, "pixel buffer does not match its size")
        self.width = width
        self.height = height
        self.rgb = rgb
    }
}

/// The size of an image as stored and as shown (after its EXIF orientation).
public struct ImageInfo: Sendable, Equatable {
    /// Width as the viewer sees it, after EXIF rotation.
    public let width: Int
    /// Height as the viewer sees it, after EXIF rotation.
    public let height: Int
    /// The libvips loader that recognised the bytes, e.g. `VipsForeignLoadJpegBuffer`.
    public let format: String
    /// The EXIF orientation (1: stored upright).
    public let orientation: Int

    public init(width: Int, height: Int, format: String, orientation: Int = 1) {
        self.width = width
        self.height = height
        self.format = format
        self.orientation = orientation
    }

    /// Whether the bytes are a JPEG (which libvips can shrink while decoding).
    public var isJPEG: Bool { Self.isJPEG(loader: format) }
    /// Whether a libvips loader is a JPEG one.
    static func isJPEG(loader: String) -> Bool { loader.hasPrefix("VipsForeignLoadJpeg") }
    /// Whether the bytes are a WebP (which libvips can scale while decoding).
    public var isWebP: Bool { format.hasPrefix("VipsForeignLoadWebp") }
}
