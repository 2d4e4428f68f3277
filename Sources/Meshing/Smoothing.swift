extension Mesh {
    /// For every vertex, its neighbours through triangle edges (CSR: `start[v]..<start[v+1]`
    /// into `neighbours`), each listed once, in increasing order.
    public func vertexAdjacency() -> (start: [Int], neighbours: [UInt32]) {
        var pairs = [UInt64]()
        pairs.reserveCapacity(triangles.count * 6)
        for t in triangles {
            for (a, b) in [(t.x, t.y), (t.y, t.z), (t.z, t.x)] {
                pairs.append(UInt64(a) << 32 | UInt64(b))
                pairs.append(UInt64(b) << 32 | UInt64(a))
            }
        }
        pairs.sort()
        var start = [Int](repeating: 0, count: positions.count + 1)
        var neighbours = [UInt32]()
        neighbours.reserveCapacity(pairs.count / 2)
        var previous = UInt64.max
        for p in pairs where p != previous {
            previous = p
            start[Int(p >> 32) + 1] += 1
            neighbours.append(UInt32(truncatingIfNeeded: p))
        }
        for v in 0..<positions.count { start[v + 1] += start[v] }
        return (start, neighbours)
    }

    /// Taubin λ/μ smoothing (uniform Laplacian): each iteration moves every vertex by
    /// λ times, then by μ times (μ < −λ < 0), the offset to its neighbours' average, which
    /// smooths without the shrinking of plain Laplacian smoothing. Normals are dropped
    /// (recompute them afterwards).
    public func taubinSmoothed(iterations: Int, lambda: Float = 0.5, mu: Float = -0.53) -> Mesh {
        guard iterations > 0, !triangles.isEmpty else { return self }
        let (start, neighbours) = vertexAdjacency()
        var current = positions
        var next = positions
        for _ in 0..<iterations {
            for factor in [lambda, mu] {
                current.withUnsafeBufferPointer { p in
                    next.withUnsafeMutableBufferPointer { q in
                        neighbours.withUnsafeBufferPointer { nb in
                            for v in 0..<p.count {
                                let s = start[v], e = start[v + 1]
                                guard e > s else { q[v] = p[v]; continue }
                                var sum = SIMD3<Float>.zero
                                for k in s..<e { sum += p[Int(nb[k])] }
                                q[v] = p[v] + factor * (sum / Float(e - s) - p[v])
                            }
                        }
                    }
                }
                swap(&current, &next)
            }
        }
        var copy = self
        copy.positions = current
        copy.normals = nil
        return copy
    }
}
