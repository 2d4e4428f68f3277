import Foundation
import Testing
import _DepthNetKernels
@testable import DepthNet

/// The small C helpers of `_DepthNetKernels` against their plain definitions (vector and scalar paths).
@Suite("C helper kernels")
struct KernelTests {
    /// The vector levels this processor runs: 0 (scalar) up to its own.
    static let levels = Array(0...KernelChoice.processorLevel)

    @Test("mrdepth post-processing: exp, softplus, sigmoid over the whole float range", arguments: levels)
    func post(level: Int32) {
        // −100 … 100 in small steps plus lengths that leave a scalar tail
        let values = (0..<4001).map { Float($0 - 2000) / 20 } + [0, -0, 1e-8, -1e-8, 20.0001, 19.9999, 87, -87]
        for count in [values.count, 15, 17] {
            var front = Array(values.prefix(count).map { min($0, 80) }), back = Array(values.prefix(count)), mask = Array(values.prefix(count).reversed())
            let (f0, b0, m0) = (front, back, mask)
            mr_mrdepth_post(level, &front, &back, &mask, count)
            for i in 0..<count {
                let f = Double(f0[i]), x = Double(b0[i]), z = Double(m0[i])
                let ef = exp(f), eb = ef * (1 + (x > 30 ? x : log1p(exp(x)))), em = 1 / (1 + exp(-z))
                // relative error, or absolute below the smallest normal float (e^−87 and beyond: the
                // vector exp clamps there instead of returning denormals)
                func close(_ got: Float, _ want: Double) -> Bool { abs(Double(got) - want) <= max(4e-6 * want, 2e-38) }
                #expect(close(front[i], ef), "front \(f)")
                #expect(close(back[i], eb), "back \(f), \(x)")
                #expect(close(mask[i], em), "mask \(z)")
            }
        }
    }

    @Test("a prepared plane is the zero-padded input split by stride phase", arguments: [1, 2, 3])
    func preparePlane(stride: Int) {
        for (h, w, pad) in [(5, 7, 1), (8, 33, 1), (6, 40, 2), (4, 3, 0)] {
            let input = (0..<(h * w)).map { Float($0) + 1 }
            let hp = h + 2 * pad, wq = (w + 2 * pad + stride - 1) / stride
            for phase in 0..<stride {
                var out = [Float](repeating: .nan, count: hp * wq)
                mr_prepare_plane(input, Int32(h), Int32(w), Int32(pad), Int32(stride), Int32(phase), Int32(hp), Int32(wq), &out)
                for y in 0..<hp {
                    for i in 0..<wq {
                        let iy = y - pad, ix = stride * i + phase - pad
                        let expected: Float = iy >= 0 && iy < h && ix >= 0 && ix < w ? input[iy * w + ix] : 0
                        #expect(out[y * wq + i] == expected, "h \(h) w \(w) pad \(pad) stride \(stride) phase \(phase) at \(y),\(i)")
                    }
                }
            }
        }
    }

    @Test("×2 upsampling rows match the two-tap definition", arguments: [2, 3, 16, 17, 18, 40, 64], levels)
    func upsampleRow(width: Int, level: Int32) {
        let r0 = (0..<width).map { sin(Float($0) * 0.7) }, r1 = (0..<width).map { cos(Float($0) * 0.3) }
        let (a, b): (Float, Float) = (0.25, 0.75)
        var out = [Float](repeating: .nan, count: 2 * width)
        mr_upsample2x_row(level, r0, r1, a, b, Int32(width), &out)
        let row = (0..<width).map { a * r0[$0] + b * r1[$0] }
        var expected = [Float](repeating: 0, count: 2 * width)
        expected[0] = row[0]
        expected[2 * width - 1] = row[width - 1]
        for i in 0..<(width - 1) {
            expected[2 * i + 1] = 0.75 * row[i] + 0.25 * row[i + 1]
            expected[2 * i + 2] = 0.25 * row[i] + 0.75 * row[i + 1]
        }
        for i in 0..<(2 * width) { #expect(abs(out[i] - expected[i]) <= 1e-6, "width \(width) at \(i)") }
    }
}

/// Convolutions whose output sizes leave partial panels (odd heights, 16-column tails) against a
/// plain six-loop convolution.
@Suite("Convolution panel shapes")
struct ConvolutionShapeTests {
    static func reference(_ x: [Float], cin: Int, h: Int, w: Int, weight: [Float], bias: [Float], cout: Int,
                          kernel: Int, stride: Int, padding: Int) -> [Float] {
        let oh = (h + 2 * padding - kernel) / stride + 1, ow = (w + 2 * padding - kernel) / stride + 1
        var y = [Float](repeating: 0, count: cout * oh * ow)
        for o in 0..<cout {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var sum = Double(bias[o])
                    for c in 0..<cin {
                        for ky in 0..<kernel {
                            for kx in 0..<kernel {
                                let iy = oy * stride - padding + ky, ix = ox * stride - padding + kx
                                guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                                sum += Double(weight[((o * cin + c) * kernel + ky) * kernel + kx]) * Double(x[(c * h + iy) * w + ix])
                            }
                        }
                    }
                    y[(o * oh + oy) * ow + ox] = max(Float(sum), 0)
                }
            }
        }
        return y
    }

    @Test("odd output heights and 16-column tails", arguments: [(7, 48, 1), (5, 16, 1), (3, 80, 1), (14, 96, 2), (9, 32, 1)])
    func partialPanels(height: Int, width: Int, stride: Int) {
        let (cin, cout) = (5, 11)
        var state: UInt32 = 12345
        func next() -> Float { state = state &* 1_664_525 &+ 1_013_904_223; return Float(state >> 8) / Float(1 << 24) - 0.5 }
        let x = (0..<(cin * height * width)).map { _ in next() }
        let weight = (0..<(cout * cin * 9)).map { _ in next() }, bias = (0..<cout).map { _ in next() }
        for kernels in KernelChoice.allCases {
            let conv = Conv2D(weight: weight, bias: bias, outChannels: cout, inChannels: cin, kernel: (3, 3), stride: stride, padding: 1, kernels: kernels)
            let workspace = Workspace()
            let y = conv(Tensor(shape: [1, cin, height, width], values: x), activation: .relu, workspace: workspace).toArray()
            let expected = Self.reference(x, cin: cin, h: height, w: width, weight: weight, bias: bias, cout: cout,
                                          kernel: 3, stride: stride, padding: 1)
            #expect(y.count == expected.count)
            let worst = zip(y, expected).map { abs($0 - $1) }.max() ?? 0
            #expect(worst < 1e-5, "\(height)×\(width) stride \(stride) (\(kernels)): worst difference \(worst)")
        }
    }

    /// Rows shorter than 16 or not a multiple of it (the 8×8 and 4×4 layers of a 128 input) run on the
    /// channel-vectorised kernel: several channel blocks with a partial last block, 1–3-row tiles,
    /// column runs split in two or three, both strides.
    @Test("short output rows (channel-vector kernel)", arguments: [
        (8, 8, 1, 7, 40), (4, 4, 1, 9, 33), (16, 16, 2, 5, 20), (3, 5, 1, 4, 70), (7, 13, 1, 3, 32),
        (1, 1, 1, 6, 17), (9, 30, 2, 3, 12), (6, 20, 1, 2, 64), (5, 28, 1, 3, 8), (8, 8, 1, 96, 64),
    ])
    func shortRows(height: Int, width: Int, stride: Int, cin: Int, cout: Int) {
        var state: UInt32 = 777
        func next() -> Float { state = state &* 1_664_525 &+ 1_013_904_223; return Float(state >> 8) / Float(1 << 24) - 0.5 }
        let x = (0..<(cin * height * width)).map { _ in next() }
        let weight = (0..<(cout * cin * 9)).map { _ in next() }, bias = (0..<cout).map { _ in next() }
        for kernels in KernelChoice.allCases {
            let conv = Conv2D(weight: weight, bias: bias, outChannels: cout, inChannels: cin, kernel: (3, 3), stride: stride, padding: 1, kernels: kernels)
            let y = conv(Tensor(shape: [1, cin, height, width], values: x), activation: .relu, workspace: Workspace()).toArray()
            let expected = Self.reference(x, cin: cin, h: height, w: width, weight: weight, bias: bias, cout: cout,
                                          kernel: 3, stride: stride, padding: 1)
            #expect(y.count == expected.count)
            let worst = zip(y, expected).map { abs($0 - $1) }.max() ?? 0
            #expect(worst < 1e-5 * Float(max(1, cin / 8)), "\(height)×\(width) stride \(stride) \(cin)→\(cout) (\(kernels)): worst difference \(worst)")
        }
    }

    /// A layer writing into the next layer's padded input (interior = its plain output, borders
    /// still zero), from a plain input and from its own padded input, on both prepared paths.
    @Test("a layer writing into the next layer's padded input", arguments: [(16, 32, 1), (8, 8, 1), (12, 20, 2), (16, 64, 2)])
    func paddedOutput(height h: Int, width w: Int, stride: Int) throws {
        let (cin, cout, pad) = (5, 40, 1)
        let x = (0..<(cin * h * w)).map { Float(($0 * 37) % 101) / 50 - 1 }
        let weight = (0..<(cout * cin * 9)).map { Float(($0 * 13) % 29) / 29 - 0.5 }
        for kernels in KernelChoice.allCases {
            try paddedOutput(x, weight, cin: cin, cout: cout, pad: pad, height: h, width: w, stride: stride, kernels: kernels)
        }
    }

    func paddedOutput(_ x: [Float], _ weight: [Float], cin: Int, cout: Int, pad: Int, height h: Int, width w: Int, stride: Int,
                      kernels: KernelChoice) throws {
        let conv = Conv2D(weight: weight, bias: (0..<cout).map { Float($0 % 7) / 10 - 0.3 }, outChannels: cout, inChannels: cin,
                          kernel: (3, 3), stride: stride, padding: 1, kernels: kernels)
        let next = Conv2D(weight: [Float](repeating: 0.1, count: 4 * cout * 9), bias: nil, outChannels: 4, inChannels: cout,
                          kernel: (3, 3), padding: pad, kernels: kernels)
        let workspace = Workspace()
        let input = Tensor(shape: [1, cin, h, w], values: x)
        let plain = conv(input, activation: .relu, workspace: workspace).toArray()
        let (oh, ow) = conv.outputSize(height: h, width: w)
        guard conv.writesPaddedOutput(height: h, width: w, activation: .relu),
              let out = next.makePaddedInput(height: oh, width: ow, activation: .relu, workspace: workspace) else {
            #expect(!kernels.usesPackedKernel, "the packed kernel is on but the layer writes no padded output")
            return
        }
        #expect(!conv.writesPaddedOutput(height: h, width: w, activation: .gelu))
        let (hp, wp) = (oh + 2 * pad, ow + 2 * pad)
        func interior(_ t: Tensor) -> [Float] {
            let a = t.toArray()
            var values: [Float] = []
            for c in 0..<cout {
                for y in 0..<oh {
                    let row = (c * hp + y + pad) * wp + pad
                    values += a[row..<(row + ow)]
                }
            }
            return values
        }
        func border(_ t: Tensor) -> [Float] {
            let a = t.toArray()
            var values: [Float] = []
            for i in 0..<(cout * hp * wp) {
                let y = (i / wp) % hp, x = i % wp
                if y < pad || y >= hp - pad || x < pad || x >= wp - pad { values.append(a[i]) }
            }
            return values
        }
        conv(input, activation: .relu, intoPadded: out, padding: pad, workspace: workspace)
        #expect(interior(out) == plain)
        #expect(border(out).allSatisfy { $0 == 0 })
        if stride == 1, let paddedIn = conv.makePaddedInput(height: h, width: w, activation: .relu, workspace: workspace) {
            Ops.copyPlanes(input, into: paddedIn.base + (w + 2) + 1, rowStride: w + 2, planeStride: (h + 2) * (w + 2),
                           threads: workspace.loopThreads)
            let again = next.makePaddedInput(height: oh, width: ow, activation: .relu, workspace: workspace)!
            conv(padded: paddedIn, height: h, width: w, activation: .relu, intoPadded: again, padding: pad, workspace: workspace)
            #expect(interior(again) == plain)
        }
    }

    @Test("a layer fed through makePaddedInput gives what it gives on the plain tensor", arguments: [32, 8, 4])
    func paddedInput(w: Int) throws {
        let (cin, cout, h) = (6, 9, 12)
        let x = (0..<(cin * h * w)).map { Float(($0 * 37) % 101) / 50 - 1 }
        let weight = (0..<(cout * cin * 9)).map { Float(($0 * 13) % 29) / 29 - 0.5 }
        for kernels in KernelChoice.allCases {
            try paddedInput(x, weight, cin: cin, cout: cout, height: h, width: w, kernels: kernels)
        }
    }

    func paddedInput(_ x: [Float], _ weight: [Float], cin: Int, cout: Int, height h: Int, width w: Int, kernels: KernelChoice) throws {
        let conv = Conv2D(weight: weight, bias: (0..<cout).map { Float($0) / 10 }, outChannels: cout, inChannels: cin,
                          kernel: (3, 3), padding: 1, kernels: kernels)
        let workspace = Workspace()
        let input = Tensor(shape: [1, cin, h, w], values: x)
        let plain = conv(input, activation: .relu, workspace: workspace).toArray()
        guard let padded = conv.makePaddedInput(height: h, width: w, activation: .relu, workspace: workspace) else {
            #expect(!kernels.usesPackedKernel, "the packed kernel is on but the layer takes no padded input")
            return
        }
        #expect(conv.makePaddedInput(height: h, width: w, activation: .gelu, workspace: workspace) == nil)
        // Fill the interior as a producer would (the workspace may hand back a used buffer: only the
        // borders are zeroed by makePaddedInput).
        Ops.copyPlanes(input, into: padded.base + (w + 2) + 1, rowStride: w + 2, planeStride: (h + 2) * (w + 2),
                           threads: workspace.loopThreads)
        let viaPadded = conv(padded: padded, height: h, width: w, activation: .relu, workspace: workspace).toArray()
        #expect(viaPadded == plain)
    }
}
