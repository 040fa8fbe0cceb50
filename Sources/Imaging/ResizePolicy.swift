/// How an image is sized for a model.
public enum ResizePolicy: Sendable, Equatable, Codable {
    /// Fully convolutional models see the whole image: the shorter side becomes `size`, the aspect
    /// ratio is kept and nothing is cropped. When the longer side would then exceed `maxLonger`,
    /// the longer side becomes `maxLonger` instead (so a panorama does not blow up the input).
    case shorterSide(size: Int, maxLonger: Int)
    /// Fixed-size models: the image is scaled to cover `size` x `size`, then the centre is cropped.
    case centerCrop(size: Int)
    /// The whole image squashed to `size` x `size`, aspect ratio not kept (perceptual hashes).
    case stretch(size: Int)

    /// The output size for an upright image of `width` x `height` (both at least 1).
    /// The scaled side is `long * size / short` rounded half up, computed exactly in integers,
    /// the same rule as the Python reference pipeline.
    public func targetSize(width: Int, height: Int) -> (width: Int, height: Int) {
        switch self {
        case .centerCrop(let size), .stretch(let size):
            return (size, size)
        case .shorterSide(let size, let maxLonger):
            let short = max(1, min(width, height))
            let long = max(1, max(width, height))
            var newShort = size
            var newLong = Self.roundedRatio(long * size, short)
            if newLong > maxLonger {
                newLong = maxLonger
                newShort = max(1, Self.roundedRatio(short * maxLonger, long))
            }
            return width >= height ? (newLong, newShort) : (newShort, newLong)
        }
    }

    /// The policy for an image whose halves come out at this policy's size: twice the size, for
    /// cutting region tiles from one decode. A centre-cropping model's image is kept whole (its
    /// tiles are cropped each in turn).
    public var doubled: ResizePolicy {
        switch self {
        case .shorterSide(let size, let maxLonger): return .shorterSide(size: 2 * size, maxLonger: 2 * maxLonger)
        case .centerCrop(let size): return .shorterSide(size: 2 * size, maxLonger: 8 * size)
        case .stretch(let size): return .stretch(size: 2 * size)
        }
    }

    /// `numerator / denominator` rounded half up, for positive integers.
    static func roundedRatio(_ numerator: Int, _ denominator: Int) -> Int {
        (2 * numerator + denominator) / (2 * denominator)
    }

    /// Whether the policy can be used: sizes from 1 to 4096 pixels, the longer-side cap not below the size.
    public var isValid: Bool {
        switch self {
        case .centerCrop(let size), .stretch(let size): return (1...4096).contains(size)
        case .shorterSide(let size, let maxLonger): return (1...4096).contains(size) && (size...16384).contains(maxLonger)
        }
    }
}
