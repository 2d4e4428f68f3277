import DepthNet
import Foundation
import Imaging
import Testing
import WorkerTestSupport
@testable import Pipeline

@Suite("Calibrated thickness (thickness_gain in mrdepth.json)")
struct ThicknessGainTests {
    /// The committed weights in a scratch folder, their config changed by `edit`.
    func weights(_ edit: (inout [String: Any]) -> Void) throws -> URL {
        let dir = try Checkout.scratch()
        let committed = Checkout.weights
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: committed.appendingPathComponent("mrdepth.json"))) as! [String: Any]
        edit(&config)
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("mrdepth.json"))
        try FileManager.default.copyItem(at: committed.appendingPathComponent("mrdepth.safetensors"),
                                         to: dir.appendingPathComponent("mrdepth.safetensors"))
        return dir
    }

    @Test("the network's thickness is multiplied by the gain; the front and the mask are untouched")
    func gainScalesThickness() throws {
        let photo = try ImageDecoder.decode(contentsOf: Checkout.samples.appendingPathComponent("lamp_and_chair.jpg")).image
        let plainDir = try weights { $0.removeValue(forKey: "thickness_gain") }
        let gainDir = try weights { $0["thickness_gain"] = 2.5 }
        defer { for d in [plainDir, gainDir] { try? FileManager.default.removeItem(at: d) } }
        let plain = try ImageTo3D(weights: plainDir).estimateDepth(photo, options: PipelineOptions()).maps
        let gained = try ImageTo3D(weights: gainDir).estimateDepth(photo, options: PipelineOptions()).maps
        #expect(plain.front == gained.front && plain.mask == gained.mask)
        var compared = 0
        for i in plain.front.indices where plain.back[i] - plain.front[i] > 1e-3 * plain.front[i] {
            let ratio = (gained.back[i] - gained.front[i]) / (plain.back[i] - plain.front[i])
            #expect(abs(ratio - 2.5) < 1e-3, "pixel \(i): thickness ratio \(ratio)")
            compared += 1
            if compared > 2_000 { break }
        }
        #expect(compared > 100)
    }

    @Test("a gain that is not positive is a malformed config, said at load time")
    func badGain() throws {
        for bad in [0.0, -1.0, 1e9] {
            let dir = try weights { $0["thickness_gain"] = bad }
            defer { try? FileManager.default.removeItem(at: dir) }
            do {
                _ = try ImageTo3D(weights: dir)
                Issue.record("thickness_gain \(bad) was accepted")
            } catch {
                #expect("\(error)".contains("thickness_gain"), "\(error)")
            }
        }
    }
}
