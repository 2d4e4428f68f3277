import CBLAS
import Foundation

/// The parts of a Hugging Face `DepthAnythingConfig` (`config.json`, `model_type: "depth_anything"`)
/// the runtime uses; absent fields take the `transformers` defaults.
public struct DepthAnythingConfig: Sendable, Equatable {
    // DINOv2 backbone (`backbone_config`).
    public var hiddenSize = 384
    public var layers = 12
    public var heads = 6
    public var mlpRatio = 4
    public var layerNormEpsilon: Float = 1e-6
    public var imageSize = 518
    public var patchSize = 14
    /// Hidden states fed to the neck: index 0 is the embeddings, i the output of layer i.
    public var outIndices = [9, 10, 11, 12]
    public var applyLayerNorm = true
    // DPT neck and head.
    public var reassembleFactors: [Double] = [4, 2, 1, 0.5]
    public var neckHiddenSizes = [48, 96, 192, 384]
    public var fusionHiddenSize = 64
    public var headInIndex = -1
    public var headHiddenSize = 32
    /// `"relative"` (ReLU output) or `"metric"` (sigmoid output).
    public var depthEstimationType = "relative"
    public var maxDepth: Float = 1

    /// The Depth-Anything-V2-Small configuration.
    public init() {}

    /// Reads a parsed `config.json`.
    public init(json: [String: Any], path: String) throws(DepthNetError) {
        func fail(_ reason: String) -> DepthNetError { .malformedConfig(path: path, reason: reason) }
        func int(_ object: [String: Any], _ key: String, _ fallback: Int) throws(DepthNetError) -> Int {
            guard let value = object[key], !(value is NSNull) else { return fallback }
            guard let number = value as? NSNumber, number.doubleValue == number.doubleValue.rounded() else {
                throw fail("\(key) must be an integer")
            }
            return number.intValue
        }
        func ints(_ object: [String: Any], _ key: String, _ fallback: [Int]) throws(DepthNetError) -> [Int] {
            guard let value = object[key], !(value is NSNull) else { return fallback }
            guard let array = value as? [NSNumber] else { throw fail("\(key) must be a list of integers") }
            return array.map(\.intValue)
        }
        if let backbone = json["backbone"] as? String, json["backbone_config"] == nil {
            throw fail("named backbone \(backbone) without backbone_config is not supported")
        }
        if let backbone = json["backbone_config"] as? [String: Any] {
            // A given backbone_config takes the Dinov2Config defaults for absent fields.
            if let type = backbone["model_type"] as? String, type != "dinov2" {
                throw .unsupportedArchitecture("depth_anything with a \(type) backbone")
            }
            hiddenSize = try int(backbone, "hidden_size", 768)
            layers = try int(backbone, "num_hidden_layers", 12)
            heads = try int(backbone, "num_attention_heads", 12)
            mlpRatio = try int(backbone, "mlp_ratio", 4)
            layerNormEpsilon = (backbone["layer_norm_eps"] as? NSNumber)?.floatValue ?? 1e-6
            imageSize = try int(backbone, "image_size", 224)
            patchSize = try int(backbone, "patch_size", 14)
            applyLayerNorm = backbone["apply_layernorm"] as? Bool ?? true
            if let act = backbone["hidden_act"] as? String, act != "gelu" {
                throw .unsupportedArchitecture("dinov2 with hidden_act \(act)")
            }
            if backbone["use_swiglu_ffn"] as? Bool == true {
                throw .unsupportedArchitecture("dinov2 with a SwiGLU feed-forward")
            }
            if let indices = backbone["out_indices"] as? [NSNumber] {
                outIndices = indices.map(\.intValue)
            } else if let features = backbone["out_features"] as? [String] {
                outIndices = features.map { Int($0.dropFirst("stage".count)) ?? ($0 == "stem" ? 0 : -1) }
            } else {
                outIndices = [layers]
            }
        }
        patchSize = try int(json, "patch_size", patchSize)
        if let factors = json["reassemble_factors"] {
            guard let list = factors as? [NSNumber] else { throw fail("reassemble_factors must be a list of numbers") }
            reassembleFactors = list.map(\.doubleValue)
        }
        neckHiddenSizes = try ints(json, "neck_hidden_sizes", neckHiddenSizes)
        fusionHiddenSize = try int(json, "fusion_hidden_size", fusionHiddenSize)
        headInIndex = try int(json, "head_in_index", headInIndex)
        headHiddenSize = try int(json, "head_hidden_size", headHiddenSize)
        depthEstimationType = json["depth_estimation_type"] as? String ?? "relative"
        maxDepth = (json["max_depth"] as? NSNumber)?.floatValue ?? 1
        let reassembleHidden = try int(json, "reassemble_hidden_size", hiddenSize)

        guard hiddenSize > 0, layers > 0, heads > 0, hiddenSize % heads == 0 else {
            throw fail("hidden_size \(hiddenSize) must be a positive multiple of num_attention_heads \(heads)")
        }
        guard patchSize > 0, imageSize >= patchSize else { throw fail("bad patch_size \(patchSize) / image_size \(imageSize)") }
        guard reassembleHidden == hiddenSize else {
            throw fail("reassemble_hidden_size \(reassembleHidden) differs from the backbone hidden_size \(hiddenSize)")
        }
        guard outIndices.allSatisfy({ (0...layers).contains($0) }) else { throw fail("out_indices \(outIndices) out of range") }
        guard neckHiddenSizes.count == outIndices.count, reassembleFactors.count == outIndices.count else {
            throw fail("neck_hidden_sizes, reassemble_factors and the backbone's out_indices must have the same length")
        }
        guard reassembleFactors.allSatisfy({ $0 >= 1 ? $0 == $0.rounded() : (1 / $0) == (1 / $0).rounded() }) else {
            throw fail("reassemble_factors must be integers or 1/integers")
        }
        guard (-neckHiddenSizes.count..<neckHiddenSizes.count).contains(headInIndex) else {
            throw fail("head_in_index \(headInIndex) out of range")
        }
        guard ["relative", "metric"].contains(depthEstimationType) else {
            throw fail("depth_estimation_type must be relative or metric")
        }
    }
}

/// Depth Anything V2: a DINOv2 ViT encoder and a DPT neck and head, with the tensor names of
/// Hugging Face `transformers`' `DepthAnythingForDepthEstimation`.
///
/// Both the published checkpoint names (`attention.attention.query`, `attention.output.dense`)
/// and `transformers` 5's (`attention.q_proj`, `attention.o_proj`) are accepted. Layer scales are
/// folded into the preceding projections at load time.
public struct DepthAnythingV2: Sendable {
    /// The `model_type` value in the config.
    public static let modelType = "depth_anything"

    struct EncoderLayer: Sendable {
        var norm1: LayerNorm
        var attention: MultiHeadAttention
        var norm2: LayerNorm
        var fc1: Linear
        var fc2: Linear
    }

    enum Resize: Sendable {
        case identity
        case up(ConvTranspose2D)
        case down(Conv2D)
    }

    struct Reassemble: Sendable {
        var projection: Conv2D
        var resize: Resize
    }

    struct ResidualUnit: Sendable {
        var conv1: Conv2D
        var conv2: Conv2D
    }

    struct Fusion: Sendable {
        var projection: Conv2D
        var residual1: ResidualUnit?
        var residual2: ResidualUnit
    }

    /// The configuration the weights were loaded with.
    public let config: DepthAnythingConfig
    /// The kernels the layers run on.
    public let kernels: KernelChoice
    let patchEmbedding: Conv2D
    let classToken: [Float]
    let positions: Tensor2D
    let encoder: [EncoderLayer]
    let finalNorm: LayerNorm
    let reassemble: [Reassemble]
    let neckConvs: [Conv2D]
    let fusions: [Fusion]
    let head1: Conv2D
    let head2: Conv2D
    let head3: Conv2D

    /// A row-major matrix of immutable weights.
    struct Tensor2D: Sendable {
        var rows: Int
        var columns: Int
        var values: [Float]
    }

    /// Builds the model from safetensors weights with `transformers` names.
    /// - Throws: ``DepthNetError/weightsMismatch(path:problems:)`` listing every missing or mis-shaped tensor.
    public init(config: DepthAnythingConfig, weights: SafeTensorsFile, kernels: KernelChoice = .automatic) throws(DepthNetError) {
        self.kernels = kernels
        let r = WeightReader(weights)
        let c = config.hiddenSize, p = config.patchSize
        func conv(_ name: String, _ cout: Int, _ cin: Int, _ k: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true) -> Conv2D {
            Conv2D(weight: r.tensor("\(name).weight", [cout, cin, k, k]), bias: bias ? r.tensor("\(name).bias", [cout]) : nil,
                   outChannels: cout, inChannels: cin, kernel: (k, k), stride: stride, padding: padding, kernels: kernels)
        }
        func linear(_ name: String, _ out: Int, _ inp: Int, scale: [Float]? = nil) -> Linear {
            var weight = r.tensor("\(name).weight", [out, inp])
            var bias = r.tensor("\(name).bias", [out])
            if let scale {
                for o in 0..<out {
                    for i in 0..<inp { weight[o * inp + i] *= scale[o] }
                    bias[o] *= scale[o]
                }
            }
            return Linear(weight: weight, bias: bias, inFeatures: inp, outFeatures: out, kernels: kernels)
        }
        func layerNorm(_ name: String) -> LayerNorm {
            LayerNorm(weight: r.tensor("\(name).weight", [c]), bias: r.tensor("\(name).bias", [c]), epsilon: config.layerNormEpsilon)
        }
        let e = "backbone.embeddings"
        patchEmbedding = conv("\(e).patch_embeddings.projection", c, 3, p, stride: p)
        classToken = r.tensor("\(e).cls_token", [1, 1, c])
        let grid = config.imageSize / p
        positions = Tensor2D(rows: grid * grid + 1, columns: c, values: r.tensor("\(e).position_embeddings", [1, grid * grid + 1, c]))
        encoder = (0..<config.layers).map { i in
            let l = "backbone.encoder.layer.\(i)"
            let modern = !r.has("\(l).attention.attention.query.weight") && r.has("\(l).attention.q_proj.weight")
            func projection(_ published: String, _ current: String) -> String {
                modern ? "\(l).attention.\(current)" : "\(l).attention.\(published)"
            }
            let scale1 = r.tensor("\(l).layer_scale1.lambda1", [c])
            let scale2 = r.tensor("\(l).layer_scale2.lambda1", [c])
            return EncoderLayer(
                norm1: layerNorm("\(l).norm1"),
                attention: MultiHeadAttention(
                    query: linear(projection("attention.query", "q_proj"), c, c),
                    key: linear(projection("attention.key", "k_proj"), c, c),
                    value: linear(projection("attention.value", "v_proj"), c, c),
                    output: linear(projection("output.dense", "o_proj"), c, c, scale: scale1),
                    heads: config.heads),
                norm2: layerNorm("\(l).norm2"),
                fc1: linear("\(l).mlp.fc1", c * config.mlpRatio, c),
                fc2: linear("\(l).mlp.fc2", c, c * config.mlpRatio, scale: scale2))
        }
        finalNorm = layerNorm("backbone.layernorm")
        reassemble = config.neckHiddenSizes.indices.map { i in
            let name = "neck.reassemble_stage.layers.\(i)"
            let n = config.neckHiddenSizes[i], factor = config.reassembleFactors[i]
            let resize: Resize
            if factor > 1 {
                let k = Int(factor)
                resize = .up(ConvTranspose2D(weight: r.tensor("\(name).resize.weight", [n, n, k, k]),
                                             bias: r.tensor("\(name).resize.bias", [n]), inChannels: n, outChannels: n,
                                             kernel: (k, k), stride: k))
            } else if factor == 1 {
                resize = .identity
            } else {
                resize = .down(conv("\(name).resize", n, n, 3, stride: Int((1 / factor).rounded()), padding: 1))
            }
            return Reassemble(projection: conv("\(name).projection", n, c, 1), resize: resize)
        }
        let f = config.fusionHiddenSize
        neckConvs = config.neckHiddenSizes.enumerated().map { i, n in conv("neck.convs.\(i)", f, n, 3, padding: 1, bias: false) }
        fusions = config.neckHiddenSizes.indices.map { i in
            let name = "neck.fusion_stage.layers.\(i)"
            func unit(_ u: String) -> ResidualUnit {
                ResidualUnit(conv1: conv("\(name).\(u).convolution1", f, f, 3, padding: 1),
                             conv2: conv("\(name).\(u).convolution2", f, f, 3, padding: 1))
            }
            // The deepest fusion layer (index 0) has no residual input: its residual_layer1 is never used.
            let residual1 = i == 0 ? nil : unit("residual_layer1")
            return Fusion(projection: conv("\(name).projection", f, f, 1), residual1: residual1, residual2: unit("residual_layer2"))
        }
        head1 = conv("head.conv1", f / 2, f, 3, padding: 1)
        head2 = conv("head.conv2", config.headHiddenSize, f / 2, 3, padding: 1)
        head3 = conv("head.conv3", 1, config.headHiddenSize, 1)
        try r.finish()
        self.config = config
    }

    /// Runs the model on a normalised `[1, 3, H, W]` input (H, W multiples of the patch size);
    /// returns `predicted_depth` as `[1, 1, H, W]` (relative inverse depth for relative models).
    public func forward(_ x: Tensor, workspace ws: Workspace) throws(DepthNetError) -> Tensor {
        let p = config.patchSize
        guard x.rank == 4, x.shape[0] == 1, x.shape[1] == 3 else { throw .invalidInput("expected [1, 3, H, W], got \(x.shape)") }
        guard x.height >= p, x.width >= p, x.height % p == 0, x.width % p == 0 else {
            throw .invalidInput("Depth Anything needs H and W multiples of \(p), got \(x.height)×\(x.width)")
        }
        let (ph, pw) = (x.height / p, x.width / p)
        var hidden = embed(x, ph, pw, ws)
        var captured: [Int: Tensor] = [:]
        for (i, layer) in encoder.enumerated() {
            if config.outIndices.contains(i) { captured[i] = hidden }
            let attended = layer.attention(layer.norm1(hidden, workspace: ws), workspace: ws)
            Ops.addInPlace(attended, hidden)
            let mlp = layer.fc2(layer.fc1(layer.norm2(attended, workspace: ws), activation: .gelu, workspace: ws), workspace: ws)
            Ops.addInPlace(mlp, attended)
            hidden = mlp
        }
        if config.outIndices.contains(encoder.count) { captured[encoder.count] = hidden }
        let ordered = config.outIndices.map { captured[$0]! }
        captured.removeAll()
        var maps: [Tensor] = []
        for (i, tokens) in ordered.enumerated() {
            let normed = config.applyLayerNorm ? finalNorm(tokens, workspace: ws) : tokens
            let stage = reassemble[i]
            var map = projectTokens(normed, stage.projection, ph, pw, ws)
            switch stage.resize {
            case .identity: break
            case .up(let layer): map = layer(map, workspace: ws)
            case .down(let layer): map = layer(map, workspace: ws)
            }
            maps.append(neckConvs[i](map, workspace: ws))
        }
        maps.reverse()
        var fused: Tensor?
        var outputs: [Tensor] = []
        for (i, fusion) in fusions.enumerated() {
            let size = i + 1 < maps.count ? (maps[i + 1].height, maps[i + 1].width) : nil
            fused = fuse(fusion, fused ?? maps[i], residual: fused == nil ? nil : maps[i], size: size, ws)
            outputs.append(fused!)
        }
        let index = config.headInIndex < 0 ? outputs.count + config.headInIndex : config.headInIndex
        var y = head1(outputs[index], workspace: ws)
        outputs.removeAll()
        y = Ops.resizeBilinear(y, height: ph * p, width: pw * p, alignCorners: true, kernels: kernels, workspace: ws)
        y = head2(y, activation: .relu, workspace: ws)
        let metric = config.depthEstimationType == "metric"
        y = head3(y, activation: metric ? .sigmoid : .relu, workspace: ws)
        if config.maxDepth != 1 { for i in 0..<y.count { y.base[i] *= config.maxDepth } }
        return y
    }

    /// Patch embedding + class token + (interpolated) position embeddings → tokens `[1 + ph·pw, C]`.
    private func embed(_ x: Tensor, _ ph: Int, _ pw: Int, _ ws: Workspace) -> Tensor {
        let c = config.hiddenSize
        let patches = patchEmbedding(x, workspace: ws)          // [1, C, ph, pw]
        let tokens = ws.make([1 + ph * pw, c])
        let grid = config.imageSize / config.patchSize
        var interpolated: Tensor? = nil
        if ph != grid || pw != grid {
            // transformers: bicubic (align_corners=False) resize of the [C, grid, grid] position grid.
            let table = ws.make([1, c, grid, grid])
            positions.values.withUnsafeBufferPointer { pos in
                for t in 0..<(grid * grid) { for ch in 0..<c { table.base[ch * grid * grid + t] = pos[(1 + t) * c + ch] } }
            }
            interpolated = Ops.resizeBicubic(table, height: ph, width: pw, workspace: ws)
        }
        positions.values.withUnsafeBufferPointer { pos in
            classToken.withUnsafeBufferPointer { cls in
                for ch in 0..<c { tokens.base[ch] = cls[ch] + pos[ch] }
            }
            let n = ph * pw
            for t in 0..<n {
                let row = tokens.base + (1 + t) * c
                if let interpolated {
                    for ch in 0..<c { row[ch] = patches.base[ch * n + t] + interpolated.base[ch * n + t] }
                } else {
                    for ch in 0..<c { row[ch] = patches.base[ch * n + t] + pos[(1 + t) * c + ch] }
                }
            }
        }
        return tokens
    }

    /// A 1×1 convolution applied to the patch tokens (class token dropped), as one GEMM that also
    /// transposes tokens `[ph·pw, C]` into the map `[1, out, ph, pw]`.
    private func projectTokens(_ tokens: Tensor, _ projection: Conv2D, _ ph: Int, _ pw: Int, _ ws: Workspace) -> Tensor {
        let c = config.hiddenSize, n = ph * pw, out = projection.outChannels
        let map = ws.make([1, out, ph, pw])
        projection.weight.withUnsafeBufferPointer { w in
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(out), Int32(n), Int32(c),
                        1, w.baseAddress!, Int32(c), tokens.base + c, Int32(c), 0, map.base, Int32(n))
        }
        applyBiasActivation(map, bias: projection.bias, activation: .identity, threads: ws.loopThreads)
        return map
    }

    private func residualUnit(_ unit: ResidualUnit, _ x: Tensor, _ ws: Workspace) -> Tensor {
        let y = unit.conv2(unit.conv1(Ops.activate(x, .relu, workspace: ws), activation: .relu, workspace: ws), workspace: ws)
        Ops.addInPlace(y, x)
        return y
    }

    private func fuse(_ layer: Fusion, _ x: Tensor, residual: Tensor?, size: (Int, Int)?, _ ws: Workspace) -> Tensor {
        var hidden = x
        if var residual {
            if residual.shape != hidden.shape {
                residual = Ops.resizeBilinear(residual, height: hidden.height, width: hidden.width, alignCorners: false, kernels: kernels, workspace: ws)
            }
            let r = residualUnit(layer.residual1!, residual, ws)
            Ops.addInPlace(r, hidden)
            hidden = r
        }
        hidden = residualUnit(layer.residual2, hidden, ws)
        let (h, w) = size ?? (hidden.height * 2, hidden.width * 2)
        hidden = Ops.resizeBilinear(hidden, height: h, width: w, alignCorners: true, kernels: kernels, workspace: ws)
        return layer.projection(hidden, workspace: ws)
    }

    /// Floating-point operations of one inference at `height × width` (2 per multiply-add).
    public func flops(height: Int, width: Int) -> Double {
        let p = config.patchSize, c = Double(config.hiddenSize)
        let (ph, pw) = (height / p, width / p)
        let t = Double(ph * pw + 1)
        var total = patchEmbedding.flops(height: height, width: width)
        let perLayer = 2 * t * c * c * (4 + 2 * Double(config.mlpRatio)) + 4 * t * t * c
        total += perLayer * Double(config.layers)
        var sizes: [(Int, Int)] = []
        for (i, stage) in reassemble.enumerated() {
            total += 2 * Double(stage.projection.outChannels) * c * Double(ph * pw)
            var (h, w) = (ph, pw)
            switch stage.resize {
            case .identity: break
            case .up(let layer):
                total += 2 * Double(layer.inChannels * layer.outChannels * layer.kernelHeight * layer.kernelWidth * h * w)
                (h, w) = layer.outputSize(height: h, width: w)
            case .down(let layer):
                total += layer.flops(height: h, width: w)
                (h, w) = layer.outputSize(height: h, width: w)
            }
            total += neckConvs[i].flops(height: h, width: w)
            sizes.append((h, w))
        }
        sizes.reverse()
        for (i, fusion) in fusions.enumerated() {
            let (h, w) = sizes[i]
            let units = i == 0 ? 1.0 : 2.0
            total += units * 2 * fusion.residual2.conv1.flops(height: h, width: w)
            let (oh, ow) = i + 1 < sizes.count ? sizes[i + 1] : (2 * h, 2 * w)
            total += fusion.projection.flops(height: oh, width: ow)
        }
        let (fh, fw) = (2 * sizes.last!.0, 2 * sizes.last!.1)
        total += head1.flops(height: fh, width: fw) + head2.flops(height: height, width: width) + head3.flops(height: height, width: width)
        return total
    }
}
