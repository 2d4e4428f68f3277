import Imaging

/// Where the object's silhouette came from.
public enum MaskSource: String, Sendable, Codable, Equatable {
    /// The depth network's mask, refined against the photo's edges.
    case network
    /// The photo's own alpha channel (a cut-out PNG: iPhone's "lift subject", rembg, an editor).
    case alpha
    /// A mask file the user gave (`mesh --mask`).
    case file
}

/// Silhouettes at more than the network's resolution: a cut-out's alpha or a user's mask taken
/// as given, or the network's coarse mask snapped to the photo's edges by a guided filter.
enum Silhouette {
    /// Share of transparent pixels (alpha < 128) from which an RGBA photo counts as a cut-out.
    static let cutOutFraction = 0.005

    /// The alpha channel as a 0…1 mask when `image` is a cut-out: RGBA with at least
    /// `cutOutFraction` of its pixels transparent. Nil for RGB and for trivial alpha.
    static func alphaMask(_ image: Image) -> [Float]? {
        guard image.layout == .rgba else { return nil }
        let alpha = image.alphaChannel()
        let transparent = alpha.reduce(0) { $0 + ($1 < 128 ? 1 : 0) }
        guard Double(transparent) >= cutOutFraction * Double(alpha.count) else { return nil }
        return alpha.map { Float($0) / 255 }
    }

    /// A mask file's values at the photo's size: its alpha when that is a cut-out, else its
    /// luminance (white = object). It must have the photo's upright size or the same aspect
    /// (within 1 %), and be resized to the photo then.
    static func fileMask(_ mask: Image, photoWidth: Int, photoHeight: Int) throws(PipelineError) -> [Float] {
        let photoAspect = Double(photoWidth) / Double(photoHeight), maskAspect = Double(mask.width) / Double(mask.height)
        guard abs(maskAspect / photoAspect - 1) <= 0.01 else {
            throw .badMask("the mask is \(mask.width)x\(mask.height) pixels, the photo \(photoWidth)x\(photoHeight): give a mask of the photo's size")
        }
        let sized = mask.width == photoWidth && mask.height == photoHeight ? mask : mask.resized(width: photoWidth, height: photoHeight)
        if let alpha = alphaMask(sized) { return alpha }
        let rgb = sized.flattened(over: (0, 0, 0))
        var out = [Float](repeating: 0, count: photoWidth * photoHeight)
        rgb.pixels.withUnsafeBufferPointer { p in
            for i in 0..<out.count {
                out[i] = (0.299 * Float(p[3 * i]) + 0.587 * Float(p[3 * i + 1]) + 0.114 * Float(p[3 * i + 2])) / 255
            }
        }
        guard out.contains(where: { $0 >= 0.5 }) else { throw .badMask("the mask has no white (object) pixels") }
        guard out.contains(where: { $0 < 0.5 }) else { throw .badMask("the mask is white everywhere: it marks no background") }
        return out
    }

    /// The network's mask (upsampled to `photo`'s size) snapped to the photo's edges by a colour
    /// guided filter (He, Sun and Tang, "Guided Image Filtering", 2010/2013): inside a window of
    /// `radius` pixels the output is an affine function of the photo's colour fitted to the coarse
    /// mask, so a boundary follows the photo's edge where one is near and stays put where the
    /// photo has none. `eps` (on 0…1 colours) sets how strong an edge must be to be followed.
    static func guided(_ coarse: [Float], photo: Image, radius: Int, eps: Float = 1e-3) -> [Float] {
        let w = photo.width, h = photo.height, n = w * h
        precondition(coarse.count == n && photo.layout == .rgb)
        var r = [Float](repeating: 0, count: n), g = r, b = r
        photo.pixels.withUnsafeBufferPointer { p in
            for i in 0..<n {
                r[i] = Float(p[3 * i]) / 255; g[i] = Float(p[3 * i + 1]) / 255; b[i] = Float(p[3 * i + 2]) / 255
            }
        }
        func mean(_ x: [Float]) -> [Float] { FloatMap.boxMean(x, width: w, height: h, radius: radius) }
        func product(_ x: [Float], _ y: [Float]) -> [Float] { zip(x, y).map { $0 * $1 } }
        let mr = mean(r), mg = mean(g), mb = mean(b), mp = mean(coarse)
        let mrp = mean(product(r, coarse)), mgp = mean(product(g, coarse)), mbp = mean(product(b, coarse))
        let vrr = mean(product(r, r)), vrg = mean(product(r, g)), vrb = mean(product(r, b))
        let vgg = mean(product(g, g)), vgb = mean(product(g, b)), vbb = mean(product(b, b))
        var ar = [Float](repeating: 0, count: n), ag = ar, ab = ar, bb = ar
        for i in 0..<n {
            // Σ + εU, and the covariance of colour and mask, in the window around i.
            let srr = vrr[i] - mr[i] * mr[i] + eps, srg = vrg[i] - mr[i] * mg[i], srb = vrb[i] - mr[i] * mb[i]
            let sgg = vgg[i] - mg[i] * mg[i] + eps, sgb = vgb[i] - mg[i] * mb[i], sbb = vbb[i] - mb[i] * mb[i] + eps
            let cr = mrp[i] - mr[i] * mp[i], cg = mgp[i] - mg[i] * mp[i], cb = mbp[i] - mb[i] * mp[i]
            // Inverse of the symmetric 3×3 matrix by cofactors.
            let i00 = sgg * sbb - sgb * sgb, i01 = srb * sgb - srg * sbb, i02 = srg * sgb - srb * sgg
            let i11 = srr * sbb - srb * srb, i12 = srb * srg - srr * sgb, i22 = srr * sgg - srg * srg
            let det = srr * i00 + srg * i01 + srb * i02
            guard det > 1e-12 else { bb[i] = mp[i]; continue }
            let x = (i00 * cr + i01 * cg + i02 * cb) / det
            let y = (i01 * cr + i11 * cg + i12 * cb) / det
            let z = (i02 * cr + i12 * cg + i22 * cb) / det
            ar[i] = x; ag[i] = y; ab[i] = z
            bb[i] = mp[i] - x * mr[i] - y * mg[i] - z * mb[i]
        }
        let mar = mean(ar), mag = mean(ag), mab = mean(ab), mbb = mean(bb)
        var out = [Float](repeating: 0, count: n)
        for i in 0..<n { out[i] = min(1, max(0, mar[i] * r[i] + mag[i] * g[i] + mab[i] * b[i] + mbb[i])) }
        return out
    }

    /// The voxels along the object's longest side that keep its thin parts. Thin parts are
    /// found on the ridge of the mask's distance transform (the middles of legs, stems, boards):
    /// ridge pixels at least 2 pixels wide (narrower ones are a ragged edge's bumps) but under
    /// `voxelsAcross` voxels of the `base` grid. When they add up to a part at least a quarter of
    /// the object's size long, the grid is made fine enough that the thinnest tenth of them is
    /// `voxelsAcross` voxels across; never above `limit`.
    static func volumeResolution(mask: [Float], width w: Int, height h: Int, threshold: Float, base: Int, limit: Int,
                                 voxelsAcross: Float = 2) -> Int {
        guard limit > base, w > 2, h > 2 else { return base }
        let inside = mask.map { $0 >= threshold }
        var x0 = w, x1 = -1, y0 = h, y1 = -1
        for y in 0..<h { for x in 0..<w where inside[y * w + x] { x0 = min(x0, x); x1 = max(x1, x); y0 = min(y0, y); y1 = max(y1, y) } }
        guard x1 >= x0 else { return base }
        let extent = Float(max(x1 - x0 + 1, y1 - y0 + 1))
        let thinLimit = voxelsAcross * extent / Float(base)
        let distance = FloatMap.chamferDistance(inside, width: w, height: h)
        // Ridge: a pixel no nearer the background than any of its 8 neighbours, away from the frame.
        var thin: [Float] = []
        for y in 1..<(h - 1) {
            for x in 1..<(w - 1) where inside[y * w + x] {
                let d = distance[y * w + x]
                let across = 2 * d - 1
                guard across >= 2, across < thinLimit else { continue }
                var ridge = true
                for (dx, dy) in [(-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (1, 1), (-1, 1), (1, -1)]
                where distance[(y + dy) * w + x + dx] > d + 1e-3 { ridge = false; break }
                if ridge { thin.append(across) }
            }
        }
        guard Float(thin.count) >= extent / 4 else { return base }
        thin.sort()
        let wanted = Int((voxelsAcross * extent / thin[thin.count / 10]).rounded(.up))
        return min(limit, max(base, wanted))
    }
}

extension FloatMap {
    /// Mean over the (2r+1)² window around each pixel, the window cut by the borders
    /// (summed-area table, so any radius costs the same).
    static func boxMean(_ x: [Float], width w: Int, height h: Int, radius r: Int) -> [Float] {
        var table = [Double](repeating: 0, count: (w + 1) * (h + 1))
        for y in 0..<h {
            var row = 0.0
            for i in 0..<w {
                row += Double(x[y * w + i])
                table[(y + 1) * (w + 1) + i + 1] = table[y * (w + 1) + i + 1] + row
            }
        }
        var out = [Float](repeating: 0, count: w * h)
        for y in 0..<h {
            let ya = max(0, y - r), yb = min(h, y + r + 1)
            for i in 0..<w {
                let xa = max(0, i - r), xb = min(w, i + r + 1)
                let s = table[yb * (w + 1) + xb] - table[ya * (w + 1) + xb] - table[yb * (w + 1) + xa] + table[ya * (w + 1) + xa]
                out[y * w + i] = Float(s / Double((yb - ya) * (xb - xa)))
            }
        }
        return out
    }

    /// Distance (3-4 chamfer, in pixels) from each inside pixel to the nearest outside pixel or
    /// the frame's edge; 0 outside.
    static func chamferDistance(_ inside: [Bool], width w: Int, height h: Int) -> [Float] {
        let big = Int32.max / 4
        var d = inside.map { $0 ? big : 0 }
        func at(_ x: Int, _ y: Int) -> Int32 { x < 0 || y < 0 || x >= w || y >= h ? 0 : d[y * w + x] }
        for y in 0..<h {
            for x in 0..<w where d[y * w + x] > 0 {
                d[y * w + x] = min(d[y * w + x], at(x - 1, y) + 3, at(x, y - 1) + 3, at(x - 1, y - 1) + 4, at(x + 1, y - 1) + 4)
            }
        }
        for y in stride(from: h - 1, through: 0, by: -1) {
            for x in stride(from: w - 1, through: 0, by: -1) where d[y * w + x] > 0 {
                d[y * w + x] = min(d[y * w + x], at(x + 1, y) + 3, at(x, y + 1) + 3, at(x + 1, y + 1) + 4, at(x - 1, y + 1) + 4)
            }
        }
        return d.map { Float($0) / 3 }
    }

    /// Area-averaging resize (each output pixel the mean of the input area it covers, with
    /// fractional edge weights); used to shrink masks without aliasing their thin parts away.
    static func areaResize(_ src: [Float], width w: Int, height h: Int, to nw: Int, _ nh: Int) -> [Float] {
        if w == nw && h == nh { return src }
        if nw > w || nh > h { return resample(src, width: w, height: h, to: nw, nh) }
        func weights(_ n: Int, _ m: Int) -> [[(Int, Float)]] {
            let scale = Double(n) / Double(m)
            return (0..<m).map { o in
                let a = Double(o) * scale, b = Double(o + 1) * scale
                var list: [(Int, Float)] = []
                var i = Int(a)
                while Double(i) < b && i < n {
                    let cover = min(b, Double(i + 1)) - max(a, Double(i))
                    if cover > 0 { list.append((i, Float(cover / scale))) }
                    i += 1
                }
                return list
            }
        }
        let xs = weights(w, nw), ys = weights(h, nh)
        var rows = [Float](repeating: 0, count: nw * h)
        for y in 0..<h {
            for x in 0..<nw { rows[y * nw + x] = xs[x].reduce(0) { $0 + $1.1 * src[y * w + $1.0] } }
        }
        var out = [Float](repeating: 0, count: nw * nh)
        for y in 0..<nh {
            for x in 0..<nw { out[y * nw + x] = ys[y].reduce(0) { $0 + $1.1 * rows[$1.0 * nw + x] } }
        }
        return out
    }
}
