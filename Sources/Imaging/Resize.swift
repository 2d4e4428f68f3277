/// Resampling. Shrinking averages the exact area each output pixel covers (a box
/// filter with fractional edge weights), which does not alias the way sampling does;
/// enlarging interpolates linearly between pixel centres. RGBA is resampled with
/// premultiplied alpha so transparent pixels do not bleed their colour.
extension Image {
    public func resized(width newWidth: Int, height newHeight: Int) -> Image {
        precondition(newWidth > 0 && newHeight > 0, "target size must be positive")
        if newWidth == width && newHeight == height { return self }
        let ch = channels
        let xs = Resampler.weights(from: width, to: newWidth)
        let ys = Resampler.weights(from: height, to: newHeight)

        // Source as floats, premultiplied when there is alpha.
        var source = [Float](repeating: 0, count: width * height * ch)
        pixels.withUnsafeBufferPointer { src in
            source.withUnsafeMutableBufferPointer { dst in
                if ch == 4 {
                    for i in 0..<(width * height) {
                        let a = Float(src[i * 4 + 3]) / 255
                        for c in 0..<3 { dst[i * 4 + c] = Float(src[i * 4 + c]) * a }
                        dst[i * 4 + 3] = Float(src[i * 4 + 3])
                    }
                } else {
                    for i in 0..<src.count { dst[i] = Float(src[i]) }
                }
            }
        }
        // Horizontal pass: height × newWidth.
        var horizontal = [Float](repeating: 0, count: height * newWidth * ch)
        source.withUnsafeBufferPointer { src in
            horizontal.withUnsafeMutableBufferPointer { dst in
                for y in 0..<height {
                    let srow = y * width * ch, drow = y * newWidth * ch
                    for x in 0..<newWidth {
                        let tap = xs[x]
                        for c in 0..<ch {
                            var sum: Float = 0
                            for k in 0..<tap.weights.count {
                                sum += tap.weights[k] * src[srow + (tap.start + k) * ch + c]
                            }
                            dst[drow + x * ch + c] = sum
                        }
                    }
                }
            }
        }
        // Vertical pass into bytes.
        let count = newWidth * newHeight * ch
        let out = [UInt8](unsafeUninitializedCapacity: count) { dst, initialized in
            horizontal.withUnsafeBufferPointer { src in
                var acc = [Float](repeating: 0, count: newWidth * ch)
                for y in 0..<newHeight {
                    let tap = ys[y]
                    for i in 0..<acc.count { acc[i] = 0 }
                    for k in 0..<tap.weights.count {
                        let w = tap.weights[k], row = (tap.start + k) * newWidth * ch
                        for i in 0..<acc.count { acc[i] += w * src[row + i] }
                    }
                    let drow = y * newWidth * ch
                    if ch == 4 {
                        for x in 0..<newWidth {
                            let a = acc[x * 4 + 3]
                            let inv: Float = a > 0 ? 255 / a : 0
                            for c in 0..<3 { dst[drow + x * 4 + c] = Resampler.byte(acc[x * 4 + c] * inv) }
                            dst[drow + x * 4 + 3] = Resampler.byte(a)
                        }
                    } else {
                        for i in 0..<acc.count { dst[drow + i] = Resampler.byte(acc[i]) }
                    }
                }
            }
            initialized = count
        }
        return Image(width: newWidth, height: newHeight, layout: layout, pixels: out)
    }

    /// Shrinks (never enlarges) so that the longer side is at most `maxSide`, keeping
    /// the aspect ratio.
    public func fitted(maxSide: Int) -> Image {
        let longest = max(width, height)
        guard longest > maxSide else { return self }
        let scale = Double(maxSide) / Double(longest)
        return resized(width: max(1, Int((Double(width) * scale).rounded())),
                       height: max(1, Int((Double(height) * scale).rounded())))
    }
}

enum Resampler {
    struct Tap {
        var start: Int
        var weights: [Float]
    }

    static func byte(_ v: Float) -> UInt8 {
        UInt8(max(0, min(255, (v + 0.5).rounded(.down))))
    }

    /// Per output index: the first source index and the weights of the sources it reads.
    static func weights(from n: Int, to m: Int) -> [Tap] {
        let scale = Double(n) / Double(m)
        if m <= n {
            // Area average: output i covers source interval [i*scale, (i+1)*scale).
            return (0..<m).map { i in
                let lo = Double(i) * scale, hi = Double(i + 1) * scale
                let first = Int(lo.rounded(.down)), last = min(n - 1, Int((hi - 1e-9).rounded(.down)))
                var ws: [Float] = []
                for s in first...max(first, last) {
                    let overlap = min(hi, Double(s + 1)) - max(lo, Double(s))
                    ws.append(Float(max(0, overlap) / scale))
                }
                return Tap(start: first, weights: ws)
            }
        }
        // Linear interpolation between pixel centres, clamped at the borders.
        return (0..<m).map { i in
            let centre = (Double(i) + 0.5) * scale - 0.5
            let clamped = min(max(centre, 0), Double(n - 1))
            let first = min(Int(clamped.rounded(.down)), n - 1)
            let t = Float(clamped - Double(first))
            if first + 1 < n && t > 0 { return Tap(start: first, weights: [1 - t, t]) }
            return Tap(start: first, weights: [1])
        }
    }
}
