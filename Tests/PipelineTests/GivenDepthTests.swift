import Foundation
import Imaging
import Meshing
import Testing
import WorkerTestSupport
@testable import Pipeline

@Suite("Given depth maps (mesh --depth, --back-depth)")
struct GivenDepthTests {
    @Test("Unusable maps are bad input, with a reason")
    func validation() throws {
        #expect(throws: PipelineError.self) { try GivenDepth(width: 2, height: 2, front: [1, 1, 1]) }
        #expect(throws: PipelineError.self) { try GivenDepth(width: 2, height: 1, front: [1, 0]) }
        #expect(throws: PipelineError.self) { try GivenDepth(width: 2, height: 1, front: [1, .nan]) }
        #expect(throws: PipelineError.self) { try GivenDepth(width: 2, height: 1, front: [1, 1], back: [1]) }
        #expect(throws: PipelineError.self) { try GivenDepth(frontPFM: Array("P5\n2 2\n255\n".utf8)) }
        do {
            _ = try GivenDepth(frontPFM: Array("not a pfm".utf8), names: ("d.pfm", ""))
            Issue.record("accepted a file that is not a PFM")
        } catch {
            #expect(error.isBadInput && error.code == "bad_depth" && "\(error)".contains("d.pfm"), "\(error)")
        }
        // A back nearer than the front is raised to it; a PFM round trip keeps the values.
        let given = try GivenDepth(frontPFM: PFM.encode(width: 2, height: 1, values: [2, 3]),
                                   backPFM: PFM.encode(width: 2, height: 1, values: [2.5, 1]))
        #expect(given.front == [2, 3] && given.back == [2.5, 3])
    }

    /// A 96×64 photo of a grey card on a darker background; front depth 2 m everywhere, on the card a
    /// back `thickness` metres behind it.
    func card(thickness: Float) throws -> (photo: Image, mask: Image, depth: GivenDepth) {
        let (w, h) = (96, 64)
        var photo = Image(width: w, height: h, filledWith: [60, 60, 70])
        var mask = Image(width: w, height: h, filledWith: [0, 0, 0])
        var back = [Float](repeating: 2, count: w * h)
        for y in 16..<48 {
            for x in 32..<64 {
                photo.pixels.replaceSubrange((y * w + x) * 3..<(y * w + x) * 3 + 3, with: [180, 170, 160])
                mask.pixels.replaceSubrange((y * w + x) * 3..<(y * w + x) * 3 + 3, with: [255, 255, 255])
                back[y * w + x] = 2 + thickness
            }
        }
        return (photo, mask, try GivenDepth(width: w, height: h, front: [Float](repeating: 2, count: w * h), back: back))
    }

    @Test("The object is carved from the given front and back: its depth/height ratio is theirs")
    func carvedFromGivenMaps() async throws {
        let fov: Float = 50
        // The card's height at 2 m: 32 of 64 rows of a 50° field of view.
        let cardHeight = 2 * 2 * tan(fov / 2 * .pi / 180) * 32 / 64
        for thickness: Float in [0.2, 0.6] {
            let (photo, mask, depth) = try card(thickness: thickness)
            let result = try await offCooperativePool {
                let dir = try Checkout.scratch()
                defer { try? FileManager.default.removeItem(at: dir) }
                var options = PipelineOptions()
                options.mode = .object
                options.fovDegrees = fov
                options.symmetry = false
                options.volumeResolution = 64          // small and quick: the ratio does not need more
                options.maxVolumeResolution = 64
                return try Engine.shared.run(imageBytes: try PNGEncoder.encode(photo), output: dir.appendingPathComponent("m"),
                                             options: options, mask: mask, depth: depth)
            }
            #expect(result.summary.depthModel == "given")
            let bounds = try #require(result.mesh.bounds)
            // Carved along the camera rays, the card's back (at 2 + thickness m) is the taller end.
            let ratio = bounds.size.z / bounds.size.y, expected = thickness / (cardHeight * (2 + thickness) / 2)
            #expect(abs(ratio / expected - 1) < 0.08, "thickness \(thickness): depth/height \(ratio), expected \(expected)")
        }
    }
}
