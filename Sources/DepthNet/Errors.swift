/// Why a model could not be loaded or run.
public enum DepthNetError: Error, Equatable, CustomStringConvertible {
    /// A file the model needs does not exist.
    case fileNotFound(path: String)
    /// A file exists but could not be read.
    case unreadable(path: String, reason: String)
    /// A safetensors file is truncated or its header is not valid.
    case malformedSafetensors(path: String, reason: String)
    /// A JSON config is not valid or lacks a field.
    case malformedConfig(path: String, reason: String)
    /// The config names an architecture this runtime does not implement.
    case unsupportedArchitecture(String)
    /// Tensors the architecture needs are missing, have the wrong shape or an unsupported dtype.
    case weightsMismatch(path: String, problems: [WeightProblem])
    /// The input tensor does not fit the model (shape, or size not a multiple of the stride).
    case invalidInput(String)

    public var description: String {
        switch self {
        case .fileNotFound(let path): "file not found: \(path)"
        case .unreadable(let path, let reason): "cannot read \(path): \(reason)"
        case .malformedSafetensors(let path, let reason): "malformed safetensors file \(path): \(reason)"
        case .malformedConfig(let path, let reason): "malformed model config \(path): \(reason)"
        case .unsupportedArchitecture(let name): "unsupported architecture: \(name)"
        case .weightsMismatch(let path, let problems):
            "weights in \(path) do not match the architecture (\(problems.count) problem\(problems.count == 1 ? "" : "s")):\n"
                + problems.map { "  - \($0)" }.joined(separator: "\n")
        case .invalidInput(let reason): "invalid input: \(reason)"
        }
    }
}

/// One tensor that does not match what an architecture expects.
public enum WeightProblem: Equatable, Sendable, CustomStringConvertible {
    /// No tensor of this name in the file.
    case missing(name: String, expectedShape: [Int])
    /// The tensor exists with another shape.
    case wrongShape(name: String, expected: [Int], found: [Int])
    /// The tensor's dtype is not f32, f16 or bf16.
    case unsupportedDType(name: String, dtype: String)

    /// The tensor's name.
    public var name: String {
        switch self {
        case .missing(let name, _), .wrongShape(let name, _, _), .unsupportedDType(let name, _): name
        }
    }

    public var description: String {
        switch self {
        case .missing(let name, let shape): "missing \(name) \(shape)"
        case .wrongShape(let name, let expected, let found): "\(name): shape \(found), expected \(expected)"
        case .unsupportedDType(let name, let dtype): "\(name): dtype \(dtype) (supported: F32, F16, BF16)"
        }
    }
}
