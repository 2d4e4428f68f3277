import Dispatch
import Foundation

/// Marching cubes on a dense float grid.
///
/// Samples greater than `level` are inside; triangles are wound counter-clockwise seen
/// from outside (normals point from inside to outside). The surface is closed and
/// consistently wound wherever the inside does not touch the grid's border (pad the
/// volume to close it there): ambiguous faces are resolved with the asymptotic decider,
/// identically in both cells that share the face (see `MarchingCubesTables`).
///
/// Vertices are welded through an edge cache (one vertex per crossed grid edge, no
/// hashing). Work is split into slabs of `slabDepth` cell layers, fixed by the grid and
/// not by the thread count, processed on up to `threads` threads and concatenated in
/// slab order; seam vertices belong to the upper slab. The output (vertex order
/// included) is therefore identical for every thread count. Rows of a plane that are
/// entirely inside or outside are skipped without looking at their cells.
public struct MarchingCubes: Sendable {
    /// The iso level.
    public var level: Float
    /// Worker threads (at least 1).
    public var threads: Int
    /// Cell layers per slab (the unit of parallel work).
    public static let slabDepth = 8
    /// Vertices are kept this fraction of an edge away from its ends, so that no two
    /// vertices coincide when samples equal the level.
    public static let edgeMargin: Float = 1e-3

    /// A mesher for iso level `level` on `threads` threads (default: all cores).
    public init(level: Float = 0, threads: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.level = level
        self.threads = max(1, threads)
    }

    /// The iso-surface of `volume`, in the volume's coordinates.
    public func mesh(_ volume: Volume) -> Mesh {
        volume.values.withUnsafeBufferPointer { values in
            mesh(values: values, width: volume.width, height: volume.height, depth: volume.depth,
                 origin: volume.origin, spacing: volume.spacing)
        }
    }

    /// The iso-surface of a raw grid (x fastest). Vertex `(x, y, z)` sits at
    /// `origin + spacing * (x, y, z)`.
    public func mesh(values: UnsafeBufferPointer<Float>, width: Int, height: Int, depth: Int,
                     origin: SIMD3<Float> = .zero, spacing: SIMD3<Float> = .one) -> Mesh {
        precondition(values.count == width * height * depth, "grid size does not match its samples")
        guard width >= 2, height >= 2, depth >= 2, let base = values.baseAddress else { return Mesh() }
        let grid = Grid(values: base, nx: width, ny: height, nz: depth, level: level,
                        origin: origin, spacing: spacing)
        let slabCount = (depth - 1 + Self.slabDepth - 1) / Self.slabDepth
        let results = SlabResults(count: slabCount)
        defer { results.deallocate() }
        let workers = min(threads, slabCount)
        let tables = MarchingCubesTables.shared
        if workers == 1 {
            for s in 0..<slabCount { results.store(s, Slab.run(grid, tables, index: s, count: slabCount)) }
        } else {
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                for s in stride(from: w, to: slabCount, by: workers) {
                    results.store(s, Slab.run(grid, tables, index: s, count: slabCount))
                }
            }
        }
        return assemble(results, grid: grid, workers: workers)
    }

    private func assemble(_ results: SlabResults, grid: Grid, workers: Int) -> Mesh {
        let n = results.count
        var vertexOffset = [Int](repeating: 0, count: n + 1)
        var indexOffset = [Int](repeating: 0, count: n + 1)
        for s in 0..<n {
            vertexOffset[s + 1] = vertexOffset[s] + results[s].positions.count
            indexOffset[s + 1] = indexOffset[s] + results[s].indices.count
        }
        let plane = grid.nx * grid.ny
        let positions = [SIMD3<Float>](unsafeUninitializedCapacity: vertexOffset[n]) { out, count in
            let outBase = out.baseAddress!
            let copy = { (s: Int) in
                results[s].positions.withUnsafeBufferPointer { src in
                    if let a = src.baseAddress { (outBase + vertexOffset[s]).initialize(from: a, count: src.count) }
                }
            }
            if workers == 1 { for s in 0..<n { copy(s) } } else {
                let box = UnsafeSendable(value: copy)
                DispatchQueue.concurrentPerform(iterations: n) { box.value($0) }
            }
            count = vertexOffset[n]
        }
        let triangleCount = indexOffset[n] / 3
        let triangles = [SIMD3<UInt32>](unsafeUninitializedCapacity: triangleCount) { out, count in
            let outBase = out.baseAddress!
            let copy = { (s: Int) in
                let own = UInt32(vertexOffset[s])
                let dst = outBase + indexOffset[s] / 3
                results[s].indices.withUnsafeBufferPointer { src in
                    let upperSlab = s + 1 < n ? results[s + 1] : SlabOutput()
                    let upper = s + 1 < n ? UInt32(vertexOffset[s + 1]) : 0
                    upperSlab.bottomX.withUnsafeBufferPointer { bx in
                        upperSlab.bottomY.withUnsafeBufferPointer { by in
                            @inline(__always) func map(_ v: UInt32) -> UInt32 {
                                if v & Slab.tag == 0 { return v &+ own }
                                let j = Int(v & ~Slab.tag)
                                return UInt32(bitPattern: j < plane ? bx[j] : by[j - plane]) &+ upper
                            }
                            for t in 0..<(src.count / 3) {
                                (dst + t).initialize(to: SIMD3(map(src[3 * t]), map(src[3 * t + 1]), map(src[3 * t + 2])))
                            }
                        }
                    }
                }
            }
            if workers == 1 { for s in 0..<n { copy(s) } } else {
                let box = UnsafeSendable(value: copy)
                DispatchQueue.concurrentPerform(iterations: n) { box.value($0) }
            }
            count = triangleCount
        }
        return Mesh(positions: positions, triangles: triangles)
    }
}

/// Wraps a value for a closure that only touches disjoint memory from each thread.
struct UnsafeSendable<T>: @unchecked Sendable { let value: T }

/// The grid as the slab workers see it.
struct Grid: @unchecked Sendable {
    let values: UnsafePointer<Float>
    let nx: Int, ny: Int, nz: Int
    let level: Float
    let origin: SIMD3<Float>
    let spacing: SIMD3<Float>
}

/// One slab's output: its own vertices, and indices that are either local (untagged) or
/// tagged references to an x/y edge of its top plane, owned by the next slab.
struct SlabOutput {
    var positions: [SIMD3<Float>] = []
    var indices: [UInt32] = []
    var bottomX: [Int32] = []
    var bottomY: [Int32] = []
}

/// Per-slab result slots written by the workers (each slot by exactly one thread).
final class SlabResults: @unchecked Sendable {
    let count: Int
    private let slots: UnsafeMutablePointer<SlabOutput>
    init(count: Int) {
        self.count = count
        slots = .allocate(capacity: count)
        slots.initialize(repeating: SlabOutput(), count: count)
    }
    func store(_ i: Int, _ value: SlabOutput) { slots[i] = value }
    subscript(i: Int) -> SlabOutput { slots[i] }
    func deallocate() { slots.deinitialize(count: count); slots.deallocate() }
}

enum Slab {
    static let tag: UInt32 = 1 << 31

    static func run(_ g: Grid, _ tables: MarchingCubesTables, index: Int, count: Int) -> SlabOutput {
        let z0 = index * MarchingCubes.slabDepth
        let z1 = min(z0 + MarchingCubes.slabDepth, g.nz - 1)
        let ownsTop = index == count - 1
        let nx = g.nx, ny = g.ny, plane = nx * ny
        var out = SlabOutput()
        out.positions.reserveCapacity(4096)
        out.indices.reserveCapacity(8192)
        var bitsA = [UInt8](repeating: 0, count: plane), bitsB = bitsA
        var rowA = [UInt8](repeating: 0, count: ny), rowB = rowA
        var xA = [Int32](repeating: -1, count: plane), yA = xA, xB = xA, yB = xA, zE = xA
        let level = g.level, margin = MarchingCubes.edgeMargin
        let v = g.values

        @inline(__always) func vertex(_ i0: Int, _ i1: Int, _ x: Int, _ y: Int, _ z: Int, axis: Int) -> Int32 {
            let a = v[i0], b = v[i1]
            var t = (level - a) / (b - a)
            t = min(max(t, margin), 1 - margin)
            var p = SIMD3<Float>(Float(x), Float(y), Float(z))
            p[axis] += t
            out.positions.append(g.origin + g.spacing * p)
            return Int32(out.positions.count - 1)
        }

        func classify(_ z: Int, _ bits: inout [UInt8], _ rows: inout [UInt8]) {
            let src = v + z * plane
            bits.withUnsafeMutableBufferPointer { b in
                for y in 0..<ny {
                    var any: UInt8 = 0, all: UInt8 = 1
                    let r = y * nx
                    for x in 0..<nx {
                        let bit: UInt8 = src[r + x] > level ? 1 : 0
                        b[r + x] = bit
                        any |= bit
                        all &= bit
                    }
                    rows[y] = all == 1 ? 1 : (any == 0 ? 0 : 2)
                }
            }
        }

        func planeEdges(_ z: Int, _ bits: [UInt8], _ rows: [UInt8], _ xs: inout [Int32], _ ys: inout [Int32], tagged: Bool) {
            let zOff = z * plane
            bits.withUnsafeBufferPointer { b in
                xs.withUnsafeMutableBufferPointer { xo in
                    for y in 0..<ny where rows[y] == 2 {
                        let r = y * nx
                        for x in 0..<(nx - 1) where b[r + x] != b[r + x + 1] {
                            xo[r + x] = tagged ? Int32(bitPattern: tag | UInt32(r + x))
                                : vertex(zOff + r + x, zOff + r + x + 1, x, y, z, axis: 0)
                        }
                    }
                }
                ys.withUnsafeMutableBufferPointer { yo in
                    for y in 0..<(ny - 1) where rows[y] == 2 || rows[y + 1] == 2 || rows[y] != rows[y + 1] {
                        let r = y * nx
                        for x in 0..<nx where b[r + x] != b[r + nx + x] {
                            yo[r + x] = tagged ? Int32(bitPattern: tag | UInt32(plane + r + x))
                                : vertex(zOff + r + x, zOff + r + nx + x, x, y, z, axis: 1)
                        }
                    }
                }
            }
        }

        classify(z0, &bitsA, &rowA)
        planeEdges(z0, bitsA, rowA, &xA, &yA, tagged: false)
        if index > 0 { out.bottomX = xA; out.bottomY = yA }

        for z in z0..<z1 {
            classify(z + 1, &bitsB, &rowB)
            // Edges along z between the two planes.
            bitsA.withUnsafeBufferPointer { a in
                bitsB.withUnsafeBufferPointer { b in
                    zE.withUnsafeMutableBufferPointer { ze in
                        for y in 0..<ny where rowA[y] == 2 || rowB[y] == 2 || rowA[y] != rowB[y] {
                            let r = y * nx
                            for x in 0..<nx where a[r + x] != b[r + x] {
                                ze[r + x] = vertex(z * plane + r + x, (z + 1) * plane + r + x, x, y, z, axis: 2)
                            }
                        }
                    }
                }
            }
            planeEdges(z + 1, bitsB, rowB, &xB, &yB, tagged: z + 1 == z1 && !ownsTop)
            cells(g, tables, z: z, bitsA, bitsB, rowA, rowB, xA, yA, xB, yB, zE, &out)
            swap(&bitsA, &bitsB); swap(&rowA, &rowB); swap(&xA, &xB); swap(&yA, &yB)
        }
        return out
    }

    // swiftlint:disable:next function_parameter_count
    static func cells(_ g: Grid, _ tables: MarchingCubesTables, z: Int,
                      _ bitsA: [UInt8], _ bitsB: [UInt8], _ rowA: [UInt8], _ rowB: [UInt8],
                      _ xA: [Int32], _ yA: [Int32], _ xB: [Int32], _ yB: [Int32], _ zE: [Int32],
                      _ out: inout SlabOutput) {
        let nx = g.nx, ny = g.ny, plane = nx * ny
        let level = g.level
        tables.triangleStart.withUnsafeBufferPointer { tStart in
        tables.triangleCodes.withUnsafeBufferPointer { tCodes in
        tables.ambiguousFaces.withUnsafeBufferPointer { amb in
        bitsA.withUnsafeBufferPointer { a in
        bitsB.withUnsafeBufferPointer { b in
        xA.withUnsafeBufferPointer { xa in
        yA.withUnsafeBufferPointer { ya in
        xB.withUnsafeBufferPointer { xb in
        yB.withUnsafeBufferPointer { yb in
        zE.withUnsafeBufferPointer { ze in
            for y in 0..<(ny - 1) {
                let f0 = rowA[y]
                if f0 != 2 && rowA[y + 1] == f0 && rowB[y] == f0 && rowB[y + 1] == f0 { continue }
                let r = y * nx
                for x in 0..<(nx - 1) {
                    let i = r + x
                    let low: UInt8 = a[i] | a[i + 1] &<< 1 | a[i + nx] &<< 2 | a[i + nx + 1] &<< 3
                    let high: UInt8 = b[i] | b[i + 1] &<< 1 | b[i + nx] &<< 2 | b[i + nx + 1] &<< 3
                    let c = Int(low | high &<< 4)
                    if c == 0 || c == 255 { continue }
                    var entry = c << 6
                    let ambiguous = amb[c]
                    if ambiguous != 0 {
                        entry |= decide(g, tables, faces: ambiguous, caseIndex: c, base: z * plane + i)
                    }
                    let start = Int(tStart[entry]), end = Int(tStart[entry + 1])
                    var centers: (Int32, Int32, Int32, Int32) = (-1, -1, -1, -1)
                    if tables.centerStart[entry] != tables.centerStart[entry + 1] {
                        centers = addCenters(g, tables, entry: entry, x: x, y: y, z: z, &out)
                    }
                    for k in start..<end {
                        let code = Int(tCodes[k])
                        let id: Int32
                        switch code {
                        case 0: id = xa[i]
                        case 1: id = xa[i + nx]
                        case 2: id = xb[i]
                        case 3: id = xb[i + nx]
                        case 4: id = ya[i]
                        case 5: id = ya[i + 1]
                        case 6: id = yb[i]
                        case 7: id = yb[i + 1]
                        case 8: id = ze[i]
                        case 9: id = ze[i + 1]
                        case 10: id = ze[i + nx]
                        case 11: id = ze[i + nx + 1]
                        case 12: id = centers.0
                        case 13: id = centers.1
                        case 14: id = centers.2
                        default: id = centers.3
                        }
                        out.indices.append(UInt32(bitPattern: id))
                    }
                }
            }
        }}}}}}}}}}
        _ = level
    }

    /// Asymptotic decider bits for the ambiguous faces of a cell: bit f is set when the
    /// bilinear saddle of face f is inside (its inside corners are joined). Uses only the
    /// face's four samples and symmetric products, so both cells sharing the face agree.
    @inline(never)
    static func decide(_ g: Grid, _ tables: MarchingCubesTables, faces: UInt8, caseIndex c: Int, base: Int) -> Int {
        let nx = g.nx, plane = nx * g.ny
        var bits = 0
        for f in 0..<6 where faces >> f & 1 == 1 {
            var inside: Float = 1, outside: Float = 1
            for corner in tables.faceCorners[f] {
                let s = g.values[base + (corner & 1) + (corner >> 1 & 1) * nx + (corner >> 2 & 1) * plane] - g.level
                if c >> corner & 1 == 1 { inside *= s } else { outside *= s }
            }
            if inside > outside { bits |= 1 << f }
        }
        return bits
    }

    /// Adds the centre vertices of the loops of `entry` that need one.
    @inline(never)
    static func addCenters(_ g: Grid, _ tables: MarchingCubesTables, entry: Int, x: Int, y: Int, z: Int,
                           _ out: inout SlabOutput) -> (Int32, Int32, Int32, Int32) {
        var ids: [Int32] = []
        var k = Int(tables.centerStart[entry])
        let end = Int(tables.centerStart[entry + 1])
        while k < end {
            let n = Int(tables.centerCodes[k])
            var sum = SIMD3<Float>.zero
            for e in tables.centerCodes[(k + 1)...(k + n)] {
                sum += edgePoint(g, edge: Int(e), x: x, y: y, z: z)
            }
            out.positions.append(sum / Float(n))
            ids.append(Int32(out.positions.count - 1))
            k += n + 1
        }
        while ids.count < 4 { ids.append(-1) }
        return (ids[0], ids[1], ids[2], ids[3])
    }

    /// The crossing point on edge `e` of cell `(x, y, z)`, computed exactly as the edge
    /// cache computes it.
    static func edgePoint(_ g: Grid, edge e: Int, x: Int, y: Int, z: Int) -> SIMD3<Float> {
        let (c0, c1) = MarchingCubesTables.edgeCorners(e)
        let p0 = SIMD3(x, y, z) &+ MarchingCubesTables.corner(c0)
        let p1 = SIMD3(x, y, z) &+ MarchingCubesTables.corner(c1)
        let nx = g.nx, plane = nx * g.ny
        let a = g.values[p0.z * plane + p0.y * nx + p0.x], b = g.values[p1.z * plane + p1.y * nx + p1.x]
        var t = (g.level - a) / (b - a)
        t = min(max(t, MarchingCubes.edgeMargin), 1 - MarchingCubes.edgeMargin)
        var p = SIMD3<Float>(Float(p0.x), Float(p0.y), Float(p0.z))
        p[e / 4] += t
        return g.origin + g.spacing * p
    }
}
