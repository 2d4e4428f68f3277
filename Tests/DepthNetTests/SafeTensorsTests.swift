import Foundation
import Testing
@testable import DepthNet

/// Builds a safetensors byte image: `tensors` are (name, dtype, shape, raw bytes).
func safetensorsBytes(_ tensors: [(String, String, [Int], [UInt8])], headerOverride: String? = nil) -> Data {
    var offset = 0
    var fields: [String] = []
    var body: [UInt8] = []
    for (name, dtype, shape, bytes) in tensors {
        fields.append("\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":\(shape),\"data_offsets\":[\(offset),\(offset + bytes.count)]}")
        offset += bytes.count
        body += bytes
    }
    let header = Array((headerOverride ?? "{" + fields.joined(separator: ",") + "}").utf8)
    var data = Data()
    withUnsafeBytes(of: UInt64(header.count).littleEndian) { data.append(contentsOf: $0) }
    data.append(contentsOf: header)
    data.append(contentsOf: body)
    return data
}

func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    values.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } }
}

@Suite("Safetensors loading")
struct SafeTensorsTests {
    @Test("f32, f16 and bf16 convert exactly to float32")
    func dtypes() throws {
        let values: [Float] = [0, 1, -2.5, 0.0999755859375, 65504, 6.103515625e-05, 5.960464477539063e-08]
        let f16Bits: [UInt16] = [0x0000, 0x3C00, 0xC100, 0x2E66, 0x7BFF, 0x0400, 0x0001]
        let bf16Values: [Float] = [0, 1, -2.5, 0.099609375, 65536, 3.0517578125e-05, -1e30]
        let bf16Bits = bf16Values.map { UInt16($0.bitPattern >> 16) }
        let data = safetensorsBytes([
            ("a", "F32", [7], littleEndianBytes(values.map(\.bitPattern))),
            ("b", "F16", [7], littleEndianBytes(f16Bits)),
            ("c", "BF16", [1, 7], littleEndianBytes(bf16Bits)),
        ])
        let file = try SafeTensorsFile(data: data)
        #expect(file.names == ["a", "b", "c"])
        #expect(try file.floats("a") == values)
        #expect(try file.floats("b") == values)
        let bf16 = try #require(try file.floats("c"))
        for (x, y) in zip(bf16, bf16Values) { #expect(x == Float(bitPattern: y.bitPattern & 0xFFFF_0000)) }
        #expect(file.entries["c"]?.shape == [1, 7])
        #expect(try file.floats("absent") == nil)
    }

    @Test("f16 infinities and NaN")
    func halfSpecials() {
        #expect(halfToFloat(0x7C00) == .infinity)
        #expect(halfToFloat(0xFC00) == -.infinity)
        #expect(halfToFloat(0x7E00).isNaN)
        #expect(halfToFloat(0x8000) == 0 && halfToFloat(0x8000).sign == .minus)
    }

    @Test("Truncated or malformed files are errors", arguments: [
        ("empty", Data()),
        ("short length", Data([1, 2, 3])),
        ("header past end", safetensorsBytes([], headerOverride: "{}").prefix(9)),
        ("not JSON", safetensorsBytes([], headerOverride: "{nope")),
        ("not an object", safetensorsBytes([], headerOverride: "[1,2]")),
        ("unknown dtype", safetensorsBytes([("x", "F12", [1], [0, 0])])),
        ("bad shape", safetensorsBytes([], headerOverride: #"{"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#)),
        ("no offsets", safetensorsBytes([], headerOverride: #"{"x":{"dtype":"F32","shape":[1]}}"#)),
        ("size mismatch", safetensorsBytes([("x", "F32", [3], [0, 0, 0, 0, 0, 0, 0, 0])])),
        ("data truncated", safetensorsBytes([("x", "F32", [2], [0, 0, 0, 0, 0, 0, 0, 0])]).dropLast(3)),
        ("huge shape", safetensorsBytes([], headerOverride:
            #"{"x":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904],"data_offsets":[0,0]}}"#)),
    ])
    func malformed(_ label: String, _ data: Data) {
        #expect(throws: DepthNetError.self, "\(label)") { try SafeTensorsFile(data: Data(data)) }
        do {
            _ = try SafeTensorsFile(data: Data(data), path: "w.safetensors")
        } catch {
            guard case .malformedSafetensors(let path, _) = error else {
                Issue.record("\(label): unexpected \(error)")
                return
            }
            #expect(path == "w.safetensors")
        }
    }

    @Test("A missing file is fileNotFound")
    func missingFile() {
        let url = URL(fileURLWithPath: "/nonexistent/depthnet/model.safetensors")
        #expect(throws: DepthNetError.fileNotFound(path: url.path)) { try SafeTensorsFile(contentsOf: url) }
    }

    @Test("The weight reader lists every missing, mis-shaped and unsupported tensor at once")
    func weightProblems() throws {
        let data = safetensorsBytes([
            ("ok", "F32", [2], littleEndianBytes([Float(1).bitPattern, Float(2).bitPattern])),
            ("shaped", "F32", [2], littleEndianBytes([UInt32(0), 0])),
            ("ints", "I32", [1], littleEndianBytes([Int32(7)])),
        ])
        let reader = WeightReader(try SafeTensorsFile(data: data, path: "m.safetensors"))
        #expect(reader.tensor("ok", [2]) == [1, 2])
        _ = reader.tensor("shaped", [1, 2])
        _ = reader.tensor("ints", [1])
        _ = reader.tensor("gone", [3, 3])
        #expect(reader.optional("also.gone", [1]) == nil)
        let expected: [WeightProblem] = [
            .wrongShape(name: "shaped", expected: [1, 2], found: [2]),
            .unsupportedDType(name: "ints", dtype: "I32"),
            .missing(name: "gone", expectedShape: [3, 3]),
        ]
        #expect(throws: DepthNetError.weightsMismatch(path: "m.safetensors", problems: expected)) { try reader.finish() }
        let message = DepthNetError.weightsMismatch(path: "m.safetensors", problems: expected).description
        #expect(message.contains("missing gone [3, 3]") && message.contains("3 problems"))
    }
}
