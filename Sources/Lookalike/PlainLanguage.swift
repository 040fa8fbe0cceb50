import Foundation
import Storage

/// A query in words read the way a shopper types it: "red shoes under $50", "blue sofa between
/// 200 and 400", "boots not leather", "cheapest first". Colour words become conditions on the
/// images' own colours (`ColorProfile`), price phrases become numeric conditions on the field the
/// collection keeps its prices in, "not X" / "without X" exclude, an order phrase sorts the hits,
/// and the words left over are what the text model ranks by. Each part keeps the phrase it came
/// from, so a front door can show it back (and offer to drop it).
///
/// ```swift
/// let parsed = PlainLanguage.parse("red shoes under $50")
/// parsed.text      // "shoes"
/// parsed.filter    // {"$color": "red", "price": {"$lt": 50}}
/// ```
public struct ParsedQuery: Sendable, Equatable, Encodable {
    /// One understood part of the query.
    public struct Part: Sendable, Equatable, Encodable {
        public enum Kind: String, Sendable, Encodable {
            /// The image must show this colour (`value`).
            case color
            /// The image must not show this colour (`value`).
            case notColor = "not_color"
            /// A bound on the price field.
            case price
            /// Rank away from these words (`value`).
            case without
            /// Sort the hits by price.
            case order
        }

        public let kind: Kind
        /// The colour, the excluded words, the price bound as read back, or the order
        /// (`price_ascending`, `price_descending`).
        public let value: String
        /// How the part reads back: "red", "price < 50", "not leather", "cheapest first".
        public let label: String
        /// The words of the query it was read from ("under $50"): dropping them drops the part.
        public let phrase: String
    }

    /// How the hits are sorted after ranking.
    public enum Order: String, Sendable, Encodable {
        case priceAscending = "price_ascending"
        case priceDescending = "price_descending"
    }

    /// A bound on the price.
    public struct Bound: Sendable, Equatable, Encodable {
        public let value: Double
        public let inclusive: Bool
    }

    /// The query as given.
    public let original: String
    /// The words the text model ranks by (empty when every word was understood).
    public var text: String = ""
    public var parts: [Part] = []
    public var colors: [String] = []
    public var notColors: [String] = []
    public var minimumPrice: Bound?
    public var maximumPrice: Bound?
    /// The metadata field prices are kept in.
    public let priceField: String
    public var without: [String] = []
    public var order: Order?
    /// Why no item can match (a price both under 10 and over 50, a colour both wanted and not).
    public var conflict: String?

    init(original: String, priceField: String) {
        self.original = original
        self.priceField = priceField
    }

    /// Whether anything beyond plain words was understood.
    public var isStructured: Bool { !parts.isEmpty }

    /// The conditions the query asks of items, as a metadata filter (nil when it asks none).
    public var filter: MetadataFilter? {
        var conditions: [MetadataFilter.Condition] = []
        conditions += colors.map { .color($0) }
        conditions += notColors.map { .color($0, below: ColorProfile.defaultShare) }
        if let minimum = minimumPrice {
            let value = JSONValue.number(minimum.value)
            conditions.append(.init(path: [priceField], operation: minimum.inclusive ? .greaterOrEqual(value) : .greater(value)))
        }
        if let maximum = maximumPrice {
            let value = JSONValue.number(maximum.value)
            conditions.append(.init(path: [priceField], operation: maximum.inclusive ? .lessOrEqual(value) : .less(value)))
        }
        return conditions.isEmpty ? nil : MetadataFilter(conditions: conditions)
    }

    /// The parsed query as the CLI's `--json` and the API print it.
    public var jsonObject: [String: Any] {
        [
            "text": text,
            "price_field": priceField,
            "parts": parts.map { ["kind": $0.kind.rawValue, "value": $0.value, "label": $0.label, "phrase": $0.phrase] },
            "conflict": conflict ?? NSNull(),
        ]
    }
}

public enum PlainLanguage {
    /// The metadata field prices are read from unless the search names another.
    public static let defaultPriceField = "price"

    /// Reads `text`. Never fails: what is not understood stays in `text`.
    public static func parse(_ text: String, priceField: String = defaultPriceField) -> ParsedQuery {
        var parsed = ParsedQuery(original: text, priceField: priceField)
        var rest = text.lowercased()
        // Takes every match of `pattern` out of `rest`, handing its groups and phrase to `body`.
        func take(_ pattern: NSRegularExpression?, _ body: ([String], String) -> Void) {
            guard let pattern else { return }
            while true {
                let range = NSRange(rest.startIndex..., in: rest)
                guard let match = pattern.firstMatch(in: rest, range: range), let whole = Range(match.range, in: rest) else { return }
                let groups = (0..<match.numberOfRanges).map { index -> String in
                    Range(match.range(at: index), in: rest).map { String(rest[$0]) } ?? ""
                }
                body(groups, groups[0].trimmingCharacters(in: .whitespaces))
                rest.replaceSubrange(whole, with: " ")
            }
        }
        func amount(_ text: String) -> Double? {
            Double(text.replacingOccurrences(of: ",", with: "")).flatMap { $0.isFinite ? $0 : nil }
        }
        func bound(minimum: ParsedQuery.Bound?, maximum: ParsedQuery.Bound?, phrase: String) {
            // Two bounds on one side: the narrower holds.
            if let minimum, parsed.minimumPrice.map({ minimum.value > $0.value || (minimum.value == $0.value && !minimum.inclusive) }) ?? true {
                parsed.minimumPrice = minimum
            }
            if let maximum, parsed.maximumPrice.map({ maximum.value < $0.value || (maximum.value == $0.value && !maximum.inclusive) }) ?? true {
                parsed.maximumPrice = maximum
            }
            let field = priceField
            let label: String
            switch (minimum, maximum) {
            case (let low?, let high?):
                label = "\(number(low.value)) \(low.inclusive ? "≤" : "<") \(field) \(high.inclusive ? "≤" : "<") \(number(high.value))"
            case (let low?, nil): label = "\(field) \(low.inclusive ? "≥" : ">") \(number(low.value))"
            case (nil, let high?): label = "\(field) \(high.inclusive ? "≤" : "<") \(number(high.value))"
            case (nil, nil): return
            }
            parsed.parts.append(.init(kind: .price, value: label, label: label, phrase: phrase))
        }

        take(Patterns.between) { groups, phrase in
            let numbers = groups.dropFirst().compactMap { $0.isEmpty ? nil : amount($0) }
            guard numbers.count == 2 else { return }
            bound(minimum: .init(value: min(numbers[0], numbers[1]), inclusive: true),
                  maximum: .init(value: max(numbers[0], numbers[1]), inclusive: true), phrase: phrase)
        }
        take(Patterns.upper) { groups, phrase in
            guard let value = amount(groups[2]) else { return }
            bound(minimum: nil, maximum: .init(value: value, inclusive: Patterns.inclusiveUpper.contains(groups[1])), phrase: phrase)
        }
        take(Patterns.lower) { groups, phrase in
            guard let value = amount(groups[2]) else { return }
            bound(minimum: .init(value: value, inclusive: Patterns.inclusiveLower.contains(groups[1])), maximum: nil, phrase: phrase)
        }
        take(Patterns.ascending) { _, phrase in
            parsed.order = .priceAscending
            parsed.parts.append(.init(kind: .order, value: ParsedQuery.Order.priceAscending.rawValue, label: "cheapest first", phrase: phrase))
        }
        take(Patterns.descending) { _, phrase in
            parsed.order = .priceDescending
            parsed.parts.append(.init(kind: .order, value: ParsedQuery.Order.priceDescending.rawValue, label: "most expensive first",
                                      phrase: phrase))
        }
        take(Patterns.negation) { groups, phrase in
            var others: [String] = []
            for word in groups[2].split(whereSeparator: { $0 == " " || $0 == "-" }).map(String.init) {
                if let color = ColorProfile.name(for: word) {
                    if !parsed.notColors.contains(color) { parsed.notColors.append(color) }
                    parsed.parts.append(.init(kind: .notColor, value: color, label: "not \(color)", phrase: phrase))
                } else if !Patterns.fillers.contains(word) {
                    others.append(word)
                }
            }
            if !others.isEmpty {
                let excluded = others.joined(separator: " ")
                parsed.without.append(excluded)
                parsed.parts.append(.init(kind: .without, value: excluded, label: "not \(excluded)", phrase: phrase))
            }
        }
        take(Patterns.colorWord) { groups, phrase in
            guard let color = ColorProfile.name(for: groups[2]), !parsed.colors.contains(color) else { return }
            parsed.colors.append(color)
            parsed.parts.append(.init(kind: .color, value: color, label: color, phrase: phrase))
        }
        var words = rest.split(whereSeparator: { $0.isWhitespace }).map(String.init)
        if !parsed.parts.isEmpty {
            // Words that only joined the understood parts to the rest ("shoes that are red", "priced").
            while let first = words.first, Patterns.joiners.contains(first) { words.removeFirst() }
            while let last = words.last, Patterns.joiners.contains(last) || last == "," { words.removeLast() }
        }
        parsed.text = words.joined(separator: " ").trimmingCharacters(in: CharacterSet(charactersIn: " ,;:"))
        // The parts in the order their phrases stand in the query.
        let lowered = text.lowercased()
        func position(_ part: ParsedQuery.Part) -> String.Index { lowered.range(of: part.phrase)?.lowerBound ?? lowered.endIndex }
        parsed.parts.sort { position($0) < position($1) }

        if let minimum = parsed.minimumPrice, let maximum = parsed.maximumPrice,
           minimum.value > maximum.value || (minimum.value == maximum.value && !(minimum.inclusive && maximum.inclusive)) {
            parsed.conflict = "the \(priceField) cannot be \(minimum.inclusive ? "at least" : "over") \(number(minimum.value)) and "
                + "\(maximum.inclusive ? "at most" : "under") \(number(maximum.value)) at once"
        } else if let color = parsed.colors.first(where: parsed.notColors.contains) {
            parsed.conflict = "an image cannot both show \(color) and not show it"
        }
        return parsed
    }

    /// 50, 49.99, 1200 (never "50.0").
    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }

    private enum Patterns {
        static let start = #"(?:^|(?<=[\s,(]))"#
        static let currency = #"(?:[$€£¥]\s?)?"#
        static let amount = #"(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"#
        static let unit = #"(?:\s?(?:dollars?|usd|euros?|eur|pounds?|gbp|bucks))?"#
        static let money = currency + amount + unit
        static let end = #"(?=$|[\s,.;:!?)])"#

        /// "between 200 and 400", "from $20 to $40", "$20-$40", "$20 to 40".
        static let between = regex(start + #"(?:between|from)\s+"# + money + #"\s+(?:and|to|-)\s+"# + money + end
            + "|" + start + #"[$€£¥]\s?"# + amount + unit + #"\s?(?:-|–|to)\s?"# + money + end)
        static let upper = regex(start + #"(?:priced\s+|costing\s+|for\s+)?(under|below|less than|cheaper than|lower than|up to|"#
            + #"at most|no more than|max|maximum|<=|<)\s*"# + money + end)
        static let lower = regex(start + #"(?:priced\s+|costing\s+)?(over|above|more than|greater than|at least|from|min|"#
            + #"minimum|>=|>)\s*"# + money + end)
        static let inclusiveUpper: Set<String> = ["up to", "at most", "no more than", "max", "maximum", "<="]
        static let inclusiveLower: Set<String> = ["at least", "from", "min", "minimum", ">="]
        static let ascending = regex(start + #"(?:(?:sorted|sort|order|ordered)\s+)?(?:by\s+)?(?:cheapest|lowest[- ]priced?|"#
            + #"least expensive|price[,:]? low to high)(?:\s+(?:first|on top))?"# + end)
        static let descending = regex(start + #"(?:(?:sorted|sort|order|ordered)\s+)?(?:by\s+)?(?:most expensive|priciest|"#
            + #"highest[- ]priced?|price[,:]? high to low)(?:\s+(?:first|on top))?"# + end)
        /// "not red", "no leather", "without a hood", "non-leather", "but not blue".
        static let negation = regex(start + #"(?:but\s+)?(not|no|without|non-|non|excluding|except)\s*("#
            + #"(?:(?:light|dark|bright|pale|deep|a|an|any)\s+)*[\p{L}\p{N}'-]+)"# + end)
        /// "red", "light blue", "navy-coloured".
        static let colorWord = regex(start + #"((?:light|dark|bright|pale|deep)[\s-])?("#
            + (ColorProfile.names + ColorProfile.synonyms.keys.sorted()).joined(separator: "|") + #")(?:-colou?red)?"# + end)
        static let fillers: Set<String> = ["light", "dark", "bright", "pale", "deep", "a", "an", "any"]
        /// Words left hanging once a part is taken out.
        static let joiners: Set<String> = ["and", "or", "with", "in", "that", "is", "are", "for", "but", "of", "at", "priced",
                                           "costing", "which", "by", "sorted", "first"]

        /// The patterns are constants of this file, so a nil here is a programming error that the
        /// tests catch; it never depends on input (a nil pattern is skipped).
        static func regex(_ pattern: String) -> NSRegularExpression? {
            try? NSRegularExpression(pattern: pattern, options: [.caseInsensitive])
        }
    }
}
