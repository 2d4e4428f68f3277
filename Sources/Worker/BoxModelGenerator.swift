import Foundation
import Imaging
#if canImport(Glibc)
import Glibc
#endif

/// A stand-in engine for plumbing checks and tests (a test double for the real `Pipeline`): it really
/// decodes the photo with `ImageDecoder` (so "not an image", "image too large" and corrupt files fail
/// exactly as with the engine), then writes a small but real OBJ — an axis-aligned box whose width
/// and height follow the photo's aspect ratio — atomically. `delay` holds the finished file under its
/// temporary name before the rename, standing for a long engine run in drain and crash tests (a
/// SIGKILL then leaves a real temporary file behind for the restart to clean up).
public struct BoxModelGenerator: ModelGenerating {
    /// Seconds between writing the temporary file and renaming it (simulated engine time).
    public var delay: Double
    public var decodeLimits: DecodeLimits

    public init(delay: Double = 0, decodeLimits: DecodeLimits = .default) {
        self.delay = delay
        self.decodeLimits = decodeLimits
    }

    public func generate(imageBytes: [UInt8], imageURL: URL, modelsDirectory: URL, baseName: String,
                         blasThreads: Int) throws -> GenerationResult {
        let start = DispatchTime.now()
        let decoded = try ImageDecoder.decode(imageBytes, limits: decodeLimits)
        let decodeMs = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6
        let meshStart = DispatchTime.now()
        let aspect = Double(decoded.image.width) / Double(max(1, decoded.image.height))
        let (w, h, d) = aspect >= 1 ? (1.0, 1.0 / aspect, 0.25) : (aspect, 1.0, 0.25)
        let obj = Self.boxOBJ(width: w, height: h, depth: d, name: baseName)
        let url = modelsDirectory.appendingPathComponent("\(baseName).obj")
        // Written under a temporary name, held there for `delay` (a long write), then renamed.
        let temporary = OutputStore.temporaryURL(for: url)
        try OutputStore.writeFile(Array(obj.utf8), to: temporary)
        if delay > 0 { Thread.sleep(forTimeInterval: delay) }
        guard rename(temporary.path, url.path) == 0 else {
            let failure = errno
            unlink(temporary.path)
            throw POSIXError(POSIXErrorCode(rawValue: failure) ?? .EIO)
        }
        let writeMs = Double(DispatchTime.now().uptimeNanoseconds - meshStart.uptimeNanoseconds) / 1e6
        return GenerationResult(modelFiles: [url], vertexCount: 8, faceCount: 12,
                                stageMilliseconds: ["decode": decodeMs, "mesh": writeMs])
    }

    /// A closed, outward-wound box: 8 vertices, 12 triangles, +Y up, lowest point at y = 0.
    static func boxOBJ(width: Double, height: Double, depth: Double, name: String) -> String {
        let x = width / 2, z = depth / 2
        var text = "# box stand-in written by mesh-worker's BoxModelGenerator\no \(name)\n"
        for (vx, vy, vz) in [(-x, 0.0, -z), (x, 0.0, -z), (x, height, -z), (-x, height, -z),
                             (-x, 0.0, z), (x, 0.0, z), (x, height, z), (-x, height, z)] {
            text += "v \(vx) \(vy) \(vz)\n"
        }
        let faces = [(1, 3, 2), (1, 4, 3), (5, 6, 7), (5, 7, 8), (1, 2, 6), (1, 6, 5),
                     (4, 8, 7), (4, 7, 3), (1, 5, 8), (1, 8, 4), (2, 3, 7), (2, 7, 6)]
        for (a, b, c) in faces { text += "f \(a) \(b) \(c)\n" }
        return text
    }
}
