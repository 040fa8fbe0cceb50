import Foundation

/// How much of an image each basic colour covers: every pixel is named by the nearest of a few
/// reference shades in CIE Lab (D65), and the names' shares are counted. The names are the eleven
/// basic colour terms most languages share (Berlin and Kay), so "red shoes" and "a blue sofa" can
/// be answered from the pixels alone.
///
/// ```swift
/// let profile = ColorProfile(of: pixels)
/// profile["red"]   // 0.31: red covers 31% of the image
/// profile.dominant // ["white", "red"]
/// ```
public struct ColorProfile: Sendable, Equatable {
    /// The colour names, in the order of `fractions`.
    public static let names = ["black", "white", "gray", "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown"]

    /// Other words for the same colours, as people type them.
    public static let synonyms: [String: String] = [
        "grey": "gray", "silver": "gray",
        "crimson": "red", "scarlet": "red", "maroon": "red", "burgundy": "red",
        "gold": "yellow", "golden": "yellow",
        "teal": "green",
        "navy": "blue", "turquoise": "blue", "cyan": "blue", "azure": "blue",
        "violet": "purple", "magenta": "purple",
        "beige": "brown", "tan": "brown", "khaki": "brown",
    ]

    /// The colour a word names (a basic name or a synonym), lower-cased; nil for other words.
    public static func name(for word: String) -> String? {
        let word = word.lowercased()
        return names.contains(word) ? word : synonyms[word]
    }

    /// The share of the image a colour must cover for a filter that names it without a share
    /// (`{"$color": "red"}`, "red shoes"). A `Double`, as filters compare it: 0.1 as a `Float`
    /// widens to 0.10000000149, which a stored share of exactly 0.100 would fail.
    public static let defaultShare = 0.1

    /// The share of the image (0...1) each name of `names` covers; they sum to 1.
    public let fractions: [Float]

    public init(fractions: [Float]) {
        self.fractions = fractions
    }

    /// The share `name` covers (0 for a name that is not a colour).
    public subscript(name: String) -> Float {
        guard let index = Self.names.firstIndex(of: name) else { return 0 }
        return fractions[index]
    }

    /// The colours covering at least `minimum` of the image, most first.
    public func dominant(minimum: Double = defaultShare) -> [String] {
        zip(Self.names, fractions).filter { Double($0.1) >= minimum }.sorted { $0.1 > $1.1 }.map(\.0)
    }

    /// The profile as a JSON object text, `{"black": 0.02, ...}`, three decimals, every name.
    public var json: String {
        "{" + zip(Self.names, fractions).map { name, fraction in
            "\"\(name)\": \(String(format: "%.3f", Double(fraction)))"
        }.joined(separator: ", ") + "}"
    }

    /// Reads `json` back (nil when it is not a profile).
    public init?(json: String) {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any] else { return nil }
        var fractions: [Float] = []
        for name in Self.names {
            guard let value = object[name] as? NSNumber else { return nil }
            fractions.append(value.floatValue)
        }
        self.fractions = fractions
    }
}
