import CLibPQ
import Foundation

/// Why the PostgreSQL store refused or failed a request.
public enum PostgresStoreError: Error, Sendable, CustomStringConvertible {
    /// The database cannot be reached (down, restarting, refusing connections, or every pooled
    /// connection busy for too long). A server answers 503 and the request can be repeated.
    case unavailable(reason: String)
    /// The database answered with an error.
    case failed(statement: String, message: String, sqlState: String?)
    case badAddress(String, reason: String)
    case modelChanged(model: String)
    case corruptVector(itemId: String, model: String)
    case noStore(schema: String)

    public var description: String {
        switch self {
        case .unavailable(let reason):
            return "the PostgreSQL database is not available: \(reason)"
        case .failed(let statement, let message, let state):
            return "PostgreSQL refused \(statement): \(message)" + (state.map { " (SQLSTATE \($0))" } ?? "")
        case .badAddress(let address, let reason):
            return "not a usable PostgreSQL address \(address): \(reason)"
        case .modelChanged(let model):
            return "the store's vectors for model \(model) were made by a different model file or size policy; "
                + "use a new store (or remove the items) to index with the changed model"
        case .corruptVector(let itemId, let model):
            return "stored vector of item \(itemId) for model \(model) is damaged"
        case .noStore(let schema):
            return "the database has no Lookalike store in schema \(schema) (add images with `lookalike add` to create one)"
        }
    }

    /// Whether the error means the connection (not the request) failed.
    public var isUnavailable: Bool {
        if case .unavailable = self { return true }
        return false
    }
}

/// A value sent with a statement. Vectors travel in pgvector's binary form; everything else as text.
enum Parameter {
    case text(String)
    case null
    case vector([Float])
    /// A `vector[]`, in binary.
    case vectors([[Float]])

    static func int(_ value: Int) -> Parameter { .text(String(value)) }
    static func optional(_ value: String?) -> Parameter { value.map(Parameter.text) ?? .null }
}

/// One connection to the database, used by one thread at a time (the pool sees to that).
final class Connection {
    private let handle: OpaquePointer
    /// The type id of pgvector's `vector` in this database, looked up on first use.
    private var vectorType: UInt32?

    /// Connects, or throws `unavailable` with the library's reason.
    init(address: String) throws {
        guard let handle = PQconnectdb(address) else { throw PostgresStoreError.unavailable(reason: "out of memory") }
        self.handle = handle
        // Throwing from here runs deinit, which closes the handle.
        guard PQstatus(handle) == CONNECTION_OK else { throw PostgresStoreError.unavailable(reason: Self.message(handle)) }
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
    }

    deinit { PQfinish(handle) }

    var isBroken: Bool { PQstatus(handle) != CONNECTION_OK }

    private static func message(_ handle: OpaquePointer) -> String {
        String(cString: PQerrorMessage(handle)).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: "; ")
    }

    /// Runs one statement (several, without parameters) and returns its rows; `binary` asks for
    /// the rows in binary form (needed to read vectors).
    @discardableResult
    func execute(_ sql: String, _ parameters: [Parameter] = [], binary: Bool = false) throws -> ResultSet {
        // Every parameter's bytes in one buffer, each at its offset (nil for NULL).
        var bytes: [UInt8] = []
        var offsets: [Int?] = []
        var lengths: [Int32] = []
        var formats: [Int32] = []
        for parameter in parameters {
            let start = bytes.count
            switch parameter {
            case .text(let text):
                bytes += text.utf8
                bytes.append(0)
                formats.append(0)
            case .null:
                formats.append(0)
            case .vector(let vector):
                bytes += Self.encode(vector)
                formats.append(1)
            case .vectors(let vectors):
                bytes += try encodeArray(vectors)
                formats.append(1)
            }
            if case .null = parameter { offsets.append(nil) } else { offsets.append(start) }
            lengths.append(Int32(bytes.count - start))
        }
        let result: OpaquePointer?
        if parameters.isEmpty && !binary {
            result = PQexec(handle, sql)  // may hold several statements (migrations)
        } else {
            result = bytes.withUnsafeBufferPointer { buffer in
                let values = offsets.map { offset in
                    offset.flatMap { offset in buffer.baseAddress.map { UnsafeRawPointer($0 + offset).assumingMemoryBound(to: CChar.self) } }
                }
                return PQexecParams(handle, sql, Int32(parameters.count), nil, values, lengths, formats, binary ? 1 : 0)
            }
        }
        guard let result else {
            throw isBroken ? PostgresStoreError.unavailable(reason: Self.message(handle))
                : PostgresStoreError.failed(statement: Self.name(sql), message: Self.message(handle), sqlState: nil)
        }
        let status = PQresultStatus(result)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else {
            let message = String(cString: PQresultErrorMessage(result)).trimmingCharacters(in: .whitespacesAndNewlines)
            let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            PQclear(result)
            // Class 08 is a connection failure, 57P0x the server shutting down.
            if isBroken || state?.hasPrefix("08") == true || state?.hasPrefix("57P") == true {
                throw PostgresStoreError.unavailable(reason: message)
            }
            throw PostgresStoreError.failed(statement: Self.name(sql), message: message, sqlState: state)
        }
        return ResultSet(result)
    }

    /// Runs `body` in a transaction: committed when it returns, rolled back when it throws.
    func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN")
        do {
            let value = try body()
            try execute("COMMIT")
            return value
        } catch {
            if !isBroken { _ = try? execute("ROLLBACK") }
            throw error
        }
    }

    /// The first words of a statement, to name it in an error.
    private static func name(_ sql: String) -> String {
        let words = sql.split(whereSeparator: { $0.isWhitespace }).prefix(4).joined(separator: " ")
        return "\"\(words)…\""
    }

    /// A one-dimensional `vector[]` in PostgreSQL's binary array form: dimensions, a null flag and
    /// the element type, the length and lower bound, then each element with its length.
    private func encodeArray(_ vectors: [[Float]]) throws -> [UInt8] {
        if vectorType == nil {
            vectorType = try execute("SELECT 'vector'::regtype::oid").int(0, 0).map { UInt32($0) }
        }
        func int32(_ value: UInt32) -> [UInt8] {
            [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
        }
        var bytes = int32(1) + int32(0) + int32(vectorType ?? 0) + int32(UInt32(vectors.count)) + int32(1)
        for vector in vectors {
            let element = Self.encode(vector)
            bytes += int32(UInt32(element.count)) + element
        }
        return bytes
    }

    /// pgvector's binary form: dimension and a reserved field (16 bits each), then the values as
    /// big-endian 32-bit floats.
    static func encode(_ vector: [Float]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(4 + 4 * vector.count)
        let dimension = UInt16(truncatingIfNeeded: vector.count)
        bytes += [UInt8(dimension >> 8), UInt8(dimension & 0xFF), 0, 0]
        for value in vector {
            let bits = value.bitPattern
            bytes += [UInt8(bits >> 24), UInt8((bits >> 16) & 0xFF), UInt8((bits >> 8) & 0xFF), UInt8(bits & 0xFF)]
        }
        return bytes
    }
}

/// The rows of one statement.
final class ResultSet {
    private let handle: OpaquePointer

    init(_ handle: OpaquePointer) { self.handle = handle }
    deinit { PQclear(handle) }

    var count: Int { Int(PQntuples(handle)) }
    /// Rows changed by an INSERT, UPDATE or DELETE.
    var affected: Int { Int(String(cString: PQcmdTuples(handle))) ?? 0 }

    func isNull(_ row: Int, _ column: Int) -> Bool { PQgetisnull(handle, Int32(row), Int32(column)) == 1 }

    /// A column's value as text (in a binary result, a text column's bytes).
    func string(_ row: Int, _ column: Int) -> String? {
        guard !isNull(row, column), let value = PQgetvalue(handle, Int32(row), Int32(column)) else { return nil }
        let length = Int(PQgetlength(handle, Int32(row), Int32(column)))
        return value.withMemoryRebound(to: UInt8.self, capacity: length) { bytes in
            String(decoding: UnsafeBufferPointer(start: bytes, count: length), as: UTF8.self)
        }
    }

    /// A text-result column as an integer.
    func int(_ row: Int, _ column: Int) -> Int? { string(row, column).flatMap { Int($0) } }
    func double(_ row: Int, _ column: Int) -> Double? { string(row, column).flatMap { Double($0) } }

    /// A binary 64-bit integer column.
    func binaryInt64(_ row: Int, _ column: Int) -> Int64? {
        guard let bytes = raw(row, column), bytes.count == 8 else { return nil }
        return bytes.reduce(Int64(0)) { ($0 << 8) | Int64($1) }
    }

    /// A binary pgvector column; nil for NULL or a value that is not a well-formed vector.
    func vector(_ row: Int, _ column: Int) -> [Float]? {
        guard let bytes = raw(row, column), bytes.count >= 4 else { return nil }
        let dimension = Int(bytes[0]) << 8 | Int(bytes[1])
        guard bytes.count == 4 + 4 * dimension else { return nil }
        var vector = [Float](repeating: 0, count: dimension)
        for index in 0..<dimension {
            let offset = 4 + 4 * index
            let bits = UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
            vector[index] = Float(bitPattern: bits)
        }
        return vector
    }

    private func raw(_ row: Int, _ column: Int) -> UnsafeBufferPointer<UInt8>? {
        guard !isNull(row, column), let value = PQgetvalue(handle, Int32(row), Int32(column)) else { return nil }
        let length = Int(PQgetlength(handle, Int32(row), Int32(column)))
        return value.withMemoryRebound(to: UInt8.self, capacity: length) { UnsafeBufferPointer(start: $0, count: length) }
    }
}

/// At most `limit` connections, opened when needed, each lent to one caller at a time. A broken
/// connection is dropped and the next caller opens a new one, so the store recovers by itself
/// once a restarted database is back; while it is away, calls fail with `unavailable`.
final class ConnectionPool: @unchecked Sendable {
    let address: String
    let limit: Int
    private let setup: (Connection) throws -> Void
    private let condition = NSCondition()
    private var idle: [Connection] = []
    private var open = 0
    /// How long a caller waits for a free connection before giving up.
    private let wait: TimeInterval

    init(address: String, limit: Int, wait: TimeInterval = 30, setup: @escaping (Connection) throws -> Void) {
        self.address = address
        self.limit = max(1, limit)
        self.wait = wait
        self.setup = setup
    }

    /// Runs `body` with a connection. A read (`retry`) that fails because the connection broke
    /// is tried once more on a new one, so a database restart between two calls goes unnoticed.
    func with<T>(retry: Bool = false, _ body: (Connection) throws -> T) throws -> T {
        var attempts = retry ? 2 : 1
        while true {
            attempts -= 1
            let connection = try checkout()
            do {
                let value = try body(connection)
                checkin(connection)
                return value
            } catch let error as PostgresStoreError where error.isUnavailable || connection.isBroken {
                discard()
                if attempts > 0 { continue }
                throw error.isUnavailable ? error : PostgresStoreError.unavailable(reason: error.description)
            } catch {
                if connection.isBroken { discard() } else { checkin(connection) }
                throw error
            }
        }
    }

    private func checkout() throws -> Connection {
        condition.lock()
        let deadline = Date().addingTimeInterval(wait)
        while idle.isEmpty && open >= limit {
            guard condition.wait(until: deadline) else {
                condition.unlock()
                throw PostgresStoreError.unavailable(reason: "all \(limit) connections stayed busy for \(Int(wait)) s")
            }
        }
        if let connection = idle.popLast() {
            condition.unlock()
            return connection
        }
        open += 1
        condition.unlock()
        do {
            let connection = try Connection(address: address)
            try setup(connection)
            return connection
        } catch {
            discard()
            throw error
        }
    }

    private func checkin(_ connection: Connection) {
        condition.lock()
        if connection.isBroken {
            open -= 1
        } else {
            idle.append(connection)
        }
        condition.signal()
        condition.unlock()
    }

    /// Forgets a connection that was checked out (it closes when released).
    private func discard() {
        condition.lock()
        open -= 1
        condition.signal()
        condition.unlock()
    }
}
