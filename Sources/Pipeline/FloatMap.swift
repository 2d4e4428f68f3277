/// Small operations on single-channel float maps (row-major).
enum FloatMap {
    /// Bilinear resampling with pixel centres aligned (align_corners = false), clamped at the borders.
    static func resample(_ src: [Float], width w: Int, height h: Int, to nw: Int, _ nh: Int) -> [Float] {
        precondition(src.count == w * h, "map has \(src.count) values, expected \(w * h)")
        if w == nw && h == nh { return src }
        let sx = Float(w) / Float(nw), sy = Float(h) / Float(nh)
        var out = [Float](repeating: 0, count: nw * nh)
        src.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { o in
                for y in 0..<nh {
                    let fy = min(max((Float(y) + 0.5) * sy - 0.5, 0), Float(h - 1))
                    let y0 = Int(fy), y1 = min(y0 + 1, h - 1), ty = fy - Float(y0)
                    for x in 0..<nw {
                        let fx = min(max((Float(x) + 0.5) * sx - 0.5, 0), Float(w - 1))
                        let x0 = Int(fx), x1 = min(x0 + 1, w - 1), tx = fx - Float(x0)
                        let top = s[y0 * w + x0] * (1 - tx) + s[y0 * w + x1] * tx
                        let bottom = s[y1 * w + x0] * (1 - tx) + s[y1 * w + x1] * tx
                        o[y * nw + x] = top * (1 - ty) + bottom * ty
                    }
                }
            }
        }
        return out
    }

    /// Least-squares `s, t` minimising Σ (s·x + t − y)².
    static func fitScaleShift(_ x: [Float], to y: [Float]) -> (Float, Float) {
        var sx = 0.0, sy = 0.0, sxx = 0.0, sxy = 0.0
        let n = Double(x.count)
        for i in 0..<x.count {
            let a = Double(x[i]), b = Double(y[i])
            sx += a; sy += b; sxx += a * a; sxy += a * b
        }
        let det = n * sxx - sx * sx
        guard abs(det) > 1e-12 else { return (0, Float(sy / max(n, 1))) }
        let s = (n * sxy - sx * sy) / det
        return (Float(s), Float((sy - s * sx) / n))
    }
}
