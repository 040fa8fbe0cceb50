import Imaging

/// Why one input of a batch was not added. The rest of the batch goes on regardless.
public enum IngestError: Error, Sendable, Equatable, CustomStringConvertible {
    case notFound
    case unreadable(reason: String)
    case notARegularFile
    case isDirectory
    case symlinkLoop(target: String)
    case idCollision(id: String)
    case embeddingFailed(String)
    case outsideRoots
    case changedSinceAdded

    public var description: String {
        switch self {
        case .notFound: return "no such file or directory"
        case .unreadable(let reason): return "cannot read: \(reason)"
        case .notARegularFile: return "not a regular file"
        case .isDirectory: return "is a directory (pass --recursive to add what it holds)"
        case .symlinkLoop(let target): return "symbolic link loop: leads back to \(target), skipped"
        case .idCollision(let id): return "another image already has the id \(id) (hash prefix collision)"
        case .embeddingFailed(let message): return "embedding failed: \(message)"
        case .outsideRoots: return "outside the folders this server may index"
        case .changedSinceAdded: return "the file is no longer the image that was added"
        }
    }
}

/// One input that failed, with the reason.
public struct IngestFailure: Sendable, Equatable {
    public let path: String
    public let reason: String
}

/// What `add` did with each input.
public struct IngestReport: Sendable {
    public struct Added: Sendable, Equatable {
        public let id: String
        public let path: String
    }

    public struct Duplicate: Sendable, Equatable {
        public let path: String
        /// The item already holding the same bytes.
        public let existingId: String
    }

    public var model: String
    public var added: [Added] = []
    public var duplicates: [Duplicate] = []
    public var failures: [IngestFailure] = []
    /// Entries of the folders walked that were not tried: hidden ones and files that are not images.
    public var skipped = 0
    /// Metadata records whose path names none of the inputs (absolute paths, sorted): nothing was stored for them.
    public var unmatchedMetadata: [String] = []
    public var seconds: Double = 0
    /// Set when the store refused a write or could not be read: the batch stopped there (earlier
    /// chunks stay stored).
    public var storeError: String?
    /// The store's error was that it could not be reached (a database that is away): repeating
    /// the add later will do.
    public var storeUnavailable = false
    /// Whether region tiles were asked for (`AddOptions.tiles`).
    public var tiles = false
    /// Items that gained region tiles, new ones and ones stored before without them.
    public var tiled = 0
    /// Items stored (or already stored) whose tiles could not be made or stored: their whole-image
    /// vector stays, and adding the file again with tiles retries.
    public var tileFailures: [IngestFailure] = []

    public var processed: Int { added.count + duplicates.count + failures.count }

    mutating func noteStoreError(_ error: any Error) {
        storeError = "\(error)"
        storeUnavailable = (error as? PostgresStoreError)?.isUnavailable ?? false
    }
}

/// Progress of an `add`, reported once per input.
public struct IngestProgress: Sendable {
    public enum Outcome: Sendable {
        case added(id: String)
        case duplicate(of: String)
        case failed(reason: String)
    }

    public let path: String
    public let outcome: Outcome
    public let done: Int
    public let total: Int
}
