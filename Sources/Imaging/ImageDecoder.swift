import CVips

/// Turns encoded image bytes into model-ready pixels with libvips.
///
/// What it does, in order: recognises the format from the bytes (not the file name); reads the
/// header only and refuses images over the pixel limit before decoding anything; decodes with
/// shrink-on-load (a JPEG is decoded at 1/2, 1/4 or 1/8 scale when that is enough); applies the
/// EXIF orientation; converts CMYK, ICC-tagged, 16-bit and grayscale images to 8-bit sRGB;
/// flattens transparency onto `background`; and sizes the result per the `ResizePolicy`.
/// Animated images give their first frame. Truncated or corrupt files are errors, not partial images.
///
/// ```swift
/// let decoder = ImageDecoder()
/// let pixels = try decoder.decode(bytes, policy: .shorterSide(size: 224, maxLonger: 896))
/// ```
public struct ImageDecoder: Sendable {
    public var limits: ImageLimits
    /// The colour transparent pixels are laid on: white, as product photos on the web expect.
    public var background: (red: UInt8, green: UInt8, blue: UInt8)

    public init(limits: ImageLimits = .default, background: (red: UInt8, green: UInt8, blue: UInt8) = (255, 255, 255)) {
        self.limits = limits
        self.background = background
    }

    /// Reads the header only: the upright size and the format. Checks the byte and pixel limits.
    public func info(_ bytes: [UInt8]) throws -> ImageInfo {
        try Vips.start()
        try checkSize(bytes)
        return try bytes.withUnsafeBytes { (buffer) throws -> ImageInfo in
            try header(buffer)
        }
    }

    /// Decodes `bytes` and sizes the image for a model.
    public func decode(_ bytes: [UInt8], policy: ResizePolicy) throws -> Pixels {
        try load(bytes, policy: policy).pixels
    }

    /// Decodes `bytes`, sizes the image for a model, and tells the original upright size too.
    ///
    /// libvips reports some decode failures (a truncated JPEG, say) only through its process-wide
    /// error buffer while still returning pixels. Decodes therefore run under a shared lock; when
    /// the buffer shows an error afterwards, the image is decoded again alone (exclusive lock), so
    /// the error is attributed to the image that caused it and never to a neighbour.
    public func load(_ bytes: [UInt8], policy: ResizePolicy) throws -> (info: ImageInfo, pixels: Pixels) {
        try Vips.start()
        try checkSize(bytes)
        let unsuspected = try Vips.decodeLock.shared { () throws -> (info: ImageInfo, pixels: Pixels)? in
            let result = try load(bytes, policy: policy, alone: false)
            return lk_vips_has_error() != 0 ? nil : result
        }
        if let result = unsuspected { return result }
        return try Vips.decodeLock.exclusive {
            defer { Vips.clearError() }
            return try load(bytes, policy: policy, alone: true)
        }
    }

    /// With `alone` (no other decode running), a libvips error raised while the pixels are computed
    /// fails this image. Errors raised earlier, while probing the header, are harmless (libheif
    /// probes past the end of a buffer, for one) and are ignored.
    private func load(_ bytes: [UInt8], policy: ResizePolicy, alone: Bool) throws -> (info: ImageInfo, pixels: Pixels) {
        try bytes.withUnsafeBytes { (buffer) throws -> (info: ImageInfo, pixels: Pixels) in
            let info = try header(buffer)
            let target = policy.targetSize(width: info.width, height: info.height)
            var crop: Int32 = 0
            if case .centerCrop = policy { crop = 1 }
            let thumbnail = try Vips.make { out in
                lk_vips_thumbnail(buffer.baseAddress, buffer.count, &out, Int32(target.width), Int32(target.height), crop)
            }
            let exact = try exactSize(thumbnail, width: target.width, height: target.height)
            return (info, try rgb8(exact, alone: alone))
        }
    }

    /// Decodes `bytes` at full size (upright, sRGB, flattened), for tools and tests.
    public func decodeFullSize(_ bytes: [UInt8]) throws -> Pixels {
        let info = try info(bytes)
        return try decode(bytes, policy: .shorterSide(size: min(info.width, info.height), maxLonger: max(info.width, info.height)))
    }

    private func checkSize(_ bytes: [UInt8]) throws {
        if bytes.isEmpty { throw ImagingError.emptyFile }
        if bytes.count > limits.maxBytes { throw ImagingError.fileTooLarge(bytes: bytes.count, limit: limits.maxBytes) }
    }

    private func header(_ buffer: UnsafeRawBufferPointer) throws -> ImageInfo {
        guard let loader = lk_vips_find_loader(buffer.baseAddress, buffer.count) else {
            Vips.clearError()
            throw ImagingError.unsupportedFormat
        }
        guard let image = lk_vips_header_from_buffer(buffer.baseAddress, buffer.count) else {
            throw ImagingError.decodeFailed(Vips.takeError())
        }
        defer { lk_g_object_unref(image) }
        let storedWidth = Int(vips_image_get_width(image))
        let storedHeight = Int(vips_image_get_height(image))
        if storedWidth * storedHeight > limits.maxPixels {
            throw ImagingError.tooManyPixels(width: storedWidth, height: storedHeight, limit: limits.maxPixels)
        }
        let swapsSides = lk_vips_orientation(image) >= 5
        return ImageInfo(
            width: swapsSides ? storedHeight : storedWidth,
            height: swapsSides ? storedWidth : storedHeight,
            format: String(cString: loader)
        )
    }

    /// libvips' thumbnail fits the box and may round a side one pixel off; a last tiny resize
    /// makes the size exactly the policy's, so the same image always gives the same tensor shape.
    private func exactSize(_ image: VipsImageRef, width: Int, height: Int) throws -> VipsImageRef {
        let currentWidth = Int(vips_image_get_width(image.pointer))
        let currentHeight = Int(vips_image_get_height(image.pointer))
        if currentWidth == width && currentHeight == height { return image }
        return try Vips.make { out in
            lk_vips_resize(image.pointer, &out, Double(width) / Double(currentWidth), Double(height) / Double(currentHeight))
        }
    }

    private func rgb8(_ image: VipsImageRef, alone: Bool) throws -> Pixels {
        var current = try Vips.make { out in lk_vips_colourspace_srgb(image.pointer, &out) }
        if vips_image_hasalpha(current.pointer) != 0 {
            let source = current
            current = try Vips.make { out in
                lk_vips_flatten(source.pointer, &out, Double(background.red), Double(background.green), Double(background.blue))
            }
        }
        let flattened = current
        current = try Vips.make { out in lk_vips_cast_uchar(flattened.pointer, &out) }
        if vips_image_get_bands(current.pointer) != 3 {
            let source = current
            current = try Vips.make { out in lk_vips_extract_bands(source.pointer, &out, 0, 3) }
        }
        let width = Int(vips_image_get_width(current.pointer))
        let height = Int(vips_image_get_height(current.pointer))
        var size = 0
        if alone { Vips.clearError() }
        guard let memory = vips_image_write_to_memory(current.pointer, &size) else {
            throw ImagingError.decodeFailed(Vips.takeError())
        }
        defer { lk_g_free(memory) }
        if alone && lk_vips_has_error() != 0 { throw ImagingError.decodeFailed(Vips.takeError()) }
        guard size == width * height * 3 else {
            throw ImagingError.decodeFailed("unexpected pixel buffer of \(size) bytes for \(width)x\(height) RGB")
        }
        let rgb = [UInt8](UnsafeRawBufferPointer(start: memory, count: size))
        return Pixels(width: width, height: height, rgb: rgb)
    }
}
