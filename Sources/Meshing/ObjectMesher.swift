import Dispatch
import Foundation
import Imaging

/// Object mode: a closed, coloured mesh of the foreground object.
///
/// 1. The volume between the front and back surfaces inside the mask is sampled on a
///    grid in the camera frame (cubic voxels, `resolution` along the longest side of the
///    object's bounding box, two empty voxels of margin). Each voxel centre is projected
///    into the maps; its value is the smallest of three signed distances in voxels:
///    depth beyond the front surface, depth before the back surface, and the mask
///    probability above the threshold (converted from pixels to voxels), so the surface
///    is the level 0 of a smooth field.
///    Where the voxels are finer than the maps' pixels, the field is then smoothed by a few
///    passes of a separable [1 2 1]/4 filter: otherwise the pixels' bilinear facets on the thin,
///    steep skirt at a silhouette (where a network's depth blurs into the background) leave
///    sub-voxel slivers that marching cubes turns into comb-like fins full of holes.
/// 2. Marching cubes (closed, consistently wound) → the largest connected component.
/// 3. Taubin λ/μ smoothing, which does not shrink the object, then bilateral normal filtering,
///    which flattens faces and keeps creases.
/// 4. Vertex colours from the photo: a vertex facing the camera and lying on the front
///    surface takes the photo's colour where it projects; every other vertex takes the
///    colour of the nearest coloured vertex along the mesh's edges.
/// 5. The glTF output frame: centred on the origin in x and z, lowest point at y = 0,
///    scaled to a height of 1 (`Result.scale` records the factor).
public struct ObjectMesher: Sendable {
    /// Settings for object mode.
    public struct Options: Sendable, Equatable {
        /// Voxels along the longest side of the object's bounding box.
        public var resolution: Int = 128
        /// Taubin iterations (each one λ step and one μ step); 0 turns smoothing off.
        public var smoothingIterations: Int = 10
        /// Bilateral normal filtering passes after Taubin (`Mesh.bilateralNormalSmoothed`): flat
        /// faces flattened, creases kept; 0 turns it off.
        public var featurePreservingIterations: Int = 5
        /// Mask probability at and above which a pixel is foreground.
        public var maskThreshold: Float = 0.5
        /// Keep only the largest connected component (small islands are dropped).
        public var keepLargestComponent: Bool = true
        /// Threads for marching cubes.
        public var threads: Int = ProcessInfo.processInfo.activeProcessorCount
        /// Whether to normalise into the output frame (centred, lowest point y = 0, height 1).
        public var normalize: Bool = true
        /// Thinnest wall, in voxels: the back surface is kept at least this far behind the
        /// front one, so thin predicted parts do not break up into see-through holes.
        public var minimumThickness: Float = 2
        /// Passes of the separable [1 2 1]/4 filter over the carved field before marching cubes
        /// (each pass along x, y and z) when the voxels are finer than the maps' pixels; 0 turns
        /// it off.
        public var fieldSmoothingPasses: Int = 2

        public init() {}
    }

    /// The mesh and how it relates to the camera.
    public struct Result: Sendable {
        /// The closed mesh with normals and (with a photo) colours, in the output frame.
        public var mesh: Mesh
        /// Output = (camera-frame point − `anchor`) × `scale`.
        public var scale: Float
        /// The camera-frame point that maps to the output origin.
        public var anchor: SIMD3<Float>
        /// Edge length of a voxel in camera-frame units.
        public var voxelSize: Float
        /// Grid size used for marching cubes.
        public var gridSize: SIMD3<Int>
        /// Where the camera sits in the output frame (it looks along −Z).
        public var cameraPosition: SIMD3<Float> { -anchor * scale }
    }

    public var options: Options

    public init(options: Options = Options()) { self.options = options }

    /// Meshes the object seen in `maps` through `camera` (whose image size must be the
    /// maps'), colouring it from `photo` (any size with the maps' aspect) when given.
    public func mesh(_ maps: DepthMaps, camera: PinholeCamera, photo: Image? = nil) throws(MeshingError) -> Result {
        try checkCamera(camera, maps)
        if let photo { try checkAspect(photo, maps) }
        let filled = try FilledMaps(maps, threshold: options.maskThreshold)
        let (volume, voxel) = carve(filled, camera: camera)
        var mesh = MarchingCubes(level: 0, threads: options.threads).mesh(volume)
        if options.keepLargestComponent { mesh = mesh.largestComponent() }
        guard !mesh.isEmpty else { throw .emptyMesh }
        mesh = mesh.taubinSmoothed(iterations: options.smoothingIterations)
        if options.featurePreservingIterations > 0 {
            mesh = mesh.bilateralNormalSmoothed(normalIterations: options.featurePreservingIterations, threads: options.threads)
        }
        mesh.computeNormals()
        if let photo { mesh.colors = colors(mesh, filled, camera: camera, photo: photo, voxel: voxel) }
        var scale: Float = 1, anchor = SIMD3<Float>.zero
        if options.normalize, let b = mesh.bounds {
            anchor = SIMD3(b.center.x, b.min.y, b.center.z)
            scale = b.size.y > 0 ? 1 / b.size.y : 1
            mesh.translate(by: -anchor)
            mesh.scale(by: scale)
        }
        return Result(mesh: mesh, scale: scale, anchor: anchor, voxelSize: voxel,
                      gridSize: SIMD3(volume.width, volume.height, volume.depth))
    }

    /// The carved volume object mode meshes (level 0, inside > 0), in camera-frame
    /// coordinates: for inspection, and for meshing the same field elsewhere.
    public func volume(_ maps: DepthMaps, camera: PinholeCamera) throws(MeshingError) -> Volume {
        try checkCamera(camera, maps)
        return carve(try FilledMaps(maps, threshold: options.maskThreshold), camera: camera).0
    }

    /// The signed field on the voxel grid, and the voxel size.
    func carve(_ maps: FilledMaps, camera: PinholeCamera) -> (Volume, Float) {
        // Bounding box of the front and back points of every foreground pixel's corners.
        var lo = SIMD3<Float>(repeating: .infinity), hi = SIMD3<Float>(repeating: -.infinity)
        for j in 0..<maps.height {
            for i in 0..<maps.width where maps.foreground[j * maps.width + i] {
                let k = j * maps.width + i
                for (du, dv) in [(0, 0), (1, 0), (0, 1), (1, 1)] as [(Float, Float)] {
                    let pixel = SIMD2(Float(i) + du, Float(j) + dv)
                    for d in [maps.front[k], maps.back[k]] {
                        let p = camera.point(at: pixel, depth: d)
                        lo = pointwiseMin(lo, p); hi = pointwiseMax(hi, p)
                    }
                }
            }
        }
        let extent = hi - lo
        let voxel = max(extent.max() / Float(max(options.resolution, 2)), 1e-6)
        let margin = 2
        let dims = SIMD3<Int>((extent / voxel).rounded(.up)) &+ (1 + 2 * margin)
        let origin = lo - Float(margin) * voxel
        let f = camera.focalLength, c = camera.principalPoint, threshold = maps.threshold
        let minimumThickness = options.minimumThickness * voxel
        let nx = dims.x, ny = dims.y, nz = dims.z
        var values = [Float](repeating: -1, count: nx * ny * nz)
        let workers = max(1, min(options.threads, nz))
        values.withUnsafeMutableBufferPointer { buffer in
            // Each worker fills its own z-planes (z ≡ worker mod workers): the same values
            // whatever the thread count.
            let out = UnsafeSendable(value: buffer)
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let out = out.value
            maps.texels.withUnsafeBufferPointer { texels in
            for z in stride(from: worker, to: nz, by: workers) {
                let pz = origin.z + Float(z) * voxel
                let d = -pz
                guard d > 0 else { continue }
                let pixelsPerVoxel = voxel * f / d
                for y in 0..<ny {
                    let py = origin.y + Float(y) * voxel
                    let v = c.y - f * py / d
                    for x in 0..<nx {
                        let px = origin.x + Float(x) * voxel
                        let u = c.x + f * px / d
                        let s = maps.sample(u: u, v: v, texels: texels)
                        let maskTerm = (s.mask - threshold) / pixelsPerVoxel
                        let back = max(s.back, s.front + minimumThickness)
                        let frontTerm = (d - s.front) / voxel, backTerm = (back - d) / voxel
                        let border = x == 0 || y == 0 || z == 0 || x == nx - 1 || y == ny - 1 || z == nz - 1
                        // The grid's border stays outside, so the surface is always closed.
                        out[(z * ny + y) * nx + x] = border ? -1 : min(maskTerm, frontTerm, backTerm)
                    }
                }
            }
            }
            }
        }
        // Smoothing only where voxels are finer than the maps' pixels (at the object's middle
        // depth): coarser voxels cannot resolve the pixels' bilinear facets, and there the filter
        // would only round the object off.
        let middleDepth = -(origin.z + Float(nz) * voxel / 2)
        if middleDepth > 0, voxel * f / middleDepth < 1 {
            for _ in 0..<options.fieldSmoothingPasses { smoothField(&values, nx, ny, nz) }
        }
        let volume = Volume(width: nx, height: ny, depth: nz, values: values, origin: origin,
                            spacing: SIMD3(repeating: voxel))
        return (volume, voxel)
    }

    /// One pass of the [1 2 1]/4 filter along x, then y, then z over the interior of an
    /// nx × ny × nz field (x fastest); the border voxels keep their values, so the surface stays
    /// closed. Lines are independent, so the result does not depend on the thread count.
    func smoothField(_ values: inout [Float], _ nx: Int, _ ny: Int, _ nz: Int) {
        guard nx > 2, ny > 2, nz > 2 else { return }
        let planeSize = nx * ny, threads = options.threads
        values.withUnsafeMutableBufferPointer { buffer in
            let field = UnsafeSendable(value: buffer.baseAddress!)
            // x and y: plane by plane (interior planes only).
            Self.forEachInterior(nz, nx: nx, threads: threads) { z, before, saved in
                let plane = field.value + z * planeSize
                for y in 1..<(ny - 1) {
                    let row = plane + y * nx
                    var left = row[0]
                    for x in 1..<(nx - 1) {
                        let centre = row[x]
                        row[x] = 0.25 * (left + row[x + 1]) + 0.5 * centre
                        left = centre
                    }
                }
                Self.blendStack(nx, first: plane, step: nx, count: ny, before, saved)
            }
            // z: row by row (interior rows only).
            Self.forEachInterior(ny, nx: nx, threads: threads) { y, before, saved in
                Self.blendStack(nx, first: field.value + y * nx, step: planeSize, count: nz, before, saved)
            }
        }
    }

    /// Runs `body(i, before, saved)` for every i in 1 ..< n − 1 on up to `threads` threads
    /// (i ≡ worker mod workers), each with two scratch rows of `nx` floats.
    private static func forEachInterior(_ n: Int, nx: Int, threads: Int,
                                        _ body: @Sendable (Int, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
        let workers = max(1, min(threads, n - 2))
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * nx) { scratch in
                for i in stride(from: 1 + worker, to: n - 1, by: workers) { body(i, scratch.baseAddress!, scratch.baseAddress! + nx) }
            }
        }
    }

    /// The filter across a stack of `count` rows of `nx` floats, `step` apart from `first`: every
    /// interior row becomes ¼·previous + ½·itself + ¼·next (values from before the pass); the
    /// first and last rows stay. `before` and `saved` are scratch rows.
    private static func blendStack(_ nx: Int, first: UnsafeMutablePointer<Float>, step: Int, count: Int,
                                   _ before: UnsafeMutablePointer<Float>, _ saved: UnsafeMutablePointer<Float>) {
        before.update(from: first, count: nx)
        for i in 1..<(count - 1) {
            let row = first + i * step, after = row + step
            saved.update(from: row, count: nx)
            for x in 1..<(nx - 1) { row[x] = 0.25 * (before[x] + after[x]) + 0.5 * saved[x] }
            before.update(from: saved, count: nx)
        }
    }

    /// Photo colours for visible front-facing vertices, the nearest coloured vertex's
    /// colour (breadth-first along edges) for the rest.
    func colors(_ mesh: Mesh, _ maps: FilledMaps, camera: PinholeCamera, photo: Image, voxel: Float) -> [SIMD3<Float>] {
        let n = mesh.vertexCount
        var colors = [SIMD3<Float>](repeating: SIMD3(repeating: 0.5), count: n)
        var known = [Bool](repeating: false, count: n)
        var queue: [Int] = []
        let normals = mesh.normals ?? mesh.vertexNormals()
        let sx = Float(photo.width) / Float(maps.width), sy = Float(photo.height) / Float(maps.height)
        for i in 0..<n {
            let p = mesh.positions[i]
            guard let (pixel, depth) = camera.project(p), dot(normals[i], -p) > 0 else { continue }
            let s = maps.sample(u: pixel.x, v: pixel.y)
            guard s.mask >= maps.threshold, abs(depth - s.front) <= 2 * voxel else { continue }
            colors[i] = photo.bilinear(x: pixel.x * sx, y: pixel.y * sy)
            known[i] = true
            queue.append(i)
        }
        let (start, neighbours) = mesh.vertexAdjacency()
        var head = 0
        while head < queue.count {
            let v = queue[head]; head += 1
            for k in start[v]..<start[v + 1] {
                let w = Int(neighbours[k])
                if !known[w] { known[w] = true; colors[w] = colors[v]; queue.append(w) }
            }
        }
        return colors
    }
}

func checkCamera(_ camera: PinholeCamera, _ maps: DepthMaps) throws(MeshingError) {
    guard camera.width == maps.width && camera.height == maps.height else {
        throw .cameraMismatch(camera: SIMD2(camera.width, camera.height), maps: SIMD2(maps.width, maps.height))
    }
}

func checkAspect(_ photo: Image, _ maps: DepthMaps) throws(MeshingError) {
    let a = Double(photo.width) / Double(photo.height), b = Double(maps.width) / Double(maps.height)
    // One pixel of rounding either way is fine.
    let tolerance = 1.5 / Double(min(maps.width, maps.height))
    guard abs(a / b - 1) <= tolerance else {
        throw .photoAspectMismatch(photo: SIMD2(photo.width, photo.height), maps: SIMD2(maps.width, maps.height))
    }
}

/// Depth maps with the background's depths filled from the nearest foreground pixel, so
/// that bilinear samples near the silhouette do not mix in meaningless values.
struct FilledMaps {
    let width: Int, height: Int
    let front: [Float], back: [Float], mask: [Float]
    /// (mask, front, back, 0) per pixel, for sampling.
    let texels: [SIMD4<Float>]
    let foreground: [Bool]
    let threshold: Float

    init(_ maps: DepthMaps, threshold: Float) throws(MeshingError) {
        width = maps.width; height = maps.height; self.threshold = threshold
        var front = maps.front, back = maps.back
        var fg = [Bool](repeating: false, count: width * height)
        var queue: [Int] = []
        for k in 0..<fg.count where maps.mask[k] >= threshold && maps.front[k] > 0 && maps.front[k].isFinite {
            fg[k] = true
            if !(back[k] >= front[k]) || !back[k].isFinite { back[k] = front[k] }
            queue.append(k)
        }
        guard !queue.isEmpty else { throw .emptyMask }
        var filled = fg
        var head = 0
        while head < queue.count {
            let k = queue[head]; head += 1
            let i = k % width, j = k / width
            for (di, dj) in [(-1, 0), (1, 0), (0, -1), (0, 1)] {
                let a = i + di, b = j + dj
                guard a >= 0, a < width, b >= 0, b < height else { continue }
                let m = b * width + a
                if !filled[m] { filled[m] = true; front[m] = front[k]; back[m] = back[k]; queue.append(m) }
            }
        }
        self.front = front; self.back = back; mask = maps.mask; foreground = fg
        texels = (0..<fg.count).map { SIMD4(maps.mask[$0], front[$0], back[$0], 0) }
    }

    /// Bilinear samples at continuous pixel coordinates (corner origin); outside the map
    /// the mask is 0.
    func sample(u: Float, v: Float) -> (mask: Float, front: Float, back: Float) {
        texels.withUnsafeBufferPointer { sample(u: u, v: v, texels: $0) }
    }

    @inline(__always)
    func sample(u: Float, v: Float, texels t: UnsafeBufferPointer<SIMD4<Float>>) -> (mask: Float, front: Float, back: Float) {
        let x = u - 0.5, y = v - 0.5
        guard x > -1, y > -1, x < Float(width), y < Float(height) else { return (0, 1, 1) }
        let x0 = Int(x.rounded(.down)), y0 = Int(y.rounded(.down))
        let fx = x - Float(x0), fy = y - Float(y0)
        if x0 >= 0, y0 >= 0, x0 + 1 < width, y0 + 1 < height {
            let k = y0 * width + x0
            let top = t[k] * (1 - fx) + t[k + 1] * fx
            let bottom = t[k + width] * (1 - fx) + t[k + width + 1] * fx
            let r = top * (1 - fy) + bottom * fy
            return (r.x, r.y, r.z)
        }
        var sum = SIMD4<Float>(), wsum: Float = 0
        for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            let xi = x0 + dx, yi = y0 + dy
            guard xi >= 0, xi < width, yi >= 0, yi < height else { continue }
            let w = (dx == 0 ? 1 - fx : fx) * (dy == 0 ? 1 - fy : fy)
            sum += w * t[yi * width + xi]; wsum += w
        }
        guard wsum > 0 else { return (0, 1, 1) }
        return (sum.x, sum.y / wsum, sum.z / wsum)
    }
}

extension Image {
    /// Bilinear RGB in 0...1 at continuous pixel coordinates (corner origin), clamped to
    /// the image.
    func bilinear(x: Float, y: Float) -> SIMD3<Float> {
        let fx = min(max(x - 0.5, 0), Float(width - 1)), fy = min(max(y - 0.5, 0), Float(height - 1))
        let x0 = Int(fx), y0 = Int(fy)
        let x1 = min(x0 + 1, width - 1), y1 = min(y0 + 1, height - 1)
        let ax = fx - Float(x0), ay = fy - Float(y0)
        let ch = channels
        func px(_ x: Int, _ y: Int) -> SIMD3<Float> {
            let k = (y * width + x) * ch
            return SIMD3(Float(pixels[k]), Float(pixels[k + 1]), Float(pixels[k + 2]))
        }
        let top = px(x0, y0) * (1 - ax) + px(x1, y0) * ax
        let bottom = px(x0, y1) * (1 - ax) + px(x1, y1) * ax
        return (top * (1 - ay) + bottom * ay) / 255
    }
}
