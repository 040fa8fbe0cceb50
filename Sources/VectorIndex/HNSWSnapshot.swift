import Foundation
import LookalikeSupport

/// Why a snapshot could not be read. Every case means: rebuild the index from the catalog.
public enum SnapshotError: Error, Sendable, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case unwritable(path: String, reason: String)
    case notASnapshot(path: String)
    case unsupportedVersion(path: String, version: UInt32)
    case corrupt(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): return "cannot read index snapshot \(path): \(reason)"
        case .unwritable(let path, let reason): return "cannot write index snapshot \(path): \(reason)"
        case .notASnapshot(let path): return "\(path) is not an index snapshot"
        case .unsupportedVersion(let path, let version): return "index snapshot \(path) has unsupported version \(version)"
        case .corrupt(let path, let reason): return "index snapshot \(path) is damaged: \(reason)"
        }
    }
}

/// The snapshot file of an `HNSWIndex`, format version 2 (all integers little-endian):
///
///     "LKHNSW\0\2"                                     8-byte magic
///     header (96 bytes) + its CRC-32                   version, dimension, metric, M, efConstruction,
///                                                      efSearch, exact-filter threshold, seed, node count,
///                                                      removed count, entry point, top level, random state,
///                                                      vector encoding, the owner's external version
///                                                      and identity (16 bytes, zero when none)
///     sections, each: tag (4 bytes), byte length (u64), CRC-32 (u32), payload
///       QUNT float32 minimum, then step, per dimension (8-bit encoding only)
///       NODE bottom-layer records as held in memory: link count, link slots, encoded vector
///       LEVL int32 levels   UPPR int32 upper links
///       LABL labels (u32 length + UTF-8 each)      REMV one byte per node (1 = removed)
///
/// Written to a temporary file, flushed and renamed, so a crash leaves the old snapshot or the new
/// one, never half of one. Read through a memory map; every length and checksum is verified, and
/// any mismatch is an error (the caller rebuilds from the catalog) rather than a wrong answer.
/// Files of an older version are refused with `unsupportedVersion`, which also means: rebuild.
extension HNSWIndex {
    static let snapshotVersion: UInt32 = 2
    static let snapshotMagic: [UInt8] = Array("LKHNSW".utf8) + [0, UInt8(snapshotVersion)]

    /// Writes the index to `url` atomically. Searches go on meanwhile; inserts wait.
    ///
    /// The temporary file is locked (`flock`) while it is written, so a save can tell a temporary
    /// file of a live writer from one a killed process left behind, and removes the latter; the
    /// folder is synced after the rename, so the new name survives a power cut too.
    public func save(to url: URL) throws {
        Self.removeOrphanedTemporaries(of: url)
        let folder = url.deletingLastPathComponent()
        let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).tmp")
        let descriptor = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw SnapshotError.unwritable(path: url.path, reason: "cannot create \(temporary.lastPathComponent): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        _ = flock(descriptor, LOCK_EX)
        do {
            let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: false)
            try lock.reading { try writeSnapshot(to: handle) }
            try handle.synchronize()
            guard rename(temporary.path, url.path) == 0 else {
                throw SnapshotError.unwritable(path: url.path, reason: String(cString: strerror(errno)))
            }
        } catch let error as SnapshotError {
            unlink(temporary.path)
            throw error
        } catch {
            unlink(temporary.path)
            throw SnapshotError.unwritable(path: url.path, reason: error.localizedDescription)
        }
        let directory = open(folder.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            _ = fsync(directory)
            close(directory)
        }
    }

    /// Deletes the temporary files of earlier saves to `url` that no live writer holds (their
    /// process was killed mid-save). Returns how many were removed.
    @discardableResult
    static func removeOrphanedTemporaries(of url: URL) -> Int {
        let folder = url.deletingLastPathComponent()
        let prefix = ".\(url.lastPathComponent)."
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        var removed = 0
        for name in names where name.hasPrefix(prefix) && name.hasSuffix(".tmp") {
            let path = folder.appendingPathComponent(name).path
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { continue }
            if flock(descriptor, LOCK_EX | LOCK_NB) == 0, unlink(path) == 0 { removed += 1 }
            close(descriptor)
        }
        return removed
    }

    /// Reads an index written by `save(to:)`, through a memory map.
    public static func load(from url: URL) throws -> HNSWIndex {
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw SnapshotError.unreadable(path: url.path, reason: error.localizedDescription)
        }
        return try data.withUnsafeBytes { raw in try decodeSnapshot(raw, path: url.path) }
    }

    private static func decodeSnapshot(_ raw: UnsafeRawBufferPointer, path: String) throws -> HNSWIndex {
        var reader = SnapshotReader(raw: raw, path: path)
        guard raw.count >= 8, try reader.bytes(6) == Array(snapshotMagic.prefix(6)) else {
            throw SnapshotError.notASnapshot(path: path)
        }
        let magicVersion = try reader.bytes(2)
        guard magicVersion == Array(snapshotMagic.suffix(2)) else {
            throw SnapshotError.unsupportedVersion(path: path, version: UInt32(magicVersion.last ?? 0))
        }
        let headerBytes = try reader.bytes(96)
        guard try reader.u32() == CRC32.checksum(headerBytes) else { throw SnapshotError.corrupt(path: path, reason: "header checksum") }
        let header = try headerBytes.withUnsafeBytes { bytes in try SnapshotHeader(bytes, path: path) }
        let dimension = header.dimension
        var encoding = VectorEncoding.float32
        switch header.encodingCode {
        case VectorEncoding.float32.code: encoding = .float32
        case VectorEncoding.float16.code: encoding = .float16
        case 2:
            let values: [Float] = try reader.section("QUNT", count: 2 * dimension)
            guard values.allSatisfy(\.isFinite) else { throw SnapshotError.corrupt(path: path, reason: "quantiser values") }
            encoding = .int8(ScalarQuantizer(minimum: Array(values[0..<dimension]), scale: Array(values[dimension...])))
        default:
            throw SnapshotError.corrupt(path: path, reason: "unknown vector encoding \(header.encodingCode)")
        }
        let index = HNSWIndex(dimension: dimension, metric: header.metric, parameters: header.parameters, encoding: encoding)
        let nodes = header.nodes
        let topLevel = header.topLevel
        let nodeBytes = try reader.rawSection("NODE")
        guard nodeBytes.count == nodes * index.records.stride else {
            throw SnapshotError.corrupt(path: path, reason: "section NODE has \(nodeBytes.count) bytes, expected \(nodes * index.records.stride)")
        }
        let levels: [Int32] = try reader.section("LEVL", count: nodes)
        guard levels.allSatisfy({ $0 >= 0 && Int($0) <= max(0, topLevel) }) else {
            throw SnapshotError.corrupt(path: path, reason: "node levels out of range")
        }
        let upperTotal = levels.reduce(0) { $0 + Int($1) } * (index.maxLinks + 1)
        let upper: [Int32] = try reader.section("UPPR", count: upperTotal)
        let labels = try reader.labels(count: nodes)
        let removed: [UInt8] = try reader.section("REMV", count: nodes)
        guard reader.atEnd else { throw SnapshotError.corrupt(path: path, reason: "trailing bytes") }
        index.records.load(nodeBytes, count: nodes)
        guard removed.filter({ $0 != 0 }).count == header.removedCount,
              bottomLinksValid(index.records, width: index.maxLinksBottom),
              linksValid(upper, width: index.maxLinks, nodes: nodes)
        else { throw SnapshotError.corrupt(path: path, reason: "inconsistent graph") }

        index.levels = levels
        var offset = 0
        index.upperLinks = levels.map { level in
            let width = Int(level) * (index.maxLinks + 1)
            defer { offset += width }
            return Array(upper[offset..<(offset + width)])
        }
        index.labels = labels
        index.removed = removed.map { $0 != 0 }
        index.removedCount = header.removedCount
        var nodeOf: [String: Int32] = [:]
        nodeOf.reserveCapacity(nodes - header.removedCount)
        for (node, label) in labels.enumerated() where removed[node] == 0 { nodeOf[label] = Int32(node) }
        index.nodeOf = nodeOf
        index.entryPoint = nodes == 0 ? -1 : header.entryPoint
        index.topLevel = nodes == 0 ? -1 : topLevel
        index.random = SplitMix64(seed: header.randomState)
        index.storedExternalVersion = header.externalVersion
        index.storedExternalIdentity = header.externalIdentity
        return index
    }

    /// Link lists of `width` slots after a count: every count within bounds, every link a real node.
    private static func linksValid(_ links: [Int32], width: Int, nodes: Int) -> Bool {
        var start = 0
        while start < links.count {
            let count = Int(links[start])
            guard count >= 0, count <= width else { return false }
            for slot in (start + 1)..<(start + 1 + count) where links[slot] < 0 || Int(links[slot]) >= nodes { return false }
            start += width + 1
        }
        return true
    }

    private static func bottomLinksValid(_ records: NodeRecords, width: Int) -> Bool {
        let nodes = records.count
        for node in 0..<nodes {
            let links = records.links(Int32(node))
            let count = Int(links[0])
            guard count >= 0, count <= width else { return false }
            for slot in stride(from: 1, through: count, by: 1) where links[slot] < 0 || Int(links[slot]) >= nodes { return false }
        }
        return true
    }

    /// Writes the whole file; runs under the reader lock. Large sections go out without a copy.
    private func writeSnapshot(to handle: FileHandle) throws {
        var header = SnapshotWriter()
        header.u32(Self.snapshotVersion)
        header.u32(UInt32(dimension))
        header.u32(metric.code)
        header.u32(UInt32(parameters.m))
        header.u32(UInt32(parameters.efConstruction))
        header.u32(UInt32(parameters.efSearch))
        header.u32(UInt32(parameters.exactFilterThreshold))
        header.u64(parameters.seed)
        header.u64(UInt64(labels.count))
        header.u64(UInt64(removedCount))
        header.u32(UInt32(bitPattern: entryPoint))
        header.u32(UInt32(bitPattern: Int32(topLevel)))
        header.u64(random.state)
        header.u32(encoding.code)
        header.u64(storedExternalVersion)
        if let identity = storedExternalIdentity {
            header.bytes(withUnsafeBytes(of: identity.uuid) { Array($0) })
        }
        header.pad(to: 96)

        var file = SnapshotWriter()
        file.bytes(Self.snapshotMagic)
        file.bytes(header.output)
        file.u32(CRC32.checksum(header.output))
        if case .int8(let quantizer) = encoding { file.section("QUNT", quantizer.minimum + quantizer.scale) }
        try handle.write(contentsOf: file.take())
        try SnapshotWriter.writeSection("NODE", UnsafeRawBufferPointer(start: records.base, count: records.bytes), to: handle)
        file.section("LEVL", levels)
        file.section("UPPR", upperLinks.flatMap { $0 })
        var labelBytes = SnapshotWriter()
        for label in labels {
            let utf8 = Array(label.utf8)
            labelBytes.u32(UInt32(utf8.count))
            labelBytes.bytes(utf8)
        }
        file.rawSection("LABL", labelBytes.output)
        file.section("REMV", removed.map { $0 ? UInt8(1) : 0 })
        try handle.write(contentsOf: file.take())
    }
}

/// The fixed-size header of a snapshot, range-checked as it is read.
private struct SnapshotHeader {
    let dimension: Int
    let metric: Metric
    let parameters: HNSWIndex.Parameters
    let nodes: Int
    let removedCount: Int
    let entryPoint: Int32
    let topLevel: Int
    let randomState: UInt64
    let encodingCode: UInt32
    let externalVersion: UInt64
    let externalIdentity: UUID?

    init(_ bytes: UnsafeRawBufferPointer, path: String) throws {
        var header = SnapshotReader(raw: bytes, path: path)
        let version = try header.u32()
        guard version == HNSWIndex.snapshotVersion else { throw SnapshotError.unsupportedVersion(path: path, version: version) }
        let dimension = Int(try header.u32())
        let metricCode = try header.u32()
        guard let metric = Metric.allCases.first(where: { $0.code == metricCode }) else {
            throw SnapshotError.corrupt(path: path, reason: "unknown metric \(metricCode)")
        }
        let m = Int(try header.u32())
        let efConstruction = Int(try header.u32())
        let efSearch = Int(try header.u32())
        let threshold = Int(try header.u32())
        let seed = try header.u64()
        let nodes = try header.u64()
        let removedCount = try header.u64()
        let entryPoint = Int32(bitPattern: try header.u32())
        let topLevel = Int32(bitPattern: try header.u32())
        randomState = try header.u64()
        encodingCode = try header.u32()
        externalVersion = try header.u64()
        let identity = try header.bytes(16)
        externalIdentity = identity.allSatisfy { $0 == 0 } ? nil : identity.withUnsafeBytes { UUID(uuid: $0.loadUnaligned(as: uuid_t.self)) }
        guard (1...65536).contains(dimension), (2...1024).contains(m), nodes < UInt64(Int32.max), removedCount <= nodes,
              entryPoint >= -1, Int64(entryPoint) < Int64(nodes), (-1...32).contains(topLevel),
              (nodes == 0) == (entryPoint == -1)
        else { throw SnapshotError.corrupt(path: path, reason: "header values out of range") }
        self.dimension = dimension
        self.metric = metric
        parameters = HNSWIndex.Parameters(m: m, efConstruction: efConstruction, efSearch: efSearch, seed: seed,
                                          exactFilterThreshold: threshold)
        self.nodes = Int(nodes)
        self.removedCount = Int(removedCount)
        self.entryPoint = entryPoint
        self.topLevel = Int(topLevel)
    }
}

extension Metric {
    var code: UInt32 {
        switch self {
        case .cosine: return 1
        case .innerProduct: return 2
        case .l2: return 3
        }
    }
}

struct SnapshotWriter {
    private(set) var output: [UInt8] = []

    mutating func bytes(_ bytes: [UInt8]) { output.append(contentsOf: bytes) }
    mutating func u32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { output.append(contentsOf: $0) } }
    mutating func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { output.append(contentsOf: $0) } }
    mutating func pad(to size: Int) { output.append(contentsOf: repeatElement(0, count: max(0, size - output.count))) }

    mutating func section<T>(_ tag: String, _ values: [T]) {
        rawSection(tag, values.withUnsafeBytes { Array($0) })
    }

    mutating func rawSection(_ tag: String, _ payload: [UInt8]) {
        bytes(Array(tag.utf8.prefix(4)))
        u64(UInt64(payload.count))
        u32(CRC32.checksum(payload))
        bytes(payload)
    }

    /// The bytes so far, leaving the writer empty.
    mutating func take() -> Data {
        defer { output.removeAll() }
        return Data(output)
    }

    /// Writes one section straight from memory the caller keeps alive.
    static func writeSection(_ tag: String, _ payload: UnsafeRawBufferPointer, to handle: FileHandle) throws {
        var head = SnapshotWriter()
        head.bytes(Array(tag.utf8.prefix(4)))
        head.u64(UInt64(payload.count))
        head.u32(CRC32.checksum(payload))
        try handle.write(contentsOf: head.take())
        guard let base = payload.baseAddress, payload.count > 0 else { return }
        try handle.write(contentsOf: Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: base), count: payload.count,
                                          deallocator: .none))
    }
}

/// Reads a snapshot straight from its (memory-mapped) bytes; every read is bounds-checked.
struct SnapshotReader {
    let raw: UnsafeRawBufferPointer
    let path: String
    private var offset = 0

    init(raw: UnsafeRawBufferPointer, path: String) {
        self.raw = raw
        self.path = path
    }

    var atEnd: Bool { offset == raw.count }

    mutating func slice(_ count: Int) throws -> UnsafeRawBufferPointer {
        guard count >= 0, count <= raw.count - offset else {
            throw SnapshotError.corrupt(path: path, reason: "file is truncated")
        }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + count)])
    }

    mutating func bytes(_ count: Int) throws -> [UInt8] { Array(try slice(count)) }

    mutating func u32() throws -> UInt32 { UInt32(littleEndian: try slice(4).loadUnaligned(as: UInt32.self)) }

    mutating func u64() throws -> UInt64 { UInt64(littleEndian: try slice(8).loadUnaligned(as: UInt64.self)) }

    /// A section of `count` fixed-size values, checked for its tag, length and checksum, copied in one go.
    mutating func section<T>(_ tag: String, count: Int) throws -> [T] {
        let payload = try rawSection(tag)
        guard payload.count == count * MemoryLayout<T>.stride else {
            throw SnapshotError.corrupt(
                path: path, reason: "section \(tag) has \(payload.count) bytes, expected \(count * MemoryLayout<T>.stride)")
        }
        return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            if let destination = buffer.baseAddress, let source = payload.baseAddress {
                UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: payload.count)
            }
            initialized = count
        }
    }

    mutating func rawSection(_ tag: String) throws -> UnsafeRawBufferPointer {
        guard try bytes(4) == Array(tag.utf8) else { throw SnapshotError.corrupt(path: path, reason: "section \(tag) missing") }
        let length = try u64()
        let checksum = try u32()
        guard length <= UInt64(raw.count - offset) else { throw SnapshotError.corrupt(path: path, reason: "file is truncated") }
        let payload = try slice(Int(length))
        guard CRC32.checksum(payload) == checksum else { throw SnapshotError.corrupt(path: path, reason: "section \(tag) checksum") }
        return payload
    }

    mutating func labels(count: Int) throws -> [String] {
        var reader = SnapshotReader(raw: try rawSection("LABL"), path: path)
        var labels: [String] = []
        labels.reserveCapacity(count)
        for _ in 0..<count {
            let length = Int(try reader.u32())
            labels.append(String(decoding: try reader.slice(length), as: UTF8.self))
        }
        guard reader.atEnd else { throw SnapshotError.corrupt(path: path, reason: "labels section has extra bytes") }
        return labels
    }
}

/// CRC-32 (IEEE 802.3, the polynomial of zlib and PNG), for snapshot integrity checks.
/// Slicing-by-8: eight bytes per step through eight tables, several times faster than a byte
/// at a time, which matters when a snapshot of a million vectors is checked on every open.
enum CRC32 {
    private static let tables: [[UInt32]] = {
        var first = [UInt32](repeating: 0, count: 256)
        for index in 0..<256 {
            var value = UInt32(index)
            for _ in 0..<8 { value = value & 1 == 1 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
            first[index] = value
        }
        var tables = [first]
        for _ in 1..<8 {
            let previous = tables[tables.count - 1]
            tables.append((0..<256).map { index in (previous[index] >> 8) ^ first[Int(previous[index] & 0xFF)] })
        }
        return tables
    }()

    private static let flat: [UInt32] = tables.flatMap { $0 }

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }

    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        flat.withUnsafeBufferPointer { table in
            var crc: UInt32 = 0xFFFF_FFFF
            var index = 0
            let count = bytes.count
            while index + 8 <= count {
                let low = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt32.self)) ^ crc
                let high = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: index + 4, as: UInt32.self))
                crc = table[7 * 256 + Int(low & 0xFF)] ^ table[6 * 256 + Int((low >> 8) & 0xFF)]
                    ^ table[5 * 256 + Int((low >> 16) & 0xFF)] ^ table[4 * 256 + Int(low >> 24)]
                    ^ table[3 * 256 + Int(high & 0xFF)] ^ table[2 * 256 + Int((high >> 8) & 0xFF)]
                    ^ table[1 * 256 + Int((high >> 16) & 0xFF)] ^ table[Int(high >> 24)]
                index += 8
            }
            while index < count {
                crc = table[Int((crc ^ UInt32(bytes[index])) & 0xFF)] ^ (crc >> 8)
                index += 1
            }
            return crc ^ 0xFFFF_FFFF
        }
    }
}
