import Foundation
import MeshIO
#if canImport(Glibc)
import Glibc
#endif

/// File naming and atomic file handling under the uploads root.
///
/// Names follow the queue contract, with the job's `timestamp` rendered in **UTC**:
/// `image_{memberId}_{yyyyMMdd_HHmmss}.{jpg|png}` and `models/model3d_{memberId}_{yyyyMMdd_HHmmss}.obj`.
///
/// - Two different jobs never share files: before anything is written a job *claims* its stem
///   `{memberId}_{yyyyMMdd_HHmmss}` by creating `.worker/claims/{stem}.claim` with `O_EXCL`, holding the job's
///   key (the AMQP message id, or a hash of the body when there is none). A second job with the same
///   member and second finds the claim taken by another key and uses `{stem}_{8 hex digits of its key}`
///   (then `…_2`, `…_3` if even that collides). `O_EXCL` is atomic across processes and hosts sharing
///   the filesystem, so this holds with many workers.
/// - A redelivered job (same key) finds its own claim and reuses the stem; when the completion record
///   `.worker/claims/{stem}.done` exists the model is already there and is not generated again.
/// - Every file is written to a temporary name in the same folder, then renamed. Temporary names
///   start with `.tmp-{host}-{pid}-`; on startup `removeStaleTemporaries` deletes those left by dead
///   processes on this host and any older than an hour, so a crash never leaves partial files behind.
public struct OutputStore: Sendable {
    /// The uploads root (default `uploads/`).
    public let root: URL
    /// `root/models`
    public var modelsDirectory: URL { root.appendingPathComponent("models", isDirectory: true) }
    /// `root/.worker/claims`
    public var claimsDirectory: URL { root.appendingPathComponent(".worker/claims", isDirectory: true) }

    public init(root: URL) {
        self.root = root
    }

    /// Creates the uploads, models and claims folders.
    public func prepare() throws {
        for directory in [root, modelsDirectory, claimsDirectory] {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        }
    }

    /// `yyyyMMdd_HHmmss` of an epoch-milliseconds timestamp, in UTC.
    public static func stamp(epochMilliseconds: Int64) -> String {
        let seconds = epochMilliseconds >= 0 ? epochMilliseconds / 1000 : (epochMilliseconds - 999) / 1000
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return pad(year, 4) + pad(month, 2) + pad(day, 2) + "_" + pad(secondOfDay / 3600, 2)
            + pad(secondOfDay % 3600 / 60, 2) + pad(secondOfDay % 60, 2)
    }

    /// The contract stem `{memberId}_{yyyyMMdd_HHmmss}`.
    public static func baseStem(for job: Job) -> String {
        "\(job.memberId)_\(stamp(epochMilliseconds: job.timestamp))"
    }

    /// A job's identity across redeliveries and retries: its message id when it has one,
    /// otherwise a hash of its body.
    public static func jobKey(messageId: String?, body: [UInt8]) -> String {
        if let messageId, !messageId.isEmpty { return "id:" + messageId }
        return "body:" + hexHash(body)
    }

    /// 64-bit FNV-1a of the bytes as 16 hex digits (a name suffix, not a security measure).
    public static func hexHash(_ bytes: [UInt8]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x100_0000_01b3
        }
        let text = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - text.count) + text
    }

    /// What a claim says about a job's files.
    public struct Claim: Sendable, Equatable {
        /// `{memberId}_{yyyyMMdd_HHmmss}` or that plus a suffix.
        public var stem: String
        /// The completion record, when the job already finished (a redelivery).
        public var completed: CompletionRecord?

        /// `image_{stem}.{ext}`
        public func imageName(fileExtension: String) -> String { "image_\(stem).\(fileExtension)" }
        /// `model3d_{stem}` (the generator adds `.obj`, `.glb`, …)
        public var modelBaseName: String { "model3d_\(stem)" }
    }

    /// Saved once all of a job's files are in place; a redelivery reads it instead of regenerating.
    public struct CompletionRecord: Codable, Sendable, Equatable {
        /// Image path relative to the root.
        public var imagePath: String
        /// Model paths relative to the root (the first is the primary model).
        public var modelPaths: [String]
        public var vertexCount: Int
        public var faceCount: Int
        public var stageMilliseconds: [String: Double]
        /// When the job finished, epoch milliseconds.
        public var finishedAt: Int64
        /// The model's size in metres and how it was found (absent in records of older workers).
        public var size: ModelSize?
        public var sizeSource: String?

        public init(imagePath: String, modelPaths: [String], vertexCount: Int, faceCount: Int,
                    stageMilliseconds: [String: Double], finishedAt: Int64, size: ModelSize? = nil, sizeSource: String? = nil) {
            self.imagePath = imagePath
            self.modelPaths = modelPaths
            self.vertexCount = vertexCount
            self.faceCount = faceCount
            self.stageMilliseconds = stageMilliseconds
            self.finishedAt = finishedAt
            self.size = size
            self.sizeSource = sizeSource
        }
    }

    /// Claims the stem for a job (see the type's documentation). Throws only on I/O errors.
    public func claim(job: Job, key: String) throws -> Claim {
        let base = Self.baseStem(for: job)
        let suffix = String(Self.hexHash(Array(key.utf8)).prefix(8))
        var candidates = [base, "\(base)_\(suffix)"]
        for n in 2...50 { candidates.append("\(base)_\(suffix)_\(n)") }
        for stem in candidates {
            let claimFile = claimsDirectory.appendingPathComponent("\(stem).claim")
            // Written in full under a temporary name, then hard-linked: link() fails with EEXIST when
            // the name is taken, atomically, and a claim is never seen half-written.
            let temporary = Self.temporaryURL(for: claimFile)
            try Self.writeFile(Array(key.utf8), to: temporary)
            let linked = link(temporary.path, claimFile.path)
            let linkError = errno
            unlink(temporary.path)
            if linked == 0 { return Claim(stem: stem, completed: nil) }
            guard linkError == EEXIST else { throw POSIXError(POSIXErrorCode(rawValue: linkError) ?? .EIO) }
            if let owner = try? String(contentsOf: claimFile, encoding: .utf8), owner == key {
                return Claim(stem: stem, completed: completionRecord(stem: stem))
            }
        }
        throw POSIXError(.EEXIST)
    }

    /// Counts one more start of the job holding `stem` (`.worker/claims/{stem}.starts` grows by a byte)
    /// and returns the number of starts so far. A job that keeps crashing its worker shows up here.
    public func recordStart(stem: String) throws -> Int {
        let path = claimsDirectory.appendingPathComponent("\(stem).starts").path
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        var byte: UInt8 = 0x2E
        let written = Glibc.write(fd, &byte, 1)
        var info = stat()
        let statted = fstat(fd, &info)
        close(fd)
        guard written == 1, statted == 0 else { throw POSIXError(.EIO) }
        return Int(info.st_size)
    }

    /// The completion record for a stem, if the job finished.
    public func completionRecord(stem: String) -> CompletionRecord? {
        let url = claimsDirectory.appendingPathComponent("\(stem).done")
        guard let data = try? Data(contentsOf: url) else { return nil }
        return try? JSONDecoder().decode(CompletionRecord.self, from: data)
    }

    /// Writes the completion record (atomically), marking the job done for later redeliveries.
    public func complete(stem: String, record: CompletionRecord) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try Self.writeAtomically(Array(try encoder.encode(record)),
                                 to: claimsDirectory.appendingPathComponent("\(stem).done"))
    }

    /// Writes `bytes` to a temporary file in the destination's folder, syncs it and renames it over `url`.
    public static func writeAtomically(_ bytes: [UInt8], to url: URL) throws { try AtomicFile.replace(url, with: bytes) }

    /// Creates `url` (which must not exist), writes and syncs `bytes`; removes it again on failure.
    static func writeFile(_ bytes: [UInt8], to temporary: URL) throws { try AtomicFile.create(temporary, with: bytes) }

    /// The temporary-name convention is MeshIO's, shared with the engine's file writers, so
    /// `removeStaleTemporaries` also finds a crashed engine's half-written models.
    public static var temporaryPrefix: String { AtomicFile.temporaryPrefix }
    public static var hostTag: String { AtomicFile.hostTag }

    /// A fresh temporary name beside `url`: `.tmp-{host}-{pid}-{random}-{name}`.
    public static func temporaryURL(for url: URL) -> URL { AtomicFile.temporaryURL(for: url) }

    /// Deletes temporary files under the root, models and claims folders that belong to processes of
    /// this host that no longer run, or are older than `maxAge` seconds (from any host).
    /// Returns the deleted paths.
    @discardableResult
    public func removeStaleTemporaries(maxAge: TimeInterval = 3600, now: Date = Date()) -> [String] {
        var removed: [String] = []
        for directory in [root, modelsDirectory, claimsDirectory] {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { continue }
            for name in names where name.hasPrefix(Self.temporaryPrefix) {
                let path = directory.appendingPathComponent(name).path
                let fields = name.dropFirst(Self.temporaryPrefix.count).split(separator: "-", maxSplits: 2)
                var stale = false
                if fields.count == 3, String(fields[0]) == Self.hostTag, let pid = Int32(fields[1]) {
                    stale = pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH
                }
                if !stale, let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                   let modified = attributes[.modificationDate] as? Date {
                    stale = now.timeIntervalSince(modified) > maxAge
                }
                if stale && unlink(path) == 0 { removed.append(path) }
            }
        }
        return removed
    }

    /// `url`'s path relative to the root (for result events).
    public func relativePath(_ url: URL) -> String {
        let rootPath = root.standardizedFileURL.path
        let path = url.standardizedFileURL.path
        guard path.hasPrefix(rootPath + "/") else { return path }
        return String(path.dropFirst(rootPath.count + 1))
    }
}
