import Foundation

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

extension Mesh {
    /// Feature-preserving smoothing: bilateral filtering of the face normals, then vertices
    /// moved to fit the filtered normals (Zheng, Fu, Au and Tai, "Bilateral Normal Filtering for
    /// Mesh Denoising", IEEE TVCG 2011; the vertex update of Sun et al. 2007).
    ///
    /// Each normal pass replaces a face's normal by the area- and distance-weighted mean of
    /// the normals of the faces that share a vertex with it, weighted down by how much they
    /// differ (Gaussian of `|nᵢ − nⱼ|` with width `sigmaNormal`; a right-angle crease is 1.41): small ripples (a texture the
    /// network read as relief, marching-cubes terraces) are averaged away while creases sharper
    /// than about `sigmaNormal` keep both sides apart, so flat faces come out flat and edges
    /// sharp. The spatial width is the mean edge length times `spatialScale`. Normals are
    /// dropped (recompute them afterwards).
    ///
    /// The normal passes run on `threads` threads (the result does not depend on how many).
    public func bilateralNormalSmoothed(normalIterations: Int = 5, vertexIterations: Int = 10,
                                        sigmaNormal: Float = 0.6, spatialScale: Float = 1.5, threads: Int = 1) -> Mesh {
        guard normalIterations > 0, !triangles.isEmpty else { return self }
        let nf = triangles.count, nv = positions.count
        // Faces around each vertex (CSR).
        var vstart = [Int](repeating: 0, count: nv + 1)
        for t in triangles { vstart[Int(t.x) + 1] += 1; vstart[Int(t.y) + 1] += 1; vstart[Int(t.z) + 1] += 1 }
        for v in 0..<nv { vstart[v + 1] += vstart[v] }
        var vfaces = [Int32](repeating: 0, count: vstart[nv])
        var fill = vstart
        for (f, t) in triangles.enumerated() {
            for c in 0..<3 { let v = Int(t[c]); vfaces[fill[v]] = Int32(f); fill[v] += 1 }
        }
        // Faces sharing a vertex with each face (itself included), each once.
        var fstart = [Int](repeating: 0, count: nf + 1)
        var fneighbours: [Int32] = []
        fneighbours.reserveCapacity(nf * 13)
        var mark = [Int32](repeating: -1, count: nf)
        for (f, t) in triangles.enumerated() {
            for c in 0..<3 {
                let v = Int(t[c])
                for k in vstart[v]..<vstart[v + 1] where mark[Int(vfaces[k])] != Int32(f) {
                    mark[Int(vfaces[k])] = Int32(f)
                    fneighbours.append(vfaces[k])
                }
            }
            fstart[f + 1] = fneighbours.count
        }
        var p = positions
        func faceGeometry(_ p: [SIMD3<Float>]) -> (normals: [SIMD3<Float>], centres: [SIMD3<Float>], areas: [Float]) {
            var normals = [SIMD3<Float>](repeating: .zero, count: nf), centres = normals, areas = [Float](repeating: 0, count: nf)
            for (f, t) in triangles.enumerated() {
                let a = p[Int(t.x)], b = p[Int(t.y)], c = p[Int(t.z)]
                let n = cross(b - a, c - a)
                let l = length(n)
                normals[f] = l > 0 ? n / l : .zero
                areas[f] = l / 2
                centres[f] = (a + b + c) / 3
            }
            return (normals, centres, areas)
        }
        var edgeSum: Float = 0
        for t in triangles { edgeSum += length(p[Int(t.x)] - p[Int(t.y)]) + length(p[Int(t.y)] - p[Int(t.z)]) + length(p[Int(t.z)] - p[Int(t.x)]) }
        let sigmaSpatial = max(edgeSum / Float(3 * nf), 1e-9) * spatialScale
        let spatial = -1 / (2 * sigmaSpatial * sigmaSpatial), range = -1 / (2 * sigmaNormal * sigmaNormal)
        var (normals, centres, areas) = faceGeometry(p)
        // The positions do not move while the normals are filtered: the spatial weight of every
        // pair (area × Gaussian of the centres' distance) is computed once.
        let workers = max(1, min(threads, nf / 4096))
        var weights = [Float](repeating: 0, count: fneighbours.count)
        weights.withUnsafeMutableBufferPointer { w in
            centres.withUnsafeBufferPointer { c in
                areas.withUnsafeBufferPointer { a in
                    fneighbours.withUnsafeBufferPointer { nb in
                        fstart.withUnsafeBufferPointer { fs in
                            let shared = UnsafeSendable(value: (w, c, a, nb, fs))
                            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                                let (w, c, a, nb, fs) = shared.value
                                for f in (nf * worker / workers)..<(nf * (worker + 1) / workers) {
                                    let ci = c[f]
                                    for k in fs[f]..<fs[f + 1] {
                                        let j = Int(nb[k])
                                        let dc = ci - c[j]
                                        w[k] = a[j] * exp(dot(dc, dc) * spatial)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        var filtered = normals
        for _ in 0..<normalIterations {
            normals.withUnsafeBufferPointer { n in
                filtered.withUnsafeMutableBufferPointer { out in
                    weights.withUnsafeBufferPointer { w in
                        fneighbours.withUnsafeBufferPointer { nb in
                            fstart.withUnsafeBufferPointer { fs in
                                let shared = UnsafeSendable(value: (n, out, w, nb, fs))
                                DispatchQueue.concurrentPerform(iterations: workers) { worker in
                                    let (n, out, w, nb, fs) = shared.value
                                    let lo = nf * worker / workers, hi = nf * (worker + 1) / workers
                                    for f in lo..<hi {
                                        var sum = SIMD3<Float>.zero
                                        let ni = n[f]
                                        for k in fs[f]..<fs[f + 1] {
                                            let nj = n[Int(nb[k])]
                                            let dn = ni - nj
                                            sum += w[k] * exp(dot(dn, dn) * range) * nj
                                        }
                                        let l = length(sum)
                                        out[f] = l > 0 ? sum / l : ni
                                    }
                                }
                            }
                        }
                    }
                }
            }
            swap(&normals, &filtered)
        }
        // Vertices: each moves towards the planes of its faces (centre, filtered normal).
        for _ in 0..<vertexIterations {
            let geometry = faceGeometry(p)
            centres = geometry.centres
            var next = p
            next.withUnsafeMutableBufferPointer { out in
                p.withUnsafeBufferPointer { p in
                    normals.withUnsafeBufferPointer { n in
                        centres.withUnsafeBufferPointer { c in
                            vfaces.withUnsafeBufferPointer { vf in
                                vstart.withUnsafeBufferPointer { vs in
                                    let shared = UnsafeSendable(value: (out, p, n, c, vf, vs))
                                    DispatchQueue.concurrentPerform(iterations: workers) { worker in
                                        let (out, p, n, c, vf, vs) = shared.value
                                        for v in (nv * worker / workers)..<(nv * (worker + 1) / workers) {
                                            let s = vs[v], e = vs[v + 1]
                                            guard e > s else { continue }
                                            var move = SIMD3<Float>.zero
                                            for k in s..<e {
                                                let f = Int(vf[k])
                                                move += n[f] * dot(n[f], c[f] - p[v])
                                            }
                                            out[v] = p[v] + move / Float(e - s)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            p = next
        }
        var copy = self
        copy.positions = p
        copy.normals = nil
        return copy
    }
}
