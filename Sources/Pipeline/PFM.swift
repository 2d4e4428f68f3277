import Foundation

/// Portable Float Map (PFM), the usual interchange format for depth maps: a text
/// header ("Pf", width height, scale; a negative scale means little-endian) and rows
/// of float32 from the bottom row up.
public enum PFM {
    /// Encodes a single-channel row-major (top row first) float map.
    public static func encode(width: Int, height: Int, values: [Float]) -> [UInt8] {
        precondition(values.count == width * height, "expected \(width * height) values")
        var out = Array("Pf\n\(width) \(height)\n-1.0\n".utf8)
        out.reserveCapacity(out.count + values.count * 4)
        for y in stride(from: height - 1, through: 0, by: -1) {
            for x in 0..<width {
                withUnsafeBytes(of: values[y * width + x].bitPattern.littleEndian) { out.append(contentsOf: $0) }
            }
        }
        return out
    }

    /// Decodes a single-channel PFM into row-major (top row first) values.
    public static func decode(_ bytes: [UInt8]) -> (width: Int, height: Int, values: [Float])? {
        var fields: [String] = []
        var i = 0
        var current = ""
        while fields.count < 4 && i < bytes.count {
            let ch = bytes[i]
            if ch == 0x20 || ch == 0x0A || ch == 0x0D || ch == 0x09 {
                if !current.isEmpty { fields.append(current); current = "" }
            } else {
                current.append(Character(UnicodeScalar(ch)))
            }
            i += 1
        }
        guard fields.count == 4, fields[0] == "Pf", let w = Int(fields[1]), let h = Int(fields[2]),
              let scale = Double(fields[3]), w > 0, h > 0, bytes.count - i >= w * h * 4 else { return nil }
        let little = scale < 0
        var values = [Float](repeating: 0, count: w * h)
        for row in 0..<h {
            let y = h - 1 - row
            for x in 0..<w {
                let o = i + (row * w + x) * 4
                var bits = UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16 | UInt32(bytes[o + 3]) << 24
                if !little { bits = bits.byteSwapped }
                values[y * w + x] = Float(bitPattern: bits)
            }
        }
        return (w, h, values)
    }
}
