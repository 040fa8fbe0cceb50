import COnnxRuntime
import Foundation

/// One ONNX model loaded into ONNX Runtime, ready to run. Safe to call from several threads at once.
public final class InferenceSession: @unchecked Sendable {
    public let runtime: OnnxRuntime
    public let modelPath: String
    public let inputNames: [String]
    public let outputNames: [String]
    private let session: OpaquePointer

    /// Loads `modelPath`. `threads` is the number of threads one run may use (0 = ONNX Runtime decides).
    public init(runtime: OnnxRuntime, modelPath: String, threads: Int = 0) throws {
        guard FileManager.default.fileExists(atPath: modelPath) else {
            throw OnnxRuntimeError(message: "model file not found: \(modelPath)")
        }
        self.runtime = runtime
        self.modelPath = modelPath
        let api = runtime.api
        var options: OpaquePointer?
        try runtime.check(lk_ort_create_session_options(api, &options))
        guard let options else { throw OnnxRuntimeError(message: "CreateSessionOptions returned nothing") }
        defer { lk_ort_release_session_options(api, options) }
        try runtime.check(lk_ort_set_intra_op_threads(api, options, Int32(clamping: max(0, threads))))
        try runtime.check(lk_ort_set_inter_op_threads(api, options, 1))
        try runtime.check(lk_ort_set_sequential_execution(api, options))
        try runtime.check(lk_ort_set_optimization_all(api, options))
        var session: OpaquePointer?
        try runtime.check(lk_ort_create_session(api, runtime.env, modelPath, options, &session))
        guard let session else { throw OnnxRuntimeError(message: "CreateSession returned no session for \(modelPath)") }
        self.session = session
        do {
            inputNames = try Self.names(runtime, session, count: lk_ort_session_input_count, name: lk_ort_session_input_name)
            outputNames = try Self.names(runtime, session, count: lk_ort_session_output_count, name: lk_ort_session_output_name)
        } catch {
            lk_ort_release_session(api, session)
            throw error
        }
    }

    deinit {
        lk_ort_release_session(runtime.api, session)
    }

    /// The element type code and shape (-1 for symbolic dimensions) of input `index`.
    public func inputShape(_ index: Int) throws -> (elementType: Int, shape: [Int]) {
        var elementType: Int32 = 0
        var rank = 0
        var dims = [Int64](repeating: 0, count: 16)
        try runtime.check(lk_ort_session_input_info(runtime.api, session, index, &elementType, &rank, &dims, dims.count))
        return (Int(elementType), dims.prefix(min(rank, dims.count)).map(Int.init))
    }

    /// Runs the model on one uint8 input and returns the named float outputs.
    public func run(input name: String, uint8 tensor: Tensor<UInt8>, outputs: [String]) throws -> [String: Tensor<Float>] {
        // ONNX Runtime only reads input tensors, so the array's own storage is lent to it without a copy.
        try tensor.values.withUnsafeBytes { buffer in
            try run(input: name, data: UnsafeMutableRawBufferPointer(mutating: buffer), shape: tensor.shape,
                    elementType: Int32(LK_ORT_UINT8), outputs: outputs)
        }
    }

    /// Runs the model on one float input and returns the named float outputs.
    public func run(input name: String, float tensor: Tensor<Float>, outputs: [String]) throws -> [String: Tensor<Float>] {
        // ONNX Runtime only reads input tensors, so the array's own storage is lent to it without a copy.
        try tensor.values.withUnsafeBytes { buffer in
            try run(input: name, data: UnsafeMutableRawBufferPointer(mutating: buffer), shape: tensor.shape,
                    elementType: Int32(LK_ORT_FLOAT), outputs: outputs)
        }
    }

    /// Runs the model on several int64 inputs of one shape (a text encoder's token ids and
    /// attention mask, say) and returns the named float outputs.
    public func run(int64 inputs: [(name: String, tensor: Tensor<Int64>)], outputs: [String]) throws -> [String: Tensor<Float>] {
        let api = runtime.api
        var values: [OpaquePointer?] = []
        // Each tensor's data lives in a buffer of its own until the run is over (a tensor only
        // borrows its data, so it must not point into an array outside a closure lending it).
        var buffers: [UnsafeMutableBufferPointer<Int64>] = []
        defer {
            for value in values { if let value { lk_ort_release_value(api, value) } }
            for buffer in buffers { buffer.deallocate() }
        }
        for input in inputs {
            let buffer = UnsafeMutableBufferPointer<Int64>.allocate(capacity: max(1, input.tensor.values.count))
            _ = buffer.initialize(from: input.tensor.values)
            buffers.append(buffer)
            let dims = input.tensor.shape.map(Int64.init)
            var value: OpaquePointer?
            try runtime.check(lk_ort_create_tensor(api, runtime.memoryInfo, UnsafeMutableRawPointer(buffer.baseAddress),
                                                   input.tensor.values.count * MemoryLayout<Int64>.stride, dims, dims.count,
                                                   Int32(LK_ORT_INT64), &value))
            guard value != nil else { throw OnnxRuntimeError(message: "CreateTensor returned nothing") }
            values.append(value)
        }
        return try run(values: values, names: inputs.map(\.name), outputs: outputs)
    }

    private func run(
        input name: String, data: UnsafeMutableRawBufferPointer, shape: [Int], elementType: Int32, outputs: [String]
    ) throws -> [String: Tensor<Float>] {
        let api = runtime.api
        let dims = shape.map(Int64.init)
        var inputValue: OpaquePointer?
        try runtime.check(lk_ort_create_tensor(
            api, runtime.memoryInfo, data.baseAddress, data.count, dims, dims.count, elementType, &inputValue))
        guard let inputValue else { throw OnnxRuntimeError(message: "CreateTensor returned nothing") }
        defer { lk_ort_release_value(api, inputValue) }
        return try run(values: [inputValue], names: [name], outputs: outputs)
    }

    private func run(values: [OpaquePointer?], names: [String], outputs: [String]) throws -> [String: Tensor<Float>] {
        let api = runtime.api
        var outputValues = [OpaquePointer?](repeating: nil, count: outputs.count)
        defer { for value in outputValues { if let value { lk_ort_release_value(api, value) } } }
        let status = withCStrings(names) { inputNames in
            withCStrings(outputs) { outputNames in
                var inputs = values
                return lk_ort_run(api, session, inputNames, &inputs, inputs.count, outputNames, outputs.count, &outputValues)
            }
        }
        try runtime.check(status)

        var result: [String: Tensor<Float>] = [:]
        for (outputName, value) in zip(outputs, outputValues) {
            guard let value else { throw OnnxRuntimeError(message: "model returned no value for output \(outputName)") }
            result[outputName] = try floatTensor(value, name: outputName)
        }
        return result
    }

    private func floatTensor(_ value: OpaquePointer, name: String) throws -> Tensor<Float> {
        var elementType: Int32 = 0
        var rank = 0
        var dims = [Int64](repeating: 0, count: 16)
        try runtime.check(lk_ort_tensor_info(runtime.api, value, &elementType, &rank, &dims, dims.count))
        guard elementType == Int32(LK_ORT_FLOAT) else {
            throw OnnxRuntimeError(message: "output \(name) has element type \(elementType), expected float")
        }
        let shape = dims.prefix(min(rank, dims.count)).map(Int.init)
        let count = shape.reduce(1, *)
        var raw: UnsafeMutableRawPointer?
        try runtime.check(lk_ort_tensor_data(runtime.api, value, &raw))
        guard let raw else { throw OnnxRuntimeError(message: "output \(name) has no data") }
        let floats = raw.bindMemory(to: Float.self, capacity: count)
        return Tensor(shape: shape, values: Array(UnsafeBufferPointer(start: floats, count: count)))
    }

    private static func names(
        _ runtime: OnnxRuntime, _ session: OpaquePointer,
        count: (OpaquePointer?, OpaquePointer?, UnsafeMutablePointer<Int>?) -> OpaquePointer?,
        name: (OpaquePointer?, OpaquePointer?, Int, UnsafeMutablePointer<CChar>?, Int) -> OpaquePointer?
    ) throws -> [String] {
        var total = 0
        try runtime.check(count(runtime.api, session, &total))
        return try (0..<total).map { index in
            var buffer = [CChar](repeating: 0, count: 256)
            try runtime.check(name(runtime.api, session, index, &buffer, buffer.count))
            return String(cBuffer: buffer)
        }
    }
}

/// Calls `body` with a C array of C strings that live for the duration of the call.
private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let duplicates = strings.map { strdup($0) }
    defer { duplicates.forEach { free($0) } }
    let pointers = duplicates.map { UnsafePointer($0) }
    return pointers.withUnsafeBufferPointer { buffer in
        // A non-empty array always has a base address; an empty one is never passed here.
        body(buffer.baseAddress ?? UnsafePointer(bitPattern: 1)!)
    }
}
