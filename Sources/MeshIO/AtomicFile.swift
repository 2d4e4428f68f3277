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
        do { try replace(url, with: bytes) } catch {
            throw .io(path: url.path, reason: String(cString: strerror(error.code.rawValue)))
        }
    }

    /// Writes `bytes` to a fresh temporary file beside `url`, syncs it and renames it over `url`.
    /// - Throws: the `POSIXError` of the step that failed (the temporary file is removed).
    public static func replace(_ url: URL, with bytes: [UInt8]) throws(POSIXError) {
        let temporary = temporaryURL(for: url)
        try create(temporary, with: bytes)
        guard rename(temporary.path, url.path) == 0 else {
            let failure = posixError()
            unlink(temporary.path)
            throw failure
        }
    }

    /// Creates `url` (which must not exist), writes and syncs `bytes`; removes it again on failure.
    /// - Throws: the `POSIXError` of the step that failed.
    public static func create(_ url: URL, with bytes: [UInt8]) throws(POSIXError) {
        let fd = open(url.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw posixError() }
        var written = 0
        var failure: POSIXError?
        bytes.withUnsafeBytes { raw in
            while written < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = posixError()
                    return
                }
                written += n
            }
        }
        // EINVAL: the file system does not sync (the bytes are written all the same).
        if failure == nil && fsync(fd) != 0 && errno != EINVAL { failure = posixError() }
        close(fd)
        if let failure {
            unlink(url.path)
            throw failure
        }
    }

    private static func posixError() -> POSIXError { POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
}
