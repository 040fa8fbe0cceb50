/// How an image is sized for a model.
public enum ResizePolicy: Sendable, Equatable, Codable {
    /// Fully convolutional models see the whole image: the shorter side becomes `size`, the aspect
    /// ratio is kept and nothing is cropped. When the longer side would then exceed `maxLonger`,
    /// the longer side becomes `maxLonger` instead (so a panorama does not blow up the input).
    case shorterSide(size: Int, maxLonger: Int)
    /// Fixed-size models: the image is scaled to cover `size` x `size`, then the centre is cropped.
    case centerCrop(size: Int)

    /// The output size for an upright image of `width` x `height`.
    /// Rounds as Pillow-based pipelines do: `round(long * size / short)`.
    public func targetSize(width: Int, height: Int) -> (width: Int, height: Int) {
        switch self {
        case .centerCrop(let size):
            return (size, size)
        case .shorterSide(let size, let maxLonger):
            let short = Double(min(width, height))
            let long = Double(max(width, height))
            var scale = Double(size) / short
            if (long * scale).rounded() > Double(maxLonger) {
                scale = Double(maxLonger) / long
            }
            let newShort = max(1, Int((short * scale).rounded()))
            let newLong = max(1, Int((long * scale).rounded()))
            return width <= height ? (newShort, newLong) : (newLong, newShort)
        }
    }
}
