"""Dump held-out renders plus the PyTorch outputs, for checking the Swift runtime against PyTorch.

  python Training/scripts/dump_heldout.py --weights Weights/mrdepth.safetensors --data Training/data/eval256 \
      --count 200 --out Training/data/heldout

Writes to --out:
  rgb_000.png ... rgb_199.png    the network inputs (size x size RGB, lossless; size = json input_size;
                                 three digits from 101 images on, so rgb_*.png globs in order)
  torch_out.f32 / torch_out.npy  PyTorch outputs, float32 little-endian, shape (N,3,H,W): front, back, mask
                                 (flip-averaged when the json says flip_average, as the engine runs it)
  gt_front.f32, gt_back.f32      ground truth depth (N,H,W) float32 (metres)
  gt_mask.u8                     ground truth mask (N,H,W) uint8 0/1
  metrics.json                   the evaluation metrics of the PyTorch outputs on these images
  manifest.json                  shapes, seeds and file list
Then, after running the Swift model on rgb_*.png and writing its (N,3,H,W) float32 outputs to one file:
  mesh network Training/data/heldout/rgb_*.png -o swift_out.f32
  python Training/scripts/compare_heldout.py --dump Training/data/heldout --pred swift_out.f32
"""
import argparse
import json
import os
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from mrdepth import metrics as M  # noqa: E402
from mrdepth.dataset import load_shards  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from evaluate import engine_flip, load_model, predict  # noqa: E402


def score(pred, front, back, mask):
    rows = [M.score_image(pred[i, 0], pred[i, 1], pred[i, 2], front[i], back[i], mask[i]) for i in range(len(pred))]
    return {"summary": M.summarise(rows), "per_image": rows}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default="Weights/mrdepth.safetensors")
    ap.add_argument("--data", default="Training/data/eval256")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--out", default="Training/data/heldout")
    ap.add_argument("--size", type=int, help="net input side (default: input_size of mrdepth.json); images and ground "
                    "truth are resized to it here so the other runtime feeds the PNG pixels as they are")
    a = ap.parse_args()
    model, cfg = load_model(a.weights)
    d = load_shards(a.data)
    n = min(a.count, len(d["rgb"]))
    size = a.size or int(max(cfg["input_size"]))
    os.makedirs(a.out, exist_ok=True)
    rgb, gt = d["rgb"][:n], {k: d[k][:n] for k in ("front", "back", "mask")}
    if rgb.shape[1:3] != (size, size):
        rgb = np.stack([np.asarray(Image.fromarray(x).resize((size, size), Image.BILINEAR)) for x in rgb])
        gt = {k: np.stack([np.asarray(Image.fromarray(v.astype(np.float32) if k != "mask" else v.astype(np.uint8))
                                      .resize((size, size), Image.NEAREST)) for v in vs]) for k, vs in gt.items()}
        gt["mask"] = gt["mask"].astype(bool)
    files = []
    digits = max(2, len(str(n - 1)))  # zero-padded so that a shell glob lists them in order
    for i in range(n):
        fn = f"rgb_{i:0{digits}d}.png"
        Image.fromarray(rgb[i]).save(os.path.join(a.out, fn))
        files.append(fn)
    # feed the PNG-decoded pixels (identical to rgb, PNG is lossless)
    dec = np.stack([np.asarray(Image.open(os.path.join(a.out, f)).convert("RGB")) for f in files])
    assert (dec == rgb).all()
    pred = predict(model, dec, flip=engine_flip(cfg)).astype("<f4")
    pred.tofile(os.path.join(a.out, "torch_out.f32"))
    np.save(os.path.join(a.out, "torch_out.npy"), pred)
    gt["front"].astype("<f4").tofile(os.path.join(a.out, "gt_front.f32"))
    gt["back"].astype("<f4").tofile(os.path.join(a.out, "gt_back.f32"))
    gt["mask"].astype(np.uint8).tofile(os.path.join(a.out, "gt_mask.u8"))
    with open(os.path.join(a.out, "metrics.json"), "w") as f:
        json.dump(score(pred, gt["front"], gt["back"], gt["mask"]), f, indent=2)
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump({"count": n, "height": int(rgb.shape[1]), "width": int(rgb.shape[2]), "images": files,
                   "seeds": [int(s) for s in d["seeds"][:n]], "weights": a.weights,
                   "outputs_layout": "float32 little-endian (N,3,H,W): front, back, mask"}, f, indent=2)
    print(f"wrote {n} images and PyTorch outputs to {a.out}")


if __name__ == "__main__":
    main()
