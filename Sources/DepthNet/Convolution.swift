import CBLAS
import Foundation
import _DepthNetKernels

/// An activation applied in the same pass as a layer's bias.
public enum Activation: Sendable {
    /// No activation.
    case identity
    /// max(x, 0).
    case relu
    /// The exact GELU, x·Φ(x) (PyTorch's default, `approximate="none"`).
    case gelu
    /// 1 / (1 + e^-x).
    case sigmoid
}

/// A 2-D convolution's parameters: weight `[out, in/groups, kh, kw]` (PyTorch layout) and bias.
public struct Conv2D: Sendable {
    /// Weight, `[outChannels, inChannels / groups, kernelHeight, kernelWidth]`, flattened.
    public private(set) var weight: [Float]
    /// Bias per output channel, or nil.
    public private(set) var bias: [Float]?
    public let outChannels: Int
    public let inChannels: Int
    public let kernelHeight: Int
    public let kernelWidth: Int
    public let stride: Int
    public let padding: Int
    public let groups: Int
    /// The kernels this layer runs on (its weights are packed for them).
    public private(set) var kernels: KernelChoice
    /// The weight of each group packed for the vector GEMM kernel (empty when it is not used).
    private(set) var packedWeight: [Float] = []
    /// The weight packed for the channel-vectorised kernel used on outputs with rows under 16
    /// wide (one group only; empty when it is not used).
    private(set) var channelPackedWeight: [Float] = []
    /// Whether this layer runs its GEMMs on the packed vector kernel (else `cblas_sgemm`).
    var usesPackedKernel: Bool { !packedWeight.isEmpty }

    /// Creates a convolution.
    /// - Precondition: `weight.count == outChannels * inChannels / groups * kernelHeight * kernelWidth`.
    public init(
        weight: [Float], bias: [Float]?, outChannels: Int, inChannels: Int,
        kernel: (Int, Int), stride: Int = 1, padding: Int = 0, groups: Int = 1, kernels: KernelChoice = .automatic
    ) {
        precondition(inChannels % groups == 0 && outChannels % groups == 0, "Conv2D: channels not divisible by groups")
        precondition(weight.count == outChannels * (inChannels / groups) * kernel.0 * kernel.1, "Conv2D: weight size")
        precondition(bias == nil || bias!.count == outChannels, "Conv2D: bias size")
        self.weight = weight
        self.bias = bias
        self.outChannels = outChannels
        self.inChannels = inChannels
        self.kernelHeight = kernel.0
        self.kernelWidth = kernel.1
        self.stride = stride
        self.padding = padding
        self.groups = groups
        self.kernels = kernels
        pack()
    }

    /// Packs the weights for the vector kernel (see ``KernelChoice``); depthwise layers do not use it.
    private mutating func pack() {
        guard kernels.usesPackedKernel, !(groups == inChannels && groups == outChannels && groups > 1) else {
            packedWeight = []
            channelPackedWeight = []
            return
        }
        let cout = outChannels / groups, k = (inChannels / groups) * kernelHeight * kernelWidth
        let size = mr_packed_size(Int32(cout), Int32(k))
        var packed = [Float](repeating: 0, count: groups * size)
        weight.withUnsafeBufferPointer { w in
            packed.withUnsafeMutableBufferPointer { p in
                for g in 0..<groups {
                    mr_pack_a(Int32(cout), Int32(k), w.baseAddress! + g * cout * k, Int32(k), p.baseAddress! + g * size)
                }
            }
        }
        packedWeight = packed
        if groups == 1 {
            var channelPacked = [Float](repeating: 0, count: mr_channel_packed_size(level, Int32(cout), Int32(k)))
            weight.withUnsafeBufferPointer { w in
                channelPacked.withUnsafeMutableBufferPointer { p in
                    mr_pack_channels(level, Int32(cout), Int32(k), w.baseAddress!, Int32(k), p.baseAddress!)
                }
            }
            channelPackedWeight = channelPacked
        }
    }

    /// The level the packed kernels run at (see ``KernelChoice``).
    private var level: Int32 { kernels.gemmLevel }

    /// The same layer computing with `cblas_sgemm` only (for comparisons).
    func withoutPackedKernel() -> Conv2D {
        var copy = self
        copy.kernels = .blas
        copy.packedWeight = []
        copy.channelPackedWeight = []
        return copy
    }

    /// Folds a following inference-mode batch norm into this convolution:
    /// w' = w·γ/√(σ²+ε), b' = (b − μ)·γ/√(σ²+ε) + β.
    public mutating func foldBatchNorm(gamma: [Float], beta: [Float], mean: [Float], variance: [Float], epsilon: Float) {
        precondition([gamma.count, beta.count, mean.count, variance.count].allSatisfy { $0 == outChannels })
        let perOut = weight.count / outChannels
        var newBias = [Float](repeating: 0, count: outChannels)
        for o in 0..<outChannels {
            let scale = gamma[o] / (variance[o] + epsilon).squareRoot()
            for i in 0..<perOut { weight[o * perOut + i] *= scale }
            newBias[o] = ((bias?[o] ?? 0) - mean[o]) * scale + beta[o]
        }
        bias = newBias
        if usesPackedKernel { pack() }
    }

    /// Output spatial size for an input of `height × width`.
    public func outputSize(height: Int, width: Int) -> (Int, Int) {
        ((height + 2 * padding - kernelHeight) / stride + 1, (width + 2 * padding - kernelWidth) / stride + 1)
    }

    /// Floating-point operations (multiply-add = 2) for an input of `height × width`.
    public func flops(height: Int, width: Int) -> Double {
        let (oh, ow) = outputSize(height: height, width: width)
        return 2 * Double(outChannels * (inChannels / groups) * kernelHeight * kernelWidth) * Double(oh * ow)
    }

    /// Applies the convolution (plus bias and `activation`) to an NCHW tensor.
    ///
    /// 1×1 stride-1 convolutions are a single GEMM on the input; depthwise convolutions run as a
    /// direct loop; everything else is im2col (in row blocks that bound the scratch buffer) + sgemm.
    public func callAsFunction(_ x: Tensor, activation: Activation = .identity, workspace: Workspace) -> Tensor {
        precondition(x.rank == 4 && x.channels == inChannels, "Conv2D: input \(x.shape), expected \(inChannels) channels")
        let (n, h, w) = (x.shape[0], x.height, x.width)
        let (oh, ow) = outputSize(height: h, width: w)
        precondition(oh > 0 && ow > 0, "Conv2D: input \(h)×\(w) too small")
        let y = workspace.make([n, outChannels, oh, ow])
        // The packed kernel adds the bias and applies ReLU as it stores its results.
        let fused = usesPackedKernel && (activation == .identity || activation == .relu)
        weight.withUnsafeBufferPointer { wp in
            for b in 0..<n {
                let src = x.base + b * inChannels * h * w
                let dst = y.base + b * outChannels * oh * ow
                if groups == inChannels && groups == outChannels && groups > 1 {
                    depthwise(src, h, w, wp.baseAddress!, dst, oh, ow, threads: workspace.loopThreads)
                } else {
                    for g in 0..<groups {
                        gemmConvolution(group: g, src, h, w, wp.baseAddress!, dst, oh, ow, workspace,
                                        epilogue: fused ? activation : nil)
                    }
                }
            }
        }
        if !fused { applyBiasActivation(y, bias: bias, activation: activation, threads: workspace.loopThreads) }
        return y
    }

    /// Whether an input of `height × width` goes through a zero-padded copy for the packed kernel
    /// (stride 1, one group, bias and ReLU or no activation).
    func readsPaddedCopy(height: Int, width: Int, activation: Activation) -> Bool {
        let (oh, ow) = outputSize(height: height, width: width)
        return usesPackedKernel && groups == 1 && stride == 1 && padding > 0 && oh > 0 && ow > 0
            && (activation == .identity || activation == .relu)
    }

    /// For a layer that reads its input through a zero-padded copy, a buffer in that layout for
    /// the producer of the input to write into directly, so the copy is never made:
    /// `[1, inChannels, height + 2·padding, width + 2·padding]` with the borders zeroed and the
    /// interior (rows `padding…`, columns `padding…`) left to the caller. nil when this layer
    /// does not read a padded copy (then call the layer on an ordinary tensor).
    public func makePaddedInput(height: Int, width: Int, activation: Activation, workspace: Workspace) -> Tensor? {
        guard readsPaddedCopy(height: height, width: width, activation: activation) else { return nil }
        let (hp, wp) = (height + 2 * padding, width + 2 * padding)
        let t = workspace.make([1, inChannels, hp, wp])
        let pad = padding
        Parallel.forEach(inChannels, threads: workspace.loopThreads, minimumWork: hp * wp / 8) { c in
            let plane = t.base + c * hp * wp
            plane.update(repeating: 0, count: pad * wp)
            (plane + (hp - pad) * wp).update(repeating: 0, count: pad * wp)
            // Side columns by plain stores: a memset call per row and side cost more than the
            // convolution's stores at 512² (profiled).
            for y in pad..<(hp - pad) {
                let row = plane + y * wp
                for i in 0..<pad {
                    row[i] = 0
                    row[wp - pad + i] = 0
                }
            }
        }
        return t
    }

    /// Applies the convolution (plus bias and `activation`, the one given to
    /// ``makePaddedInput(height:width:activation:workspace:)``) to an input written into a buffer
    /// from that function; `height × width` is the unpadded input size.
    public func callAsFunction(padded: Tensor, height h: Int, width w: Int, activation: Activation,
                               workspace: Workspace) -> Tensor {
        precondition(readsPaddedCopy(height: h, width: w, activation: activation)
                     && padded.shape == [1, inChannels, h + 2 * padding, w + 2 * padding],
                     "Conv2D(padded:): \(padded.shape) is not this layer's padded input for \(h)×\(w)")
        let (oh, ow) = outputSize(height: h, width: w)
        let y = workspace.make([1, outChannels, oh, ow])
        weight.withUnsafeBufferPointer { wp in
            gemmConvolution(group: 0, padded.base, h, w, wp.baseAddress!, y.base, oh, ow, workspace,
                            epilogue: activation, paddedInput: true)
        }
        return y
    }

    /// Whether this layer can write its output for an input of `height × width` straight into the
    /// zero-padded input buffer of the layer that follows (see
    /// ``callAsFunction(_:activation:intoPadded:padding:workspace:)``): the packed kernels' prepared
    /// paths, one group, stride 1 or 2, bias and ReLU or no activation.
    public func writesPaddedOutput(height: Int, width: Int, activation: Activation) -> Bool {
        let (oh, ow) = outputSize(height: height, width: width)
        return usesPackedKernel && groups == 1 && stride <= 2 && oh > 0 && ow > 0
            && (ow % 16 == 0 || !channelPackedWeight.isEmpty) && (activation == .identity || activation == .relu)
    }

    /// Applies the layer to `x` (batch 1) and writes the result into the interior of `out`, a
    /// buffer from the next layer's ``makePaddedInput(height:width:activation:workspace:)`` with
    /// `padding` (that layer's padding), so the next layer needs no padded copy of its input.
    /// - Precondition: ``writesPaddedOutput(height:width:activation:)``.
    public func callAsFunction(_ x: Tensor, activation: Activation, intoPadded out: Tensor, padding: Int, workspace: Workspace) {
        precondition(x.rank == 4 && x.shape[0] == 1 && x.channels == inChannels, "Conv2D(intoPadded:): input \(x.shape)")
        run(x.base, paddedInput: false, height: x.height, width: x.width, activation: activation, intoPadded: out,
            padding: padding, workspace: workspace)
    }

    /// ``callAsFunction(padded:height:width:activation:workspace:)`` writing into the interior of
    /// the next layer's padded input `out` (see ``callAsFunction(_:activation:intoPadded:padding:workspace:)``).
    public func callAsFunction(padded: Tensor, height h: Int, width w: Int, activation: Activation,
                               intoPadded out: Tensor, padding: Int, workspace: Workspace) {
        precondition(readsPaddedCopy(height: h, width: w, activation: activation)
                     && padded.shape == [1, inChannels, h + 2 * padding, w + 2 * padding],
                     "Conv2D(padded:intoPadded:): \(padded.shape) is not this layer's padded input for \(h)×\(w)")
        run(padded.base, paddedInput: true, height: h, width: w, activation: activation, intoPadded: out,
            padding: padding, workspace: workspace)
    }

    private func run(_ src: UnsafePointer<Float>, paddedInput: Bool, height h: Int, width w: Int, activation: Activation,
                     intoPadded out: Tensor, padding pad: Int, workspace: Workspace) {
        let (oh, ow) = outputSize(height: h, width: w)
        precondition(writesPaddedOutput(height: h, width: w, activation: activation)
                     && out.shape == [1, outChannels, oh + 2 * pad, ow + 2 * pad],
                     "Conv2D(intoPadded:): \(out.shape) is not a padded buffer for this layer's \(oh)×\(ow) output")
        let layout = mr_conv_output(dst: out.base, plane: (oh + 2 * pad) * (ow + 2 * pad), row: Int32(ow + 2 * pad), pad: Int32(pad))
        weight.withUnsafeBufferPointer { wp in
            gemmConvolution(group: 0, src, h, w, wp.baseAddress!, out.base, oh, ow, workspace, epilogue: activation,
                            paddedInput: paddedInput, output: layout)
        }
    }

    /// `paddedInput`: `src` is already the zero-padded copy (see ``makePaddedInput(height:width:activation:workspace:)``).
    /// `output`: where the prepared paths write (default: plain NCHW at `dst`); only layers for
    /// which ``writesPaddedOutput(height:width:activation:)`` holds may be given one.
    private func gemmConvolution(
        group g: Int, _ src: UnsafePointer<Float>, _ h: Int, _ w: Int,
        _ weights: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ oh: Int, _ ow: Int,
        _ workspace: Workspace, epilogue: Activation?, paddedInput: Bool = false, output: mr_conv_output? = nil
    ) {
        let cin = inChannels / groups, cout = outChannels / groups
        let k = cin * kernelHeight * kernelWidth
        let groupSrc = src + g * cin * h * w
        let groupWeights = weights + g * cout * k
        let groupDst = dst + g * cout * oh * ow
        if let epilogue, stride <= 2, ow % 16 == 0 || !channelPackedWeight.isEmpty {
            // Vector kernels on a prepared input (zero-padded, columns split by stride phase), which
            // they read in place. (Masked loads on the unpadded input instead of the copy measured no
            // faster, also for 256- and 512-wide rows.)
            let prepared = (stride == 1 && padding == 0) || paddedInput ? nil : prepare(groupSrc, cin, h, w, workspace)
            let hp = h + 2 * padding, wq = (w + 2 * padding + stride - 1) / stride
            let relu: Int32 = epilogue == .relu ? 1 : 0
            let biasValues = bias ?? []
            let chunks = workspace.loopThreads
            let offsets = workspace.make([chunks * k])       // room for k Int32 offsets per chunk
            var input = mr_conv_prepared(src: prepared.map { UnsafePointer($0.base) } ?? groupSrc, cin: Int32(cin),
                                         hp: Int32(hp), wq: Int32(wq), kh: Int32(kernelHeight), kw: Int32(kernelWidth),
                                         stride: Int32(stride), oh: Int32(oh), ow: Int32(ow))
            var out = output ?? mr_conv_output(dst: groupDst, plane: oh * ow, row: Int32(ow), pad: 0)
            biasValues.withUnsafeBufferPointer { bp in
                let groupBias: UnsafePointer<Float>? = bp.isEmpty ? nil : bp.baseAddress! + g * cout
                withUnsafePointer(to: &input) { inputPointer in withUnsafePointer(to: &out) { outPointer in
                    if ow % 16 == 0 {
                        // Output positions in 16-column row segments. Ranges are cut at multiples of
                        // the kernel's column step, so only the last has a tail.
                        let size = mr_packed_size(Int32(cout), Int32(k))
                        let step = Int(mr_prepared_step(level)), positions = oh * ow
                        let rowBlocks = (cout + Int(MR_ROWS) - 1) / Int(MR_ROWS)
                        packedWeight.withUnsafeBufferPointer { packed in
                            let a = packed.baseAddress! + g * size
                            if chunks > 1, cout * k > stride * cin * hp * wq, rowBlocks >= 2 * chunks {
                                // Weights outweigh the input (deep layers): split the output channels,
                                // so each thread reads only its share of the weights.
                                Parallel.forEachChunk(rowBlocks, limit: chunks,
                                                      minimumWork: positions * k * Int(MR_ROWS) / 16) { chunk, blocks in
                                    let offset = UnsafeMutablePointer<Int32>(OpaquePointer(offsets.base + chunk * k))
                                    mr_conv_panels_prepared(level, inputPointer, 0, positions, offset, Int32(cout),
                                                            Int32(blocks.lowerBound), Int32(blocks.upperBound),
                                                            a, outPointer, groupBias, relu)
                                }
                                return
                            }
                            Parallel.forEachChunk((positions + step - 1) / step, limit: chunks,
                                                  minimumWork: step * k * cout / 16) { chunk, range in
                                let offset = UnsafeMutablePointer<Int32>(OpaquePointer(offsets.base + chunk * k))
                                mr_conv_panels_prepared(level, inputPointer, range.lowerBound * step,
                                                        min(range.upperBound * step, positions), offset, Int32(cout),
                                                        0, Int32(rowBlocks), a, outPointer, groupBias, relu)
                            }
                        }
                    } else {
                        // Rows too short for position vectors (8×8, 4×4 outputs): vectors over output
                        // channels, tasks = channel blocks × position tiles.
                        let block = Int(mr_channel_block(level)), tiles = Int(mr_channel_tiles(level, Int32(oh), Int32(ow)))
                        let blocks = (cout + block - 1) / block
                        // With enough blocks (or as many as threads, evenly), threads take whole blocks,
                        // so each reads only its share of the weights; otherwise they split a block's tiles too.
                        let perTask = blocks >= 2 * chunks || blocks % chunks == 0 ? tiles : 1
                        channelPackedWeight.withUnsafeBufferPointer { packed in
                            Parallel.forEachChunk(blocks * tiles / perTask, limit: chunks,
                                                  minimumWork: perTask * (oh * ow / tiles) * k * block / 16) { chunk, tasks in
                                let offset = UnsafeMutablePointer<Int32>(OpaquePointer(offsets.base + chunk * k))
                                mr_conv_channels_prepared(level, inputPointer, tasks.lowerBound * perTask, tasks.upperBound * perTask,
                                                          offset, Int32(cout), packed.baseAddress!, outPointer, groupBias, relu)
                            }
                        }
                    }
                } }
            }
            withExtendedLifetime(prepared) {}
            return
        }
        precondition(output == nil, "Conv2D: a padded output on a path that writes plain NCHW")
        if let epilogue {
            // Vector kernel, implicit GEMM: each task gathers the patches of 32 output positions
            // at a time into a small scratch panel (hot in cache) and multiplies it at once.
            let chunks = workspace.loopThreads
            let scratch = workspace.make([chunks * k * 33])   // per chunk: a k × 32 panel + k offsets
            let size = mr_packed_size(Int32(cout), Int32(k))
            var shape = mr_conv_shape(cin: Int32(cin), h: Int32(h), w: Int32(w), kh: Int32(kernelHeight),
                                      kw: Int32(kernelWidth), stride: Int32(stride), pad: Int32(padding),
                                      oh: Int32(oh), ow: Int32(ow))
            let relu: Int32 = epilogue == .relu ? 1 : 0
            let biasValues = bias ?? []
            let panels = (oh * ow + 31) / 32
            packedWeight.withUnsafeBufferPointer { packed in
                biasValues.withUnsafeBufferPointer { bp in
                    let a = packed.baseAddress! + g * size
                    let groupBias: UnsafePointer<Float>? = bp.isEmpty ? nil : bp.baseAddress! + g * cout
                    withUnsafePointer(to: &shape) { shapePointer in
                        // Fewer panels than threads (deep layers at small inputs: 4×4 positions are one
                        // panel): split the panels' output channels too, so every thread has work.
                        let rowBlocks = (cout + Int(MR_ROWS) - 1) / Int(MR_ROWS)
                        let splits = panels >= chunks ? 1 : min(rowBlocks, (chunks + panels - 1) / panels)
                        Parallel.forEachChunk(panels * splits, limit: chunks, minimumWork: 32 * k * cout / 8 / splits) { chunk, tasks in
                            for task in tasks {
                                let p = task / splits, part = task % splits
                                mr_conv_panels(level, shapePointer, groupSrc, p, p + 1, scratch.base + chunk * k * 33, Int32(cout),
                                               Int32(part * rowBlocks / splits), Int32((part + 1) * rowBlocks / splits),
                                               a, groupDst, groupBias, relu)
                            }
                        }
                    }
                }
            }
            return
        }
        if kernelHeight == 1 && kernelWidth == 1 && stride == 1 && padding == 0 {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(cout), Int32(oh * ow), Int32(k),
                        1, groupWeights, Int32(k), groupSrc, Int32(oh * ow), 0, groupDst, Int32(oh * ow))
            return
        }
        // Row blocks: the im2col buffer holds k × (rows·ow) floats, at most ~4 M (16 MB).
        let rowsPerBlock = max(1, min(oh, (1 << 22) / max(1, k * ow)))
        let column = workspace.make([k * rowsPerBlock * ow])
        var row0 = 0
        while row0 < oh {
            let rows = min(rowsPerBlock, oh - row0)
            im2col(groupSrc, cin, h, w, column.base, row0, rows, ow, threads: workspace.loopThreads)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(cout), Int32(rows * ow), Int32(k),
                        1, groupWeights, Int32(k), column.base, Int32(rows * ow), 0,
                        groupDst + row0 * ow, Int32(oh * ow))
            row0 += rows
        }
    }

    /// Writes the patches for output rows `row0 ..< row0+rows` as a `[cin·kh·kw, rows·ow]` matrix.
    private func im2col(
        _ src: UnsafePointer<Float>, _ cin: Int, _ h: Int, _ w: Int,
        _ col: UnsafeMutablePointer<Float>, _ row0: Int, _ rows: Int, _ ow: Int, threads: Int
    ) {
        let n = rows * ow
        Parallel.forEach(cin, threads: threads, minimumWork: kernelHeight * kernelWidth * n) { c in
            let plane = src + c * h * w
            var r = c * kernelHeight * kernelWidth
            for ky in 0..<kernelHeight {
                for kx in 0..<kernelWidth {
                    let out = col + r * n
                    r += 1
                    for oy in 0..<rows {
                        let iy = (row0 + oy) * stride - padding + ky
                        let line = out + oy * ow
                        if iy < 0 || iy >= h {
                            line.update(repeating: 0, count: ow)
                            continue
                        }
                        let input = plane + iy * w
                        if stride == 1 {
                            // Valid ox range: 0 <= ox - padding + kx < w.
                            let lo = min(max(0, padding - kx), ow)
                            let hi = min(max(lo, w + padding - kx), ow)
                            if lo > 0 { line.update(repeating: 0, count: lo) }
                            if hi > lo { (line + lo).update(from: input + (lo - padding + kx), count: hi - lo) }
                            if hi < ow { (line + hi).update(repeating: 0, count: ow - hi) }
                        } else {
                            for ox in 0..<ow {
                                let ix = ox * stride - padding + kx
                                line[ox] = (ix >= 0 && ix < w) ? input[ix] : 0
                            }
                        }
                    }
                }
            }
        }
    }

    /// The input of one group zero-padded and split into `stride` column phases:
    /// `out[phase][c][y][i] = padded[c][y][stride·i + phase]` (see `mr_conv_prepared`).
    private func prepare(_ src: UnsafePointer<Float>, _ cin: Int, _ h: Int, _ w: Int, _ workspace: Workspace) -> Tensor {
        let hp = h + 2 * padding, wp = w + 2 * padding, wq = (wp + stride - 1) / stride
        let out = workspace.make([stride, cin, hp, wq])
        Parallel.forEach(stride * cin, threads: workspace.loopThreads, minimumWork: hp * wq) { pc in
            let phase = pc / cin, c = pc % cin
            mr_prepare_plane(src + c * h * w, Int32(h), Int32(w), Int32(padding), Int32(stride), Int32(phase),
                             Int32(hp), Int32(wq), out.base + pc * hp * wq)
        }
        return out
    }

    private func depthwise(
        _ src: UnsafePointer<Float>, _ h: Int, _ w: Int, _ weights: UnsafePointer<Float>,
        _ dst: UnsafeMutablePointer<Float>, _ oh: Int, _ ow: Int, threads: Int
    ) {
        let kk = kernelHeight * kernelWidth
        Parallel.forEach(inChannels, threads: threads, minimumWork: oh * ow * kk) { c in
            let plane = src + c * h * w
            let out = dst + c * oh * ow
            let kernel = weights + c * kk
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var sum: Float = 0
                    for ky in 0..<kernelHeight {
                        let iy = oy * stride - padding + ky
                        if iy < 0 || iy >= h { continue }
                        for kx in 0..<kernelWidth {
                            let ix = ox * stride - padding + kx
                            if ix < 0 || ix >= w { continue }
                            sum += plane[iy * w + ix] * kernel[ky * kernelWidth + kx]
                        }
                    }
                    out[oy * ow + ox] = sum
                }
            }
        }
    }
}

/// A 2-D transposed convolution: weight `[in, out, kh, kw]` (PyTorch layout, groups = 1) and bias.
public struct ConvTranspose2D: Sendable {
    /// Weight, `[inChannels, outChannels, kernelHeight, kernelWidth]`, flattened.
    public private(set) var weight: [Float]
    /// Bias per output channel, or nil.
    public private(set) var bias: [Float]?
    public let inChannels: Int
    public let outChannels: Int
    public let kernelHeight: Int
    public let kernelWidth: Int
    public let stride: Int
    public let padding: Int

    /// Creates a transposed convolution.
    public init(weight: [Float], bias: [Float]?, inChannels: Int, outChannels: Int,
                kernel: (Int, Int), stride: Int, padding: Int = 0) {
        precondition(weight.count == inChannels * outChannels * kernel.0 * kernel.1, "ConvTranspose2D: weight size")
        precondition(bias == nil || bias!.count == outChannels, "ConvTranspose2D: bias size")
        self.weight = weight
        self.bias = bias
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelHeight = kernel.0
        self.kernelWidth = kernel.1
        self.stride = stride
        self.padding = padding
    }

    /// Output spatial size for an input of `height × width`.
    public func outputSize(height: Int, width: Int) -> (Int, Int) {
        ((height - 1) * stride - 2 * padding + kernelHeight, (width - 1) * stride - 2 * padding + kernelWidth)
    }

    /// Applies the layer: one GEMM `Wᵀ·X` to `[out·kh·kw, h·w]`, then col2im (scatter-add).
    public func callAsFunction(_ x: Tensor, activation: Activation = .identity, workspace: Workspace) -> Tensor {
        precondition(x.rank == 4 && x.channels == inChannels, "ConvTranspose2D: input \(x.shape)")
        let (n, h, w) = (x.shape[0], x.height, x.width)
        let (oh, ow) = outputSize(height: h, width: w)
        let rowsK = outChannels * kernelHeight * kernelWidth
        let y = workspace.zeros([n, outChannels, oh, ow])
        let column = workspace.make([rowsK * h * w])
        weight.withUnsafeBufferPointer { wp in
            for b in 0..<n {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(rowsK), Int32(h * w), Int32(inChannels),
                            1, wp.baseAddress!, Int32(rowsK), x.base + b * inChannels * h * w, Int32(h * w),
                            0, column.base, Int32(h * w))
                let out = y.base + b * outChannels * oh * ow
                Parallel.forEach(outChannels, threads: workspace.loopThreads, minimumWork: kernelHeight * kernelWidth * h * w) { c in
                    var r = c * kernelHeight * kernelWidth
                    for ky in 0..<kernelHeight {
                        for kx in 0..<kernelWidth {
                            let row = column.base + r * h * w
                            r += 1
                            for iy in 0..<h {
                                let oy = iy * stride - padding + ky
                                if oy < 0 || oy >= oh { continue }
                                let line = out + (c * oh + oy) * ow
                                for ix in 0..<w {
                                    let ox = ix * stride - padding + kx
                                    if ox >= 0 && ox < ow { line[ox] += row[iy * w + ix] }
                                }
                            }
                        }
                    }
                }
            }
        }
        applyBiasActivation(y, bias: bias, activation: activation, threads: workspace.loopThreads)
        return y
    }
}

/// Adds a per-channel bias to an NCHW tensor and applies `activation`, in place.
func applyBiasActivation(_ y: Tensor, bias: [Float]?, activation: Activation, threads: Int) {
    let channels = y.shape[1]
    let plane = y.count / (y.shape[0] * channels)
    let batches = y.shape[0]
    let zeros = [Float](repeating: 0, count: 0)
    (bias ?? zeros).withUnsafeBufferPointer { bp in
        Parallel.forEach(batches * channels, threads: threads, minimumWork: plane) { bc in
            let c = bc % channels
            do {
                let p = y.base + bc * plane
                let add = bias == nil ? 0 : bp[c]
                switch activation {
                case .identity:
                    if add != 0 { for i in 0..<plane { p[i] += add } }
                case .relu:
                    for i in 0..<plane { p[i] = max(p[i] + add, 0) }
                case .gelu:
                    for i in 0..<plane { p[i] = gelu(p[i] + add) }
                case .sigmoid:
                    for i in 0..<plane { p[i] = sigmoid(p[i] + add) }
                }
            }
        }
    }
}
