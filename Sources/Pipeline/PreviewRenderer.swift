import Foundation
import Imaging
import Meshing

/// Draws a mesh to an image with a small z-buffered rasterizer: a perspective camera
/// at a three-quarter view, Lambert shading from a key light plus ambient, per-vertex
/// colours, and 2× supersampling. Enough to see at a glance what a model looks like,
/// with no GPU and no dependencies.
public struct PreviewRenderer: Sendable {
    /// Output size in pixels.
    public var width: Int
    public var height: Int
    /// Camera direction: degrees around +Y from the +Z axis (the photo side), and above the horizon.
    public var azimuthDegrees: Float
    public var elevationDegrees: Float
    /// Vertical field of view of the preview camera.
    public var fovDegrees: Float
    /// Background colour (RGB).
    public var background: SIMD3<UInt8>
    /// Colour used when the mesh has no vertex colours.
    public var defaultColor: SIMD3<Float>

    public init(width: Int = 512, height: Int = 512, azimuthDegrees: Float = 35, elevationDegrees: Float = 25,
                fovDegrees: Float = 35, background: SIMD3<UInt8> = SIMD3(236, 238, 242),
                defaultColor: SIMD3<Float> = SIMD3(0.75, 0.75, 0.78)) {
        precondition(width > 0 && height > 0, "preview size must be positive")
        self.width = width
        self.height = height
        self.azimuthDegrees = azimuthDegrees
        self.elevationDegrees = elevationDegrees
        self.fovDegrees = fovDegrees
        self.background = background
        self.defaultColor = defaultColor
    }

    /// Renders `mesh` (any frame; the view is fitted to its bounding sphere).
    public func render(_ mesh: Mesh) -> Image {
        let ss = 2
        let w = width * ss, h = height * ss
        var color = [Float](repeating: 0, count: w * h * 3)
        for i in 0..<(w * h) {
            color[i * 3] = Float(background.x); color[i * 3 + 1] = Float(background.y); color[i * 3 + 2] = Float(background.z)
        }
        var depth = [Float](repeating: .infinity, count: w * h)
        guard !mesh.positions.isEmpty, !mesh.triangles.isEmpty else { return finish(color, w, h, ss) }

        // Fit the camera to the bounding sphere.
        var lo = mesh.positions[0], hi = mesh.positions[0]
        for p in mesh.positions { lo = pointwiseMin(lo, p); hi = pointwiseMax(hi, p) }
        let centre = (lo + hi) / 2
        let radius = max(length(hi - lo) / 2, 1e-6)
        let az = azimuthDegrees * .pi / 180, el = elevationDegrees * .pi / 180
        let forward = -SIMD3<Float>(sin(az) * cos(el), sin(el), cos(az) * cos(el))   // eye looks along this
        let tanHalf = tan(fovDegrees * .pi / 360)
        let aspect = Float(w) / Float(h)
        let distance = radius / (tanHalf * min(1, aspect)) * 1.1
        let eye = centre - forward * distance
        let right = normalize(cross(forward, SIMD3<Float>(0, 1, 0)))
        let up = cross(right, forward)
        let focal = Float(h) / 2 / tanHalf
        let light = normalize(SIMD3<Float>(0.4, 0.8, 0.6) - forward * 0.3)

        // Project every vertex once.
        let n = mesh.positions.count
        var sx = [Float](repeating: 0, count: n), sy = sx, sz = sx
        for i in 0..<n {
            let d = mesh.positions[i] - eye
            let z = dot(d, forward)
            sz[i] = z
            sx[i] = Float(w) / 2 + focal * dot(d, right) / max(z, 1e-6)
            sy[i] = Float(h) / 2 - focal * dot(d, up) / max(z, 1e-6)
        }
        let colors = mesh.colors
        for t in mesh.triangles {
            let a = Int(t.x), b = Int(t.y), c = Int(t.z)
            guard sz[a] > 1e-4, sz[b] > 1e-4, sz[c] > 1e-4 else { continue }
            let pa = mesh.positions[a], pb = mesh.positions[b], pc = mesh.positions[c]
            var normal = cross(pb - pa, pc - pa)
            let len = length(normal)
            guard len > 0 else { continue }
            normal /= len
            // Two-sided lighting: open relief meshes show their back too.
            let facing = dot(normal, forward) < 0 ? normal : -normal
            let shade = 0.35 + 0.65 * max(0, dot(facing, light))
            let ca = colors?[a] ?? defaultColor, cb = colors?[b] ?? defaultColor, cc = colors?[c] ?? defaultColor

            let x0 = sx[a], y0 = sy[a], x1 = sx[b], y1 = sy[b], x2 = sx[c], y2 = sy[c]
            let area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
            guard abs(area) > 1e-12 else { continue }
            let minX = max(0, Int(min(x0, x1, x2).rounded(.down))), maxX = min(w - 1, Int(max(x0, x1, x2).rounded(.up)))
            let minY = max(0, Int(min(y0, y1, y2).rounded(.down))), maxY = min(h - 1, Int(max(y0, y1, y2).rounded(.up)))
            guard minX <= maxX, minY <= maxY else { continue }
            let inv = 1 / area
            for py in minY...maxY {
                let fy = Float(py) + 0.5
                for px in minX...maxX {
                    let fx = Float(px) + 0.5
                    let w0 = ((x1 - fx) * (y2 - fy) - (x2 - fx) * (y1 - fy)) * inv
                    let w1 = ((x2 - fx) * (y0 - fy) - (x0 - fx) * (y2 - fy)) * inv
                    let w2 = 1 - w0 - w1
                    if w0 < 0 || w1 < 0 || w2 < 0 { continue }
                    let z = w0 * sz[a] + w1 * sz[b] + w2 * sz[c]
                    let idx = py * w + px
                    if z >= depth[idx] { continue }
                    depth[idx] = z
                    let rgb = (ca * w0 + cb * w1 + cc * w2) * shade * 255
                    color[idx * 3] = rgb.x; color[idx * 3 + 1] = rgb.y; color[idx * 3 + 2] = rgb.z
                }
            }
        }
        return finish(color, w, h, ss)
    }

    private func finish(_ color: [Float], _ w: Int, _ h: Int, _ ss: Int) -> Image {
        let bytes = color.map { UInt8(max(0, min(255, $0.rounded()))) }
        return Image(width: w, height: h, layout: .rgb, pixels: bytes).resized(width: w / ss, height: h / ss)
    }
}
