/// Errors from the object and relief meshers.
public enum MeshingError: Error, Equatable, CustomStringConvertible {
    /// No pixel is foreground with a positive depth.
    case emptyMask
    /// The camera's image size does not match the depth maps'.
    case cameraMismatch(camera: SIMD2<Int>, maps: SIMD2<Int>)
    /// The photo's aspect ratio differs from the depth maps'.
    case photoAspectMismatch(photo: SIMD2<Int>, maps: SIMD2<Int>)
    /// Meshing produced no triangle.
    case emptyMesh

    public var description: String {
        switch self {
        case .emptyMask: "the mask has no foreground pixel with a positive depth"
        case let .cameraMismatch(c, m): "camera is \(c.x)x\(c.y) but the depth maps are \(m.x)x\(m.y)"
        case let .photoAspectMismatch(p, m): "photo \(p.x)x\(p.y) does not have the aspect of the depth maps \(m.x)x\(m.y)"
        case .emptyMesh: "meshing produced no triangle"
        }
    }
}
