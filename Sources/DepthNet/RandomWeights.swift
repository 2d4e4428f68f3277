import Foundation
import SeededRandom

extension DepthModel {
    /// The tensors (name and shape) an architecture reads from its weights file.
    public static func expectedTensors(for architecture: Architecture) -> [(name: String, shape: [Int])] {
        let empty = try! SafeTensorsFile(data: SafeTensorsFile.encode([:]))
        do {
            _ = try build(architecture, weights: empty)
        } catch {
            if case .weightsMismatch(_, let problems) = error {
                return problems.compactMap { problem in
                    if case .missing(let name, let shape) = problem { (name, shape) } else { nil }
                }
            }
        }
        return []
    }

    /// A model of `architecture` with random He-initialised weights (unit batch-norm statistics,
    /// unit layer scales): for benchmarks and tests, not for predictions.
    public static func randomlyInitialised(_ architecture: Architecture, seed: UInt64 = 1,
                                           kernels: KernelChoice = .automatic) throws(DepthNetError) -> DepthModel {
        var generator = SplitMix64(seed: seed)
        var tensors: [String: (shape: [Int], values: [Float])] = [:]
        for (name, shape) in expectedTensors(for: architecture) {
            let count = shape.reduce(1, *)
            let values: [Float]
            if name.hasSuffix("running_var") || name.hasSuffix("lambda1") || name.hasSuffix("bn.weight")
                || (name.contains("norm") && name.hasSuffix(".weight")) {
                values = [Float](repeating: 1, count: count)
            } else if name.hasSuffix("bias") || name.hasSuffix("running_mean") {
                values = [Float](repeating: 0, count: count)
            } else {
                let fanIn = shape.count >= 2 ? shape.dropFirst().reduce(1, *) : shape.reduce(1, *)
                let scale = Float((2.0 / Double(max(fanIn, 1))).squareRoot())
                values = (0..<count).map { _ in generator.nextGaussian() * scale }
            }
            tensors[name] = (shape, values)
        }
        return try build(architecture, weights: SafeTensorsFile(data: SafeTensorsFile.encode(tensors)), kernels: kernels)
    }

    /// An architecture and its configuration.
    public enum Architecture: Sendable {
        case mrdepth(MRDepthConfig)
        case depthAnything(DepthAnythingConfig)
    }

    static func build(_ architecture: Architecture, weights: SafeTensorsFile,
                      kernels: KernelChoice = .automatic) throws(DepthNetError) -> DepthModel {
        switch architecture {
        case .mrdepth(let config): .mrdepth(try MRDepthUNet(config: config, weights: weights, kernels: kernels))
        case .depthAnything(let config): .depthAnything(try DepthAnythingV2(config: config, weights: weights, kernels: kernels))
        }
    }
}
