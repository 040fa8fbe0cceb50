import Foundation
@testable import Lookalike
import TestSupport
import Testing

/// The retrieval measures on hand-computed cases, the manifest's checks, and a small evaluation
/// run end to end on real photos and their edited copies.
@Suite("Evaluation")
struct EvaluationTests {
    typealias Ranking = RetrievalMetrics.Ranking

    static func near(_ a: Double, _ b: Double) -> Bool { abs(a - b) < 1e-9 }

    @Test("average precision, MAP@R, P@k and Recall@k on hand-computed rankings")
    func perQuery() {
        // Relevant a, c, e; a at rank 1, c at rank 3, e never returned: AP = (1/1 + 2/3) / 3.
        let first = Ranking(hits: [("a", 0.9), ("b", 0.8), ("c", 0.7), ("d", 0.6)], relevant: ["a", "c", "e"])
        #expect(Self.near(RetrievalMetrics.averagePrecision(first), (1 + 2.0 / 3) / 3))
        #expect(Self.near(RetrievalMetrics.averagePrecisionAtR(first), (1 + 2.0 / 3) / 3))
        // Relevant a, c at ranks 2 and 4: AP = (1/2 + 2/4) / 2; MAP@R looks at the first R = 2 ranks only.
        let second = Ranking(hits: [("b", 0.9), ("a", 0.8), ("d", 0.7), ("c", 0.6)], relevant: ["a", "c"])
        #expect(Self.near(RetrievalMetrics.averagePrecision(second), 0.5))
        #expect(Self.near(RetrievalMetrics.averagePrecisionAtR(second), 0.25))
        #expect(RetrievalMetrics.precision(at: 1, second) == 0)
        #expect(Self.near(RetrievalMetrics.precision(at: 2, second), 0.5))
        #expect(Self.near(RetrievalMetrics.precision(at: 10, second), 0.2))  // missing ranks count as wrong
        #expect(!RetrievalMetrics.hit(at: 1, second))
        #expect(RetrievalMetrics.hit(at: 2, second))
        // No hits at all.
        let empty = Ranking(hits: [], relevant: ["a"])
        #expect(RetrievalMetrics.averagePrecision(empty) == 0)
        #expect(RetrievalMetrics.averagePrecisionAtR(empty) == 0)
        #expect(RetrievalMetrics.precision(at: 1, empty) == 0)
        #expect(!RetrievalMetrics.hit(at: 100, empty))

        let summary = RetrievalMetrics.summarize([first, second, empty, Ranking(hits: [("x", 0.5)], relevant: [])])
        #expect(summary.queries == 3)
        #expect(summary.queriesWithoutMatch == 1)
        let firstAP: Double = (1 + 2.0 / 3) / 3
        let expectedMAP: Double = (firstAP + 0.5 + 0) / 3
        #expect(Self.near(summary.meanAveragePrecision, expectedMAP))
        #expect(Self.near(summary.recallAt1, 1.0 / 3))
        #expect(Self.near(summary.recallAt10, 2.0 / 3))
        #expect(Self.near(summary.precisionAt1, 1.0 / 3))
    }

    @Test("µAP over all pairs: negative queries count, ties are taken pessimistically")
    func pairs() throws {
        // Pairs by score: v 0.95 wrong (a query without a match), x 0.9 right, w 0.8 wrong, then y
        // and z tied at 0.5, the wrong y first. Two positives: µAP = (1/2 + 2/5) / 2.
        let rankings = [
            Ranking(hits: [("x", 0.9), ("y", 0.5)], relevant: ["x"]),
            Ranking(hits: [("w", 0.8), ("z", 0.5)], relevant: ["z"]),
            Ranking(hits: [("v", 0.95)], relevant: []),
        ]
        let analysis = RetrievalMetrics.pairAnalysis(rankings)
        #expect(analysis.positives == 2)
        #expect(analysis.pairs == 5)
        #expect(Self.near(analysis.microAveragePrecision, (0.5 + 0.4) / 2))
        #expect(analysis.curve.map(\.threshold) == [0.95, 0.9, 0.8, 0.5])
        let last = try #require(analysis.curve.last)
        #expect(Self.near(last.precision, 0.4))
        #expect(last.recall == 1)
        #expect(analysis.recallAtPrecision90 == 0)
        #expect(analysis.thresholdAtPrecision99 == nil)

        // One right pair above one wrong: precision 1 down to 0.9, then 0.5.
        let clean = RetrievalMetrics.pairAnalysis([Ranking(hits: [("x", 0.9)], relevant: ["x"]),
                                                   Ranking(hits: [("v", 0.3)], relevant: [])])
        #expect(clean.microAveragePrecision == 1)
        #expect(clean.recallAtPrecision90 == 1)
        #expect(clean.thresholdAtPrecision99 == RetrievalMetrics.CurvePoint(threshold: 0.9, precision: 1, recall: 1))

        // A right and a wrong pair with the same score: the wrong one is counted first.
        let tied = RetrievalMetrics.pairAnalysis([Ranking(hits: [("x", 0.7)], relevant: ["x"]),
                                                  Ranking(hits: [("v", 0.7)], relevant: [])])
        #expect(tied.microAveragePrecision == 0.5)
        #expect(tied.curve == [RetrievalMetrics.CurvePoint(threshold: 0.7, precision: 0.5, recall: 1)])

        let nothing = RetrievalMetrics.pairAnalysis([])
        #expect(nothing.microAveragePrecision == 0)
        #expect(nothing.curve.isEmpty)
        #expect(nothing.thresholdAtPrecision99 == nil)
    }

    @Test("a malformed manifest line is refused with the file, the line and the field")
    func manifestErrors() throws {
        let folder = try TestData.temporaryDirectory("manifest")
        defer { try? FileManager.default.removeItem(at: folder) }
        let good = #"{"path": "a.jpg", "role": "gallery", "group": "a"}"#
        let query = #"{"path": "q.jpg", "role": "query", "group": "a", "kind": "crop"}"#
        let cases: [(String, String)] = [
            ("not json", "not a JSON object"),
            (#"{"path": "a.jpg", "role": "probe", "group": "a"}"#, "\"role\" is \"probe\"; it must be query, gallery or distractor"),
            (#"{"path": "q.jpg", "role": "query"}"#, "a query needs a \"group\""),
            (#"{"path": "d.jpg", "role": "distractor", "group": "a"}"#, "a distractor has no \"group\""),
            (#"{"path": "a.jpg", "role": "gallery", "group": "a", "colour": "red"}"#, "unknown field \"colour\""),
            (#"{"role": "gallery", "group": "a"}"#, "\"path\" must be a non-empty string"),
            (#"{"role": "gallery", "group": "a", "text": "a cat"}"#, "\"path\" must be a non-empty string (a query in words has \"text\" instead)"),
            (#"{"role": "query", "group": "a", "text": ""}"#, "\"path\" must be a non-empty string"),
            (#"{"path": "a.jpg", "role": "gallery", "group": 7}"#, "\"group\" must be a non-empty string"),
        ]
        for (line, reason) in cases {
            let url = folder.appendingPathComponent("m.jsonl")
            try [good, "", line, query].joined(separator: "\n").write(to: url, atomically: false, encoding: .utf8)
            var message = ""
            do {
                _ = try EvaluationManifest.load(url)
            } catch {
                message = "\(error)"
            }
            #expect(message.contains("m.jsonl, line 3: \(reason)"), "\(message)")
        }
        let onlyGallery = folder.appendingPathComponent("g.jsonl")
        try good.write(to: onlyGallery, atomically: false, encoding: .utf8)
        #expect(throws: EvaluationError.badManifest(path: onlyGallery.path, reason: "it has no queries")) {
            _ = try EvaluationManifest.load(onlyGallery)
        }
        let fine = folder.appendingPathComponent("fine.jsonl")
        try [good, query].joined(separator: "\n").write(to: fine, atomically: false, encoding: .utf8)
        let manifest = try EvaluationManifest.load(fine)
        #expect(manifest.entries.map(\.path) == [folder.appendingPathComponent("a.jpg").path, folder.appendingPathComponent("q.jpg").path])
        let parsedQuery = try #require(manifest.queries.first)
        #expect(parsedQuery.kind == "crop")
        #expect(parsedQuery.line == 2)
        // A query in words has its text and no image.
        let words = folder.appendingPathComponent("words.jsonl")
        try [good, #"{"text": "a cat on a sofa", "role": "query", "group": "a"}"#].joined(separator: "\n")
            .write(to: words, atomically: false, encoding: .utf8)
        let textQuery = try #require(try EvaluationManifest.load(words).queries.first)
        #expect(textQuery.path.isEmpty && textQuery.text == "a cat on a sofa")
    }

    @Test("a tiny manifest end to end: edited copies find their originals among distractors")
    func endToEnd() throws {
        let photos = try TestData.photoPaths()
        let folder = try TestData.temporaryDirectory("eval")
        defer { try? FileManager.default.removeItem(at: folder) }
        var lines: [String] = []
        func line(_ path: String, _ role: String, group: String? = nil, kind: String? = nil) throws {
            var object: [String: String] = ["path": path, "role": role]
            object["group"] = group
            object["kind"] = kind
            lines.append(String(decoding: try JSONSerialization.data(withJSONObject: object, options: .sortedKeys), as: UTF8.self))
        }
        let gallery = Array(photos.prefix(8))
        for photo in gallery {
            let stem = URL(fileURLWithPath: photo).deletingPathExtension().lastPathComponent
            try line(photo, "gallery", group: stem)
            for kind in ["crop80", "q30"] {
                try line(TestData.edits.appendingPathComponent("\(stem)__\(kind).jpg").path, "query", group: stem, kind: kind)
            }
        }
        for photo in photos.dropFirst(8).prefix(6) { try line(photo, "distractor") }
        // A query whose group has no gallery image: whatever it finds is a false positive.
        try line(photos[20], "query", group: "absent")
        try line("missing-file.jpg", "query", group: "absent")
        let manifestURL = folder.appendingPathComponent("tiny.jsonl")
        try lines.joined(separator: "\n").write(to: manifestURL, atomically: false, encoding: .utf8)

        let result = try runCommand(try TestData.executable(),
                                    ["eval", manifestURL.path, "--json", "--top", "10"],
                                    environment: ProcessInfo.processInfo.environment.merging(["TMPDIR": folder.path]) { $1 })
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let overall = try #require(object["overall"] as? [String: Any])
        #expect(object["gallery"] as? Int == 8)
        #expect(object["distractors"] as? Int == 6)
        #expect(object["store_images_not_in_manifest"] as? Int == 0)
        #expect(overall["queries"] as? Int == 16)
        #expect(overall["queries_without_match"] as? Int == 2)
        #expect(overall["recall_at_1"] as? Double == 1)
        #expect(overall["map"] as? Double == 1)
        let pairs = try #require(overall["pairs"] as? [String: Any])
        #expect(pairs["positives"] as? Int == 16)
        let microAP = try #require(pairs["micro_average_precision"] as? Double)
        #expect(microAP > 0.9, "µAP \(microAP)")
        #expect(microAP <= 1)
        #expect(pairs["threshold_at_precision_0.99"] is [String: Any])
        let kinds = try #require(object["by_kind"] as? [String: [String: Any]])
        #expect(object["model"] as? String == "efficientnet-lite0-gem")
        #expect(Set(kinds.keys) == ["crop80", "q30"])
        #expect(kinds["q30"]?["queries"] as? Int == 8)
        // The missing query is reported and counted as a miss, not dropped.
        let failures = try #require(object["failures"] as? [[String: String]])
        #expect(failures.count == 1)
        let failedPath = failures.first?["path"] ?? ""
        #expect(failedPath.hasSuffix("missing-file.jpg"))
        // Every query's own outcome, in manifest order, agrees with the summary.
        let outcomes = try #require(object["queries"] as? [[String: Any]])
        #expect(outcomes.count == 18)
        #expect(outcomes.filter { $0["match"] as? Bool == true }.allSatisfy { $0["first_correct_rank"] as? Int == 1 && $0["ap"] as? Double == 1 })
        #expect(outcomes.suffix(2).allSatisfy { $0["match"] as? Bool == false && $0["first_correct_rank"] is NSNull })
        #expect(outcomes.last?["path"] as? String == failedPath)
        #expect(outcomes.first?["kind"] as? String == "crop80")
        // Runs eval on the tiny manifest with more arguments; returns its JSON answer.
        func evaluate(_ arguments: [String]) throws -> [String: Any] {
            let run = try runCommand(try TestData.executable(), ["eval", manifestURL.path, "--json", "--top", "10"] + arguments,
                                     environment: ProcessInfo.processInfo.environment.merging(["TMPDIR": folder.path]) { $1 })
            #expect(run.status == 0, "\(run.stderr)")
            return try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        }
        // Fusion with the copy model, and whitening learned on the 8 gallery photos: both still find
        // every edited copy at rank 1 on this easy set.
        let fused = try evaluate(["--model", "efficientnet-lite0", "--model", "sscd-distilled", "--whiten"])
        #expect(fused["model"] as? String == "efficientnet-lite0+sscd-distilled, whitened")
        let fusedOverall = try #require(fused["overall"] as? [String: Any])
        #expect(fusedOverall["recall_at_1"] as? Double == 1)
        #expect(fusedOverall["queries"] as? Int == 16)
        // A cascade: the copy model ranks, the perceptual hash lifts what it is sure of (the
        // search option itself is tested in RetrievalTests).
        let cascade = try evaluate(["--model", "sscd-distilled", "--model", "phash", "--fusion", "cascade"])
        #expect(cascade["model"] as? String == "cascade(sscd-distilled, phash)")
        let cascadeOverall = try #require(cascade["overall"] as? [String: Any])
        #expect(cascadeOverall["recall_at_1"] as? Double == 1)
        #expect(cascadeOverall["queries"] as? Int == 16)
        for bad in [["--fusion", "cascade", "--whiten"], ["--fusion", "maximum"]] {
            let refused = try runCommand(try TestData.executable(), ["eval", manifestURL.path, "--model", "sscd", "--model", "phash"] + bad)
            #expect(refused.status == 64, "\(bad)")
        }
        // A kept store that holds images the next manifest does not list: they are counted and reported.
        let kept = folder.appendingPathComponent("kept-store").path
        _ = try runCommand(try TestData.executable(), ["eval", manifestURL.path, "--json", "--store", kept])
        let shorter = folder.appendingPathComponent("shorter.jsonl")
        try lines.filter { !$0.contains("\"distractor\"") }.joined(separator: "\n").write(to: shorter, atomically: false, encoding: .utf8)
        let reused = try runCommand(try TestData.executable(), ["eval", shorter.path, "--json", "--store", kept])
        #expect(reused.status == 0, "\(reused.stderr)")
        let reusedObject = try #require(try JSONSerialization.jsonObject(with: Data(reused.stdout.utf8)) as? [String: Any])
        #expect(reusedObject["store_images_not_in_manifest"] as? Int == 6)
        #expect(reused.stderr.contains("6 images the manifest does not list"))
        // The scratch store is gone.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasPrefix("lookalike-eval-") }
        #expect(leftovers.isEmpty)
    }
}

/// Whitening's linear algebra on small cases, where the answer is known.
@Suite("PCA-whitening")
struct WhiteningTests {
    @Test("the Jacobi eigendecomposition reproduces A v = lambda v for a random symmetric matrix")
    func eigen() {
        let n = 12
        var generator = SystemRandomNumberGenerator()
        var matrix = [Double](repeating: 0, count: n * n)
        for row in 0..<n {
            for column in row..<n {
                let value = Double.random(in: -1...1, using: &generator)
                matrix[row * n + column] = value
                matrix[column * n + row] = value
            }
        }
        let (values, vectors) = Whitening.symmetricEigen(matrix, size: n)
        for j in 0..<n {
            for row in 0..<n {
                var product = 0.0
                for k in 0..<n { product += matrix[row * n + k] * vectors[k * n + j] }
                #expect(abs(product - values[j] * vectors[row * n + j]) < 1e-9)
            }
        }
        // The eigenvectors are orthonormal.
        for a in 0..<n {
            for b in 0..<n {
                var dot = 0.0
                for k in 0..<n { dot += vectors[k * n + a] * vectors[k * n + b] }
                #expect(abs(dot - (a == b ? 1 : 0)) < 1e-9)
            }
        }
    }

    @Test("whitened training vectors have zero mean and equal variance on every kept axis")
    func whitened() throws {
        // Five points in 8 dimensions, spread 10, 5, 3 and 2 along four directions and not at all
        // along the rest: centring leaves at most four axes, and all four are far above the ridge.
        let coordinates: [[Float]] = [[0.9, -0.3, 0.5, 0.1], [-0.7, 0.8, -0.2, 0.6], [0.1, -0.9, -0.8, -0.4],
                                      [0.4, 0.6, 0.9, -0.9], [-0.8, -0.1, -0.3, 0.7]]
        let points = coordinates.map { c in [10 * c[0], 5 * c[1], 3 * c[2], 2 * c[3], 0, 0, 0, 1] }
        let whitening = try #require(Whitening(learningFrom: points, ridge: 0))
        #expect(whitening.axes.count == 4)
        // Without the ridge, every kept axis has variance exactly 1 before normalisation.
        let projected = points.map { point in
            whitening.axes.enumerated().map { index, axis in
                zip(axis, zip(point, whitening.mean).map { $0 - $1 }).map { $0 * $1 }.reduce(0, +) * whitening.scales[index]
            }
        }
        for axis in 0..<4 {
            let values = projected.map { $0[axis] }
            let mean = values.reduce(0, +) / Float(values.count)
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(values.count)
            #expect(abs(mean) < 1e-4)
            #expect(abs(variance - 1) < 1e-3, "axis \(axis): variance \(variance)")
        }
        // The ridge shrinks the variance of the weakest axis most.
        let ridged = try #require(Whitening(learningFrom: points))
        #expect(zip(ridged.scales, whitening.scales).allSatisfy { $0 < $1 })
        let applied = whitening.apply(points[0])
        #expect(abs(applied.reduce(0) { $0 + $1 * $1 } - 1) < 1e-5)
        #expect(Whitening(learningFrom: [[1, 2]]) == nil)
        #expect(Whitening(learningFrom: [[1, 2], [1, 2]]) == nil)
    }
}
