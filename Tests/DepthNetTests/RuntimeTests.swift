import Foundation
import Testing
@testable import DepthNet

@Suite("Runtime: expected tensors, safetensors encoding")
struct RuntimeTests {
    @Test("expectedTensors lists exactly the tensors the parity fixture provides")
    func expectedTensors() throws {
        let file = try Fixtures.file("mrdepth/mrdepth.safetensors")
        let expected = DepthModel.expectedTensors(for: .mrdepth(MRDepthConfig(widths: [4, 8, 8, 12, 16])))
        #expect(Set(expected.map(\.name)) == Set(file.names))
        for (name, shape) in expected { #expect(file.entries[name]?.shape == shape, "\(name)") }
        let dav2 = try Fixtures.file("dav2/model.safetensors")
        let config = try DepthAnythingConfig(json: DepthModel.readJSON(Fixtures.url("dav2/config.json")), path: "config.json")
        let names = Set(DepthModel.expectedTensors(for: .depthAnything(config)).map(\.name))
        // Everything the runtime reads is in the transformers checkpoint; the checkpoint's extras
        // are the unused mask token and the deepest fusion layer's unused residual unit.
        #expect(names.isSubset(of: Set(dav2.names)))
        #expect(Set(dav2.names).subtracting(names) == [
            "backbone.embeddings.mask_token",
            "neck.fusion_stage.layers.0.residual_layer1.convolution1.weight",
            "neck.fusion_stage.layers.0.residual_layer1.convolution1.bias",
            "neck.fusion_stage.layers.0.residual_layer1.convolution2.weight",
            "neck.fusion_stage.layers.0.residual_layer1.convolution2.bias",
        ])
    }

    @Test("safetensors encode → parse round trip")
    func encodeRoundTrip() throws {
        let data = SafeTensorsFile.encode(["b": ([2, 1], [3, -4]), "a": ([3], [1, 2, 0.5])], metadata: ["k": "v"])
        let file = try SafeTensorsFile(data: data)
        #expect(try file.floats("a") == [1, 2, 0.5])
        #expect(try file.floats("b") == [3, -4])
        #expect(file.entries["b"]?.shape == [2, 1] && file.metadata == ["k": "v"])
    }

    @Test("Softmax rows (vectorised exp) match a double-precision reference", arguments: KernelChoice.allCases)
    func softmax(_ kernels: KernelChoice) {
        let rows = 3, columns = 101
        var values = (0..<(rows * columns)).map { Float(sin(Double($0) * 1.7) * 60) }
        let scale: Float = 0.7
        let input = values
        values.withUnsafeMutableBufferPointer {
            softmaxRows($0.baseAddress!, rows: rows, columns: columns, scale: scale, kernels: kernels, threads: 2)
        }
        for r in 0..<rows {
            let row = input[(r * columns)..<((r + 1) * columns)].map { Double($0) * Double(scale) }
            let top = row.max()!
            let total = row.reduce(0) { $0 + exp($1 - top) }
            for (i, x) in row.enumerated() {
                let expected = exp(x - top) / total
                #expect(abs(Double(values[r * columns + i]) - expected) <= 1e-6 * max(expected, 1e-3))
            }
        }
    }

    @Test("makeInput normalises interleaved RGB(A) bytes into planar NCHW")
    func makeInput() throws {
        let model = try DepthModel.load(directory: Fixtures.url("mrdepth"))
        let pixels: [UInt8] = [0, 128, 255, 7, 10, 20, 30, 7]      // 2×1 RGBA
        let x = model.makeInput(pixels: pixels, width: 2, height: 1, channels: 4)
        #expect(x.shape == [1, 3, 1, 2])
        let bytes: [Float] = [0, 10, 128, 20, 255, 30]
        let expected: [Float] = bytes.enumerated().map { i, v in
            let c = i / 2
            return (v / 255 - model.mean[c]) / model.std[c]
        }
        #expect(relativeError(x.toArray(), expected) <= 1e-6)
    }
}
