import Embedding
import Foundation
import TestSupport

/// The reference fixtures and the installed models.
enum TestModels {
    static let reference = TestData.repository.appendingPathComponent("Tests/Fixtures/efficientnet-reference")

    /// The registry of installed models; `make setup` installs them.
    static func registry() throws -> ModelRegistry {
        try ModelRegistry(directory: ModelRegistry.defaultDirectory())
    }
}
