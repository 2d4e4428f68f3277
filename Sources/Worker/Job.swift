import Foundation

/// One upload job, as the MyRoom backend publishes it on `model3d.upload.queue`:
/// `{"imageUrl": "http://…/image.jpg", "memberId": 12345, "timestamp": 1704729600000}`.
/// Unknown fields are ignored (at any depth up to `maxNestingDepth`); a field given twice keeps its
/// last value, as in the backend's Jackson.
public struct Job: Sendable, Equatable {
    /// Where to download the photo (http or https; checked again by `Fetch`).
    public var imageURL: String
    /// The member who uploaded it: a positive integer.
    public var memberId: Int64
    /// Upload time, milliseconds since the Unix epoch (UTC). Names the output files.
    public var timestamp: Int64

    public init(imageURL: String, memberId: Int64, timestamp: Int64) {
        self.imageURL = imageURL
        self.memberId = memberId
        self.timestamp = timestamp
    }

    /// Longest accepted `imageUrl`.
    public static let maxURLLength = 4096
    /// Deepest nesting of arrays and objects accepted in a message (the top-level object is level 1):
    /// Jackson's default, so whatever the backend can write is read.
    public static let maxNestingDepth = JSONObjectReader.defaultMaxDepth
    /// Latest accepted timestamp (9999-12-31T23:59:59.999Z), so file names stay 15 characters.
    public static let maxTimestamp: Int64 = 253_402_300_799_999

    /// Parses and validates a message body. Every failure is a permanent `JobError`.
    public static func parse(_ body: [UInt8]) throws(JobError) -> Job {
        let fields: [String: JSONValue]
        do {
            fields = try JSONObjectReader.fields(of: body, maxDepth: maxNestingDepth)
        } catch {
            switch error {
            case .notAnObject:
                throw JobError(code: .malformedJSON, message: "message body is JSON but not an object")
            case .tooDeep(let limit):
                throw JobError(code: .nestingTooDeep,
                               message: "message body nests arrays or objects deeper than \(limit) levels")
            case .syntax(let reason, let offset):
                let preview = String(decoding: body.prefix(60), as: UTF8.self)
                throw JobError(code: .malformedJSON, message: "message body is not JSON (\(reason) at byte \(offset)): \"\(preview)\"")
            }
        }
        guard let rawURL = fields["imageUrl"], rawURL != .null else {
            throw JobError(code: .missingField, message: "imageUrl is missing", field: "imageUrl")
        }
        guard case .string(let url) = rawURL, !url.trimmingCharacters(in: .whitespaces).isEmpty,
              url.utf8.count <= maxURLLength else {
            throw JobError(code: .invalidField, message: "imageUrl must be a non-empty string of at most \(maxURLLength) bytes",
                           field: "imageUrl")
        }
        let memberId = try integer(fields, "memberId")
        guard memberId > 0 else {
            throw JobError(code: .invalidField, message: "memberId must be a positive integer, got \(memberId)", field: "memberId")
        }
        let timestamp = try integer(fields, "timestamp")
        guard timestamp >= 0, timestamp <= maxTimestamp else {
            throw JobError(code: .invalidField, message: "timestamp must be epoch milliseconds between 0 and \(maxTimestamp), got \(timestamp)",
                           field: "timestamp")
        }
        return Job(imageURL: url.trimmingCharacters(in: .whitespaces), memberId: memberId, timestamp: timestamp)
    }

    /// An integer field: a JSON number with no fractional part (a numeric string is also accepted,
    /// since some serialisers write 64-bit integers as strings). Booleans are refused.
    private static func integer(_ fields: [String: JSONValue], _ name: String) throws(JobError) -> Int64 {
        switch fields[name] {
        case nil, .null?:
            throw JobError(code: .missingField, message: "\(name) is missing", field: name)
        case .integer(let value)?:
            return value
        case .string(let text)? where Int64(text.trimmingCharacters(in: .whitespaces)) != nil:
            return Int64(text.trimmingCharacters(in: .whitespaces))!
        case let other?:
            throw JobError(code: .invalidField, message: "\(name) must be an integer, got \(other)", field: name)
        }
    }
}

/// A job that cannot be run as given. Always permanent: retrying the same body cannot help.
public struct JobError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable error codes, used in dead-letter headers and failure events.
    public enum Code: String, Sendable {
        case malformedJSON = "malformed_json"
        case missingField = "missing_field"
        case invalidField = "invalid_field"
        /// Valid JSON nested deeper than `Job.maxNestingDepth`.
        case nestingTooDeep = "json_too_deep"
    }

    public var code: Code
    public var message: String
    /// The offending field, when one is to blame.
    public var field: String?

    public init(code: Code, message: String, field: String? = nil) {
        self.code = code
        self.message = message
        self.field = field
    }

    public var description: String { message }
}
