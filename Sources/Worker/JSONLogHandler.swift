import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// A swift-log `LogHandler` that writes one JSON object per line:
/// `{"timestamp":"2026-12-03T14:00:00.123Z","level":"info","label":"mesh-worker","message":"job started",
/// "metadata":{"deliveryTag":"7","jobKey":"id:abc","memberId":"12345"}}`.
///
/// `timestamp` is UTC with milliseconds; `level` is swift-log's name (`trace` … `critical`); metadata
/// (the handler's, its provider's and the call's, later ones winning) is an object with sorted keys;
/// nested metadata stays nested. Each line is written with a single `write(2)` under a lock, so lines
/// from many threads never interleave.
///
/// The executable installs it once: `LoggingSystem.bootstrap { JSONLogHandler(label: $0, logLevel: level) }`.
public struct JSONLogHandler: LogHandler {
    /// Where the lines go.
    public struct Sink: Sendable {
        let write: @Sendable (String) -> Void

        /// A sink calling `write` with each line (its trailing newline included).
        public init(_ write: @escaping @Sendable (String) -> Void) { self.write = write }

        /// Standard error.
        public static let standardError = Sink { line in FileDescriptorWriter.standardError.write(line) }
    }

    public let label: String
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let sink: Sink

    public init(label: String, logLevel: Logger.Level = .info, sink: Sink = .standardError,
                metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.logLevel = logLevel
        self.sink = sink
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        if let error = event.error, merged["error"] == nil { merged["error"] = "\(error)" }
        sink.write(Self.line(timestamp: Date(), level: event.level, label: label, message: event.message.description,
                             metadata: merged))
    }

    /// One JSON line (ending in a newline).
    static func line(timestamp: Date, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) -> String {
        var out = "{\"timestamp\":\"\(iso8601(timestamp))\",\"level\":\"\(level.rawValue)\",\"label\":"
        appendQuoted(label, to: &out)
        out += ",\"message\":"
        appendQuoted(message, to: &out)
        out += ",\"metadata\":"
        append(.dictionary(metadata), to: &out)
        out += "}\n"
        return out
    }

    static func append(_ value: Logger.MetadataValue, to out: inout String) {
        switch value {
        case .string(let text): appendQuoted(text, to: &out)
        case .stringConvertible(let convertible): appendQuoted(convertible.description, to: &out)
        case .array(let values):
            out += "["
            for (i, element) in values.enumerated() {
                if i > 0 { out += "," }
                append(element, to: &out)
            }
            out += "]"
        case .dictionary(let entries):
            out += "{"
            for (i, key) in entries.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                appendQuoted(key, to: &out)
                out += ":"
                append(entries[key]!, to: &out)
            }
            out += "}"
        }
    }

    /// `text` as a JSON string: quotes, backslashes and control characters escaped.
    static func appendQuoted(_ text: String, to out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let s where s.value < 0x20 || s.value == 0x7F:
                let hex = String(s.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    /// `2026-12-03T14:00:00.123Z` (UTC, milliseconds)
    public static func iso8601(_ date: Date) -> String {
        let ms = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        let stamp = Array(OutputStore.stamp(epochMilliseconds: ms))  // yyyyMMdd_HHmmss, UTC
        let millis = String(((ms % 1000) + 1000) % 1000)
        return "\(String(stamp[0..<4]))-\(String(stamp[4..<6]))-\(String(stamp[6..<8]))T\(String(stamp[9..<11])):"
            + "\(String(stamp[11..<13])):\(String(stamp[13..<15])).\(String(repeating: "0", count: 3 - millis.count))\(millis)Z"
    }
}

/// Writes whole lines to a file descriptor, one `write(2)` per line where the kernel allows, under a lock.
final class FileDescriptorWriter: @unchecked Sendable {
    static let standardError = FileDescriptorWriter(fd: 2)
    private let fd: Int32
    private let lock = NSLock()

    init(fd: Int32) { self.fd = fd }

    func write(_ line: String) {
        var bytes = Array(line.utf8)
        lock.withLock {
            bytes.withUnsafeMutableBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let written = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        return  // nowhere to report a failing log stream
                    }
                    offset += written
                }
            }
        }
    }
}
