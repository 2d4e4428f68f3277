import CAMQP

/// An AMQP field table (message headers, queue and exchange arguments, client properties).
public typealias AMQPTable = [String: AMQPFieldValue]

/// One value of an AMQP field table.
///
/// Integers of every width are read as `.int`; `.int` is written as a signed 64-bit long (`l`), which
/// RabbitMQ and Spring AMQP both read. Literals work: `["x-attempt": 2, "retry": true, "code": "HTTP_404"]`.
public indirect enum AMQPFieldValue: Sendable, Hashable {
    case bool(Bool)
    case int(Int64)
    case double(Double)
    /// A long string (`S`), UTF-8.
    case string(String)
    /// A byte array (`x`).
    case bytes([UInt8])
    /// Seconds since the Unix epoch (`T`).
    case timestamp(UInt64)
    /// A decimal: `value / 10^scale`.
    case decimal(scale: UInt8, value: UInt32)
    case table(AMQPTable)
    case array([AMQPFieldValue])
    /// No value (`V`).
    case void

    /// The string, for `.string` (and UTF-8 `.bytes`).
    public var stringValue: String? {
        switch self {
        case .string(let s): return s
        case .bytes(let b): return String(validatingUTF8Bytes: b)
        default: return nil
        }
    }

    /// The integer, for `.int` and `.timestamp` (when it fits).
    public var intValue: Int64? {
        switch self {
        case .int(let v): return v
        case .timestamp(let v): return Int64(exactly: v)
        default: return nil
        }
    }

    /// The Boolean, for `.bool`.
    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }
}

extension AMQPFieldValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByFloatLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(arrayLiteral elements: AMQPFieldValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, AMQPFieldValue)...) {
        self = .table(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}

extension String {
    init?(validatingUTF8Bytes bytes: [UInt8]) {
        let s = String(decoding: bytes, as: UTF8.self)
        guard s.utf8.elementsEqual(bytes) else { return nil }
        self = s
    }
}

// MARK: - C conversion

/// Owns C memory handed to rabbitmq-c for the duration of one call.
final class CArena {
    private var blocks: [UnsafeMutableRawPointer] = []

    deinit { for b in blocks { b.deallocate() } }

    private func allocate(_ byteCount: Int, alignment: Int) -> UnsafeMutableRawPointer {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: alignment)
        blocks.append(p)
        return p
    }

    func bytes(_ b: some Collection<UInt8>) -> amqp_bytes_t {
        let p = allocate(b.count, alignment: 1)
        let buffer = UnsafeMutableRawBufferPointer(start: p, count: b.count)
        _ = buffer.initializeMemory(as: UInt8.self, from: b)
        return amqp_bytes_t(len: b.count, bytes: p)
    }

    func bytes(_ s: String) -> amqp_bytes_t { bytes(s.utf8) }

    func table(_ t: AMQPTable) -> amqp_table_t {
        if t.isEmpty { return amqp_table_t(num_entries: 0, entries: nil) }
        let raw = allocate(MemoryLayout<amqp_table_entry_t>.stride * t.count,
                           alignment: MemoryLayout<amqp_table_entry_t>.alignment)
        let entries = raw.bindMemory(to: amqp_table_entry_t.self, capacity: t.count)
        // Sorted keys: the same table always encodes to the same bytes.
        for (i, key) in t.keys.sorted().enumerated() {
            (entries + i).initialize(to: amqp_table_entry_t(key: bytes(key), value: value(t[key]!)))
        }
        return amqp_table_t(num_entries: Int32(t.count), entries: entries)
    }

    func value(_ v: AMQPFieldValue) -> amqp_field_value_t {
        var f = amqp_field_value_t()
        switch v {
        case .bool(let b): f.kind = UInt8(ascii: "t"); f.value.boolean = b ? 1 : 0
        case .int(let i): f.kind = UInt8(ascii: "l"); f.value.i64 = i
        case .double(let d): f.kind = UInt8(ascii: "d"); f.value.f64 = d
        case .string(let s): f.kind = UInt8(ascii: "S"); f.value.bytes = bytes(s)
        case .bytes(let b): f.kind = UInt8(ascii: "x"); f.value.bytes = bytes(b)
        case .timestamp(let t): f.kind = UInt8(ascii: "T"); f.value.u64 = t
        case let .decimal(scale, value): f.kind = UInt8(ascii: "D"); f.value.decimal = amqp_decimal_t(decimals: scale, value: value)
        case .table(let t): f.kind = UInt8(ascii: "F"); f.value.table = table(t)
        case .array(let a):
            f.kind = UInt8(ascii: "A")
            if a.isEmpty {
                f.value.array = amqp_array_t(num_entries: 0, entries: nil)
            } else {
                let raw = allocate(MemoryLayout<amqp_field_value_t>.stride * a.count,
                                   alignment: MemoryLayout<amqp_field_value_t>.alignment)
                let items = raw.bindMemory(to: amqp_field_value_t.self, capacity: a.count)
                for (i, e) in a.enumerated() { (items + i).initialize(to: value(e)) }
                f.value.array = amqp_array_t(num_entries: Int32(a.count), entries: items)
            }
        case .void: f.kind = UInt8(ascii: "V")
        }
        return f
    }
}

extension amqp_bytes_t {
    /// A Swift copy of the bytes.
    var array: [UInt8] {
        guard len > 0, let bytes else { return [] }
        return Array(UnsafeRawBufferPointer(start: bytes, count: len))
    }

    /// The bytes as a String (UTF-8, invalid sequences repaired).
    var string: String {
        guard len > 0, let bytes else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: bytes, count: len), as: UTF8.self)
    }
}

extension amqp_table_t {
    /// A Swift copy of the table.
    var swiftTable: AMQPTable {
        var t = AMQPTable()
        guard num_entries > 0, let entries else { return t }
        for i in 0..<Int(num_entries) {
            let e = entries[i]
            t[e.key.string] = e.value.swiftValue
        }
        return t
    }
}

extension amqp_field_value_t {
    /// A Swift copy of the value; integers of every width become `.int`.
    var swiftValue: AMQPFieldValue {
        switch kind {
        case UInt8(ascii: "t"): return .bool(value.boolean != 0)
        case UInt8(ascii: "b"): return .int(Int64(value.i8))
        case UInt8(ascii: "B"): return .int(Int64(value.u8))
        case UInt8(ascii: "s"): return .int(Int64(value.i16))
        case UInt8(ascii: "u"): return .int(Int64(value.u16))
        case UInt8(ascii: "I"): return .int(Int64(value.i32))
        case UInt8(ascii: "i"): return .int(Int64(value.u32))
        case UInt8(ascii: "l"): return .int(value.i64)
        case UInt8(ascii: "L"): return .int(Int64(truncatingIfNeeded: value.u64))
        case UInt8(ascii: "f"): return .double(Double(value.f32))
        case UInt8(ascii: "d"): return .double(value.f64)
        case UInt8(ascii: "D"): return .decimal(scale: value.decimal.decimals, value: value.decimal.value)
        case UInt8(ascii: "S"): return .string(value.bytes.string)
        case UInt8(ascii: "x"): return .bytes(value.bytes.array)
        case UInt8(ascii: "T"): return .timestamp(value.u64)
        case UInt8(ascii: "F"): return .table(value.table.swiftTable)
        case UInt8(ascii: "A"):
            var items: [AMQPFieldValue] = []
            if value.array.num_entries > 0, let entries = value.array.entries {
                for i in 0..<Int(value.array.num_entries) { items.append(entries[i].swiftValue) }
            }
            return .array(items)
        default: return .void
        }
    }
}
