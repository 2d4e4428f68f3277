import SeededRandom
import Testing
@testable import Imaging

@Suite("Image operations")
struct ImageOperationTests {
    /// A 3x2 image whose pixel (x, y) has value 10*y + x in every channel.
    let small = ImageOperationTests.grid(width: 3, height: 2)

    /// Pixel (x, y) has value 10*y + x in every channel.
    static func grid(width: Int, height: Int) -> Image {
        var pixels: [UInt8] = []
        for i in 0..<(width * height) {
            let v = UInt8(10 * (i / width) + i % width)
            pixels += [v, v, v]
        }
        return Image(width: width, height: height, layout: .rgb, pixels: pixels)
    }

    func values(_ image: Image) -> [[Int]] {
        (0..<image.height).map { y in (0..<image.width).map { x in Int(image[x, y][0]) } }
    }

    @Test("orientations map pixels as EXIF defines them")
    func orientations() {
        #expect(values(small.applying(.up)) == [[0, 1, 2], [10, 11, 12]])
        #expect(values(small.applying(.upMirrored)) == [[2, 1, 0], [12, 11, 10]])
        #expect(values(small.applying(.down)) == [[12, 11, 10], [2, 1, 0]])
        #expect(values(small.applying(.downMirrored)) == [[10, 11, 12], [0, 1, 2]])
        #expect(values(small.applying(.leftMirrored)) == [[0, 10], [1, 11], [2, 12]])
        #expect(values(small.applying(.right)) == [[10, 0], [11, 1], [12, 2]])
        #expect(values(small.applying(.rightMirrored)) == [[12, 2], [11, 1], [10, 0]])
        #expect(values(small.applying(.left)) == [[2, 12], [1, 11], [0, 10]])
    }

    @Test("area averaging: each output pixel is the mean of the block it covers")
    func areaAverage() {
        // 4x2 -> 2x1: blocks {0,1,10,11} and {2,3,12,13}.
        let image = ImageOperationTests.grid(width: 4, height: 2)
        let out = image.resized(width: 2, height: 1)
        #expect(values(out) == [[6, 8]])   // 5.5 and 7.5, rounded half up
    }

    @Test("a fine checkerboard averages to grey instead of aliasing")
    func checkerboard() {
        let n = 64
        var pixels: [UInt8] = []
        for i in 0..<(n * n) {
            let v: UInt8 = ((i % n) + (i / n)) % 2 == 0 ? 0 : 255
            pixels += [v, v, v]
        }
        let out = Image(width: n, height: n, layout: .rgb, pixels: pixels).resized(width: 10, height: 7)
        #expect(out.pixels.allSatisfy { abs(Int($0) - 128) <= 14 })
    }

    @Test("non-integer ratios preserve a constant image and the mean")
    func constantAndMean() {
        let grey = Image(width: 97, height: 61, filledWith: [90, 140, 200])
        let out = grey.resized(width: 40, height: 17)
        #expect(out.pixels.enumerated().allSatisfy { i, v in v == [90, 140, 200][i % 3] })
        let up = grey.resized(width: 200, height: 130)
        #expect(up.pixels.enumerated().allSatisfy { i, v in v == [90, 140, 200][i % 3] })
        var rng = SplitMix64(seed: 5)
        let noise = Image(width: 90, height: 60, layout: .rgb, pixels: rng.bytes(90 * 60 * 3))
        let mean = { (im: Image) in Double(im.pixels.reduce(0) { $0 + Int($1) }) / Double(im.pixels.count) }
        #expect(abs(mean(noise) - mean(noise.resized(width: 30, height: 20))) < 0.6)
    }

    @Test("transparent pixels do not bleed their colour when resizing RGBA")
    func premultiplied() {
        // Left pixel: opaque red. Right pixel: fully transparent green.
        let image = Image(width: 2, height: 1, layout: .rgba, pixels: [255, 0, 0, 255, 0, 255, 0, 0])
        let out = image.resized(width: 1, height: 1)
        #expect(out.pixels == [255, 0, 0, 128])
    }

    @Test("fitted keeps the aspect ratio and never enlarges")
    func fitted() {
        let image = Image(width: 1000, height: 500, filledWith: [1, 2, 3])
        let out = image.fitted(maxSide: 256)
        #expect(out.width == 256 && out.height == 128)
        #expect(image.fitted(maxSide: 2000).width == 1000)
    }

    @Test("flattening composites alpha over the background")
    func flatten() {
        let image = Image(width: 2, height: 1, layout: .rgba, pixels: [200, 100, 0, 255, 200, 100, 0, 0])
        #expect(image.flattened(over: (0, 0, 0)).pixels == [200, 100, 0, 0, 0, 0])
        #expect(image.flattened().pixels == [200, 100, 0, 255, 255, 255])
        #expect(image.alphaChannel() == [255, 0])
    }

    @Test("the float view is planar and normalised")
    func planar() {
        let image = Image(width: 2, height: 1, layout: .rgb, pixels: [255, 0, 51, 0, 255, 102])
        for (a, b) in zip(image.planarFloats(), [1, 0, 0, 1, 0.2, 0.4] as [Float]) { #expect(abs(a - b) < 1e-6) }
        let normalised = image.planarFloats(mean: (0.5, 0.5, 0.5), std: (0.5, 0.5, 0.5))
        for (a, b) in zip(normalised, [1, -1, -1, 1, -0.6, -0.2] as [Float]) { #expect(abs(a - b) < 1e-6) }
    }
}

@Suite("PNG encoding")
struct PNGEncodeTests {
    @Test("RGB and RGBA round-trip exactly", arguments: [Image.Layout.rgb, .rgba])
    func roundTrip(layout: Image.Layout) throws {
        var rng = SplitMix64(seed: 42)
        let image = Image(width: 31, height: 17, layout: layout, pixels: rng.bytes(31 * 17 * layout.channels))
        let bytes = try PNGEncoder.encode(image)
        #expect(ImageFormat.detect(bytes) == .png)
        let decoded = try ImageDecoder.decode(bytes)
        #expect(decoded.image == image)
    }

    @Test("grayscale masks decode to equal RGB channels")
    func gray() throws {
        let mask: [UInt8] = (0..<(20 * 10)).map { UInt8($0 % 256) }
        let decoded = try ImageDecoder.decode(try PNGEncoder.encodeGray(width: 20, height: 10, pixels: mask)).image
        #expect(decoded.layout == .rgb)
        for i in 0..<mask.count { #expect(decoded.pixels[i * 3] == mask[i] && decoded.pixels[i * 3 + 2] == mask[i]) }
    }

    @Test("16-bit grayscale writes a 16-bit PNG")
    func gray16() throws {
        let depth: [UInt16] = (0..<(16 * 8)).map { UInt16($0 * 500) }
        let bytes = try PNGEncoder.encodeGray16(width: 16, height: 8, pixels: depth)
        #expect(bytes[24] == 16 && bytes[25] == 0)   // IHDR bit depth 16, colour type 0
        let info = try ImageDecoder.info(bytes)
        #expect(info.storedWidth == 16 && info.storedHeight == 8)
    }
}
