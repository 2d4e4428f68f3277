import Foundation

/// Structured log lines, one JSON object per line on standard error:
/// `{"ts":"2026-11-29T21:00:00.123Z","level":"info","msg":"job done","memberId":"12345","deliveryTag":"7",…}`.
/// A job's logger carries its `memberId` and `deliveryTag` on every line.
public struct WorkerLog: Sendable {
    public enum Level: Int, Sendable, Comparable, CaseIterable {
        case debug, info, warning, error
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
        var name: String { ["debug", "info", "warning", "error"][rawValue] }

        /// Parses `debug`, `info`, `warning` (or `warn`), `error`.
        public init?(name: String) {
            switch name.lowercased() {
            case "debug": self = .debug
            case "info": self = .info
            case "warning", "warn": self = .warning
            case "error": self = .error
            default: return nil
            }
        }
    }

    /// Lines below this level are dropped.
    public var minimumLevel: Level
    /// Key/value pairs added to every line.
    public var metadata: [(String, String)]
    private let sink: @Sendable (String) -> Void

    /// Logs to standard error.
    public init(minimumLevel: Level = .info) {
        self.init(minimumLevel: minimumLevel) { line in
            FileHandle.standardError.write(Data(line.utf8))
        }
    }

    /// Logs to `sink` (tests).
    public init(minimumLevel: Level, sink: @escaping @Sendable (String) -> Void) {
        self.minimumLevel = minimumLevel
        self.metadata = []
        self.sink = sink
    }

    /// A copy that adds `key` to every line.
    public func with(_ key: String, _ value: String) -> WorkerLog {
        var copy = self
        copy.metadata.append((key, value))
        return copy
    }

    public func debug(_ message: @autoclosure () -> String, _ extra: [(String, String)] = []) { log(.debug, message(), extra) }
    public func info(_ message: @autoclosure () -> String, _ extra: [(String, String)] = []) { log(.info, message(), extra) }
    public func warning(_ message: @autoclosure () -> String, _ extra: [(String, String)] = []) { log(.warning, message(), extra) }
    public func error(_ message: @autoclosure () -> String, _ extra: [(String, String)] = []) { log(.error, message(), extra) }

    public func log(_ level: Level, _ message: String, _ extra: [(String, String)] = []) {
        guard level >= minimumLevel else { return }
        var line = "{\"ts\":\"\(Self.timestamp())\",\"level\":\"\(level.name)\",\"msg\":\(Self.quote(message))"
        for (key, value) in metadata + extra { line += ",\(Self.quote(key)):\(Self.quote(value))" }
        line += "}\n"
        sink(line)
    }

    static func timestamp() -> String {
        let ms = Int64(Date().timeIntervalSince1970 * 1000)
        let stamp = OutputStore.stamp(epochMilliseconds: ms)
        let chars = Array(stamp)
        let millis = String(ms % 1000)
        return "\(String(chars[0..<4]))-\(String(chars[4..<6]))-\(String(chars[6..<8]))T\(String(chars[9..<11])):"
            + "\(String(chars[11..<13])):\(String(chars[13..<15])).\(String(repeating: "0", count: 3 - millis.count))\(millis)Z"
    }

    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let s where s.value < 0x20: out += String(format: "\\u%04x", s.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
