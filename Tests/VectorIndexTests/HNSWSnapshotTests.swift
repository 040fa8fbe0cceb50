import Foundation
import LookalikeSupport
import Testing
@testable import VectorIndex

@Suite("HNSW snapshots")
struct HNSWSnapshotTests {
    static func folder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("snapshot-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func sample() throws -> (HNSWIndex, [[Float]]) {
        let vectors = HNSWIndexTests.clustered(count: 2_000, dimension: 24, clusters: 20, seed: 21)
        let index = HNSWIndex(dimension: 24, parameters: .init(m: 8, efConstruction: 100, efSearch: 40))
        for (offset, vector) in vectors.enumerated() { try index.add(id: "item-\(offset)", vector: vector) }
        for offset in stride(from: 0, to: 2_000, by: 9) { index.remove(id: "item-\(offset)") }
        return (index, vectors)
    }

    @Test("a saved and loaded index answers exactly as the original, and keeps growing")
    func roundTrip() throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (index, vectors) = try Self.sample()
        let file = folder.appendingPathComponent("index.hnsw")
        index.externalVersion = 0xDEAD_BEEF_0042
        let owner = UUID()
        index.externalIdentity = owner
        try index.save(to: file)
        let loaded = try HNSWIndex.load(from: file)
        #expect(loaded.externalVersion == 0xDEAD_BEEF_0042)
        #expect(loaded.externalIdentity == owner)
        #expect(loaded.count == index.count)
        #expect(loaded.parameters == index.parameters)
        for query in vectors.prefix(200) {
            #expect(try loaded.search(query, k: 10, filter: nil) == (try index.search(query, k: 10, filter: nil)))
        }
        #expect(!loaded.contains(id: "item-0"))
        try loaded.add(id: "new", vector: vectors[0])
        #expect(try loaded.search(vectors[0], k: 1, filter: nil).first?.id == "new")
        // Saving over an existing snapshot replaces it.
        try loaded.save(to: file)
        #expect(try HNSWIndex.load(from: file).count == index.count + 1)
    }

    @Test("a save removes the temporary files a killed save left, never one a live writer holds")
    func orphanedTemporaries() throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (index, _) = try Self.sample()
        let file = folder.appendingPathComponent("index.hnsw")
        // A killed writer's file: nobody holds its lock. A live writer's: locked, as save() does.
        let orphan = folder.appendingPathComponent(".index.hnsw.\(UUID().uuidString).tmp")
        let live = folder.appendingPathComponent(".index.hnsw.\(UUID().uuidString).tmp")
        let other = folder.appendingPathComponent(".other.hnsw.\(UUID().uuidString).tmp")
        for url in [orphan, live, other] { try Data("half a snapshot".utf8).write(to: url) }
        let held = open(live.path, O_RDONLY)
        #expect(held >= 0 && flock(held, LOCK_EX) == 0)
        defer { close(held) }

        try index.save(to: file)
        let names = Set(try FileManager.default.contentsOfDirectory(atPath: folder.path))
        #expect(!names.contains(orphan.lastPathComponent), "the orphan is gone")
        #expect(names.contains(live.lastPathComponent), "a live writer's file stays")
        #expect(names.contains(other.lastPathComponent), "another snapshot's files are not this save's business")
        #expect(names.filter { $0.hasSuffix(".tmp") }.count == 2, "the save's own file became the snapshot")
        #expect(try HNSWIndex.load(from: file).count == index.count)
    }

    @Test("an empty index round-trips")
    func empty() throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("empty.hnsw")
        try HNSWIndex(dimension: 8, metric: .l2).save(to: file)
        let loaded = try HNSWIndex.load(from: file)
        #expect(loaded.count == 0 && loaded.metric == .l2)
        #expect(try loaded.search([Float](repeating: 0, count: 8), k: 3, filter: nil).isEmpty)
    }

    @Test("truncated, bit-flipped and foreign files are detected, never misread")
    func damage() throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (index, _) = try Self.sample()
        let file = folder.appendingPathComponent("index.hnsw")
        try index.save(to: file)
        let original = try Data(contentsOf: file)

        var damaged: [(String, Data)] = []
        for cut in [0, 7, 50, original.count / 3, original.count - 1] {
            damaged.append(("truncated at \(cut)", original.prefix(cut)))
        }
        var generator = SplitMix64(seed: 4)
        for _ in 0..<40 {
            var copy = original
            let position = Int(generator.next() % UInt64(original.count))
            copy[position] ^= UInt8(1 << (generator.next() % 8))
            damaged.append(("bit flip at \(position)", copy))
        }
        damaged.append(("text", Data("not an index".utf8)))
        damaged.append(("with a trailing byte", original + Data([0])))

        for (label, bytes) in damaged {
            let path = folder.appendingPathComponent("damaged.hnsw")
            try bytes.write(to: path)
            #expect(throws: SnapshotError.self, "\(label) was accepted") { _ = try HNSWIndex.load(from: path) }
        }
        #expect(throws: SnapshotError.self) { _ = try HNSWIndex.load(from: folder.appendingPathComponent("missing.hnsw")) }
    }

    @Test("a snapshot of an older format version is refused as such, so the caller rebuilds")
    func olderVersion() throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("v1.hnsw")
        try (Data("LKHNSW".utf8) + Data([0, 1]) + Data(count: 200)).write(to: file)
        #expect(throws: SnapshotError.unsupportedVersion(path: file.path, version: 1)) { _ = try HNSWIndex.load(from: file) }
    }

    @Test("CRC-32 matches the standard check value and a byte-at-a-time computation at every length")
    func crc() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([]) == 0)
        var generator = SplitMix64(seed: 8)
        let bytes = (0..<300).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        for length in [1, 7, 8, 9, 15, 16, 17, 64, 299, 300] {
            var crc: UInt32 = 0xFFFF_FFFF
            for byte in bytes.prefix(length) {
                crc ^= UInt32(byte)
                for _ in 0..<8 { crc = crc & 1 == 1 ? 0xEDB8_8320 ^ (crc >> 1) : crc >> 1 }
            }
            #expect(CRC32.checksum(Array(bytes.prefix(length))) == crc ^ 0xFFFF_FFFF, "length \(length)")
        }
    }
}
