/// How the edges of a mesh are shared between its triangles.
public struct EdgeReport: Sendable, Equatable {
    /// Distinct undirected edges.
    public var edgeCount: Int
    /// Edges used by exactly one triangle (holes).
    public var boundaryEdges: Int
    /// Edges used by more than two triangles.
    public var nonManifoldEdges: Int
    /// Edges used by two triangles that traverse them in the same direction.
    public var inconsistentEdges: Int

    /// Every edge is shared by exactly two triangles.
    public var isWatertight: Bool { boundaryEdges == 0 && nonManifoldEdges == 0 }
    /// Every shared edge is traversed once in each direction by its two triangles.
    public var isConsistentlyWound: Bool { inconsistentEdges == 0 && nonManifoldEdges == 0 }
}

/// Axis-aligned bounding box.
public struct Bounds: Sendable, Equatable {
    public var min: SIMD3<Float>
    public var max: SIMD3<Float>
    /// `max - min`.
    public var size: SIMD3<Float> { max - min }
    /// The middle of the box.
    public var center: SIMD3<Float> { (min + max) * 0.5 }
}

extension Mesh {
    /// Classifies every edge by how many triangles use it and in which directions.
    public func edgeReport() -> EdgeReport {
        var directed = [UInt64]()
        directed.reserveCapacity(triangles.count * 3)
        for t in triangles {
            for (a, b) in [(t.x, t.y), (t.y, t.z), (t.z, t.x)] {
                directed.append(UInt64(a) << 32 | UInt64(b))
            }
        }
        // Undirected key with the direction in the lowest bit.
        var keys = directed.map { k -> UInt64 in
            let a = k >> 32, b = k & 0xFFFF_FFFF
            return a < b ? (a << 33 | b << 1) : (b << 33 | a << 1 | 1)
        }
        keys.sort()
        var report = EdgeReport(edgeCount: 0, boundaryEdges: 0, nonManifoldEdges: 0, inconsistentEdges: 0)
        var i = 0
        while i < keys.count {
            let edge = keys[i] >> 1
            var j = i
            var forward = 0
            while j < keys.count && keys[j] >> 1 == edge {
                if keys[j] & 1 == 0 { forward += 1 }
                j += 1
            }
            let uses = j - i
            report.edgeCount += 1
            if uses == 1 { report.boundaryEdges += 1 }
            else if uses > 2 { report.nonManifoldEdges += 1 }
            else if forward != 1 { report.inconsistentEdges += 1 }
            i = j
        }
        return report
    }

    /// Every edge shared by exactly two triangles, wound consistently.
    public var isClosedManifold: Bool {
        let r = edgeReport()
        return r.isWatertight && r.isConsistentlyWound
    }

    /// V − E + F over the vertices that triangles use (2 for a sphere, 0 for a torus).
    public func eulerCharacteristic() -> Int {
        var used = [Bool](repeating: false, count: positions.count)
        for t in triangles { used[Int(t.x)] = true; used[Int(t.y)] = true; used[Int(t.z)] = true }
        let v = used.reduce(0) { $0 + ($1 ? 1 : 0) }
        return v - edgeReport().edgeCount + triangles.count
    }

    /// The connected component of every triangle (triangles sharing a vertex are
    /// connected), numbered 0..<count in order of first appearance.
    public func triangleComponents() -> (labels: [Int], count: Int) {
        var parent = Array(0..<positions.count)
        func find(_ x: Int) -> Int {
            var x = x
            while parent[x] != x { parent[x] = parent[parent[x]]; x = parent[x] }
            return x
        }
        func union(_ a: Int, _ b: Int) {
            let ra = find(a), rb = find(b)
            if ra != rb { if ra < rb { parent[rb] = ra } else { parent[ra] = rb } }
        }
        for t in triangles { union(Int(t.x), Int(t.y)); union(Int(t.x), Int(t.z)) }
        var number = [Int: Int]()
        var labels = [Int]()
        labels.reserveCapacity(triangles.count)
        for t in triangles {
            let root = find(Int(t.x))
            if let n = number[root] { labels.append(n) } else {
                number[root] = number.count
                labels.append(number.count - 1)
            }
        }
        return (labels, number.count)
    }

    /// Number of connected components (of triangles).
    public var componentCount: Int { triangleComponents().count }

    /// The mesh with only its largest connected component (by triangle count; the first
    /// one on ties).
    public func largestComponent() -> Mesh {
        let (labels, count) = triangleComponents()
        guard count > 1 else { return self }
        var sizes = [Int](repeating: 0, count: count)
        for l in labels { sizes[l] += 1 }
        let best = sizes.indices.max { sizes[$0] < sizes[$1] || (sizes[$0] == sizes[$1] && $0 > $1) }!
        return filteringTriangles { labels[$0] == best }
    }

    /// Triangles with a repeated index or an area at most `areaEpsilon`.
    public func degenerateTriangleCount(areaEpsilon: Float = 0) -> Int {
        var count = 0
        for t in triangles {
            if t.x == t.y || t.y == t.z || t.x == t.z { count += 1; continue }
            let a = positions[Int(t.x)], b = positions[Int(t.y)], c = positions[Int(t.z)]
            if length(cross(b - a, c - a)) * 0.5 <= areaEpsilon { count += 1 }
        }
        return count
    }

    /// Vertices whose position is bit-for-bit equal to an earlier vertex's.
    public func duplicatePositionCount() -> Int {
        var seen = Set<SIMD3<UInt32>>()
        seen.reserveCapacity(positions.count)
        var dup = 0
        for p in positions {
            let key = SIMD3(p.x.bitPattern, p.y.bitPattern, p.z.bitPattern)
            if !seen.insert(key).inserted { dup += 1 }
        }
        return dup
    }

    /// Bounding box of all positions, or `nil` for a mesh without vertices.
    public var bounds: Bounds? {
        guard var lo = positions.first else { return nil }
        var hi = lo
        for p in positions { lo = pointwiseMin(lo, p); hi = pointwiseMax(hi, p) }
        return Bounds(min: lo, max: hi)
    }

    /// Total triangle area.
    public var surfaceArea: Double {
        var sum = 0.0
        for t in triangles {
            let a = SIMD3<Double>(positions[Int(t.x)]), b = SIMD3<Double>(positions[Int(t.y)])
            let c = SIMD3<Double>(positions[Int(t.z)])
            let u = b - a, v = c - a
            let cr = SIMD3(u.y * v.z - u.z * v.y, u.z * v.x - u.x * v.z, u.x * v.y - u.y * v.x)
            sum += (cr * cr).sum().squareRoot() * 0.5
        }
        return sum
    }

    /// Signed enclosed volume (divergence theorem); positive for a closed mesh wound
    /// outwards. Meaningful only for watertight meshes.
    public var volume: Double {
        var sum = 0.0
        for t in triangles {
            let a = SIMD3<Double>(positions[Int(t.x)]), b = SIMD3<Double>(positions[Int(t.y)])
            let c = SIMD3<Double>(positions[Int(t.z)])
            let cr = SIMD3(b.y * c.z - b.z * c.y, b.z * c.x - b.x * c.z, b.x * c.y - b.y * c.x)
            sum += (a * cr).sum()
        }
        return sum / 6
    }
}
