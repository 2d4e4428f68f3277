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
    /// The photo decoded but cannot give a model (too small, too elongated): bad input.
    case unusablePhoto(UnusablePhoto)
    /// The mask given with the photo cannot be used (wrong size, all one value): bad input.
    case badMask(String)
    /// The depth map given with the photo cannot be used (not a PFM, wrong aspect, not positive): bad input.
    case badDepth(String)

    /// Whether the input, not the machine, is at fault (exit code 65, a permanent job failure).
    public var isBadInput: Bool {
        switch self {
        case .image, .unusablePhoto, .badMask, .badDepth: true
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
        case .unusablePhoto(let reason): reason.code
        case .badMask: "bad_mask"
        case .badDepth: "bad_depth"
        }
    }

    public var description: String {
        switch self {
        case .image(let e): "\(e)"
        case .model(let e): "depth network: \(e)"
        case .meshing(let e): e == .emptyMask ? "no foreground object found for object mode (try --mode relief)" : "meshing: \(e)"
        case .output(let e): "writing output: \(e)"
        case .invalidOptions(let text): text
        case .unusablePhoto(let reason): "\(reason)"
        case .badMask(let text): "mask: \(text)"
        case .badDepth(let text): "depth: \(text)"
        }
    }
}

/// Why a decoded photo is refused before the network sees it.
public enum UnusablePhoto: Equatable, Sendable, CustomStringConvertible {
    /// A side under `PhotoRequirements.minimumSide` pixels: the network would see a few
    /// pixels of object, and the mesh would be noise.
    case tooSmall(width: Int, height: Int)
    /// Longer side over `PhotoRequirements.maximumAspect` times the shorter: resized to the
    /// network's input the shorter side would keep only a few pixels.
    case badAspectRatio(width: Int, height: Int)

    public var code: String {
        switch self {
        case .tooSmall: "image_too_small"
        case .badAspectRatio: "bad_aspect_ratio"
        }
    }

    public var description: String {
        switch self {
        case .tooSmall(let w, let h):
            "photo is \(w)x\(h) pixels: each side must be at least \(PhotoRequirements.minimumSide)"
        case .badAspectRatio(let w, let h):
            "photo is \(w)x\(h) pixels: the longer side may be at most \(Int(PhotoRequirements.maximumAspect)) times the shorter"
        }
    }
}

/// What a decoded photo must satisfy to be meshed (checked on the upright size).
public enum PhotoRequirements {
    public static let minimumSide = 32
    public static let maximumAspect: Double = 8

    /// Throws when a `width`×`height` photo cannot give a model.
    public static func check(width: Int, height: Int) throws(PipelineError) {
        if min(width, height) < minimumSide { throw .unusablePhoto(.tooSmall(width: width, height: height)) }
        if Double(max(width, height)) > maximumAspect * Double(min(width, height)) {
            throw .unusablePhoto(.badAspectRatio(width: width, height: height))
        }
    }
}
