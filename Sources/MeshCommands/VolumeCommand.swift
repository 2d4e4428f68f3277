import ArgumentParser
import Foundation
import MeshIO
import Meshing
import Pipeline

/// `mesh volume RAW --dims X,Y,Z [--level L] [--threads N] -o OUT`: marching cubes on a
/// raw little-endian float32 volume (x fastest), so anyone can mesh exactly the same bytes.
struct VolumeCommand: MeshSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "volume",
        abstract: "Mesh a raw little-endian float32 volume (x fastest) with marching cubes.",
        discussion: "Samples greater than the level are inside. Prints triangles, vertices and milliseconds."
    )

    @Argument(help: "The raw volume file.")
    var raw: String

    @Option(help: "Grid size as X,Y,Z (samples).")
    var dims: String

    @Option(help: "Iso level.")
    var level: Float = 0

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: [.short, .customLong("output")], help: "Output file: .obj, .glb or .ply (omit to only time).")
    var output: String?

    @Option(help: "Mesh this many times and report the fastest run.")
    var repeats: Int = 1

    func validate() throws {
        guard parsedDims != nil else { throw ValidationError("--dims must be three positive integers X,Y,Z") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
        if let output, !["obj", "glb", "ply"].contains(URL(fileURLWithPath: output).pathExtension.lowercased()) {
            throw ValidationError("the output must end in .obj, .glb or .ply")
        }
    }

    var parsedDims: (Int, Int, Int)? {
        let parts = dims.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 3, parts.allSatisfy({ $0 > 0 }) else { return nil }
        return (parts[0], parts[1], parts[2])
    }

    func run(engine _: EngineEnvironment, console: Console) throws {
        let (nx, ny, nz) = parsedDims!
        guard let data = FileManager.default.contents(atPath: raw) else {
            throw ValidationError("cannot read \(raw)")
        }
        guard data.count == nx * ny * nz * 4 else {
            throw ValidationError("\(raw) has \(data.count) bytes; \(nx)x\(ny)x\(nz) float32 needs \(nx * ny * nz * 4)")
        }
        let values = [Float](unsafeUninitializedCapacity: nx * ny * nz) { out, count in
            data.withUnsafeBytes { src in
                for i in 0..<(nx * ny * nz) {
                    out[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
                }
            }
            count = nx * ny * nz
        }
        let mc = MarchingCubes(level: level, threads: threads)
        var best = Double.infinity, bestCPU = Double.infinity
        var mesh = Mesh()
        values.withUnsafeBufferPointer { v in
            for _ in 0..<repeats {
                mesh = Mesh()
                let start = DispatchTime.now().uptimeNanoseconds, cpuStart = processCPUSeconds()
                mesh = mc.mesh(values: v, width: nx, height: ny, depth: nz)
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
                bestCPU = min(bestCPU, (processCPUSeconds() - cpuStart) * 1e3)
            }
        }
        console.print("triangles \(mesh.triangleCount) vertices \(mesh.vertexCount) ms \(String(format: "%.2f", best))"
              + " cpu_ms \(String(format: "%.2f", bestCPU)) threads \(threads)")
        if let output {
            let url = URL(fileURLWithPath: output)
            switch url.pathExtension.lowercased() {
            case "glb": try GLBWriter.write(mesh, to: url)
            case "ply": try PLYWriter.write(mesh, to: url)
            default: try OBJWriter.write(mesh, to: url)
            }
        }
    }
}

/// CPU time of the whole process (all threads), in seconds.
func processCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
