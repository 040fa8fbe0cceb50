import Embedding
import Foundation
import Imaging
import Storage

/// Region tiles: beside its whole-image vector, an item may hold vectors of parts of itself (the
/// four quarters and the centre), so a detail of a scene finds the scene. A search with tiles
/// scores each item by the best of its whole image and its parts, a part counting `margin` less.
///
/// A model's tiles are stored as one more vector per item, under the model's name with `#tiles`,
/// made of the parts' vectors one after another (`parts` × the model's dimension): the stores
/// keep one vector per item and model, and need no schema of their own for tiles. The engine
/// indexes each part on its own (`TileVectors`), under the id `item#part`.
enum Tiles {
    static let suffix = "#tiles"

    /// The parts, as fractions of the upright image: the four quarters, then the centre (half the
    /// width and half the height each).
    static let regions: [ImageRegion] = [(0, 0), (0.5, 0), (0, 0.5), (0.5, 0.5), (0.25, 0.25)].compactMap {
        try? ImageRegion(x: $0.0, y: $0.1, width: 0.5, height: 0.5)
    }

    static var parts: Int { regions.count }

    /// How much a part must beat its whole image by to count: an item scores
    /// max(whole, best part − margin). A plain max (0) lets the parts of unrelated images outscore
    /// whole-image matches (copies µAP 0.846 to 0.686 on half of the copies set). Fitted by
    /// `scripts/fit_tiles.py` on one half of the queries (the margin whose whole-image queries lose
    /// at most a point, with the most parts found first) and reported on the other (docs/QUALITY.md).
    static let margin: Float = 0.12

    /// The name the tiles of `model` are stored under, and back (nil for a name that is no tiles').
    static func model(of model: String) -> String { model + suffix }

    static func base(of tilesModel: String) -> String? {
        tilesModel.hasSuffix(suffix) ? String(tilesModel.dropLast(suffix.count)) : nil
    }

    /// The fingerprint of a model's tiles: the model's own fingerprint and the layout, so tiles
    /// made by another model or cut another way never mix with these.
    static func fingerprint(of modelFingerprint: String) -> String {
        modelFingerprint + " tiles:2x2+centre@2x"
    }

    /// The manifest the tile index is built with: the model's, under the tiles' name (each part
    /// is a vector of the model).
    static func manifest(of manifest: ModelManifest) -> ModelManifest {
        var tiles = manifest
        tiles.name = model(of: manifest.name)
        return tiles
    }

    /// The id of one part of an item in the tile index, and back.
    static func partID(_ item: String, _ part: Int) -> String { "\(item)#\(part)" }

    /// The ids of every part of an item.
    static func partIDs(of item: String) -> [String] { (0..<parts).map { partID(item, $0) } }

    /// The region of a part id (`item#part`); nil for an id that names no part.
    static func region(ofPart id: String) -> ImageRegion? {
        guard let mark = id.lastIndex(of: "#"), let part = Int(id[id.index(after: mark)...]), regions.indices.contains(part) else {
            return nil
        }
        return regions[part]
    }

    static func item(ofPart id: String) -> String {
        guard let mark = id.lastIndex(of: "#") else { return id }
        return String(id[..<mark])
    }

    /// The stored vector of an item's tiles: its parts' vectors one after another.
    static func joined(_ vectors: [[Float]]) -> [Float] { vectors.flatMap { $0 } }

    /// The parts of a stored tiles vector; nil when its length is not a whole number of parts.
    static func split(_ vector: [Float], dimension: Int) -> [[Float]]? {
        guard dimension > 0, vector.count == dimension * parts else { return nil }
        return (0..<parts).map { Array(vector[($0 * dimension)..<(($0 + 1) * dimension)]) }
    }
}

/// What `ModelIndexes` reads to build and keep a model's index: one model's vectors in pages,
/// their ids, their generation, some by id, and where snapshots go.
protocol IndexedVectors: Sendable {
    var directory: URL { get }
    /// Whether the store searches these vectors itself (then no index is built).
    var searchesVectors: Bool { get }
    func identity() throws -> UUID
    func vectorGeneration(model: String) throws -> Int64
    func vectorCount(model: String) throws -> Int
    func forEachVectorPage(model: String, pageSize: Int, _ body: ([StoredEmbedding]) throws -> Bool) throws
    func vectorIDsAndGeneration(model: String) throws -> (ids: [String], generation: Int64)
    func vectors(model: String, ids: [String]) throws -> [StoredEmbedding]
}

/// A store's vectors as they are: one per item and model.
struct StoredVectors: IndexedVectors {
    let store: any Store

    var directory: URL { store.directory }
    var searchesVectors: Bool { store.searchesVectors }
    func identity() throws -> UUID { try store.identity() }
    func vectorGeneration(model: String) throws -> Int64 { try store.vectorGeneration(model: model) }
    func vectorCount(model: String) throws -> Int { try store.vectorCount(model: model) }
    func forEachVectorPage(model: String, pageSize: Int, _ body: ([StoredEmbedding]) throws -> Bool) throws {
        try store.forEachVectorPage(model: model, pageSize: pageSize, body)
    }
    func vectorIDsAndGeneration(model: String) throws -> (ids: [String], generation: Int64) {
        try store.vectorIDsAndGeneration(model: model)
    }
    func vectors(model: String, ids: [String]) throws -> [StoredEmbedding] { try store.vectors(model: model, ids: ids) }
}

/// A store's tiles vectors split into their parts: each part a vector of the model, under the id
/// `item#part`. Always indexed by the engine (a store's own index would compare whole tiles
/// vectors, not parts). A stored vector that is not a whole number of parts is an error naming
/// the item; parts of the wrong dimension are refused by the index as any vector is.
struct TileVectors: IndexedVectors {
    let store: any Store

    var directory: URL { store.directory }
    var searchesVectors: Bool { false }
    func identity() throws -> UUID { try store.identity() }
    func vectorGeneration(model: String) throws -> Int64 { try store.vectorGeneration(model: model) }
    func vectorCount(model: String) throws -> Int { try store.vectorCount(model: model) * Tiles.parts }

    func forEachVectorPage(model: String, pageSize: Int, _ body: ([StoredEmbedding]) throws -> Bool) throws {
        try store.forEachVectorPage(model: model, pageSize: max(1, pageSize / Tiles.parts)) { page in
            try body(try page.flatMap { try split($0, model: model) })
        }
    }

    func vectorIDsAndGeneration(model: String) throws -> (ids: [String], generation: Int64) {
        let (ids, generation) = try store.vectorIDsAndGeneration(model: model)
        return (ids.flatMap(Tiles.partIDs(of:)), generation)
    }

    func vectors(model: String, ids: [String]) throws -> [StoredEmbedding] {
        var items: [String] = []
        var seen = Set<String>()
        for id in ids where seen.insert(Tiles.item(ofPart: id)).inserted { items.append(Tiles.item(ofPart: id)) }
        let wanted = Set(ids)
        return try store.vectors(model: model, ids: items).flatMap { try split($0, model: model) }.filter { wanted.contains($0.id) }
    }

    private func split(_ stored: StoredEmbedding, model: String) throws -> [StoredEmbedding] {
        guard let parts = Tiles.split(stored.vector, dimension: stored.vector.count / Tiles.parts) else {
            throw EngineError.incompatibleVectors(model: model, reason: "item \(stored.id) has a tiles vector of \(stored.vector.count) "
                + "values, not \(Tiles.parts) equal parts")
        }
        return parts.enumerated().map { (Tiles.partID(stored.id, $0.offset), $0.element) }
    }
}

extension Engine {
    /// Forgets a model's region tiles, and those of the tuned models over it (the items stay,
    /// searched whole, and may gain tiles again with `add --tiles`). Returns how many items had them.
    @discardableResult
    public func removeTiles(model: String) throws -> Int {
        guard !model.contains(TunedModels.separator) else {
            throw EngineError.badOption("\(model) is a tuned model: its tiles are its base's, projected; remove the base model's tiles")
        }
        for tuned in try store.tunedModels() where tuned.base == model {
            try store.removeModel(Tiles.model(of: tuned.name))
            tileIndexes.forgetModel(Tiles.model(of: tuned.name))
        }
        let tiles = Tiles.model(of: model)
        let removed = try store.removeModel(tiles)
        tileIndexes.forgetModel(tiles)
        return removed
    }
}
