import DepthNet
import Foundation
import Imaging
import Meshing
import Testing
import WorkerTestSupport
@testable import Pipeline

/// The engine with the committed weights, loaded once for these tests.
enum Engine {
    static let shared: ImageTo3D = {
        do { return try ImageTo3D(weights: Checkout.weights) } catch {
            fatalError("loading the committed weights: \(error)")
        }
    }()

    /// Runs the engine off Swift's cooperative pool (see `offCooperativePool`).
    static func run(_ image: Image, options: PipelineOptions = PipelineOptions(), mask: Image? = nil) async throws -> PipelineResult {
        try await run(image, engine: shared, options: options, mask: mask)
    }

    static func run(_ image: Image, engine: ImageTo3D, options: PipelineOptions = PipelineOptions(), mask: Image? = nil) async throws -> PipelineResult {
        try await offCooperativePool {
            let dir = try Checkout.scratch()
            defer { try? FileManager.default.removeItem(at: dir) }
            var options = options
            options.threads = 2
            return try engine.run(imageBytes: try PNGEncoder.encode(image), output: dir.appendingPathComponent("m"),
                                  options: options, mask: mask)
        }
    }

    /// Where each vertex of an object-mode result projects in the photo (pixel coordinates).
    static func projections(_ result: PipelineResult) throws -> [SIMD2<Float>] {
        let s = result.summary
        let scale = try #require(s.scale), position = try #require(s.cameraPosition)
        let anchor = -SIMD3(position[0], position[1], position[2]) / scale
        let camera = PinholeCamera(width: result.silhouette.width, height: result.silhouette.height, verticalFieldOfView: s.fovDegrees)
        let toPhoto = Float(s.photoWidth) / Float(result.silhouette.width)
        return try result.mesh.positions.map { p in
            let (pixel, _) = try #require(camera.project(p / scale + anchor))
            return pixel * toPhoto
        }
    }
}

/// An RGBA picture: `inside` pixels opaque in a wood colour with some grain, the rest
/// transparent over colourful noise (which flattening must hide from the network).
func cutOut(width: Int, height: Int, inside: (Int, Int) -> Bool) -> Image {
    var image = Image(width: width, height: height, layout: .rgba, filledWith: [0, 0, 0, 0])
    for y in 0..<height {
        for x in 0..<width {
            let i = (y * width + x) * 4
            let grain = UInt8(20 + (x * 7 + y * 3) % 23)
            image.pixels.replaceSubrange(i..<i + 4, with: inside(x, y)
                ? [140 + grain, 90 + grain / 2, 50, 255]
                : [UInt8((x * 37 + y * 11) % 256), UInt8((y * 53) % 256), UInt8((x * 19) % 256), 0])
        }
    }
    return image
}

/// A chair seen from the front and a little to the side: a back, a seat and four legs three
/// pixels wide, in a 640×480 cut-out.
func chair() -> Image {
    cutOut(width: 640, height: 480) { x, y in
        let back = (230..<410).contains(x) && (70..<215).contains(y)
        let seat = (200..<440).contains(x) && (215..<250).contains(y)
        let legs = [205, 262, 375, 434].contains { (($0)..<($0 + 3)).contains(x) } && (250..<420).contains(y)
        return back || seat || legs
    }
}

/// Connected components (through shared edges) of the triangles whose vertices all satisfy `keep`.
func components(_ mesh: Mesh, keeping keep: (SIMD3<Float>) -> Bool) -> Int {
    var parent = Array(0..<mesh.vertexCount)
    func find(_ i: Int) -> Int { var i = i; while parent[i] != i { parent[i] = parent[parent[i]]; i = parent[i] }; return i }
    var used = Set<Int>()
    for t in mesh.triangles {
        let v = [Int(t.x), Int(t.y), Int(t.z)]
        guard v.allSatisfy({ keep(mesh.positions[$0]) }) else { continue }
        used.formUnion(v)
        parent[find(v[1])] = find(v[0]); parent[find(v[2])] = find(v[0])
    }
    return Set(used.map(find)).count
}

@Suite("Silhouettes: cut-outs, given masks, thin parts", .serialized)
struct SilhouetteTests {
    @Test("a cut-out PNG's alpha is the mask: the model stays inside it, whatever lies under the transparent pixels")
    func cutOutStaysInsideAlpha() async throws {
        // A lamp-like shape: a shade, a stem 4 pixels wide and a base.
        let image = cutOut(width: 320, height: 240) { x, y in
            let shade = (120..<200).contains(x) && (30..<90).contains(y) && abs(x - 160) < 25 + (y - 30) / 3
            let stem = (158..<162).contains(x) && (90..<190).contains(y)
            let base = (130..<190).contains(x) && (190..<205).contains(y)
            return shade || stem || base
        }
        let result = try await Engine.run(image)
        #expect(result.summary.mode == .object && result.summary.maskSource == .alpha)
        #expect(result.summary.watertight)
        let alpha = image.alphaChannel()
        // Inside the alpha, or within 2 pixels of it (the surface passes through soft edge pixels).
        func near(_ p: SIMD2<Float>) -> Bool {
            let x = Int(p.x), y = Int(p.y)
            for dy in -2...2 { for dx in -2...2 {
                let u = x + dx, v = y + dy
                if u >= 0, v >= 0, u < 320, v < 240, alpha[v * 320 + u] >= 128 { return true }
            } }
            return false
        }
        let projected = try Engine.projections(result)
        let outside = projected.filter { !near($0) }.count
        #expect(outside == 0, "\(outside) of \(projected.count) vertices project outside the alpha")
        // The stem survives: vertices project into its rows.
        #expect(projected.contains { (100..<180).contains($0.y) && abs($0.x - 160) < 4 })
    }

    @Test("a chair whose legs are three pixels wide keeps its four legs")
    func thinLegs() async throws {
        let result = try await Engine.run(chair())
        #expect(result.summary.watertight)
        #expect(try #require(result.summary.volumeResolution) > PipelineOptions().volumeResolution)
        let mesh = result.mesh
        let top = try #require(mesh.bounds).max.y
        // The legs span the lowest half of the chair's height: cut a band through them.
        let legs = components(mesh) { $0.y > 0.1 * top && $0.y < 0.4 * top }
        #expect(legs == 4, "\(legs) leg pieces")
        // At the fixed default grid they break up (two voxels or fewer across): the adaptive grid keeps them whole.
        var coarse = PipelineOptions()
        coarse.maxVolumeResolution = coarse.volumeResolution
        let fixed = try await Engine.run(chair(), options: coarse)
        let fixedTop = try #require(fixed.mesh.bounds).max.y
        #expect(components(fixed.mesh) { $0.y > 0.1 * fixedTop && $0.y < 0.4 * fixedTop } != 4)
    }

    @Test("--mask: a given mask wins over the network; one of the wrong shape is bad input")
    func givenMask() async throws {
        var photo = Image(width: 200, height: 150, filledWith: [90, 110, 130])
        for y in 40..<110 { for x in 60..<140 { photo.pixels.replaceSubrange((y * 200 + x) * 3..<(y * 200 + x) * 3 + 3, with: [200, 80, 40]) } }
        var mask = Image(width: 100, height: 75, filledWith: [0, 0, 0])
        for y in 20..<55 { for x in 30..<70 { mask.pixels.replaceSubrange((y * 100 + x) * 3..<(y * 100 + x) * 3 + 3, with: [255, 255, 255]) } }
        let result = try await Engine.run(photo, mask: mask)
        #expect(result.summary.maskSource == .file && result.summary.mode == .object)
        let projected = try Engine.projections(result)
        #expect(projected.allSatisfy { $0.x > 56 && $0.x < 144 && $0.y > 36 && $0.y < 114 })
        await #expect(throws: PipelineError.self) { try await Engine.run(photo, mask: Image(width: 100, height: 100, filledWith: [255, 255, 255])) }
        do {
            _ = try await Engine.run(photo, mask: Image(width: 200, height: 150, filledWith: [0, 0, 0]))
            Issue.record("an all-black mask was accepted")
        } catch let error as PipelineError {
            #expect(error.code == "bad_mask" && error.isBadInput)
        }
    }

    @Test("--height: the model is in metres, standing on y = 0, centred; without it the size is unknown")
    func realHeight() async throws {
        let image = cutOut(width: 160, height: 120) { x, y in (50..<110).contains(x) && (20..<100).contains(y) }
        var options = PipelineOptions()
        options.objectHeight = 0.75
        let sized = try await Engine.run(image, options: options)
        let b = try #require(sized.mesh.bounds)
        #expect(abs(b.size.y - 0.75) < 1e-4 && abs(b.min.y) < 1e-5)
        #expect(abs(b.center.x) < 1e-4 && abs(b.center.z) < 1e-4)
        let size = try #require(sized.summary.size)
        #expect(size.source == .givenHeight && abs(size.height - 0.75) < 1e-4 && abs(size.width - b.size.x) < 1e-4)
        #expect(sized.summary.sizeSource == .givenHeight)
        let plain = try await Engine.run(image)
        #expect(plain.summary.size == nil && plain.summary.sizeSource == .unknown)
        #expect(abs(try #require(plain.mesh.bounds).size.y - 1) < 1e-4)
    }

    @Test("metric weights: the model is in metres; its size does not depend on the field of view, its distance does")
    func metricDepth() async throws {
        // The committed weights, told they are metric (canonical 60° camera at 192 pixels).
        let dir = try Checkout.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let weights = Checkout.weights
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: weights.appendingPathComponent("mrdepth.json"))) as! [String: Any]
        config["metric_depth"] = ["canonical_focal_px": 166.2769]
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("mrdepth.json"))
        try FileManager.default.copyItem(at: weights.appendingPathComponent("mrdepth.safetensors"), to: dir.appendingPathComponent("mrdepth.safetensors"))
        let engine = try ImageTo3D(weights: dir)
        let image = cutOut(width: 160, height: 120) { x, y in (50..<110).contains(x) && (20..<100).contains(y) }
        func run(fov: Float) async throws -> PipelineResult {
            var options = PipelineOptions()
            options.fovDegrees = fov
            return try await Engine.run(image, engine: engine, options: options)
        }
        let wide = try await run(fov: 60), narrow = try await run(fov: 30)
        let size = try #require(wide.summary.size)
        #expect(wide.summary.sizeSource == .metricDepth && size.source == .metricDepth)
        let b = try #require(wide.mesh.bounds)
        #expect(abs(b.size.y - size.height) < 1e-4 && abs(b.min.y) < 1e-5 && size.height > 0)
        // Seen through a longer lens the same picture is the same object farther away.
        let narrowSize = try #require(narrow.summary.size)
        #expect(abs(narrowSize.height / size.height - 1) < 0.05, "\(narrowSize.height) vs \(size.height)")
        func distance(_ r: PipelineResult) throws -> Float {
            let p = try #require(r.summary.cameraPosition)
            return (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).squareRoot()
        }
        let ratio = try distance(narrow) / distance(wide)
        let expected = tan(Float.pi / 6) / tan(Float.pi / 12)
        #expect(abs(ratio / expected - 1) < 0.1, "distance ratio \(ratio), expected \(expected)")
        // The committed weights are not metric: the size is unknown.
        #expect(try await Engine.run(image).summary.sizeSource == .unknown)
    }

    @Test("a scale head multiplies the metric depth: exp(bias) = 2 with zero weights doubles the model")
    func scaleHead() async throws {
        let weights = Checkout.weights
        let stored = try SafeTensorsFile(contentsOf: weights.appendingPathComponent("mrdepth.safetensors"))
        var tensors: [String: (shape: [Int], values: [Float])] = [:]
        for name in stored.names where !name.hasPrefix("scale.") {
            tensors[name] = (stored.entries[name]!.shape, try #require(try stored.floats(name)))
        }
        let w4 = try #require(tensors["enc4.conv2.bn.weight"]).shape[0]
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: weights.appendingPathComponent("mrdepth.json"))) as! [String: Any]
        func engine(scaleHead: Bool) throws -> (ImageTo3D, URL) {
            let dir = try Checkout.scratch()
            var t = tensors
            config["metric_depth"] = ["canonical_focal_px": 166.2769] as [String: Any]
            if scaleHead {
                config["metric_depth"] = ["canonical_focal_px": 166.2769, "scale_head": ["features": "mean of enc4"]] as [String: Any]
                t["scale.weight"] = ([1, w4 + 2], [Float](repeating: 0, count: w4 + 2))
                t["scale.bias"] = ([1], [log(2)])
            }
            try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("mrdepth.json"))
            try SafeTensorsFile.encode(t).write(to: dir.appendingPathComponent("mrdepth.safetensors"))
            return (try ImageTo3D(weights: dir), dir)
        }
        let (plain, plainDir) = try engine(scaleHead: false), (scaled, scaledDir) = try engine(scaleHead: true)
        defer { for d in [plainDir, scaledDir] { try? FileManager.default.removeItem(at: d) } }
        let image = cutOut(width: 160, height: 120) { x, y in (50..<110).contains(x) && (20..<100).contains(y) }
        let a = try await Engine.run(image, engine: plain), b = try await Engine.run(image, engine: scaled)
        let sa = try #require(a.summary.size), sb = try #require(b.summary.size)
        #expect(b.summary.sizeSource == .metricDepth)
        #expect(abs(sb.height / sa.height - 2) < 1e-3, "\(sb.height) vs \(sa.height)")
    }

    @Test("the field of view comes from EXIF's 35 mm focal length when the photo has one")
    func exifFieldOfView() throws {
        // 26 mm (a phone's main camera) on a 4:3 landscape photo: 2·atan(43.27·0.6 / 52) = 53.0°.
        let fov = try #require(ImageTo3D.verticalFieldOfView(focalLength35mm: 26, width: 400, height: 300))
        #expect(abs(fov - 53.04) < 0.05)
        let portrait = try #require(ImageTo3D.verticalFieldOfView(focalLength35mm: 26, width: 300, height: 400))
        #expect(portrait > fov)
        let jpeg = try Data(contentsOf: Checkout.root.appendingPathComponent("Tests/ImagingTests/Fixtures/jpeg_baseline_444.jpg"))
        let tagged = EXIFFixture.jpeg([UInt8](jpeg), focalLength35mm: 26)
        let decoded = try ImageDecoder.decode(tagged)
        #expect(decoded.focalLength35mm == 26)
        let (used, source) = Engine.shared.fieldOfView(options: PipelineOptions(), decoded: decoded)
        #expect(source == .exif)
        #expect(used == ImageTo3D.verticalFieldOfView(focalLength35mm: 26, width: decoded.image.width, height: decoded.image.height))
        var given = PipelineOptions()
        given.fovDegrees = 40
        #expect(Engine.shared.fieldOfView(options: given, decoded: decoded) == (40, .given))
        let plain = try ImageDecoder.decode([UInt8](jpeg))
        #expect(plain.focalLength35mm == nil)
        #expect(Engine.shared.fieldOfView(options: PipelineOptions(), decoded: plain).1 == .default)
    }
}

/// JPEG fixtures with an APP1 Exif segment: IFD0 holds the Exif IFD pointer, the Exif IFD the
/// 35 mm focal length (little-endian TIFF, as phones write it).
enum EXIFFixture {
    static func jpeg(_ jpeg: [UInt8], focalLength35mm: UInt16) -> [UInt8] {
        func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }
        func le32(_ v: Int) -> [UInt8] { le16(v & 0xFFFF) + le16(v >> 16) }
        func entry(_ tag: Int, _ type: Int, _ value: Int) -> [UInt8] {
            le16(tag) + le16(type) + le32(1) + (type == 3 ? le16(value) + [0, 0] : le32(value))
        }
        // Header (8) | IFD0 at 8: 1 entry (2 + 12 + 4 = 18) | Exif IFD at 26: 1 entry.
        var tiff: [UInt8] = [0x49, 0x49, 0x2A, 0x00] + le32(8)
        tiff += le16(1) + entry(0x8769, 4, 26) + le32(0)
        tiff += le16(1) + entry(0xA405, 3, Int(focalLength35mm)) + le32(0)
        let payload: [UInt8] = Array("Exif".utf8) + [0, 0] + tiff
        let segment: [UInt8] = [0xFF, 0xE1, UInt8((payload.count + 2) >> 8), UInt8((payload.count + 2) & 0xFF)] + payload
        return Array(jpeg[..<2]) + segment + Array(jpeg[2...])
    }
}
