import Foundation

/// A model derived from another by a learned projection (`lookalike tune`): its vectors are the
/// base model's vectors projected, so it needs no network of its own. Stores keep the projection
/// beside the vectors it made; its fingerprint (the base model's, the labels and the seed, the
/// weights) is what the `model` record of its vectors holds, so two tunings never mix.
public struct TunedModelRecord: Sendable, Equatable {
    /// `<base>+<name>`.
    public let name: String
    public let base: String
    public let fingerprint: String
    public let inputDimension: Int
    public let outputDimension: Int
    /// The projection's weights: little-endian float32, `outputDimension` rows of `inputDimension`.
    public let weights: [UInt8]
    /// The tuning's report (JSON): what it learned from, the validation curve, the gain.
    public let report: String
    public let createdAt: Date

    public init(name: String, base: String, fingerprint: String, inputDimension: Int, outputDimension: Int,
                weights: [UInt8], report: String, createdAt: Date) {
        self.name = name
        self.base = base
        self.fingerprint = fingerprint
        self.inputDimension = inputDimension
        self.outputDimension = outputDimension
        self.weights = weights
        self.report = report
        self.createdAt = createdAt
    }
}

/// Why a store refused a tuned model.
public enum TunedModelError: Error, Sendable, CustomStringConvertible {
    case exists(String)

    public var description: String {
        switch self {
        case .exists(let name):
            return "a tuned model named \(name) exists already; make it again with --replace, remove it (`lookalike tune --remove \(name)`), or choose another --name"
        }
    }
}
