import CBLAS
import Foundation

/// A loaded depth network of one of the supported architectures.
///
/// `DepthModel` is immutable and `Sendable`: load it once and share it between threads; give
/// each concurrent inference its own ``Workspace``.
public enum DepthModel: Sendable {
    /// The project's own network (front, back, mask).
    case mrdepth(MRDepthUNet)
    /// Depth Anything V2 (relative inverse depth).
    case depthAnything(DepthAnythingV2)

    /// Loads a model directory, detecting the architecture from its config:
    /// - `mrdepth.json` (`"architecture": "mrdepth-unet"`) + `mrdepth.safetensors`;
    /// - or a Hugging Face `config.json` with `"model_type": "depth_anything"` + `model.safetensors`
    ///   (as published for Depth-Anything-V2-Small); a `config.json` with `"architecture": "mrdepth-unet"`
    ///   is read as an mrdepth config with `model.safetensors` or `mrdepth.safetensors`.
    /// `kernels`: what the layers run on (see ``KernelChoice``).
    /// - Throws: ``DepthNetError`` naming the missing file, the malformed config or safetensors file,
    ///   or every missing or mismatched tensor.
    public static func load(directory: URL, kernels: KernelChoice = .automatic) throws(DepthNetError) -> DepthModel {
        let fm = FileManager.default
        let mrdepthConfig = directory.appendingPathComponent("mrdepth.json")
        let hfConfig = directory.appendingPathComponent("config.json")
        let configURL: URL
        if fm.fileExists(atPath: mrdepthConfig.path) {
            configURL = mrdepthConfig
        } else if fm.fileExists(atPath: hfConfig.path) {
            configURL = hfConfig
        } else {
            throw .fileNotFound(path: mrdepthConfig.path + " or " + hfConfig.path)
        }
        let json = try readJSON(configURL)
        let candidates = json["model_type"] as? String == DepthAnythingV2.modelType
            ? ["model.safetensors"]
            : (configURL == mrdepthConfig ? ["mrdepth.safetensors", "model.safetensors"] : ["model.safetensors", "mrdepth.safetensors"])
        let weights = candidates.map { directory.appendingPathComponent($0) }
        guard let weightsURL = weights.first(where: { fm.fileExists(atPath: $0.path) }) else {
            throw .fileNotFound(path: weights[0].path)
        }
        return try load(config: configURL, weights: weightsURL, kernels: kernels)
    }

    /// Loads a model from an explicit config file and safetensors file.
    public static func load(config configURL: URL, weights weightsURL: URL,
                            kernels: KernelChoice = .automatic) throws(DepthNetError) -> DepthModel {
        let json = try readJSON(configURL)
        let weights = try SafeTensorsFile(contentsOf: weightsURL)
        if let architecture = json["architecture"] as? String {
            guard architecture == MRDepthUNet.architectureName else { throw .unsupportedArchitecture(architecture) }
            let config: MRDepthConfig
            do {
                config = try JSONDecoder().decode(MRDepthConfig.self, from: Data(contentsOf: configURL))
            } catch {
                throw .malformedConfig(path: configURL.path, reason: "\(error)")
            }
            return .mrdepth(try MRDepthUNet(config: config, weights: weights, kernels: kernels))
        }
        if let modelType = json["model_type"] as? String {
            guard modelType == DepthAnythingV2.modelType else { throw .unsupportedArchitecture(modelType) }
            let config = try DepthAnythingConfig(json: json, path: configURL.path)
            return .depthAnything(try DepthAnythingV2(config: config, weights: weights, kernels: kernels))
        }
        throw .malformedConfig(path: configURL.path, reason: "neither \"architecture\" nor \"model_type\" is given")
    }

    static func readJSON(_ url: URL) throws(DepthNetError) -> [String: Any] {
        guard FileManager.default.fileExists(atPath: url.path) else { throw .fileNotFound(path: url.path) }
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw .unreadable(path: url.path, reason: "\(error)") }
        guard let object = try? JSONSerialization.jsonObject(with: data), let json = object as? [String: Any] else {
            throw .malformedConfig(path: url.path, reason: "not a JSON object")
        }
        return json
    }

    /// Input height and width must be multiples of this (32 for mrdepth, the patch size 14 for Depth Anything).
    public var sizeMultiple: Int {
        switch self {
        case .mrdepth: MRDepthUNet.sizeMultiple
        case .depthAnything(let model): model.config.patchSize
        }
    }

    /// The input size the model was made for, (height, width): mrdepth's `input_size`, 518×518 for Depth Anything.
    public var preferredInputSize: (height: Int, width: Int) {
        switch self {
        case .mrdepth(let model):
            let size = model.config.inputSize ?? [256, 256]
            return (size[0], size.count > 1 ? size[1] : size[0])
        case .depthAnything(let model): return (model.config.imageSize, model.config.imageSize)
        }
    }

    /// Per-channel mean subtracted from RGB in [0, 1] before inference.
    public var mean: [Float] {
        switch self {
        case .mrdepth(let model): model.config.mean
        case .depthAnything: [0.485, 0.456, 0.406]
        }
    }

    /// Per-channel standard deviation RGB in [0, 1] is divided by after subtracting ``mean``.
    public var std: [Float] {
        switch self {
        case .mrdepth(let model): model.config.std
        case .depthAnything: [0.229, 0.224, 0.225]
        }
    }

    /// Names of the output channels: `["front", "back", "mask"]` or `["predicted_depth"]`.
    public var outputNames: [String] {
        switch self {
        case .mrdepth: ["front", "back", "mask"]
        case .depthAnything: ["predicted_depth"]
        }
    }

    /// Runs one inference on a normalised `[N, 3, H, W]` input; returns `[N, C, H, W]` with the
    /// channels of ``outputNames``. For mrdepth this is ``MRDepthUNet/predict(_:workspace:)`` (two passes
    /// when its config asks for flip averaging).
    /// - Throws: ``DepthNetError/invalidInput(_:)`` if the shape does not fit the model.
    public func predict(_ input: Tensor, workspace: Workspace) throws(DepthNetError) -> Tensor {
        switch self {
        case .mrdepth(let model): try model.predict(input, workspace: workspace)
        case .depthAnything(let model): try model.forward(input, workspace: workspace)
        }
    }

    /// ``predict(_:workspace:)`` and, for weights with a scene head, each image's probability of being a
    /// room view rather than an object photo, and for weights with a scale head each image's factor from
    /// relative to canonical-camera depth (nil otherwise).
    public func predictWithScene(_ input: Tensor, workspace: Workspace) throws(DepthNetError)
        -> (maps: Tensor, roomProbabilities: [Float]?, depthScales: [Float]?) {
        switch self {
        case .mrdepth(let model): try model.predictWithScene(input, workspace: workspace)
        case .depthAnything(let model): (try model.forward(input, workspace: workspace), nil, nil)
        }
    }

    /// Floating-point operations of one inference at `height × width` (2 per multiply-add).
    public func flops(height: Int, width: Int) -> Double {
        switch self {
        case .mrdepth(let model): model.flops(height: height, width: width)
        case .depthAnything(let model): model.flops(height: height, width: width)
        }
    }
}

/// The BLAS thread setting.
///
/// Debian 12's OpenBLAS 0.3.21 (pthreads build) has one process-wide thread count, no per-call
/// or per-thread setting. A service running N inferences at once on N cores sets it to 1 once,
/// before starting its pool (`BLASThreads.set(1)`), so each inference runs on its own thread
/// with single-threaded GEMMs; a single interactive inference leaves it at the default (all
/// cores, or `OPENBLAS_NUM_THREADS`).
public enum BLASThreads {
    /// The number of threads OpenBLAS uses for one call.
    public static var current: Int { Int(openblas_get_num_threads()) }

    /// Sets the process-wide OpenBLAS thread count (≥ 1).
    public static func set(_ threads: Int) {
        openblas_set_num_threads(Int32(max(1, threads)))
    }
}

extension BLASThreads {
    /// OpenBLAS's build and kernel description, e.g. `"OpenBLAS 0.3.21 … DYNAMIC_ARCH … Prescott …"`:
    /// the kernel name shows which CPU type OpenBLAS picked at start-up.
    public static var configuration: String { String(cString: openblas_get_config()) }

    /// Measures `cblas_sgemm` throughput on `size`³ square matrices with the current thread
    /// setting: the best of `repetitions` runs, in GFLOP/s (2·size³ per run).
    public static func measureSGEMMPeak(size: Int = 1024, repetitions: Int = 5) -> Double {
        let a = [Float](repeating: 0.5, count: size * size), b = [Float](repeating: 0.25, count: size * size)
        var c = [Float](repeating: 0, count: size * size)
        var best = Double.infinity
        for _ in 0...repetitions {    // the first run warms up
            let start = DispatchTime.now().uptimeNanoseconds
            c.withUnsafeMutableBufferPointer { cp in
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(size), Int32(size), Int32(size),
                            1, a, Int32(size), b, Int32(size), 0, cp.baseAddress!, Int32(size))
            }
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return 2 * pow(Double(size), 3) / best / 1e9
    }
}

extension DepthModel {
    /// Converts 8-bit interleaved pixels (RGB or RGBA, rows top to bottom, alpha ignored) into
    /// the model's normalised planar input `[1, 3, height, width]`: (value / 255 − mean) / std.
    /// The caller resizes the image to a size that fits the model (``sizeMultiple``) first.
    /// - Precondition: `pixels.count == width · height · channels`, `channels` is 3 or 4.
    public func makeInput(pixels: [UInt8], width: Int, height: Int, channels: Int = 3, workspace: Workspace? = nil) -> Tensor {
        precondition(channels == 3 || channels == 4, "makeInput: 3 or 4 channels")
        precondition(pixels.count == width * height * channels, "makeInput: \(pixels.count) bytes for \(width)×\(height)×\(channels)")
        let plane = width * height
        let tensor = workspace?.make([1, 3, height, width]) ?? Tensor(shape: [1, 3, height, width], pool: nil)
        let (mean, std) = (self.mean, self.std)
        pixels.withUnsafeBufferPointer { source in
            for c in 0..<3 {
                let scale = 1 / (255 * std[c]), offset = -mean[c] / std[c]
                let out = tensor.base + c * plane
                for i in 0..<plane { out[i] = Float(source[i * channels + c]) * scale + offset }
            }
        }
        return tensor
    }
}
