import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Whole-file writes that never leave a half-written file under the final name: the
/// bytes go to a temporary file in the same directory, are flushed, then renamed over
/// the destination.
public enum AtomicFile {
    /// The prefix of every temporary file: `.tmp-{host}-{pid}-{random}-{name}`. A process that
    /// finds such files left by a dead writer (same host, pid gone) or old ones may delete
    /// them: the worker does on start-up, so a crash never leaves partial models behind.
    public static let temporaryPrefix = ".tmp-"

    /// This host's name without dashes, so the pid field can be found again.
    public static let hostTag: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count)
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let cleaned = name.filter { $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" }
        return cleaned.isEmpty ? "host" : cleaned
    }()

    /// A fresh temporary name beside `url`.
    public static func temporaryURL(for url: URL) -> URL {
        let random = String(UInt32.random(in: .min ... .max), radix: 16)
        return url.deletingLastPathComponent()
            .appendingPathComponent("\(temporaryPrefix)\(hostTag)-\(getpid())-\(random)-\(url.lastPathComponent)")
    }

    /// Writes `bytes` to `url` atomically.
    public static func write(_ bytes: [UInt8], to url: URL) throws(MeshIOError) {
        let path = url.path
        let temp = temporaryURL(for: url).path
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io(path: path, reason: String(cString: strerror(errno))) }
        var written = 0
        let ok = bytes.withUnsafeBytes { raw -> Bool in
            while written < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 { if errno == EINTR { continue }; return false }
                written += n
            }
            return true
        }
        let reason = ok ? "" : String(cString: strerror(errno))
        guard ok, fsync(fd) == 0 || errno == EINVAL else {
            close(fd); unlink(temp)
            throw .io(path: path, reason: ok ? String(cString: strerror(errno)) : reason)
        }
        close(fd)
        guard rename(temp, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temp)
            throw .io(path: path, reason: reason)
        }
    }
}

/// A growable byte buffer for the text and binary encoders.
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func text(_ s: String) { bytes.append(contentsOf: s.utf8) }
    mutating func float(_ v: Float) {
        if v == v.rounded(), abs(v) < 1e7 { text(String(Int(v))) } else { text(v.description) }
    }
    mutating func le<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }
    mutating func le(_ v: Float) { le(v.bitPattern) }
    mutating func pad(to alignment: Int, with byte: UInt8) {
        while bytes.count % alignment != 0 { bytes.append(byte) }
    }
}
