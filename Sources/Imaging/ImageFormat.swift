import Foundation

/// What a byte string is, judged from its first bytes (never from a file name or URL).
public enum ImageFormat: String, Sendable, Equatable, CaseIterable {
    case jpeg = "JPEG"
    case png = "PNG"
    // Recognised so the error can name them; not decoded.
    case gif = "GIF"
    case webp = "WebP"
    case heic = "HEIC"
    case avif = "AVIF"
    case bmp = "BMP"
    case tiff = "TIFF"
    case jpeg2000 = "JPEG 2000"
    case jpegXL = "JPEG XL"
    case ico = "ICO"
    case psd = "PSD"

    /// Whether `ImageDecoder` decodes this format.
    public var isDecodable: Bool { self == .jpeg || self == .png }

    /// The usual file extension for outputs in this format.
    public var fileExtension: String {
        switch self {
        case .jpeg: "jpg"
        case .png: "png"
        case .gif: "gif"
        case .webp: "webp"
        case .heic: "heic"
        case .avif: "avif"
        case .bmp: "bmp"
        case .tiff: "tiff"
        case .jpeg2000: "jp2"
        case .jpegXL: "jxl"
        case .ico: "ico"
        case .psd: "psd"
        }
    }

    /// The format the bytes start with, or nil when no image signature matches.
    public static func detect<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> ImageFormat? where Bytes.Index == Int {
        let b = Array(bytes.prefix(32))
        func starts(_ sig: [UInt8], at offset: Int = 0) -> Bool {
            guard b.count >= offset + sig.count else { return false }
            return Array(b[offset..<offset + sig.count]) == sig
        }
        if starts([0xFF, 0xD8, 0xFF]) { return .jpeg }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if starts(Array("GIF87a".utf8)) || starts(Array("GIF89a".utf8)) { return .gif }
        if starts(Array("RIFF".utf8)) && starts(Array("WEBP".utf8), at: 8) { return .webp }
        if starts(Array("ftyp".utf8), at: 4) {
            let brand = b.count >= 12 ? String(decoding: b[8..<12], as: UTF8.self) : ""
            if brand.hasPrefix("avi") { return .avif }
            if ["heic", "heix", "hevc", "hevx", "heim", "heis", "mif1", "msf1"].contains(brand) { return .heic }
        }
        if starts([0x42, 0x4D]) && b.count >= 14 { return .bmp }
        if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) { return .tiff }
        if starts([0x00, 0x00, 0x00, 0x0C, 0x6A, 0x50, 0x20, 0x20]) || starts([0xFF, 0x4F, 0xFF, 0x51]) { return .jpeg2000 }
        if starts([0xFF, 0x0A]) || starts([0x00, 0x00, 0x00, 0x0C, 0x4A, 0x58, 0x4C, 0x20]) { return .jpegXL }
        if starts([0x00, 0x00, 0x01, 0x00]) && b.count >= 6 { return .ico }
        if starts(Array("8BPS".utf8)) { return .psd }
        return nil
    }

    /// A short description of bytes that are not an image, for error messages:
    /// "an HTML page", "a PDF document", "text starting with …", "binary data (…)".
    public static func describeNonImage<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> String where Bytes.Index == Int {
        let head = Array(bytes.prefix(512))
        if head.isEmpty { return "empty data" }
        var text = head
        if text.starts(with: [0xEF, 0xBB, 0xBF]) { text.removeFirst(3) }
        let lowered = String(decoding: text, as: UTF8.self).lowercased()
        let trimmed = lowered.drop(while: { $0.isWhitespace })
        if trimmed.hasPrefix("<!doctype html") || trimmed.hasPrefix("<html") || trimmed.contains("<body")
            || trimmed.contains("<head") {
            return "an HTML page"
        }
        if trimmed.hasPrefix("<?xml") || trimmed.hasPrefix("<svg") {
            return trimmed.contains("<svg") ? "an SVG drawing (vector images are not supported)" : "an XML document"
        }
        if trimmed.hasPrefix("{") || trimmed.hasPrefix("[") { return "JSON text" }
        if head.starts(with: Array("%PDF".utf8)) { return "a PDF document" }
        if head.starts(with: [0x50, 0x4B, 0x03, 0x04]) { return "a ZIP archive" }
        if head.starts(with: [0x1F, 0x8B]) { return "gzip-compressed data" }
        let printable = text.filter { $0 == 9 || $0 == 10 || $0 == 13 || (0x20..<0x7F).contains($0) || $0 >= 0x80 }
        if printable.count == text.count {
            let snippet = String(decoding: text.prefix(40), as: UTF8.self)
                .replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\r", with: " ")
            return "text starting with \"\(snippet)\""
        }
        let hex = head.prefix(8).map { byte in
            let s = String(byte, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined(separator: " ")
        return "unrecognised binary data starting with \(hex)"
    }
}
