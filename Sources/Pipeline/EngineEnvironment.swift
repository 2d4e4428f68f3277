import DepthNet
import Foundation

/// What the executables (`mesh`, `mesh-worker`) take from their process for the engine, as a
/// value the library is given: where the project's own weights are looked for and which kernels
/// the network runs on. The library itself reads no environment variable.
public struct EngineEnvironment: Sendable, Equatable {
    /// The folders looked in for the project's own weights, in order.
    public var weightSearchPath: [URL]
    /// The network's kernels (`DEPTHNET_KERNELS`: `blas`, `avx2`; default automatic).
    public var kernels: KernelChoice

    public init(weightSearchPath: [URL], kernels: KernelChoice = .automatic) {
        self.weightSearchPath = weightSearchPath
        self.kernels = kernels
    }

    /// The settings of a process with these environment variables, started as `executable` in
    /// `currentDirectory`. Weights are looked for in `$MYROOM_WEIGHTS`; then `Weights/` (or
    /// `share/myroom-3d/Weights/`) beside the executable or up to four folders above it (a
    /// `swift build` tree, an install prefix); then `Weights/` in the current directory.
    public init(environment: [String: String], executable: URL, currentDirectory: URL) {
        var candidates: [URL] = []
        if let folder = environment["MYROOM_WEIGHTS"], !folder.isEmpty {
            candidates.append(URL(fileURLWithPath: folder))
        }
        var dir = executable.resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<5 {
            candidates.append(dir.appendingPathComponent("Weights"))
            candidates.append(dir.appendingPathComponent("share/myroom-3d/Weights"))
            dir = dir.deletingLastPathComponent()
        }
        candidates.append(currentDirectory.appendingPathComponent("Weights"))
        self.init(weightSearchPath: candidates, kernels: KernelChoice(setting: environment["DEPTHNET_KERNELS"]))
    }

    /// The first folder on ``weightSearchPath`` that holds the project's own weights (`mrdepth.json`).
    public var ownWeights: URL? {
        weightSearchPath.first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("mrdepth.json").path) }
    }
}
