import _DepthNetKernels

/// Which GEMM kernels a model's layers run on: a value chosen when the model is loaded (the
/// weights are packed for it then), not a process-wide setting.
///
/// On this project's machines Debian's OpenBLAS 0.3.21 does not recognise the processor and
/// falls back to its SSE3 ("Prescott") kernels, several times slower than the vector units allow.
/// So when the processor has AVX2+FMA or AVX-512F, convolutions (implicit GEMM on pre-packed
/// weights, bias and ReLU fused), linear layers and attention run on the vector kernels of
/// `_DepthNetKernels`; otherwise, or with ``blas``, every GEMM runs on `cblas_sgemm`. Transposed
/// convolutions and the token projections of Depth Anything's neck always use `cblas_sgemm`.
/// The executables take the choice from `DEPTHNET_KERNELS` (see ``init(setting:)``).
public enum KernelChoice: String, Sendable, CaseIterable, Equatable {
    /// The best the processor has: AVX-512F, else AVX2+FMA, else OpenBLAS.
    case automatic
    /// The AVX2+FMA kernels even on an AVX-512 processor (to test them there); OpenBLAS where the
    /// processor has no AVX2+FMA.
    case avx2
    /// OpenBLAS's `cblas_sgemm` for every GEMM.
    case blas

    /// The choice a setting names: `blas` or `avx2`; anything else, or none, is ``automatic``.
    public init(setting: String?) {
        self = setting.flatMap(KernelChoice.init(rawValue:)) ?? .automatic
    }

    /// What this processor has: 2 AVX-512F, 1 AVX2+FMA, 0 neither.
    public static let processorLevel = Int32(mr_kernel_level())

    /// The instruction set this processor's vector kernels use: "avx512f", "avx2+fma" or "none".
    public static var processorInstructionSet: String { instructionSet(level: processorLevel) }

    /// The level the vector helpers run at (softmax, ×2 upsampling, mrdepth's output): the
    /// processor's, at most AVX2 for ``avx2``. ``blas`` keeps them: it is about GEMMs only.
    var vectorLevel: Int32 { self == .avx2 ? min(Self.processorLevel, 1) : Self.processorLevel }

    /// Whether GEMMs run on the packed vector kernels.
    public var usesPackedKernel: Bool { self != .blas && vectorLevel > 0 }

    /// The level the GEMM kernels run at; 0: `cblas_sgemm`.
    var gemmLevel: Int32 { usesPackedKernel ? vectorLevel : 0 }

    /// The instruction set the GEMMs use under this choice: "avx512f", "avx2+fma" or "none" (OpenBLAS).
    public var instructionSet: String { Self.instructionSet(level: gemmLevel) }

    private static func instructionSet(level: Int32) -> String {
        switch level {
        case 2: "avx512f"
        case 1: "avx2+fma"
        default: "none"
        }
    }
}
