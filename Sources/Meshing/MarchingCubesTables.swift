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
///
/// Interior ambiguity (MC33's subcases with a tunnel: 4.1.2, 6.1.2, 7.4.2, 10.1.2,
/// 12.1.2): where the faces leave two loops, the cube's surface splits into two caps of
/// one sign and a band of the other. The trilinear interpolant may join the caps through
/// the cell, and then the two loops bound one tube instead of two disks. Every such
/// entry also gets a tube triangulation (`tunnelCodes`) and its caps (`tunnelCaps`);
/// `Slab.interiorJoinsCaps` decides per cell. Either choice keeps the loops, so the
/// surface stays closed whichever is taken.
struct MarchingCubesTables: Sendable {
    /// Index into the tables: `case << 6 | faceBits`.
    let triangleStart: [UInt32]
    /// Triangle corner codes: 0–11 are edges, 12 + k is the centre of extra loop k.
    let triangleCodes: [UInt8]
    /// Loops that need a centre vertex: `[count, edge, edge, …]` repeated.
    let centerStart: [UInt32]
    let centerCodes: [UInt8]
    /// Alternative triangles for entries with two loops: a tube joining them (the
    /// interior-ambiguous configurations of MC33: 4.1.2, 6.1.2, 7.4.2, 10.1.2, 12.1.2).
    let tunnelStart: [UInt32]
    let tunnelCodes: [UInt8]
    /// For those entries: cap corner masks (bits 0–7 and 8–15) and, in bit 16, whether the
    /// caps are inside; 0 where there is no alternative.
    let tunnelCaps: [UInt32]
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

    /// Midpoint of edge `e` (for choosing short tube rungs).
    static func midpoint(_ e: Int) -> SIMD3<Float> {
        let (a, b) = edgeCorners(e)
        let p = corner(a) &+ corner(b)
        return SIMD3(Float(p.x), Float(p.y), Float(p.z)) / 2
    }

    /// The corners of the two caps (the surface regions bounded by one loop each) when
    /// the cube's surface is cut by two loops, packed as in `tunnelCaps`; `nil` unless the
    /// corners fall into exactly three regions, two of one sign around one of the other.
    static func caps(_ c: Int, bits: Int, faces: [[Int]], ambiguous: Int) -> UInt32? {
        var parent = Array(0..<8)
        func find(_ x: Int) -> Int { var x = x; while parent[x] != x { x = parent[x] }; return x }
        func union(_ a: Int, _ b: Int) { let ra = find(a), rb = find(b); if ra != rb { parent[max(ra, rb)] = min(ra, rb) } }
        for e in 0..<12 {
            let (a, b) = edgeCorners(e)
            if (c >> a & 1) == (c >> b & 1) { union(a, b) }
        }
        for f in 0..<6 where ambiguous >> f & 1 == 1 {
            let fc = faces[f]
            let joinedInside = bits >> f & 1 == 1
            // The diagonal pair that the decider joins across the face's saddle.
            let pair = (c >> fc[0] & 1 == 1) == joinedInside ? (fc[0], fc[2]) : (fc[1], fc[3])
            union(pair.0, pair.1)
        }
        var groups: [Int: UInt32] = [:]
        for i in 0..<8 { groups[find(i), default: 0] |= 1 << UInt32(i) }
        guard groups.count == 3 else { return nil }
        let masks = groups.values.sorted()
        let sign = masks.map { c >> $0.trailingZeroBitCount & 1 }
        for odd in 0..<3 {
            let others = (0..<3).filter { $0 != odd }
            if sign[others[0]] == sign[others[1]] && sign[odd] != sign[others[0]] {
                return masks[others[0]] | masks[others[1]] << 8 | UInt32(sign[others[0]]) << 16
            }
        }
        return nil
    }

    /// A tube joining loops `l1` and `l2` (edge codes, three per triangle): a zipper
    /// that walks `l1` forwards and `l2` backwards, which keeps both loops' directions, so
    /// the tube is wound like the rest of the surface. Both loops advance in proportion.
    /// Every rung (edge between the loops) must be new, or an edge would have four
    /// triangles, and must not lie on a cube face, where the neighbouring cell could use
    /// it too; `nil` when no start allows that.
    static func tube(_ l1: [Int], _ l2: [Int]) -> [Int]? {
        let n1 = l1.count, n2 = l2.count
        func dist(_ a: Int, _ b: Int) -> Float { let d = midpoint(a) - midpoint(b); return (d * d).sum() }
        let starts = (0..<n2).filter { !shareFace(l1[0], l2[$0]) }.sorted { dist(l1[0], l2[$0]) < dist(l1[0], l2[$1]) }
        for s in starts {
            var tris: [Int] = []
            var used: Set<Int> = [l1[0] * 16 + l2[s]]
            var i = 0, j = 0
            var failed = false
            while i < n1 || j < n2 {
                let a = l1[i % n1], b = l2[((s - j) % n2 + n2) % n2]
                let nextA = l1[(i + 1) % n1], nextB = l2[((s - j - 1) % n2 + n2) % n2]
                let last = (i + 1 == n1 && j == n2) || (i == n1 && j + 1 == n2)
                func allowed(_ p: Int, _ q: Int) -> Bool { last || (!shareFace(p, q) && !used.contains(p * 16 + q)) }
                let canA = i < n1 && allowed(nextA, b)
                let canB = j < n2 && allowed(a, nextB)
                let preferA = (i + 1) * n2 <= (j + 1) * n1
                if canA && (preferA || !canB) {
                    tris += [a, nextA, b]; i += 1; used.insert(nextA * 16 + b)
                } else if canB {
                    tris += [nextB, b, a]; j += 1; used.insert(a * 16 + nextB)
                } else { failed = true; break }
            }
            if !failed { return tris }
        }
        return nil
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
        var tunStart: [UInt32] = [0], tunCodes: [UInt8] = [], tunCaps: [UInt32] = []
        for entry in 0..<(256 * 64) {
            let c = entry >> 6, bits = entry & 63
            // Only face bits of ambiguous faces are ever looked up; other entries stay empty.
            guard bits & ~Int(ambiguous[c]) == 0 else {
                triStart.append(UInt32(codes.count))
                cStart.append(UInt32(cCodes.count))
                tunCaps.append(0)
                tunStart.append(UInt32(tunCodes.count))
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
            var loops: [[Int]] = []
            for start in 0..<12 where next[start] >= 0 && !visited[start] {
                var loop: [Int] = []
                var e = start
                while !visited[e] { visited[e] = true; loop.append(e); e = next[e] }
                precondition(e == start && loop.count >= 3, "open contour in case \(c)")
                loops.append(loop)
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
            var caps: UInt32 = 0
            if loops.count == 2, let found = MarchingCubesTables.caps(c, bits: bits, faces: faces, ambiguous: Int(ambiguous[c])),
               let tube = MarchingCubesTables.tube(loops[0], loops[1]) {
                caps = found
                tunCodes += tube.map { UInt8($0) }
            }
            tunCaps.append(caps)
            tunStart.append(UInt32(tunCodes.count))
        }
        triangleStart = triStart
        tunnelStart = tunStart
        tunnelCodes = tunCodes
        tunnelCaps = tunCaps
        triangleCodes = codes
        centerStart = cStart
        centerCodes = cCodes
    }
}
