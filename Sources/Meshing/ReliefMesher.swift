import Imaging

/// Relief mode: the front depth map back-projected through the camera into a triangle
/// grid (one vertex per foreground pixel centre, in camera-frame units, facing +Z).
///
/// A triangle is dropped when one of its corners is background or when one of its edges
/// jumps in depth by more than `discontinuityRatio` times the edge's footprint (its
/// length in pixels times the size of a pixel at the nearer depth, depth / focal
/// length): such a jump is an occlusion boundary, not a surface. Each grid square is
/// split along the diagonal with the smaller depth difference. UVs map every vertex to
/// its pixel in the photo (glTF convention, v down). With `maxError` the grid is then
/// simplified by quadric edge collapses (Garland–Heckbert) while the estimated deviation
/// stays below `maxError`, border and cut edges kept in place.
public struct ReliefMesher: Sendable {
    /// Settings for relief mode.
    public struct Options: Sendable, Equatable {
        /// Mask probability at and above which a pixel is foreground.
        public var maskThreshold: Float = 0.5
        /// Largest depth jump across an edge, in units of the edge's footprint.
        public var discontinuityRatio: Float = 12
        /// Simplify to this maximum error (camera-frame units); `nil` keeps the full grid.
        public var maxError: Float? = nil
        /// Per-vertex colours from the photo as well as UVs.
        public var vertexColors: Bool = false

        public init() {}
    }

    public var options: Options

    public init(options: Options = Options()) { self.options = options }

    /// The relief mesh of `maps.front` (and `maps.mask`) seen through `camera`, whose
    /// image size must be the maps'. `photo` (same aspect) is only used for vertex colours.
    public func mesh(_ maps: DepthMaps, camera: PinholeCamera, photo: Image? = nil) throws(MeshingError) -> Mesh {
        try checkCamera(camera, maps)
        if let photo { try checkAspect(photo, maps) }
        let w = maps.width, h = maps.height
        var index = [Int32](repeating: -1, count: w * h)
        var positions: [SIMD3<Float>] = [], uvs: [SIMD2<Float>] = []
        for j in 0..<h {
            for i in 0..<w {
                let k = j * w + i, d = maps.front[k]
                guard maps.mask[k] >= options.maskThreshold, d > 0, d.isFinite else { continue }
                let pixel = SIMD2(Float(i) + 0.5, Float(j) + 0.5)
                index[k] = Int32(positions.count)
                positions.append(camera.point(at: pixel, depth: d))
                uvs.append(pixel / SIMD2(Float(w), Float(h)))
            }
        }
        guard !positions.isEmpty else { throw .emptyMask }
        let ratio = options.discontinuityRatio / camera.focalLength
        func connected(_ a: Int, _ b: Int, _ pixels: Float) -> Bool {
            let da = maps.front[a], db = maps.front[b]
            return abs(da - db) <= ratio * pixels * min(da, db)
        }
        var triangles: [SIMD3<UInt32>] = []
        triangles.reserveCapacity(2 * positions.count)
        let diagonal = Float(2).squareRoot()
        func emit(_ a: Int, _ b: Int, _ c: Int, _ lab: Float, _ lbc: Float, _ lca: Float) {
            guard index[a] >= 0, index[b] >= 0, index[c] >= 0,
                  connected(a, b, lab), connected(b, c, lbc), connected(c, a, lca) else { return }
            triangles.append(SIMD3(UInt32(index[a]), UInt32(index[b]), UInt32(index[c])))
        }
        for j in 0..<(h - 1) {
            for i in 0..<(w - 1) {
                let tl = j * w + i, tr = tl + 1, bl = tl + w, br = bl + 1
                // Split along the diagonal whose ends are closer in depth; counter-clockwise
                // seen from the camera (+Z).
                if abs(maps.front[tl] - maps.front[br]) <= abs(maps.front[tr] - maps.front[bl]) {
                    emit(tl, bl, br, 1, 1, diagonal)
                    emit(tl, br, tr, diagonal, 1, 1)
                } else {
                    emit(tl, bl, tr, 1, diagonal, 1)
                    emit(tr, bl, br, diagonal, 1, 1)
                }
            }
        }
        var mesh = Mesh(positions: positions, uvs: uvs, triangles: triangles)
        if options.vertexColors, let photo {
            mesh.colors = uvs.map { photo.bilinear(x: $0.x * Float(photo.width), y: $0.y * Float(photo.height)) }
        }
        if let maxError = options.maxError {
            mesh = mesh.simplified(maxError: maxError)
        }
        mesh = mesh.compacted()
        mesh.computeNormals()
        return mesh
    }
}
