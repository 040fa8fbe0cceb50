import Embedding
import Foundation

/// Paths the tests share: the repository, its fixtures, and the installed models.
enum TestModels {
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let reference = repository.appendingPathComponent("Tests/Fixtures/efficientnet-reference")
    static let data = ProcessInfo.processInfo.environment["LOOKALIKE_DATA"].map { URL(fileURLWithPath: $0) }
        ?? repository.appendingPathComponent(".data")

    /// The registry of installed models; `make setup` installs them.
    static func registry() throws -> ModelRegistry {
        try ModelRegistry(directory: ModelRegistry.defaultDirectory())
    }
}
