/// Retrieval-quality measures over ranked answers, as image-retrieval and copy-detection papers
/// define them. Pure functions of the rankings and the ground truth, so they are tested on small
/// hand-computed cases.
public enum RetrievalMetrics {
    /// One query's ranked answer: the returned ids best first with their scores, and the ids that
    /// are correct for it.
    public struct Ranking: Sendable {
        public let hits: [(id: String, score: Float)]
        public let relevant: Set<String>

        public init(hits: [(id: String, score: Float)], relevant: Set<String>) {
            self.hits = hits
            self.relevant = relevant
        }
    }

    /// Average precision of one ranking: the mean, over the relevant items, of the precision at the
    /// rank where each is found (0 for a relevant item not returned at all).
    public static func averagePrecision(_ ranking: Ranking) -> Double {
        guard !ranking.relevant.isEmpty else { return 0 }
        var found = 0
        var sum = 0.0
        for (rank, hit) in ranking.hits.enumerated() where ranking.relevant.contains(hit.id) {
            found += 1
            sum += Double(found) / Double(rank + 1)
        }
        return sum / Double(ranking.relevant.count)
    }

    /// MAP@R (Musgrave, Belongie and Lim, 2020): with R the number of relevant items, the sum of the
    /// precision at each rank i <= R where a relevant item sits, divided by R.
    public static func averagePrecisionAtR(_ ranking: Ranking) -> Double {
        let r = ranking.relevant.count
        guard r > 0 else { return 0 }
        var found = 0
        var sum = 0.0
        for (rank, hit) in ranking.hits.prefix(r).enumerated() where ranking.relevant.contains(hit.id) {
            found += 1
            sum += Double(found) / Double(rank + 1)
        }
        return sum / Double(r)
    }

    /// The share of the first `k` ranks that hold a relevant item (missing ranks count as wrong).
    public static func precision(at k: Int, _ ranking: Ranking) -> Double {
        guard k > 0 else { return 0 }
        return Double(ranking.hits.prefix(k).filter { ranking.relevant.contains($0.id) }.count) / Double(k)
    }

    /// Whether at least one relevant item is among the first `k` ranks (Recall@k as image-retrieval
    /// and copy-detection papers report it: 1 or 0 per query, averaged over queries).
    public static func hit(at k: Int, _ ranking: Ranking) -> Bool {
        ranking.hits.prefix(k).contains { ranking.relevant.contains($0.id) }
    }

    /// A point of the precision-recall curve over all (query, hit) pairs ranked by score.
    public struct CurvePoint: Sendable, Equatable {
        /// Pairs at or above this score are predicted copies.
        public let threshold: Float
        public let precision: Double
        public let recall: Double

        public init(threshold: Float, precision: Double, recall: Double) {
            self.threshold = threshold
            self.precision = precision
            self.recall = recall
        }
    }

    /// The micro-averaged precision-recall analysis of copy detection (the ISC 2021 / DISC21
    /// protocol): every (query, hit, score) pair of every query, ranked by score alone, is a
    /// prediction "this hit is a copy of this query". Queries without any correct item still
    /// count: their hits are false positives.
    public struct PairAnalysis: Sendable {
        /// Micro-average precision: the area under the curve, summing precision at each correct pair
        /// over the number of (query, correct item) pairs.
        public let microAveragePrecision: Double
        /// The highest recall at a threshold where precision is at least 0.9.
        public let recallAtPrecision90: Double
        /// The lowest score threshold with precision at least 0.99, and the recall there; nil when
        /// no threshold reaches that precision.
        public let thresholdAtPrecision99: CurvePoint?
        /// The curve, one point per distinct score, from the highest score down.
        public let curve: [CurvePoint]
        public let positives: Int
        public let pairs: Int
    }

    /// Ranks all pairs of all `rankings` by score. Pairs with equal scores are taken as one step
    /// with the wrong ones first, so ties never flatter the result.
    public static func pairAnalysis(_ rankings: [Ranking]) -> PairAnalysis {
        var pairs: [(score: Float, correct: Bool)] = []
        var positives = 0
        for ranking in rankings {
            positives += ranking.relevant.count
            var seen = Set<String>()
            for hit in ranking.hits where seen.insert(hit.id).inserted {
                pairs.append((hit.score, ranking.relevant.contains(hit.id)))
            }
        }
        pairs.sort { $0.score > $1.score || ($0.score == $1.score && !$0.correct && $1.correct) }
        var correct = 0
        var area = 0.0
        var curve: [CurvePoint] = []
        for (position, pair) in pairs.enumerated() {
            if pair.correct {
                correct += 1
                if positives > 0 { area += Double(correct) / Double(position + 1) / Double(positives) }
            }
            // A threshold can only sit between distinct scores.
            if position + 1 == pairs.count || pairs[position + 1].score != pair.score {
                curve.append(CurvePoint(threshold: pair.score, precision: Double(correct) / Double(position + 1),
                                        recall: positives > 0 ? Double(correct) / Double(positives) : 0))
            }
        }
        let recall90 = curve.filter { $0.precision >= 0.9 }.map(\.recall).max() ?? 0
        let threshold99 = curve.last { $0.precision >= 0.99 }
        return PairAnalysis(microAveragePrecision: area, recallAtPrecision90: recall90, thresholdAtPrecision99: threshold99,
                            curve: curve, positives: positives, pairs: pairs.count)
    }

    /// Every measure over a set of queries.
    public struct Summary: Sendable {
        /// Queries with at least one correct item: the per-query means are over these.
        public let queries: Int
        /// Queries with no correct item in the gallery (they count only in the pair analysis).
        public let queriesWithoutMatch: Int
        public let meanAveragePrecision: Double
        public let meanAveragePrecisionAtR: Double
        public let precisionAt1: Double
        public let precisionAt10: Double
        public let recallAt1: Double
        public let recallAt10: Double
        public let recallAt100: Double
        public let pairs: PairAnalysis
    }

    public static func summarize(_ rankings: [Ranking]) -> Summary {
        let judged = rankings.filter { !$0.relevant.isEmpty }
        func mean(_ value: (Ranking) -> Double) -> Double {
            judged.isEmpty ? 0 : judged.map(value).reduce(0, +) / Double(judged.count)
        }
        return Summary(
            queries: judged.count, queriesWithoutMatch: rankings.count - judged.count,
            meanAveragePrecision: mean(averagePrecision), meanAveragePrecisionAtR: mean(averagePrecisionAtR),
            precisionAt1: mean { precision(at: 1, $0) }, precisionAt10: mean { precision(at: 10, $0) },
            recallAt1: mean { hit(at: 1, $0) ? 1 : 0 }, recallAt10: mean { hit(at: 10, $0) ? 1 : 0 },
            recallAt100: mean { hit(at: 100, $0) ? 1 : 0 }, pairs: pairAnalysis(rankings))
    }
}
