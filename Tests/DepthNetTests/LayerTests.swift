import Foundation
import SeededRandom
import Testing
@testable import DepthNet

@Suite("Layers against PyTorch")
struct LayerTests {
    let fixtures: SafeTensorsFile
    let workspace = Workspace()

    init() throws { fixtures = try Fixtures.file("layers.safetensors") }

    struct ConvCase: Sendable, CustomStringConvertible {
        let name: String, stride: Int, padding: Int, groups: Int
        var description: String { name }
    }

    @Test("Conv2D: im2col+sgemm, 1×1 GEMM, grouped, depthwise, strided", arguments: [
        ConvCase(name: "conv3x3", stride: 1, padding: 1, groups: 1),
        ConvCase(name: "conv3x3_s2", stride: 2, padding: 1, groups: 1),
        ConvCase(name: "conv5x5_p2_nobias", stride: 1, padding: 2, groups: 1),
        ConvCase(name: "conv_groups2", stride: 1, padding: 1, groups: 2),
        ConvCase(name: "depthwise", stride: 1, padding: 1, groups: 6),
        ConvCase(name: "depthwise_s2", stride: 2, padding: 1, groups: 6),
        ConvCase(name: "conv1x1", stride: 1, padding: 0, groups: 1),
        ConvCase(name: "conv_patch", stride: 4, padding: 0, groups: 1),
    ])
    func convolution(_ c: ConvCase) throws {
        let x = try fixtures.tensor("\(c.name).x")
        let ws = fixtures.shape("\(c.name).weight")
        let conv = Conv2D(weight: try fixtures.values("\(c.name).weight"), bias: try fixtures.floats("\(c.name).bias"),
                          outChannels: ws[0], inChannels: ws[1] * c.groups, kernel: (ws[2], ws[3]),
                          stride: c.stride, padding: c.padding, groups: c.groups)
        let y = conv(x, workspace: workspace)
        expectClose(y, try fixtures.values("\(c.name).y"), shape: fixtures.shape("\(c.name).y"), c.name)
    }

    @Test("ConvTranspose2D", arguments: [("convt_k2s2", 2, 0), ("convt_k4s4", 4, 0), ("convt_k3s2p1", 2, 1)])
    func transposedConvolution(_ name: String, _ stride: Int, _ padding: Int) throws {
        let ws = fixtures.shape("\(name).weight")
        let layer = ConvTranspose2D(weight: try fixtures.values("\(name).weight"), bias: try fixtures.floats("\(name).bias"),
                                    inChannels: ws[0], outChannels: ws[1], kernel: (ws[2], ws[3]),
                                    stride: stride, padding: padding)
        let y = layer(try fixtures.tensor("\(name).x"), workspace: workspace)
        expectClose(y, try fixtures.values("\(name).y"), shape: fixtures.shape("\(name).y"), name)
    }

    @Test("Batch norm folded into the convolution, fused ReLU")
    func batchNormFolding() throws {
        var conv = Conv2D(weight: try fixtures.values("convbn.weight"), bias: nil,
                          outChannels: 6, inChannels: 4, kernel: (3, 3), padding: 1)
        conv.foldBatchNorm(gamma: try fixtures.values("convbn.bn.weight"), beta: try fixtures.values("convbn.bn.bias"),
                           mean: try fixtures.values("convbn.bn.running_mean"),
                           variance: try fixtures.values("convbn.bn.running_var"), epsilon: 1e-5)
        let y = conv(try fixtures.tensor("convbn.x"), activation: .relu, workspace: workspace)
        expectClose(y, try fixtures.values("convbn.y"), shape: [1, 6, 7, 8])
    }

    @Test("Resize: bilinear (align_corners both ways), nearest, bicubic", arguments: [(10, 14), (13, 17), (3, 4)])
    func resize(_ h: Int, _ w: Int) throws {
        let x = try fixtures.tensor("resize.x")
        for alignCorners in [true, false] {
            let y = Ops.resizeBilinear(x, height: h, width: w, alignCorners: alignCorners, workspace: workspace)
            expectClose(y, try fixtures.values("resize.bilinear_\(h)x\(w)_ac\(alignCorners ? 1 : 0)"),
                        shape: [1, 3, h, w], "bilinear ac=\(alignCorners)")
        }
        expectClose(Ops.resizeNearest(x, height: h, width: w, workspace: workspace),
                    try fixtures.values("resize.nearest_\(h)x\(w)"), shape: [1, 3, h, w], "nearest")
        expectClose(Ops.resizeBicubic(x, height: h, width: w, workspace: workspace),
                    try fixtures.values("resize.bicubic_\(h)x\(w)"), shape: [1, 3, h, w], "bicubic")
    }

    @Test("Bilinear ×2 (scale_factor=2) both ways")
    func bilinearDouble() throws {
        let x = try fixtures.tensor("resize.x")
        for ac in [0, 1] {
            let y = Ops.resizeBilinear(x, height: 10, width: 14, alignCorners: ac == 1, workspace: workspace)
            expectClose(y, try fixtures.values("resize.bilinear_x2_ac\(ac)"), shape: [1, 3, 10, 14])
        }
    }

    @Test("Pooling: max and average, with padding")
    func pooling() throws {
        let x = try fixtures.tensor("pool.x")
        expectClose(Ops.maxPool(x, kernel: 2, stride: 2, workspace: workspace), try fixtures.values("pool.max_k2s2"),
                    shape: fixtures.shape("pool.max_k2s2"))
        expectClose(Ops.maxPool(x, kernel: 3, stride: 2, padding: 1, workspace: workspace),
                    try fixtures.values("pool.max_k3s2p1"), shape: fixtures.shape("pool.max_k3s2p1"))
        expectClose(Ops.averagePool(x, kernel: 2, stride: 2, workspace: workspace), try fixtures.values("pool.avg_k2s2"),
                    shape: fixtures.shape("pool.avg_k2s2"))
        expectClose(Ops.averagePool(x, kernel: 3, stride: 2, padding: 1, workspace: workspace),
                    try fixtures.values("pool.avg_k3s2p1"), shape: fixtures.shape("pool.avg_k3s2p1"))
    }

    @Test("LayerNorm and Linear (+GELU)")
    func layerNormAndLinear() throws {
        let x = try fixtures.tensor("layernorm.x")
        let norm = LayerNorm(weight: try fixtures.values("layernorm.weight"), bias: try fixtures.values("layernorm.bias"),
                             epsilon: 1e-6)
        expectClose(norm(x, workspace: workspace), try fixtures.values("layernorm.y"), shape: [11, 24], "layernorm")
        let linear = Linear(weight: try fixtures.values("linear.weight"), bias: try fixtures.values("linear.bias"),
                            inFeatures: 24, outFeatures: 10)
        expectClose(linear(x, workspace: workspace), try fixtures.values("linear.y"), shape: [11, 10], "linear")
        expectClose(linear(x, activation: .gelu, workspace: workspace), try fixtures.values("linear.y_gelu"),
                    shape: [11, 10], "linear+gelu")
    }

    @Test("Multi-head self-attention")
    func attention() throws {
        func linear(_ name: String) throws -> Linear {
            Linear(weight: try fixtures.values("attention.\(name).weight"), bias: try fixtures.values("attention.\(name).bias"),
                   inFeatures: 24, outFeatures: 24)
        }
        let attention = MultiHeadAttention(query: try linear("query"), key: try linear("key"), value: try linear("value"),
                                           output: try linear("output"), heads: 4)
        let y = attention(try fixtures.tensor("attention.x"), workspace: workspace)
        expectClose(y, try fixtures.values("attention.y"), shape: [13, 24])
    }

    @Test("Activations, concatenation, addition")
    func elementwise() throws {
        let x = try fixtures.tensor("act.x")
        for (activation, name) in [(Activation.relu, "relu"), (.gelu, "gelu"), (.sigmoid, "sigmoid")] {
            expectClose(Ops.activate(x, activation, workspace: workspace), try fixtures.values("act.\(name)"),
                        shape: x.shape, name)
        }
        let a = try fixtures.tensor("cat.a"), b = try fixtures.tensor("cat.b")
        expectClose(Ops.concatChannels([a, b], workspace: workspace), try fixtures.values("cat.y"), shape: [1, 5, 4, 5])
        let sum = Ops.add(a, a, workspace: workspace)
        expectClose(sum, a.toArray().map { 2 * $0 }, shape: a.shape, "add")
    }

    @Test("The packed vector kernel and cblas_sgemm agree (odd channel counts, column tails, groups, ReLU)",
          arguments: [(13, 5, 3, 1, 1, 37, 29), (8, 16, 3, 2, 1, 33, 64), (24, 12, 1, 1, 2, 17, 19), (3, 7, 3, 1, 1, 1, 1),
                      (6, 4, 3, 2, 1, 31, 63), (5, 9, 1, 1, 1, 4, 32), (9, 3, 5, 1, 1, 6, 16), (11, 3, 3, 1, 1, 5, 256)])
    func packedKernel(_ cout: Int, _ cin: Int, _ k: Int, _ stride: Int, _ groups: Int, _ h: Int, _ w: Int) throws {
        var generator = SplitMix64(seed: UInt64(cout * 1000 + cin))
        let weight = (0..<(cout * cin / groups * k * k)).map { _ in generator.nextGaussian() }
        let bias = (0..<cout).map { _ in generator.nextGaussian() }
        let x = Tensor(shape: [1, cin, h, w], values: (0..<(cin * h * w)).map { _ in generator.nextGaussian() })
        for kernels in KernelChoice.allCases {
            let conv = Conv2D(weight: weight, bias: bias, outChannels: cout, inChannels: cin, kernel: (k, k),
                              stride: stride, padding: k / 2, groups: groups, kernels: kernels)
            let reference = conv.withoutPackedKernel()
            #expect(!reference.usesPackedKernel)
            let depthwise = groups == cin && groups == cout && groups > 1
            #expect(conv.usesPackedKernel == (kernels.usesPackedKernel && !depthwise))
            for activation in [Activation.identity, .relu, .sigmoid] {
                let expected = reference(x, activation: activation, workspace: workspace).toArray()
                let y = conv(x, activation: activation, workspace: workspace)
                #expect(relativeError(y.toArray(), expected) <= 1e-5, "\(activation), \(kernels)")
            }
        }
    }

    @Test("Workspace reuses buffers: a repeated layer sequence allocates nothing new")
    func workspaceReuse() throws {
        let x = try fixtures.tensor("conv3x3.x")
        let conv = Conv2D(weight: try fixtures.values("conv3x3.weight"), bias: try fixtures.floats("conv3x3.bias"),
                          outChannels: 7, inChannels: 5, kernel: (3, 3), padding: 1)
        let ws = Workspace()
        func run() -> [Float] {
            let y = conv(x, activation: .relu, workspace: ws)
            let z = Ops.resizeBilinear(y, height: 18, width: 22, alignCorners: false, workspace: ws)
            return Ops.maxPool(z, kernel: 2, stride: 2, workspace: ws).toArray()
        }
        let first = run()
        let allocations = ws.allocationCount
        let second = run()
        #expect(ws.allocationCount == allocations)
        #expect(first == second)
        #expect(ws.bytesInUse == 0)
        #expect(ws.peakBytesInUse > 0)
    }
}
