import DepthNet
import Foundation
import Imaging
import MeshIO
import Meshing
import Testing
import WorkerTestSupport
@testable import Pipeline

/// Runs the built `mesh` executable (a dependency of this test target) on the bundled
/// samples with the committed weights.
enum MeshTool {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let samples = root.appendingPathComponent("samples")

    static func executable() throws -> URL {
        var candidates: [URL] = []
        if let executable = Bundle.main.executableURL { candidates.append(executable.deletingLastPathComponent()) }
        let argv0 = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        candidates += [argv0, argv0.deletingLastPathComponent(), argv0.deletingLastPathComponent().deletingLastPathComponent()]
        for directory in candidates {
            let url = directory.appendingPathComponent("mesh")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        throw ToolError(message: "mesh executable not found near \(candidates.map(\.path))")
    }

    struct ToolError: Error, CustomStringConvertible { var message: String; var description: String { message } }

    struct Output { var status: Int32; var stdout: String; var stderr: String }

    /// Runs `mesh` with `arguments` in `directory`, waiting on a thread of its own (not one of
    /// the cooperative pool's, which the broker tests' async code needs).
    static func run(_ arguments: [String], in directory: URL) async throws -> Output {
        try await offCooperativePool { try runBlocking(arguments, in: directory) }
    }

    static func runBlocking(_ arguments: [String], in directory: URL) throws -> Output {
        let process = Process()
        process.executableURL = try executable()
        process.arguments = arguments
        process.currentDirectoryURL = directory
        var environment = ProcessInfo.processInfo.environment
        environment["MYROOM_WEIGHTS"] = root.appendingPathComponent("Weights").path
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read before waiting so a full pipe cannot block the child.
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self))
    }

    static func scratch() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("mesh-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
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
        let dir = try MeshTool.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let photo = MeshTool.samples.appendingPathComponent("cube.jpg").path
        let result = try await MeshTool.run([photo, "--mode", "object", "--volume", "64", "-o", "out/cube.obj",
                                       "--format", "glb", "--json"], in: dir)
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
        let dir = try MeshTool.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let photo = MeshTool.samples.appendingPathComponent("room.jpg").path
        let result = try await MeshTool.run([photo, "--mode", "relief", "--texture", "-o", "room.obj", "--resolution", "128"], in: dir)
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
        let dir = try MeshTool.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        // 64x40 stored, EXIF orientation 6: upright it is 40x64.
        var stored = Image(width: 64, height: 40, filledWith: [90, 120, 150])
        for y in 10..<30 { for x in 20..<44 { stored.pixels.replaceSubrange((y * 64 + x) * 3..<(y * 64 + x) * 3 + 3, with: [200, 60, 40]) } }
        let oriented = TestFixtures.png(try PNGEncoder.encode(stored), withOrientation: 6)
        try Data(oriented).write(to: dir.appendingPathComponent("rotated.png"))
        let photo = dir.appendingPathComponent("rotated.png").path
        let result = try await MeshTool.run([photo, "--mode", "relief", "-o", "m.ply", "--depth-out", "d.pfm",
                                       "--mask-out", "mask.png", "--preview", "p.png", "--quiet"], in: dir)
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
        let dir = try MeshTool.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        var truncated = [UInt8](try Data(contentsOf: MeshTool.samples.appendingPathComponent("dresser.jpg")))
        truncated.removeLast(truncated.count / 2)
        try Data(truncated).write(to: dir.appendingPathComponent("broken.jpg"))
        try Data("<html><body>404</body></html>".utf8).write(to: dir.appendingPathComponent("page.jpg"))
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("out"), withIntermediateDirectories: true)
        let good = MeshTool.root.appendingPathComponent("Tests/WorkerTestSupport/Fixtures/photo_1.png").path
        let result = try await MeshTool.run(["broken.jpg", good, "page.jpg", "--mode", "relief", "-o", "out", "--json"], in: dir)
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
        let dir = try MeshTool.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(PNGEncoder.encode(Image(width: 1, height: 1, filledWith: [128, 128, 128]))).write(to: dir.appendingPathComponent("dot.png"))
        try Data(PNGEncoder.encode(Image(width: 10000, height: 10, filledWith: [128, 128, 128]))).write(to: dir.appendingPathComponent("strip.png"))
        try Data(PNGEncoder.encode(Image(width: 4000, height: 40, filledWith: [128, 128, 128]))).write(to: dir.appendingPathComponent("band.png"))
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("out"), withIntermediateDirectories: true)
        let result = try await MeshTool.run(["dot.png", "strip.png", "band.png", "-o", "out", "--json"], in: dir)
        #expect(result.status == 65, "\(result.stderr)")
        let reports = try JSONDecoder().decode([CommandSummary].self, from: Data(result.stdout.utf8))
        // 10000x10 is refused for its 10-pixel side before its aspect is looked at.
        #expect(reports.map(\.errorCode) == ["image_too_small", "image_too_small", "bad_aspect_ratio"])
        #expect(result.stderr.contains("1x1") && result.stderr.contains("10000x10") && result.stderr.contains("4000x40"), "\(result.stderr)")
    }

    @Test("--mask and --height: the given silhouette, a model in metres, and the size in --json and the text line")
    func maskAndHeight() async throws {
        let dir = try MeshTool.scratch()
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
        let result = try await MeshTool.run(["box.png", "--mask", "box_mask.png", "--height", "0.8", "--volume", "64", "-o", "box.obj", "--json"], in: dir)
        try #require(result.status == 0, "\(result.stderr)")
        let summary = try #require(try JSONDecoder().decode([CommandSummary].self, from: Data(result.stdout.utf8)).first?.summary)
        #expect(summary.maskSource == .file && summary.mode == .object && summary.sizeSource == .givenHeight)
        #expect(abs((summary.size?.height ?? 0) - 0.8) < 1e-4)
        let bounds = try #require(try OBJReader.read(dir.appendingPathComponent("box.obj")).bounds)
        #expect(abs(bounds.size.y - 0.8) < 1e-3 && abs(bounds.min.y) < 1e-3)
        let text = try await MeshTool.run(["box.png", "--mask", "box_mask.png", "--height", "0.8", "--volume", "64", "-o", "box2.obj"], in: dir)
        #expect(text.status == 0 && text.stdout.contains("size: ") && text.stdout.contains("x 0.80 m"), "\(text.stdout)")
        // A mask that is not of the photo's shape is bad input; --mask with several photos is a usage error.
        try Data(PNGEncoder.encode(Image(width: 50, height: 50, filledWith: [255, 255, 255]))).write(to: dir.appendingPathComponent("square.png"))
        let wrong = try await MeshTool.run(["box.png", "--mask", "square.png", "-o", "box3.obj", "--json"], in: dir)
        #expect(wrong.status == 65 && wrong.stdout.contains("bad_mask"), "\(wrong.stderr)")
        #expect(try await MeshTool.run(["box.png", "box.png", "--mask", "box_mask.png"], in: dir).status == 64)
    }

    @Test("mesh network writes the raw outputs the engine's model gives for the same pixels")
    func networkOutputs() async throws {
        let dir = try MeshTool.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let photos = ["cube.jpg", "dresser.jpg"].map { MeshTool.samples.appendingPathComponent($0) }
        let result = try await MeshTool.run(["network"] + photos.map(\.path) + ["-o", "out.f32", "--size", "64", "--threads", "2"], in: dir)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("1×3×64×64"))
        let data = try Data(contentsOf: dir.appendingPathComponent("out.f32"))
        let plane = 64 * 64
        try #require(data.count == 2 * 3 * plane * 4)
        let written = data.withUnsafeBytes { raw in
            (0..<(data.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
        // The same inference in this process, single-threaded.
        let engine = try ImageTo3D(weights: MeshTool.root.appendingPathComponent("Weights"))
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
        let bad = try await MeshTool.run(["network", MeshTool.root.appendingPathComponent("README.md").path, "-o", "x.f32"], in: dir)
        #expect(bad.status == 65 && bad.stderr.contains("README.md"), "\(bad.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("x.f32").path))
    }

    @Test("usage errors exit 64", arguments: [["--threads", "0", "x.jpg"], ["--mode", "sideways", "x.jpg"], []])
    func usage(arguments: [String]) async throws {
        let result = try await MeshTool.run(arguments, in: try MeshTool.scratch())
        #expect(result.status == 64, "\(result.stderr)")
    }
}

