import DepthNet
import Foundation
import Imaging
import MeshIO
import Meshing

/// The engine both front ends call: photo bytes in, model files out.
///
/// Load it once (the weights are read and the batch-norms folded at load time) and call
/// `run` from any number of threads: the instance is immutable and every call has its
/// own workspace.
public final class ImageTo3D: Sendable {
    /// The network that gives the front depth: ours, or Depth Anything V2 when pointed at it.
    public let depthModel: DepthModel
    /// Our own network, which always gives the mask and the back surface.
    public let shapeModel: DepthModel
    /// The camera field of view the weights were trained around (degrees).
    public let trainedFieldOfView: Float
    /// Where the weights came from.
    public let weightsDirectory: URL
    /// Network workspaces kept between runs, so steady-state inference allocates no
    /// activation buffers: a run takes one (or makes one) and gives it back.
    private let workspaces = WorkspacePool()

    /// Loads the weights in `directory` (ours: `mrdepth.json` + `mrdepth.safetensors`; or a
    /// Hugging Face Depth-Anything-V2 folder, in which case our own default weights are
    /// loaded too, from `shapeWeights` or the default location, for the mask and back surface).
    public init(weights directory: URL? = nil, shapeWeights: URL? = nil) throws(PipelineError) {
        guard let directory = directory ?? ImageTo3D.defaultWeightsDirectory() else {
            throw .invalidOptions("no weights found: pass --weights DIR or set MYROOM_WEIGHTS (searched: "
                + ImageTo3D.weightSearchPath().map(\.path).joined(separator: ", ") + ")")
        }
        let model: DepthModel
        do { model = try DepthModel.load(directory: directory) } catch { throw .model(error) }
        weightsDirectory = directory
        depthModel = model
        switch model {
        case .mrdepth(let net):
            shapeModel = model
            trainedFieldOfView = Float(net.config.fovDegrees ?? 60)
        case .depthAnything:
            guard let own = shapeWeights ?? ImageTo3D.defaultWeightsDirectory() else {
                throw .invalidOptions("Depth Anything gives front depth only; the project's own weights (for the mask and back surface) were not found")
            }
            let shape: DepthModel
            do { shape = try DepthModel.load(directory: own) } catch { throw .model(error) }
            guard case .mrdepth(let net) = shape else {
                throw .invalidOptions("\(own.path) does not hold the project's own mrdepth weights")
            }
            shapeModel = shape
            trainedFieldOfView = Float(net.config.fovDegrees ?? 60)
        }
    }

    /// Sets the process-wide OpenBLAS thread count. A command running one photo at a time
    /// gives it every core; a worker running N pipelines at once on N cores sets 1.
    public static func setNetworkThreads(_ threads: Int) {
        BLASThreads.set(threads)
    }

    // MARK: Weights location

    /// Where default weights are looked for, in order: `$MYROOM_WEIGHTS`; `Weights/` beside
    /// the executable or up to four folders above it (a `swift build` tree); `Weights/` in
    /// the current directory; the source checkout this was built from.
    public static func weightSearchPath() -> [URL] {
        var candidates: [URL] = []
        if let env = ProcessInfo.processInfo.environment["MYROOM_WEIGHTS"], !env.isEmpty {
            candidates.append(URL(fileURLWithPath: env))
        }
        var dir = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<5 {
            candidates.append(dir.appendingPathComponent("Weights"))
            candidates.append(dir.appendingPathComponent("share/myroom-3d/Weights"))
            dir = dir.deletingLastPathComponent()
        }
        candidates.append(URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("Weights"))
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(source.appendingPathComponent("Weights"))
        return candidates
    }

    /// The first folder on `weightSearchPath()` that holds `mrdepth.json`.
    public static func defaultWeightsDirectory() -> URL? {
        weightSearchPath().first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("mrdepth.json").path) }
    }

    // MARK: Running

    /// Decodes `bytes`, estimates depth, meshes and writes `<base>.<ext>` for each format.
    public func run(imageBytes bytes: [UInt8], output base: URL, options: PipelineOptions) throws(PipelineError) -> PipelineResult {
        var timer = StageTimer()
        let decoded: DecodedImage
        do { decoded = try ImageDecoder.decode(bytes, limits: options.limits) } catch { throw .image(error) }
        timer.lap("decode")
        return try run(decoded: decoded, output: base, options: options, timer: timer)
    }

    /// As `run(imageBytes:)`, for an already decoded photo.
    public func run(decoded: DecodedImage, output base: URL, options: PipelineOptions) throws(PipelineError) -> PipelineResult {
        try run(decoded: decoded, output: base, options: options, timer: StageTimer())
    }

    func run(decoded: DecodedImage, output base: URL, options: PipelineOptions, timer start: StageTimer) throws(PipelineError) -> PipelineResult {
        var timer = start
        try ImageTo3D.validate(options)
        try PhotoRequirements.check(width: decoded.image.width, height: decoded.image.height)
        let photo = decoded.image.flattened()
        let estimate = try estimateDepth(photo, options: options)
        timer.lap("depth")

        let fov = options.fovDegrees ?? trainedFieldOfView
        let maps = estimate.maps
        let camera = PinholeCamera(width: maps.width, height: maps.height, verticalFieldOfView: fov)
        let mode = options.mode == .auto
            ? AutoModeRule().choose(mask: maps.mask, width: maps.width, height: maps.height)
            : options.mode
        var mesh: Mesh
        var scale: Float? = nil
        var cameraPosition: SIMD3<Float>? = nil
        do {
            switch mode {
            case .object, .auto:
                var o = ObjectMesher.Options()
                o.resolution = options.volumeResolution
                o.smoothingIterations = options.smoothingIterations
                o.threads = options.threads
                var cleaned = maps
                cleaned.mask = MaskCleanup.clean(maps.mask, width: maps.width, height: maps.height)
                let result = try ObjectMesher(options: o).mesh(cleaned, camera: camera, photo: photo)
                mesh = result.mesh
                scale = result.scale
                cameraPosition = result.cameraPosition
                if options.texture {
                    mesh.uvs = mesh.positions.map { p in
                        let cameraFrame = p / result.scale + result.anchor
                        guard let (pixel, _) = camera.project(cameraFrame) else { return SIMD2(0.5, 0.5) }
                        return (pixel / SIMD2(Float(camera.width), Float(camera.height))).clamped(lowerBound: SIMD2(repeating: 0), upperBound: SIMD2(repeating: 1))
                    }
                }
            case .relief:
                var o = ReliefMesher.Options()
                o.maxError = options.reliefMaxError
                o.vertexColors = true
                mesh = try ReliefMesher(options: o).mesh(DepthMaps(width: maps.width, height: maps.height, depth: maps.front),
                                                         camera: camera, photo: photo)
            }
        } catch {
            throw .meshing(error)
        }
        if mesh.normals == nil { mesh.computeNormals() }
        timer.lap("mesh")

        let files = try write(mesh, photo: photo, base: base, options: options)
        timer.lap("write")

        let report = mesh.edgeReport()
        let summary = PipelineSummary(
            mode: mode, files: files.map(\.path), vertices: mesh.vertexCount, faces: mesh.triangleCount,
            watertight: report.isWatertight, consistentlyWound: report.isConsistentlyWound,
            photoWidth: photo.width, photoHeight: photo.height,
            networkWidth: estimate.networkWidth, networkHeight: estimate.networkHeight,
            fovDegrees: fov, scale: scale, cameraPosition: cameraPosition.map { [$0.x, $0.y, $0.z] },
            depthModel: estimate.depthModelName, milliseconds: timer.stages)
        return PipelineResult(summary: summary, mesh: mesh, maps: maps, photo: photo)
    }

    static func validate(_ options: PipelineOptions) throws(PipelineError) {
        let resolutions = PipelineOptions.resolutionRange, volumes = PipelineOptions.volumeResolutionRange
        let fovBounds = PipelineOptions.fieldOfViewBounds
        if let r = options.resolution, !resolutions.contains(r) {
            throw .invalidOptions("network resolution must be between \(resolutions.lowerBound) and \(resolutions.upperBound), not \(r)")
        }
        if !volumes.contains(options.volumeResolution) {
            throw .invalidOptions("volume resolution must be between \(volumes.lowerBound) and \(volumes.upperBound), not \(options.volumeResolution)")
        }
        if let fov = options.fovDegrees, !PipelineOptions.isValidFieldOfView(fov) {
            throw .invalidOptions("field of view must be between \(fovBounds.lower) and \(fovBounds.upper) degrees, not \(fov)")
        }
        if options.threads < 1 { throw .invalidOptions("threads must be at least 1") }
    }

    // MARK: Depth

    /// The depth maps of `photo` (RGB), at network resolution with the photo's aspect.
    public func estimateDepth(_ photo: Image, options: PipelineOptions) throws(PipelineError) -> DepthEstimate {
        let (shape, sw, sh) = try infer(shapeModel, photo, longSide: options.resolution)
        let (mw, mh) = ImageTo3D.mapSize(photoWidth: photo.width, photoHeight: photo.height, networkWidth: sw, networkHeight: sh)
        var front = FloatMap.resample(shape[0], width: sw, height: sh, to: mw, mh)
        var back = FloatMap.resample(shape[1], width: sw, height: sh, to: mw, mh)
        let mask = FloatMap.resample(shape[2], width: sw, height: sh, to: mw, mh)
        var name = "mrdepth"
        if case .depthAnything = depthModel {
            // Front depth from Depth Anything (relative inverse depth), aligned by least
            // squares in disparity space to ours; the back keeps our thickness ratio.
            let (out, dw, dh) = try infer(depthModel, photo, longSide: nil)
            let disparity = FloatMap.resample(out[0], width: dw, height: dh, to: mw, mh)
            let target = front.map { 1 / max($0, 1e-6) }
            let (s, t) = FloatMap.fitScaleShift(disparity, to: target)
            for i in 0..<front.count {
                let ratio = back[i] / max(front[i], 1e-6)
                let aligned = s * disparity[i] + t
                front[i] = 1 / max(aligned, 1e-3)
                back[i] = front[i] * ratio
            }
            name = "depth-anything-v2+mrdepth"
        }
        return DepthEstimate(maps: DepthMaps(width: mw, height: mh, front: front, back: back, mask: mask),
                             networkWidth: sw, networkHeight: sh, depthModelName: name)
    }

    /// The maps' size: the network's longer side kept, the other side giving the photo's aspect.
    static func mapSize(photoWidth: Int, photoHeight: Int, networkWidth: Int, networkHeight: Int) -> (Int, Int) {
        if photoWidth >= photoHeight {
            return (networkWidth, max(1, Int((Double(networkWidth) * Double(photoHeight) / Double(photoWidth)).rounded())))
        }
        return (max(1, Int((Double(networkHeight) * Double(photoWidth) / Double(photoHeight)).rounded())), networkHeight)
    }

    /// Network input size: the longer side `longSide` (rounded to the model's multiple),
    /// the shorter side in proportion, rounded to the multiple.
    static func inputSize(_ model: DepthModel, width: Int, height: Int, longSide: Int?) -> (Int, Int) {
        let m = model.sizeMultiple
        let preferred = model.preferredInputSize
        let long = max(m, ((longSide ?? max(preferred.width, preferred.height)) + m / 2) / m * m)
        let ratio = Double(min(width, height)) / Double(max(width, height))
        let short = max(m, Int((Double(long) * ratio / Double(m)).rounded()) * m)
        return width >= height ? (long, short) : (short, long)
    }

    /// One inference: returns the output channels as planes, and the input width/height.
    func infer(_ model: DepthModel, _ photo: Image, longSide: Int?) throws(PipelineError) -> ([[Float]], Int, Int) {
        let (w, h) = ImageTo3D.inputSize(model, width: photo.width, height: photo.height, longSide: longSide)
        let mean = model.mean, std = model.std
        let input = photo.resized(width: w, height: h)
            .planarFloats(mean: (mean[0], mean[1], mean[2]), std: (std[0], std[1], std[2]))
        let workspace = workspaces.take()
        defer { workspaces.give(workspace) }
        let output: Tensor
        do { output = try model.predict(Tensor(shape: [1, 3, h, w], values: input), workspace: workspace) } catch {
            throw .model(error)
        }
        let values = output.toArray()
        let oh = output.shape[2], ow = output.shape[3]
        let plane = oh * ow
        let planes = (0..<output.shape[1]).map { c in Array(values[(c * plane)..<((c + 1) * plane)]) }
        if oh == h && ow == w { return (planes, w, h) }
        // A model whose output is not at input size (not ours): bring it to input size.
        return (planes.map { FloatMap.resample($0, width: ow, height: oh, to: w, h) }, w, h)
    }

    // MARK: Files

    func write(_ mesh: Mesh, photo: Image, base: URL, options: PipelineOptions) throws(PipelineError) -> [URL] {
        var files: [URL] = []
        let formats = PipelineOptions.Format.allCases.filter { options.formats.contains($0) }
        let texture = options.texture ? photo.fitted(maxSide: options.maxTextureSide) : nil
        var textured = mesh
        if texture != nil { textured.colors = nil }
        do {
            try FileManager.default.createDirectory(at: base.deletingLastPathComponent(), withIntermediateDirectories: true)
        } catch {
            throw .output(.io(path: base.deletingLastPathComponent().path, reason: "\(error)"))
        }
        do {
            for format in formats {
                let url = base.appendingPathExtension(format.rawValue)
                switch format {
                case .obj: files += try OBJWriter.write(textured, to: url, texture: texture)
                case .glb: try GLBWriter.write(textured, to: url, texture: texture); files.append(url)
                case .ply: try PLYWriter.write(mesh, to: url); files.append(url)
                }
            }
        } catch {
            throw .output(error)
        }
        return files
    }
}

/// Depth maps at network resolution, shaped like the photo.
public struct DepthEstimate: Sendable {
    public var maps: DepthMaps
    public var networkWidth: Int
    public var networkHeight: Int
    public var depthModelName: String
}

/// What a run produced: the machine-readable summary plus the mesh and maps themselves.
public struct PipelineResult: Sendable {
    public var summary: PipelineSummary
    public var mesh: Mesh
    public var maps: DepthMaps
    /// The upright RGB photo.
    public var photo: Image
}

/// The `--json` summary and the worker's result event payload.
public struct PipelineSummary: Sendable, Codable, Equatable {
    public var mode: PipelineOptions.Mode
    public var files: [String]
    public var vertices: Int
    public var faces: Int
    public var watertight: Bool
    public var consistentlyWound: Bool
    public var photoWidth: Int
    public var photoHeight: Int
    public var networkWidth: Int
    public var networkHeight: Int
    /// Vertical field of view of the camera the model was built with.
    public var fovDegrees: Float
    /// Object mode: output = (camera-frame point − anchor) × scale.
    public var scale: Float?
    /// Object mode: the camera's position in the output frame (it looks along −Z).
    public var cameraPosition: [Float]?
    public var depthModel: String
    /// Milliseconds per stage, in order: decode, depth, mesh, write (and any added later).
    public var milliseconds: [StageTime]
}

/// One stage's duration.
public struct StageTime: Sendable, Codable, Equatable {
    public var stage: String
    public var milliseconds: Double
}

/// Times consecutive stages.
struct StageTimer {
    private var last = ContinuousClock.now
    private(set) var stages: [StageTime] = []

    mutating func lap(_ name: String) {
        let now = ContinuousClock.now
        let d = last.duration(to: now)
        stages.append(StageTime(stage: name, milliseconds: Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15))
        last = now
    }
}

/// Idle network workspaces, shared by the threads that run the engine.
final class WorkspacePool: @unchecked Sendable {
    private let lock = NSLock()
    private var idle: [Workspace] = []

    func take() -> Workspace {
        lock.withLock { idle.popLast() } ?? Workspace()
    }

    func give(_ workspace: Workspace) {
        lock.withLock { idle.append(workspace) }
    }
}
