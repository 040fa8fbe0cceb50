import Embedding
import Foundation
import VectorIndex

/// Database-side augmentation, αDBA (Radenović, Tolias and Chum, 2019): every stored vector is
/// replaced by the normalised sum of itself and its `neighbours` nearest stored vectors, each
/// weighted by its similarity raised to α, so that the views of one thing pull together; the
/// query (as it is) is then ranked exactly against the augmented vectors.
///
/// The augmented collection is computed once per stage value (one search per stored vector) and
/// kept, as `FusionStage` keeps its fused one: meant for measuring (`lookalike eval --augment N`)
/// before it becomes a derived model kept in the store.
public final class AugmentationStage: RankingStage, @unchecked Sendable {
    public let neighbours: Int
    public let alpha: Float
    private let lock = NSLock()
    private var augmented: FlatIndex?

    public init(neighbours: Int, alpha: Float = 3) throws {
        guard (1...100).contains(neighbours) else {
            throw EngineError.badOption("augmentation takes 1 to 100 neighbours, not \(neighbours)")
        }
        self.neighbours = neighbours
        self.alpha = alpha
    }

    public var name: String { "augmentation(\(neighbours), α \(alpha))" }

    public func rank(_ candidates: [Candidate], context: RankingContext) throws -> [Candidate] {
        guard let query = try context.queryVector(model: context.model.name) else { return candidates }
        let index = try augmentedIndex(context)
        guard query.count == index.dimension else { return candidates }
        return try index.search(query, k: max(context.top, candidates.count), filter: context.filter)
            .map { Candidate(id: $0.id, score: $0.score) }
    }

    private func augmentedIndex(_ context: RankingContext) throws -> FlatIndex {
        if let augmented = lock.withLock({ augmented }) { return augmented }
        let stored = try context.allVectors(model: context.model.name).sorted { $0.id < $1.id }
        let dimension = stored.first?.vector.count ?? context.model.dimension
        let original = FlatIndex(dimension: max(1, dimension))
        for (id, vector) in stored where vector.count == dimension { try original.add(id: id, vector: vector) }
        let byID = Dictionary(stored.map { ($0.id, $0.vector) }, uniquingKeysWith: { first, _ in first })
        let index = FlatIndex(dimension: max(1, dimension))
        for (id, vector) in stored where vector.count == dimension {
            let neighbourhood = try original.search(vector, k: neighbours + 1, filter: nil)
                .compactMap { hit in hit.id == id ? nil : byID[hit.id].map { (hit.score, $0) } }
            try index.add(id: id, vector: VectorNormalization.normalized(ExpansionStage.expanded(vector, by: neighbourhood, alpha: alpha)))
        }
        lock.withLock { augmented = index }
        return index
    }
}
