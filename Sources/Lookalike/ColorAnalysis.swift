import Foundation
import Imaging
import Storage

/// Naming the colours of pixels: each pixel is named by the nearest reference shade in CIE Lab.
extension ColorProfile {
    /// The profile of an image. Pixels are sampled on a grid of at most about 16,000 points, so an
    /// image of any size costs the same.
    public init(of pixels: Pixels) {
        var counts = [Int](repeating: 0, count: Self.names.count)
        let step = max(1, Int((Double(pixels.width * pixels.height) / 16_384).squareRoot().rounded(.down)))
        let table = ColorProfile.table
        pixels.rgb.withUnsafeBufferPointer { rgb in
            var y = step / 2
            while y < pixels.height {
                var x = step / 2
                while x < pixels.width {
                    let offset = (y * pixels.width + x) * 3
                    let key = (Int(rgb[offset]) >> 3) << 10 | (Int(rgb[offset + 1]) >> 3) << 5 | Int(rgb[offset + 2]) >> 3
                    counts[Int(table[key])] += 1
                    x += step
                }
                y += step
            }
        }
        let total = Float(max(1, counts.reduce(0, +)))
        self.init(fractions: counts.map { Float($0) / total })
    }

    /// Reference shades of each name, as sRGB: a name owns the pixels nearer (in Lab) to one of its
    /// shades than to any other name's. Several shades per name follow its extent (navy and sky
    /// are both blue; tan and chocolate both brown).
    static let shades: [(name: String, rgb: [(UInt8, UInt8, UInt8)])] = [
        ("black", [(0, 0, 0), (28, 28, 32)]),
        ("white", [(255, 255, 255), (242, 240, 235)]),
        ("gray", [(128, 128, 128), (80, 80, 82), (180, 180, 182), (210, 210, 212)]),
        ("red", [(220, 20, 30), (170, 20, 25), (120, 10, 15), (230, 70, 60)]),
        ("orange", [(255, 140, 0), (240, 110, 30), (250, 170, 70)]),
        ("yellow", [(255, 230, 0), (250, 240, 120), (230, 200, 20)]),
        ("green", [(30, 160, 40), (0, 100, 0), (140, 210, 60), (90, 130, 50), (20, 150, 120), (160, 220, 160)]),
        ("blue", [(30, 80, 210), (0, 0, 128), (100, 170, 230), (0, 160, 200), (60, 110, 170), (170, 210, 240)]),
        ("purple", [(130, 40, 160), (80, 20, 110), (180, 140, 220), (200, 50, 200)]),
        ("pink", [(255, 150, 190), (230, 60, 150), (255, 200, 215), (220, 120, 140)]),
        ("brown", [(120, 70, 30), (80, 45, 20), (190, 150, 100), (160, 100, 50), (220, 195, 160)]),
    ]

    /// The name of every colour at 5 bits per channel (32,768 entries, made once).
    static let table: [UInt8] = {
        var references: [(index: UInt8, lab: (Float, Float, Float))] = []
        for entry in shades {
            let index = UInt8(names.firstIndex(of: entry.name) ?? 0)
            for rgb in entry.rgb { references.append((index, lab(rgb.0, rgb.1, rgb.2))) }
        }
        var table = [UInt8](repeating: 0, count: 1 << 15)
        for key in 0..<(1 << 15) {
            // The centre of the 8-value cell each channel's top 5 bits name.
            let r = UInt8((key >> 10) << 3 | 4), g = UInt8(((key >> 5) & 31) << 3 | 4), b = UInt8((key & 31) << 3 | 4)
            let value = lab(r, g, b)
            var best = Float.infinity
            for reference in references {
                let dl = value.0 - reference.lab.0, da = value.1 - reference.lab.1, db = value.2 - reference.lab.2
                let distance = dl * dl + da * da + db * db
                if distance < best {
                    best = distance
                    table[key] = reference.index
                }
            }
        }
        return table
    }()

    /// CIE Lab (D65 white) of an sRGB colour.
    static func lab(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> (Float, Float, Float) {
        func linear(_ channel: UInt8) -> Float {
            let c = Float(channel) / 255
            return c <= 0.04045 ? c / 12.92 : powf((c + 0.055) / 1.055, 2.4)
        }
        let (lr, lg, lb) = (linear(r), linear(g), linear(b))
        let x = (0.4124564 * lr + 0.3575761 * lg + 0.1804375 * lb) / 0.95047
        let y = 0.2126729 * lr + 0.7151522 * lg + 0.0721750 * lb
        let z = (0.0193339 * lr + 0.1191920 * lg + 0.9503041 * lb) / 1.08883
        func f(_ t: Float) -> Float { t > 216.0 / 24389.0 ? cbrtf(t) : (24389.0 / 27.0 * t + 16) / 116 }
        let (fx, fy, fz) = (f(x), f(y), f(z))
        return (116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz))
    }
}
