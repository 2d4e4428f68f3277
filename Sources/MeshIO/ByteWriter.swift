/// A growable byte buffer for the text and binary encoders.
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func text(_ s: String) { bytes.append(contentsOf: s.utf8) }
    mutating func float(_ v: Float) {
        if v == v.rounded(), abs(v) < 1e7 { text(String(Int(v))) } else { text(v.description) }
    }
    mutating func le<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }
    mutating func le(_ v: Float) { le(v.bitPattern) }
    mutating func pad(to alignment: Int, with byte: UInt8) {
        while bytes.count % alignment != 0 { bytes.append(byte) }
    }
}
