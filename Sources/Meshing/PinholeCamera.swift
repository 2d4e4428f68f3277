import Foundation

/// A pinhole camera in the glTF frame: right-handed, +Y up, looking along −Z.
///
/// Pixel coordinates are continuous with (0, 0) at the top-left corner of the image and
/// y growing downwards, so the centre of pixel (i, j) is (i + 0.5, j + 0.5). Depth is the
/// distance along the viewing axis (−z of the camera-frame point), not along the ray.
public struct PinholeCamera: Sendable, Equatable {
    /// Image width in pixels.
    public var width: Int
    /// Image height in pixels.
    public var height: Int
    /// Vertical field of view in degrees.
    public var verticalFieldOfView: Float
    /// Principal point in pixel coordinates (the image centre by default).
    public var principalPoint: SIMD2<Float>

    /// A camera for a `width` × `height` image with the given vertical field of view
    /// (degrees); the principal point defaults to the image centre.
    public init(width: Int, height: Int, verticalFieldOfView: Float = 60, principalPoint: SIMD2<Float>? = nil) {
        precondition(width > 0 && height > 0, "camera image size must be positive")
        precondition(verticalFieldOfView > 0 && verticalFieldOfView < 180, "field of view must be in (0, 180) degrees")
        self.width = width
        self.height = height
        self.verticalFieldOfView = verticalFieldOfView
        self.principalPoint = principalPoint ?? SIMD2(Float(width) / 2, Float(height) / 2)
    }

    /// Focal length in pixels (square pixels).
    public var focalLength: Float {
        Float(height) / 2 / Float(tan(Double(verticalFieldOfView) * .pi / 360))
    }

    /// Horizontal field of view in degrees.
    public var horizontalFieldOfView: Float {
        Float(2 * atan(Double(width) / 2 / Double(focalLength)) * 180 / .pi)
    }

    /// The ray direction through a pixel position, scaled so that its depth is 1
    /// (z = −1).
    public func ray(through pixel: SIMD2<Float>) -> SIMD3<Float> {
        let f = focalLength
        return SIMD3((pixel.x - principalPoint.x) / f, -(pixel.y - principalPoint.y) / f, -1)
    }

    /// The camera-frame point seen at `pixel` at `depth` along the viewing axis.
    public func point(at pixel: SIMD2<Float>, depth: Float) -> SIMD3<Float> {
        ray(through: pixel) * depth
    }

    /// The pixel position and depth of a camera-frame point, or `nil` when the point is
    /// not in front of the camera.
    public func project(_ p: SIMD3<Float>) -> (pixel: SIMD2<Float>, depth: Float)? {
        let d = -p.z
        guard d > 0 else { return nil }
        let f = focalLength
        return (SIMD2(principalPoint.x + f * p.x / d, principalPoint.y - f * p.y / d), d)
    }

    /// The same camera for an image of another size with the same aspect (the photo
    /// behind a network-resolution depth map): field of view kept, principal point scaled.
    public func resized(width newWidth: Int, height newHeight: Int) -> PinholeCamera {
        PinholeCamera(width: newWidth, height: newHeight, verticalFieldOfView: verticalFieldOfView,
                      principalPoint: principalPoint * SIMD2(Float(newWidth) / Float(width), Float(newHeight) / Float(height)))
    }
}
