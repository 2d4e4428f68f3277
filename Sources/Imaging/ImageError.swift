/// Why bytes could not become an `Image`. Every case names what was found, so the
/// message can go back to the person who uploaded the file.
public enum ImageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Empty input.
    case empty
    /// The bytes are a known format that is not decoded here (GIF, WebP, HEIC, …).
    case unsupportedFormat(String)
    /// The bytes are not an image at all (an HTML error page, text, random bytes).
    case notAnImage(String)
    /// The header claims more pixels than allowed.
    case tooManyPixels(width: Int, height: Int, limit: Int)
    /// The input is larger than allowed.
    case tooManyBytes(count: Int, limit: Int)
    /// The file ends before the image does.
    case truncated(format: String, detail: String)
    /// The decoder rejected the data.
    case corrupt(format: String, detail: String)
    /// Encoding failed (only from encoders).
    case encodingFailed(String)

    /// A short, stable code for logs, metrics and dead-letter headers.
    public var code: String {
        switch self {
        case .empty: "empty"
        case .unsupportedFormat: "unsupported_format"
        case .notAnImage: "not_an_image"
        case .tooManyPixels: "image_too_large"
        case .tooManyBytes: "file_too_large"
        case .truncated: "truncated"
        case .corrupt: "corrupt"
        case .encodingFailed: "encoding_failed"
        }
    }

    public var description: String {
        switch self {
        case .empty:
            "the file is empty"
        case .unsupportedFormat(let format):
            "\(format) images are not supported (JPEG and PNG are)"
        case .notAnImage(let what):
            "not an image: \(what)"
        case .tooManyPixels(let width, let height, let limit):
            "image is \(width)x\(height) pixels, more than the limit of \(limit) pixels"
        case .tooManyBytes(let count, let limit):
            "file is \(count) bytes, more than the limit of \(limit) bytes"
        case .truncated(let format, let detail):
            "truncated \(format) file: \(detail)"
        case .corrupt(let format, let detail):
            "corrupt \(format) file: \(detail)"
        case .encodingFailed(let detail):
            "could not encode image: \(detail)"
        }
    }
}

/// Bounds checked before any pixel memory is allocated.
public struct DecodeLimits: Sendable, Equatable {
    /// Largest accepted width × height (after decoding, before any resize).
    public var maxPixels: Int
    /// Largest accepted input, in bytes.
    public var maxBytes: Int
    /// Largest accepted number of scans in a progressive JPEG (a cheap CPU bomb otherwise).
    public var maxJPEGScans: Int

    public init(maxPixels: Int = 40_000_000, maxBytes: Int = 50 * 1024 * 1024, maxJPEGScans: Int = 256) {
        self.maxPixels = maxPixels
        self.maxBytes = maxBytes
        self.maxJPEGScans = maxJPEGScans
    }

    public static let `default` = DecodeLimits()
}
