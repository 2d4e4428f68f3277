/// What the depth network predicts for one photo, at its own resolution.
///
/// Row-major maps of `width` × `height`: `front` is the depth of the visible surface,
/// `back` the depth of the far side of the object, `mask` the foreground probability
/// (0...1). Depth is the distance along the camera's viewing axis, > 0; inside the
/// object `back >= front`.
public struct DepthMaps: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public var front: [Float]
    public var back: [Float]
    public var mask: [Float]

    /// Wraps the three maps; each must hold `width * height` values.
    public init(width: Int, height: Int, front: [Float], back: [Float], mask: [Float]) {
        precondition(width > 0 && height > 0, "depth map size must be positive")
        precondition(front.count == width * height && back.count == width * height && mask.count == width * height,
                     "every map must hold width × height values")
        self.width = width
        self.height = height
        self.front = front
        self.back = back
        self.mask = mask
    }

    /// Front depth and thickness (back = front + thickness, thickness ≥ 0).
    public init(width: Int, height: Int, front: [Float], thickness: [Float], mask: [Float]) {
        precondition(thickness.count == front.count, "every map must hold width × height values")
        self.init(width: width, height: height, front: front,
                  back: zip(front, thickness).map { $0 + max($1, 0) }, mask: mask)
    }

    /// Front depth only (relief mode): back = front, everything foreground unless a mask
    /// is given.
    public init(width: Int, height: Int, depth: [Float], mask: [Float]? = nil) {
        self.init(width: width, height: height, front: depth, back: depth,
                  mask: mask ?? [Float](repeating: 1, count: width * height))
    }
}
