import Embedding
import Foundation
import TestSupport
import Testing

/// Lookalike's WordPiece tokenizer against Hugging Face's tokenizer of all-MiniLM-L6-v2 (the
/// package's own tokenizer.json, in the venv `make test` sets up), token for token.
@Suite("WordPiece tokenizer")
struct WordPieceTokenizerTests {
    static let vocabulary = ModelRegistry.defaultDirectory().appendingPathComponent("minilm-l6.vocab.txt")

    func tokenizer(maxTokens: Int = 256) throws -> WordPieceTokenizer {
        guard FileManager.default.fileExists(atPath: Self.vocabulary.path) else {
            throw TestData.Missing(what: "the all-MiniLM-L6-v2 vocabulary (\(Self.vocabulary.path))")
        }
        return try WordPieceTokenizer(vocabularyFile: Self.vocabulary, maxTokens: maxTokens)
    }

    /// Texts a visual search box gets, and the ones that break naive tokenizers.
    static func texts() -> [String] {
        let things = ["red shoes", "a dog on a beach", "Blue sofa", "VINTAGE camera", "two cats", "the Eiffel tower at night",
                      "crème brûlée", "naïve façade", "smörgåsbord", "jalapeño pizza"]
        let tails = ["", " under $50", ", not leather!", " (cheapest first)", " between 200 and 400", " - like this photo, but blue?",
                     "...", " #summer2024", " @home", " 100% cotton"]
        var texts = things.flatMap { thing in tails.map { thing + $0 } }
        texts += [
            "", "   ", "\t\n\r", "don't stop", "U.S.A.", "e-mail: someone@example.com", "https://example.com/a?b=c&d=e",
            "3.14159 and 1,000,000", "東京タワーの夜景", "北京 烤鸭", "한국어 문장입니다", "Съешь же ещё этих мягких французских булок",
            "ΣΊΣΥΦΟΣ και Σίσυφος", "İstanbul ıı İİ", "Straße und Fuß", "ﬁne ligatures ﬀ", "مرحبا بالعالم", "नमस्ते दुनिया",
            "emoji 🐱🐶 and 👩‍👩‍👧 family", "zero\u{200B}width\u{200D}joiner\u{FEFF}bom", "nul\u{0}byte\u{FFFD}replacement",
            "control\u{7}bell\u{1B}escape", "non\u{A0}breaking\u{2003}em space", "soft\u{AD}hyphen", "private\u{E000}use",
            "tab\tseparated\tvalues", "CamelCaseWordsTogether", "supercalifragilisticexpialidocious",
            String(repeating: "a", count: 101), String(repeating: "b", count: 100), "¿Qué? ¡Sí! «quoted» „German“ 'single'",
            "under_score and hy-phen and en–dash and em—dash", "℃ ℉ № ™ ©", "１２３ ＡＢＣ fullwidth", "x² and H₂O",
        ]
        texts.append((1...300).map { "word\($0)" }.joined(separator: " "))
        return texts
    }

    /// The reference tokenizer's ids for `texts`.
    func reference(_ texts: [String], maxTokens: Int) throws -> [[Int32]] {
        let folder = try TestData.temporaryDirectory("tokens")
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("texts.jsonl")
        let lines = try texts.map { String(decoding: try JSONSerialization.data(withJSONObject: $0, options: .fragmentsAllowed), as: UTF8.self) }
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: input)
        let script = TestData.repository.appendingPathComponent("tests/python/reference_tokens.py").path
        let result = try runCommand("/bin/sh", ["-c", "\"$0\" \"$1\" --max-tokens \"$2\" < \"$3\"", TestData.python, script, String(maxTokens), input.path])
        guard result.status == 0 else { throw TestData.Missing(what: "the reference tokenizer (\(result.stderr))") }
        let rows = result.stdout.split(separator: "\n").map { line in
            ((try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [Int] ?? []).map(Int32.init)
        }
        #expect(rows.count == texts.filter { !$0.isEmpty }.count)
        return rows
    }

    @Test("token for token the reference's, for plain, accented, CJK, Cyrillic, Greek, emoji, control and very long text")
    func matchesTheReference() throws {
        let tokenizer = try tokenizer()
        // The reference reads one text a line; the empty text is checked on its own below.
        let texts = Self.texts().filter { !$0.isEmpty }
        let expected = try reference(texts, maxTokens: 256)
        var mismatches: [String] = []
        for (text, ids) in zip(texts, expected) where tokenizer.encode(text).ids != ids {
            mismatches.append("\(text.debugDescription): \(tokenizer.encode(text).ids) != \(ids)")
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) of \(texts.count) differ:\n\(mismatches.prefix(5).joined(separator: "\n"))")
        #expect(tokenizer.encode("").ids == [101, 102], "[CLS] [SEP]")
    }

    @Test("text longer than the model's limit is cut to it, and the cut is reported")
    func truncation() throws {
        let long = (1...300).map { "word\($0)" }.joined(separator: " ")
        for maxTokens in [8, 256] {
            let tokenizer = try tokenizer(maxTokens: maxTokens)
            let encoding = tokenizer.encode(long)
            #expect(encoding.ids.count == maxTokens)
            #expect(encoding.truncated)
            #expect(encoding.ids == (try reference([long], maxTokens: maxTokens)).first)
            #expect(!tokenizer.encode("a short query").truncated)
        }
        #expect(throws: WordPieceTokenizer.VocabularyError.self) { try WordPieceTokenizer(vocabularyText: "a\nb\n", maxTokens: 16) }
    }
}
