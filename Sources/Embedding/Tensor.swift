/// A dense tensor in row-major order, as handed to or received from a model.
public struct Tensor<Element: Sendable>: Sendable {
    public var shape: [Int]
    public var values: [Element]

    public init(shape: [Int], values: [Element]) {
        precondition(shape.reduce(1, *) == values.count, "tensor values do not match the shape \(shape)")
        self.shape = shape
        self.values = values
    }

    /// Row `index` of a 2-d tensor.
    public func row(_ index: Int) -> ArraySlice<Element> {
        let width = shape.dropFirst().reduce(1, *)
        return values[(index * width)..<((index + 1) * width)]
    }
}
