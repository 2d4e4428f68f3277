import Foundation
import _DepthNetKernels

/// The config file of the project's own network (`mrdepth.json`).
public struct MRDepthConfig: Sendable, Equatable, Codable {
    /// Always `"mrdepth-unet"`.
    public var architecture: String
    /// Channel widths w0…w4 of the five resolution levels.
    public var widths: [Int]
    /// The input size the network was trained at, `[height, width]`.
    public var inputSize: [Int]?
    /// Per-channel normalisation mean (RGB in [0, 1]).
    public var mean: [Float]
    /// Per-channel normalisation standard deviation.
    public var std: [Float]
    /// Output channel names, normally `["front", "back", "mask"]`.
    public var outputs: [String]?
    /// What the depth values are measured in.
    public var depthUnits: String?
    /// The vertical field of view the training renders were centred on, in degrees.
    public var fovDegrees: Double?
    /// Format version.
    public var version: Int?
    /// Test-time flip averaging: ``MRDepthUNet/predict(_:workspace:)`` runs the input and its mirror
    /// image and averages the two outputs (the second mirrored back). Absent means false.
    public var flipAverage: Bool?
    /// Present when the front (and back) depth are canonical-camera metres: metric depth is the
    /// output × (the photo's focal length in network-input pixels) / `canonicalFocalPixels`.
    public var metricDepth: MetricDepth?
    /// Present when the weights carry the scene head (`scene.weight` `[1, w4]`, `scene.bias` `[1]`): one
    /// logit per image, P(room view) = sigmoid(scene.weight · mean of the last encoder stage + scene.bias).
    public var sceneHead: SceneHead?
    /// Calibration of the back surface, fitted on validation renders after training
    /// (`Training/scripts/fit_thickness_gain.py`): the engine multiplies the network's thickness
    /// (back − front) by it. A network trained with a squared error in log space regresses a
    /// thickness it is unsure of towards zero, and its objects come out flat. Absent means 1.
    public var thicknessGain: Double?

    /// How the scene head was made (informative; the tensors define it).
    public struct SceneHead: Sendable, Equatable, Codable {
        /// What it reads, `"mean of enc4"`.
        public var features: String?
        /// The classes of logit ≤ 0 and > 0: `["object", "room"]`.
        public var classes: [String]?

        public init(features: String? = "mean of enc4", classes: [String]? = ["object", "room"]) {
            self.features = features
            self.classes = classes
        }
    }

    /// How metric depth is read from the outputs (Metric3D's canonical camera).
    public struct MetricDepth: Sendable, Equatable, Codable {
        /// The canonical camera's focal length in network-input pixels.
        public var canonicalFocalPixels: Double
        /// Present when the weights carry the scale head (`scale.weight` `[1, w4 + 2]`, `scale.bias`
        /// `[1]`, fitted by `Training/scripts/fit_scale_head.py`): the front depth is relative and
        /// × exp(scale head) makes it canonical-camera depth. Absent: the outputs are canonical depth.
        public var scaleHead: ScaleHead?

        public init(canonicalFocalPixels: Double, scaleHead: ScaleHead? = nil) {
            self.canonicalFocalPixels = canonicalFocalPixels
            self.scaleHead = scaleHead
        }

        enum CodingKeys: String, CodingKey { case canonicalFocalPixels = "canonical_focal_px", scaleHead = "scale_head" }
    }

    /// How the scale head was made (informative; the tensors define it).
    public struct ScaleHead: Sendable, Equatable, Codable {
        /// What it reads: `"mean of enc4"` and the mask's two size features (``MRDepthUNet/scaleFeatures(pooled:mask:height:width:)``).
        public var features: String?

        public init(features: String? = "mean of enc4") { self.features = features }
    }

    enum CodingKeys: String, CodingKey {
        case architecture, widths, mean, std, outputs, version
        case inputSize = "input_size", depthUnits = "depth_units", fovDegrees = "fov_degrees"
        case flipAverage = "flip_average", metricDepth = "metric_depth", sceneHead = "scene_head"
        case thicknessGain = "thickness_gain"
    }

    /// The default configuration: widths [16, 32, 64, 128, 256], 256×256, ImageNet normalisation.
    public init(widths: [Int] = [16, 32, 64, 128, 256]) {
        architecture = MRDepthUNet.architectureName
        self.widths = widths
        inputSize = [256, 256]
        mean = [0.485, 0.456, 0.406]
        std = [0.229, 0.224, 0.225]
        outputs = ["front", "back", "mask"]
        depthUnits = "relative to median foreground front depth"
        fovDegrees = nil
        version = 1
    }
}

/// The project's own depth network "mrdepth-unet" (see Training/mrdepth/model.py).
///
/// A five-level U-Net of 3×3 conv + batch-norm + ReLU blocks (batch norms folded into the
/// convolutions at load time), bilinear ×2 upsampling with skip concatenations, and a 1×1 head
/// whose three raw channels are post-processed into front depth `exp(o0)`, back depth
/// `front·(1 + softplus(o1))` and foreground mask `sigmoid(o2)`.
public struct MRDepthUNet: Sendable {
    /// The `architecture` value in the config.
    public static let architectureName = "mrdepth-unet"
    /// Input height and width must be multiples of this.
    public static let sizeMultiple = 32

    struct Block: Sendable {
        var conv1: Conv2D
        var conv2: Conv2D

        /// conv1 then conv2, both with ReLU, on an input of `height × width` (plain, or conv1's
        /// zero-padded input when `inputIsPadded`). With batch 1 and the packed kernels, conv1 writes
        /// straight into conv2's zero-padded input, so conv2 makes no padded copy.
        func callAsFunction(_ x: Tensor, inputIsPadded: Bool = false, height h: Int, width w: Int,
                            workspace ws: Workspace) -> Tensor {
            let (oh, ow) = conv1.outputSize(height: h, width: w)
            if x.shape[0] == 1, conv1.writesPaddedOutput(height: h, width: w, activation: .relu),
               let middle = conv2.makePaddedInput(height: oh, width: ow, activation: .relu, workspace: ws) {
                if inputIsPadded {
                    conv1(padded: x, height: h, width: w, activation: .relu, intoPadded: middle, padding: conv2.padding, workspace: ws)
                } else {
                    conv1(x, activation: .relu, intoPadded: middle, padding: conv2.padding, workspace: ws)
                }
                return conv2(padded: middle, height: oh, width: ow, activation: .relu, workspace: ws)
            }
            let z = inputIsPadded ? conv1(padded: x, height: h, width: w, activation: .relu, workspace: ws)
                                  : conv1(x, activation: .relu, workspace: ws)
            return conv2(z, activation: .relu, workspace: ws)
        }
    }

    /// The configuration the weights were loaded with.
    public let config: MRDepthConfig
    /// The kernels the layers run on.
    public let kernels: KernelChoice
    let stem: Conv2D
    let encoders: [Block]   // enc1 … enc4
    let decoders: [Block]   // dec4 … dec1
    let headConv: Conv2D
    let headOut: Conv2D
    /// The scene head's weights (`w4` values) and bias, when the config has `scene_head`.
    let scene: (weight: [Float], bias: Float)?
    /// The scale head's weights (`w4 + 2` values) and bias, when the config's `metric_depth` has `scale_head`.
    let scale: (weight: [Float], bias: Float)?

    /// Builds the network from safetensors weights with PyTorch state-dict names.
    /// - Throws: ``DepthNetError/weightsMismatch(path:problems:)`` listing every missing or mis-shaped tensor,
    ///   ``DepthNetError/malformedConfig(path:reason:)`` for an unusable config.
    public init(config: MRDepthConfig, weights: SafeTensorsFile, kernels: KernelChoice = .automatic) throws(DepthNetError) {
        let w = config.widths
        guard w.count == 5, w.allSatisfy({ $0 > 0 }) else {
            throw .malformedConfig(path: "mrdepth config", reason: "widths must be 5 positive integers, got \(w)")
        }
        guard config.mean.count == 3, config.std.count == 3, config.std.allSatisfy({ $0 > 0 }) else {
            throw .malformedConfig(path: "mrdepth config", reason: "mean and std must have 3 entries (std > 0)")
        }
        if let gain = config.thicknessGain, !(gain > 0 && gain <= 100) {
            throw .malformedConfig(path: "mrdepth config", reason: "thickness_gain must be in (0, 100], got \(gain)")
        }
        let reader = WeightReader(weights)
        func convBNReLU(_ prefix: String, _ cin: Int, _ cout: Int, stride: Int = 1) -> Conv2D {
            var conv = Conv2D(weight: reader.tensor("\(prefix).conv.weight", [cout, cin, 3, 3]), bias: nil,
                              outChannels: cout, inChannels: cin, kernel: (3, 3), stride: stride, padding: 1,
                              kernels: kernels)
            conv.foldBatchNorm(gamma: reader.tensor("\(prefix).bn.weight", [cout]),
                               beta: reader.tensor("\(prefix).bn.bias", [cout]),
                               mean: reader.tensor("\(prefix).bn.running_mean", [cout]),
                               variance: reader.tensor("\(prefix).bn.running_var", [cout]), epsilon: 1e-5)
            return conv
        }
        stem = convBNReLU("stem", 3, w[0], stride: 2)
        encoders = (1...4).map { k in
            Block(conv1: convBNReLU("enc\(k).conv1", w[k - 1], w[k], stride: 2), conv2: convBNReLU("enc\(k).conv2", w[k], w[k]))
        }
        decoders = (1...4).reversed().map { k in
            Block(conv1: convBNReLU("dec\(k).conv1", w[k] + w[k - 1], w[k - 1]), conv2: convBNReLU("dec\(k).conv2", w[k - 1], w[k - 1]))
        }
        headConv = convBNReLU("head.conv1", w[0], w[0])
        headOut = Conv2D(weight: reader.tensor("head.out.weight", [3, w[0], 1, 1]), bias: reader.tensor("head.out.bias", [3]),
                         outChannels: 3, inChannels: w[0], kernel: (1, 1), kernels: kernels)
        scene = config.sceneHead == nil ? nil
            : (reader.tensor("scene.weight", [1, w[4]]), reader.tensor("scene.bias", [1])[0])
        scale = config.metricDepth?.scaleHead == nil ? nil
            : (reader.tensor("scale.weight", [1, w[4] + 2]), reader.tensor("scale.bias", [1])[0])
        try reader.finish()
        self.config = config
        self.kernels = kernels
    }

    /// Checks that `x` is `[N, 3, H, W]` with H and W positive multiples of 32.
    public static func validate(_ x: Tensor) throws(DepthNetError) {
        guard x.rank == 4, x.shape[1] == 3 else { throw .invalidInput("expected [N, 3, H, W], got \(x.shape)") }
        guard x.shape[0] > 0, x.height > 0, x.width > 0, x.height % sizeMultiple == 0, x.width % sizeMultiple == 0 else {
            throw .invalidInput("mrdepth-unet needs H and W multiples of \(sizeMultiple), got \(x.height)×\(x.width)")
        }
    }

    /// The raw head output `o`, `[N, 3, H, W]`, for a normalised input.
    public func raw(_ x: Tensor, workspace ws: Workspace) throws(DepthNetError) -> Tensor {
        try rawAndPooled(x, workspace: ws).raw
    }

    /// The raw head output and, per image, the spatial mean of the last encoder stage (`N × w4`, what
    /// the scene head reads).
    func rawAndPooled(_ x: Tensor, workspace ws: Workspace) throws(DepthNetError) -> (raw: Tensor, pooled: [[Float]]) {
        try Self.validate(x)
        var skips = [stem(x, activation: .relu, workspace: ws)]
        for block in encoders {
            skips.append(block(skips.last!, height: skips.last!.height, width: skips.last!.width, workspace: ws))
        }
        var y = skips.removeLast()
        let pooled = Ops.channelMeans(y)
        for block in decoders {
            let skip = skips.removeLast()
            if y.shape[0] == 1, let padded = block.conv1.makePaddedInput(height: skip.height, width: skip.width,
                                                                         activation: .relu, workspace: ws) {
                // Upsample and concatenate straight into conv1's zero-padded input.
                Ops.upsampleConcat(y, skip, intoPadded: padded, padding: block.conv1.padding, kernels: kernels, workspace: ws)
                y = block(padded, inputIsPadded: true, height: skip.height, width: skip.width, workspace: ws)
            } else {
                let joined = y.shape[0] == 1 ? Ops.upsampleConcat(y, skip, kernels: kernels, workspace: ws) : Ops.concatChannels(
                    [Ops.resizeBilinear(y, height: skip.height, width: skip.width, alignCorners: false, kernels: kernels, workspace: ws), skip],
                    workspace: ws)
                y = block(joined, height: skip.height, width: skip.width, workspace: ws)
            }
        }
        if y.shape[0] == 1, let padded = headConv.makePaddedInput(height: x.height, width: x.width, activation: .relu, workspace: ws) {
            Ops.resizeBilinear(y, alignCorners: false, intoPadded: padded, padding: headConv.padding, kernels: kernels, workspace: ws)
            y = headConv(padded: padded, height: x.height, width: x.width, activation: .relu, workspace: ws)
        } else {
            y = Ops.resizeBilinear(y, height: x.height, width: x.width, alignCorners: false, kernels: kernels, workspace: ws)
            y = headConv(y, activation: .relu, workspace: ws)
        }
        return (headOut(y, workspace: ws), pooled)
    }

    /// Runs the network: `[N, 3, H, W]` normalised input → `[N, 3, H, W]` = front, back, mask.
    public func forward(_ x: Tensor, workspace: Workspace) throws(DepthNetError) -> Tensor {
        try forwardWithScene(x, workspace: workspace).maps
    }

    /// ``forward(_:workspace:)``, the scene head's room logit per image (nil without a scene head) and
    /// the pooled features the heads read (`N × w4`).
    public func forwardWithScene(_ x: Tensor, workspace: Workspace) throws(DepthNetError) -> (maps: Tensor, roomLogits: [Float]?, pooled: [[Float]]) {
        let (o, pooled) = try rawAndPooled(x, workspace: workspace)
        let plane = x.height * x.width, level = kernels.vectorLevel
        for b in 0..<o.shape[0] {
            let p = o.base + b * 3 * plane
            // front = exp(o0), back = front·(1 + softplus(o1)), mask = sigmoid(o2), vectorised in C.
            Parallel.forEachChunk(plane, limit: workspace.loopThreads, minimumWork: 4) { _, pixels in
                let i = pixels.lowerBound
                mr_mrdepth_post(level, p + i, p + plane + i, p + 2 * plane + i, pixels.count)
            }
        }
        return (o, scene.map { head in pooled.map { Self.logit(head, $0) } }, pooled)
    }

    /// The scale head's input (`Training/mrdepth/model.py`, `scale_features`): the pooled features and,
    /// of the mask plane (`height × width`, thresholded at 0.5), log(max(√covered fraction, 0.01)) and
    /// log(max(fraction of the rows it spans, 0.01)).
    public static func scaleFeatures(pooled: [Float], mask: UnsafePointer<Float>, height: Int, width: Int) -> [Float] {
        var covered = 0, top = height, bottom = -1
        for r in 0..<height {
            var inRow = 0
            for c in 0..<width where mask[r * width + c] >= 0.5 { inRow += 1 }
            if inRow > 0 { covered += inRow; top = min(top, r); bottom = r }
        }
        let area = (Double(covered) / Double(max(height * width, 1))).squareRoot()
        let span = Double(max(bottom - top + 1, 0)) / Double(max(height, 1))
        return pooled + [Float(log(max(area, 0.01))), Float(log(max(span, 0.01)))]
    }

    static func logit(_ head: (weight: [Float], bias: Float), _ features: [Float]) -> Float {
        var sum = Double(head.bias)
        for (w, f) in zip(head.weight, features) { sum += Double(w) * Double(f) }
        return Float(sum)
    }

    /// What the engine runs: ``forward(_:workspace:)``, or with `flip_average` in the config the mean of
    /// `forward(x)` and the mirror image of `forward(mirror(x))` (two passes; the same post-processed maps
    /// averaged, as `Training/scripts/evaluate.py` does).
    public func predict(_ x: Tensor, workspace ws: Workspace) throws(DepthNetError) -> Tensor {
        try predictWithScene(x, workspace: ws).maps
    }

    /// ``predict(_:workspace:)`` and, with a scene head, each image's probability of being a room view
    /// (with flip averaging: the mean of the two passes' logits, as the head is linear in the features);
    /// with a scale head, each image's factor from the relative front depth to canonical-camera depth,
    /// exp(scale head) of the (averaged) pooled features and the (averaged) mask.
    public func predictWithScene(_ x: Tensor, workspace ws: Workspace) throws(DepthNetError)
        -> (maps: Tensor, roomProbabilities: [Float]?, depthScales: [Float]?) {
        let (maps, firstLogits, firstPooled) = try forwardWithScene(x, workspace: ws)
        var logits = firstLogits, pooled = firstPooled
        if config.flipAverage == true {
            let (second, mirroredLogits, mirroredPooled) = try forwardWithScene(Ops.mirrorColumns(x, workspace: ws), workspace: ws)
            let (rows, width) = (maps.count / max(maps.width, 1), maps.width)
            let a = maps.base, b = second.base
            for r in 0..<rows {
                let row = r * width
                for c in 0..<width { a[row + c] = 0.5 * (a[row + c] + b[row + width - 1 - c]) }
            }
            logits = logits.flatMap { l in mirroredLogits.map { m in zip(l, m).map { 0.5 * ($0 + $1) } } }
            pooled = zip(pooled, mirroredPooled).map { p, m in zip(p, m).map { 0.5 * ($0 + $1) } }
        }
        let probabilities = logits.map { $0.map { 1 / (1 + exp(-$0)) } }
        let plane = maps.height * maps.width
        let scales = scale.map { head in
            pooled.indices.map { b in
                exp(Self.logit(head, Self.scaleFeatures(pooled: pooled[b], mask: maps.base + (b * 3 + 2) * plane,
                                                        height: maps.height, width: maps.width)))
            }
        }
        return (maps, probabilities, scales)
    }

    /// Multiply-adds ×2 of one inference at `height × width` (convolutions only).
    public func flops(height: Int, width: Int) -> Double {
        var total = stem.flops(height: height, width: width)
        var (h, w) = (height / 2, width / 2)
        var sizes = [(h, w)]
        for block in encoders {
            total += block.conv1.flops(height: h, width: w)
            (h, w) = block.conv1.outputSize(height: h, width: w)
            total += block.conv2.flops(height: h, width: w)
            sizes.append((h, w))
        }
        sizes.removeLast()
        for block in decoders {
            (h, w) = sizes.removeLast()
            total += block.conv1.flops(height: h, width: w) + block.conv2.flops(height: h, width: w)
        }
        return total + headConv.flops(height: height, width: width) + headOut.flops(height: height, width: width)
    }
}
