import Foundation
import VectorIndex

/// The Swift side of `make bench-ann`: builds an `HNSWIndex` over the base vectors, then answers
/// the queries one at a time on one thread for each efSearch, and prints one JSON line per
/// setting. Inputs are raw little-endian files written by scripts/bench_ann.py:
/// `.f32` (int32 rows, int32 columns, float32 values) and `.i32` ground truth (same header, int32).
///
///     lookalike-bench BASE.f32 QUERIES.f32 TRUTH.i32 --m 16 --ef-construction 200 --ef 16,32,64,128 --repeats 3
///         [--encoding float32|float16|int8] [--filtered N=TRUTH.i32,...] [--filter hash|modulo]
///
/// Each `--filtered N=FILE` adds a sweep where searches pass one row in N, FILE holding the exact
/// neighbours among those rows. Which rows: by default those whose index hashes (Knuth's
/// multiplicative hash, 32 bits) below 2^32 / N, spread over the data; with `--filter modulo`,
/// those whose index is a multiple of N (on the clustered sets, whose row i lies in cluster
/// i mod C, such a filter keeps whole clusters: the hard, correlated case).
///
/// With float16 or int8 the graph holds compressed vectors and every query's candidates are
/// re-scored from the full-precision base vectors (which this process keeps in memory, as FAISS's
/// `IndexRefineFlat` does; in the engine they stay in the catalog on disk).
struct Matrix<Element> {
    let rows: Int
    let columns: Int
    let values: [Element]

    func row(_ index: Int) -> ArraySlice<Element> { values[(index * columns)..<((index + 1) * columns)] }
}

func readMatrix<Element>(_ path: String, as type: Element.Type) throws -> Matrix<Element> {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    guard data.count >= 8 else { throw BenchError("\(path): too short") }
    let header = data.withUnsafeBytes { Array($0.bindMemory(to: Int32.self).prefix(2)) }
    let rows = Int(header[0])
    let columns = Int(header[1])
    guard data.count == 8 + rows * columns * MemoryLayout<Element>.size else {
        throw BenchError("\(path): size does not match its header \(rows)x\(columns)")
    }
    let values = data.dropFirst(8).withUnsafeBytes { Array($0.bindMemory(to: Element.self)) }
    return Matrix(rows: rows, columns: columns, values: values)
}

/// The base vectors as the source of exact vectors for re-scoring; ids are row numbers.
struct BaseVectors: ExactVectorSource {
    let matrix: Matrix<Float>

    func exactVectors(for ids: [String]) throws -> [[Float]?] {
        ids.map { id in
            guard let row = Int(id), row >= 0, row < matrix.rows else { return nil }
            return Array(matrix.row(row))
        }
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func option(_ name: String, default value: String) -> String {
    let arguments = CommandLine.arguments
    guard let position = arguments.firstIndex(of: name), position + 1 < arguments.count else { return value }
    return arguments[position + 1]
}

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

func emit(_ object: [String: Any]) {
    if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
        print(String(decoding: data, as: UTF8.self))
    }
}

func run() throws {
    let arguments = CommandLine.arguments
    guard arguments.count >= 4 else {
        throw BenchError("usage: lookalike-bench BASE.f32 QUERIES.f32 TRUTH.i32 [--m M] [--ef-construction E] [--ef A,B,...] [--k K]")
    }
    let base = try readMatrix(arguments[1], as: Float.self)
    let queries = try readMatrix(arguments[2], as: Float.self)
    let truth = try readMatrix(arguments[3], as: Int32.self)
    let m = Int(option("--m", default: "16")) ?? 16
    let efConstruction = Int(option("--ef-construction", default: "200")) ?? 200
    let k = Int(option("--k", default: "10")) ?? 10
    let efs = option("--ef", default: "16,32,64,128,256").split(separator: ",").compactMap { Int($0) }
    let metric = Metric(rawValue: option("--metric", default: "cosine")) ?? .cosine
    let encodingName = option("--encoding", default: "float32")

    let buildStart = now()
    let encoding: VectorEncoding
    switch encodingName {
    case "float32": encoding = .float32
    case "float16": encoding = .float16
    case "int8":
        encoding = .int8(ScalarQuantizer.train(on: base.values, dimension: base.columns, normalizeForCosine: metric == .cosine))
    default: throw BenchError("unknown encoding \(encodingName): float32, float16 or int8")
    }
    let engine = encodingName == "float32" ? "lookalike" : "lookalike-\(encodingName)"
    let index = HNSWIndex(dimension: base.columns, metric: metric,
                          parameters: .init(m: m, efConstruction: efConstruction), encoding: encoding)
    let ids = (0..<base.rows).map { String($0) }
    try index.add(ids: ids, vectors: (0..<base.rows).map { Array(base.row($0)) })
    let buildSeconds = now() - buildStart
    emit(["engine": engine, "event": "build", "seconds": buildSeconds, "memory_bytes": index.memoryBytes,
          "vector_bytes": index.vectorBytes, "rows": base.rows, "dimension": base.columns, "m": m,
          "ef_construction": efConstruction, "encoding": encodingName])
    let exact = BaseVectors(matrix: base)

    // Snapshot: write it, then open it again (memory map, checksums, copy into the index).
    let snapshot = FileManager.default.temporaryDirectory.appendingPathComponent("lookalike-bench-\(getpid()).hnsw")
    defer { try? FileManager.default.removeItem(at: snapshot) }
    let saveStart = now()
    try index.save(to: snapshot)
    let saveSeconds = now() - saveStart
    // Opened three times: the first open also pays for reading the file back from disk when the
    // page cache has not kept it; the median is the usual case.
    var openTimes: [Double] = []
    var reopenedCount = 0
    for _ in 0..<3 {
        let openStart = now()
        let reopened = try HNSWIndex.load(from: snapshot)
        openTimes.append(now() - openStart)
        reopenedCount = reopened.count
    }
    let bytes = (try? FileManager.default.attributesOfItem(atPath: snapshot.path)[.size] as? Int) ?? 0
    emit(["engine": engine, "event": "snapshot", "save_seconds": saveSeconds, "open_seconds": openTimes.sorted()[1],
          "open_seconds_first": openTimes[0], "bytes": bytes, "count": reopenedCount])
    if CommandLine.arguments.contains("--snapshot-only") { return }

    let queryVectors = (0..<queries.rows).map { Array(queries.row($0)) }
    let repeats = max(1, Int(option("--repeats", default: "3")) ?? 3)
    var sweeps: [(every: Int, truth: Matrix<Int32>)] = [(1, truth)]
    for spec in option("--filtered", default: "").split(separator: ",") {
        let parts = spec.split(separator: "=", maxSplits: 1)
        guard parts.count == 2, let every = Int(parts[0]), every > 1 else { throw BenchError("--filtered takes N=TRUTH.i32,...") }
        sweeps.append((every, try readMatrix(String(parts[1]), as: Int32.self)))
    }
    for (every, truth) in sweeps {
    let modulo = option("--filter", default: "hash") == "modulo"
    let filter = every == 1 ? nil : SearchFilter(matchingCount: base.rows / every) { id in
        guard let row = UInt64(id) else { return false }
        if modulo { return row % UInt64(every) == 0 }
        return UInt32(truncatingIfNeeded: row &* 2_654_435_761) < UInt32.max / UInt32(every)
    }
    for ef in efs {
        // Each setting runs `repeats` times; the median run is reported (single runs vary by up to 30%).
        var runs: [(qps: Double, p50: Double, p99: Double, recall: Double)] = []
        for _ in 0..<repeats {
            var latencies: [Double] = []
            var found = 0
            let start = now()
            for (row, query) in queryVectors.enumerated() {
                let before = now()
                let hits = try index.search(query, k: k, efSearch: ef, filter: filter, rescoringFrom: exact)
                latencies.append(now() - before)
                let expected = Set(truth.row(row).prefix(k).map { String($0) })
                found += hits.filter { expected.contains($0.id) }.count
            }
            let total = now() - start
            latencies.sort()
            runs.append((Double(queries.rows) / total, latencies[latencies.count / 2] * 1000,
                         latencies[min(latencies.count - 1, latencies.count * 99 / 100)] * 1000,
                         Double(found) / Double(queries.rows * k)))
        }
        let median = runs.sorted { $0.qps < $1.qps }[runs.count / 2]
        emit(["engine": engine, "event": "search", "ef": ef, "filter_every": every, "recall": median.recall, "qps": median.qps,
              "p50_ms": median.p50, "p99_ms": median.p99, "repeats": repeats])
    }
    }
}

do {
    if CommandLine.arguments.dropFirst().first == "tune" { try runTuneBench() } else { try run() }
} catch {
    FileHandle.standardError.write(Data("lookalike-bench: \(error)\n".utf8))
    exit(1)
}
