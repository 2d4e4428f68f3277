import Foundation
import SeededRandom
import Testing
@testable import Imaging

@Suite("Decoding every fixture against its reference")
struct DecodeFixtureTests {
    @Test("pixels within ±1 of the reference decode, orientation applied", arguments: Fixtures.decodeCases)
    func matchesReference(name: String) throws {
        let entry = try #require(Fixtures.manifest[name])
        let decoded = try ImageDecoder.decode(try Fixtures.bytes(name))
        let image = decoded.image
        #expect(image.width == entry.width)
        #expect(image.height == entry.height)
        #expect(image.channels == entry.channels)
        let reference = try Fixtures.bytes(entry.reference)
        try #require(reference.count == image.pixels.count)
        var worst = 0, worstIndex = 0
        for i in 0..<reference.count {
            let d = abs(Int(reference[i]) - Int(image.pixels[i]))
            if d > worst { worst = d; worstIndex = i }
        }
        #expect(worst <= 1, "max difference \(worst) at byte \(worstIndex) (pixel \(worstIndex / entry.channels))")
    }

    @Test("the detected format comes from the bytes", arguments: Fixtures.decodeCases)
    func formatFromBytes(name: String) throws {
        let expected: ImageFormat = name.hasPrefix("jpeg") ? .jpeg : .png
        #expect(ImageFormat.detect(try Fixtures.bytes(name)) == expected)
        #expect(try ImageDecoder.decode(try Fixtures.bytes(name)).format == expected)
    }

    @Test("EXIF orientation is read for each of the eight values", arguments: 1...8)
    func orientationTag(value: Int) throws {
        let info = try ImageDecoder.info(try Fixtures.bytes("jpeg_orientation_\(value).jpg"))
        #expect(info.orientation.rawValue == value)
        #expect(info.storedWidth == 37 && info.storedHeight == 23)
        #expect(info.width == (value >= 5 ? 23 : 37))
    }

    @Test("PNG eXIf orientation is applied")
    func pngOrientation() throws {
        let decoded = try ImageDecoder.decode(try Fixtures.bytes("png_exif_orientation_6.png"))
        #expect(decoded.orientation == .right)
        #expect(decoded.image.width == 23 && decoded.image.height == 37)
    }

    @Test("a file on disk decodes, and one over the byte limit is refused before reading")
    func fromFile() throws {
        let url = Fixtures.directory.appendingPathComponent("jpeg_baseline_420.jpg")
        #expect(try ImageDecoder.decode(contentsOf: url).image.width == 37)
        #expect(throws: ImageError.tooManyBytes(count: try Fixtures.bytes("jpeg_baseline_420.jpg").count, limit: 100)) {
            try ImageDecoder.decode(contentsOf: url, limits: DecodeLimits(maxBytes: 100))
        }
    }
}

@Suite("Refusing what is not a decodable image")
struct RefusalTests {
    @Test("every prefix of a JPEG is refused with a typed error", arguments: ["jpeg_baseline_420.jpg", "jpeg_progressive.jpg"])
    func truncatedJPEG(name: String) throws {
        try everyPrefixFails(try Fixtures.bytes(name))
    }

    @Test("every prefix of a PNG is refused with a typed error", arguments: ["png_rgb8.png", "png_palette4_interlaced.png"])
    func truncatedPNG(name: String) throws {
        try everyPrefixFails(try Fixtures.bytes(name))
    }

    func everyPrefixFails(_ full: [UInt8]) throws {
        var kinds: [String: Int] = [:]
        for length in 0..<full.count {
            do {
                let decoded = try ImageDecoder.decode(Array(full[0..<length]))
                Issue.record("prefix of \(length)/\(full.count) bytes decoded to \(decoded.image.width)x\(decoded.image.height)")
            } catch {
                kinds[error.code, default: 0] += 1
            }
        }
        // Short prefixes are "not an image" or "empty"; longer ones truncated or corrupt.
        #expect(Set(kinds.keys).isSubset(of: ["empty", "not_an_image", "truncated", "corrupt"]), "\(kinds)")
        #expect((kinds["truncated"] ?? 0) > full.count / 2, "most prefixes should read as truncated: \(kinds)")
        #expect(try ImageDecoder.decode(full).image.width > 0)
    }

    @Test("other formats are named", arguments: [
        ("other.gif", "GIF"), ("other.webp", "WebP"), ("other.bmp", "BMP"), ("other.tiff", "TIFF"),
    ])
    func otherFormats(name: String, format: String) throws {
        #expect(throws: ImageError.unsupportedFormat(format)) { try ImageDecoder.decode(try Fixtures.bytes(name)) }
    }

    @Test("HEIC and AVIF headers are named")
    func isoMediaBrands() {
        let heic: [UInt8] = [0, 0, 0, 0x18] + Array("ftypheic".utf8) + [0, 0, 0, 0] + Array("mif1heic".utf8)
        #expect(throws: ImageError.unsupportedFormat("HEIC")) { try ImageDecoder.decode(heic) }
        let avif: [UInt8] = [0, 0, 0, 0x18] + Array("ftypavif".utf8) + [0, 0, 0, 0] + Array("avifmif1".utf8)
        #expect(throws: ImageError.unsupportedFormat("AVIF")) { try ImageDecoder.decode(avif) }
    }

    @Test("an HTML error page is not an image, and says so")
    func html() {
        let page = Array("""
            \u{FEFF}  <!DOCTYPE html>
            <html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>
            """.utf8)
        #expect(throws: ImageError.notAnImage("an HTML page")) { try ImageDecoder.decode(page) }
    }

    @Test("text, JSON, PDF and empty input")
    func textLike() {
        #expect(throws: ImageError.empty) { try ImageDecoder.decode([UInt8]()) }
        #expect(throws: ImageError.notAnImage("JSON text")) { try ImageDecoder.decode(Array("{\"error\": 1}".utf8)) }
        #expect(throws: ImageError.notAnImage("a PDF document")) { try ImageDecoder.decode(Array("%PDF-1.7\n%\u{00e2}".utf8)) }
        do {
            _ = try ImageDecoder.decode(Array("hello, world\n".utf8))
            Issue.record("text decoded")
        } catch {
            #expect(error.code == "not_an_image")
            #expect(error.description.contains("hello, world"))
        }
    }

    @Test("random bytes never decode", arguments: 0..<64)
    func randomBytes(seed: Int) {
        var rng = SplitMix64(seed: UInt64(seed))
        var bytes = rng.bytes(Int.random(in: 1...4096, using: &rng))
        // Half the cases start with a real signature, so the codecs themselves see garbage.
        if seed % 4 == 1 { bytes = [0xFF, 0xD8, 0xFF, 0xE0] + bytes }
        if seed % 4 == 3 { bytes = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + bytes }
        do {
            let decoded = try ImageDecoder.decode(bytes)
            Issue.record("random bytes decoded to \(decoded.image.width)x\(decoded.image.height)")
        } catch {
            #expect(["not_an_image", "truncated", "corrupt", "unsupported_format"].contains(error.code), "\(error)")
        }
    }

    @Test("bytes flipped inside a JPEG and a PNG give errors or images, never crashes", arguments: 0..<48)
    func corruptedBytes(seed: Int) throws {
        var rng = SplitMix64(seed: UInt64(1000 + seed))
        var bytes = try Fixtures.bytes(seed % 2 == 0 ? "jpeg_progressive.jpg" : "png_rgba8_interlaced.png")
        for _ in 0..<8 {
            bytes[Int.random(in: 16..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
        }
        do {
            let decoded = try ImageDecoder.decode(bytes)
            #expect(decoded.image.width == 37)   // JPEG may survive bit flips, with damaged pixels
        } catch {
            #expect(["truncated", "corrupt"].contains(error.code), "\(error)")
        }
    }

    @Test("a PNG claiming 100000x100000 pixels is refused from its header", arguments: ["bomb_100000x100000.png", "bomb_60000x60000.jpg"])
    func decompressionBomb(name: String) throws {
        let bytes = try Fixtures.bytes(name)
        let side = name.contains("100000") ? 100_000 : 60_000
        let expected = ImageError.tooManyPixels(width: side, height: side, limit: 40_000_000)
        #expect(throws: expected) { try ImageDecoder.info(bytes) }
        #expect(throws: expected) { try ImageDecoder.decode(bytes) }
    }

    @Test("the pixel limit is configurable and counts stored pixels")
    func pixelLimit() throws {
        let bytes = try Fixtures.bytes("png_rgb8.png")
        #expect(throws: ImageError.tooManyPixels(width: 37, height: 23, limit: 800)) {
            try ImageDecoder.decode(bytes, limits: DecodeLimits(maxPixels: 800))
        }
        #expect(try ImageDecoder.decode(bytes, limits: DecodeLimits(maxPixels: 37 * 23)).image.height == 23)
    }

    @Test("the byte limit is checked first")
    func byteLimit() throws {
        let bytes = try Fixtures.bytes("png_rgb8.png")
        #expect(throws: ImageError.tooManyBytes(count: bytes.count, limit: 64)) {
            try ImageDecoder.decode(bytes, limits: DecodeLimits(maxBytes: 64))
        }
    }

    @Test("error codes and messages are stable and readable")
    func messages() {
        #expect(ImageError.tooManyPixels(width: 100_000, height: 100_000, limit: 40_000_000).description
            == "image is 100000x100000 pixels, more than the limit of 40000000 pixels")
        #expect(ImageError.unsupportedFormat("GIF").code == "unsupported_format")
        #expect(ImageError.truncated(format: "PNG", detail: "x").code == "truncated")
    }
}
