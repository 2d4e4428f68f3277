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

/// What the decoder reads from EXIF: the orientation and the 35 mm equivalent focal length.
public struct EXIFInfo: Sendable, Equatable {
    public var orientation: Orientation?
    /// `FocalLengthIn35mmFilm` (tag 0xA405 in the Exif IFD), in millimetres, when present and
    /// non-zero: the lens's focal length scaled to a 36×24 mm frame (diagonal 43.27 mm).
    public var focalLength35mm: Int?

    public init(orientation: Orientation? = nil, focalLength35mm: Int? = nil) {
        self.orientation = orientation
        self.focalLength35mm = focalLength35mm
    }
}

/// Reads EXIF data. Every offset is bounds-checked: a malformed EXIF block yields nil fields,
/// never a crash.
enum EXIF {
    /// The tags we use from the TIFF structure inside an EXIF block (after "Exif\0\0").
    static func info(tiff: ArraySlice<UInt8>) -> EXIFInfo {
        let t = Array(tiff)
        guard t.count >= 8 else { return EXIFInfo() }
        let little: Bool
        if t[0] == 0x49 && t[1] == 0x49 { little = true } else if t[0] == 0x4D && t[1] == 0x4D { little = false } else { return EXIFInfo() }
        func u16(_ o: Int) -> Int? {
            guard o >= 0, o + 2 <= t.count else { return nil }
            return little ? Int(t[o]) | Int(t[o + 1]) << 8 : Int(t[o]) << 8 | Int(t[o + 1])
        }
        func u32(_ o: Int) -> Int? {
            guard let a = u16(o), let b = u16(o + 2) else { return nil }
            return little ? a | b << 16 : a << 16 | b
        }
        /// The SHORT or LONG value of `tag` in the IFD at `ifd` (values that fit the entry).
        func value(_ tag: Int, ifd: Int) -> Int? {
            guard let count = u16(ifd) else { return nil }
            for i in 0..<min(count, 512) {
                let entry = ifd + 2 + i * 12
                guard let found = u16(entry), let type = u16(entry + 2) else { return nil }
                guard found == tag else { continue }
                switch type {
                case 3: return u16(entry + 8)
                case 4: return u32(entry + 8)
                default: return nil
                }
            }
            return nil
        }
        guard u16(2) == 42, let ifd0 = u32(4) else { return EXIFInfo() }
        var info = EXIFInfo()
        info.orientation = value(0x0112, ifd: ifd0).flatMap(Orientation.init(rawValue:))
        if let exifIFD = value(0x8769, ifd: ifd0), exifIFD != ifd0, let focal = value(0xA405, ifd: exifIFD), focal > 0 {
            info.focalLength35mm = focal
        }
        return info
    }

    /// The TIFF bytes of a JPEG's first APP1 Exif segment, scanning markers up to the first scan.
    static func jpegTIFF(_ d: UnsafeRawBufferPointer) -> ArraySlice<UInt8>? {
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
                    return Array(d[(start + 6)..<(i + 2 + length)])[...]
                }
            }
            i += 2 + length
        }
        return nil
    }

    /// The TIFF bytes of a PNG's eXIf chunk (before the image data).
    static func pngTIFF(_ d: UnsafeRawBufferPointer) -> ArraySlice<UInt8>? {
        var i = 8
        while i + 12 <= d.count {
            let length = Int(d[i]) << 24 | Int(d[i + 1]) << 16 | Int(d[i + 2]) << 8 | Int(d[i + 3])
            let type = String(decoding: d[(i + 4)..<(i + 8)], as: UTF8.self)
            guard length >= 0, i + 12 + length <= d.count else { return nil }
            if type == "eXIf" { return Array(d[(i + 8)..<(i + 8 + length)])[...] }
            if type == "IDAT" || type == "IEND" { return nil }
            i += 12 + length
        }
        return nil
    }
}
