/// Errors from writing or reading mesh files.
public enum MeshIOError: Error, Equatable, CustomStringConvertible {
    /// A file could not be created, written, renamed or read.
    case io(path: String, reason: String)
    /// A file being read is not valid (1-based line number where known).
    case malformed(line: Int, reason: String)
    /// The mesh cannot be written in the requested form.
    case unsupported(String)

    public var description: String {
        switch self {
        case let .io(path, reason): "cannot write or read \(path): \(reason)"
        case let .malformed(line, reason): "malformed mesh file at line \(line): \(reason)"
        case let .unsupported(reason): "unsupported: \(reason)"
        }
    }
}
