/// Quadric error metric of one vertex: the sum of squared distances to a set of planes,
/// as the symmetric 4×4 matrix Σ p pᵀ (p = (a, b, c, d), unit normal).
struct Quadric {
    // m0…m7 in `a`, m8 and m9 in `b`, upper triangle of the 4×4 matrix row by row.
    var a = SIMD8<Double>()
    var b = SIMD2<Double>()

    mutating func add(plane p: SIMD4<Double>) {
        a += SIMD8(p.x * p.x, p.x * p.y, p.x * p.z, p.x * p.w, p.y * p.y, p.y * p.z, p.y * p.w, p.z * p.z)
        b += SIMD2(p.z * p.w, p.w * p.w)
    }

    mutating func add(_ q: Quadric) { a += q.a; b += q.b }

    /// Sum of squared distances of `v` to the planes.
    func error(_ v: SIMD3<Float>) -> Double {
        let x = Double(v.x), y = Double(v.y), z = Double(v.z)
        return a[0] * x * x + 2 * a[1] * x * y + 2 * a[2] * x * z + 2 * a[3] * x
            + a[4] * y * y + 2 * a[5] * y * z + 2 * a[6] * y
            + a[7] * z * z + 2 * b[0] * z + b[1]
    }
}

/// A binary min-heap of candidate collapses.
struct CollapseHeap {
    struct Item { var cost: Double; var from: Int32; var to: Int32; var stamp: UInt64 }
    var items: [Item] = []

    mutating func push(_ item: Item) {
        items.append(item)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if !less(items[i], items[parent]) { break }
            items.swapAt(i, parent); i = parent
        }
    }

    mutating func pop() -> Item? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count && less(items[l], items[m]) { m = l }
                if r < items.count && less(items[r], items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m); i = m
            }
        }
        return first
    }

    /// Cost first; ties broken by vertex ids so the result is deterministic.
    func less(_ a: Item, _ b: Item) -> Bool {
        if a.cost != b.cost { return a.cost < b.cost }
        if a.from != b.from { return a.from < b.from }
        return a.to < b.to
    }
}

extension Mesh {
    /// Garland–Heckbert simplification by half-edge collapses: the cheapest collapse by
    /// quadric error goes first, as long as the sum of squared distances from the kept
    /// vertex to the planes of the original faces it now stands for stays at most
    /// `maxError²` (so no plane is farther than `maxError`). Vertices on the border (edges
    /// with one triangle) or on non-manifold edges never move, collapses that would fold a
    /// triangle over or pinch the surface (link condition) are skipped. Kept vertices keep
    /// their attributes exactly, so UVs and colours stay valid.
    public func simplified(maxError: Float) -> Mesh {
        let n = positions.count
        guard n > 0, !triangles.isEmpty else { return self }
        var faces = triangles.map { SIMD3<Int32>(Int32($0.x), Int32($0.y), Int32($0.z)) }
        var alive = [Bool](repeating: true, count: faces.count)
        var vertexFaces = [[Int32]](repeating: [], count: n)
        var quadrics = [Quadric](repeating: Quadric(), count: n)
        for (f, t) in faces.enumerated() {
            for v in [t.x, t.y, t.z] { vertexFaces[Int(v)].append(Int32(f)) }
            let a = positions[Int(t.x)], b = positions[Int(t.y)], c = positions[Int(t.z)]
            let cr = cross(b - a, c - a)
            let len = length(cr)
            guard len > 0 else { continue }
            let nrm = SIMD3<Double>(cr / len)
            let plane = SIMD4(nrm.x, nrm.y, nrm.z, -(nrm * SIMD3<Double>(a)).sum())
            for v in [t.x, t.y, t.z] { quadrics[Int(v)].add(plane: plane) }
        }
        // Lock vertices on edges that do not have exactly two triangles.
        var locked = [Bool](repeating: false, count: n)
        var edgeUses: [UInt64: Int] = [:]
        for t in faces {
            for (a, b) in [(t.x, t.y), (t.y, t.z), (t.z, t.x)] {
                edgeUses[UInt64(min(a, b)) << 32 | UInt64(max(a, b)), default: 0] += 1
            }
        }
        for (key, uses) in edgeUses where uses != 2 {
            locked[Int(key >> 32)] = true; locked[Int(key & 0xFFFF_FFFF)] = true
        }
        edgeUses = [:]
        var stamp = [UInt64](repeating: 0, count: n)
        var removed = [Bool](repeating: false, count: n)
        var heap = CollapseHeap()
        let limit = Double(maxError) * Double(maxError)

        /// The vertices sharing a live triangle with v, sorted, each once.
        func neighbours(_ v: Int) -> [Int32] {
            var s: [Int32] = []
            s.reserveCapacity(12)
            for f in vertexFaces[v] where alive[Int(f)] {
                let t = faces[Int(f)]
                if Int(t.x) != v && !s.contains(t.x) { s.append(t.x) }
                if Int(t.y) != v && !s.contains(t.y) { s.append(t.y) }
                if Int(t.z) != v && !s.contains(t.z) { s.append(t.z) }
            }
            return s.sorted()
        }
        func consider(_ u: Int, _ v: Int) {
            // Collapse u into v (u disappears).
            guard !locked[u], !removed[u], !removed[v] else { return }
            var q = quadrics[u]; q.add(quadrics[v])
            let cost = q.error(positions[v])
            if cost <= limit { heap.push(.init(cost: cost, from: Int32(u), to: Int32(v), stamp: stamp[u] &+ stamp[v] << 32)) }
        }
        for u in 0..<n where !locked[u] {
            for v in neighbours(u) { consider(u, Int(v)) }
        }
        while let item = heap.pop() {
            let u = Int(item.from), v = Int(item.to)
            guard !removed[u], !removed[v], item.stamp == stamp[u] &+ stamp[v] << 32 else { continue }
            let nu = neighbours(u), nv = neighbours(v)
            guard nu.contains(Int32(v)) else { continue }
            // Link condition: the common neighbours are exactly the two apexes of edge uv.
            var shared: [Int32] = []
            for f in vertexFaces[u] where alive[Int(f)] {
                let t = faces[Int(f)]
                if Int(t.x) == v || Int(t.y) == v || Int(t.z) == v { shared.append(f) }
            }
            guard shared.count == 2, nu.filter({ nv.contains($0) }).count == 2 else { continue }
            // No triangle may flip or collapse.
            var ok = true
            for f in vertexFaces[u] where alive[Int(f)] && !shared.contains(f) {
                let t = faces[Int(f)]
                let p0 = positions[Int(t.x)], p1 = positions[Int(t.y)], p2 = positions[Int(t.z)]
                let pv = positions[v]
                let q0 = Int(t.x) == u ? pv : p0, q1 = Int(t.y) == u ? pv : p1, q2 = Int(t.z) == u ? pv : p2
                let before = cross(p1 - p0, p2 - p0), after = cross(q1 - q0, q2 - q0)
                if dot(before, after) <= 1e-3 * dot(before, before) { ok = false; break }
            }
            guard ok else { continue }
            for f in shared { alive[Int(f)] = false }
            for f in vertexFaces[u] where alive[Int(f)] {
                var t = faces[Int(f)]
                if Int(t.x) == u { t.x = Int32(v) }
                if Int(t.y) == u { t.y = Int32(v) }
                if Int(t.z) == u { t.z = Int32(v) }
                faces[Int(f)] = t
                vertexFaces[v].append(f)
            }
            vertexFaces[v].removeAll { !alive[Int($0)] }
            vertexFaces[u] = []
            removed[u] = true
            quadrics[v].add(quadrics[u])
            // Only collapses touching v change cost; the others are rechecked when popped.
            stamp[v] &+= 1
            for w in neighbours(v) { consider(v, Int(w)); consider(Int(w), v) }
        }
        var copy = self
        copy.triangles = faces.indices.filter { alive[$0] }.map {
            SIMD3(UInt32(faces[$0].x), UInt32(faces[$0].y), UInt32(faces[$0].z))
        }
        copy.normals = nil
        return copy.compacted()
    }
}
