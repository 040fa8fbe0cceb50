import Foundation

/// A reader for the `.npy` files of the reference outputs (format 1.0, little-endian, C order).
struct NumpyArray {
    let shape: [Int]
    let descr: String
    let data: Data

    init(contentsOf url: URL) throws {
        let bytes = try Data(contentsOf: url)
        guard bytes.count > 10, bytes.prefix(6) == Data([0x93]) + Data("NUMPY".utf8) else {
            throw NumpyError("\(url.path) is not a .npy file")
        }
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        let header = String(decoding: bytes[10..<(10 + headerLength)], as: UTF8.self)
        guard let descrRange = header.range(of: #"'descr': '([^']+)'"#, options: .regularExpression),
              let shapeRange = header.range(of: #"'shape': \(([^)]*)\)"#, options: .regularExpression),
              !header.contains("'fortran_order': True")
        else { throw NumpyError("\(url.path): unsupported header \(header)") }
        descr = String(header[descrRange].dropFirst(10).dropLast())
        shape = header[shapeRange].dropFirst(10).dropLast()
            .split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        data = bytes.subdata(in: (10 + headerLength)..<bytes.count)
    }

    var uint8: [UInt8] { [UInt8](data) }

    var float32: [Float] {
        data.withUnsafeBytes { raw in Array(raw.bindMemory(to: Float.self)) }
    }

    /// Row `index` of a 2-d float array.
    func floatRow(_ index: Int) -> [Float] {
        let width = shape[1]
        return Array(float32[(index * width)..<((index + 1) * width)])
    }
}

struct NumpyError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
