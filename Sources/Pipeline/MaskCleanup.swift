/// Cleans the network's foreground mask before object meshing: a morphological closing
/// (fills cracks and bays narrower than about `2 × radius` pixels), the largest 4-connected
/// component only, and its holes filled. Pixels the cleanup adds become 1, pixels it drops
/// become 0, and the rest keep their soft values so the silhouette stays sub-pixel.
///
/// Without it, a speckled or cracked mask carves tunnels through the volume: the mesh is
/// still closed, but full of see-through holes (high genus).
enum MaskCleanup {
    static func clean(_ mask: [Float], width w: Int, height h: Int, threshold: Float = 0.5, radius: Int = 2,
                      fillHoles fill: Bool = true) -> [Float] {
        precondition(mask.count == w * h)
        var binary = mask.map { $0 >= threshold }
        if radius > 0 {
            binary = erode(dilate(binary, w, h, radius), w, h, radius)
        }
        binary = mostConfidentComponent(binary, mask, w, h, threshold: threshold)
        if fill { binary = fillHoles(binary, w, h) }
        var out = mask
        for i in 0..<out.count {
            let was = mask[i] >= threshold
            if binary[i] && !was { out[i] = 1 }
            if !binary[i] && was { out[i] = 0 }
        }
        return out
    }

    /// Square structuring element, separable: a row pass then a column pass.
    static func dilate(_ m: [Bool], _ w: Int, _ h: Int, _ r: Int) -> [Bool] { morph(m, w, h, r, value: true) }
    static func erode(_ m: [Bool], _ w: Int, _ h: Int, _ r: Int) -> [Bool] { morph(m, w, h, r, value: false) }

    /// Sets a pixel to `value` when any pixel within `r` (Chebyshev distance) has it.
    /// Outside the image counts as background for dilation and as foreground for erosion,
    /// so a closing does not eat into objects cut by the frame.
    private static func morph(_ m: [Bool], _ w: Int, _ h: Int, _ r: Int, value: Bool) -> [Bool] {
        var rows = m
        for y in 0..<h {
            for x in 0..<w where m[y * w + x] != value {
                for dx in max(0, x - r)...min(w - 1, x + r) where m[y * w + dx] == value {
                    rows[y * w + x] = value
                    break
                }
            }
        }
        var out = rows
        for y in 0..<h {
            for x in 0..<w where rows[y * w + x] != value {
                for dy in max(0, y - r)...min(h - 1, y + r) where rows[dy * w + x] == value {
                    out[y * w + x] = value
                    break
                }
            }
        }
        return out
    }

    /// Labels 4-connected foreground regions and keeps the one with the most confident
    /// foreground: the sum over its pixels of the squared margin above the threshold, scaled
    /// to 0…1 (a large but doubtful region, a rug say, loses to a smaller certain one), halved
    /// for a region the frame cuts: the subject of a photo is usually whole in it, and a piece
    /// of furniture at the edge is usually not the subject (or not all of it).
    static func mostConfidentComponent(_ m: [Bool], _ probability: [Float], _ w: Int, _ h: Int, threshold: Float) -> [Bool] {
        var label = [Int32](repeating: -1, count: w * h)
        var scores: [Float] = []
        var stack: [Int] = []
        for start in 0..<(w * h) where m[start] && label[start] < 0 {
            let id = Int32(scores.count)
            var score: Float = 0, cut = false
            label[start] = id
            stack.append(start)
            while let p = stack.popLast() {
                // Pixels added by the closing count a little, so a component is never worth 0.
                let margin = max(0, min(1, probability[p]) - threshold) / max(1 - threshold, 1e-6)
                score += margin * margin + 1e-3
                let x = p % w, y = p / w
                if x == 0 || y == 0 || x == w - 1 || y == h - 1 { cut = true }
                for q in [x > 0 ? p - 1 : -1, x < w - 1 ? p + 1 : -1, y > 0 ? p - w : -1, y < h - 1 ? p + w : -1]
                where q >= 0 && m[q] && label[q] < 0 {
                    label[q] = id
                    stack.append(q)
                }
            }
            scores.append(cut ? score / 2 : score)
        }
        guard let best = scores.indices.max(by: { scores[$0] < scores[$1] }) else { return m }
        return label.map { $0 == Int32(best) }
    }

    /// Background not 4-connected to the image border becomes foreground.
    static func fillHoles(_ m: [Bool], _ w: Int, _ h: Int) -> [Bool] {
        var outside = [Bool](repeating: false, count: w * h)
        var stack: [Int] = []
        for x in 0..<w { stack.append(x); stack.append((h - 1) * w + x) }
        for y in 0..<h { stack.append(y * w); stack.append(y * w + w - 1) }
        while let p = stack.popLast() {
            guard !m[p], !outside[p] else { continue }
            outside[p] = true
            let x = p % w, y = p / w
            if x > 0 { stack.append(p - 1) }
            if x < w - 1 { stack.append(p + 1) }
            if y > 0 { stack.append(p - w) }
            if y < h - 1 { stack.append(p + w) }
        }
        return outside.map { !$0 }
    }
}
