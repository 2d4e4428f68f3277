import Foundation
import Imaging
import Testing
import WorkerTestSupport

/// The `mesh` executable itself, as a user runs it: the exit codes its main gives, the weights it
/// finds through MYROOM_WEIGHTS. (Everything else runs in process: see MeshCommandTests.)
@Suite("The mesh executable's exit codes")
struct ExitCodeTests {
    struct Output { var status: Int32; var stderr: String }

    /// Runs the built `mesh` in `directory` with MYROOM_WEIGHTS set to the committed weights.
    static func mesh(_ arguments: [String], in directory: URL) async throws -> Output {
        let executable = try BuiltProducts.executable("mesh")
        return try await offCooperativePool {
            let process = Process()
            process.executableURL = executable
            process.arguments = arguments
            process.currentDirectoryURL = directory
            var environment = ProcessInfo.processInfo.environment
            environment["MYROOM_WEIGHTS"] = Checkout.weights.path
            process.environment = environment
            let err = Pipe()
            process.standardOutput = FileHandle.nullDevice
            process.standardError = err
            try process.run()
            let stderr = err.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return Output(status: process.terminationStatus, stderr: String(decoding: stderr, as: UTF8.self))
        }
    }

    @Test("0 written, 65 bad input, 64 usage, 1 another failure (weights that cannot load)")
    func exitCodes() async throws {
        let dir = try Checkout.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(PNGEncoder.encode(Image(width: 96, height: 64, filledWith: [120, 90, 60]))).write(to: dir.appendingPathComponent("flat.png"))
        try Data("<html><body>404</body></html>".utf8).write(to: dir.appendingPathComponent("page.jpg"))
        let good = try await Self.mesh(["flat.png", "--mode", "relief", "--resolution", "64", "-o", "flat.obj", "--quiet"], in: dir)
        #expect(good.status == 0, "\(good.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("flat.obj").path))
        let bad = try await Self.mesh(["page.jpg", "-o", "page.obj"], in: dir)
        #expect(bad.status == 65 && bad.stderr.contains("page.jpg"), "\(bad.stderr)")
        let usage = try await Self.mesh(["--threads", "0", "flat.png"], in: dir)
        #expect(usage.status == 64 && usage.stderr.contains("--threads"), "\(usage.stderr)")
        let failure = try await Self.mesh(["flat.png", "--weights", dir.path, "-o", "x.obj"], in: dir)
        #expect(failure.status == 1 && failure.stderr.contains("mrdepth.json"), "\(failure.stderr)")
    }
}
