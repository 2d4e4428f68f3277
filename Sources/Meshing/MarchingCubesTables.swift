/// The marching-cubes case tables, generated (not typed in) from the cube's geometry.
///
/// Numbering. Corner `i` of a cell sits at `(i & 1, i >> 1 & 1, i >> 2 & 1)`. Edges 0–3
/// run along x at `(dy, dz) = (e & 1, e >> 1)`, edges 4–7 along y at `(dx, dz)`, edges
/// 8–11 along z at `(dx, dy)`. Face `f` is `axis * 2 + side` (side 0 at the low
/// coordinate).
///
/// Construction (Nielson–Hamann): on each face the iso-contour is a set of segments
/// between that face's crossed edges; on an ambiguous face (diagonal corners alike)
/// the asymptotic decider's bit says whether the inside corners are joined across the
/// saddle. Segments are oriented so that, seen from outside the cube, the inside lies
/// to their left. Every crossed edge then has exactly one outgoing and one incoming
/// segment, so the segments form disjoint closed loops, and each loop is triangulated
/// as a fan. Neighbouring cells see the same face values, take the same decision and
/// traverse each shared segment in opposite directions, so the union of all cells'
/// triangles is closed and consistently wound. A fan chord between two vertices that
/// lie on one face (possible only on an ambiguous face whose two segments belong to the
/// same loop) could be shared with the neighbouring cell; fans are rooted so that no
/// chord lies on a face, and a loop with no such root gets a centre vertex instead.
struct MarchingCubesTables: Sendable {
    /// Index into the tables: `case << 6 | faceBits`.
    let triangleStart: [UInt32]
    /// Triangle corner codes: 0–11 are edges, 12 + k is the centre of extra loop k.
    let triangleCodes: [UInt8]
    /// Loops that need a centre vertex: `[count, edge, edge, …]` repeated.
    let centerStart: [UInt32]
    let centerCodes: [UInt8]
    /// Faces whose diagonal corners are alike (ambiguous) for each case.
    let ambiguousFaces: [UInt8]
    /// Corners of each face, counter-clockwise seen from outside.
    let faceCorners: [[Int]]

    static let shared = MarchingCubesTables()

    static func corner(_ i: Int) -> SIMD3<Int> { SIMD3(i & 1, i >> 1 & 1, i >> 2 & 1) }

    /// The two corners of edge `e`, lower coordinate first.
    static func edgeCorners(_ e: Int) -> (Int, Int) {
        let axis = e / 4, a = e & 1, b = e >> 1 & 1
        switch axis {
        case 0: return (a << 1 | b << 2, 1 | a << 1 | b << 2)
        case 1: return (a | b << 2, a | 2 | b << 2)
        default: return (a | b << 1, a | b << 1 | 4)
        }
    }

    static func edge(between c1: Int, _ c2: Int) -> Int {
        let p = corner(c1), q = corner(c2)
        if p.x != q.x { return 0 + p.y + 2 * p.z }
        if p.y != q.y { return 4 + p.x + 2 * p.z }
        return 8 + p.x + 2 * p.y
    }

    /// The two faces edge `e` lies on.
    static func edgeFaces(_ e: Int) -> (Int, Int) {
        let a = e & 1, b = e >> 1 & 1
        switch e / 4 {
        case 0: return (2 + a, 4 + b)
        case 1: return (0 + a, 4 + b)
        default: return (0 + a, 2 + b)
        }
    }

    static func shareFace(_ e1: Int, _ e2: Int) -> Bool {
        let (a, b) = edgeFaces(e1), (c, d) = edgeFaces(e2)
        return a == c || a == d || b == c || b == d
    }

    init() {
        // Face corners, counter-clockwise seen from outside the cube.
        var faces: [[Int]] = []
        for axis in 0..<3 {
            for side in 0..<2 {
                let u = (axis + 1) % 3, v = (axis + 2) % 3
                let (s, t) = side == 1 ? (u, v) : (v, u)
                var list: [Int] = []
                for (cs, ct) in [(0, 0), (1, 0), (1, 1), (0, 1)] {
                    var p = SIMD3<Int>(0, 0, 0)
                    p[axis] = side; p[s] = cs; p[t] = ct
                    list.append(p.x | p.y << 1 | p.z << 2)
                }
                faces.append(list)
            }
        }
        faceCorners = faces
        var ambiguous = [UInt8](repeating: 0, count: 256)
        for c in 0..<256 {
            for f in 0..<6 {
                let inside = faces[f].map { c >> $0 & 1 }
                if inside[0] == inside[2] && inside[1] == inside[3] && inside[0] != inside[1] {
                    ambiguous[c] |= UInt8(1 << f)
                }
            }
        }
        ambiguousFaces = ambiguous

        var triStart: [UInt32] = [0], codes: [UInt8] = []
        var cStart: [UInt32] = [0], cCodes: [UInt8] = []
        for entry in 0..<(256 * 64) {
            let c = entry >> 6, bits = entry & 63
            // Only face bits of ambiguous faces are ever looked up; other entries stay empty.
            guard bits & ~Int(ambiguous[c]) == 0 else {
                triStart.append(UInt32(codes.count))
                cStart.append(UInt32(cCodes.count))
                continue
            }
            var next = [Int](repeating: -1, count: 12)
            for f in 0..<6 {
                let fc = faces[f]
                let inside = fc.map { c >> $0 & 1 == 1 }
                let e = (0..<4).map { MarchingCubesTables.edge(between: fc[$0], fc[($0 + 1) % 4]) }
                let crossed = (0..<4).filter { inside[$0] != inside[($0 + 1) % 4] }
                if crossed.count == 2 {
                    // From the edge entering the inside (out → in) to the one leaving it.
                    let k0 = crossed.first { !inside[$0] }!, k1 = crossed.first { inside[$0] }!
                    next[e[k0]] = e[k1]
                } else if crossed.count == 4 {
                    let joined = bits >> f & 1 == 1
                    for k in 0..<4 {
                        let km1 = (k + 3) % 4
                        if joined && !inside[k] { next[e[k]] = e[km1] }
                        if !joined && inside[k] { next[e[km1]] = e[k] }
                    }
                }
            }
            var visited = [Bool](repeating: false, count: 12)
            var centers = 0
            for start in 0..<12 where next[start] >= 0 && !visited[start] {
                var loop: [Int] = []
                var e = start
                while !visited[e] { visited[e] = true; loop.append(e); e = next[e] }
                precondition(e == start && loop.count >= 3, "open contour in case \(c)")
                let n = loop.count
                let root = (0..<n).first { a in
                    (2..<(n - 1)).allSatisfy { !MarchingCubesTables.shareFace(loop[a], loop[(a + $0) % n]) }
                }
                if let a = root {
                    for i in 1..<(n - 1) {
                        codes += [UInt8(loop[a]), UInt8(loop[(a + i) % n]), UInt8(loop[(a + i + 1) % n])]
                    }
                } else {
                    let code = UInt8(12 + centers)
                    centers += 1
                    cCodes.append(UInt8(n))
                    cCodes += loop.map { UInt8($0) }
                    for i in 0..<n { codes += [code, UInt8(loop[i]), UInt8(loop[(i + 1) % n])] }
                }
            }
            triStart.append(UInt32(codes.count))
            cStart.append(UInt32(cCodes.count))
        }
        triangleStart = triStart
        triangleCodes = codes
        centerStart = cStart
        centerCodes = cCodes
    }
}
