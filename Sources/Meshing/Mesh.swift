/// An indexed triangle mesh: shared vertices, triangles as index triples.
///
/// Attribute arrays (`normals`, `colors`, `uvs`) are either `nil` or hold exactly one
/// entry per position. Triangles are wound counter-clockwise seen from outside
/// (right-handed), so `(b - a) × (c - a)` points out of the surface.
///
/// UVs follow the glTF convention: `(0, 0)` is the top-left corner of the texture and
/// `v` grows downwards; writers for formats with the other convention (OBJ) flip `v`.
public struct Mesh: Sendable, Equatable {
    /// Vertex positions.
    public var positions: [SIMD3<Float>]
    /// Unit vertex normals, one per position, or `nil`.
    public var normals: [SIMD3<Float>]?
    /// RGB colours in 0...1, sRGB-encoded like the photo they come from, one per
    /// position, or `nil`.
    public var colors: [SIMD3<Float>]?
    /// Texture coordinates (glTF convention, v down), one per position, or `nil`.
    public var uvs: [SIMD2<Float>]?
    /// Vertex index triples, counter-clockwise seen from outside.
    public var triangles: [SIMD3<UInt32>]

    /// A mesh from its arrays. Attribute arrays must match `positions` in length.
    public init(positions: [SIMD3<Float>] = [], normals: [SIMD3<Float>]? = nil,
                colors: [SIMD3<Float>]? = nil, uvs: [SIMD2<Float>]? = nil,
                triangles: [SIMD3<UInt32>] = []) {
        precondition(normals == nil || normals!.count == positions.count, "one normal per position")
        precondition(colors == nil || colors!.count == positions.count, "one colour per position")
        precondition(uvs == nil || uvs!.count == positions.count, "one UV per position")
        self.positions = positions
        self.normals = normals
        self.colors = colors
        self.uvs = uvs
        self.triangles = triangles
    }

    /// Number of vertices.
    public var vertexCount: Int { positions.count }
    /// Number of triangles.
    public var triangleCount: Int { triangles.count }
    /// Whether there is no triangle.
    public var isEmpty: Bool { triangles.isEmpty }

    /// Whether every triangle index is below `vertexCount`.
    public var indicesAreValid: Bool {
        let n = UInt32(truncatingIfNeeded: positions.count)
        return triangles.allSatisfy { $0.x < n && $0.y < n && $0.z < n }
    }

    /// Per-vertex colours as 8-bit RGB (rounded, clamped), or `nil`.
    public var colorsUInt8: [SIMD3<UInt8>]? {
        colors.map { cs in
            cs.map { c in
                let v = (simd_clamp(c, 0, 1) * 255).rounded(.toNearestOrAwayFromZero)
                return SIMD3<UInt8>(UInt8(v.x), UInt8(v.y), UInt8(v.z))
            }
        }
    }

    /// Area-weighted vertex normals from the triangles (vertices on no triangle get +Z).
    public func vertexNormals() -> [SIMD3<Float>] {
        var sums = [SIMD3<Float>](repeating: .zero, count: positions.count)
        positions.withUnsafeBufferPointer { p in
            sums.withUnsafeMutableBufferPointer { n in
                for t in triangles {
                    let a = Int(t.x), b = Int(t.y), c = Int(t.z)
                    let cr = cross(p[b] - p[a], p[c] - p[a])
                    n[a] += cr; n[b] += cr; n[c] += cr
                }
            }
        }
        return sums.map { v in
            let l = length(v)
            return l > 0 ? v / l : SIMD3<Float>(0, 0, 1)
        }
    }

    /// Replaces `normals` with area-weighted vertex normals.
    public mutating func computeNormals() { normals = vertexNormals() }

    /// Moves every vertex by `offset`.
    public mutating func translate(by offset: SIMD3<Float>) {
        positions.withUnsafeMutableBufferPointer { p in
            for i in p.indices { p[i] += offset }
        }
    }

    /// Multiplies every position by `factor` (uniform, so normals are unchanged).
    public mutating func scale(by factor: Float) {
        positions.withUnsafeMutableBufferPointer { p in
            for i in p.indices { p[i] *= factor }
        }
    }

    /// The mesh restricted to the triangles whose index `keep` returns true for, with
    /// unreferenced vertices removed (attributes follow their vertices, order preserved).
    public func filteringTriangles(_ keep: (Int) -> Bool) -> Mesh {
        var kept: [SIMD3<UInt32>] = []
        kept.reserveCapacity(triangles.count)
        for (i, t) in triangles.enumerated() where keep(i) { kept.append(t) }
        var copy = self
        copy.triangles = kept
        return copy.compacted()
    }

    /// The same mesh without vertices that no triangle uses; vertex order is kept.
    public func compacted() -> Mesh {
        var remap = [UInt32](repeating: UInt32.max, count: positions.count)
        for t in triangles { remap[Int(t.x)] = 0; remap[Int(t.y)] = 0; remap[Int(t.z)] = 0 }
        var next: UInt32 = 0
        var keepIndex: [Int] = []
        keepIndex.reserveCapacity(positions.count)
        for i in 0..<remap.count where remap[i] == 0 {
            remap[i] = next; next += 1; keepIndex.append(i)
        }
        if keepIndex.count == positions.count { return self }
        return Mesh(positions: keepIndex.map { positions[$0] },
                    normals: normals.map { n in keepIndex.map { n[$0] } },
                    colors: colors.map { c in keepIndex.map { c[$0] } },
                    uvs: uvs.map { u in keepIndex.map { u[$0] } },
                    triangles: triangles.map { SIMD3(remap[Int($0.x)], remap[Int($0.y)], remap[Int($0.z)]) })
    }

    /// Appends another mesh (its indices shifted). Attributes present in only one of the
    /// two meshes are dropped.
    public mutating func append(_ other: Mesh) {
        let offset = UInt32(positions.count)
        normals = (normals != nil && other.normals != nil) ? normals! + other.normals! : nil
        colors = (colors != nil && other.colors != nil) ? colors! + other.colors! : nil
        uvs = (uvs != nil && other.uvs != nil) ? uvs! + other.uvs! : nil
        positions += other.positions
        triangles += other.triangles.map { $0 &+ SIMD3(repeating: offset) }
    }
}

// Small vector helpers (Linux has no simd module); public for the engine's other geometry
// code (the preview rasterizer).

/// The cross product a × b.
@inlinable public func cross(_ a: SIMD3<Float>, _ b: SIMD3<Float>) -> SIMD3<Float> {
    SIMD3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x)
}

/// The dot product a · b.
@inlinable public func dot(_ a: SIMD3<Float>, _ b: SIMD3<Float>) -> Float {
    (a * b).sum()
}

/// The Euclidean length of a.
@inlinable public func length(_ a: SIMD3<Float>) -> Float {
    (a * a).sum().squareRoot()
}

/// a scaled to unit length (a itself when it has no length).
@inlinable public func normalize(_ a: SIMD3<Float>) -> SIMD3<Float> {
    a / max(length(a), 1e-20)
}

@inline(__always) func simd_clamp(_ v: SIMD3<Float>, _ lo: Float, _ hi: Float) -> SIMD3<Float> {
    v.clamped(lowerBound: SIMD3(repeating: lo), upperBound: SIMD3(repeating: hi))
}
