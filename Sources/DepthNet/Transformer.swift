import CBLAS
import Foundation
import _DepthNetKernels

/// A fully connected layer, `y = x·Wᵀ + b`, weight `[out, in]` (PyTorch `nn.Linear` layout).
public struct Linear: Sendable {
    /// Weight `[outFeatures, inFeatures]`, flattened.
    public private(set) var weight: [Float]
    /// Bias `[outFeatures]`, or nil.
    public private(set) var bias: [Float]?
    public let inFeatures: Int
    public let outFeatures: Int
    /// The kernels this layer runs on (its weight is packed for them).
    public let kernels: KernelChoice
    /// Wᵀ in the vector kernel's 32-column panels (empty when ``kernels`` use no packed kernel).
    let packedWeight: [Float]

    /// Creates a linear layer.
    public init(weight: [Float], bias: [Float]?, inFeatures: Int, outFeatures: Int, kernels: KernelChoice = .automatic) {
        precondition(weight.count == inFeatures * outFeatures, "Linear: weight size")
        precondition(bias == nil || bias!.count == outFeatures, "Linear: bias size")
        self.weight = weight
        self.bias = bias
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.kernels = kernels
        if kernels.usesPackedKernel {
            var packed = [Float](repeating: 0, count: mr_packed_b_size(Int32(inFeatures), Int32(outFeatures)))
            weight.withUnsafeBufferPointer { w in
                packed.withUnsafeMutableBufferPointer {
                    mr_pack_b(Int32(inFeatures), Int32(outFeatures), w.baseAddress!, 1, inFeatures, $0.baseAddress!)
                }
            }
            packedWeight = packed
        } else {
            packedWeight = []
        }
    }

    /// Applies the layer to rows `[T, inFeatures]` (any leading shape; the last axis is features).
    public func callAsFunction(_ x: Tensor, activation: Activation = .identity, workspace: Workspace) -> Tensor {
        precondition(x.shape.last == inFeatures, "Linear: input \(x.shape), expected \(inFeatures) features")
        let rows = x.count / inFeatures
        let y = workspace.make(Array(x.shape.dropLast()) + [outFeatures])
        if packedWeight.isEmpty {
            weight.withUnsafeBufferPointer { wp in
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(outFeatures), Int32(inFeatures),
                            1, x.base, Int32(inFeatures), wp.baseAddress!, Int32(inFeatures), 0, y.base, Int32(outFeatures))
            }
        } else {
            multiplyPacked(x, rows: rows, into: y, workspace: workspace)
        }
        Parallel.forEachChunk(rows, limit: workspace.loopThreads, minimumWork: outFeatures) { _, range in
            addRowBias(y.base + range.lowerBound * outFeatures, rows: range.count, columns: outFeatures, bias: bias,
                       activation: activation)
        }
        return y
    }

    /// `y = x·Wᵀ` on the vector kernel with Wᵀ pre-packed.
    private func multiplyPacked(_ x: Tensor, rows: Int, into y: Tensor, workspace: Workspace) {
        packedWeight.withUnsafeBufferPointer { packed in
            packedProduct(level: kernels.gemmLevel, rows: rows, k: inFeatures, n: outFeatures, a: x.base, lda: inFeatures, packedB: packed.baseAddress!,
                          c: y.base, ldc: outFeatures, workspace: workspace)
        }
    }
}

/// `C = A·B` on the vector kernel: A (`rows × k`, row stride `lda`) is packed in 8-row panels here,
/// B comes packed in 32-column panels (`mr_pack_b`); tasks take blocks of 96 rows, each running
/// over all column panels, so a block of A stays in cache.
func packedProduct(level: Int32, rows: Int, k: Int, n: Int, a: UnsafePointer<Float>, lda: Int, packedB: UnsafePointer<Float>,
                   c: UnsafeMutablePointer<Float>, ldc: Int, workspace: Workspace) {
    let packedA = workspace.make([mr_packed_size(Int32(rows), Int32(k))])
    let blockRows = 96
    let blocks = (rows + blockRows - 1) / blockRows
    Parallel.forEach(blocks, threads: workspace.loopThreads, minimumWork: blockRows * k) { block in
        let r0 = block * blockRows, count = min(blockRows, rows - r0)
        mr_pack_a(Int32(count), Int32(k), a + r0 * lda, Int32(lda), packedA.base + r0 * k)
    }
    Parallel.forEach(blocks, threads: workspace.loopThreads, minimumWork: blockRows * k * n / 16) { block in
        let r0 = block * blockRows, count = min(blockRows, rows - r0)
        for p in 0..<((n + 31) / 32) {
            mr_gemm_packed(level, Int32(count), Int32(k), 0, Int32(min(32, n - p * 32)), packedA.base + r0 * k,
                           packedB + p * 32 * k, 32, c + r0 * ldc + p * 32, ldc, nil, 0)
        }
    }
}

/// Adds `bias` to each row of a `[rows, columns]` matrix and applies `activation`, in place.
func addRowBias(_ y: UnsafeMutablePointer<Float>, rows: Int, columns: Int, bias: [Float]?, activation: Activation) {
    (bias ?? []).withUnsafeBufferPointer { b in
        let hasBias = !b.isEmpty
        for r in 0..<rows {
            let row = y + r * columns
            if hasBias { for i in 0..<columns { row[i] += b[i] } }
            switch activation {
            case .identity: break
            case .relu: for i in 0..<columns { row[i] = max(row[i], 0) }
            case .gelu: for i in 0..<columns { row[i] = gelu(row[i]) }
            case .sigmoid: for i in 0..<columns { row[i] = sigmoid(row[i]) }
            }
        }
    }
}

/// Layer normalisation over the last axis (PyTorch `nn.LayerNorm(features)`), biased variance.
public struct LayerNorm: Sendable {
    public private(set) var weight: [Float]
    public var bias: [Float]
    public let epsilon: Float

    /// Creates a layer norm with affine parameters.
    public init(weight: [Float], bias: [Float], epsilon: Float) {
        precondition(weight.count == bias.count, "LayerNorm: parameter sizes")
        self.weight = weight
        self.bias = bias
        self.epsilon = epsilon
    }

    /// Normalises every row of `x` (last axis = features).
    public func callAsFunction(_ x: Tensor, workspace: Workspace) -> Tensor {
        let c = weight.count
        precondition(x.shape.last == c, "LayerNorm: input \(x.shape), expected \(c) features")
        let y = workspace.make(x.shape)
        weight.withUnsafeBufferPointer { g in
            bias.withUnsafeBufferPointer { b in
                for r in 0..<(x.count / c) {
                    let src = x.base + r * c, dst = y.base + r * c
                    var mean: Float = 0
                    for i in 0..<c { mean += src[i] }
                    mean /= Float(c)
                    var variance: Float = 0
                    for i in 0..<c { let d = src[i] - mean; variance += d * d }
                    let inv = 1 / (variance / Float(c) + epsilon).squareRoot()
                    for i in 0..<c { dst[i] = (src[i] - mean) * inv * g[i] + b[i] }
                }
            }
        }
        return y
    }
}

/// Multi-head self-attention (ViT style): fused q/k/v projection, softmax(QKᵀ/√d)·V per head,
/// output projection.
public struct MultiHeadAttention: Sendable {
    /// q, k and v projections stacked into one `[3·dim, dim]` linear layer.
    public let qkv: Linear
    /// The output projection `[dim, dim]`.
    public let output: Linear
    public let heads: Int

    /// Creates the layer from separate q/k/v projections.
    public init(query: Linear, key: Linear, value: Linear, output: Linear, heads: Int) {
        let dim = query.inFeatures
        precondition([query, key, value, output].allSatisfy { $0.inFeatures == dim && $0.outFeatures == dim })
        precondition(dim % heads == 0, "MultiHeadAttention: \(dim) not divisible by \(heads) heads")
        let bias: [Float]? = query.bias == nil && key.bias == nil && value.bias == nil ? nil :
            (query.bias ?? Array(repeating: 0, count: dim)) + (key.bias ?? Array(repeating: 0, count: dim))
            + (value.bias ?? Array(repeating: 0, count: dim))
        qkv = Linear(weight: query.weight + key.weight + value.weight, bias: bias, inFeatures: dim, outFeatures: 3 * dim,
                     kernels: query.kernels)
        self.output = output
        self.heads = heads
    }

    /// Attends over the tokens of `x`, `[T, dim]`; returns `[T, dim]`.
    public func callAsFunction(_ x: Tensor, workspace: Workspace) -> Tensor {
        let dim = output.inFeatures
        let tokens = x.count / dim
        let headDim = dim / heads
        let projected = qkv(x, workspace: workspace)            // [T, 3·dim]: q | k | v per row
        let context = workspace.make([tokens, dim])
        let scores = workspace.make([tokens, tokens])
        let scale = 1 / Float(headDim).squareRoot()
        let stride = Int32(3 * dim)
        // With the vector kernel: Kᵀ and V of each head packed as B panels, Q and the
        // probabilities packed as A inside packedProduct.
        let kernels = qkv.kernels
        let packedKeys = kernels.usesPackedKernel ? workspace.make([mr_packed_b_size(Int32(headDim), Int32(tokens))]) : nil
        let packedValues = kernels.usesPackedKernel ? workspace.make([mr_packed_b_size(Int32(tokens), Int32(headDim))]) : nil
        for h in 0..<heads {
            let q = projected.base + h * headDim
            let k = q + dim, v = q + 2 * dim
            if let packedKeys, let packedValues {
                mr_pack_b(Int32(headDim), Int32(tokens), k, 1, 3 * dim, packedKeys.base)
                packedProduct(level: kernels.gemmLevel, rows: tokens, k: headDim, n: tokens, a: q, lda: 3 * dim, packedB: packedKeys.base,
                              c: scores.base, ldc: tokens, workspace: workspace)
                softmaxRows(scores.base, rows: tokens, columns: tokens, scale: scale, kernels: kernels, threads: workspace.loopThreads)
                mr_pack_b(Int32(tokens), Int32(headDim), v, 3 * dim, 1, packedValues.base)
                packedProduct(level: kernels.gemmLevel, rows: tokens, k: tokens, n: headDim, a: scores.base, lda: tokens, packedB: packedValues.base,
                              c: context.base + h * headDim, ldc: dim, workspace: workspace)
            } else {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(tokens), Int32(tokens), Int32(headDim),
                            1, q, stride, k, stride, 0, scores.base, Int32(tokens))
                softmaxRows(scores.base, rows: tokens, columns: tokens, scale: scale, kernels: kernels, threads: workspace.loopThreads)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(tokens), Int32(headDim), Int32(tokens),
                            1, scores.base, Int32(tokens), v, stride, 0, context.base + h * headDim, Int32(dim))
            }
        }
        return output(context, workspace: workspace)
    }
}

/// Softmax of `scale`·x over every row of a `[rows, columns]` matrix, in place.
func softmaxRows(_ m: UnsafeMutablePointer<Float>, rows: Int, columns: Int, scale: Float = 1, kernels: KernelChoice,
                 threads: Int) {
    Parallel.forEachChunk(rows, limit: threads, minimumWork: columns * 8) { _, range in
        mr_softmax_rows(kernels.vectorLevel, m + range.lowerBound * columns, range.count, columns, scale)
    }
}
