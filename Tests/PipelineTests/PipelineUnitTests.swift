import Foundation
import Imaging
import Meshing
import Testing
@testable import Pipeline

@Suite("Pipeline building blocks")
struct PipelineUnitTests {
    @Test("photos under 32 pixels on a side or past 1:8 are bad input with their own codes",
          arguments: [(1, 1, "image_too_small"), (31, 200, "image_too_small"), (10000, 10, "image_too_small"),
                      (10000, 40, "bad_aspect_ratio"), (32, 257, "bad_aspect_ratio"), (32, 256, nil), (640, 480, nil)] as [(Int, Int, String?)])
    func photoRequirements(width: Int, height: Int, code: String?) {
        do {
            try PhotoRequirements.check(width: width, height: height)
            #expect(code == nil, "\(width)x\(height) passed")
        } catch {
            #expect(error.code == code && error.isBadInput, "\(width)x\(height): \(error)")
        }
    }

    @Test("bilinear resampling keeps constants and linear ramps")
    func resample() {
        let constant = [Float](repeating: 3.5, count: 12)
        #expect(FloatMap.resample(constant, width: 4, height: 3, to: 9, 7).allSatisfy { abs($0 - 3.5) < 1e-6 })
        // A ramp along x sampled at pixel centres stays a ramp (away from the clamped borders).
        let ramp = (0..<(8 * 2)).map { Float($0 % 8) }
        let up = FloatMap.resample(ramp, width: 8, height: 2, to: 16, 2)
        for x in 2..<14 {
            let expected = (Float(x) + 0.5) / 2 - 0.5
            #expect(abs(up[x] - expected) < 1e-5, "x = \(x)")
        }
        #expect(FloatMap.resample(ramp, width: 8, height: 2, to: 8, 2) == ramp)
    }

    @Test("least-squares scale and shift are recovered exactly")
    func scaleShift() {
        let x: [Float] = (0..<50).map { Float($0) * 0.37 + 1 }
        let y = x.map { 2.5 * $0 - 4 }
        let (s, t) = FloatMap.fitScaleShift(x, to: y)
        #expect(abs(s - 2.5) < 1e-4 && abs(t + 4) < 1e-3)
    }

    @Test("auto mode: an object in the frame is an object, a filled frame or nothing is a relief")
    func autoMode() {
        let rule = AutoModeRule()
        let w = 40, h = 30
        var blob = [Float](repeating: 0, count: w * h)
        for y in 8..<25 { for x in 10..<30 { blob[y * w + x] = 0.9 } }
        #expect(rule.choose(mask: blob, width: w, height: h) == .object)
        #expect(rule.choose(mask: [Float](repeating: 0, count: w * h), width: w, height: h) == .relief)
        #expect(rule.choose(mask: [Float](repeating: 1, count: w * h), width: w, height: h) == .relief)
        // A thin frame touching all four borders (a room's walls), only 20% of the pixels.
        var frame = [Float](repeating: 0, count: w * h)
        for y in 0..<h { for x in 0..<w where x < 2 || y < 2 || x >= w - 2 || y >= h - 2 { frame[y * w + x] = 1 } }
        #expect(rule.choose(mask: frame, width: w, height: h) == .relief)
        // A speck is not an object.
        var speck = [Float](repeating: 0, count: w * h)
        speck[15 * w + 20] = 1
        #expect(rule.choose(mask: speck, width: w, height: h) == .relief)
    }

    @Test("map size keeps the photo's aspect at the network's longer side")
    func mapSize() {
        #expect(ImageTo3D.mapSize(photoWidth: 1024, photoHeight: 768, networkWidth: 256, networkHeight: 192) == (256, 192))
        #expect(ImageTo3D.mapSize(photoWidth: 1000, photoHeight: 700, networkWidth: 256, networkHeight: 192) == (256, 179))
        #expect(ImageTo3D.mapSize(photoWidth: 600, photoHeight: 1000, networkWidth: 160, networkHeight: 256) == (154, 256))
    }

    @Test("PFM round-trips and stores rows bottom-up, little-endian")
    func pfm() throws {
        let values: [Float] = [1, 2, 3, 4, 5, 6]
        let bytes = PFM.encode(width: 3, height: 2, values: values)
        let header = Array("Pf\n3 2\n-1.0\n".utf8)
        #expect(Array(bytes.prefix(header.count)) == header)
        // The first stored value is the bottom-left one: 4.0 = 0x40800000.
        #expect(Array(bytes[header.count..<(header.count + 4)]) == [0x00, 0x00, 0x80, 0x40])
        let decoded = try #require(PFM.decode(bytes))
        #expect(decoded.width == 3 && decoded.height == 2 && decoded.values == values)
    }

    @Test("the preview draws the model over the background, nearer faces on top")
    func preview() {
        // Two axis-aligned quads facing +Z: a red one in front of a larger green one.
        func quad(_ z: Float, _ r: Float, _ c: SIMD3<Float>) -> Mesh {
            Mesh(positions: [SIMD3(-r, -r, z), SIMD3(r, -r, z), SIMD3(r, r, z), SIMD3(-r, r, z)],
                 colors: [SIMD3<Float>](repeating: c, count: 4), triangles: [SIMD3(0, 1, 2), SIMD3(0, 2, 3)])
        }
        var mesh = quad(0, 1, SIMD3(0, 1, 0))
        mesh.append(quad(0.5, 0.3, SIMD3(1, 0, 0)))
        let image = PreviewRenderer(width: 64, height: 64, azimuthDegrees: 0, elevationDegrees: 0).render(mesh)
        #expect(image.width == 64 && image.height == 64)
        #expect(image[0, 0] == [236, 238, 242])        // background in the corner
        let centre = image[32, 32]
        #expect(centre[0] > 150 && centre[1] < 60)       // the red quad is in front
        let side = image[14, 32]
        #expect(side[1] > 150 && side[0] < 60)           // the green quad around it
    }

    @Test("invalid options are refused with a message")
    func invalidOptions() {
        var options = PipelineOptions()
        options.volumeResolution = 4
        #expect(throws: PipelineError.self) { try ImageTo3D.validate(options) }
        options = PipelineOptions()
        options.fovDegrees = 180
        #expect(throws: PipelineError.self) { try ImageTo3D.validate(options) }
        options = PipelineOptions()
        options.resolution = 8
        #expect(throws: PipelineError.self) { try ImageTo3D.validate(options) }
        #expect(throws: Never.self) { try ImageTo3D.validate(PipelineOptions()) }
    }
}

@Suite("Mask cleanup before object meshing")
struct MaskCleanupTests {
    @Test("specks go, holes and narrow cracks close, soft edges stay")
    func cleanup() {
        let w = 30, h = 20
        var mask = [Float](repeating: 0, count: w * h)
        for y in 4..<16 { for x in 5..<25 { mask[y * w + x] = 0.9 } }
        mask[10 * w + 12] = 0.1                                   // a hole
        for y in 4..<12 { mask[y * w + 18] = 0 }                  // a one-pixel crack from the top edge
        mask[1 * w + 1] = 0.95                                     // a speck
        for x in 5..<25 { mask[4 * w + x] = 0.6 }                 // a soft top edge
        let out = MaskCleanup.clean(mask, width: w, height: h)
        #expect(out[1 * w + 1] == 0)
        #expect(out[10 * w + 12] == 1)
        #expect(out[8 * w + 18] == 1)
        #expect(out[4 * w + 10] == 0.6)
        #expect(out[0] == 0 && out[19 * w + 29] == 0)
    }

    @Test("a smaller certain object wins over a larger doubtful region")
    func confidentComponent() {
        let w = 40, h = 20
        var mask = [Float](repeating: 0, count: w * h)
        for y in 2..<8 { for x in 2..<10 { mask[y * w + x] = 0.98 } }      // 48 px, certain
        for y in 5..<19 { for x in 18..<38 { mask[y * w + x] = 0.6 } }     // 280 px, doubtful
        let out = MaskCleanup.clean(mask, width: w, height: h)
        #expect(out[4 * w + 5] == 0.98)
        #expect(out[10 * w + 25] == 0)
    }

    @Test("a region cut by the frame counts half: a whole object wins over a larger one at the edge")
    func frameCut() {
        let w = 40, h = 20
        var mask = [Float](repeating: 0, count: w * h)
        for y in 6..<14 { for x in 6..<14 { mask[y * w + x] = 0.95 } }     // 64 px, whole
        for y in 0..<12 { for x in 30..<40 { mask[y * w + x] = 0.95 } }    // 120 px, cut by two sides
        var out = MaskCleanup.clean(mask, width: w, height: h)
        #expect(out[10 * w + 10] == 0.95)
        #expect(out[5 * w + 35] == 0)
        // More than twice as large, the cut region wins: the frame halves, it does not veto.
        for y in 0..<20 { for x in 24..<40 { mask[y * w + x] = 0.95 } }    // 320 px
        out = MaskCleanup.clean(mask, width: w, height: h)
        #expect(out[10 * w + 10] == 0)
        #expect(out[5 * w + 35] == 0.95)
    }
}
