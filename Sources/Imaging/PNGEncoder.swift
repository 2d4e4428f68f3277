import CPNG

/// PNG encoding through libpng's simplified write API (no longjmp reaches Swift).
public enum PNGEncoder {
    /// Encodes an RGB or RGBA image.
    public static func encode(_ image: Image) throws(ImageError) -> [UInt8] {
        try write(width: image.width, height: image.height,
                  format: image.hasAlpha ? PNG.formatRGBA : PNG.formatRGB,
                  rowStride: image.width * image.channels) { body in image.pixels.withUnsafeBytes(body) }
    }

    /// Encodes one 8-bit channel as a grayscale PNG (masks, previews).
    public static func encodeGray(width: Int, height: Int, pixels: [UInt8]) throws(ImageError) -> [UInt8] {
        precondition(pixels.count == width * height, "expected \(width * height) gray pixels")
        return try write(width: width, height: height, format: 0, rowStride: width) { body in
            pixels.withUnsafeBytes(body)
        }
    }

    /// Encodes one 16-bit channel as a 16-bit grayscale PNG (depth maps). Values are
    /// stored as given; libpng marks 16-bit simplified-API output as linear (gAMA 1.0).
    public static func encodeGray16(width: Int, height: Int, pixels: [UInt16]) throws(ImageError) -> [UInt8] {
        precondition(pixels.count == width * height, "expected \(width * height) gray pixels")
        let linear: UInt32 = 0x04 // PNG_FORMAT_FLAG_LINEAR
        return try write(width: width, height: height, format: linear, rowStride: width) { body in
            pixels.withUnsafeBytes(body)
        }
    }

    private static func write(width: Int, height: Int, format: UInt32, rowStride: Int,
                              pixels: ((UnsafeRawBufferPointer) -> Void) -> Void) throws(ImageError) -> [UInt8] {
        guard width > 0, height > 0, width <= 0x7FFF_FFFF / 8, height <= 0x7FFF_FFFF else {
            throw ImageError.encodingFailed("invalid dimensions \(width)x\(height)")
        }
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = format
        var size = 0
        var result: [UInt8] = []
        var failure: String?
        pixels { raw in
            // First call measures, second writes. Strides count components, not bytes.
            if png_image_write_to_memory(&image, nil, &size, 0, raw.baseAddress, Int32(rowStride), nil) == 0 {
                failure = PNG.message(&image)
                return
            }
            var out = [UInt8](repeating: 0, count: size)
            let ok = out.withUnsafeMutableBytes { dst in
                png_image_write_to_memory(&image, dst.baseAddress, &size, 0, raw.baseAddress, Int32(rowStride), nil)
            }
            if ok == 0 { failure = PNG.message(&image); return }
            result = Array(out.prefix(size))
        }
        png_image_free(&image)
        if let failure { throw ImageError.encodingFailed(failure.isEmpty ? "libpng error" : failure) }
        return result
    }
}
