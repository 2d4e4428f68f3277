/// An 8-bit image, row-major, channels interleaved: RGB (3 channels) or RGBA (4).
///
/// Pixels are always upright: decoders apply EXIF orientation before returning.
public struct Image: Sendable, Equatable {
    public enum Layout: Int, Sendable, Equatable {
        case rgb = 3
        case rgba = 4

        public var channels: Int { rawValue }
    }

    public let width: Int
    public let height: Int
    public let layout: Layout
    /// `height` rows of `width * channels` bytes each, no padding.
    public var pixels: [UInt8]

    public var channels: Int { layout.channels }
    public var hasAlpha: Bool { layout == .rgba }
    public var rowBytes: Int { width * layout.channels }

    /// Wraps pixel bytes. The count must be exactly `width * height * channels`.
    public init(width: Int, height: Int, layout: Layout, pixels: [UInt8]) {
        precondition(width > 0 && height > 0, "image dimensions must be positive")
        precondition(pixels.count == width * height * layout.channels,
                     "pixel count \(pixels.count) does not match \(width)x\(height)x\(layout.channels)")
        self.width = width
        self.height = height
        self.layout = layout
        self.pixels = pixels
    }

    /// A new image filled with one colour (`color` has `layout.channels` entries).
    public init(width: Int, height: Int, layout: Layout = .rgb, filledWith color: [UInt8]) {
        precondition(color.count == layout.channels)
        var pixels = [UInt8](repeating: 0, count: width * height * layout.channels)
        for i in stride(from: 0, to: pixels.count, by: layout.channels) {
            for c in 0..<layout.channels { pixels[i + c] = color[c] }
        }
        self.init(width: width, height: height, layout: layout, pixels: pixels)
    }

    /// The channel values of the pixel at column `x`, row `y`.
    public subscript(x: Int, y: Int) -> [UInt8] {
        let start = (y * width + x) * channels
        return Array(pixels[start..<start + channels])
    }

    /// The same picture without alpha: each pixel composited over `background` (RGB).
    public func flattened(over background: (UInt8, UInt8, UInt8) = (255, 255, 255)) -> Image {
        guard layout == .rgba else { return self }
        let count = width * height
        let out = [UInt8](unsafeUninitializedCapacity: count * 3) { buffer, initialized in
            pixels.withUnsafeBufferPointer { src in
                let bg = [UInt32(background.0), UInt32(background.1), UInt32(background.2)]
                for i in 0..<count {
                    let a = UInt32(src[i * 4 + 3])
                    for c in 0..<3 {
                        let v = UInt32(src[i * 4 + c]) * a + bg[c] * (255 - a)
                        buffer[i * 3 + c] = UInt8((v + 127) / 255)
                    }
                }
            }
            initialized = count * 3
        }
        return Image(width: width, height: height, layout: .rgb, pixels: out)
    }

    /// The alpha channel as one byte per pixel (all 255 for an RGB image).
    public func alphaChannel() -> [UInt8] {
        guard layout == .rgba else { return [UInt8](repeating: 255, count: width * height) }
        return (0..<(width * height)).map { pixels[$0 * 4 + 3] }
    }

    /// The float view a network reads: planar (C, H, W) RGB, each value
    /// `(v / 255 - mean[c]) / std[c]`. Alpha, if any, is dropped (use `flattened` first
    /// to choose a background).
    public func planarFloats(mean: (Float, Float, Float) = (0, 0, 0),
                             std: (Float, Float, Float) = (1, 1, 1)) -> [Float] {
        let count = width * height
        let ch = channels
        let scales = [1 / (255 * std.0), 1 / (255 * std.1), 1 / (255 * std.2)]
        let offsets = [mean.0 / std.0, mean.1 / std.1, mean.2 / std.2]
        return [Float](unsafeUninitializedCapacity: count * 3) { buffer, initialized in
            pixels.withUnsafeBufferPointer { src in
                for c in 0..<3 {
                    let scale = scales[c], offset = offsets[c]
                    let plane = c * count
                    for i in 0..<count {
                        buffer[plane + i] = Float(src[i * ch + c]) * scale - offset
                    }
                }
            }
            initialized = count * 3
        }
    }
}
