// DepthNet benchmarks: one inference of each architecture at about 256×256 and 518×518.
//
//   cd Benchmarks && swift package benchmark --target DepthNetBenchmarks
//
// Sizes must be multiples of 32 (mrdepth-unet) or 14 (Depth Anything V2), so the runs are
// mrdepth 256 and 512, Depth Anything V2-Small 252 and 518. Weights are random (He-initialised):
// speed does not depend on their values. Besides wall clock and resident/malloc figures, each
// run records achieved GFLOP/s, that as a percentage of the measured cblas_sgemm peak (1024³,
// same thread count), and the workspace's activation peak in MB. Threads: OpenBLAS's default
// unless DEPTHNET_THREADS is set; kernels: DEPTHNET_KERNELS (blas, avx2; default automatic).
import Benchmark
import DepthNet
import Foundation

let threads: Int = {
    if let value = ProcessInfo.processInfo.environment["DEPTHNET_THREADS"], let n = Int(value) { BLASThreads.set(n) }
    return BLASThreads.current
}()
let sgemmPeak: Double = { _ = threads; return BLASThreads.measureSGEMMPeak() }()
let kernels = KernelChoice(setting: ProcessInfo.processInfo.environment["DEPTHNET_KERNELS"])
let mrdepth = try! DepthModel.randomlyInitialised(.mrdepth(MRDepthConfig()), kernels: kernels)
let depthAnythingSmall = try! DepthModel.randomlyInitialised(.depthAnything(DepthAnythingConfig()), kernels: kernels)

let gflopsMetric = BenchmarkMetric.custom("GFLOP/s", polarity: .prefersLarger, useScalingFactor: false)
let peakShareMetric = BenchmarkMetric.custom("% of sgemm peak", polarity: .prefersLarger, useScalingFactor: false)
let activationsMetric = BenchmarkMetric.custom("activation peak (MB)", polarity: .prefersSmaller, useScalingFactor: false)

func inferenceBenchmark(_ name: String, _ model: @autoclosure @escaping @Sendable () -> DepthModel, size: Int) {
    Benchmark(
        "\(name) \(size)x\(size)",
        configuration: .init(
            metrics: [.wallClock, .cpuTotal, .peakMemoryResident, .mallocCountTotal, gflopsMetric, peakShareMetric, activationsMetric],
            maxDuration: .seconds(30), maxIterations: 10)
    ) { benchmark in
        let model = model()
        let count = 3 * size * size
        let input = Tensor(shape: [1, 3, size, size], values: (0..<count).map { Float(($0 * 7919) % 255) / 128 - 1 })
        let workspace = Workspace()
        blackHole(try model.predict(input, workspace: workspace))      // warm-up: fills the workspace pool
        workspace.resetPeak()
        var best = Double.infinity
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let start = DispatchTime.now().uptimeNanoseconds
            blackHole(try model.predict(input, workspace: workspace))
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        benchmark.stopMeasurement()
        let gflops = model.flops(height: size, width: size) / 1e9 / best
        benchmark.measurement(gflopsMetric, Int(gflops.rounded()))
        benchmark.measurement(peakShareMetric, Int((100 * gflops / sgemmPeak).rounded()))
        benchmark.measurement(activationsMetric, workspace.peakBytesInUse / 1_048_576)
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark("cblas_sgemm 1024x1024x1024",
              configuration: .init(metrics: [.wallClock, gflopsMetric], maxDuration: .seconds(10), maxIterations: 3)) { benchmark in
        for _ in benchmark.scaledIterations { benchmark.measurement(gflopsMetric, Int(BLASThreads.measureSGEMMPeak().rounded())) }
    }
    for size in [256, 512] { inferenceBenchmark("mrdepth-unet", mrdepth, size: size) }
    for size in [252, 518] { inferenceBenchmark("Depth Anything V2-Small", depthAnythingSmall, size: size) }
}
