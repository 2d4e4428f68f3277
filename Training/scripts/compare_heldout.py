"""Compare another runtime's outputs (e.g. the Swift DepthNet) with the PyTorch dump of dump_heldout.py.

  python Training/scripts/compare_heldout.py --dump Training/data/heldout --pred swift_out.f32

--pred: float32 little-endian (N,3,H,W) = front, back, mask, same image order as rgb_XX.png.
Prints max/mean absolute differences per channel and the evaluation metrics of both side by side;
exits 1 if any metric differs by 0.0005 or more (i.e. they do not agree to the third decimal).
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dump_heldout import score  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump", default="Training/data/heldout")
    ap.add_argument("--pred", required=True)
    ap.add_argument("--tol", type=float, default=5e-4)
    a = ap.parse_args()
    man = json.load(open(os.path.join(a.dump, "manifest.json")))
    n, h, w = man["count"], man["height"], man["width"]
    ref = np.fromfile(os.path.join(a.dump, "torch_out.f32"), "<f4").reshape(n, 3, h, w)
    other = np.fromfile(a.pred, "<f4").reshape(n, 3, h, w)
    for c, name in enumerate(["front", "back", "mask"]):
        diff = np.abs(ref[:, c] - other[:, c])
        rel = diff / np.maximum(np.abs(ref[:, c]), 1e-6)
        print(f"{name}: max abs diff {diff.max():.3e}, mean {diff.mean():.3e}, max rel {rel.max():.3e}")
    gf = np.fromfile(os.path.join(a.dump, "gt_front.f32"), "<f4").reshape(n, h, w)
    gb = np.fromfile(os.path.join(a.dump, "gt_back.f32"), "<f4").reshape(n, h, w)
    gm = np.fromfile(os.path.join(a.dump, "gt_mask.u8"), np.uint8).reshape(n, h, w).astype(bool)
    sr, so = score(ref, gf, gb, gm)["summary"], score(other, gf, gb, gm)["summary"]
    bad = False
    for k in sr:
        d = abs(sr[k] - so[k])
        bad |= d >= a.tol
        print(f"{k:18s} torch {sr[k]:.4f}  other {so[k]:.4f}  diff {d:.1e}")
    print("MATCH to the third decimal" if not bad else "MISMATCH")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
