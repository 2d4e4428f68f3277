import ArgumentParser
import DepthNet
import Foundation
import Imaging
import MeshIO
import Meshing
import Pipeline
import Testing
import WorkerTestSupport
@testable import MeshCommands

/// Runs `mesh` in this process, as the executable would, with the committed weights: the arguments
/// are parsed by `MeshCommand` and the subcommand they name runs with a capturing console.
enum MeshTool {
    /// The committed weights, and nothing else, on the search path.
    static let engine = EngineEnvironment(weightSearchPath: [Checkout.weights])

    struct Output { var status: Int32; var stdout: String; var stderr: String }

    /// Runs `mesh arguments`, waiting on a thread of its own (not one of the cooperative pool's,
    /// which the broker tests' async code needs). Relative paths are the caller's to avoid:
    /// the process's current folder is shared by every test.
    static func run(_ arguments: [String]) async throws -> Output {
        try await offCooperativePool { runBlocking(arguments) }
    }

    static func runBlocking(_ arguments: [String]) -> Output {
        let console = Console(capturing: true)
        var status: Int32 = 0
        do {
            try MeshCommand.run(arguments, engine: engine, console: console)
        } catch {
            status = MeshCommand.exitCode(for: error).rawValue
            // As the executable prints it (usage errors with the usage).
            if status != 1 && status != 65 { console.printError(MeshCommand.fullMessage(for: error)) }
        }
        return Output(status: status, stdout: console.output, stderr: console.errors)
    }
}

struct CommandSummary: Decodable {
    var photo: String
    var ok: Bool
    var summary: PipelineSummary?
    var extraFiles: [String]?
    var errorCode: String?
}

@Suite("The mesh command, end to end", .serialized)
struct MeshCommandTests {
    @Test("object mode: one closed, consistently wound, coloured mesh; --json matches the files")
    func objectMode() async throws {
        let dir = try Checkout.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let photo = Checkout.samples.appendingPathComponent("cube.jpg").path
        let result = try await MeshTool.run([photo, "--mode", "object", "--volume", "64", "-o", dir.appendingPathComponent("out/cube.obj").path,
                                       "--format", "glb", "--json"])
        try #require(result.status == 0, "\(result.stderr)")
        let reports = try JSONDecoder().decode([CommandSummary].self, from: Data(result.stdout.utf8))
        let summary = try #require(reports.first?.summary)
        #expect(summary.mode == .object)
        #expect(Set(summary.files.map { URL(fileURLWithPath: $0).lastPathComponent }) == ["cube.obj", "cube.glb"])
        for file in summary.files {
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent(file).path) || FileManager.default.fileExists(atPath: file))
        }
        let mesh = try OBJReader.read(dir.appendingPathComponent("out/cube.obj"))
        #expect(mesh.vertexCount == summary.vertices)
        #expect(mesh.triangleCount == summary.faces)
        let report = mesh.edgeReport()
        #expect(report.isWatertight, "\(report)")
        #expect(report.isConsistentlyWound, "\(report)")
        #expect(mesh.componentCount == 1)
        #expect(mesh.volume > 0, "outward winding encloses a positive volume")
        #expect(mesh.colors != nil)
        let bounds = try #require(mesh.bounds)
        #expect(abs(bounds.min.y) < 1e-3 && abs(bounds.size.y - 1) < 1e-3, "standing on y = 0, height 1: \(bounds)")
        // The stages are all reported.
        #expect(summary.milliseconds.map(\.stage) == ["decode", "depth", "mesh", "write"])
        let glb = try Data(contentsOf: dir.appendingPathComponent("out/cube.glb"))
        #expect(glb.prefix(4) == Data("glTF".utf8))
    }

    @Test("relief mode with --texture: texture coordinates, MTL and PNG")
    func reliefMode() async throws {
        let dir = try Checkout.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let photo = Checkout.samples.appendingPathComponent("room.jpg").path
        let result = try await MeshTool.run([photo, "--mode", "relief", "--texture", "-o", dir.appendingPathComponent("room.obj").path, "--resolution", "128"])
        try #require(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("room.obj") && result.stdout.contains("relief"))
        let mesh = try OBJReader.read(dir.appendingPathComponent("room.obj"))
        let uvs = try #require(mesh.uvs)
        #expect(uvs.count == mesh.vertexCount && mesh.triangleCount > 1000)
        #expect(uvs.allSatisfy { $0.x >= 0 && $0.x <= 1 && $0.y >= 0 && $0.y <= 1 })
        let mtl = try String(contentsOf: dir.appendingPathComponent("room.mtl"), encoding: .utf8)
        #expect(mtl.contains("map_Kd room.png"))
        let texture = try Data(contentsOf: dir.appendingPathComponent("room.png"))
        #expect(texture.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]))
    }

    @Test("--depth-out and --mask-out have the photo's upright size; --preview is a PNG")
    func sideOutputs() async throws {
        let dir = try Checkout.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        // 64x40 stored, EXIF orientation 6: upright it is 40x64.
        var stored = Image(width: 64, height: 40, filledWith: [90, 120, 150])
        for y in 10..<30 { for x in 20..<44 { stored.pixels.replaceSubrange((y * 64 + x) * 3..<(y * 64 + x) * 3 + 3, with: [200, 60, 40]) } }
        let oriented = TestFixtures.png(try PNGEncoder.encode(stored), withOrientation: 6)
        try Data(oriented).write(to: dir.appendingPathComponent("rotated.png"))
        let photo = dir.appendingPathComponent("rotated.png").path
        let result = try await MeshTool.run([photo, "--mode", "relief", "-o", dir.appendingPathComponent("m.ply").path, "--depth-out", dir.appendingPathComponent("d.pfm").path,
                                       "--mask-out", dir.appendingPathComponent("mask.png").path, "--preview", dir.appendingPathComponent("p.png").path, "--quiet"])
        try #require(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.isEmpty)
        let pfm = try #require(PFM.decode([UInt8](try Data(contentsOf: dir.appendingPathComponent("d.pfm")))))
        #expect(pfm.width == 40 && pfm.height == 64)
        let mask = try ImageDecoder.decode([UInt8](try Data(contentsOf: dir.appendingPathComponent("mask.png")))).image
        #expect(mask.width == 40 && mask.height == 64)
        #expect(pfm.values.allSatisfy { $0 > 0 && $0.isFinite })
        for name in ["mask.png", "p.png"] {
            #expect(try Data(contentsOf: dir.appendingPathComponent(name)).prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]))
        }
        let ply = try String(contentsOf: dir.appendingPathComponent("m.ply"), encoding: .isoLatin1)
        #expect(ply.hasPrefix("ply\n"))
    }

    @Test("a corrupt photo among good ones: exit 65, the good ones are written")
    func corruptAmongGood() async throws {
        let dir = try Checkout.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        var truncated = [UInt8](try Data(contentsOf: Checkout.samples.appendingPathComponent("dresser.jpg")))
        truncated.removeLast(truncated.count / 2)
        try Data(truncated).write(to: dir.appendingPathComponent("broken.jpg"))
        try Data("<html><body>404</body></html>".utf8).write(to: dir.appendingPathComponent("page.jpg"))
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("out"), withIntermediateDirectories: true)
        let good = Checkout.root.appendingPathComponent("Tests/WorkerTestSupport/Fixtures/photo_1.png").path
        let result = try await MeshTool.run([dir.appendingPathComponent("broken.jpg").path, good, dir.appendingPathComponent("page.jpg").path, "--mode", "relief", "-o", dir.appendingPathComponent("out").path, "--json"])
        #expect(result.status == 65, "\(result.stderr)")
        #expect(result.stderr.contains("broken.jpg") && result.stderr.contains("truncated"))
        #expect(result.stderr.contains("page.jpg") && result.stderr.contains("HTML"))
        let reports = try JSONDecoder().decode([CommandSummary].self, from: Data(result.stdout.utf8))
        #expect(reports.map(\.ok) == [false, true, false])
        #expect(reports.map(\.errorCode) == ["truncated", nil, "not_an_image"])
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/photo_1.obj").path))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/broken.obj").path))
    }

    @Test("1x1, 10000x10 and 4000x40 photos are bad input: exit 65 with their codes, not an internal error")
    func unusablePhotos() async throws {
        let dir = try Checkout.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(PNGEncoder.encode(Image(width: 1, height: 1, filledWith: [128, 128, 128]))).write(to: dir.appendingPathComponent("dot.png"))
        try Data(PNGEncoder.encode(Image(width: 10000, height: 10, filledWith: [128, 128, 128]))).write(to: dir.appendingPathComponent("strip.png"))
        try Data(PNGEncoder.encode(Image(width: 4000, height: 40, filledWith: [128, 128, 128]))).write(to: dir.appendingPathComponent("band.png"))
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("out"), withIntermediateDirectories: true)
        let result = try await MeshTool.run([dir.appendingPathComponent("dot.png").path, dir.appendingPathComponent("strip.png").path, dir.appendingPathComponent("band.png").path, "-o", dir.appendingPathComponent("out").path, "--json"])
        #expect(result.status == 65, "\(result.stderr)")
        let reports = try JSONDecoder().decode([CommandSummary].self, from: Data(result.stdout.utf8))
        // 10000x10 is refused for its 10-pixel side before its aspect is looked at.
        #expect(reports.map(\.errorCode) == ["image_too_small", "image_too_small", "bad_aspect_ratio"])
        #expect(result.stderr.contains("1x1") && result.stderr.contains("10000x10") && result.stderr.contains("4000x40"), "\(result.stderr)")
    }

    @Test("--mask and --height: the given silhouette, a model in metres, and the size in --json and the text line")
    func maskAndHeight() async throws {
        let dir = try Checkout.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        var photo = Image(width: 120, height: 90, filledWith: [90, 110, 130])
        var mask = Image(width: 120, height: 90, filledWith: [0, 0, 0])
        for y in 20..<70 {
            for x in 40..<80 {
                photo.pixels.replaceSubrange((y * 120 + x) * 3..<(y * 120 + x) * 3 + 3, with: [200, 80, 40])
                mask.pixels.replaceSubrange((y * 120 + x) * 3..<(y * 120 + x) * 3 + 3, with: [255, 255, 255])
            }
        }
        try Data(PNGEncoder.encode(photo)).write(to: dir.appendingPathComponent("box.png"))
        try Data(PNGEncoder.encode(mask)).write(to: dir.appendingPathComponent("box_mask.png"))
        let result = try await MeshTool.run([dir.appendingPathComponent("box.png").path, "--mask", dir.appendingPathComponent("box_mask.png").path, "--height", "0.8", "--volume", "64", "-o", dir.appendingPathComponent("box.obj").path, "--json"])
        try #require(result.status == 0, "\(result.stderr)")
        let summary = try #require(try JSONDecoder().decode([CommandSummary].self, from: Data(result.stdout.utf8)).first?.summary)
        #expect(summary.maskSource == .file && summary.mode == .object && summary.sizeSource == .givenHeight)
        #expect(abs((summary.size?.height ?? 0) - 0.8) < 1e-4)
        let bounds = try #require(try OBJReader.read(dir.appendingPathComponent("box.obj")).bounds)
        #expect(abs(bounds.size.y - 0.8) < 1e-3 && abs(bounds.min.y) < 1e-3)
        let text = try await MeshTool.run([dir.appendingPathComponent("box.png").path, "--mask", dir.appendingPathComponent("box_mask.png").path, "--height", "0.8", "--volume", "64", "-o", dir.appendingPathComponent("box2.obj").path])
        #expect(text.status == 0 && text.stdout.contains("size: ") && text.stdout.contains("x 0.80 m"), "\(text.stdout)")
        // A mask that is not of the photo's shape is bad input; --mask with several photos is a usage error.
        try Data(PNGEncoder.encode(Image(width: 50, height: 50, filledWith: [255, 255, 255]))).write(to: dir.appendingPathComponent("square.png"))
        let wrong = try await MeshTool.run([dir.appendingPathComponent("box.png").path, "--mask", dir.appendingPathComponent("square.png").path, "-o", dir.appendingPathComponent("box3.obj").path, "--json"])
        #expect(wrong.status == 65 && wrong.stdout.contains("bad_mask"), "\(wrong.stderr)")
        #expect(try await MeshTool.run([dir.appendingPathComponent("box.png").path, dir.appendingPathComponent("box.png").path, "--mask", dir.appendingPathComponent("box_mask.png").path]).status == 64)
    }

    @Test("mesh network writes the raw outputs the engine's model gives for the same pixels")
    func networkOutputs() async throws {
        let dir = try Checkout.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let photos = ["cube.jpg", "dresser.jpg"].map { Checkout.samples.appendingPathComponent($0) }
        let result = try await MeshTool.run(["network"] + photos.map(\.path) + ["-o", dir.appendingPathComponent("out.f32").path, "--size", "64", "--threads", "2"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("1×3×64×64"))
        let data = try Data(contentsOf: dir.appendingPathComponent("out.f32"))
        let plane = 64 * 64
        try #require(data.count == 2 * 3 * plane * 4)
        let written = data.withUnsafeBytes { raw in
            (0..<(data.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
        // The same inference in this process, single-threaded.
        let engine = try ImageTo3D(weights: Checkout.weights)
        let model = engine.depthModel
        for (index, photo) in photos.enumerated() {
            let image = try ImageDecoder.decode(contentsOf: photo).image.resized(width: 64, height: 64)
            let workspace = Workspace()
            let expected = try model.predict(
                model.makeInput(pixels: image.pixels, width: 64, height: 64, channels: image.channels, workspace: workspace),
                workspace: workspace).toArray()
            let got = Array(written[(index * 3 * plane)..<((index + 1) * 3 * plane)])
            let worst = zip(got, expected).map { abs($0 - $1) / max(abs($1), 1) }.max()!
            #expect(worst < 1e-5, "image \(index): worst relative difference \(worst)")
            #expect(got[0..<plane].allSatisfy { $0 > 0 } && got[(2 * plane)...].allSatisfy { $0 >= 0 && $0 <= 1 })
            #expect(zip(got[0..<plane], got[plane..<(2 * plane)]).allSatisfy { $0 <= $1 })
        }
        let bad = try await MeshTool.run(["network", Checkout.root.appendingPathComponent("README.md").path, "-o", dir.appendingPathComponent("x.f32").path])
        #expect(bad.status == 65 && bad.stderr.contains("README.md"), "\(bad.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("x.f32").path))
    }

    @Test("mesh samples/room.jpg in auto mode writes a relief and reports P(room)")
    func roomPhotoThroughTheCommand() async throws {
        let dir = try Checkout.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let photo = Checkout.samples.appendingPathComponent("room.jpg").path
        let result = try await MeshTool.run([photo, "--json", "-o", dir.appendingPathComponent("room.obj").path])
        try #require(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
        let summary = try #require(object.first?["summary"] as? [String: Any])
        #expect(summary["mode"] as? String == "relief", "\(summary)")
        let probability = try #require(summary["roomProbability"] as? Double)
        #expect(probability >= 0.5)
    }

    @Test("mesh --depth: a map of the wrong aspect or not a PFM exits 65; --back-depth alone is a usage error")
    func command() async throws {
        let dir = try Checkout.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let photo = Checkout.samples.appendingPathComponent("cube.jpg").path   // 1024×768
        try Data(PFM.encode(width: 40, height: 40, values: [Float](repeating: 1, count: 1600))).write(to: dir.appendingPathComponent("square.pfm"))
        try Data("hello".utf8).write(to: dir.appendingPathComponent("text.pfm"))
        let square = try await MeshTool.run([photo, "--depth", dir.appendingPathComponent("square.pfm").path, "-o", dir.appendingPathComponent("a.obj").path])
        #expect(square.status == 65 && square.stderr.contains("aspect"), "\(square.stderr)")
        let text = try await MeshTool.run([photo, "--depth", dir.appendingPathComponent("text.pfm").path, "-o", dir.appendingPathComponent("b.obj").path])
        #expect(text.status == 65 && text.stderr.contains("text.pfm"), "\(text.stderr)")
        let alone = try await MeshTool.run([photo, "--back-depth", dir.appendingPathComponent("square.pfm").path])
        #expect(alone.status == 64, "\(alone.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("a.obj").path))
    }

    @Test("usage errors exit 64", arguments: [["--threads", "0", "x.jpg"], ["--mode", "sideways", "x.jpg"], []])
    func usage(arguments: [String]) async throws {
        let result = try await MeshTool.run(arguments)
        #expect(result.status == 64, "\(result.stderr)")
    }
}

