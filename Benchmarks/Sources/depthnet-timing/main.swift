// depthnet-timing: times DepthNet inferences of a model folder; used by Training/parity/onnx_compare.py.
//
//   depthnet-timing <model folder> <size> <threads> <iterations> [output.f32]
//
// Loads the folder with DepthModel.load(directory:), warms up for 0.5 s, runs <iterations> timed
// inferences of a deterministic size×size input with OpenBLAS set to <threads>, writes the output
// as raw float32 if asked, and prints one JSON line: median_ms, min_ms, cpu_median_ms, cpu_min_ms
// (process CPU time), gflops, peak_mb. DEPTHNET_KERNELS (blas, avx2; default automatic) picks the kernels.
import DepthNet
import Foundation

let arguments = CommandLine.arguments
guard arguments.count >= 5, let size = Int(arguments[2]), let threads = Int(arguments[3]),
      let iterations = Int(arguments[4]), iterations > 0 else {
    FileHandle.standardError.write(Data("usage: depthnet-timing <model folder> <size> <threads> <iterations> [output.f32]\n".utf8))
    exit(64)
}
do {
    BLASThreads.set(threads)
    let kernels = KernelChoice(setting: ProcessInfo.processInfo.environment["DEPTHNET_KERNELS"])
    let model = try DepthModel.load(directory: URL(fileURLWithPath: arguments[1]), kernels: kernels)
    let count = 3 * size * size
    // The same deterministic input as onnx_compare.py's swift_input().
    let input = Tensor(shape: [1, 3, size, size], values: (0..<count).map { Float(($0 * 7919) % 255) / 128 - 1 })
    let workspace = Workspace()
    let output = try model.predict(input, workspace: workspace)
    // Warm up for half a second: the first inferences of a fresh process fault in the workspace's
    // buffers, and OpenBLAS's start-up threads spin for a while after the library loads. The
    // onnxruntime side of onnx_compare.py keeps one warm session, so both are timed warm.
    let warmUpEnd = DispatchTime.now().uptimeNanoseconds + 500_000_000
    while DispatchTime.now().uptimeNanoseconds < warmUpEnd { _ = try model.predict(input, workspace: workspace) }
    if arguments.count > 5 {
        try output.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: URL(fileURLWithPath: arguments[5]))
    }
    // Wall clock, and process CPU time (all threads): on a loaded machine CPU time is the steadier figure.
    func cpuNow() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
        return Double(t.tv_sec) * 1e3 + Double(t.tv_nsec) / 1e6
    }
    var times: [Double] = [], cpu: [Double] = []
    for _ in 0..<iterations {
        let start = DispatchTime.now().uptimeNanoseconds, cpuStart = cpuNow()
        _ = try model.predict(input, workspace: workspace)
        times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        cpu.append(cpuNow() - cpuStart)
    }
    times.sort()
    cpu.sort()
    let result: [String: Double] = [
        "median_ms": times[times.count / 2], "min_ms": times[0],
        "cpu_median_ms": cpu[cpu.count / 2], "cpu_min_ms": cpu[0],
        "gflops": model.flops(height: size, width: size) / 1e9,
        "peak_mb": Double(workspace.peakBytesInUse) / 1_048_576,
    ]
    print(String(decoding: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys]), as: UTF8.self))
} catch {
    FileHandle.standardError.write(Data("depthnet-timing: \(error)\n".utf8))
    exit(1)
}
