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
    /// Hugging Face Depth-Anything-V2 folder, in which case the project's own weights in
    /// `shapeWeights` are loaded too, for the mask and back surface), for the network to run on
    /// `kernels`.
    public init(weights directory: URL, shapeWeights: URL? = nil, kernels: KernelChoice = .automatic) throws(PipelineError) {
        let model: DepthModel
        do { model = try DepthModel.load(directory: directory, kernels: kernels) } catch { throw .model(error) }
        weightsDirectory = directory
        depthModel = model
        switch model {
        case .mrdepth(let net):
            shapeModel = model
            trainedFieldOfView = Float(net.config.fovDegrees ?? 60)
        case .depthAnything:
            guard let own = shapeWeights else {
                throw .invalidOptions("Depth Anything gives front depth only; the project's own weights (for the mask and back surface) were not found")
            }
            let shape: DepthModel
            do { shape = try DepthModel.load(directory: own, kernels: kernels) } catch { throw .model(error) }
            guard case .mrdepth(let net) = shape else {
                throw .invalidOptions("\(own.path) does not hold the project's own mrdepth weights")
            }
            shapeModel = shape
            trainedFieldOfView = Float(net.config.fovDegrees ?? 60)
        }
    }

    /// Loads `weights`, or without them the project's own weights found on the environment's
    /// search path (which also gives a Depth Anything folder its own weights), with its kernels.
    public convenience init(weights directory: URL?, environment: EngineEnvironment) throws(PipelineError) {
        guard let directory = directory ?? environment.ownWeights else {
            throw .invalidOptions("no weights found: pass --weights DIR or set MYROOM_WEIGHTS (searched: "
                + environment.weightSearchPath.map(\.path).joined(separator: ", ") + ")")
        }
        try self.init(weights: directory, shapeWeights: environment.ownWeights, kernels: environment.kernels)
    }

    /// Sets the process-wide OpenBLAS thread count. A command running one photo at a time
    /// gives it every core; a worker running N pipelines at once on N cores sets 1.
    public static func setNetworkThreads(_ threads: Int) {
        BLASThreads.set(threads)
    }

    // MARK: Running

    /// Decodes `bytes`, estimates depth, meshes and writes `<base>.<ext>` for each format.
    /// A cut-out photo (a PNG with a non-trivial alpha channel) uses its alpha as the mask;
    /// `mask` (any image of the photo's upright size or aspect: white = object, or its alpha
    /// when it has one) overrides both. `depth` replaces the network's front (and back) depth.
    public func run(imageBytes bytes: [UInt8], output base: URL, options: PipelineOptions, mask: Image? = nil,
                    depth: GivenDepth? = nil) throws(PipelineError) -> PipelineResult {
        var timer = StageTimer()
        let decoded: DecodedImage
        do { decoded = try ImageDecoder.decode(bytes, limits: options.limits) } catch { throw .image(error) }
        timer.lap("decode")
        return try run(decoded: decoded, output: base, options: options, mask: mask, depth: depth, timer: timer)
    }

    /// As `run(imageBytes:)`, for an already decoded photo.
    public func run(decoded: DecodedImage, output base: URL, options: PipelineOptions, mask: Image? = nil,
                    depth: GivenDepth? = nil) throws(PipelineError) -> PipelineResult {
        try run(decoded: decoded, output: base, options: options, mask: mask, depth: depth, timer: StageTimer())
    }

    func run(decoded: DecodedImage, output base: URL, options: PipelineOptions, mask userMask: Image?, depth givenDepth: GivenDepth?,
             timer start: StageTimer) throws(PipelineError) -> PipelineResult {
        var timer = start
        try ImageTo3D.validate(options)
        try PhotoRequirements.check(width: decoded.image.width, height: decoded.image.height)
        // The silhouette the user gave, at the photo's size: a mask file, else a cut-out's alpha.
        var given: (values: [Float], source: MaskSource)?
        if let userMask {
            given = (try Silhouette.fileMask(userMask, photoWidth: decoded.image.width, photoHeight: decoded.image.height), .file)
        } else if let alpha = Silhouette.alphaMask(decoded.image) {
            given = (alpha, .alpha)
        }
        // A cut-out is shown to the network on a neutral grey, not on the white of a page.
        let photo = given?.source == .alpha ? decoded.image.flattened(over: (128, 128, 128)) : decoded.image.flattened()
        let (fov, fovSource) = fieldOfView(options: options, decoded: decoded)
        var estimate = try estimateDepth(photo, options: options, fieldOfView: fov)
        if let given {
            estimate.maps.mask = FloatMap.areaResize(given.values, width: photo.width, height: photo.height,
                                                     to: estimate.maps.width, estimate.maps.height)
        }
        if let givenDepth {
            try givenDepth.apply(to: &estimate.maps, photoWidth: photo.width, photoHeight: photo.height)
            estimate.depthModelName = givenDepth.back == nil ? "given+\(estimate.depthModelName)" : "given"
            estimate.metric = false   // units unknown: the size comes from --height, if at all
        }
        timer.lap("depth")

        let maps = estimate.maps
        let mode: PipelineOptions.Mode
        switch options.mode {
        case .auto where given != nil: mode = .object   // the user marked the object
        case .auto: mode = AutoModeRule().choose(mask: maps.mask, width: maps.width, height: maps.height,
                                                 roomProbability: estimate.roomProbability)
        default: mode = options.mode
        }
        var mesh: Mesh
        var scale: Float? = nil
        var cameraPosition: SIMD3<Float>? = nil
        var size: ObjectSize? = nil
        var volumeResolution: Int? = nil
        var symmetric = false
        var silhouette = maps
        do {
            switch mode {
            case .object, .auto:
                silhouette = ImageTo3D.silhouetteMaps(maps, photo: photo, given: given?.values, options: options)
                let camera = PinholeCamera(width: silhouette.width, height: silhouette.height, verticalFieldOfView: fov)
                if options.symmetry, let plane = MirrorSymmetry.find(silhouette, camera: camera) {
                    silhouette = MirrorSymmetry.complete(silhouette, camera: camera, plane: plane)
                    symmetric = true
                }
                var o = ObjectMesher.Options()
                o.resolution = Silhouette.volumeResolution(
                    mask: silhouette.mask, width: silhouette.width, height: silhouette.height, threshold: o.maskThreshold,
                    base: options.volumeResolution, limit: options.maxVolumeResolution)
                volumeResolution = o.resolution
                // Taubin smoothing diffuses over about √iterations edges: a finer grid needs more
                // iterations for the same smoothing in the object's own units.
                let finer = Float(o.resolution) / Float(options.volumeResolution)
                o.smoothingIterations = Int((Float(options.smoothingIterations) * min(finer * finer, 4)).rounded())
                o.threads = options.threads
                o.featurePreservingIterations = options.featurePreservingIterations
                var result = try ObjectMesher(options: o).mesh(silhouette, camera: camera, photo: photo)
                // The mesher gives a height of 1; the real height is the user's, or the carved
                // object's own in metres when the depth is metric.
                let real: (Float, SizeSource)? = options.objectHeight.map { ($0, .givenHeight) }
                    ?? (estimate.metric && result.scale > 0 ? (1 / result.scale, .metricDepth) : nil)
                if let (height, source) = real {
                    result.mesh.scale(by: height)
                    result.scale *= height
                    if let b = result.mesh.bounds {
                        size = ObjectSize(width: b.size.x, depth: b.size.z, height: b.size.y, source: source)
                    }
                }
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
                let camera = PinholeCamera(width: maps.width, height: maps.height, verticalFieldOfView: fov)
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
            fovDegrees: fov, fovSource: fovSource, maskSource: given?.source ?? .network,
            volumeResolution: volumeResolution, symmetric: mode == .relief ? nil : symmetric, size: size, sizeSource: size?.source ?? .unknown,
            scale: scale, cameraPosition: cameraPosition.map { [$0.x, $0.y, $0.z] },
            roomProbability: estimate.roomProbability,
            depthModel: estimate.depthModelName, milliseconds: timer.stages)
        return PipelineResult(summary: summary, mesh: mesh, maps: maps, silhouette: silhouette, photo: photo)
    }

    /// The camera's vertical field of view and where it came from: the options, the photo's
    /// EXIF 35 mm equivalent focal length, or the weights' default.
    func fieldOfView(options: PipelineOptions, decoded: DecodedImage) -> (Float, FieldOfViewSource) {
        if let fov = options.fovDegrees { return (fov, .given) }
        if let focal = decoded.focalLength35mm,
           let fov = ImageTo3D.verticalFieldOfView(focalLength35mm: focal, width: decoded.image.width, height: decoded.image.height) {
            return (fov, .exif)
        }
        return (trainedFieldOfView, .default)
    }

    /// The vertical field of view of a `width`×`height` (upright) photo whose lens has the 35 mm
    /// equivalent focal length `focal` mm. The equivalence is by the diagonal (43.27 mm for a
    /// 36×24 mm frame), which holds for any aspect. Nil outside 1…179°.
    public static func verticalFieldOfView(focalLength35mm focal: Int, width: Int, height: Int) -> Float? {
        guard focal > 0, width > 0, height > 0 else { return nil }
        let diagonal = (36.0 * 36.0 + 24.0 * 24.0).squareRoot()
        let side = diagonal * Double(height) / (Double(width * width + height * height)).squareRoot()
        let fov = Float(2 * atan(side / (2 * Double(focal))) * 180 / Double.pi)
        return PipelineOptions.isValidFieldOfView(fov) ? fov : nil
    }

    /// The maps object mode carves, at up to `options.silhouetteResolution` on the longer side:
    /// the depth of the object's own pixels (each background pixel takes the depth of the nearest
    /// object pixel at network resolution, so thin parts the network could not resolve get the
    /// object's depth, not the floor's), upsampled; and the mask at that size: the given one
    /// (area-averaged), or the network's, cleaned, upsampled and snapped to the photo's edges.
    static func silhouetteMaps(_ maps: DepthMaps, photo: Image, given: [Float]?, options: PipelineOptions) -> DepthMaps {
        let long = min(max(photo.width, photo.height), max(options.silhouetteResolution, max(maps.width, maps.height)))
        let (w, h) = mapSize(photoWidth: photo.width, photoHeight: photo.height, networkWidth: long, networkHeight: long)
        var coarse = maps
        if given == nil { coarse.mask = MaskCleanup.clean(maps.mask, width: maps.width, height: maps.height) }
        let (front, back) = objectDepth(coarse)
        var mask: [Float]
        if let given {
            mask = FloatMap.areaResize(given, width: photo.width, height: photo.height, to: w, h)
            mask = MaskCleanup.clean(mask, width: w, height: h, radius: 0, fillHoles: false)
        } else if w == maps.width && h == maps.height {
            mask = coarse.mask
        } else {
            let guide = photo.resized(width: w, height: h)
            let up = FloatMap.resample(coarse.mask, width: maps.width, height: maps.height, to: w, h)
            let radius = max(2, Int((2.5 * Float(w) / Float(maps.width)).rounded()))
            mask = Silhouette.guided(up, photo: guide, radius: radius)
            mask = MaskCleanup.clean(mask, width: w, height: h, radius: 1)
        }
        return DepthMaps(width: w, height: h,
                         front: FloatMap.resample(front, width: maps.width, height: maps.height, to: w, h),
                         back: FloatMap.resample(back, width: maps.width, height: maps.height, to: w, h), mask: mask)
    }

    /// Front and back depth where every pixel outside the mask's interior (the mask eroded by
    /// `rim` pixels) is filled from the interior ring by ring, each pixel the mean of its
    /// 8 neighbours already filled: a smooth continuation, not the steps a nearest-pixel copy
    /// leaves. A network's depth blurs into the background over the last pixels of an object:
    /// kept, that steep skirt becomes fins along the silhouette. The mask's own pixels outside
    /// the interior (its rim and its thin parts: legs, stems, poles, which vanish in the erosion)
    /// are then relaxed to a membrane over the mask, held by the interior: a pole between a ball
    /// and a base ramps from one to the other, where the ring fill would meet in a step halfway
    /// and the mesher would carve the pole in two. The maps are unchanged when the mask is empty.
    static func objectDepth(_ maps: DepthMaps, threshold: Float = 0.5, rim: Int = 2) -> ([Float], [Float]) {
        var front = maps.front, back = maps.back
        let w = maps.width, h = maps.height
        let inside = maps.mask.map { $0 >= threshold }
        var interior = MaskCleanup.erode(inside, w, h, rim)
        if !interior.contains(true) { interior = inside }
        guard interior.contains(true) else { return (front, back) }
        let rings = ringFill(&front, &back, width: w, height: h, sources: interior)
        let free = (0..<(w * h)).filter { inside[$0] && !interior[$0] }
        // (every pixel has a ring: the interior is not empty and the grid is connected)
        let farthest = free.map { rings[$0] }.max() ?? 0
        guard farthest > 1 else { return (front, back) }
        relaxOnMask(&front, &back, width: w, height: h, free: free, inside: inside,
                    iterations: min(4 * Int(farthest) + 8, 1_000))
        _ = ringFill(&front, &back, width: w, height: h, sources: inside)
        return (front, back)
    }

    private static let neighbours = [(-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1)]

    /// Fills every pixel that is not a source, ring by ring outwards from the sources (breadth-first
    /// over 8-neighbours), with the mean of its neighbours in earlier rings. Returns each pixel's ring
    /// (0 for a source; `Int32.max` everywhere when there is none).
    private static func ringFill(_ front: inout [Float], _ back: inout [Float], width w: Int, height h: Int,
                                 sources: [Bool]) -> [Int32] {
        var ring = sources.map { $0 ? Int32(0) : Int32.max }
        var frontier = ring.indices.filter { ring[$0] == 0 }
        var level: Int32 = 0
        while !frontier.isEmpty {
            level += 1
            var next: [Int] = []
            for k in frontier {
                let x = k % w, y = k / w
                for (dx, dy) in neighbours {
                    let u = x + dx, v = y + dy
                    guard u >= 0, v >= 0, u < w, v < h, ring[v * w + u] == Int32.max else { continue }
                    ring[v * w + u] = level
                    next.append(v * w + u)
                }
            }
            for k in next {
                let x = k % w, y = k / w
                var f: Float = 0, b: Float = 0, n: Float = 0
                for (dx, dy) in neighbours {
                    let u = x + dx, v = y + dy
                    guard u >= 0, v >= 0, u < w, v < h, ring[v * w + u] < level else { continue }
                    f += front[v * w + u]; b += back[v * w + u]; n += 1
                }
                front[k] = f / n; back[k] = b / n
            }
            frontier = next
        }
        return ring
    }

    /// Successive over-relaxation of the `free` pixels towards the mean of their 8 neighbours inside
    /// the mask (the others are held; the mask's edge is a free boundary): a discrete membrane.
    private static func relaxOnMask(_ front: inout [Float], _ back: inout [Float], width w: Int, height h: Int,
                                    free: [Int], inside: [Bool], iterations: Int) {
        let omega: Float = 1.8
        let tolerance = 1e-5 * max(free.reduce(Float(0)) { max($0, abs(front[$1]), abs(back[$1])) }, 1e-6)
        for _ in 0..<iterations {
            var change: Float = 0
            for k in free {
                let x = k % w, y = k / w
                var f: Float = 0, b: Float = 0, n: Float = 0
                for (dx, dy) in neighbours {
                    let u = x + dx, v = y + dy
                    guard u >= 0, v >= 0, u < w, v < h, inside[v * w + u] else { continue }
                    f += front[v * w + u]; b += back[v * w + u]; n += 1
                }
                guard n > 0 else { continue }
                let df = omega * (f / n - front[k]), db = omega * (b / n - back[k])
                front[k] += df; back[k] += db
                change = max(change, abs(df), abs(db))
            }
            if change < tolerance { break }
        }
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
        if !volumes.contains(options.maxVolumeResolution) {
            throw .invalidOptions("maximum volume resolution must be between \(volumes.lowerBound) and \(volumes.upperBound), not \(options.maxVolumeResolution)")
        }
        if !resolutions.contains(options.silhouetteResolution) {
            throw .invalidOptions("silhouette resolution must be between \(resolutions.lowerBound) and \(resolutions.upperBound), not \(options.silhouetteResolution)")
        }
        if let height = options.objectHeight, !(height > 0 && height < 1000) {
            throw .invalidOptions("the object's height must be between 0 and 1000 metres, not \(height)")
        }
    }

    // MARK: Depth

    /// The depth maps of `photo` (RGB), at network resolution with the photo's aspect. Weights
    /// trained on metric depth (`metric_depth` in their config) give metres for a camera of
    /// vertical field of view `fieldOfView` (default: the options', else the weights').
    public func estimateDepth(_ photo: Image, options: PipelineOptions, fieldOfView: Float? = nil) throws(PipelineError) -> DepthEstimate {
        let (shape, sw, sh, heads) = try infer(shapeModel, photo, longSide: options.resolution, threads: options.threads)
        let (mw, mh) = ImageTo3D.mapSize(photoWidth: photo.width, photoHeight: photo.height, networkWidth: sw, networkHeight: sh)
        var front = FloatMap.resample(shape[0], width: sw, height: sh, to: mw, mh)
        var back = FloatMap.resample(shape[1], width: sw, height: sh, to: mw, mh)
        var metric = false
        if case .mrdepth(let net) = shapeModel, let canonical = net.config.metricDepth {
            // Canonical-camera depth → metres: × (focal length in input pixels) / canonical focal length.
            // (Depth Anything's front, below, is fitted to these and so is in metres too.)
            let fov = fieldOfView ?? options.fovDegrees ?? trainedFieldOfView
            let focal = Float(sh) / 2 / tan(fov * .pi / 360)
            // Relative weights with a scale head: × exp(scale head) makes the front canonical depth.
            let factor = focal / Float(canonical.canonicalFocalPixels) * (heads.depthScale ?? 1)
            for i in 0..<front.count { front[i] *= factor; back[i] *= factor }
            metric = true
        }
        if case .mrdepth(let net) = shapeModel, let gain = net.config.thicknessGain, gain != 1 {
            // The weights' calibrated thickness (see `MRDepthConfig.thicknessGain`).
            let g = Float(gain)
            for i in 0..<front.count { back[i] = front[i] + g * max(back[i] - front[i], 0) }
        }
        let mask = FloatMap.resample(shape[2], width: sw, height: sh, to: mw, mh)
        var name = "mrdepth"
        if case .depthAnything = depthModel {
            // Front depth from Depth Anything (relative inverse depth), aligned by least
            // squares in disparity space to ours; the back keeps our thickness ratio.
            let (out, dw, dh, _) = try infer(depthModel, photo, longSide: nil, threads: options.threads)
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
                             networkWidth: sw, networkHeight: sh, depthModelName: name, metric: metric,
                             roomProbability: heads.roomProbability)
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

    /// What the heads of one inference say (nil for weights without the head).
    struct HeadOutputs {
        /// The scene head's P(room view).
        var roomProbability: Float?
        /// The scale head's factor from relative to canonical-camera depth.
        var depthScale: Float?
    }

    /// One inference: returns the output channels as planes, the input width/height and what the
    /// weights' heads say.
    func infer(_ model: DepthModel, _ photo: Image, longSide: Int?, threads: Int) throws(PipelineError) -> ([[Float]], Int, Int, HeadOutputs) {
        let (w, h) = ImageTo3D.inputSize(model, width: photo.width, height: photo.height, longSide: longSide)
        let mean = model.mean, std = model.std
        let input = photo.resized(width: w, height: h)
            .planarFloats(mean: (mean[0], mean[1], mean[2]), std: (std[0], std[1], std[2]))
        let workspace = workspaces.take()
        defer { workspaces.give(workspace) }
        workspace.threads = threads
        let output: Tensor, heads: HeadOutputs
        do {
            let prediction = try model.predictWithScene(Tensor(shape: [1, 3, h, w], values: input), workspace: workspace)
            output = prediction.maps
            heads = HeadOutputs(roomProbability: prediction.roomProbabilities?.first, depthScale: prediction.depthScales?.first)
        } catch {
            throw .model(error)
        }
        let values = output.toArray()
        let oh = output.shape[2], ow = output.shape[3]
        let plane = oh * ow
        let planes = (0..<output.shape[1]).map { c in Array(values[(c * plane)..<((c + 1) * plane)]) }
        if oh == h && ow == w { return (planes, w, h, heads) }
        // A model whose output is not at input size (not ours): bring it to input size.
        return (planes.map { FloatMap.resample($0, width: ow, height: oh, to: w, h) }, w, h, heads)
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
    /// Whether the depths are metres (weights trained on metric depth).
    public var metric: Bool = false
    /// The probability that the photo is a room view, not an object photo (weights with a scene head).
    public var roomProbability: Float? = nil
}

/// What a run produced: the machine-readable summary plus the mesh and maps themselves.
public struct PipelineResult: Sendable {
    public var summary: PipelineSummary
    public var mesh: Mesh
    /// The network's maps (network resolution, the photo's aspect), the mask replaced by a
    /// cut-out's or a given one when there was one.
    public var maps: DepthMaps
    /// Object mode: the maps the object was carved from (up to `silhouetteResolution`, the mask
    /// refined); in relief mode the same as `maps`.
    public var silhouette: DepthMaps
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
    /// Where `fovDegrees` came from.
    public var fovSource: FieldOfViewSource
    /// Where the object's silhouette came from.
    public var maskSource: MaskSource
    /// Object mode: the marching-cubes voxels along the object's longest side.
    public var volumeResolution: Int?
    /// Object mode: whether a mirror plane was found and the back completed from it.
    public var symmetric: Bool?
    /// Object mode: the model's size in metres, when it is known.
    public var size: ObjectSize?
    /// How the size was found (`unknown` until the network gives metric depth, unless the user
    /// gave the height).
    public var sizeSource: SizeSource
    /// Object mode: output = (camera-frame point − anchor) × scale.
    public var scale: Float?
    /// Object mode: the camera's position in the output frame (it looks along −Z).
    public var cameraPosition: [Float]?
    /// The scene head's probability that the photo is a room view (weights that have one); `--mode auto`
    /// makes a relief at 0.5 or more.
    public var roomProbability: Float?
    public var depthModel: String
    /// Milliseconds per stage, in order: decode, depth, mesh, write (and any added later).
    public var milliseconds: [StageTime]
}

/// Where the field of view came from.
public enum FieldOfViewSource: String, Sendable, Codable, Equatable {
    /// `PipelineOptions.fovDegrees` (`mesh --fov`).
    case given
    /// The photo's EXIF `FocalLengthIn35mmFilm`.
    case exif
    /// The weights' `fov_degrees` (60 when they have none).
    case `default`
}

/// How an object model's real size was found.
public enum SizeSource: String, Sendable, Codable, Equatable {
    /// The user gave the real height (`mesh --height`).
    case givenHeight = "given_height"
    /// The network's metric depth and the camera's field of view.
    case metricDepth = "metric_depth"
    /// Not known: the model has a height of 1.
    case unknown
}

/// An object model's extent in metres along the output frame's axes.
public struct ObjectSize: Sendable, Codable, Equatable {
    public var width: Float
    public var depth: Float
    public var height: Float
    public var source: SizeSource
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
