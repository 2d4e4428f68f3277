import Imaging

/// What `ImageTo3D` should make.
public struct PipelineOptions: Sendable, Equatable {
    /// How the depth maps become a mesh.
    public enum Mode: String, Sendable, CaseIterable, Codable {
        /// Object mode when the network finds a foreground object (see `AutoModeRule`), else relief.
        case auto
        /// A closed mesh of the foreground object.
        case object
        /// A height field of the whole picture.
        case relief
    }

    /// Output file formats.
    public enum Format: String, Sendable, CaseIterable, Codable {
        case obj, glb, ply
    }

    public var mode: Mode = .auto
    /// Formats to write; OBJ by default. Order does not matter; duplicates are ignored.
    public var formats: [Format] = [.obj]
    /// Texture instead of per-vertex colours: OBJ + MTL + PNG, and a textured GLB. PLY keeps
    /// vertex colours. Object meshes get texture coordinates by projecting each vertex into
    /// the photo (exact on the visible side; the hidden side repeats the visible colours).
    public var texture: Bool = false
    /// Network input size along the longer side (nil: the weights' `input_size`, 192 for the shipped
    /// ones, or 256 when their config gives none; Depth Anything V2's `image_size`, 518 as published).
    public var resolution: Int? = nil
    /// Marching-cubes voxels along the object's longest side (object mode): the least; the grid
    /// is made finer, up to `maxVolumeResolution`, when the silhouette has thin parts (legs,
    /// stems, boards) that would otherwise be under two voxels across.
    public var volumeResolution: Int = 128
    /// The finest grid thin parts may ask for; at or below `volumeResolution` the grid is fixed.
    public var maxVolumeResolution: Int = 256
    /// Longer side, in pixels, of the maps the object is carved from (capped at the photo's):
    /// the network's depth is upsampled to it and its mask refined there against the photo's
    /// edges (or a cut-out's alpha or a given mask taken at that size), so parts a few photo
    /// pixels wide survive.
    public var silhouetteResolution: Int = 512
    /// Complete the object's back by mirror symmetry where the visible part shows a vertical
    /// mirror plane (`MirrorSymmetry`); the network's back elsewhere.
    public var symmetry: Bool = true
    /// The object's real height in metres, when the user knows it: object models are then in
    /// metres (lowest point on y = 0, centred); nil keeps a height of 1 with the size unknown.
    public var objectHeight: Float? = nil
    /// Taubin smoothing iterations (object mode).
    public var smoothingIterations: Int = 10
    /// Bilateral normal filtering passes after Taubin (object mode): flat faces flattened,
    /// creases kept; 0 turns it off.
    public var featurePreservingIterations: Int = 5
    /// Vertical field of view of the photo's camera in degrees (nil: from the photo's EXIF
    /// `FocalLengthIn35mmFilm` when it has one, else the weights' `fov_degrees`, else 60).
    public var fovDegrees: Float? = nil
    /// Relief mode: greedy simplification to this maximum error in camera-frame units (nil: none).
    public var reliefMaxError: Float? = nil
    /// Threads for one run: the network's own loops and marching cubes. The network's OpenBLAS
    /// calls follow OpenBLAS's process-wide count (`ImageTo3D.setNetworkThreads`), which Debian's
    /// OpenBLAS cannot set per call.
    public var threads: Int = 1
    /// Largest texture side written with `texture` (the photo is shrunk to fit).
    public var maxTextureSide: Int = 2048
    /// Decoder limits.
    public var limits: DecodeLimits = .default

    public init() {}

    /// Accepted network input sizes (longer side).
    public static let resolutionRange = 32...2048
    /// Accepted marching-cubes grid sizes.
    public static let volumeResolutionRange = 8...1024
    /// Accepted fields of view, exclusive of both ends, in degrees.
    public static let fieldOfViewBounds: (lower: Float, upper: Float) = (1, 179)

    /// Whether `degrees` is a usable field of view.
    public static func isValidFieldOfView(_ degrees: Float) -> Bool {
        degrees > fieldOfViewBounds.lower && degrees < fieldOfViewBounds.upper
    }
}

/// The rule `--mode auto` follows: relief when the weights' scene head calls the photo a room
/// view; otherwise object mode when the foreground (mask ≥ 0.5) covers between `minFraction` and
/// `maxFraction` of the picture and does not touch all four borders (a foreground that fills the
/// frame edge to edge is a room, not an object).
public struct AutoModeRule: Sendable {
    public var minFraction: Double = 0.02
    public var maxFraction: Double = 0.85

    public init() {}

    /// Relief when the scene head (weights that have one) says the photo is a room view
    /// (`roomProbability` ≥ 0.5), or when the mask leaves no object to model: it covers under
    /// `minFraction` or over `maxFraction` of the picture, or touches all four borders. Object otherwise.
    public func choose(mask: [Float], width: Int, height: Int, threshold: Float = 0.5,
                       roomProbability: Float? = nil) -> PipelineOptions.Mode {
        if let roomProbability, roomProbability >= 0.5 { return .relief }
        var count = 0
        var touches = (top: false, bottom: false, left: false, right: false)
        for y in 0..<height {
            for x in 0..<width where mask[y * width + x] >= threshold {
                count += 1
                if y == 0 { touches.top = true }
                if y == height - 1 { touches.bottom = true }
                if x == 0 { touches.left = true }
                if x == width - 1 { touches.right = true }
            }
        }
        let fraction = Double(count) / Double(max(1, width * height))
        let allBorders = touches.top && touches.bottom && touches.left && touches.right
        return fraction >= minFraction && fraction <= maxFraction && !allBorders ? .object : .relief
    }
}
