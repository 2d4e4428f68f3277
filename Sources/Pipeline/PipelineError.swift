import DepthNet
import Imaging
import MeshIO
import Meshing

/// Why a photo did not become a model.
public enum PipelineError: Error, CustomStringConvertible, Sendable {
    /// The photo could not be decoded (bad input: the caller's fault).
    case image(ImageError)
    /// The weights could not be loaded or the network refused its input.
    case model(DepthNetError)
    /// Meshing failed (e.g. object mode with no foreground object).
    case meshing(MeshingError)
    /// A file could not be written.
    case output(MeshIOError)
    /// The options do not make sense.
    case invalidOptions(String)

    /// Whether the input, not the machine, is at fault (exit code 65, a permanent job failure).
    public var isBadInput: Bool {
        switch self {
        case .image: true
        case .meshing(let e): e == .emptyMask || e == .emptyMesh
        default: false
        }
    }

    /// A short, stable code for logs, events and dead-letter headers.
    public var code: String {
        switch self {
        case .image(let e): e.code
        case .model: "model_error"
        case .meshing(let e): e == .emptyMask ? "no_object" : "meshing_failed"
        case .output: "output_failed"
        case .invalidOptions: "invalid_options"
        }
    }

    public var description: String {
        switch self {
        case .image(let e): "\(e)"
        case .model(let e): "depth network: \(e)"
        case .meshing(let e): e == .emptyMask ? "no foreground object found for object mode (try --mode relief)" : "meshing: \(e)"
        case .output(let e): "writing output: \(e)"
        case .invalidOptions(let text): text
        }
    }
}
