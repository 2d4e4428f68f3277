import _DepthNetKernels
import Foundation

@inline(__always) func gelu(_ x: Float) -> Float { 0.5 * x * (1 + erff(x * 0.70710678118654752)) }
@inline(__always) func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }
/// log(1 + e^x), computed without overflow (PyTorch's threshold 20 behaviour within float precision).
@inline(__always) func softplus(_ x: Float) -> Float { x > 20 ? x : log1pf(expf(x)) }

/// Elementwise and shape operations on ``Tensor``s. Results come from the workspace; inputs are
/// never modified unless the function's name says `InPlace`.
public enum Ops {
    /// Applies `activation` to every element.
    public static func activate(_ x: Tensor, _ activation: Activation, workspace: Workspace) -> Tensor {
        let y = workspace.make(x.shape)
        let (s, d) = (x.base, y.base)
        switch activation {
        case .identity: d.update(from: s, count: x.count)
        case .relu: for i in 0..<x.count { d[i] = max(s[i], 0) }
        case .gelu: for i in 0..<x.count { d[i] = gelu(s[i]) }
        case .sigmoid: for i in 0..<x.count { d[i] = sigmoid(s[i]) }
        }
        return y
    }

    /// `a + b` for tensors of the same shape.
    public static func add(_ a: Tensor, _ b: Tensor, workspace: Workspace) -> Tensor {
        precondition(a.shape == b.shape, "add: \(a.shape) vs \(b.shape)")
        let y = workspace.make(a.shape)
        for i in 0..<a.count { y.base[i] = a.base[i] + b.base[i] }
        return y
    }

    /// `a += b` for tensors of the same shape.
    public static func addInPlace(_ a: Tensor, _ b: Tensor) {
        precondition(a.shape == b.shape, "add: \(a.shape) vs \(b.shape)")
        for i in 0..<a.count { a.base[i] += b.base[i] }
    }

    /// Per image, the mean of each channel over all positions of an NCHW tensor (`N` arrays of `C`).
    public static func channelMeans(_ x: Tensor) -> [[Float]] {
        precondition(x.rank == 4, "channelMeans: \(x.shape)")
        let (n, c, plane) = (x.shape[0], x.channels, x.height * x.width)
        return (0..<n).map { b in
            (0..<c).map { k in
                let p = x.base + (b * c + k) * plane
                var sum = 0.0
                for i in 0..<plane { sum += Double(p[i]) }
                return Float(sum / Double(max(plane, 1)))
            }
        }
    }

    /// The mirror image of an NCHW tensor: every row reversed (column `c` ← column `W − 1 − c`).
    public static func mirrorColumns(_ x: Tensor, workspace: Workspace) -> Tensor {
        precondition(x.rank == 4, "mirrorColumns: \(x.shape)")
        let y = workspace.make(x.shape)
        let w = x.width
        for r in 0..<(x.count / max(w, 1)) {
            let (s, d) = (x.base + r * w, y.base + r * w)
            for c in 0..<w { d[c] = s[w - 1 - c] }
        }
        return y
    }

    /// Concatenates NCHW tensors along the channel axis.
    public static func concatChannels(_ parts: [Tensor], workspace: Workspace) -> Tensor {
        precondition(!parts.isEmpty)
        let (n, h, w) = (parts[0].shape[0], parts[0].height, parts[0].width)
        precondition(parts.allSatisfy { $0.rank == 4 && $0.shape[0] == n && $0.height == h && $0.width == w },
                     "concat: \(parts.map(\.shape))")
        let channels = parts.reduce(0) { $0 + $1.channels }
        let y = workspace.make([n, channels, h, w])
        var offset = 0
        for b in 0..<n {
            for part in parts {
                let size = part.channels * h * w
                (y.base + offset).update(from: part.base + b * size, count: size)
                offset += size
            }
        }
        return y
    }

    /// Max pooling (PyTorch `max_pool2d`, padding treated as −∞).
    public static func maxPool(_ x: Tensor, kernel: Int, stride: Int, padding: Int = 0, workspace: Workspace) -> Tensor {
        pool(x, kernel: kernel, stride: stride, padding: padding, workspace: workspace, isMax: true)
    }

    /// Average pooling (PyTorch `avg_pool2d` with `count_include_pad=True`).
    public static func averagePool(_ x: Tensor, kernel: Int, stride: Int, padding: Int = 0, workspace: Workspace) -> Tensor {
        pool(x, kernel: kernel, stride: stride, padding: padding, workspace: workspace, isMax: false)
    }

    private static func pool(_ x: Tensor, kernel: Int, stride: Int, padding: Int, workspace: Workspace, isMax: Bool) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.channels, x.height, x.width)
        let oh = (h + 2 * padding - kernel) / stride + 1, ow = (w + 2 * padding - kernel) / stride + 1
        let y = workspace.make([n, c, oh, ow])
        let area = Float(kernel * kernel)
        for p in 0..<(n * c) {
            let src = x.base + p * h * w, dst = y.base + p * oh * ow
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var acc: Float = isMax ? -.infinity : 0
                    for ky in 0..<kernel {
                        let iy = oy * stride - padding + ky
                        if iy < 0 || iy >= h { continue }
                        for kx in 0..<kernel {
                            let ix = ox * stride - padding + kx
                            if ix < 0 || ix >= w { continue }
                            let v = src[iy * w + ix]
                            acc = isMax ? max(acc, v) : acc + v
                        }
                    }
                    dst[oy * ow + ox] = isMax ? acc : acc / area
                }
            }
        }
        return y
    }

    /// Nearest-neighbour resize to `height × width` (PyTorch `mode="nearest"`: src = ⌊dst·in/out⌋).
    public static func resizeNearest(_ x: Tensor, height oh: Int, width ow: Int, workspace: Workspace) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.channels, x.height, x.width)
        let y = workspace.make([n, c, oh, ow])
        let sy = Float(h) / Float(oh), sx = Float(w) / Float(ow)
        let xs = (0..<ow).map { min(Int(Float($0) * sx), w - 1) }
        for p in 0..<(n * c) {
            let src = x.base + p * h * w, dst = y.base + p * oh * ow
            for oy in 0..<oh {
                let line = src + min(Int(Float(oy) * sy), h - 1) * w
                for ox in 0..<ow { dst[oy * ow + ox] = line[xs[ox]] }
            }
        }
        return y
    }

    /// Bilinear resize to `height × width` with PyTorch's `interpolate(mode="bilinear")` sampling:
    /// `alignCorners` true maps corner pixel centres onto each other; false maps pixel edges
    /// (src = (dst + ½)·in/out − ½, clamped at 0).
    public static func resizeBilinear(_ x: Tensor, height oh: Int, width ow: Int, alignCorners: Bool,
                                      kernels: KernelChoice = .automatic, workspace: Workspace) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.channels, x.height, x.width)
        let y = workspace.make([n, c, oh, ow])
        let ys = linearTaps(input: h, output: oh, alignCorners: alignCorners)
        let xs = linearTaps(input: w, output: ow, alignCorners: alignCorners)
        resizeBilinear(x, into: y.base, ys: ys, xs: xs, kernels: kernels, threads: workspace.loopThreads)
        return y
    }

    /// Bilinear resampling of every plane of `x` into `out` (planes of `ys.count × xs.count`).
    /// Plane `p` starts at `out + p · planeStride` (default: `oh · ow`), rows `rowStride` apart
    /// (default: `ow`): a padded layout can be filled in place.
    static func resizeBilinear(_ x: Tensor, into out: UnsafeMutablePointer<Float>, ys: [LinearTap], xs: [LinearTap],
                               rowStride: Int? = nil, planeStride: Int? = nil, kernels: KernelChoice, threads: Int) {
        let (n, c, h, w) = (x.shape[0], x.channels, x.height, x.width)
        let (oh, ow) = (ys.count, xs.count)
        let rowStride = rowStride ?? ow, planeStride = planeStride ?? oh * ow
        // The taps of an exact ×2 resize with align_corners=False (the U-Net decoder's case).
        let exactDouble = ow == 2 * w && w > 1 && xs[0].t == 0 && xs[1].i0 == 0 && xs[1].t == 0.25 && xs[2].i0 == 0
        // Vertical blend of the two source rows first (a contiguous, vectorisable loop), then
        // the horizontal taps on that one row.
        let chunks = max(1, threads), level = kernels.vectorLevel
        withUnsafeTemporaryAllocation(of: Float.self, capacity: w * chunks) { scratch in
        let blended = scratch.baseAddress!
        ys.withUnsafeBufferPointer { ys in xs.withUnsafeBufferPointer { xs in
        Parallel.forEachChunk(n * c, limit: chunks, minimumWork: oh * ow) { chunk, planes in
            let row = blended + chunk * w
            for p in planes {
                let src = x.base + p * h * w, dst = out + p * planeStride
                for oy in 0..<oh {
                    let ty = ys[oy]
                    let r0 = src + ty.i0 * w, r1 = src + ty.i1 * w
                    let a = 1 - ty.t, b = ty.t
                    let line = dst + oy * rowStride
                    if exactDouble {
                        // ×2 with align_corners=False: taps at i − ¼ and i + ¼, blended in one pass.
                        mr_upsample2x_row(level, r0, r1, a, b, Int32(w), line)
                        continue
                    }
                    for i in 0..<w { row[i] = r0[i] * a + r1[i] * b }
                    for ox in 0..<ow {
                        let tx = xs[ox]
                        line[ox] = row[tx.i0] * (1 - tx.t) + row[tx.i1] * tx.t
                    }
                }
            }
        }
        } }
        }
    }

    /// Bilinear ×-resize of `x` to the size of `skip` (align_corners=False), concatenated with
    /// `skip` along channels in one buffer: the U-Net decoder's `cat([up(x), skip], 1)`.
    public static func upsampleConcat(_ x: Tensor, _ skip: Tensor, kernels: KernelChoice = .automatic,
                                      workspace: Workspace) -> Tensor {
        precondition(x.shape[0] == 1 && skip.shape[0] == 1, "upsampleConcat: batch 1 only")
        let (oh, ow) = (skip.height, skip.width)
        let y = workspace.make([1, x.channels + skip.channels, oh, ow])
        resizeBilinear(x, into: y.base, ys: linearTaps(input: x.height, output: oh, alignCorners: false),
                       xs: linearTaps(input: x.width, output: ow, alignCorners: false), kernels: kernels,
                       threads: workspace.loopThreads)
        copyPlanes(skip, into: y.base + x.channels * oh * ow, rowStride: ow, planeStride: oh * ow, threads: workspace.loopThreads)
        return y
    }

    /// ``upsampleConcat(_:_:workspace:)`` written into the interior of a zero-bordered padded
    /// buffer `[1, x.channels + skip.channels, H + 2·padding, W + 2·padding]` (see
    /// ``Conv2D/makePaddedInput(height:width:activation:workspace:)``), saving the next
    /// convolution its padded copy.
    public static func upsampleConcat(_ x: Tensor, _ skip: Tensor, intoPadded out: Tensor, padding: Int,
                                      kernels: KernelChoice = .automatic, workspace: Workspace) {
        let (oh, ow) = (skip.height, skip.width)
        let (hp, wp) = (oh + 2 * padding, ow + 2 * padding)
        precondition(x.shape[0] == 1 && skip.shape[0] == 1 && out.shape == [1, x.channels + skip.channels, hp, wp],
                     "upsampleConcat(intoPadded:): shapes \(x.shape), \(skip.shape) → \(out.shape)")
        let interior = out.base + padding * wp + padding
        resizeBilinear(x, into: interior, ys: linearTaps(input: x.height, output: oh, alignCorners: false),
                       xs: linearTaps(input: x.width, output: ow, alignCorners: false), rowStride: wp, planeStride: hp * wp,
                       kernels: kernels, threads: workspace.loopThreads)
        copyPlanes(skip, into: interior + x.channels * hp * wp, rowStride: wp, planeStride: hp * wp, threads: workspace.loopThreads)
    }

    /// ``resizeBilinear(_:height:width:alignCorners:workspace:)`` written into the interior of a
    /// zero-bordered padded buffer `[N, C, height + 2·padding, width + 2·padding]`.
    public static func resizeBilinear(_ x: Tensor, alignCorners: Bool, intoPadded out: Tensor, padding: Int,
                                      kernels: KernelChoice = .automatic, workspace: Workspace) {
        let (hp, wp) = (out.height, out.width)
        let (oh, ow) = (hp - 2 * padding, wp - 2 * padding)
        precondition(out.shape[0] == x.shape[0] && out.channels == x.channels && oh > 0 && ow > 0,
                     "resizeBilinear(intoPadded:): \(x.shape) → \(out.shape)")
        resizeBilinear(x, into: out.base + padding * wp + padding,
                       ys: linearTaps(input: x.height, output: oh, alignCorners: alignCorners),
                       xs: linearTaps(input: x.width, output: ow, alignCorners: alignCorners), rowStride: wp, planeStride: hp * wp,
                       kernels: kernels, threads: workspace.loopThreads)
    }

    /// Copies every plane of `x` into `out`, plane `p` at `out + p · planeStride`, rows `rowStride` apart.
    static func copyPlanes(_ x: Tensor, into out: UnsafeMutablePointer<Float>, rowStride: Int, planeStride: Int, threads: Int) {
        let (planes, h, w) = (x.shape[0] * x.channels, x.height, x.width)
        Parallel.forEach(planes, threads: threads, minimumWork: h * w / 8) { p in
            let src = x.base + p * h * w, dst = out + p * planeStride
            if rowStride == w {
                dst.update(from: src, count: h * w)
            } else {
                for y in 0..<h { (dst + y * rowStride).update(from: src + y * w, count: w) }
            }
        }
    }

    struct LinearTap { var i0: Int; var i1: Int; var t: Float }

    static func linearTaps(input: Int, output: Int, alignCorners: Bool) -> [LinearTap] {
        (0..<output).map { d in
            var s: Float
            if alignCorners {
                s = output > 1 ? Float(d) * Float(input - 1) / Float(output - 1) : 0
            } else {
                s = max((Float(d) + 0.5) * Float(input) / Float(output) - 0.5, 0)
            }
            let i0 = min(Int(s), input - 1)
            let i1 = min(i0 + 1, input - 1)
            return LinearTap(i0: i0, i1: i1, t: s - Float(i0))
        }
    }

    /// Bicubic resize (PyTorch `mode="bicubic"`, `align_corners=False`, a = −0.75, borders clamped).
    public static func resizeBicubic(_ x: Tensor, height oh: Int, width ow: Int, workspace: Workspace) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.channels, x.height, x.width)
        let y = workspace.make([n, c, oh, ow])
        let ys = cubicTaps(input: h, output: oh), xs = cubicTaps(input: w, output: ow)
        for p in 0..<(n * c) {
            let src = x.base + p * h * w, dst = y.base + p * oh * ow
            for oy in 0..<oh {
                let ty = ys[oy]
                for ox in 0..<ow {
                    let tx = xs[ox]
                    var sum: Float = 0
                    for j in 0..<4 {
                        let row = src + ty.index[j] * w
                        var line: Float = 0
                        for i in 0..<4 { line += row[tx.index[i]] * tx.weight[i] }
                        sum += line * ty.weight[j]
                    }
                    dst[oy * ow + ox] = sum
                }
            }
        }
        return y
    }

    struct CubicTap { var index: [Int]; var weight: [Float] }

    static func cubicTaps(input: Int, output: Int) -> [CubicTap] {
        let a: Float = -0.75
        func near(_ x: Float) -> Float { ((a + 2) * x - (a + 3)) * x * x + 1 }
        func far(_ x: Float) -> Float { ((a * x - 5 * a) * x + 8 * a) * x - 4 * a }
        let scale = Float(input) / Float(output)
        return (0..<output).map { d in
            let real = scale * (Float(d) + 0.5) - 0.5
            let base = Int(real.rounded(.down))
            let t = real - Float(base)
            let index = (-1...2).map { min(max(base + $0, 0), input - 1) }
            return CubicTap(index: index, weight: [far(t + 1), near(t), near(1 - t), far(2 - t)])
        }
    }
}
