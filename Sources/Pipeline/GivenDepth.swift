import Foundation
import Meshing

/// Depth maps that come with a photo instead of the network's: a phone's depth sensor, another depth
/// model, or ground truth when a mesher is evaluated (`mesh --depth FILE.pfm [--back-depth FILE.pfm]`).
///
/// Camera z-depth, larger = farther, row-major from the top row, any resolution with the photo's
/// aspect (the PFM `mesh --depth-out` writes reads back as it is). Units are free: the model has the
/// default height unless `--height` gives one. Without a back map the network's thickness ratio
/// (back / front) is kept, as for Depth Anything.
public struct GivenDepth: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var front: [Float]
    public var back: [Float]?

    /// Checks the values: `front` (and `back`) hold `width × height` finite values, `front` is positive
    /// everywhere, `back` is not nearer than `front` (where it is, it is raised to `front`).
    /// - Throws: ``PipelineError/badDepth(_:)``.
    public init(width: Int, height: Int, front: [Float], back: [Float]? = nil) throws(PipelineError) {
        guard width > 0, height > 0, front.count == width * height else {
            throw .badDepth("\(front.count) values for a \(width)x\(height) map")
        }
        guard front.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw .badDepth("the front depth must be finite and positive everywhere (larger = farther)")
        }
        self.width = width
        self.height = height
        self.front = front
        if let back {
            guard back.count == front.count else {
                throw .badDepth("the back depth has \(back.count) values, the front \(front.count): give maps of one size")
            }
            guard back.allSatisfy(\.isFinite) else { throw .badDepth("the back depth has values that are not finite") }
            self.back = zip(back, front).map { max($0, $1) }
        }
    }

    /// Reads PFM files (`back` optional).
    /// - Throws: ``PipelineError/badDepth(_:)`` naming the file that is not a single-channel PFM.
    public init(frontPFM: [UInt8], backPFM: [UInt8]? = nil, names: (front: String, back: String) = ("front", "back")) throws(PipelineError) {
        guard let f = PFM.decode(frontPFM) else { throw .badDepth("\(names.front) is not a single-channel PFM (\"Pf\") file") }
        var back: [Float]?
        if let backPFM {
            guard let b = PFM.decode(backPFM) else { throw .badDepth("\(names.back) is not a single-channel PFM (\"Pf\") file") }
            guard b.width == f.width, b.height == f.height else {
                throw .badDepth("\(names.back) is \(b.width)x\(b.height), \(names.front) \(f.width)x\(f.height): give maps of one size")
            }
            back = b.values
        }
        try self.init(width: f.width, height: f.height, front: f.values, back: back)
    }

    /// Replaces the maps' front (and back) depth by these, resampled to the maps' size.
    /// - Throws: ``PipelineError/badDepth(_:)`` when the aspect differs from the photo's by more than 2 %.
    func apply(to maps: inout DepthMaps, photoWidth: Int, photoHeight: Int) throws(PipelineError) {
        let given = Double(width) / Double(height), photo = Double(photoWidth) / Double(photoHeight)
        guard abs(given / photo - 1) <= 0.02 else {
            throw .badDepth("the depth map is \(width)x\(height), the photo \(photoWidth)x\(photoHeight): give a map with the photo's aspect")
        }
        let front = FloatMap.resample(self.front, width: width, height: height, to: maps.width, maps.height)
        if let back {
            // The thickness is resampled, not the back: off the object it is 0, so a part a pixel or two
            // wide blends with nothing, where its back would blend with the far background's depth.
            let thickness = FloatMap.resample(zip(back, self.front).map { $0 - $1 }, width: width, height: height,
                                              to: maps.width, maps.height)
            maps.back = zip(front, thickness).map { $0 + max($1, 0) }
        } else {
            // The network's thickness ratio on the given front.
            maps.back = (0..<front.count).map { i in front[i] * maps.back[i] / max(maps.front[i], 1e-6) }
        }
        maps.front = front
    }
}
