"""Fit the scale head (how far away is the object, in canonical-camera metres?) on frozen weights,
evaluate it, and add it to a weights folder.

  P=/opt/venv/bin/python
  $P Training/scripts/fit_scale_head.py --weights Weights/mrdepth.safetensors \
      --train Training/data/photoreal/train192 --val Training/data/photoreal/val \
      --eval Training/data/photoreal/eval --write

The network's front depth is relative: exp(o0) is the depth over the median front depth of the object
(`mrdepth/model.py`). What is missing for metres is one number per photo, the object's median depth, and
for a camera of known field of view that number follows from what the photo shows (a chair that fills
half the frame of a 60 degree camera is about 2 m away; a cup that does is 30 cm away). The scale head is a
ridge regression from the features the scene head reads (the spatial mean of the last encoder stage,
flip-averaged) and two of the object's size in the picture (`mrdepth.model.scale_features`: the network
mask's covered fraction and the rows it spans) to s = log(object depth in a canonical camera / the
network's front depth), canonical
meaning a 60 degree vertical field of view (depth x tan(fov/2) / tan(30 deg), so the photo's own field of
view drops out). The engine then gives metres as front x exp(s) x (focal length in network pixels) /
canonical_focal_px. Every other weight stays as it is: depth, back and mask outputs do not change by a bit.

Fitted on object views only (views whose target covers at least 20 pixels; whole-room views have no
object to size), at 192x192, L2 strength picked on --val by the median size error. Reported on every set:
the median |predicted / true size - 1| (the size of a back-projected object scales with its depth), the
share within 15 %, and the no-network baseline beside it: one constant distance for every photo (the
training median), which is what a tool without a scale estimate can do at best with a single number.
`--write` adds `scale.weight`/`scale.bias` to the safetensors and `metric_depth` (with `scale_head`) to
the json.
"""
import argparse
import glob
import hashlib
import json
import math
import os
import sys

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from evaluate import load_model, motorcycle, scale_inputs  # noqa: E402
from fit_scene_head import shard_files  # noqa: E402

SIDE = 192
CANONICAL_FOV = 60.0
MIN_PIXELS = 20


def canonical_focal_px(side=SIDE):
    return side / 2 / math.tan(math.radians(CANONICAL_FOV) / 2)


def log_scale_targets(front_pred, gt_front, mask, fov):
    """s per view: log(median over the object's pixels of canonical true depth / predicted front), NaN for
    views without an object."""
    t = np.full(len(front_pred), np.nan)
    canon = np.tan(np.radians(np.asarray(fov, np.float64)) / 2) / math.tan(math.radians(CANONICAL_FOV) / 2)
    for i in range(len(front_pred)):
        m = mask[i] & np.isfinite(gt_front[i]) & (gt_front[i] > 0)
        if m.sum() < MIN_PIXELS:
            continue
        t[i] = math.log(float(np.median(gt_front[i][m] * canon[i] / front_pred[i][m])))
    return t


def load_set(model, folders, cache_dir, weights_key):
    """Features and targets of every object view in `folders` (cached per shard and weights)."""
    xs, ts = [], []
    for folder in folders:
        for f in shard_files(folder):
            cache = os.path.join(cache_dir, weights_key + os.path.abspath(f).replace("/", "_") + ".scale.npz")
            if os.path.exists(cache) and os.path.getmtime(cache) >= os.path.getmtime(f):
                z = np.load(cache)
                x, t = z["x"], z["t"]
            else:
                z = np.load(f)
                if "fov" not in z.files or "target_size" not in z.files:
                    sys.exit(f"{f}: no metric labels (fov, target_size): only photoreal renders can fit the scale head")
                x, front = scale_inputs(model, z["rgb"], (SIDE, SIDE))
                t = log_scale_targets(front, z["front"], z["mask"], z["fov"])
                np.savez(cache, x=x, t=t)
            keep = np.isfinite(t)
            xs.append(x[keep])
            ts.append(t[keep])
    if not xs:
        sys.exit(f"no shards in {folders}")
    return np.concatenate(xs), np.concatenate(ts)


def fit(x, t, l2):
    """Ridge regression on standardised features; returns (w, b) in the raw feature space."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xs = (x - mu) / sd
    tm = t.mean()
    n, d = xs.shape
    w = np.linalg.solve(xs.T @ xs / n + l2 * np.eye(d), xs.T @ (t - tm) / n)
    w_raw = w / sd
    return w_raw.astype(np.float32), np.float32(tm - (w_raw * mu).sum())


def size_scores(pred_log, t):
    """Median |predicted / true size - 1| and the share within 15 %."""
    err = np.abs(np.exp(pred_log - t) - 1)
    return dict(n=int(len(t)), size_error_median=float(np.median(err)), within_15pct=float(np.mean(err <= 0.15)),
                ratio_median=float(np.exp(np.median(pred_log - t))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", default="Weights/mrdepth.safetensors")
    ap.add_argument("--train", nargs="+", required=True)
    ap.add_argument("--val", nargs="+", required=True)
    ap.add_argument("--eval", nargs="*", default=[])
    ap.add_argument("--l2", type=float, nargs="+", default=[1e-2, 1e-1, 3e-1, 1.0, 3.0, 10.0, 30.0])
    ap.add_argument("--cache", default="Training/runs/scale_features", help="feature cache folder")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--write", action="store_true", help="add the head to the weights folder")
    ap.add_argument("--json", help="write the report here")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(a.cache, exist_ok=True)
    model, cfg = load_model(a.weights)
    if cfg.get("metric_depth") and "scale_head" not in cfg["metric_depth"]:
        sys.exit("these weights were trained on canonical metric depth (train.py --metric); the scale head is for "
                 "relative weights")
    # features depend on the weights (the heads' own tensors aside)
    sd = {k: v for k, v in load_file(a.weights).items() if not k.startswith(("scene.", "scale."))}
    weights_key = hashlib.sha1(b"".join(sd[k].float().numpy().tobytes() for k in sorted(sd))).hexdigest()[:12] + "_"
    xtr, ttr = load_set(model, a.train, a.cache, weights_key)
    xva, tva = load_set(model, a.val, a.cache, weights_key)
    print(f"object views: train {len(ttr)}, val {len(tva)}; canonical distance median "
          f"{math.exp(np.median(ttr)):.2f} (x the network's relative depth)")
    best = None
    for l2 in a.l2:
        w, b = fit(xtr, ttr, l2)
        s = size_scores(xva @ w + b, tva)
        print(f"l2 {l2:g}: val size error median {s['size_error_median']:.3f}, within 15 % {s['within_15pct']:.3f}")
        if best is None or s["size_error_median"] < best[0]["size_error_median"]:
            best = (s, l2, w, b)
    _, l2, w, b = best
    stored = load_file(a.weights)
    dt = stored["head.out.weight"].dtype
    w = torch.from_numpy(w).to(dt).float().numpy()       # score what will be stored
    b = np.float32(torch.tensor(float(b)).to(dt).float())
    const = float(np.median(ttr))
    report = dict(weights=a.weights, l2=l2, constant_log_scale=const, sets={})
    print(f"\nchosen l2 {l2:g}\n")
    print("| set | object views | method | size error (median) | within 15 % | median ratio |")
    print("|---|---|---|---|---|---|")
    for folder in a.val + a.eval:
        x, t = load_set(model, [folder], a.cache, weights_key)
        rows = {"scale head": size_scores(x @ w + b, t), "constant distance (no network)": size_scores(np.full_like(t, const), t)}
        report["sets"][folder] = rows
        for name, s in rows.items():
            print(f"| {folder} | {s['n']} | {name} | {s['size_error_median']:.3f} | {s['within_15pct']:.3f} | "
                  f"{s['ratio_median']:.3f} |")
    # The real photograph: the motorcycle's median metric depth ratio with its own field of view.
    img, gt, valid, fov = motorcycle(SIDE)
    x, front = scale_inputs(model, img[None], img.shape[:2])
    focal = img.shape[0] / 2 / math.tan(math.radians(fov) / 2)
    scale = math.exp(float(x[0] @ w + b)) * focal / canonical_focal_px()
    ratio = float(np.median(front[0][valid] * scale / gt[valid]))
    report["motorcycle_ratio"] = ratio
    print(f"\nMiddlebury motorcycle (real photo, its {fov:.1f} degree field of view given): median depth ratio {ratio:.3f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=2)
    if a.write:
        with safe_open(a.weights, "pt") as f:
            meta = f.metadata() or {"format": "pt"}
        stored["scale.weight"] = torch.from_numpy(w[None]).to(dt)
        stored["scale.bias"] = torch.tensor([b]).to(dt)
        save_file(stored, a.weights, metadata=meta)
        cfg_path = os.path.join(os.path.dirname(a.weights), "mrdepth.json")
        cfg["metric_depth"] = {"canonical_focal_px": round(canonical_focal_px(), 4), "canonical_fov_degrees": CANONICAL_FOV,
                               "trained_input": SIDE,
                               "scale_head": {"features": "mean of enc4", "output": "log canonical depth / front",
                                              "fitted": "fit_scale_head.py", "l2": l2}}
        with open(cfg_path, "w") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")
        print(f"wrote scale.weight/scale.bias into {a.weights} and metric_depth into {cfg_path}")


if __name__ == "__main__":
    main()
