import Foundation

/// BERT's WordPiece tokenizer, as text encoders such as all-MiniLM-L6-v2 were trained with:
///
/// 1. **Normalise**: drop NUL, U+FFFD and control or format characters; turn every kind of
///    white space into a space; put spaces around CJK ideographs; with `lowercase`, decompose
///    (NFD), drop combining marks (accents) and lower-case each character.
/// 2. **Split** on white space, and around every punctuation character (ASCII punctuation and
///    Unicode's P* categories), each of which becomes a word of its own.
/// 3. **WordPiece**: each word becomes the longest vocabulary entry that starts it, then the
///    longest `##`-prefixed entry that continues it, and so on; a word that cannot be covered,
///    or longer than 100 characters, becomes `[UNK]`.
/// 4. **Frame**: `[CLS]` first and `[SEP]` last, within `maxTokens` (longer text is cut, and the
///    cut is reported).
///
/// Characters are Unicode scalars throughout, as in the reference implementation the tests
/// compare it with token for token.
public struct WordPieceTokenizer: Sendable {
    public let vocabulary: [String: Int32]
    public let maxTokens: Int
    public let lowercase: Bool
    let unknown: Int32
    let classify: Int32
    let separator: Int32
    static let maxWordCharacters = 100

    public struct Encoding: Sendable, Equatable {
        /// Token ids, `[CLS]` ... `[SEP]`.
        public let ids: [Int32]
        /// Whether the text had more tokens than fit, and was cut.
        public let truncated: Bool
    }

    public struct VocabularyError: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// A tokenizer over a vocabulary of one token a line (the line number is the id).
    public init(vocabularyText text: String, maxTokens: Int, lowercase: Bool = true) throws {
        var vocabulary: [String: Int32] = [:]
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let token = line.hasSuffix("\r") ? String(line.dropLast()) : String(line)
            if !token.isEmpty, vocabulary[token] == nil { vocabulary[token] = Int32(index) }
        }
        guard let unknown = vocabulary["[UNK]"], let classify = vocabulary["[CLS]"], let separator = vocabulary["[SEP]"] else {
            throw VocabularyError(description: "the vocabulary lacks [UNK], [CLS] or [SEP]")
        }
        guard maxTokens >= 3 else { throw VocabularyError(description: "maxTokens must leave room for a token between [CLS] and [SEP]") }
        self.vocabulary = vocabulary
        self.maxTokens = maxTokens
        self.lowercase = lowercase
        self.unknown = unknown
        self.classify = classify
        self.separator = separator
    }

    public init(vocabularyFile url: URL, maxTokens: Int, lowercase: Bool = true) throws {
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw VocabularyError(description: "cannot read the vocabulary \(url.path): \(error.localizedDescription)")
        }
        try self.init(vocabularyText: text, maxTokens: maxTokens, lowercase: lowercase)
    }

    /// The token ids of `text`, framed and cut to `maxTokens`.
    public func encode(_ text: String) -> Encoding {
        var ids: [Int32] = [classify]
        let room = maxTokens - 2
        var truncated = false
        words: for word in Self.words(normalize(text)) {
            for id in pieces(word) {
                if ids.count - 1 == room {
                    truncated = true
                    break words
                }
                ids.append(id)
            }
        }
        ids.append(separator)
        return Encoding(ids: ids, truncated: truncated)
    }

    /// The text after step 1, as scalars.
    func normalize(_ text: String) -> [Unicode.Scalar] {
        var cleaned: [Unicode.Scalar] = []
        cleaned.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            if scalar.value == 0 || scalar.value == 0xFFFD || Self.isControl(scalar) { continue }
            if Self.isWhitespace(scalar) {
                cleaned.append(" ")
            } else if Self.isIdeograph(scalar) {
                cleaned.append(contentsOf: [" ", scalar, " "])
            } else {
                cleaned.append(scalar)
            }
        }
        guard lowercase else { return cleaned }
        let decomposed = String(String.UnicodeScalarView(cleaned)).decomposedStringWithCanonicalMapping.unicodeScalars
            .filter { $0.properties.generalCategory != .nonspacingMark }
        var lowered: [Unicode.Scalar] = []
        lowered.reserveCapacity(decomposed.count)
        for scalar in decomposed {
            lowered.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
        }
        return lowered
    }

    /// Step 2: words split on white space and around punctuation.
    static func words(_ scalars: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        var words: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        for scalar in scalars {
            if scalar.properties.isWhitespace {
                if !current.isEmpty { words.append(current); current = [] }
            } else if isPunctuation(scalar) {
                if !current.isEmpty { words.append(current); current = [] }
                words.append([scalar])
            } else {
                current.append(scalar)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    /// Step 3 for one word.
    func pieces(_ word: [Unicode.Scalar]) -> [Int32] {
        if word.count > Self.maxWordCharacters { return [unknown] }
        var ids: [Int32] = []
        var start = 0
        while start < word.count {
            var end = word.count
            var found: Int32?
            while start < end {
                var piece = String(String.UnicodeScalarView(word[start..<end]))
                if start > 0 { piece = "##" + piece }
                if let id = vocabulary[piece] {
                    found = id
                    break
                }
                end -= 1
            }
            guard let found else { return [unknown] }
            ids.append(found)
            start = end
        }
        return ids
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == "\t" || scalar == "\n" || scalar == "\r" { return false }
        switch scalar.properties.generalCategory {
        case .control, .format, .unassigned, .privateUse, .surrogate: return true
        default: return false
        }
    }

    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        scalar == "\t" || scalar == "\n" || scalar == "\r" || scalar.properties.isWhitespace
    }

    static func isPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.isASCII, let byte = UInt8(exactly: scalar.value), (33...47).contains(byte) || (58...64).contains(byte)
            || (91...96).contains(byte) || (123...126).contains(byte) {
            return true
        }
        switch scalar.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
             .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    static func isIdeograph(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }
}
