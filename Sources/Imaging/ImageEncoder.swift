import CVips

/// Encodes pixels with libvips (thumbnails, and images made by tests and tools).
public enum ImageEncoder {
    /// A baseline JPEG of 8-bit RGB pixels.
    public static func jpeg(_ pixels: Pixels, quality: Int = 85) throws -> [UInt8] {
        try Vips.start()
        guard pixels.rgb.count == pixels.width * pixels.height * 3, pixels.width > 0, pixels.height > 0 else {
            throw ImagingError.decodeFailed("pixel buffer of \(pixels.rgb.count) bytes does not hold \(pixels.width)x\(pixels.height) RGB")
        }
        return try Vips.run { mode in
            let image = try pixels.rgb.withUnsafeBytes { raw in
                guard let made = lk_vips_image_from_pixels(raw.baseAddress, raw.count, Int32(pixels.width), Int32(pixels.height), 3) else {
                    throw Vips.failure(mode)
                }
                return VipsImageRef(made)
            }
            var buffer: UnsafeMutableRawPointer?
            var length = 0
            guard lk_vips_jpeg_save(image.pointer, &buffer, &length, Int32(max(1, min(100, quality)))) == 0, let buffer else {
                throw Vips.failure(mode)
            }
            defer { lk_g_free(buffer) }
            return [UInt8](UnsafeRawBufferPointer(start: buffer, count: length))
        }
    }
}
