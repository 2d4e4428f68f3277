/// Reads a job message body: a JSON object (RFC 8259) whose top-level fields are kept and whose
/// nested values are checked and skipped.
///
/// Written for the queue contract rather than taken from `JSONDecoder`, which differs from the
/// backend's Jackson in two ways that matter here:
/// - a key given twice: the **last** value wins, as in Jackson's default `ObjectMapper`;
/// - nesting: Jackson accepts 1,000 levels (`StreamReadConstraints.DEFAULT_MAX_DEPTH`); Foundation's
///   decoder stops at 512 and says only that the data is not valid JSON. Here the limit is a
///   parameter, the check is iterative (no recursion, so no stack to overflow) and passing it is
///   its own error.
struct JSONObjectReader {
    /// Why a body could not be read.
    enum Failure: Error, Equatable {
        /// Not JSON at all: what was wrong, and the byte offset where it was found.
        case syntax(String, offset: Int)
        /// JSON, but not an object at the top level.
        case notAnObject
        /// Containers nested deeper than `maxDepth` (the top-level object is depth 1).
        case tooDeep(limit: Int)
    }

    /// Jackson's default limit.
    static let defaultMaxDepth = 1000

    private let bytes: [UInt8]
    private let maxDepth: Int
    private var index = 0

    /// The top-level fields of `bytes`; a repeated key keeps its last value.
    static func fields(of bytes: [UInt8], maxDepth: Int = defaultMaxDepth) throws(Failure) -> [String: JSONValue] {
        var reader = JSONObjectReader(bytes: bytes, maxDepth: maxDepth)
        return try reader.readDocument()
    }

    private init(bytes: [UInt8], maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = max(1, maxDepth)
    }

    private mutating func readDocument() throws(Failure) -> [String: JSONValue] {
        // A UTF-8 byte order mark is allowed (Jackson skips it).
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
        skipWhitespace()
        guard let first = peek() else { throw .syntax("the body is empty", offset: index) }
        guard first == UInt8(ascii: "{") else {
            _ = try readValue(depth: 0)  // a valid non-object is `notAnObject`, anything else a syntax error
            try expectEnd()
            throw .notAnObject
        }
        index += 1
        var fields: [String: JSONValue] = [:]
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            index += 1
        } else {
            while true {
                skipWhitespace()
                guard peek() == UInt8(ascii: "\"") else { throw syntax("expected a field name in double quotes") }
                let key = try readString()
                skipWhitespace()
                try expect(":", "expected ':' after a field name")
                skipWhitespace()
                fields[key] = try readValue(depth: 1)
                skipWhitespace()
                if peek() == UInt8(ascii: ",") { index += 1; continue }
                try expect("}", "expected ',' or '}' in an object")
                break
            }
        }
        try expectEnd()
        return fields
    }

    /// A value at `depth` (that of the container holding it). Scalars are returned as they are;
    /// arrays and objects are checked to their end and returned as `.array` / `.object`.
    private mutating func readValue(depth: Int) throws(Failure) -> JSONValue {
        guard let byte = peek() else { throw syntax("unexpected end of the body") }
        switch byte {
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            try skipContainer(depth: depth)
            return byte == UInt8(ascii: "{") ? .object : .array
        case UInt8(ascii: "\""): return .string(try readString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try readNumber()
        default: throw syntax("unexpected \(Self.describe(byte))")
        }
    }

    /// Checks an array or object (at `index`) and everything inside it, with an explicit stack.
    private mutating func skipContainer(depth: Int) throws(Failure) {
        enum Kind { case array, object }
        var stack: [Kind] = []
        func open(_ byte: UInt8) -> Kind { byte == UInt8(ascii: "{") ? .object : .array }
        // Entering a container: push it, check the depth and handle an empty one.
        var pending: UInt8? = bytes[index]
        while true {
            if let opener = pending {
                pending = nil
                index += 1
                stack.append(open(opener))
                guard depth + stack.count <= maxDepth else { throw .tooDeep(limit: maxDepth) }
                skipWhitespace()
                let closer = stack.last == .object ? UInt8(ascii: "}") : UInt8(ascii: "]")
                if peek() == closer {
                    index += 1
                    stack.removeLast()
                } else {
                    if stack.last == .object { try objectKey() }
                    if let next = peek(), next == UInt8(ascii: "{") || next == UInt8(ascii: "[") {
                        pending = next
                        continue
                    }
                    _ = try readValue(depth: depth + stack.count)
                }
            }
            // After a value inside the innermost open container: ',' and the next value, or its end.
            guard let kind = stack.last else { return }
            skipWhitespace()
            guard let byte = peek() else { throw syntax("unexpected end of the body inside \(kind == .object ? "an object" : "an array")") }
            if byte == UInt8(ascii: ",") {
                index += 1
                skipWhitespace()
                if kind == .object { try objectKey() }
                if let next = peek(), next == UInt8(ascii: "{") || next == UInt8(ascii: "[") {
                    pending = next
                } else {
                    _ = try readValue(depth: depth + stack.count)
                }
            } else if byte == (kind == .object ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                index += 1
                stack.removeLast()
            } else {
                throw syntax(kind == .object ? "expected ',' or '}' in an object" : "expected ',' or ']' in an array")
            }
        }
    }

    /// `"key" :` inside a nested object, leaving `index` at the value.
    private mutating func objectKey() throws(Failure) {
        skipWhitespace()
        guard peek() == UInt8(ascii: "\"") else { throw syntax("expected a field name in double quotes") }
        _ = try readString()
        skipWhitespace()
        try expect(":", "expected ':' after a field name")
        skipWhitespace()
    }

    private mutating func readString() throws(Failure) -> String {
        index += 1  // the opening quote
        var scalars = String.UnicodeScalarView()
        var runStart = index
        func flushRun(_ end: Int) throws(Failure) {
            guard runStart < end else { return }
            guard let run = String(validating: bytes[runStart..<end], as: UTF8.self) else {
                throw .syntax("invalid UTF-8 in a string", offset: runStart)
            }
            scalars.append(contentsOf: run.unicodeScalars)
        }
        while true {
            guard index < bytes.count else { throw syntax("unterminated string") }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                try flushRun(index)
                index += 1
                return String(scalars)
            }
            if byte < 0x20 { throw syntax("unescaped control character in a string") }
            if byte != UInt8(ascii: "\\") { index += 1; continue }
            try flushRun(index)
            index += 1
            guard index < bytes.count else { throw syntax("unterminated string") }
            let escaped = bytes[index]
            index += 1
            switch escaped {
            case UInt8(ascii: "\""): scalars.append("\"")
            case UInt8(ascii: "\\"): scalars.append("\\")
            case UInt8(ascii: "/"): scalars.append("/")
            case UInt8(ascii: "b"): scalars.append("\u{08}")
            case UInt8(ascii: "f"): scalars.append("\u{0C}")
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "u"):
                let unit = try hex4()
                if (0xD800..<0xDC00).contains(unit), bytes[index...].starts(with: [UInt8(ascii: "\\"), UInt8(ascii: "u")]) {
                    let save = index
                    index += 2
                    let low = try hex4()
                    if (0xDC00..<0xE000).contains(low) {
                        scalars.append(Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))!)
                    } else {
                        // A lone high surrogate, then another escape: as Jackson, replace the lone half.
                        scalars.append("\u{FFFD}")
                        index = save
                    }
                } else {
                    scalars.append(Unicode.Scalar(unit) ?? "\u{FFFD}")
                }
            default:
                index -= 1
                throw syntax("invalid escape \\\(Self.describe(escaped))")
            }
            runStart = index
        }
    }

    private mutating func hex4() throws(Failure) -> UInt32 {
        guard index + 4 <= bytes.count else { throw syntax("truncated \\u escape") }
        var value: UInt32 = 0
        for byte in bytes[index..<index + 4] {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw syntax("invalid \\u escape")
            }
            value = value << 4 | UInt32(digit)
        }
        index += 4
        return value
    }

    /// A number: `.integer` when it has no fraction or exponent and fits 64 bits, else `.number`.
    private mutating func readNumber() throws(Failure) -> JSONValue {
        let start = index
        var isInteger = true
        if peek() == UInt8(ascii: "-") { index += 1 }
        guard let lead = peek(), Self.isDigit(lead) else { throw syntax("expected a digit") }
        index += 1
        if lead != UInt8(ascii: "0") { while let d = peek(), Self.isDigit(d) { index += 1 } }
        if peek() == UInt8(ascii: ".") {
            isInteger = false
            index += 1
            guard let d = peek(), Self.isDigit(d) else { throw syntax("expected a digit after '.'") }
            while let d = peek(), Self.isDigit(d) { index += 1 }
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            isInteger = false
            index += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { index += 1 }
            guard let d = peek(), Self.isDigit(d) else { throw syntax("expected a digit in the exponent") }
            while let d = peek(), Self.isDigit(d) { index += 1 }
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        if isInteger, let value = Int64(text) { return .integer(value) }
        return .number(Double(text) ?? .nan)
    }

    private mutating func literal(_ word: String) throws(Failure) {
        let expected = Array(word.utf8)
        guard bytes[index...].starts(with: expected) else { throw syntax("unexpected \(Self.describe(bytes[index]))") }
        index += expected.count
    }

    private mutating func expect(_ character: Unicode.Scalar, _ message: String) throws(Failure) {
        guard peek() == UInt8(ascii: character) else { throw syntax(message) }
        index += 1
    }

    private mutating func expectEnd() throws(Failure) {
        skipWhitespace()
        guard index == bytes.count else { throw syntax("unexpected data after the JSON value") }
    }

    private mutating func skipWhitespace() {
        while let byte = peek(), byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { index += 1 }
    }

    private func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

    private func syntax(_ message: String) -> Failure { .syntax(message, offset: index) }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private static func describe(_ byte: UInt8) -> String {
        (0x21..<0x7F).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
    }
}

/// A JSON value as far as job validation needs it: scalars in full, containers only by kind.
enum JSONValue: Equatable, CustomStringConvertible {
    case null, bool(Bool), integer(Int64), number(Double), string(String), array, object

    var description: String {
        switch self {
        case .null: "null"
        case .bool(let value): "\(value)"
        case .integer(let value): "\(value)"
        case .number(let value): "\(value)"
        case .string(let text): "\"\(text.prefix(40))\""
        case .array: "an array"
        case .object: "an object"
        }
    }
}
