import CVips

/// Turns encoded image bytes into model-ready pixels with libvips.
///
/// What it does, in order: recognises the format from the bytes (not the file name); reads the
/// header only and refuses images over the pixel limit before decoding anything; decodes with
/// shrink-on-load (see `loaderOptions`); applies the EXIF orientation; converts CMYK, ICC-tagged,
/// 16-bit and grayscale images to 8-bit sRGB; flattens transparency onto `background`; and
/// resizes with a cubic kernel to the `ResizePolicy`'s size.
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

    /// The libvips loaders a decode may use, whoever asks (CLI, server, evaluation): the formats
    /// photos come in, read by libraries fuzzed for hostile input. The format is told by the
    /// bytes, so a file named `.jpg` that is really SVG, PDF or PSD is refused before any of it
    /// reaches librsvg, poppler or ImageMagick.
    public static let acceptedLoaders: Set<String> = [
        "VipsForeignLoadJpegBuffer", "VipsForeignLoadPngBuffer", "VipsForeignLoadSpngBuffer",
        "VipsForeignLoadWebpBuffer", "VipsForeignLoadNsgifBuffer", "VipsForeignLoadGifBuffer",
        "VipsForeignLoadTiffBuffer", "VipsForeignLoadHeifBuffer",
    ]

    /// A person's name for the format a libvips loader reads (`VipsForeignLoadSvgBuffer`: SVG).
    static func formatName(loader: String) -> String {
        let kind = loader.replacingOccurrences(of: "VipsForeignLoad", with: "").replacingOccurrences(of: "Buffer", with: "")
        let names = ["Svg": "SVG", "Pdf": "PDF", "Magick": "in a format only ImageMagick reads (PSD, BMP, ICO, ...)",
                     "Magick7": "in a format only ImageMagick reads (PSD, BMP, ICO, ...)", "Jp2k": "JPEG 2000", "Jxl": "JPEG XL",
                     "Rad": "Radiance HDR", "Fits": "FITS", "Openslide": "a slide scan (OpenSlide)", "Matrix": "a vips matrix",
                     "Csv": "CSV", "Ppm": "PPM", "Vips": "a vips image", "Analyze": "Analyze"]
        return names[kind] ?? kind.uppercased()
    }

    /// Reads the header only: the upright size and the format. Checks the byte and pixel limits.
    public func info(_ bytes: [UInt8]) throws -> ImageInfo {
        try Vips.start()
        try checkSize(bytes)
        return try Vips.run(alone: Self.probesLoudly(bytes)) { mode in
            try bytes.withUnsafeBytes { buffer in try header(buffer, mode) }
        }
    }

    /// Whether reading the header leaves an error in libvips' process-wide buffer even when all is
    /// well: libheif (HEIC, AVIF) probes past the end of the bytes ("source: bad seek"). Such an
    /// image is decoded alone at once; run shared first, every one was decoded twice (a 12 MP HEIC
    /// took 1.1 s to add instead of 0.5 s).
    ///
    /// Told by the bytes alone (an ISO-BMFF `ftyp` box first, as in every HEIF file), without
    /// asking libvips: a libvips call here, outside `Vips.run`'s lock, could leave an error in the
    /// buffer while another image is decoded alone.
    static func probesLoudly(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 12 && bytes[4] == 0x66 && bytes[5] == 0x74 && bytes[6] == 0x79 && bytes[7] == 0x70  // "ftyp"
    }

    /// Decodes `bytes` and sizes the image for a model; with a `region`, only that part of the
    /// upright image is used (region search).
    public func decode(_ bytes: [UInt8], policy: ResizePolicy, region: ImageRegion? = nil) throws -> Pixels {
        try load(bytes, policy: policy, region: region).pixels
    }

    /// Decodes `bytes`, sizes the image (or its `region`) for a model, and tells the original
    /// upright size too.
    public func load(_ bytes: [UInt8], policy: ResizePolicy, region: ImageRegion? = nil) throws -> (info: ImageInfo, pixels: Pixels) {
        try Vips.start()
        try checkSize(bytes)
        return try Vips.run(alone: Self.probesLoudly(bytes)) { mode in
            try bytes.withUnsafeBytes { buffer in try load(buffer, policy: policy, region: region, mode) }
        }
    }

    /// A JPEG that fits in a square of `size` pixels (never enlarged), upright and in sRGB.
    public func thumbnailJPEG(_ bytes: [UInt8], size: Int, quality: Int = 82) throws -> [UInt8] {
        let info = try info(bytes)
        let side = max(1, min(size, max(info.width, info.height)))
        return try ImageEncoder.jpeg(try decode(bytes, policy: .shorterSide(size: side, maxLonger: side)), quality: quality)
    }

    private func load(_ buffer: UnsafeRawBufferPointer, policy: ResizePolicy, region: ImageRegion?, _ mode: Vips.Mode) throws -> (info: ImageInfo, pixels: Pixels) {
        let info = try header(buffer, mode)
        // Shrink-on-load is planned for the part that is kept.
        let kept = region.map { ImageInfo(width: max(1, Int(Double(info.width) * $0.width)),
                                          height: max(1, Int(Double(info.height) * $0.height)), format: info.format,
                                          orientation: info.orientation) } ?? info
        let target = policy.targetSize(width: kept.width, height: kept.height)
        var options = Self.loaderOptions(info: kept, target: target)
        // An upright image is decoded as it streams through the pipeline, top to bottom: a
        // 50-megapixel PNG is never held whole, and the decode's deadline (`decodeSeconds`) can
        // stop it between rows. Turning or flipping needs the whole image at once. Not JPEG: it
        // shrinks while it decodes, so it is never held large, and streaming it cost 5 ms more
        // per 1 MP photo (33 ms to 38 ms from bytes to ranked hits, same store, same server).
        if info.orientation == 1 && !info.isJPEG { options += (options.isEmpty ? "" : ",") + "access=sequential" }
        guard let opened = lk_vips_load(buffer.baseAddress, buffer.count, options) else {
            throw Vips.failure(mode)
        }
        let loaded = VipsImageRef(opened)
        var upright = try Vips.make(mode) { out in lk_vips_autorot(loaded.pointer, &out) }
        if let region {
            let whole = upright
            let (width, height) = (Int(vips_image_get_width(whole.pointer)), Int(vips_image_get_height(whole.pointer)))
            let box = region.pixels(width: width, height: height)
            upright = try Vips.make(mode) { out in
                lk_vips_crop(whole.pointer, &out, Int32(box.x), Int32(box.y), Int32(box.width), Int32(box.height))
            }
        }
        let rgb = try srgb8(upright, mode)
        let sized = try resize(rgb, policy: policy, target: target, mode)
        return (info, try pixels(sized, mode))
    }

    /// Shrink-on-load: a JPEG is decoded at 1/2, 1/4 or 1/8 scale in the DCT domain (a WebP at any
    /// scale), which is much faster for large photos. The factor leaves at least 2x for the final
    /// cubic reduction, so the result embeds like a full decode. Measured on a 1365x1074 photo,
    /// embedding cosine against the full-decode reference: 0.999 leaving 2x, 0.993 leaving 1.2x,
    /// 0.983 with libvips' thumbnail.
    ///
    /// Halving is the exception: libjpeg halves with a 4x4 inverse DCT, nearly as sharp as a full
    /// decode, so it is used whenever it leaves 1.5x. That is a 1 MP photo (1152x864 to 299x224,
    /// 1.9x left): decoded at 576x432, it costs a third of the decode and the cubic reduce of the
    /// whole megapixel. Against the full-decode reference, 40 photos of 1152x864: cosine mean 0.9993,
    /// minimum 0.9981 (0.9998 and 0.9992 decoded whole). Quarters and eighths average whole 8x8
    /// blocks and keep their 2x (eighths leaving 1.7x: mean 0.9982, minimum 0.9919 on 12 MP photos).
    static func loaderOptions(info: ImageInfo, target: (width: Int, height: Int)) -> String {
        func headroom(leaving factor: Double) -> Double {
            min(Double(info.width) / (factor * Double(target.width)), Double(info.height) / (factor * Double(target.height)))
        }
        let room = headroom(leaving: 2)
        if info.isWebP {
            // WebP scales while decoding by any factor: a 50-megapixel WebP of 40 kB is never
            // held whole. The same 2x is left for the final reduction.
            return room >= 2 ? "scale=\(String(format: "%.6f", 1 / room))" : ""
        }
        guard info.isJPEG else { return "" }
        let shrink = [8, 4, 2].first { Double($0) <= room } ?? (headroom(leaving: 1.5) >= 2 ? 2 : 1)
        return shrink > 1 ? "shrink=\(shrink)" : ""
    }

    /// 8-bit sRGB with three bands: embedded ICC profiles applied, CMYK, 16-bit and grayscale
    /// converted, transparency flattened onto `background`.
    private func srgb8(_ image: VipsImageRef, _ mode: Vips.Mode) throws -> VipsImageRef {
        var current = image
        if lk_vips_has_icc(current.pointer) != 0 {
            let source = current
            // A broken profile falls back to the colourspace conversion below. Its error stays in
            // the buffer, so a shared-mode decode is then redone alone, where it is cleared.
            if let converted = try? Vips.make(mode, { out in lk_vips_icc_to_srgb(source.pointer, &out) }) {
                current = converted
            } else if mode == .alone {
                Vips.clearError()
            }
        }
        let profiled = current
        current = try Vips.make(mode) { out in lk_vips_colourspace_srgb(profiled.pointer, &out) }
        if vips_image_hasalpha(current.pointer) != 0 {
            let source = current
            current = try Vips.make(mode) { out in
                lk_vips_flatten(source.pointer, &out, Double(background.red), Double(background.green), Double(background.blue))
            }
        }
        let flattened = current
        current = try Vips.make(mode) { out in lk_vips_cast_uchar(flattened.pointer, &out) }
        if vips_image_get_bands(current.pointer) != 3 {
            let source = current
            current = try Vips.make(mode) { out in lk_vips_extract_bands(source.pointer, &out, 0, 3) }
        }
        return current
    }

    /// Resizes with a cubic kernel to exactly the policy's size (cropping the centre for `centerCrop`).
    private func resize(_ image: VipsImageRef, policy: ResizePolicy, target: (width: Int, height: Int), _ mode: Vips.Mode) throws -> VipsImageRef {
        let width = Double(vips_image_get_width(image.pointer))
        let height = Double(vips_image_get_height(image.pointer))
        var cover = (width: target.width, height: target.height)
        if case .centerCrop = policy {
            let scale = max(Double(target.width) / width, Double(target.height) / height)
            cover = (max(target.width, Int((width * scale).rounded())), max(target.height, Int((height * scale).rounded())))
        }
        var current = image
        if cover.width != Int(width) || cover.height != Int(height) {
            current = try Vips.make(mode) { out in
                lk_vips_resize(image.pointer, &out, Double(cover.width) / width, Double(cover.height) / height)
            }
        }
        current = try exactSize(current, width: cover.width, height: cover.height, mode)
        if cover.width != target.width || cover.height != target.height {
            let source = current
            current = try Vips.make(mode) { out in
                lk_vips_crop(source.pointer, &out, Int32((cover.width - target.width) / 2),
                             Int32((cover.height - target.height) / 2), Int32(target.width), Int32(target.height))
            }
        }
        return current
    }

    /// Parts of an image already decoded, each cropped and sized for a model by `policy` with the
    /// same resize as a decode (region tiles: the image is decoded once, larger, and its parts are
    /// cut from it).
    public func regions(of image: Pixels, _ regions: [ImageRegion], policy: ResizePolicy) throws -> [Pixels] {
        try Vips.start()
        guard image.width > 0, image.height > 0 else { throw ImagingError.decodeFailed("an empty image has no regions") }
        return try Vips.run { mode in
            let whole = try image.rgb.withUnsafeBytes { raw in
                guard let made = lk_vips_image_from_pixels(raw.baseAddress, raw.count, Int32(image.width), Int32(image.height), 3) else {
                    throw Vips.failure(mode)
                }
                return VipsImageRef(made)
            }
            return try regions.map { region in
                let box = region.pixels(width: image.width, height: image.height)
                let part = try Vips.make(mode) { out in
                    lk_vips_crop(whole.pointer, &out, Int32(box.x), Int32(box.y), Int32(box.width), Int32(box.height))
                }
                let target = policy.targetSize(width: box.width, height: box.height)
                return try pixels(try resize(part, policy: policy, target: target, mode), mode)
            }
        }
    }

    /// Decodes `bytes` at full size (upright, sRGB, flattened), for tools and tests.
    public func decodeFullSize(_ bytes: [UInt8]) throws -> Pixels {
        let info = try info(bytes)
        return try decode(bytes, policy: .shorterSide(size: min(info.width, info.height), maxLonger: max(info.width, info.height)))
    }

    /// The scans of a JPEG, counted by walking its markers. A progressive JPEG is decoded scan by
    /// scan over the whole image, so a small file of thousands of scans costs minutes inside one
    /// libjpeg call that no deadline can interrupt: counted first, such a file is refused at once.
    /// Segments are skipped by their lengths (a thumbnail or profile inside one counts nothing);
    /// a scan's data runs to the next marker, 0xFF followed by neither 0x00 (a stuffed byte) nor a
    /// restart marker. The walk stops at the end of the image or at anything malformed, which
    /// the decoder then reports.
    static func jpegScanCount(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard bytes.count >= 4, bytes[0] == 0xFF, bytes[1] == 0xD8 else { return 0 }
        var scans = 0
        var index = 2
        while index + 4 <= bytes.count {
            guard bytes[index] == 0xFF else { return scans }
            let marker = bytes[index + 1]
            if marker == 0xFF { index += 1; continue }  // fill byte
            if marker == 0xD9 { return scans }  // end of image
            if (0xD0...0xD7).contains(marker) || marker == 0x01 { index += 2; continue }  // no length
            let length = Int(bytes[index + 2]) << 8 | Int(bytes[index + 3])
            guard length >= 2 else { return scans }
            index += 2 + length
            guard marker == 0xDA else { continue }
            scans += 1
            // The scan's data, a 0xFF at a time (memchr: the data is most of a JPEG's bytes).
            while index + 1 < bytes.count, let base = bytes.baseAddress {
                guard let found = memchr(base + index, 0xFF, bytes.count - index - 1) else { return scans }
                index = base.distance(to: UnsafeRawPointer(found))
                if bytes[index + 1] != 0x00, !(0xD0...0xD7).contains(bytes[index + 1]) { break }
                index += 1
            }
        }
        return scans
    }

    private func checkSize(_ bytes: [UInt8]) throws {
        if bytes.isEmpty { throw ImagingError.emptyFile }
        if bytes.count > limits.maxBytes { throw ImagingError.fileTooLarge(bytes: bytes.count, limit: limits.maxBytes) }
    }

    private func header(_ buffer: UnsafeRawBufferPointer, _ mode: Vips.Mode) throws -> ImageInfo {
        guard let loader = lk_vips_find_loader(buffer.baseAddress, buffer.count) else {
            if mode == .alone { Vips.clearError() }
            throw ImagingError.unsupportedFormat
        }
        let format = String(cString: loader)
        guard Self.acceptedLoaders.contains(format) else { throw ImagingError.refusedFormat(Self.formatName(loader: format)) }
        if ImageInfo.isJPEG(loader: format) {
            let scans = Self.jpegScanCount(buffer)
            if scans > limits.maxJPEGScans { throw ImagingError.tooManyScans(scans, limit: limits.maxJPEGScans) }
        }
        guard let image = lk_vips_header_from_buffer(buffer.baseAddress, buffer.count) else {
            throw Vips.failure(mode)
        }
        defer { lk_g_object_unref(image) }
        let storedWidth = Int(vips_image_get_width(image))
        let storedHeight = Int(vips_image_get_height(image))
        if storedWidth * storedHeight > limits.maxPixels {
            throw ImagingError.tooManyPixels(width: storedWidth, height: storedHeight, limit: limits.maxPixels)
        }
        let orientation = Int(lk_vips_orientation(image))
        let swapsSides = orientation >= 5
        return ImageInfo(
            width: swapsSides ? storedHeight : storedWidth,
            height: swapsSides ? storedWidth : storedHeight,
            format: format,
            orientation: (1...8).contains(orientation) ? orientation : 1
        )
    }

    /// libvips rounds each output side on its own; a last tiny resize makes the size exactly the
    /// policy's, so the same image always gives the same tensor shape.
    private func exactSize(_ image: VipsImageRef, width: Int, height: Int, _ mode: Vips.Mode) throws -> VipsImageRef {
        let currentWidth = Int(vips_image_get_width(image.pointer))
        let currentHeight = Int(vips_image_get_height(image.pointer))
        if currentWidth == width && currentHeight == height { return image }
        return try Vips.make(mode) { out in
            lk_vips_resize(image.pointer, &out, Double(width) / Double(currentWidth), Double(height) / Double(currentHeight))
        }
    }

    /// Computes the pixels. libvips reports some failures of this stage (a truncated JPEG) only
    /// through its error buffer while still returning pixels: alone, any error raised here is
    /// this image's; shared, `Vips.run` sees the pending error and redoes the image alone.
    /// Errors raised earlier, while probing the header, are harmless (libheif probes past the end
    /// of a buffer, for one), so the buffer is cleared first.
    private func pixels(_ current: VipsImageRef, _ mode: Vips.Mode) throws -> Pixels {
        let width = Int(vips_image_get_width(current.pointer))
        let height = Int(vips_image_get_height(current.pointer))
        var size = 0
        if mode == .alone { Vips.clearError() }
        lk_vips_set_budget(current.pointer, Int32((limits.decodeSeconds * 1000).rounded(.up)))
        let started = ContinuousClock.now
        guard let memory = vips_image_write_to_memory(current.pointer, &size) else {
            if ContinuousClock.now - started >= .seconds(limits.decodeSeconds) {
                if mode == .alone { Vips.clearError() }
                throw ImagingError.decodeTooSlow(seconds: limits.decodeSeconds)
            }
            throw Vips.failure(mode)
        }
        defer { lk_g_free(memory) }
        if mode == .alone && lk_vips_has_error() != 0 { throw ImagingError.decodeFailed(Vips.takeError()) }
        guard size == width * height * 3 else {
            throw ImagingError.decodeFailed("unexpected pixel buffer of \(size) bytes for \(width)x\(height) RGB")
        }
        let rgb = [UInt8](UnsafeRawBufferPointer(start: memory, count: size))
        return Pixels(width: width, height: height, rgb: rgb)
    }
}
