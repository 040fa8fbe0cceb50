import Foundation
@testable import Imaging
import TestSupport
import Testing

/// Decoding real photos in every supported shape. Fixtures come from `scripts/make_format_fixtures.py`
/// (run by `make test`), built from a CC0 photo of the scikit-image package.
@Suite("ImageDecoder")
struct ImageDecoderTests {
    static let fixtures = TestData.fixtures

    let decoder = ImageDecoder()
    let reference: Pixels

    init() throws {
        reference = try ImageDecoder().decodeFullSize(try Self.bytes("reference.png"))
    }

    static func bytes(_ name: String) throws -> [UInt8] {
        let url = fixtures.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw FixtureMissing(path: url.path)
        }
        return [UInt8](try Data(contentsOf: url))
    }

    struct FixtureMissing: Error, CustomStringConvertible {
        let path: String
        var description: String { "\(path) is missing: run `make test` (it builds the fixtures)" }
    }

    /// Mean absolute difference per channel value, 0...255.
    static func meanDifference(_ a: Pixels, _ b: Pixels) -> Double {
        precondition(a.width == b.width && a.height == b.height)
        var total = 0
        for index in a.rgb.indices { total += abs(Int(a.rgb[index]) - Int(b.rgb[index])) }
        return Double(total) / Double(a.rgb.count)
    }

    @Test("every format decodes to the same upright 451x300 photo",
          arguments: ["photo.jpg", "photo.png", "photo.webp", "photo.tiff", "animated.gif", "cmyk.jpg",
                      "exif-orientation-6.jpg", "photo.avif"])
    func formats(name: String) throws {
        let pixels = try decoder.decodeFullSize(try Self.bytes(name))
        #expect(pixels.width == 451 && pixels.height == 300)
        // Lossy formats and GIF's 256-colour palette stay within a few levels. The CMYK file carries
        // no colour profile, so libvips reads it through a standard press profile, while the file was
        // written with a naive (255 - RGB) conversion: recognisably the photo, a few levels off in colour
        // (reading it with inverted channels would be ~100 levels off).
        let limit = ["animated.gif": 12.0, "cmyk.jpg": 20.0][name] ?? 6.0
        #expect(Self.meanDifference(pixels, reference) < limit, "\(name) differs from the photo")
    }

    @Test("every EXIF orientation (1 to 8) is applied: the photo comes out upright", arguments: 1...8)
    func orientations(orientation: Int) throws {
        let pixels = try decoder.decodeFullSize(try Self.bytes("exif-orientation-\(orientation).jpg"))
        #expect(pixels.width == 451 && pixels.height == 300)
        #expect(Self.meanDifference(pixels, reference) < 6, "orientation \(orientation) is not shown upright")
    }

    @Test("grayscale and 16-bit grayscale become 8-bit RGB with equal channels")
    func grayscale() throws {
        let gray = try decoder.decodeFullSize(try Self.bytes("gray.png"))
        let gray16 = try decoder.decodeFullSize(try Self.bytes("gray16.png"))
        for pixels in [gray, gray16] {
            #expect(pixels.width == 451 && pixels.height == 300)
            let rgb = pixels.rgb
            let colouredPixels = stride(from: 0, to: rgb.count, by: 3).filter { (index: Int) -> Bool in
                rgb[index] != rgb[index + 1] || rgb[index] != rgb[index + 2]
            }
            #expect(colouredPixels.isEmpty)
        }
        #expect(Self.meanDifference(gray, gray16) < 1.0)
    }

    @Test("transparent pixels are flattened onto white")
    func alpha() throws {
        let pixels = try decoder.decodeFullSize(try Self.bytes("alpha.png"))
        let row = 150
        let left = (row * pixels.width + 10) * 3
        #expect(Array(pixels.rgb[left..<(left + 3)]) == [255, 255, 255])
        let right = (row * pixels.width + 400) * 3
        let expected = (row * reference.width + 400) * 3
        #expect(Array(pixels.rgb[right..<(right + 3)]) == Array(reference.rgb[expected..<(expected + 3)]))
    }

    @Test("the shorter side becomes the model size, aspect kept, EXIF applied first")
    func shorterSide() throws {
        let policy = ResizePolicy.shorterSide(size: 224, maxLonger: 896)
        let landscape = try decoder.decode(try Self.bytes("photo.jpg"), policy: policy)
        #expect(landscape.width == 337 && landscape.height == 224)
        let rotated = try decoder.load(try Self.bytes("exif-orientation-6.jpg"), policy: policy)
        #expect(rotated.info.width == 451 && rotated.info.height == 300)
        #expect(rotated.pixels.width == 337 && rotated.pixels.height == 224)
        #expect(Self.meanDifference(rotated.pixels, landscape) < 6)
    }

    @Test("JPEGs shrink on load only as far as leaves 2x for the final reduce (1.5x when halved)")
    func shrinkOnLoad() throws {
        let jpeg = try decoder.info(try Self.bytes("photo.jpg"))
        #expect(jpeg.isJPEG)
        #expect(try !decoder.info(try Self.bytes("photo.png")).isJPEG)
        let big = ImageInfo(width: 4000, height: 3000, format: jpeg.format)
        #expect(ImageDecoder.loaderOptions(info: big, target: (299, 224)) == "shrink=4")
        #expect(ImageDecoder.loaderOptions(info: big, target: (1200, 900)) == "shrink=2")
        #expect(ImageDecoder.loaderOptions(info: big, target: (1600, 1200)) == "")
        #expect(ImageDecoder.loaderOptions(info: big, target: (150, 112)) == "shrink=8")
        // A 1 MP photo is halved while it decodes (1.9x left), not quartered (under 1x left).
        let phone = ImageInfo(width: 1152, height: 864, format: jpeg.format)
        #expect(ImageDecoder.loaderOptions(info: phone, target: (299, 224)) == "shrink=2")
        let small = ImageInfo(width: 640, height: 480, format: jpeg.format)
        #expect(ImageDecoder.loaderOptions(info: small, target: (299, 224)) == "")
        let png = ImageInfo(width: 4000, height: 3000, format: "VipsForeignLoadPngBuffer")
        #expect(ImageDecoder.loaderOptions(info: png, target: (299, 224)).isEmpty)
    }

    @Test("centre crop gives a square of the model size")
    func centerCrop() throws {
        let pixels = try decoder.decode(try Self.bytes("photo.png"), policy: .centerCrop(size: 128))
        #expect(pixels.width == 128 && pixels.height == 128)
    }

    @Test("stretch squashes the whole image to a square, aspect ratio not kept")
    func stretch() throws {
        let pixels = try decoder.decode(try Self.bytes("photo.png"), policy: .stretch(size: 32))
        #expect(pixels.width == 32 && pixels.height == 32)
        #expect(ResizePolicy.stretch(size: 32).targetSize(width: 1000, height: 10) == (32, 32))
        #expect(!ResizePolicy.stretch(size: 0).isValid)
    }

    @Test("resize rules", arguments: [
        (ResizePolicy.shorterSide(size: 224, maxLonger: 896), 451, 300, 337, 224),
        (ResizePolicy.shorterSide(size: 224, maxLonger: 896), 300, 451, 224, 337),
        (ResizePolicy.shorterSide(size: 224, maxLonger: 896), 224, 224, 224, 224),
        (ResizePolicy.shorterSide(size: 224, maxLonger: 896), 4000, 500, 896, 112),
        (ResizePolicy.shorterSide(size: 224, maxLonger: 896), 100, 50, 448, 224),
        (ResizePolicy.centerCrop(size: 288), 1000, 10, 288, 288),
        // Values of tools/reference_pipeline.py's target_size: halves round up, exactly.
        (ResizePolicy.shorterSide(size: 224, maxLonger: 896), 320, 325, 224, 228),
        (ResizePolicy.shorterSide(size: 224, maxLonger: 896), 449, 448, 225, 224),
        (ResizePolicy.shorterSide(size: 224, maxLonger: 896), 1365, 1074, 285, 224),
        (ResizePolicy.shorterSide(size: 224, maxLonger: 896), 5312, 2988, 398, 224),
        (ResizePolicy.shorterSide(size: 224, maxLonger: 896), 3, 2000, 1, 896),
        (ResizePolicy.shorterSide(size: 224, maxLonger: 896), 2000, 3, 896, 1),
    ])
    func targetSizes(policy: ResizePolicy, width: Int, height: Int, expectedWidth: Int, expectedHeight: Int) {
        let size = policy.targetSize(width: width, height: height)
        #expect(size.width == expectedWidth && size.height == expectedHeight)
    }

    @Test("broken inputs are refused with their reason", arguments: [
        ("empty.jpg", "empty file"),
        ("truncated.jpg", "cannot decode"),
        ("text.jpg", "not an image in a supported format"),
        ("huge-header.png", "40000x40000"),
    ])
    func broken(name: String, reason: String) throws {
        let bytes = try Self.bytes(name)
        do {
            _ = try decoder.decode(bytes, policy: .shorterSide(size: 224, maxLonger: 896))
            Issue.record("\(name) should not decode")
        } catch let error as ImagingError {
            #expect("\(error)".contains(reason), "\(name): \(error)")
        }
    }

    @Test("HEIF images (AVIF here) are decoded alone at once, others shared first; each decodes to the same photo")
    func heifDecodedAlone() throws {
        let avif = try Self.bytes("photo.avif")
        #expect(ImageDecoder.probesLoudly(avif))
        for name in ["photo.jpg", "photo.png", "text.jpg", "empty.jpg"] {
            #expect(!ImageDecoder.probesLoudly(try Self.bytes(name)), "\(name)")
        }
        let policy = ResizePolicy.shorterSide(size: 224, maxLonger: 896)
        let fromAVIF = try decoder.decode(avif, policy: policy)
        let fromJPEG = try decoder.decode(try Self.bytes("photo.jpg"), policy: policy)
        try #require(fromAVIF.width == fromJPEG.width && fromAVIF.height == fromJPEG.height)
        #expect(Self.meanDifference(fromAVIF, fromJPEG) < 6)
    }

    @Test("decoding in parallel: every truncated file fails with its own message, every good one decodes")
    func parallelFailures() throws {
        let good = try Self.bytes("photo.jpg")
        let truncated = try Self.bytes("truncated.jpg")
        let text = try Self.bytes("text.jpg")
        let inputs = (0..<96).map { [good, truncated, text][$0 % 3] }
        let outcomes = Outcomes(count: inputs.count)
        let decoder = self.decoder
        DispatchQueue.concurrentPerform(iterations: inputs.count) { index in
            do {
                let pixels = try decoder.decode(inputs[index], policy: .shorterSide(size: 224, maxLonger: 896))
                outcomes.set(index, "ok \(pixels.width)x\(pixels.height)")
            } catch {
                outcomes.set(index, "\(error)")
            }
        }
        let results = outcomes.values
        for (index, result) in results.enumerated() {
            switch index % 3 {
            case 0: #expect(result == "ok 337x224", "input \(index): \(result)")
            case 1: #expect(result == "cannot decode image: VipsJpeg: Premature end of input file", "input \(index): \(result)")
            default: #expect(result.hasPrefix("not an image in a supported format"), "input \(index): \(result)")
            }
        }
    }

    final class Outcomes: @unchecked Sendable {
        private var slots: [String]
        private let lock = NSLock()
        init(count: Int) { slots = Array(repeating: "", count: count) }
        func set(_ index: Int, _ value: String) { lock.withLock { slots[index] = value } }
        var values: [String] { lock.withLock { slots } }
    }

    @Test("the pixel limit is checked from the header, before decoding")
    func pixelLimit() throws {
        let small = ImageDecoder(limits: ImageLimits(maxBytes: 1 << 30, maxPixels: 100_000))
        #expect(throws: ImagingError.tooManyPixels(width: 451, height: 300, limit: 100_000)) {
            _ = try small.decode(try Self.bytes("photo.jpg"), policy: .centerCrop(size: 10))
        }
    }

    @Test("the byte limit is checked before anything else")
    func byteLimit() throws {
        let tiny = ImageDecoder(limits: ImageLimits(maxBytes: 1000, maxPixels: 100_000_000))
        #expect(throws: ImagingError.fileTooLarge(bytes: 50163, limit: 1000)) {
            _ = try tiny.decode(try Self.bytes("photo.jpg"), policy: .centerCrop(size: 10))
        }
    }

    @Test("a JPEG of thousands of scans is refused before libjpeg sees it; photos are not")
    func manyScans() throws {
        let photo = try Self.bytes("photo.jpg")
        #expect(photo.withUnsafeBytes { ImageDecoder.jpegScanCount($0) } == 1)
        // Marker bytes inside a segment (a thumbnail, a profile) are skipped with the segment.
        let payload = [UInt8](repeating: 0, count: 2) + Array(repeating: [0xFF, 0xDA], count: 600).flatMap { $0 }
        let withSegment = [0xFF, 0xD8, 0xFF, 0xEF, UInt8((payload.count + 2) >> 8), UInt8((payload.count + 2) & 0xFF)] + payload + photo.dropFirst(2)
        #expect(withSegment.withUnsafeBytes { ImageDecoder.jpegScanCount($0) } == 1)
        #expect(try decoder.info(withSegment).width == 451)
        // The photo's one scan, header and data, repeated 1,500 times before the end marker:
        // libjpeg would decode each over the whole image, warning that the progression is bogus.
        let scanStart = try #require((0..<photo.count - 1).first { photo[$0] == 0xFF && photo[$0 + 1] == 0xDA })
        let end = try #require((0..<photo.count - 1).last { photo[$0] == 0xFF && photo[$0 + 1] == 0xD9 })
        let scan = photo[scanStart..<end]
        var hostile = Array(photo[..<end])
        for _ in 0..<1_500 { hostile += scan }
        hostile += [0xFF, 0xD9]
        let started = ContinuousClock.now
        #expect(throws: ImagingError.tooManyScans(1_501, limit: 500)) {
            _ = try decoder.decode(hostile, policy: .shorterSide(size: 224, maxLonger: 896))
        }
        #expect(ContinuousClock.now - started < .seconds(1))
        let lenient = ImageDecoder(limits: ImageLimits(maxJPEGScans: 2_000))
        #expect(throws: ImagingError.tooManyScans(1_501, limit: 500)) { _ = try decoder.info(hostile) }
        #expect((try? lenient.info(hostile))?.width == 451, "under a higher limit the header is read")
    }

    @Test("the decode deadline stops a decode that runs past it, and only that one")
    func decodeDeadline() throws {
        // A plain 6000 x 6000 JPEG: small on disk, 108 MB of pixels when decoded at full size.
        let side = 6_000
        var rgb = [UInt8](repeating: 0, count: side * side * 3)
        for row in 0..<side { for column in stride(from: 0, to: side, by: 97) { rgb[(row * side + column) * 3] = 255 } }
        let large = try ImageEncoder.jpeg(Pixels(width: side, height: side, rgb: rgb), quality: 70)
        rgb = []
        // The whole decode runs first, so neither side pays for a cold start. The tests run in
        // parallel on few cores, so a stop is timed three times and the quickest counts: other
        // work can only delay a stop, never hasten it.
        let whole = ContinuousClock.now
        let pixels = try decoder.decode(large, policy: .shorterSide(size: side, maxLonger: side))
        let full = ContinuousClock.now - whole
        #expect(pixels.width == side && pixels.height == side)
        let hasty = ImageDecoder(limits: ImageLimits(decodeSeconds: 0.005))
        var stopped = Duration.seconds(3_600)
        for _ in 0..<3 {
            let started = ContinuousClock.now
            #expect(throws: ImagingError.decodeTooSlow(seconds: 0.005)) {
                _ = try hasty.decode(large, policy: .shorterSide(size: side, maxLonger: side))
            }
            stopped = min(stopped, ContinuousClock.now - started)
        }
        #expect(stopped < full, "stopped after \(stopped) at the quickest of three, a whole decode takes \(full)")
    }

    @Test("content hashes are SHA-256")
    func hashing() {
        #expect(ContentHash.sha256(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(ContentHash.sha256([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }
}
