import COnnxRuntime
import Foundation

/// An error from ONNX Runtime, carrying its own message.
public struct OnnxRuntimeError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { "ONNX Runtime: \(message)" }
}

/// A loaded ONNX Runtime library and its environment. One per process is plenty; sessions share it.
///
/// The library is found at `LOOKALIKE_ORT_LIBRARY`, or as `onnxruntime/libonnxruntime.so*` in the models folder.
public final class OnnxRuntime: @unchecked Sendable {
    /// API version requested from the library (ONNX Runtime 1.17 and later provide it).
    static let apiVersion: UInt32 = 17

    let api: OpaquePointer
    let env: OpaquePointer
    let memoryInfo: OpaquePointer
    /// The library's version, e.g. "1.23.2".
    public let version: String
    public let libraryPath: String

    private nonisolated(unsafe) static var loaded: [String: OnnxRuntime] = [:]
    private static let lock = NSLock()

    /// The runtime at `libraryPath`, loaded once per process.
    public static func shared(libraryPath: String) throws -> OnnxRuntime {
        lock.lock()
        defer { lock.unlock() }
        if let runtime = loaded[libraryPath] { return runtime }
        let runtime = try OnnxRuntime(libraryPath: libraryPath)
        loaded[libraryPath] = runtime
        return runtime
    }

    private init(libraryPath: String) throws {
        guard FileManager.default.fileExists(atPath: libraryPath) else {
            throw OnnxRuntimeError(message: "library not found at \(libraryPath); run `make setup` to install it")
        }
        var error = [CChar](repeating: 0, count: 512)
        guard let api = lk_ort_load(libraryPath, Self.apiVersion, &error, error.count) else {
            throw OnnxRuntimeError(message: String(cBuffer: error))
        }
        self.api = api
        self.libraryPath = libraryPath
        self.version = lk_ort_version_string(libraryPath).map { String(cString: $0) } ?? "unknown"
        var env: OpaquePointer?
        try Self.check(api, lk_ort_create_env(api, 3, "lookalike", &env))
        guard let env else { throw OnnxRuntimeError(message: "CreateEnv returned no environment") }
        self.env = env
        var memoryInfo: OpaquePointer?
        do {
            try Self.check(api, lk_ort_create_cpu_memory_info(api, &memoryInfo))
        } catch {
            lk_ort_release_env(api, env)
            throw error
        }
        guard let memoryInfo else {
            lk_ort_release_env(api, env)
            throw OnnxRuntimeError(message: "CreateCpuMemoryInfo returned nothing")
        }
        self.memoryInfo = memoryInfo
    }

    deinit {
        lk_ort_release_memory_info(api, memoryInfo)
        lk_ort_release_env(api, env)
    }

    /// Turns a returned status into a thrown error with ONNX Runtime's message, releasing the status.
    static func check(_ api: OpaquePointer, _ status: OpaquePointer?) throws {
        guard let status else { return }
        let message = lk_ort_error_message(api, status).map { String(cString: $0) } ?? "unknown error"
        lk_ort_release_status(api, status)
        throw OnnxRuntimeError(message: message)
    }

    func check(_ status: OpaquePointer?) throws {
        try Self.check(api, status)
    }
}
