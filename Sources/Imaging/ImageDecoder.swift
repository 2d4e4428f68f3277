import CImageCodecs
import CPNG
import Foundation

/// A decoded image and what was learned about the file on the way.
public struct DecodedImage: Sendable {
    /// Upright pixels (EXIF orientation applied).
    public var image: Image
    public var format: ImageFormat
    /// The orientation found in the file (`.up` when none).
    public var orientation: Orientation
    /// Dimensions as stored in the file, before orientation.
    public var storedWidth: Int
    public var storedHeight: Int
    /// The 35 mm equivalent focal length from EXIF (`FocalLengthIn35mmFilm`), when the file has one.
    public var focalLength35mm: Int? = nil
}

/// What the header says, read without decoding any pixels.
public struct ImageInfo: Sendable, Equatable {
    public var format: ImageFormat
    public var storedWidth: Int
    public var storedHeight: Int
    public var orientation: Orientation
    public var hasAlpha: Bool
    /// The 35 mm equivalent focal length from EXIF, when present.
    public var focalLength35mm: Int? = nil

    /// Dimensions after orientation is applied.
    public var width: Int { orientation.swapsDimensions ? storedHeight : storedWidth }
    public var height: Int { orientation.swapsDimensions ? storedWidth : storedHeight }
}

/// Decodes JPEG and PNG uploads. The format comes from the bytes; limits are checked
/// from the header before pixel memory is allocated; every failure is an `ImageError`.
public enum ImageDecoder {
    /// Reads the header only.
    public static func info(_ bytes: some ContiguousBytes, limits: DecodeLimits = .default) throws(ImageError) -> ImageInfo {
        try bytes.withUnsafeBytes { raw in Result { () throws(ImageError) in try header(raw, limits: limits) } }.get()
    }

    /// Decodes to upright RGB or RGBA pixels.
    public static func decode(_ bytes: some ContiguousBytes, limits: DecodeLimits = .default) throws(ImageError) -> DecodedImage {
        try bytes.withUnsafeBytes { raw in Result { () throws(ImageError) in try decode(raw, limits: limits) } }.get()
    }

    /// Reads and decodes a file.
    public static func decode(contentsOf url: URL, limits: DecodeLimits = .default) throws -> DecodedImage {
        let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
        if let size = attributes[.size] as? Int, size > limits.maxBytes {
            throw ImageError.tooManyBytes(count: size, limit: limits.maxBytes)
        }
        return try decode(try Data(contentsOf: url), limits: limits)
    }

    static func header(_ raw: UnsafeRawBufferPointer, limits: DecodeLimits) throws(ImageError) -> ImageInfo {
        let format = try sniff(raw, limits: limits)
        switch format {
        case .jpeg:
            let info = try JPEG.readInfo(raw)
            let exif = EXIF.jpegTIFF(raw).map { EXIF.info(tiff: $0) } ?? EXIFInfo()
            let result = ImageInfo(format: .jpeg, storedWidth: Int(info.width), storedHeight: Int(info.height),
                                   orientation: exif.orientation ?? .up, hasAlpha: false, focalLength35mm: exif.focalLength35mm)
            try check(result, limits: limits)
            return result
        case .png:
            let (w, h, alpha) = try PNG.readInfo(raw)
            let exif = EXIF.pngTIFF(raw).map { EXIF.info(tiff: $0) } ?? EXIFInfo()
            let result = ImageInfo(format: .png, storedWidth: w, storedHeight: h, orientation: exif.orientation ?? .up,
                                   hasAlpha: alpha, focalLength35mm: exif.focalLength35mm)
            try check(result, limits: limits)
            return result
        default:
            throw ImageError.unsupportedFormat(format.rawValue)
        }
    }

    static func decode(_ raw: UnsafeRawBufferPointer, limits: DecodeLimits) throws(ImageError) -> DecodedImage {
        let info = try header(raw, limits: limits)
        let stored: Image
        switch info.format {
        case .jpeg: stored = try JPEG.decode(raw, width: info.storedWidth, height: info.storedHeight, maxScans: limits.maxJPEGScans)
        case .png: stored = try PNG.decode(raw, width: info.storedWidth, height: info.storedHeight, alpha: info.hasAlpha)
        default: throw ImageError.unsupportedFormat(info.format.rawValue)
        }
        return DecodedImage(image: stored.applying(info.orientation), format: info.format,
                            orientation: info.orientation, storedWidth: info.storedWidth, storedHeight: info.storedHeight,
                            focalLength35mm: info.focalLength35mm)
    }

    /// Byte-level checks common to every format: size, emptiness, signature.
    static func sniff(_ raw: UnsafeRawBufferPointer, limits: DecodeLimits) throws(ImageError) -> ImageFormat {
        if raw.isEmpty { throw ImageError.empty }
        if raw.count > limits.maxBytes { throw ImageError.tooManyBytes(count: raw.count, limit: limits.maxBytes) }
        guard let format = ImageFormat.detect(raw.bindMemory(to: UInt8.self)) else {
            throw ImageError.notAnImage(ImageFormat.describeNonImage(raw.bindMemory(to: UInt8.self)))
        }
        guard format.isDecodable else { throw ImageError.unsupportedFormat(format.rawValue) }
        return format
    }

    static func check(_ info: ImageInfo, limits: DecodeLimits) throws(ImageError) {
        let w = info.storedWidth, h = info.storedHeight
        guard w > 0, h > 0 else {
            throw ImageError.corrupt(format: info.format.rawValue, detail: "image has no pixels (\(w)x\(h))")
        }
        let (pixels, overflow) = w.multipliedReportingOverflow(by: h)
        if overflow || pixels > limits.maxPixels {
            throw ImageError.tooManyPixels(width: w, height: h, limit: limits.maxPixels)
        }
    }
}

extension Result where Failure == ImageError {
    init(catching body: () throws(ImageError) -> Success) {
        do { self = .success(try body()) } catch { self = .failure(error) }
    }
}

// MARK: - JPEG

enum JPEG {
    static func message(_ buffer: [CChar]) -> String {
        let text = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return text.isEmpty ? "unknown error" : text
    }

    static func readInfo(_ raw: UnsafeRawBufferPointer) throws(ImageError) -> mr_jpeg_info {
        var info = mr_jpeg_info()
        var buffer = [CChar](repeating: 0, count: 256)
        let status = mr_jpeg_read_info(raw.baseAddress!.assumingMemoryBound(to: UInt8.self), raw.count,
                                       &info, &buffer, buffer.count)
        try throwIfFailed(status, buffer)
        guard info.precision == 8 else {
            throw ImageError.corrupt(format: "JPEG", detail: "\(info.precision)-bit samples are not supported")
        }
        return info
    }

    static func decode(_ raw: UnsafeRawBufferPointer, width: Int, height: Int, maxScans: Int) throws(ImageError) -> Image {
        var buffer = [CChar](repeating: 0, count: 256)
        var status: Int32 = 0
        let count = width * height * 3
        let pixels = [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
            status = mr_jpeg_decode_rgb(raw.baseAddress!.assumingMemoryBound(to: UInt8.self), raw.count,
                                        out.baseAddress, count, Int32(maxScans), &buffer, buffer.count)
            if status != MR_JPEG_OK.rawValue { out.initialize(repeating: 0) }
            initialized = count
        }
        try throwIfFailed(status, buffer)
        return Image(width: width, height: height, layout: .rgb, pixels: pixels)
    }

    static func throwIfFailed(_ status: Int32, _ buffer: [CChar]) throws(ImageError) {
        switch UInt32(status) {
        case MR_JPEG_OK.rawValue: return
        case MR_JPEG_TRUNCATED.rawValue: throw ImageError.truncated(format: "JPEG", detail: "the data ends before the image does")
        case MR_JPEG_TOO_MANY_SCANS.rawValue: throw ImageError.corrupt(format: "JPEG", detail: message(buffer))
        default:
            let text = message(buffer)
            // A header cut short reads as "Premature end of JPEG file" or "JPEG datastream contains no image".
            if text.localizedCaseInsensitiveContains("premature end") {
                throw ImageError.truncated(format: "JPEG", detail: text)
            }
            throw ImageError.corrupt(format: "JPEG", detail: text)
        }
    }
}

// MARK: - PNG

enum PNG {
    // libpng's simplified-API constants (png.h), spelled out: Swift does not import
    // the composed macros. Used by PNGEncoder.
    static let formatFlagAlpha: UInt32 = 0x01
    static let formatRGB: UInt32 = 0x02
    static let formatRGBA: UInt32 = 0x03

    static func message(_ image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }

    static func throwIfFailed(_ status: Int32, _ buffer: [CChar]) throws(ImageError) {
        let text = JPEG.message(buffer)
        switch UInt32(status) {
        case MR_PNG_OK.rawValue: return
        case MR_PNG_TRUNCATED.rawValue: throw ImageError.truncated(format: "PNG", detail: text)
        default: throw ImageError.corrupt(format: "PNG", detail: text)
        }
    }

    static func readInfo(_ raw: UnsafeRawBufferPointer) throws(ImageError) -> (Int, Int, Bool) {
        var info = mr_png_info()
        var buffer = [CChar](repeating: 0, count: 256)
        let status = mr_png_read_info(raw.baseAddress!.assumingMemoryBound(to: UInt8.self), raw.count,
                                      &info, &buffer, buffer.count)
        try throwIfFailed(status, buffer)
        return (Int(info.width), Int(info.height), info.has_alpha != 0)
    }

    static func decode(_ raw: UnsafeRawBufferPointer, width: Int, height: Int, alpha: Bool) throws(ImageError) -> Image {
        let layout: Image.Layout = alpha ? .rgba : .rgb
        let count = width * height * layout.channels
        var buffer = [CChar](repeating: 0, count: 256)
        var status: Int32 = 0
        let pixels = [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
            status = mr_png_decode(raw.baseAddress!.assumingMemoryBound(to: UInt8.self), raw.count,
                                   Int32(layout.channels), out.baseAddress, count, &buffer, buffer.count)
            if status != MR_PNG_OK.rawValue { out.initialize(repeating: 0) }
            initialized = count
        }
        try throwIfFailed(status, buffer)
        return Image(width: width, height: height, layout: layout, pixels: pixels)
    }
}
