import Dispatch
import Foundation

/// Marching cubes on a dense float grid.
///
/// Samples greater than `level` are inside; triangles are wound counter-clockwise seen
/// from outside (normals point from inside to outside). The surface is closed and
/// consistently wound wherever the inside does not touch the grid's border (pad the
/// volume to close it there): ambiguous faces are resolved with the asymptotic decider,
/// identically in both cells that share the face, and cells whose faces leave two
/// separate loops get a tube between them where the trilinear interpolant joins them
/// inside the cell (MC33's interior ambiguity, tested on an 8³ lattice of interior
/// samples; see `MarchingCubesTables`).
///
/// Vertices are welded through an edge cache (one vertex per crossed grid edge, no
/// hashing). Work is split into slabs of `slabDepth` cell layers, fixed by the grid and
/// not by the thread count, and runs in two passes over the slabs on up to `threads`
/// threads (flying-edges style): the first counts each slab's vertices and triangles,
/// prefix sums give every slab its place in the output, and the second writes vertices
/// and triangles straight into the final arrays. Vertices on the plane between two slabs
/// belong to the upper slab, which creates them first, in scan order, so the lower slab
/// knows their ids without waiting for it. The output (vertex order included) is
/// therefore identical for every thread count. Empty space is skipped cheaply: rows
/// entirely inside or outside are skipped whole, and elsewhere eight cells (or edges) at a
/// time are tested for a crossing with 64-bit operations on the inside bits.
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
        let workers = min(threads, slabCount)
        let tables = MarchingCubesTables.shared

        // Pass 1: counts.
        let counts = SlabCounts(count: slabCount)
        defer { counts.deallocate() }
        forEachSlab(slabCount, workers: workers, grid: grid) { s, scratch in
            var sink = SlabSink(counting: true)
            Slab.run(grid, tables, index: s, count: slabCount, scratch, &sink)
            counts.vertices[s] = sink.vertexCount
            counts.triangles[s] = sink.triangleCount
        }
        var vertexOffset = [Int](repeating: 0, count: slabCount + 1)
        var triangleOffset = [Int](repeating: 0, count: slabCount + 1)
        for s in 0..<slabCount {
            vertexOffset[s + 1] = vertexOffset[s] + counts.vertices[s]
            triangleOffset[s + 1] = triangleOffset[s] + counts.triangles[s]
        }
        precondition(vertexOffset[slabCount] < Int(UInt32.max), "too many vertices for 32-bit indices")

        // Pass 2: every slab writes its share of the final arrays.
        var triangles: [SIMD3<UInt32>] = []
        let positions = [SIMD3<Float>](unsafeUninitializedCapacity: vertexOffset[slabCount]) { pOut, pCount in
            triangles = [SIMD3<UInt32>](unsafeUninitializedCapacity: triangleOffset[slabCount]) { tOut, tCount in
                adviseHugePages(UnsafeMutableRawPointer(pOut.baseAddress!), bytes: pOut.count * MemoryLayout<SIMD3<Float>>.stride)
                adviseHugePages(UnsafeMutableRawPointer(tOut.baseAddress!), bytes: tOut.count * MemoryLayout<SIMD3<UInt32>>.stride)
                let out = UnsafeSendable(value: (pOut.baseAddress!, tOut.baseAddress!))
                forEachSlab(slabCount, workers: workers, grid: grid) { s, scratch in
                    var sink = SlabSink(counting: false, vertexBase: vertexOffset[s],
                                        nextSlabBase: vertexOffset[s + 1],
                                        positions: out.value.0 + vertexOffset[s],
                                        triangles: out.value.1 + triangleOffset[s])
                    Slab.run(grid, tables, index: s, count: slabCount, scratch, &sink)
                    precondition(sink.vertexCount == vertexOffset[s + 1] - vertexOffset[s]
                                 && sink.triangleCount == triangleOffset[s + 1] - triangleOffset[s],
                                 "marching cubes passes disagree")
                }
                tCount = triangleOffset[slabCount]
            }
            pCount = vertexOffset[slabCount]
        }
        return Mesh(positions: positions, triangles: triangles)
    }

    /// Runs `body` for every slab index, in order on one thread or handed out in order to
    /// `workers` threads.
    /// Each worker reuses one `SlabScratch` for all its slabs.
    private func forEachSlab(_ count: Int, workers: Int, grid: Grid, _ body: @escaping (Int, SlabScratch) -> Void) {
        if workers <= 1 {
            let scratch = SlabScratch(grid)
            defer { scratch.deallocate() }
            for s in 0..<count { body(s, scratch) }
            return
        }
        let queue = WorkQueue(count: count)
        let work = UnsafeSendable(value: body)
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            let scratch = SlabScratch(grid)
            defer { scratch.deallocate() }
            while let s = queue.next() { work.value(s, scratch) }
        }
    }
}

/// Asks the kernel to back the 2 MiB-aligned inside of a large, not yet touched block
/// with transparent huge pages: filling big output buffers otherwise spends a large share
/// of marching cubes' time in page faults. Only a hint; nothing changes where it is
/// not supported.
@inline(__always) func adviseHugePages(_ pointer: UnsafeMutableRawPointer, bytes: Int) {
    #if os(Linux)
    let huge = 2 << 20
    guard bytes >= 2 * huge else { return }
    let start = (Int(bitPattern: pointer) + huge - 1) & ~(huge - 1)
    let end = (Int(bitPattern: pointer) + bytes) & ~(huge - 1)
    if end > start { _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, MADV_HUGEPAGE) }
    #endif
}

/// Eight bytes from `p`, any alignment.
@inline(__always) func load8(_ p: UnsafeMutablePointer<UInt8>) -> UInt64 {
    UnsafeRawPointer(p).loadUnaligned(as: UInt64.self)
}

/// Calls `body(x)`, in increasing order, for every `x < count` where the 0/1 bytes
/// `a[x]` and `b[x]` differ, comparing eight at a time.
@inline(__always) func forEachDifference(_ a: UnsafeMutablePointer<UInt8>, _ b: UnsafeMutablePointer<UInt8>,
                                         count: Int, _ body: (Int) -> Void) {
    var x = 0
    while x + 8 <= count {
        var m = load8(a + x) ^ load8(b + x)
        while m != 0 {
            body(x + m.trailingZeroBitCount >> 3)
            m &= m - 1
        }
        x += 8
    }
    while x < count {
        if a[x] != b[x] { body(x) }
        x += 1
    }
}

/// How many of the 0/1 bytes `a[x]`, `b[x]` (x < count) differ.
@inline(__always) func countDifferences(_ a: UnsafeMutablePointer<UInt8>, _ b: UnsafeMutablePointer<UInt8>,
                                        count: Int) -> Int {
    var x = 0, n = 0
    while x + 8 <= count {
        n += (load8(a + x) ^ load8(b + x)).nonzeroBitCount
        x += 8
    }
    while x < count {
        if a[x] != b[x] { n += 1 }
        x += 1
    }
    return n
}

/// Hands out the integers `0..<count` in order, each once, to concurrent workers.
final class WorkQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var nextIndex = 0
    private let count: Int
    init(count: Int) { self.count = count }
    func next() -> Int? {
        lock.lock(); defer { lock.unlock() }
        guard nextIndex < count else { return nil }
        nextIndex += 1
        return nextIndex - 1
    }
}

/// Wraps a value for closures that only touch disjoint memory from each thread.
struct UnsafeSendable<T>: @unchecked Sendable { let value: T }

/// The grid as the slab workers see it.
struct Grid: @unchecked Sendable {
    let values: UnsafePointer<Float>
    let nx: Int, ny: Int, nz: Int
    let level: Float
    let origin: SIMD3<Float>
    let spacing: SIMD3<Float>
}

/// A worker's edge-id, inside-bit and row-summary buffers, reused from slab to slab.
/// Entries are always written before they are read (an id only for a crossed edge, and
/// only crossed edges are looked up), so they need no clearing between slabs.
final class SlabScratch {
    let ids: UnsafeMutablePointer<UInt32>
    let bits: UnsafeMutablePointer<UInt8>
    let rows: UnsafeMutablePointer<UInt8>
    init(_ g: Grid) {
        let plane = g.nx * g.ny
        ids = .allocate(capacity: 5 * plane); ids.initialize(repeating: UInt32.max, count: 5 * plane)
        bits = .allocate(capacity: 2 * plane); bits.initialize(repeating: 0, count: 2 * plane)
        rows = .allocate(capacity: 2 * g.ny); rows.initialize(repeating: 0, count: 2 * g.ny)
    }
    func deallocate() { ids.deallocate(); bits.deallocate(); rows.deallocate() }
}

/// Per-slab vertex and triangle counts of the first pass (each slot written by one thread).
final class SlabCounts: @unchecked Sendable {
    let vertices: UnsafeMutablePointer<Int>
    let triangles: UnsafeMutablePointer<Int>
    init(count: Int) {
        vertices = .allocate(capacity: count); vertices.initialize(repeating: 0, count: count)
        triangles = .allocate(capacity: count); triangles.initialize(repeating: 0, count: count)
    }
    func deallocate() { vertices.deallocate(); triangles.deallocate() }
}

/// Where one slab's output goes: nowhere while counting, else its ranges of the final
/// arrays. Vertex ids are global: `vertexBase` + the slab's running count; the top plane
/// of a slab that is not the last gets the next slab's first ids, in the order that
/// slab creates them.
struct SlabSink {
    let counting: Bool
    var vertexBase = 0
    var nextSlabBase = 0
    var positions: UnsafeMutablePointer<SIMD3<Float>>? = nil
    var triangles: UnsafeMutablePointer<SIMD3<UInt32>>? = nil
    var vertexCount = 0
    var triangleCount = 0
}

enum Slab {
    /// Meshes cell layers `[z0, z1)` of slab `index`.
    ///
    /// Edge ids live in one buffer: x-edges of the two planes at `[0, 2·plane)`, y-edges
    /// at `[2·plane, 4·plane)` (plane `z` in half `z & 1`), z-edges of the current layer
    /// at `[4·plane, 5·plane)`. Vertices are created eagerly, plane by plane, in scan
    /// order, so the cells only look ids up.
    static func run(_ g: Grid, _ tables: MarchingCubesTables, index: Int, count: Int, _ scratch: SlabScratch,
                    _ sink: inout SlabSink) {
        let z0 = index * MarchingCubes.slabDepth
        let z1 = min(z0 + MarchingCubes.slabDepth, g.nz - 1)
        let ownsTop = index == count - 1
        let nx = g.nx, ny = g.ny, plane = nx * ny
        let ids = scratch.ids, bits = scratch.bits, rows = scratch.rows
        let level = g.level, margin = MarchingCubes.edgeMargin
        let v = g.values
        let origin = g.origin, spacing = g.spacing
        let counting = sink.counting
        var topCount = 0

        @inline(__always) func vertex(_ i0: Int, _ i1: Int, _ x: Int, _ y: Int, _ z: Int, axis: Int) -> UInt32 {
            let id = UInt32(truncatingIfNeeded: sink.vertexBase + sink.vertexCount)
            if !counting {
                let a = v[i0], b = v[i1]
                var t = (level - a) / (b - a)
                t = min(max(t, margin), 1 - margin)
                var p = SIMD3<Float>(Float(x), Float(y), Float(z))
                p[axis] += t
                (sink.positions! + sink.vertexCount).initialize(to: origin + spacing * p)
            }
            sink.vertexCount += 1
            return id
        }
        /// The id the next slab will give this top-plane vertex.
        @inline(__always) func topVertex() -> UInt32 {
            defer { topCount += 1 }
            return UInt32(truncatingIfNeeded: sink.nextSlabBase + topCount)
        }

        /// Inside bits and row summaries (0 all outside, 1 all inside, 2 mixed) of plane z.
        func classify(_ z: Int) {
            let src = v + z * plane
            let b = bits + (z & 1) * plane, rs = rows + (z & 1) * ny
            for k in 0..<plane { b[k] = src[k] > level ? 1 : 0 }
            for y in 0..<ny {
                let r = y * nx
                var any: UInt64 = 0, all: UInt64 = ~0
                var x = 0
                while x + 8 <= nx {
                    let w = load8(b + r + x)
                    any |= w; all &= w
                    x += 8
                }
                var anyTail: UInt8 = 0, allTail: UInt8 = 1
                while x < nx { anyTail |= b[r + x]; allTail &= b[r + x]; x += 1 }
                let anyInside = any != 0 || anyTail != 0
                let allInside = (nx < 8 || all == 0x0101_0101_0101_0101) && allTail == 1
                rs[y] = allInside ? 1 : (anyInside ? 2 : 0)
            }
        }

        /// Vertices of the x- and y-edges of plane z (for a top plane owned by the next
        /// slab, only their ids).
        func planeEdges(_ z: Int, owned: Bool) {
            let zOff = z * plane
            let b = bits + (z & 1) * plane, rs = rows + (z & 1) * ny
            let xo = ids + (z & 1) * plane, yo = ids + (2 + (z & 1)) * plane
            if counting {
                // Only the number of vertices matters (ids are not read while counting).
                guard owned else { return }
                for y in 0..<ny where rs[y] == 2 {
                    sink.vertexCount += countDifferences(b + y * nx, b + y * nx + 1, count: nx - 1)
                }
                for y in 0..<(ny - 1) where rs[y] == 2 || rs[y + 1] == 2 || rs[y] != rs[y + 1] {
                    sink.vertexCount += countDifferences(b + y * nx, b + y * nx + nx, count: nx)
                }
                return
            }
            for y in 0..<ny where rs[y] == 2 {
                let r = y * nx
                forEachDifference(b + r, b + r + 1, count: nx - 1) { x in
                    xo[r + x] = owned ? vertex(zOff + r + x, zOff + r + x + 1, x, y, z, axis: 0) : topVertex()
                }
            }
            for y in 0..<(ny - 1) where rs[y] == 2 || rs[y + 1] == 2 || rs[y] != rs[y + 1] {
                let r = y * nx
                forEachDifference(b + r, b + r + nx, count: nx) { x in
                    yo[r + x] = owned ? vertex(zOff + r + x, zOff + r + nx + x, x, y, z, axis: 1) : topVertex()
                }
            }
        }

        classify(z0)
        planeEdges(z0, owned: true)
        for z in z0..<z1 {
            classify(z + 1)
            // Edges along z between the two planes.
            let a = bits + (z & 1) * plane, b = bits + ((z + 1) & 1) * plane
            let ra = rows + (z & 1) * ny, rb = rows + ((z + 1) & 1) * ny
            let ze = ids + 4 * plane
            for y in 0..<ny where ra[y] == 2 || rb[y] == 2 || ra[y] != rb[y] {
                let r = y * nx
                if counting { sink.vertexCount += countDifferences(a + r, b + r, count: nx); continue }
                forEachDifference(a + r, b + r, count: nx) { x in
                    ze[r + x] = vertex(z * plane + r + x, (z + 1) * plane + r + x, x, y, z, axis: 2)
                }
            }
            planeEdges(z + 1, owned: z + 1 < z1 || ownsTop)
            cells(g, tables, z: z, bits: bits, rows: rows, ids: ids, &sink)
        }
    }

    /// Emits (or counts) the triangles of cell layer z.
    static func cells(_ g: Grid, _ tables: MarchingCubesTables, z: Int, bits: UnsafeMutablePointer<UInt8>,
                      rows: UnsafeMutablePointer<UInt8>, ids: UnsafeMutablePointer<UInt32>, _ sink: inout SlabSink) {
        let nx = g.nx, ny = g.ny, plane = nx * ny
        let pa = z & 1, pb = 1 - pa
        let a = bits + pa * plane, b = bits + pb * plane
        let ra = rows + pa * ny, rb = rows + pb * ny
        let counting = sink.counting
        // Offset of each edge code's id from the cell's index (codes 0–11).
        let xa = pa * plane, xb = pb * plane, ya = (2 + pa) * plane, yb = (2 + pb) * plane, zo = 4 * plane
        let offsets: [Int] = [xa, xa + nx, xb, xb + nx, ya, ya + 1, yb, yb + 1, zo, zo + 1, zo + nx, zo + nx + 1]
        offsets.withUnsafeBufferPointer { off in
        tables.triangleStart.withUnsafeBufferPointer { tStart in
        tables.triangleCodes.withUnsafeBufferPointer { tCodes in
        tables.centerStart.withUnsafeBufferPointer { cStart in
        tables.ambiguousFaces.withUnsafeBufferPointer { amb in
        tables.tunnelStart.withUnsafeBufferPointer { tunStart in
        tables.tunnelCodes.withUnsafeBufferPointer { tunCodes in
        tables.tunnelCaps.withUnsafeBufferPointer { tCaps in
            for y in 0..<(ny - 1) {
                let f0 = ra[y]
                if f0 != 2 && ra[y + 1] == f0 && rb[y] == f0 && rb[y + 1] == f0 { continue }
                let r = y * nx
                // Cells whose 8 corners are alike are skipped 8 at a time.
                let a0 = a + r, a1 = a + r + nx, b0 = b + r, b1 = b + r + nx
                @inline(__always) func cell(_ x: Int) {
                    let i = r + x
                    let low: UInt8 = a[i] | a[i + 1] &<< 1 | a[i + nx] &<< 2 | a[i + nx + 1] &<< 3
                    let high: UInt8 = b[i] | b[i + 1] &<< 1 | b[i + nx] &<< 2 | b[i + nx + 1] &<< 3
                    let c = Int(low | high &<< 4)
                    if c == 0 || c == 255 { return }
                    var entry = c << 6
                    let ambiguous = amb[c]
                    if ambiguous != 0 {
                        entry |= decide(g, tables, faces: ambiguous, caseIndex: c, base: z * plane + i)
                    }
                    var k = Int(tStart[entry])
                    var end = Int(tStart[entry + 1])
                    var codes = tCodes
                    let caps = tCaps[entry]
                    if caps != 0 && interiorJoinsCaps(g, caps: caps, base: z * plane + i) {
                        // MC33 interior ambiguity: the trilinear interpolant joins the two
                        // caps inside the cell, so the two loops bound one tube.
                        k = Int(tunStart[entry]); end = Int(tunStart[entry + 1]); codes = tunCodes
                    } else if cStart[entry] != cStart[entry + 1] {
                        let centers = addCenters(g, tables, entry: entry, x: x, y: y, z: z, &sink)
                        func id(_ code: UInt8) -> UInt32 {
                            code < 12 ? ids[i + off[Int(code)]] : centers[Int(code) - 12]
                        }
                        while k < end {
                            if !counting {
                                (sink.triangles! + sink.triangleCount)
                                    .initialize(to: SIMD3(id(tCodes[k]), id(tCodes[k + 1]), id(tCodes[k + 2])))
                            }
                            sink.triangleCount += 1
                            k += 3
                        }
                        return
                    }
                    if counting { sink.triangleCount += (end - k) / 3; return }
                    let corner = ids + i
                    let out = sink.triangles! + sink.triangleCount
                    var t = 0
                    while k < end {
                        (out + t).initialize(to: SIMD3(corner[off[Int(codes[k])]], corner[off[Int(codes[k + 1])]],
                                                       corner[off[Int(codes[k + 2])]]))
                        k += 3
                        t += 1
                    }
                    sink.triangleCount += t
                }
                var x = 0
                while x + 9 <= nx {
                    // Byte j is 1 where cell x + j has a crossing on one of 7 edges that span
                    // its 8 corners, i.e. where its corners are not all alike.
                    var m = (load8(a0 + x) ^ load8(a0 + x + 1)) | (load8(a1 + x) ^ load8(a1 + x + 1))
                        | (load8(b0 + x) ^ load8(b0 + x + 1)) | (load8(b1 + x) ^ load8(b1 + x + 1))
                        | (load8(a0 + x) ^ load8(a1 + x)) | (load8(b0 + x) ^ load8(b1 + x))
                        | (load8(a0 + x) ^ load8(b0 + x))
                    while m != 0 {
                        cell(x + m.trailingZeroBitCount >> 3)
                        m &= m - 1
                    }
                    x += 8
                }
                while x < nx - 1 { cell(x); x += 1 }
            }
        }}}}}}}}
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

    /// Sub-cell samples per axis for the interior test.
    static let interiorSamples = 8

    /// Whether the trilinear interpolant of a cell joins its two caps through the cell's
    /// inside (with the caps' sign). Decided on an 8³ lattice of interior sample points
    /// (at (k + ½)/8): a flood fill from the samples next to the first cap's corners must
    /// reach one next to the second cap's. Only the cell's own samples are used, so the
    /// decision is deterministic; it cannot affect neighbours (faces are decided apart).
    @inline(never)
    static func interiorJoinsCaps(_ g: Grid, caps: UInt32, base: Int) -> Bool {
        let nx = g.nx, plane = nx * g.ny
        let sign: Float = caps >> 16 & 1 == 1 ? 1 : -1
        var v = SIMD8<Float>()
        for c in 0..<8 { v[c] = (g.values[base + (c & 1) + (c >> 1 & 1) * nx + (c >> 2 & 1) * plane] - g.level) * sign }
        let n = interiorSamples, count = n * n * n
        let scale = 1 / Float(n)
        @inline(__always) func inside(_ i: Int, _ j: Int, _ k: Int) -> Bool {
            let x = (Float(i) + 0.5) * scale, y = (Float(j) + 0.5) * scale, z = (Float(k) + 0.5) * scale
            let x0 = v[0] + (v[1] - v[0]) * x, x1 = v[2] + (v[3] - v[2]) * x
            let x2 = v[4] + (v[5] - v[4]) * x, x3 = v[6] + (v[7] - v[6]) * x
            let y0 = x0 + (x1 - x0) * y, y1 = x2 + (x3 - x2) * y
            return y0 + (y1 - y0) * z > 0
        }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: count) { state in
            withUnsafeTemporaryAllocation(of: Int16.self, capacity: count) { stack in
                state.initialize(repeating: 0)  // 0 unseen, 1 reached, 2 next to the second cap
                var top = 0
                for c in 0..<8 where caps >> UInt32(8 + c) & 1 == 1 {
                    state[(((c >> 2 & 1) * n + (c >> 1 & 1)) * n + (c & 1)) * (n - 1)] = 2
                }
                func visit(_ i: Int, _ j: Int, _ k: Int) -> Bool {
                    let m = (k * n + j) * n + i
                    guard state[m] != 1, inside(i, j, k) else { return false }
                    if state[m] == 2 { return true }
                    state[m] = 1
                    stack[top] = Int16(m); top += 1
                    return false
                }
                for c in 0..<8 where caps >> UInt32(c) & 1 == 1 {
                    if visit((c & 1) * (n - 1), (c >> 1 & 1) * (n - 1), (c >> 2 & 1) * (n - 1)) { return true }
                }
                while top > 0 {
                    top -= 1
                    let m = Int(stack[top])
                    let i = m % n, j = m / n % n, k = m / (n * n)
                    if i > 0 && visit(i - 1, j, k) { return true }
                    if i < n - 1 && visit(i + 1, j, k) { return true }
                    if j > 0 && visit(i, j - 1, k) { return true }
                    if j < n - 1 && visit(i, j + 1, k) { return true }
                    if k > 0 && visit(i, j, k - 1) { return true }
                    if k < n - 1 && visit(i, j, k + 1) { return true }
                }
                return false
            }
        }
    }

    /// Adds the centre vertices of the loops of `entry` that need one; returns their ids.
    @inline(never)
    static func addCenters(_ g: Grid, _ tables: MarchingCubesTables, entry: Int, x: Int, y: Int, z: Int,
                           _ sink: inout SlabSink) -> [UInt32] {
        var ids: [UInt32] = []
        var k = Int(tables.centerStart[entry])
        let end = Int(tables.centerStart[entry + 1])
        while k < end {
            let n = Int(tables.centerCodes[k])
            var sum = SIMD3<Float>.zero
            for e in tables.centerCodes[(k + 1)...(k + n)] {
                sum += edgePoint(g, edge: Int(e), x: x, y: y, z: z)
            }
            ids.append(UInt32(truncatingIfNeeded: sink.vertexBase + sink.vertexCount))
            if !sink.counting { (sink.positions! + sink.vertexCount).initialize(to: sum / Float(n)) }
            sink.vertexCount += 1
            k += n + 1
        }
        return ids
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
