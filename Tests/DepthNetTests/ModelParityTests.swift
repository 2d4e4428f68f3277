import Foundation
import SeededRandom
import Testing
@testable import DepthNet

/// Rewrites a safetensors file as F32 with tensors renamed, dropped or replaced (for error tests).
func rewrite(_ file: SafeTensorsFile, rename: (String) -> String? = { $0 },
             replace: [String: ([Int], [Float])] = [:]) throws -> Data {
    var tensors: [(String, String, [Int], [UInt8])] = []
    for name in file.names {
        guard let newName = rename(name) else { continue }
        let (shape, values) = try replace[name] ?? (file.entries[name]!.shape, try #require(try file.floats(name)))
        tensors.append((newName, "F32", shape, littleEndianBytes(values.map(\.bitPattern))))
    }
    return safetensorsBytes(tensors)
}

/// A fresh temporary directory, removed by the caller.
func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("depthnet-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite("Model parity against PyTorch")
struct ModelParityTests {
    func run(_ folder: String, output: String, kernels: KernelChoice) throws -> (DepthModel, Tensor, [Float], [Int]) {
        let model = try DepthModel.load(directory: Fixtures.url(folder), kernels: kernels)
        let inputs = try Fixtures.file("\(folder)/input.safetensors")
        let outputs = try Fixtures.file("\(folder)/output.safetensors")
        let y = try model.predict(try inputs.tensor("input"), workspace: Workspace())
        return (model, y, try outputs.values(output), outputs.shape(output))
    }

    @Test("mrdepth-unet matches PyTorch (f32 and f16 weights), on every kernel choice",
          arguments: ["mrdepth", "mrdepth-f16"], KernelChoice.allCases)
    func mrdepth(_ folder: String, _ kernels: KernelChoice) throws {
        let (model, y, expected, shape) = try run(folder, output: "output", kernels: kernels)
        guard case .mrdepth(let net) = model else { Issue.record("detected \(model)"); return }
        #expect(model.outputNames == ["front", "back", "mask"])
        #expect(model.sizeMultiple == 32)
        #expect(net.config.widths == [4, 8, 8, 12, 16] && net.config.fovDegrees == 50)
        expectClose(y, expected, shape: shape, "\(folder) output (\(kernels))")
        // Each output channel on its own, so the small-range mask is held to the bound too.
        let plane = y.count / 3
        let actual = y.toArray()
        for (i, name) in model.outputNames.enumerated() {
            let range = (i * plane)..<((i + 1) * plane)
            let error = relativeError(Array(actual[range]), Array(expected[range]))
            #expect(error <= 1e-4, "\(folder) \(name): relative error \(error)")
        }
        let inputs = try Fixtures.file("\(folder)/input.safetensors")
        let raw = try net.raw(try inputs.tensor("input"), workspace: Workspace())
        expectClose(raw, try Fixtures.file("\(folder)/output.safetensors").values("raw"), shape: shape, "raw")
    }

    @Test("flip_average: predict is the mean of forward(x) and the mirrored forward of the mirror image")
    func flipAverage() throws {
        let weights = try Fixtures.file("mrdepth/mrdepth.safetensors")
        var config = try JSONDecoder().decode(MRDepthConfig.self, from: Data(contentsOf: Fixtures.url("mrdepth/mrdepth.json")))
        #expect(config.flipAverage == nil)
        let plain = try MRDepthUNet(config: config, weights: weights)
        config.flipAverage = true
        let flipped = try MRDepthUNet(config: config, weights: weights)
        let (h, w) = (64, 96)
        let values = (0..<(3 * h * w)).map { Float(sin(Double($0) * 0.37) + Double($0 % w) / Double(w)) }  // not symmetric
        func mirrored(_ v: [Float]) -> [Float] {
            (0..<v.count).map { i in v[i - i % w + (w - 1 - i % w)] }
        }
        let x = Tensor(shape: [1, 3, h, w], values: values)
        let a = try plain.forward(x, workspace: Workspace()).toArray()
        let b = mirrored(try plain.forward(Tensor(shape: [1, 3, h, w], values: mirrored(values)), workspace: Workspace()).toArray())
        let expected = zip(a, b).map { 0.5 * ($0 + $1) }
        #expect(relativeError(a, expected) > 1e-3)            // the mirror pass changes the result
        let workspace = Workspace()
        let y = try flipped.predict(x, workspace: workspace).toArray()
        #expect(relativeError(y, expected) <= 1e-6)
        // The averaged maps of the mirror image are the mirror image of the averaged maps.
        let z = try flipped.predict(Tensor(shape: [1, 3, h, w], values: mirrored(values)), workspace: workspace).toArray()
        #expect(relativeError(mirrored(z), y) <= 1e-6)
        // Without the key, predict is one forward pass; DepthModel.predict goes through it.
        #expect(try plain.predict(x, workspace: Workspace()).toArray() == a)
        #expect(try DepthModel.mrdepth(flipped).predict(x, workspace: Workspace()).toArray() == y)
    }

    @Test("Scene and scale heads: room logits, depth scale and flip-averaged maps match PyTorch; no head, no value")
    func sceneHead() throws {
        let model = try DepthModel.load(directory: Fixtures.url("mrdepth-scene"))
        guard case .mrdepth(let net) = model else { Issue.record("detected \(model)"); return }
        #expect(net.config.sceneHead?.classes == ["object", "room"] && net.config.flipAverage == true)
        #expect(net.config.metricDepth?.scaleHead != nil)
        let x = try Fixtures.file("mrdepth/input.safetensors").tensor("input")
        let outputs = try Fixtures.file("mrdepth-scene/output.safetensors")
        let logit = try outputs.values("room_logit")[0], flipLogit = try outputs.values("room_logit_flip")[0]
        let plain = try net.forwardWithScene(x, workspace: Workspace())
        let plainLogit = try #require(plain.roomLogits?.first)
        #expect(abs(plainLogit - logit) <= 1e-4 * max(1, abs(logit)), "logit \(plainLogit) vs \(logit)")
        let (maps, probabilities, scales) = try model.predictWithScene(x, workspace: Workspace())
        let probability = try #require(probabilities?.first)
        let expected = 1 / (1 + exp(-flipLogit))
        #expect(abs(probability - expected) <= 1e-5, "P(room) \(probability) vs \(expected)")
        let scale = try #require(scales?.first), expectedScale = exp(try outputs.values("log_scale_flip")[0])
        #expect(abs(scale / expectedScale - 1) <= 1e-5, "depth scale \(scale) vs \(expectedScale)")
        #expect(abs(expectedScale - 1) > 0.1)     // the head is not the identity
        #expect(abs(logit - flipLogit) > 1e-2)    // the mirror pass changes it
        expectClose(maps, try outputs.values("output"), shape: outputs.shape("output"), "flip-averaged maps")
        // The same maps as without the head; weights without it give no probability.
        let headless = try DepthModel.load(directory: Fixtures.url("mrdepth"))
        let headlessPrediction = try headless.predictWithScene(x, workspace: Workspace())
        #expect(headlessPrediction.roomProbabilities == nil && headlessPrediction.depthScales == nil)
    }

    @Test("A config asking for the scale head without its tensors is a weights mismatch")
    func scaleHeadMissing() throws {
        var config = try JSONDecoder().decode(MRDepthConfig.self, from: Data(contentsOf: Fixtures.url("mrdepth/mrdepth.json")))
        config.metricDepth = .init(canonicalFocalPixels: 166.2769, scaleHead: .init())
        #expect {
            _ = try MRDepthUNet(config: config, weights: try Fixtures.file("mrdepth/mrdepth.safetensors"))
        } throws: { error in
            guard case DepthNetError.weightsMismatch(_, let problems) = error else { return false }
            return problems.contains { $0.name == "scale.weight" }
        }
    }

    @Test("The scale head's size features: square root of the covered fraction, rows spanned, both floored at 1 %")
    func scaleFeatures() {
        var mask = [Float](repeating: 0, count: 10 * 20)
        for r in 2..<6 { for c in 5..<10 { mask[r * 20 + c] = 0.9 } }   // 4 rows × 5 columns of 200
        let f = mask.withUnsafeBufferPointer { MRDepthUNet.scaleFeatures(pooled: [7], mask: $0.baseAddress!, height: 10, width: 20) }
        #expect(f.count == 3 && f[0] == 7)
        #expect(abs(f[1] - log(Float(0.1).squareRoot())) < 1e-6 && abs(f[2] - log(Float(0.4))) < 1e-6)
        let empty = [Float](repeating: 0.2, count: 4)
        let g = empty.withUnsafeBufferPointer { MRDepthUNet.scaleFeatures(pooled: [], mask: $0.baseAddress!, height: 2, width: 2) }
        #expect(g.map { abs($0 - log(0.01)) < 1e-6 } == [true, true])
    }

    @Test("A config asking for the scene head without its tensors is a weights mismatch")
    func sceneHeadMissing() throws {
        var config = try JSONDecoder().decode(MRDepthConfig.self, from: Data(contentsOf: Fixtures.url("mrdepth/mrdepth.json")))
        config.sceneHead = .init()
        #expect {
            _ = try MRDepthUNet(config: config, weights: try Fixtures.file("mrdepth/mrdepth.safetensors"))
        } throws: { error in
            guard case DepthNetError.weightsMismatch(_, let problems) = error else { return false }
            return problems.contains { $0.name == "scene.weight" }
        }
    }

    @Test("Depth Anything V2 (tiny config) matches transformers (f32 and bf16 weights), on every kernel choice",
          arguments: ["dav2", "dav2-bf16"], KernelChoice.allCases)
    func depthAnything(_ folder: String, _ kernels: KernelChoice) throws {
        let (model, y, expected, shape) = try run(folder, output: "predicted_depth", kernels: kernels)
        guard case .depthAnything(let net) = model else { Issue.record("detected \(model)"); return }
        #expect(net.config.outIndices == [1, 2, 3, 4] && net.config.hiddenSize == 32 && net.config.imageSize == 70)
        #expect(model.sizeMultiple == 14)
        // transformers returns (N, H, W); the runtime keeps NCHW, (N, 1, H, W).
        expectClose(y, expected, shape: [shape[0], 1, shape[1], shape[2]], "\(folder) (\(kernels))")
    }

    @Test("Depth Anything accepts the transformers 5 attention names (q_proj, o_proj)")
    func modernNames() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = try Fixtures.file("dav2/model.safetensors")
        let data = try rewrite(source, rename: {
            $0.replacingOccurrences(of: "attention.attention.query", with: "attention.q_proj")
                .replacingOccurrences(of: "attention.attention.key", with: "attention.k_proj")
                .replacingOccurrences(of: "attention.attention.value", with: "attention.v_proj")
                .replacingOccurrences(of: "attention.output.dense", with: "attention.o_proj")
        })
        try data.write(to: dir.appendingPathComponent("model.safetensors"))
        try FileManager.default.copyItem(at: Fixtures.url("dav2/config.json"), to: dir.appendingPathComponent("config.json"))
        let model = try DepthModel.load(directory: dir)
        let y = try model.predict(try Fixtures.file("dav2/input.safetensors").tensor("input"), workspace: Workspace())
        #expect(relativeError(y.toArray(), try Fixtures.file("dav2/output.safetensors").values("predicted_depth")) <= 1e-4)
    }

    @Test("Steady state: a second inference allocates no new buffers", arguments: ["mrdepth", "dav2"], KernelChoice.allCases)
    func steadyState(_ folder: String, _ kernels: KernelChoice) throws {
        let model = try DepthModel.load(directory: Fixtures.url(folder), kernels: kernels)
        let input = try Fixtures.file("\(folder)/input.safetensors").tensor("input")
        let workspace = Workspace()
        let first = try model.predict(input, workspace: workspace).toArray()
        let allocations = workspace.allocationCount
        let peak = workspace.peakBytesInUse
        let second = try model.predict(input, workspace: workspace).toArray()
        #expect(workspace.allocationCount == allocations)
        #expect(workspace.peakBytesInUse == peak)
        #expect(relativeError(second, first) <= 1e-6)   // reused buffers carry nothing over
        #expect(workspace.bytesInUse == 0)
    }

    @Test("Missing and mis-shaped tensors are all listed")
    func weightsMismatch() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = try Fixtures.file("mrdepth/mrdepth.safetensors")
        let data = try rewrite(source, rename: { ["head.out.bias", "enc2.conv1.bn.running_var"].contains($0) ? nil : $0 },
                               replace: ["stem.conv.weight": ([4, 3, 5, 5], [Float](repeating: 0, count: 300))])
        try data.write(to: dir.appendingPathComponent("mrdepth.safetensors"))
        try FileManager.default.copyItem(at: Fixtures.url("mrdepth/mrdepth.json"), to: dir.appendingPathComponent("mrdepth.json"))
        let path = dir.appendingPathComponent("mrdepth.safetensors").path
        #expect(throws: DepthNetError.weightsMismatch(path: path, problems: [
            .wrongShape(name: "stem.conv.weight", expected: [4, 3, 3, 3], found: [4, 3, 5, 5]),
            .missing(name: "enc2.conv1.bn.running_var", expectedShape: [8]),
            .missing(name: "head.out.bias", expectedShape: [3]),
        ])) { try DepthModel.load(directory: dir) }
    }

    @Test("Broken model directories are typed errors")
    func brokenDirectories() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let fm = FileManager.default
        #expect(throws: DepthNetError.self) { try DepthModel.load(directory: dir) }   // no config
        let config = dir.appendingPathComponent("mrdepth.json")
        try fm.copyItem(at: Fixtures.url("mrdepth/mrdepth.json"), to: config)
        let weights = dir.appendingPathComponent("mrdepth.safetensors")
        #expect(throws: DepthNetError.fileNotFound(path: weights.path)) { try DepthModel.load(directory: dir) }
        let full = try Data(contentsOf: Fixtures.url("mrdepth/mrdepth.safetensors"))
        try full.prefix(full.count - 100).write(to: weights)          // truncated
        #expect {
            try DepthModel.load(directory: dir)
        } throws: { error in
            if case .malformedSafetensors = error as? DepthNetError { true } else { false }
        }
        try full.write(to: weights)
        try Data(#"{"architecture": "resnet-9000"}"#.utf8).write(to: config)
        #expect(throws: DepthNetError.unsupportedArchitecture("resnet-9000")) { try DepthModel.load(directory: dir) }
        try Data(#"{"architecture": "mrdepth-unet", "widths": [1, 2]}"#.utf8).write(to: config)
        #expect(throws: DepthNetError.self) { try DepthModel.load(directory: dir) }
        try Data("not json".utf8).write(to: config)
        #expect(throws: DepthNetError.malformedConfig(path: config.path, reason: "not a JSON object")) {
            try DepthModel.load(directory: dir)
        }
    }

    @Test("Input sizes that do not fit the model are rejected")
    func inputSizes() throws {
        let mrdepth = try DepthModel.load(directory: Fixtures.url("mrdepth"))
        let dav2 = try DepthModel.load(directory: Fixtures.url("dav2"))
        let ws = Workspace()
        #expect(throws: DepthNetError.self) { try mrdepth.predict(Tensor(zeros: [1, 3, 48, 64]), workspace: ws) }
        #expect(throws: DepthNetError.self) { try mrdepth.predict(Tensor(zeros: [1, 4, 64, 64]), workspace: ws) }
        #expect(throws: DepthNetError.self) { try dav2.predict(Tensor(zeros: [1, 3, 28, 30]), workspace: ws) }
        #expect(throws: DepthNetError.self) { try dav2.predict(Tensor(zeros: [2, 3, 28, 28]), workspace: ws) }
        #expect(try dav2.predict(Tensor(zeros: [1, 3, 70, 70]), workspace: ws).shape == [1, 1, 70, 70])
    }

    @Test("The shipped Weights/ load and give valid maps (front > 0, back ≥ front, 0 ≤ mask ≤ 1)")
    func shippedWeights() throws {
        // Tests/DepthNetTests/ModelParityTests.swift → repository root → Weights/
        let weights = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Weights")
        let model = try DepthModel.load(directory: weights)
        #expect(model.outputNames == ["front", "back", "mask"])
        let (h, w) = (64, 96)
        var generator = SplitMix64(seed: 5)
        let pixels = (0..<(h * w * 3)).map { _ in UInt8(generator.next() % 256) }
        let y = try model.predict(model.makeInput(pixels: pixels, width: w, height: h), workspace: Workspace())
        #expect(y.shape == [1, 3, h, w])
        let values = y.toArray(), plane = h * w
        for i in 0..<plane {
            let (front, back, mask) = (values[i], values[plane + i], values[2 * plane + i])
            guard front > 0, front.isFinite, back >= front, back.isFinite, (0...1).contains(mask) else {
                Issue.record("pixel \(i): front \(front), back \(back), mask \(mask)")
                return
            }
        }
    }
}
