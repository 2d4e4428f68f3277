import Foundation
import Imaging
import Testing
import WorkerTestSupport
@testable import Pipeline

@Suite("--mode auto: room views are reliefs, object photos objects")
struct AutoModeTests {
    /// A 40×30 mask with a centred blob covering `fraction` of the picture.
    func blob(_ fraction: Double) -> [Float] {
        let (w, h) = (40, 30)
        let side = Int((fraction * Double(w * h)).squareRoot())
        return (0..<(w * h)).map { i in
            let (x, y) = (i % w - (w - side) / 2, i / w - (h - side) / 2)
            return x >= 0 && x < side && y >= 0 && y < side ? 1 : 0
        }
    }

    @Test("The scene head's probability overrides a good mask; without it the mask rule decides")
    func rule() {
        let rule = AutoModeRule()
        let good = blob(0.3), tiny = blob(0.005)
        #expect(rule.choose(mask: good, width: 40, height: 30) == .object)
        #expect(rule.choose(mask: good, width: 40, height: 30, roomProbability: 0.2) == .object)
        #expect(rule.choose(mask: good, width: 40, height: 30, roomProbability: 0.5) == .relief)
        #expect(rule.choose(mask: good, width: 40, height: 30, roomProbability: 0.93) == .relief)
        // No object to model: relief whatever the head says.
        #expect(rule.choose(mask: tiny, width: 40, height: 30, roomProbability: 0.1) == .relief)
        #expect(rule.choose(mask: [Float](repeating: 1, count: 1200), width: 40, height: 30, roomProbability: 0.1) == .relief)
    }

    @Test("The shipped weights have a scene head: the room sample is a room, the object samples are not",
          arguments: [("room.jpg", true), ("cube.jpg", false), ("dresser.jpg", false), ("lamp_and_chair.jpg", false)])
    func samples(_ name: String, _ isRoom: Bool) async throws {
        let url = Checkout.samples.appendingPathComponent(name)
        let estimate = try await offCooperativePool {
            let photo = try ImageDecoder.decode(contentsOf: url).image
            return try Engine.shared.estimateDepth(photo, options: PipelineOptions())
        }
        let probability = try #require(estimate.roomProbability, "Weights/mrdepth.json has no scene_head")
        #expect((probability >= 0.5) == isRoom, "\(name): P(room) \(probability)")
        let m = estimate.maps
        let mode = AutoModeRule().choose(mask: m.mask, width: m.width, height: m.height, roomProbability: probability)
        #expect(mode == (isRoom ? .relief : .object), "\(name): \(mode)")
    }
}
