import Foundation

/// A safetensors file: an 8-byte little-endian header length, a JSON header naming each
/// tensor's dtype, shape and byte range, then the raw little-endian tensor data.
///
/// The file is memory-mapped; tensors are converted to float32 when read. Every header field
/// and byte range is validated when the file is opened, so a truncated or malformed file is a
/// ``DepthNetError/malformedSafetensors(path:reason:)``, never a crash.
public struct SafeTensorsFile: Sendable {
    /// Element types of the format.
    public enum DType: String, Sendable {
        case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
        case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"
        case f8e4m3 = "F8_E4M3", f8e5m2 = "F8_E5M2", u16 = "U16", u32 = "U32", u64 = "U64"

        /// Bytes per element.
        public var size: Int {
            switch self {
            case .f64, .i64, .u64: 8
            case .f32, .i32, .u32: 4
            case .f16, .bf16, .i16, .u16: 2
            case .i8, .u8, .bool, .f8e4m3, .f8e5m2: 1
            }
        }

        /// Whether ``SafeTensorsFile/floats(_:)`` can convert this dtype.
        public var isSupported: Bool { self == .f32 || self == .f16 || self == .bf16 }
    }

    /// One tensor's header entry.
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let dtype: DType
        public let shape: [Int]
        /// Byte range in the data section (after the header).
        public let byteRange: Range<Int>
    }

    /// Where the file came from (for error messages).
    public let path: String
    /// The header entries by tensor name.
    public let entries: [String: Entry]
    /// The optional `__metadata__` string map.
    public let metadata: [String: String]
    private let data: Data
    private let dataStart: Int

    /// Opens and validates a file (memory-mapped).
    public init(contentsOf url: URL) throws(DepthNetError) {
        guard FileManager.default.fileExists(atPath: url.path) else { throw .fileNotFound(path: url.path) }
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw .unreadable(path: url.path, reason: "\(error)")
        }
        try self.init(data: data, path: url.path)
    }

    /// Parses and validates a file's bytes.
    public init(data: Data, path: String = "<memory>") throws(DepthNetError) {
        func fail(_ reason: String) -> DepthNetError { .malformedSafetensors(path: path, reason: reason) }
        guard data.count >= 8 else { throw fail("file is \(data.count) bytes, shorter than the 8-byte header length") }
        let headerLength = data.withUnsafeBytes { raw in
            UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        }
        guard headerLength <= UInt64(data.count - 8) else {
            throw fail("header length \(headerLength) exceeds the file size \(data.count) (truncated?)")
        }
        let start = data.startIndex
        let headerBytes = data[(start + 8)..<(start + 8 + Int(headerLength))]
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: headerBytes)
        } catch {
            throw fail("header is not valid JSON")
        }
        guard let header = json as? [String: Any] else { throw fail("header is not a JSON object") }
        let dataSize = data.count - 8 - Int(headerLength)
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                guard let map = value as? [String: Any] else { throw fail("__metadata__ is not an object") }
                for (k, v) in map { metadata[k] = v as? String ?? "\(v)" }
                continue
            }
            guard let info = value as? [String: Any] else { throw fail("entry \(name) is not an object") }
            guard let dtypeName = info["dtype"] as? String else { throw fail("entry \(name) has no dtype") }
            guard let dtype = DType(rawValue: dtypeName) else { throw fail("entry \(name) has unknown dtype \(dtypeName)") }
            guard let shape = Self.integers(info["shape"]), shape.allSatisfy({ $0 >= 0 }) else {
                throw fail("entry \(name) has no valid shape")
            }
            guard let offsets = Self.integers(info["data_offsets"]), offsets.count == 2,
                  offsets[0] >= 0, offsets[0] <= offsets[1] else {
                throw fail("entry \(name) has no valid data_offsets")
            }
            guard offsets[1] <= dataSize else {
                throw fail("entry \(name) ends at byte \(offsets[1]) but the data section has \(dataSize) bytes (truncated?)")
            }
            var elements = 1
            for d in shape {
                let (product, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow else { throw fail("entry \(name) shape \(shape) is too large") }
                elements = product
            }
            guard elements.multipliedReportingOverflow(by: dtype.size).partialValue == offsets[1] - offsets[0],
                  !elements.multipliedReportingOverflow(by: dtype.size).overflow else {
                throw fail("entry \(name): \(offsets[1] - offsets[0]) bytes for shape \(shape) of \(dtypeName)")
            }
            entries[name] = Entry(name: name, dtype: dtype, shape: shape, byteRange: offsets[0]..<offsets[1])
        }
        self.path = path
        self.entries = entries
        self.metadata = metadata
        self.data = data
        self.dataStart = 8 + Int(headerLength)
    }

    private static func integers(_ value: Any?) -> [Int]? {
        guard let array = value as? [Any] else { return nil }
        var result: [Int] = []
        for item in array {
            guard let number = item as? NSNumber else { return nil }
            let double = number.doubleValue
            guard double == double.rounded(), abs(double) < 1e15 else { return nil }
            result.append(number.intValue)
        }
        return result
    }

    /// The tensor names, sorted.
    public var names: [String] { entries.keys.sorted() }

    /// The tensor's elements converted to float32 (row-major), or nil if there is no such tensor.
    /// - Throws: ``DepthNetError/weightsMismatch(path:problems:)`` for a dtype other than F32/F16/BF16.
    public func floats(_ name: String) throws(DepthNetError) -> [Float]? {
        guard let entry = entries[name] else { return nil }
        guard entry.dtype.isSupported else {
            throw .weightsMismatch(path: path, problems: [.unsupportedDType(name: name, dtype: entry.dtype.rawValue)])
        }
        return convert(entry)
    }

    func convert(_ entry: Entry) -> [Float] {
        let count = entry.byteRange.count / entry.dtype.size
        return data.withUnsafeBytes { raw in
            let bytes = UnsafeRawBufferPointer(rebasing: raw[(dataStart + entry.byteRange.lowerBound)..<(dataStart + entry.byteRange.upperBound)])
            return [Float](unsafeUninitializedCapacity: count) { out, initialized in
                switch entry.dtype {
                case .f32:
                    for i in 0..<count { out[i] = Float(bitPattern: bytes.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian) }
                case .f16:
                    for i in 0..<count {
                        out[i] = halfToFloat(bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian)
                    }
                case .bf16:
                    for i in 0..<count {
                        let bits = UInt32(bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian) << 16
                        out[i] = Float(bitPattern: bits)
                    }
                default:
                    preconditionFailure("unsupported dtype reached convert")
                }
                initialized = count
            }
        }
    }
}

/// IEEE 754 binary16 → binary32 (exact, including subnormals, infinities and NaN).
func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = Int(h >> 10) & 0x1F
    let mantissa = UInt32(h & 0x3FF)
    if exponent == 0 {
        let magnitude = Float(mantissa) * 0x1p-24
        return sign != 0 ? -magnitude : magnitude
    }
    if exponent == 31 {
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    }
    return Float(bitPattern: sign | UInt32(exponent + 112) << 23 | (mantissa << 13))
}

/// Reads the tensors an architecture needs and collects every problem before failing, so the
/// error lists all missing or mismatched tensors at once.
final class WeightReader {
    let file: SafeTensorsFile
    private(set) var problems: [WeightProblem] = []
    private(set) var used: Set<String> = []

    init(_ file: SafeTensorsFile) { self.file = file }

    /// Whether the file has a tensor of this name.
    func has(_ name: String) -> Bool { file.entries[name] != nil }

    /// The tensor, which must exist with `shape`; zeros (and a recorded problem) otherwise.
    func tensor(_ name: String, _ shape: [Int]) -> [Float] {
        optional(name, shape) ?? {
            problems.append(.missing(name: name, expectedShape: shape))
            return [Float](repeating: 0, count: shape.reduce(1, *))
        }()
    }

    /// The tensor if present (checked against `shape`), nil if absent.
    func optional(_ name: String, _ shape: [Int]) -> [Float]? {
        guard let entry = file.entries[name] else { return nil }
        used.insert(name)
        let count = shape.reduce(1, *)
        guard entry.dtype.isSupported else {
            problems.append(.unsupportedDType(name: name, dtype: entry.dtype.rawValue))
            return [Float](repeating: 0, count: count)
        }
        guard entry.shape == shape else {
            problems.append(.wrongShape(name: name, expected: shape, found: entry.shape))
            return [Float](repeating: 0, count: count)
        }
        return file.convert(entry)
    }

    /// Throws if any tensor was missing or mismatched.
    func finish() throws(DepthNetError) {
        if !problems.isEmpty { throw .weightsMismatch(path: file.path, problems: problems) }
    }
}

extension SafeTensorsFile {
    /// Encodes float32 tensors as a safetensors file image (names sorted, F32, little-endian).
    public static func encode(_ tensors: [String: (shape: [Int], values: [Float])], metadata: [String: String] = [:]) -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let (shape, values) = tensors[name]!
            precondition(values.count == shape.reduce(1, *), "encode: \(name) has \(values.count) values for \(shape)")
            header[name] = ["dtype": "F32", "shape": shape, "data_offsets": [offset, offset + 4 * values.count]] as [String: Any]
            offset += 4 * values.count
        }
        var json = try! JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }   // pad so the data section is 8-byte aligned
        var data = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(json)
        for name in names {
            tensors[name]!.values.withUnsafeBufferPointer { values in
                for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
            }
        }
        return data
    }
}
