import Foundation

/// One upload job, as the MyRoom backend publishes it on `model3d.upload.queue`:
/// `{"imageUrl": "http://…/image.jpg", "memberId": 12345, "timestamp": 1704729600000}`.
/// Unknown fields are ignored.
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
    /// Latest accepted timestamp (9999-12-31T23:59:59.999Z), so file names stay 15 characters.
    public static let maxTimestamp: Int64 = 253_402_300_799_999

    /// Parses and validates a message body. Every failure is a permanent `JobError`.
    public static func parse(_ body: [UInt8]) throws(JobError) -> Job {
        let fields: [String: JSONValue]
        do {
            fields = try JSONDecoder().decode([String: JSONValue].self, from: Data(body))
        } catch {
            if (try? JSONDecoder().decode(JSONValue.self, from: Data(body))) != nil {
                throw JobError(code: .malformedJSON, message: "message body is JSON but not an object")
            }
            let preview = String(decoding: body.prefix(60), as: UTF8.self)
            throw JobError(code: .malformedJSON, message: "message body is not JSON: \"\(preview)\"")
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

/// Any JSON value, decoded loosely so validation can say what was found.
enum JSONValue: Decodable, Equatable, CustomStringConvertible {
    case null, bool(Bool), integer(Int64), number(Double), string(String), array, object

    init(from decoder: any Decoder) throws {
        if var list = try? decoder.unkeyedContainer() {
            while !list.isAtEnd { _ = try list.decode(JSONValue.self) }
            self = .array
            return
        }
        if let keyed = try? decoder.container(keyedBy: AnyKey.self) {
            for key in keyed.allKeys { _ = try keyed.decode(JSONValue.self, forKey: key) }
            self = .object
            return
        }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() { self = .null }
        else if let value = try? single.decode(Bool.self) { self = .bool(value) }
        else if let value = try? single.decode(Int64.self) { self = .integer(value) }
        else if let value = try? single.decode(Double.self) { self = .number(value) }
        else { self = .string(try single.decode(String.self)) }
    }

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

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

/// A job that cannot be run as given. Always permanent: retrying the same body cannot help.
public struct JobError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable error codes, used in dead-letter headers and failure events.
    public enum Code: String, Sendable {
        case malformedJSON = "malformed_json"
        case missingField = "missing_field"
        case invalidField = "invalid_field"
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
