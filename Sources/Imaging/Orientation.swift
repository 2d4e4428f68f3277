/// EXIF orientation (tag 0x0112): how the stored pixels must be turned to be upright.
public enum Orientation: Int, Sendable, Equatable, CaseIterable {
    case up = 1                 // as stored
    case upMirrored = 2         // mirrored left-right
    case down = 3               // rotated 180°
    case downMirrored = 4       // mirrored top-bottom
    case leftMirrored = 5       // transposed (mirror along the main diagonal)
    case right = 6              // must be rotated 90° clockwise
    case rightMirrored = 7      // transversed (mirror along the anti-diagonal)
    case left = 8               // must be rotated 90° counter-clockwise

    /// Whether applying it swaps width and height.
    public var swapsDimensions: Bool { rawValue >= 5 }
}

extension Image {
    /// The upright image for pixels stored with `orientation`.
    public func applying(_ orientation: Orientation) -> Image {
        if orientation == .up { return self }
        let w = width, h = height, ch = channels
        let (ow, oh) = orientation.swapsDimensions ? (h, w) : (w, h)
        let out = [UInt8](unsafeUninitializedCapacity: w * h * ch) { buffer, initialized in
            pixels.withUnsafeBufferPointer { src in
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        let sx: Int, sy: Int
                        switch orientation {
                        case .up: (sx, sy) = (ox, oy)
                        case .upMirrored: (sx, sy) = (w - 1 - ox, oy)
                        case .down: (sx, sy) = (w - 1 - ox, h - 1 - oy)
                        case .downMirrored: (sx, sy) = (ox, h - 1 - oy)
                        case .leftMirrored: (sx, sy) = (oy, ox)
                        case .right: (sx, sy) = (oy, h - 1 - ox)
                        case .rightMirrored: (sx, sy) = (w - 1 - oy, h - 1 - ox)
                        case .left: (sx, sy) = (w - 1 - oy, ox)
                        }
                        let s = (sy * w + sx) * ch, d = (oy * ow + ox) * ch
                        for c in 0..<ch { buffer[d + c] = src[s + c] }
                    }
                }
            }
            initialized = w * h * ch
        }
        return Image(width: ow, height: oh, layout: layout, pixels: out)
    }
}

/// Reads the orientation tag from EXIF data. Every offset is bounds-checked: a
/// malformed EXIF block yields nil, never a crash.
enum EXIF {
    /// Orientation from the TIFF structure inside an EXIF block (after "Exif\0\0").
    static func orientation(tiff: ArraySlice<UInt8>) -> Orientation? {
        let t = Array(tiff)
        guard t.count >= 8 else { return nil }
        let little: Bool
        if t[0] == 0x49 && t[1] == 0x49 { little = true } else if t[0] == 0x4D && t[1] == 0x4D { little = false } else { return nil }
        func u16(_ o: Int) -> Int? {
            guard o >= 0, o + 2 <= t.count else { return nil }
            return little ? Int(t[o]) | Int(t[o + 1]) << 8 : Int(t[o]) << 8 | Int(t[o + 1])
        }
        func u32(_ o: Int) -> Int? {
            guard let a = u16(o), let b = u16(o + 2) else { return nil }
            return little ? a | b << 16 : a << 16 | b
        }
        guard u16(2) == 42, let ifd = u32(4), let count = u16(ifd) else { return nil }
        for i in 0..<min(count, 512) {
            let entry = ifd + 2 + i * 12
            guard let tag = u16(entry) else { return nil }
            if tag == 0x0112 {
                guard let type = u16(entry + 2), type == 3, let value = u16(entry + 8) else { return nil }
                return Orientation(rawValue: value)
            }
        }
        return nil
    }

    /// Orientation from a JPEG's APP1 Exif segment, scanning markers up to the first scan.
    static func jpegOrientation(_ d: UnsafeRawBufferPointer) -> Orientation? {
        var i = 2
        while i + 4 <= d.count {
            guard d[i] == 0xFF else { return nil }
            let marker = d[i + 1]
            if marker == 0xFF { i += 1; continue }                       // fill byte
            if marker == 0xD8 || marker == 0x01 || (0xD0...0xD7).contains(marker) { i += 2; continue }
            if marker == 0xDA || marker == 0xD9 { return nil }            // start of scan / end
            let length = Int(d[i + 2]) << 8 | Int(d[i + 3])
            guard length >= 2, i + 2 + length <= d.count else { return nil }
            if marker == 0xE1, length >= 8 {
                let start = i + 4
                let header: [UInt8] = [0x45, 0x78, 0x69, 0x66, 0, 0]   // "Exif\0\0"
                if (0..<6).allSatisfy({ d[start + $0] == header[$0] }) {
                    let bytes = Array(d[(start + 6)..<(i + 2 + length)])
                    if let o = orientation(tiff: bytes[...]) { return o }
                }
            }
            i += 2 + length
        }
        return nil
    }

    /// Orientation from a PNG's eXIf chunk (before the image data).
    static func pngOrientation(_ d: UnsafeRawBufferPointer) -> Orientation? {
        var i = 8
        while i + 12 <= d.count {
            let length = Int(d[i]) << 24 | Int(d[i + 1]) << 16 | Int(d[i + 2]) << 8 | Int(d[i + 3])
            let type = String(decoding: d[(i + 4)..<(i + 8)], as: UTF8.self)
            guard length >= 0, i + 12 + length <= d.count else { return nil }
            if type == "eXIf" { return orientation(tiff: Array(d[(i + 8)..<(i + 8 + length)])[...]) }
            if type == "IDAT" || type == "IEND" { return nil }
            i += 12 + length
        }
        return nil
    }
}
