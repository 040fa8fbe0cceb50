import Foundation

/// A part of an upright image, in fractions of its width and height: what a user drew a box around.
public struct ImageRegion: Sendable, Equatable, Codable {
    public let x: Double
    public let y: Double
    public let width: Double
    public let height: Double

    /// Why a region cannot be used.
    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    /// Checks that the region lies inside the image and is not empty.
    public init(x: Double, y: Double, width: Double, height: Double) throws {
        let values = [x, y, width, height]
        guard values.allSatisfy({ $0.isFinite }) else { throw Invalid(reason: "region values must be numbers") }
        guard x >= 0, y >= 0, x < 1, y < 1 else { throw Invalid(reason: "region x and y must be in [0, 1)") }
        guard width > 0, height > 0 else { throw Invalid(reason: "region width and height must be above 0") }
        guard x + width <= 1.000001, y + height <= 1.000001 else {
            throw Invalid(reason: "region must lie inside the image (x + width and y + height at most 1)")
        }
        self.x = x
        self.y = y
        self.width = min(width, 1 - x)
        self.height = min(height, 1 - y)
    }

    /// Parses `x,y,width,height`.
    public init(parsing text: Substring) throws {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 4, let x = parts[0], let y = parts[1], let width = parts[2], let height = parts[3] else {
            throw Invalid(reason: "region must be four numbers x,y,width,height (fractions of the image)")
        }
        try self.init(x: x, y: y, width: width, height: height)
    }

    public init(from decoder: Decoder) throws {
        enum Keys: String, CodingKey { case x, y, width, height }
        let container = try decoder.container(keyedBy: Keys.self)
        try self.init(x: try container.decode(Double.self, forKey: .x), y: try container.decode(Double.self, forKey: .y),
                      width: try container.decode(Double.self, forKey: .width),
                      height: try container.decode(Double.self, forKey: .height))
    }

    /// The region in whole pixels of a `width` x `height` image: at least one pixel, inside the image.
    public func pixels(width: Int, height: Int) -> (x: Int, y: Int, width: Int, height: Int) {
        let left = min(width - 1, max(0, Int((x * Double(width)).rounded(.down))))
        let top = min(height - 1, max(0, Int((y * Double(height)).rounded(.down))))
        let right = min(width, max(left + 1, Int(((x + self.width) * Double(width)).rounded())))
        let bottom = min(height, max(top + 1, Int(((y + self.height) * Double(height)).rounded())))
        return (left, top, right - left, bottom - top)
    }
}
