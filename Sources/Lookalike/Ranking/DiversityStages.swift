import Embedding
import Foundation
import VectorIndex

/// Near-duplicate collapse (`SearchOptions.collapseCopies`): ten copies of one photo are one
/// answer, not ten. Walking the candidates best first, a candidate that is a copy of a hit
/// already kept (their cosine similarity reaches the model's calibrated duplicate threshold) is
/// folded into that hit, which lists it in `Candidate.copies` ("3 more copies"), instead of taking
/// a rank of its own.
public struct CollapseStage: RankingStage {
    public init() {}

    public var name: String { "collapse" }
    public var needsVectors: Bool { true }

    /// Enough candidates that `top` distinct answers remain after folding copies away.
    public func candidatePool(top: Int, collection: Int) -> Int {
        DiversityStage.pool(top: top)
    }

    public func rank(_ candidates: [Candidate], context: RankingContext) throws -> [Candidate] {
        guard let threshold = context.model.duplicateThreshold else {
            throw EngineError.noDuplicateThreshold(model: context.model.name)
        }
        var kept: [Candidate] = []
        for candidate in candidates {
            guard let vector = candidate.vector,
                  let owner = kept.firstIndex(where: { $0.vector.map { VectorMath.dot($0, vector) >= threshold } ?? false })
            else {
                kept.append(candidate)
                continue
            }
            kept[owner].copies.append(candidate.id)
        }
        return kept
    }
}

/// Maximal marginal relevance (Carbonell and Goldstein, 1998; `SearchOptions.diversity`): each
/// next hit is the candidate with the best `λ · relevance − (1 − λ) · redundancy`, where relevance
/// is its score and redundancy its highest cosine similarity to a hit already chosen. λ = 1 is the
/// plain ranking, λ = 0 pure novelty. Scores stay the candidates' own, so a diversified list is not
/// sorted by score.
public struct DiversityStage: RankingStage {
    public let lambda: Float
    /// Candidates to choose from, as a multiple of the hits asked for.
    public let poolFactor: Int

    /// λ must be in [0, 1].
    public init(lambda: Float, poolFactor: Int = 4) throws {
        guard lambda.isFinite, (0...1).contains(lambda) else {
            throw EngineError.badOption("diversity must be between 0 (most diverse) and 1 (plain ranking), not \(lambda)")
        }
        guard (1...100).contains(poolFactor) else { throw EngineError.badOption("the diversity pool factor must be 1 to 100") }
        self.lambda = lambda
        self.poolFactor = poolFactor
    }

    public var name: String { "diversity(\(lambda))" }
    public var needsVectors: Bool { true }

    /// How many candidates to diversify from: `factor` times the hits (four by default, measured
    /// in docs/QUALITY.md), at least 40, at most 4,000.
    static func pool(top: Int, factor: Int = 4) -> Int {
        min(max(factor * top, 40), max(top, 4_000))
    }

    /// Only the first ranks are chosen by MMR (each choice costs a pass over the pool); the rest
    /// follow by score.
    static let diversifiedRanks = 200

    public func candidatePool(top: Int, collection: Int) -> Int {
        Self.pool(top: top, factor: poolFactor)
    }

    public func rank(_ candidates: [Candidate], context: RankingContext) throws -> [Candidate] {
        var remaining = candidates
        var redundancy = [Float](repeating: -1, count: remaining.count)
        var chosen: [Candidate] = []
        let ranks = min(context.top, Self.diversifiedRanks, remaining.count)
        while chosen.count < ranks {
            var best = 0
            var bestValue = -Float.infinity
            for (offset, candidate) in remaining.enumerated() {
                let value = lambda * candidate.score - (1 - lambda) * max(0, redundancy[offset])
                if value > bestValue {
                    bestValue = value
                    best = offset
                }
            }
            let next = remaining.remove(at: best)
            redundancy.remove(at: best)
            chosen.append(next)
            guard let vector = next.vector else { continue }
            for (offset, candidate) in remaining.enumerated() {
                guard let other = candidate.vector else { continue }
                redundancy[offset] = max(redundancy[offset], VectorMath.dot(vector, other))
            }
        }
        return chosen + remaining
    }
}

/// Average query expansion, αQE (Radenović, Tolias and Chum, 2019; `SearchOptions.expansion`):
/// the query vector is joined by its `n` best neighbours, each weighted by its similarity raised
/// to α, and the normalised sum searches again. Neighbours of a good first answer pull in the
/// views of it that the query alone ranked too low.
public struct ExpansionStage: RankingStage {
    public let neighbours: Int
    public let alpha: Float

    public init(neighbours: Int, alpha: Float = 3) throws {
        guard (1...100).contains(neighbours) else {
            throw EngineError.badOption("query expansion takes 1 to 100 neighbours, not \(neighbours)")
        }
        guard alpha.isFinite, alpha >= 0 else { throw EngineError.badOption("the expansion exponent must be 0 or more") }
        self.neighbours = neighbours
        self.alpha = alpha
    }

    public var name: String { "expansion(\(neighbours), α \(alpha))" }
    public var needsVectors: Bool { true }

    public func candidatePool(top: Int, collection: Int) -> Int { max(top, neighbours) }

    public func rank(_ candidates: [Candidate], context: RankingContext) throws -> [Candidate] {
        guard let query = try context.queryVector(model: context.model.name) else { return candidates }
        let neighbourhood = candidates.prefix(neighbours).compactMap { candidate in candidate.vector.map { (candidate.score, $0) } }
        guard let expanded = VectorNormalization.unitVector(Self.expanded(query, by: neighbourhood, alpha: alpha)) else {
            return candidates
        }
        let pool = max(candidates.count, context.top)
        return try context.search(model: context.model.name, query: expanded, k: pool)
    }

    /// `vector` plus each neighbour weighted by its similarity to it raised to α (neighbours of
    /// another length, or not similar at all, left out), not yet normalised: αQE for a query,
    /// αDBA for a stored vector.
    static func expanded(_ vector: [Float], by neighbours: [(score: Float, vector: [Float])], alpha: Float) -> [Float] {
        var sum = vector
        for neighbour in neighbours where neighbour.vector.count == sum.count && neighbour.score > 0 {
            VectorMath.add(neighbour.vector, scaledBy: Float(Foundation.pow(Double(neighbour.score), Double(alpha))), to: &sum)
        }
        return sum
    }
}
