"""Contact sheet of rendered views: photo | front depth | back - front | target mask, one row per view.

  python Training/scripts/photoreal_sheet.py --data Training/data/photoreal/train --count 8 --out sheet.jpg

Depth is shown as inverse depth (near = bright); thickness (back - front) in metres, 0..1 m; the mask
tinted over the photo. Picks `--count` views spread over the shards (fixed by --seed).
"""
import argparse
import glob
import os

import numpy as np
from PIL import Image


def colour_depth(d, valid):
    inv = 1.0 / np.maximum(d, 1e-3)
    v = inv[valid] if valid.any() else inv.ravel()
    lo, hi = np.percentile(v, 2), np.percentile(v, 98)
    x = np.clip((inv - lo) / max(hi - lo, 1e-6), 0, 1)
    # a simple perceptual ramp (dark blue -> teal -> yellow)
    r = np.clip(1.5 * x - 0.3, 0, 1)
    g = np.clip(1.2 * x, 0, 1) ** 0.8
    b = np.clip(0.6 - 0.5 * x + 0.4 * (x < 0.3), 0, 1)
    return (np.stack([r, g, b], -1) * 255).astype(np.uint8)


def row(rec):
    rgb, f, b, m = rec["rgb"], rec["front"], rec["back"], rec["mask"]
    depth = colour_depth(f, f < 29)
    thick = np.clip((b - f) / 1.0, 0, 1)
    th = (np.stack([thick] * 3, -1) * 255).astype(np.uint8)
    tint = rgb.astype(np.float32) * 0.45
    tint[m] = tint[m] * 0.6 + np.array([255, 80, 40]) * 0.55
    return np.concatenate([rgb, depth, th, np.clip(tint, 0, 255).astype(np.uint8)], 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", nargs="+", required=True)
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--cols", type=int, default=2, help="rows of the sheet are laid out in this many columns")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quality", type=int, default=82)
    a = ap.parse_args()
    files = sorted(f for d in a.data for f in glob.glob(os.path.join(d, "*.npz")) if ".tmp" not in f)
    if not files:
        raise SystemExit("no shards")
    rng = np.random.default_rng(a.seed)
    rows = []
    picks = sorted(rng.choice(len(files), size=a.count, replace=len(files) < a.count))
    used = set()
    for fi in picks:
        z = np.load(files[fi])
        free = [i for i in range(len(z["rgb"])) if (fi, i) not in used]
        i = int(free[rng.integers(len(free))])
        used.add((fi, i))
        rows.append(row({k: z[k][i] for k in ("rgb", "front", "back", "mask")}))
    per = -(-len(rows) // a.cols)
    cols = []
    for c in range(a.cols):
        part = rows[c * per:(c + 1) * per]
        while len(part) < per:
            part.append(np.zeros_like(rows[0]))
        cols.append(np.concatenate(part, 0))
    sheet = np.concatenate(cols, 1)
    Image.fromarray(sheet).save(a.out, quality=a.quality)
    print(f"{a.out}: {sheet.shape[1]}x{sheet.shape[0]}, {os.path.getsize(a.out) / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
