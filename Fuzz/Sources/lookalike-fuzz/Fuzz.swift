import Foundation
import FuzzDriver
import HTTPForms
import Storage
import VectorIndex

/// The parser an input goes to: `LOOKALIKE_FUZZ` names it (`filter` by default).
///
/// - `filter`: a metadata filter as JSON, as `--filter` and the API's `filter` take it.
/// - `snapshot`: an HNSW snapshot file; one that loads is searched too, so a link the loader
///   failed to check would show as a crash.
/// - `multipart`: a multipart/form-data body; its first line is the boundary (as the
///   Content-Type header would give it), the rest the body.
/// - `query`: a query string, read as a search reads its options (numbers, flags, the filter,
///   the region).
enum Target: String {
    case filter, snapshot, multipart, query

    static let current = Target(rawValue: ProcessInfo.processInfo.environment["LOOKALIKE_FUZZ"] ?? "filter") ?? .filter
}

/// Where a snapshot input is written to be loaded (the loader reads files, through a memory map).
let scratch = URL(fileURLWithPath: NSTemporaryDirectory())
    .appendingPathComponent("lookalike-fuzz-\(ProcessInfo.processInfo.processIdentifier).hnsw")

/// One input: the parser must return or throw, never crash, hang or read out of bounds.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    switch Target.current {
    case .filter:
        _ = try? MetadataFilter(json: String(decoding: bytes, as: UTF8.self))
    case .snapshot:
        guard (try? Data(bytes).write(to: scratch)) != nil, let index = try? HNSWIndex.load(from: scratch) else { return 0 }
        if index.count > 0 {
            let query = [Float](repeating: 0.5, count: index.dimension)
            _ = try? index.search(query, k: 5, filter: nil)
            _ = index.liveIDs()
        }
    case .multipart:
        let newline = bytes.firstIndex(of: 0x0A) ?? bytes.count
        let header = "multipart/form-data; boundary=" + String(decoding: bytes[..<newline], as: UTF8.self)
        guard let boundary = Multipart.parameter("boundary", in: header) else { return 0 }
        let body = newline < bytes.count ? Array(bytes[(newline + 1)...]) : []
        if let parts = try? Multipart.parts(body, boundary: boundary) {
            for (_, part) in parts { _ = part.bytes.count + (part.filename?.count ?? 0) }
        }
    case .query:
        _ = try? SearchForm(QueryString(String(decoding: bytes, as: UTF8.self)))
    }
    return 0
}
