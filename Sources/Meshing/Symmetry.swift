import Foundation

/// A plausible back from mirror symmetry: most furniture has a vertical mirror plane, and in a
/// photo from the side of it the visible half shows what the hidden half looks like.
///
/// `find` tries vertical planes (every `angleStep` degrees, `offsetSteps` offsets across the object) and
/// scores each by how consistent the mirror image of the visible surface is with the photo: a
/// mirrored point must project inside the silhouette and must not come out in front of the
/// visible surface there (it would then have been seen). Planes nearly facing the camera are
/// not tried: mirroring the front onto the back through them only restates a guess at the
/// thickness; and a plane must map a good share of the visible surface onto itself (the part
/// seen on both of its sides), which a plane sending everything out of sight does not. `complete` then takes, wherever mirrored points land behind the visible surface,
/// the farthest of them as the back depth: the object reaches at least that far.
public enum MirrorSymmetry {
    /// A vertical plane n·p = offset in the camera frame (n horizontal, unit length).
    public struct Plane: Sendable, Equatable {
        public var normal: SIMD3<Float>
        public var offset: Float
        /// Share of mirrored visible points consistent with the photo (0…1).
        public var consistency: Float
        /// Share of mirrored points that land behind the visible surface: what the plane adds.
        public var coverage: Float
        /// Share of mirrored points that land on the visible surface: the part of the object
        /// seen on both sides of the plane, which a real mirror plane maps onto itself.
        public var overlap: Float

        /// The mirror image of `p`.
        public func reflect(_ p: SIMD3<Float>) -> SIMD3<Float> { p - 2 * (dot(normal, p) - offset) * normal }
    }

    public struct Options: Sendable, Equatable {
        /// Least share of mirrored points consistent with the photo for a plane to be used.
        public var minimumConsistency: Float = 0.9
        /// Least share of mirrored points behind the visible surface (else the plane adds nothing).
        public var minimumCoverage: Float = 0.15
        /// Least share of mirrored points on the visible surface: a plane that sends everything
        /// behind the object is not contradicted by the photo, but not supported by it either.
        public var minimumOverlap: Float = 0.2
        /// Planes whose normal is within this angle of the viewing direction are not tried (degrees).
        public var excludedNearView: Float = 35
        public var angleStep: Float = 4
        public var offsetSteps: Int = 12
        /// Tolerance, as a share of the object's size, for a mirrored point in front of the surface.
        public var depthTolerance: Float = 0.03
        public var maskThreshold: Float = 0.5
        /// At most this many visible points are scored (a regular subsample).
        public var maximumPoints: Int = 1500

        public init() {}
    }

    /// The visible surface's points (camera frame) at the mask's pixel centres, every `stride`.
    static func visiblePoints(_ maps: DepthMaps, camera: PinholeCamera, threshold: Float, stride: Int) -> [SIMD3<Float>] {
        var points: [SIMD3<Float>] = []
        for y in Swift.stride(from: 0, to: maps.height, by: stride) {
            for x in Swift.stride(from: 0, to: maps.width, by: stride) where maps.mask[y * maps.width + x] >= threshold {
                let d = maps.front[y * maps.width + x]
                guard d > 0, d.isFinite else { continue }
                points.append(camera.point(at: SIMD2(Float(x) + 0.5, Float(y) + 0.5), depth: d))
            }
        }
        return points
    }

    /// The best vertical mirror plane, or nil when none is consistent and informative enough.
    public static func find(_ maps: DepthMaps, camera: PinholeCamera, options: Options = Options()) -> Plane? {
        let count = maps.mask.reduce(0) { $0 + ($1 >= options.maskThreshold ? 1 : 0) }
        guard count >= 16 else { return nil }
        let stride = max(1, Int((Double(count) / Double(options.maximumPoints)).squareRoot().rounded(.up)))
        let points = visiblePoints(maps, camera: camera, threshold: options.maskThreshold, stride: stride)
        guard points.count >= 16 else { return nil }
        var lo = SIMD3<Float>(repeating: .infinity), hi = -lo, centre = SIMD3<Float>.zero
        for p in points { lo = pointwiseMin(lo, p); hi = pointwiseMax(hi, p); centre += p }
        centre /= Float(points.count)
        let size = (hi - lo).max()
        let tolerance = options.depthTolerance * size
        let view = normalize(SIMD3(centre.x, 0, centre.z))
        let excluded = cos(options.excludedNearView * .pi / 180)
        /// The plane's scores.
        func score(_ n: SIMD3<Float>, _ offset: Float) -> Plane {
            var plane = Plane(normal: n, offset: offset, consistency: 0, coverage: 0, overlap: 0)
            var consistent = 0, behind = 0, on = 0
            for p in points {
                guard let (pixel, depth) = camera.project(plane.reflect(p)) else { continue }
                let x = Int(pixel.x.rounded(.down)), y = Int(pixel.y.rounded(.down))
                guard insideMask(maps, x, y, options.maskThreshold) else { continue }
                let front = maps.front[min(max(y, 0), maps.height - 1) * maps.width + min(max(x, 0), maps.width - 1)]
                guard depth >= front - tolerance else { continue }
                consistent += 1
                if depth > front + tolerance { behind += 1 } else { on += 1 }
            }
            plane.consistency = Float(consistent) / Float(points.count)
            plane.coverage = Float(behind) / Float(points.count)
            plane.overlap = Float(on) / Float(points.count)
            return plane
        }
        func passes(_ p: Plane) -> Bool {
            p.consistency >= options.minimumConsistency && p.coverage >= options.minimumCoverage && p.overlap >= options.minimumOverlap
        }
        func value(_ p: Plane) -> Float { p.consistency + 0.25 * p.coverage }
        func normal(_ degrees: Float) -> SIMD3<Float> { SIMD3(cos(degrees * .pi / 180), 0, sin(degrees * .pi / 180)) }
        // Coarse: every angleStep degrees, offsetSteps offsets across the object's extent along n; the
        // grid can miss a plane's exact place, so the most promising few (looser thresholds) are refined.
        var coarse: [(plane: Plane, angle: Float, step: Float)] = []
        var angle: Float = 0
        while angle < 180 {
            let n = normal(angle)
            defer { angle += options.angleStep }
            if abs(dot(n, view)) > excluded { continue }
            var along = (lo: Float.infinity, hi: -Float.infinity)
            for p in points { let t = dot(n, p); along = (min(along.lo, t), max(along.hi, t)) }
            let step = (along.hi - along.lo) / Float(options.offsetSteps)
            for k in 0..<options.offsetSteps {
                let candidate = score(n, along.lo + step * (Float(k) + 0.5))
                if candidate.consistency >= options.minimumConsistency - 0.1, candidate.coverage >= options.minimumCoverage / 2,
                   candidate.overlap >= options.minimumOverlap / 2 {
                    coarse.append((candidate, angle, step))
                }
            }
        }
        // Fine: around the best few, a quarter of the steps either way.
        var best: Plane?
        for c in coarse.sorted(by: { value($0.plane) > value($1.plane) }).prefix(4) {
            for da in Swift.stride(from: -options.angleStep / 2, through: options.angleStep / 2, by: options.angleStep / 4) {
                let n = normal(c.angle + da)
                if abs(dot(n, view)) > excluded { continue }
                for k in -4...4 {
                    let candidate = score(n, c.plane.offset + Float(k) * c.step / 8)
                    if passes(candidate), best.map({ value(candidate) > value($0) }) ?? true { best = candidate }
                }
            }
        }
        return best
    }

    /// Inside the silhouette, or within a pixel of it (a mirrored point may land on its edge).
    static func insideMask(_ maps: DepthMaps, _ x: Int, _ y: Int, _ threshold: Float) -> Bool {
        for dy in -1...1 {
            for dx in -1...1 {
                let u = x + dx, v = y + dy
                if u >= 0, v >= 0, u < maps.width, v < maps.height, maps.mask[v * maps.width + u] >= threshold { return true }
            }
        }
        return false
    }

    /// `maps` with the back depth pushed out to the mirror image of the visible surface where
    /// that lands behind it (splatted with a 3×3 footprint so neighbouring pixels are covered).
    public static func complete(_ maps: DepthMaps, camera: PinholeCamera, plane: Plane, threshold: Float = 0.5) -> DepthMaps {
        let w = maps.width, h = maps.height
        var mirrored = [Float](repeating: 0, count: w * h)
        for p in visiblePoints(maps, camera: camera, threshold: threshold, stride: 1) {
            guard let (pixel, depth) = camera.project(plane.reflect(p)) else { continue }
            let x = Int(pixel.x.rounded(.down)), y = Int(pixel.y.rounded(.down))
            for dy in -1...1 {
                for dx in -1...1 {
                    let u = x + dx, v = y + dy
                    guard u >= 0, v >= 0, u < w, v < h else { continue }
                    mirrored[v * w + u] = max(mirrored[v * w + u], depth)
                }
            }
        }
        var out = maps
        for i in 0..<(w * h) where maps.mask[i] >= threshold && mirrored[i] > maps.front[i] {
            out.back[i] = max(maps.back[i], mirrored[i])
        }
        return out
    }
}
