extension Mesh {
    /// For every vertex, its neighbours through triangle edges (CSR: `start[v]..<start[v+1]`
    /// into `neighbours`), each listed once, in increasing order.
    public func vertexAdjacency() -> (start: [Int], neighbours: [UInt32]) {
        let n = positions.count
        // Every triangle lists each of its corners' two other corners; duplicates (an edge
        // in two triangles) are removed per vertex afterwards.
        var slot = [Int](repeating: 0, count: n + 1)
        for t in triangles { slot[Int(t.x) + 1] += 2; slot[Int(t.y) + 1] += 2; slot[Int(t.z) + 1] += 2 }
        for v in 0..<n { slot[v + 1] += slot[v] }
        var raw = [UInt32](repeating: 0, count: slot[n])
        var fill = slot
        for t in triangles {
            raw[fill[Int(t.x)]] = t.y; raw[fill[Int(t.x)] + 1] = t.z; fill[Int(t.x)] += 2
            raw[fill[Int(t.y)]] = t.z; raw[fill[Int(t.y)] + 1] = t.x; fill[Int(t.y)] += 2
            raw[fill[Int(t.z)]] = t.x; raw[fill[Int(t.z)] + 1] = t.y; fill[Int(t.z)] += 2
        }
        var start = [Int](repeating: 0, count: n + 1)
        var neighbours = [UInt32]()
        neighbours.reserveCapacity(raw.count / 2 + n)
        raw.withUnsafeMutableBufferPointer { r in
            for v in 0..<n {
                var list = UnsafeMutableBufferPointer(rebasing: r[slot[v]..<slot[v + 1]])
                list.sort()
                var previous = UInt32.max
                for w in list where w != previous { neighbours.append(w); previous = w }
                start[v + 1] = neighbours.count
            }
        }
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
