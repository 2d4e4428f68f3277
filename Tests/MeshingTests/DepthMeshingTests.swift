import Foundation
import Imaging
import Testing
import WorkerTestSupport
@testable import Meshing

enum Scenes {
    /// Depth maps of a sphere of `radius` centred at `center` (camera frame) seen by `camera`.
    static func sphere(camera: PinholeCamera, center: SIMD3<Float>, radius: Float) -> DepthMaps {
        let n = camera.width * camera.height
        var front = [Float](repeating: 0, count: n), back = front, mask = front
        for j in 0..<camera.height {
            for i in 0..<camera.width {
                let r = camera.ray(through: SIMD2(Float(i) + 0.5, Float(j) + 0.5))
                // |t r − c|² = R², depth = t because r.z = −1.
                let a = dot(r, r), b = -2 * dot(r, center), c = dot(center, center) - radius * radius
                let disc = b * b - 4 * a * c
                guard disc > 0 else { continue }
                let k = j * camera.width + i
                front[k] = (-b - disc.squareRoot()) / (2 * a)
                back[k] = (-b + disc.squareRoot()) / (2 * a)
                mask[k] = 1
            }
        }
        return DepthMaps(width: camera.width, height: camera.height, front: front, back: back, mask: mask)
    }

    /// A photo whose left half is red and right half blue.
    static func halves(width: Int, height: Int) -> Image {
        var pixels = [UInt8]()
        for _ in 0..<height { for i in 0..<width { pixels += i < width / 2 ? [255, 0, 0] : [0, 0, 255] } }
        return Image(width: width, height: height, layout: .rgb, pixels: pixels)
    }
}

@Suite("Camera")
struct CameraTests {
    @Test("back-projection and projection are inverse; focal length from the field of view")
    func roundTrip() throws {
        let camera = PinholeCamera(width: 200, height: 100, verticalFieldOfView: 90)
        #expect(abs(camera.focalLength - 50) < 1e-4)
        #expect(abs(camera.horizontalFieldOfView - 126.87) < 0.01)
        let p = camera.point(at: SIMD2(30, 70), depth: 2.5)
        #expect(p.z == -2.5)
        #expect(p.x < 0 && p.y < 0)  // left of and below the centre
        let (pixel, depth) = try #require(camera.project(p))
        #expect(abs(pixel.x - 30) < 1e-4 && abs(pixel.y - 70) < 1e-4 && abs(depth - 2.5) < 1e-6)
        #expect(camera.project(SIMD3(0, 0, 1)) == nil)
        let big = camera.resized(width: 400, height: 200)
        #expect(big.principalPoint == SIMD2(200, 100) && abs(big.focalLength - 100) < 1e-3)
    }
}

@Suite("Object mode")
struct ObjectMesherTests {
    let camera = PinholeCamera(width: 80, height: 80, verticalFieldOfView: 40)
    var maps: DepthMaps { Scenes.sphere(camera: camera, center: SIMD3(0.1, -0.05, -3), radius: 0.8) }

    func mesher() -> ObjectMesher {
        var options = ObjectMesher.Options()
        options.resolution = 40
        options.threads = 2
        return ObjectMesher(options: options)
    }

    @Test("a sphere's depth maps give one closed sphere, normalised to height 1 and standing on y = 0")
    func sphere() throws {
        let result = try mesher().mesh(maps, camera: camera)
        let mesh = result.mesh
        #expect(mesh.isClosedManifold)
        #expect(mesh.eulerCharacteristic() == 2)
        #expect(mesh.componentCount == 1)
        let b = try #require(mesh.bounds)
        #expect(abs(b.size.y - 1) < 1e-5)
        #expect(abs(b.min.y) < 1e-6)
        #expect(abs(b.center.x) < 1e-5 && abs(b.center.z) < 1e-5)
        // The sphere's diameter is 1.6 camera units, and its volume (π/6 at height 1) survives smoothing.
        #expect(abs(result.scale * 1.6 - 1) < 0.03, "scale \(result.scale)")
        #expect(abs(mesh.volume / (Double.pi / 6) - 1) < 0.04, "volume \(mesh.volume)")
        // The camera sits in front (+Z) of the object and looks at it along −Z.
        #expect(result.cameraPosition.z > 1)
        let frontmost = mesh.positions.indices.max { mesh.positions[$0].z < mesh.positions[$1].z }!
        #expect(try #require(mesh.normals)[frontmost].z > 0.9)
    }

    /// Voxels finer than the maps' pixels (128 voxels across a sphere 18 pixels wide), and maps
    /// like a network's: a wall behind the sphere, depths and mask blurred across the silhouette.
    /// The rim's steep, thin skirt then breaks into fins with holes (genus > 0) unless the carved
    /// field is smoothed.
    @Test("voxels finer than pixels: the smoothed field gives a closed sphere without holes")
    func finerThanPixels() throws {
        let small = PinholeCamera(width: 24, height: 24, verticalFieldOfView: 40)
        let sphere = Scenes.sphere(camera: small, center: SIMD3(0.05, 0, -3), radius: 0.8)
        let w = small.width
        func blur(_ a: [Float]) -> [Float] {
            var out = a
            for y in 0..<w {
                for x in 0..<w {
                    var sum: Float = 0, n: Float = 0
                    for dy in -1...1 {
                        for dx in -1...1 where (0..<w).contains(x + dx) && (0..<w).contains(y + dy) {
                            sum += a[(y + dy) * w + x + dx]
                            n += 1
                        }
                    }
                    out[y * w + x] = sum / n
                }
            }
            return out
        }
        let wall: Float = 4.5
        let front = sphere.mask.indices.map { sphere.mask[$0] > 0 ? sphere.front[$0] : wall }
        let back = sphere.mask.indices.map { sphere.mask[$0] > 0 ? sphere.back[$0] : wall }
        let maps = DepthMaps(width: w, height: w, front: blur(front), back: blur(back), mask: blur(sphere.mask))
        var options = ObjectMesher.Options()
        options.resolution = 128
        options.threads = 2
        let smooth = try ObjectMesher(options: options).mesh(maps, camera: small).mesh
        #expect(smooth.isClosedManifold)
        #expect(smooth.eulerCharacteristic() == 2, "χ = \(smooth.eulerCharacteristic())")
        options.fieldSmoothingPasses = 0
        let raw = try ObjectMesher(options: options).mesh(maps, camera: small).mesh
        #expect(raw.eulerCharacteristic() < 2, "the unsmoothed field was expected to leave holes")
        // Smoothing removes the holes without shrinking the object.
        #expect(abs(smooth.volume / raw.volume - 1) < 0.02, "volume \(smooth.volume) vs \(raw.volume)")
    }

    @Test("vertex colours: the photo's halves on the visible side, every vertex coloured")
    func colours() throws {
        let photo = Scenes.halves(width: 160, height: 160)
        let mesh = try mesher().mesh(maps, camera: camera, photo: photo).mesh
        let colors = try #require(mesh.colors)
        var checked = 0
        for (p, c) in zip(mesh.positions, colors) {
            // Every colour comes from the photo (red or blue, never the grey default).
            #expect(c.y < 0.05 && abs(c.x + c.z - 1) < 0.05)
            guard p.z > 0.25 else { continue }
            if p.x < -0.15 { #expect(c.x > 0.9); checked += 1 }
            if p.x > 0.15 { #expect(c.z > 0.9); checked += 1 }
        }
        #expect(checked > 20)
    }

    @Test("the carved volume: resolution along the longest side, outside on the border, inside at the centre")
    func carvedVolume() throws {
        let volume = try mesher().volume(maps, camera: camera)
        #expect(max(volume.width, volume.height, volume.depth) - 40 <= 6)
        #expect(volume[0, 0, 0] < 0 && volume[volume.width - 1, volume.height - 1, volume.depth - 1] < 0)
        #expect(volume[volume.width / 2, volume.height / 2, volume.depth / 2] > 0)
        // Thickness form of the maps: back = front + thickness, negative thickness clamped.
        let t = DepthMaps(width: 2, height: 1, front: [1, 2], thickness: [0.5, -1], mask: [1, 1])
        #expect(t.back == [1.5, 2])
    }

    @Test("object mode gives the same mesh on 1 and 2 threads")
    func deterministic() throws {
        var one = mesher(), two = mesher()
        one.options.threads = 1
        two.options.threads = 2
        let photo = Scenes.halves(width: 80, height: 80)
        #expect(try one.mesh(maps, camera: camera, photo: photo).mesh == two.mesh(maps, camera: camera, photo: photo).mesh)
    }

    @Test("small islands in the mask are dropped")
    func islands() throws {
        var m = maps
        // A 2×2-pixel speck far from the sphere.
        for (i, j) in [(2, 2), (3, 2), (2, 3), (3, 3)] {
            let k = j * m.width + i
            m.front[k] = 2.5; m.back[k] = 2.6; m.mask[k] = 1
        }
        let mesh = try mesher().mesh(m, camera: camera).mesh
        #expect(mesh.componentCount == 1)
        #expect(mesh.isClosedManifold)
    }

    @Test("errors: empty mask, camera of another size, photo of another aspect")
    func errors() {
        let empty = DepthMaps(width: 80, height: 80, depth: [Float](repeating: 1, count: 6400),
                              mask: [Float](repeating: 0, count: 6400))
        #expect(throws: MeshingError.emptyMask) { try mesher().mesh(empty, camera: camera) }
        #expect(throws: MeshingError.self) { try mesher().mesh(maps, camera: PinholeCamera(width: 10, height: 10)) }
        #expect(throws: MeshingError.self) {
            try mesher().mesh(maps, camera: camera, photo: Image(width: 100, height: 50, filledWith: [0, 0, 0]))
        }
    }
}

@Suite("Relief mode")
struct ReliefMesherTests {
    @Test("no triangle spans a planted depth step; both sides fully meshed")
    func depthStep() throws {
        let w = 40, h = 30
        let depth = (0..<(w * h)).map { $0 % w < 20 ? Float(2) : Float(4) }
        let camera = PinholeCamera(width: w, height: h, verticalFieldOfView: 50)
        let mesh = try ReliefMesher().mesh(DepthMaps(width: w, height: h, depth: depth), camera: camera)
        #expect(mesh.triangleCount == 2 * (19 * 29 * 2))
        for t in mesh.triangles {
            let zs = [t.x, t.y, t.z].map { mesh.positions[Int($0)].z }
            #expect(zs.max()! - zs.min()! < 0.5)
        }
        #expect(mesh.componentCount == 2)
        #expect(try #require(mesh.normals).allSatisfy { $0.z > 0.99 })
        let uvs = try #require(mesh.uvs)
        #expect(uvs.allSatisfy { $0.x > 0 && $0.x < 1 && $0.y > 0 && $0.y < 1 })
    }

    @Test("a steep but continuous slope is not cut; the mask removes background")
    func slope() throws {
        let w = 32, h = 24
        // Depth growing 3% per pixel to the right: steep, yet continuous.
        let depth = (0..<(w * h)).map { Float(2 * pow(1.03, Double($0 % w))) }
        var mask = [Float](repeating: 1, count: w * h)
        for k in 0..<w { mask[k] = 0 }  // top row is background
        let camera = PinholeCamera(width: w, height: h, verticalFieldOfView: 50)
        let mesh = try ReliefMesher().mesh(DepthMaps(width: w, height: h, depth: depth, mask: mask), camera: camera)
        #expect(mesh.triangleCount == (w - 1) * (h - 2) * 2)
        #expect(mesh.vertexCount == w * (h - 1))
        let r = mesh.edgeReport()
        #expect(r.nonManifoldEdges == 0 && r.isConsistentlyWound)
        #expect(mesh.eulerCharacteristic() == 1)
    }

    @Test("simplification to a maximum error: a plane collapses, a curved surface stays within the error")
    func simplification() throws {
        let w = 32, h = 32
        let camera = PinholeCamera(width: w, height: h, verticalFieldOfView: 40)
        // A tilted plane z = −(3 + 0.3 x): depth is linear in x/d, so build it from the plane.
        var planeDepth = [Float](repeating: 0, count: w * h)
        for j in 0..<h { for i in 0..<w {
            let r = camera.ray(through: SIMD2(Float(i) + 0.5, Float(j) + 0.5))
            planeDepth[j * w + i] = 3 / (1 + 0.3 * r.x)  // −z = 3 + 0.3 x on the ray
        } }
        var options = ReliefMesher.Options()
        options.maxError = 1e-4
        let full = try ReliefMesher().mesh(DepthMaps(width: w, height: h, depth: planeDepth), camera: camera)
        let simple = try ReliefMesher(options: options).mesh(DepthMaps(width: w, height: h, depth: planeDepth), camera: camera)
        #expect(simple.triangleCount < full.triangleCount / 5, "\(simple.triangleCount) of \(full.triangleCount)")
        #expect(abs(simple.surfaceArea / full.surfaceArea - 1) < 1e-3)
        #expect(simple.eulerCharacteristic() == 1)
        #expect(simple.edgeReport().nonManifoldEdges == 0 && simple.edgeReport().isConsistentlyWound)
        #expect(try #require(simple.normals).allSatisfy { $0.z > 0.9 })
        // UVs still map every kept vertex to its own pixel.
        for (p, uv) in zip(simple.positions, try #require(simple.uvs)) {
            let (pixel, _) = try #require(camera.project(p))
            #expect(abs(pixel.x / Float(w) - uv.x) < 1e-4 && abs(pixel.y / Float(h) - uv.y) < 1e-4)
        }
        // A dome: every original vertex stays within the error of the simplified surface's
        // vertices' planes — checked loosely through the enclosed area staying close.
        let dome = (0..<(w * h)).map { k -> Float in
            let x = Float(k % w - w / 2) / Float(w), y = Float(k / w - h / 2) / Float(h)
            return 3 - 0.5 * (0.5 - x * x - y * y)
        }
        options.maxError = 2e-3
        let domeFull = try ReliefMesher().mesh(DepthMaps(width: w, height: h, depth: dome), camera: camera)
        let domeSimple = try ReliefMesher(options: options).mesh(DepthMaps(width: w, height: h, depth: dome), camera: camera)
        #expect(domeSimple.triangleCount < domeFull.triangleCount)
        #expect(abs(domeSimple.surfaceArea / domeFull.surfaceArea - 1) < 0.01)
    }
}

@Suite("Smoothing")
struct SmoothingTests {
    @Test("Taubin smoothing keeps a sphere's volume; plain Laplacian smoothing shrinks it")
    func taubin() {
        let mesh = MarchingCubes(threads: 1).mesh(Shapes.sphere(radius: 8, n: 22))
        let taubin = mesh.taubinSmoothed(iterations: 10)
        let laplacian = mesh.taubinSmoothed(iterations: 10, lambda: 0.5, mu: 0.5)
        #expect(abs(taubin.volume / mesh.volume - 1) < 0.01, "\(taubin.volume) vs \(mesh.volume)")
        #expect(laplacian.volume < 0.95 * mesh.volume)
        #expect(taubin.isClosedManifold)
    }

    /// A box seen face-on (front at depth 2, back at 2.6), its front rippled like a striped
    /// texture read as relief (amplitude 1 % of the box's width), meshed in object mode.
    static func rippledBox(featurePreserving: Int) throws -> (mesh: Mesh, width: Float) {
        let w = 128, h = 96
        let camera = PinholeCamera(width: w, height: h, verticalFieldOfView: 60)
        var front = [Float](repeating: 5, count: w * h), back = front, mask = [Float](repeating: 0, count: w * h)
        for y in 18..<78 {
            for x in 24..<104 {
                front[y * w + x] = 2 + 0.02 * sin(Float(x) * 0.9)
                back[y * w + x] = 2.6
                mask[y * w + x] = 1
            }
        }
        var options = ObjectMesher.Options()
        options.resolution = 96
        options.threads = 1
        options.normalize = false
        options.featurePreservingIterations = featurePreserving
        let result = try ObjectMesher(options: options).mesh(DepthMaps(width: w, height: h, front: front, back: back, mask: mask), camera: camera)
        let width = 80 * 2 / camera.focalLength
        return (result.mesh, width)
    }

    /// Largest and RMS distance from the plane z = mean of the front face's vertices (those whose
    /// normal faces the camera, away from the rims), relative to `width`.
    static func frontFlatness(_ mesh: Mesh, width: Float) -> (max: Float, rms: Float) {
        var m = mesh
        m.computeNormals()
        let b = m.bounds!
        let inner = m.positions.indices.filter { i in
            let p = m.positions[i]
            return m.normals![i].z > 0.9 && p.z > b.max.z - 0.1 * width
                && p.x > b.min.x + 0.1 * width && p.x < b.max.x - 0.1 * width
                && p.y > b.min.y + 0.1 * width && p.y < b.max.y - 0.1 * width
        }
        let mean = inner.map { m.positions[$0].z }.reduce(0, +) / Float(inner.count)
        let squares = inner.map { (m.positions[$0].z - mean) * (m.positions[$0].z - mean) }
        let rms = (squares.reduce(0, +) / Float(inner.count)).squareRoot()
        return (inner.map { abs(m.positions[$0].z - mean) }.max()! / width, rms / width)
    }

    @Test("feature-preserving smoothing: a box's rippled front comes out planar within 1 % of its size, its edges stay sharp")
    func flatFaces() async throws {
        let (smoothed, width) = try await offCooperativePool { try Self.rippledBox(featurePreserving: 5) }
        let (plain, _) = try await offCooperativePool { try Self.rippledBox(featurePreserving: 0) }
        let flat = Self.frontFlatness(smoothed, width: width), rough = Self.frontFlatness(plain, width: width)
        #expect(flat.max < 0.01, "front deviates up to \(flat.max * 100) % of the width")
        #expect(flat.rms < 0.75 * rough.rms, "RMS \(flat.rms) vs Taubin only \(rough.rms)")
        #expect(smoothed.isClosedManifold)
        // Sharp edges: the box keeps its corners, so its volume stays that of the box (Taubin alone rounds them).
        let box: Float = width * (width * 0.75) * 0.6
        let smoothedError = abs(Float(smoothed.volume) / box - 1), plainError = abs(Float(plain.volume) / box - 1)
        #expect(smoothedError < plainError + 0.01, "volume off by \(smoothedError), Taubin only \(plainError)")
    }

    @Test("Bilateral normal filtering gives the same mesh on 1, 2 and 3 threads")
    func bilateralThreads() async throws {
        let (mesh, _) = try await offCooperativePool { try Self.rippledBox(featurePreserving: 0) }
        let one = mesh.bilateralNormalSmoothed(normalIterations: 3, threads: 1)
        #expect(one.positions != mesh.positions)
        for threads in [2, 3] {
            #expect(mesh.bilateralNormalSmoothed(normalIterations: 3, threads: threads).positions == one.positions)
        }
    }
}

@Suite("Mirror symmetry")
struct SymmetryTests {
    /// A cabinet (1.0 wide, 0.8 high, 0.5 deep) turned 35° about the vertical, 3 in front of a
    /// level camera: exact front and back depth by ray casting, and a network-like back guess
    /// that is far too thin (front + 0.05).
    static func turnedBox() -> (maps: DepthMaps, truth: DepthMaps, camera: PinholeCamera) {
        let w = 160, h = 120
        let camera = PinholeCamera(width: w, height: h, verticalFieldOfView: 50)
        let centre = SIMD3<Float>(0, 0, -3), half = SIMD3<Float>(0.5, 0.4, 0.25)
        let yaw: Float = 35 * .pi / 180
        func toBox(_ v: SIMD3<Float>) -> SIMD3<Float> {   // rotate by −yaw about y
            SIMD3(cos(yaw) * v.x - sin(yaw) * v.z, v.y, sin(yaw) * v.x + cos(yaw) * v.z)
        }
        var front = [Float](repeating: 10, count: w * h), back = front, thin = front, mask = [Float](repeating: 0, count: w * h)
        for y in 0..<h {
            for x in 0..<w {
                let q = camera.ray(through: SIMD2(Float(x) + 0.5, Float(y) + 0.5))   // depth s along it
                let o = toBox(-centre), d = toBox(q)
                var near = -Float.infinity, far = Float.infinity
                for k in 0..<3 {
                    if abs(d[k]) < 1e-9 { if abs(o[k]) > half[k] { near = .infinity }; continue }
                    let a = (-half[k] - o[k]) / d[k], b = (half[k] - o[k]) / d[k]
                    near = max(near, min(a, b)); far = min(far, max(a, b))
                }
                guard near < far, near > 0 else { continue }
                let i = y * w + x
                front[i] = near; back[i] = far; thin[i] = near + 0.05; mask[i] = 1
            }
        }
        return (DepthMaps(width: w, height: h, front: front, back: thin, mask: mask),
                DepthMaps(width: w, height: h, front: front, back: back, mask: mask), camera)
    }

    static func volume(_ maps: DepthMaps, _ camera: PinholeCamera) throws -> Double {
        var options = ObjectMesher.Options()
        options.resolution = 64
        options.threads = 1
        options.normalize = false
        return try ObjectMesher(options: options).mesh(maps, camera: camera).mesh.volume
    }

    @Test("a half-visible symmetric box: the mirror plane is found and the back completed to near the true volume")
    func turnedBox() async throws {
        let (maps, truth, camera) = Self.turnedBox()
        let plane = try #require(MirrorSymmetry.find(maps, camera: camera))
        // One of the box's vertical mirror planes: normal along one of its horizontal axes, through its centre.
        let axes = [SIMD3<Float>(cos(35 * Float.pi / 180), 0, -sin(35 * Float.pi / 180)), SIMD3<Float>(sin(35 * Float.pi / 180), 0, cos(35 * Float.pi / 180))]
        let alignment = axes.map { abs(dot($0, plane.normal)) }.max()!
        #expect(alignment > cos(4 * Float.pi / 180), "plane normal \(plane.normal)")
        #expect(abs(dot(plane.normal, SIMD3(0, 0, -3)) - plane.offset) < 0.05, "plane offset \(plane.offset)")
        let completed = MirrorSymmetry.complete(maps, camera: camera, plane: plane)
        let real = 1.0 * 0.8 * 0.5
        let (thinVolume, completedVolume, exactVolume) = try await offCooperativePool {
            (try Self.volume(maps, camera), try Self.volume(completed, camera), try Self.volume(truth, camera))
        }
        #expect(abs(exactVolume / real - 1) < 0.1, "the exact maps give the box")
        #expect(thinVolume < 0.1 * real, "\(thinVolume)")
        // The mirror image of the side face gives the hidden side face; the rays that leave through the
        // hidden back face keep the thin guess, so the box is not all recovered (0.27 of 0.37 when measured).
        #expect(completedVolume > 0.7 * exactVolume && completedVolume < 1.05 * exactVolume,
                "completed \(completedVolume), exact maps \(exactVolume), box \(real), \(plane)")
    }

    @Test("no plane for an asymmetric shape or one seen face-on only")
    func noPlane() throws {
        let w = 120, h = 90
        let camera = PinholeCamera(width: w, height: h, verticalFieldOfView: 50)
        // An L-shaped silhouette on a sloped surface: no vertical mirror plane explains it.
        var front = [Float](repeating: 10, count: w * h), mask = [Float](repeating: 0, count: w * h)
        for y in 10..<80 { for x in 20..<100 where x < 45 || y > 60 {
            front[y * w + x] = 2.5 + 0.01 * Float(x) + 0.004 * Float(y); mask[y * w + x] = 1
        } }
        let maps = DepthMaps(width: w, height: h, front: front, back: front.map { $0 + 0.1 }, mask: mask)
        #expect(MirrorSymmetry.find(maps, camera: camera) == nil)
    }
}
