/// A dense scalar grid, x fastest, then y, then z, sampled at
/// `origin + spacing * (x, y, z)`.
public struct Volume: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let depth: Int
    /// `width * height * depth` samples, x fastest.
    public var values: [Float]
    /// Position of sample (0, 0, 0).
    public var origin: SIMD3<Float>
    /// Distance between neighbouring samples along each axis.
    public var spacing: SIMD3<Float>

    /// Wraps samples; `values.count` must be `width * height * depth`.
    public init(width: Int, height: Int, depth: Int, values: [Float],
                origin: SIMD3<Float> = .zero, spacing: SIMD3<Float> = .one) {
        precondition(width >= 0 && height >= 0 && depth >= 0, "dimensions must not be negative")
        precondition(values.count == width * height * depth,
                     "\(values.count) samples for a \(width)x\(height)x\(depth) grid")
        self.width = width
        self.height = height
        self.depth = depth
        self.values = values
        self.origin = origin
        self.spacing = spacing
    }

    /// A grid filled by evaluating `f` at each integer index.
    public init(width: Int, height: Int, depth: Int, origin: SIMD3<Float> = .zero,
                spacing: SIMD3<Float> = .one, _ f: (Int, Int, Int) -> Float) {
        var values = [Float]()
        values.reserveCapacity(width * height * depth)
        for z in 0..<depth { for y in 0..<height { for x in 0..<width { values.append(f(x, y, z)) } } }
        self.init(width: width, height: height, depth: depth, values: values, origin: origin, spacing: spacing)
    }

    /// The sample at integer index `(x, y, z)`.
    public subscript(x: Int, y: Int, z: Int) -> Float {
        get { values[(z * height + y) * width + x] }
        set { values[(z * height + y) * width + x] = newValue }
    }

    /// The same samples surrounded by `margin` layers of `value` on every side; the origin
    /// moves so that the old samples keep their positions.
    public func padded(by margin: Int, with value: Float) -> Volume {
        let w = width + 2 * margin, h = height + 2 * margin, d = depth + 2 * margin
        var out = [Float](repeating: value, count: w * h * d)
        for z in 0..<depth {
            for y in 0..<height {
                let src = (z * height + y) * width
                let dst = ((z + margin) * h + y + margin) * w + margin
                for x in 0..<width { out[dst + x] = values[src + x] }
            }
        }
        return Volume(width: w, height: h, depth: d, values: out,
                      origin: origin - spacing * Float(margin), spacing: spacing)
    }
}
