"""Fit `thickness_gain` of exported weights on validation renders (never on the eval set).

The engine multiplies the network's thickness (back - front) by this gain (`MRDepthConfig.thicknessGain`).
A network trained with a squared error in log space regresses a thickness it cannot see towards zero: on
held-out-model photoreal views its objects come out about half as deep as they are. The gain is the least
squares slope through the origin of the true thickness ratio (back / front - 1) on the predicted one,
pooled over the pixels that both the target's mask and the predicted mask (> 0.5) cover, the net run as
the engine runs it (input size and flip averaging of the json). Views without a target are skipped.

  P=/opt/venv/bin/python
  $P Training/scripts/fit_thickness_gain.py --weights Weights/mrdepth.safetensors \
      --data Training/data/photoreal/val --infer-size 192 192            # prints the fit
  $P Training/scripts/fit_thickness_gain.py ... --write                   # and stores it in mrdepth.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import evaluate as EV  # noqa: E402
from mrdepth.dataset import load_shards  # noqa: E402


def fit_gain(pred_ratio: np.ndarray, true_ratio: np.ndarray) -> float:
    """Least-squares slope through the origin of true on predicted thickness ratios."""
    p = np.asarray(pred_ratio, np.float64).ravel()
    t = np.asarray(true_ratio, np.float64).ravel()
    den = float((p * p).sum())
    if den <= 0:
        raise ValueError("no predicted thickness to fit")
    return float((p * t).sum() / den)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", required=True, help="exported mrdepth.safetensors (its mrdepth.json beside it)")
    ap.add_argument("--data", nargs="+", required=True, help="validation shard folders (held-out models)")
    ap.add_argument("--infer-size", type=int, nargs=2, default=None, metavar=("H", "W"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--min-pixels", type=int, default=50, help="skip views with fewer usable pixels")
    ap.add_argument("--write", action="store_true", help="store the gain as thickness_gain in the json")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    model, cfg = EV.load_model(a.weights)
    flip = EV.engine_flip(cfg)
    preds, trues, views = [], [], 0
    for folder in a.data:
        d = load_shards(folder)
        has_target = np.array([str(t) != "" for t in d["target_id"]]) if "target_id" in d else np.ones(len(d["rgb"]), bool)
        idx = np.flatnonzero(has_target)
        for s in range(0, len(idx), 16):
            chunk = idx[s:s + 16]
            p = EV.predict(model, d["rgb"][chunk], infer_size=a.infer_size, flip=flip)
            for j, i in enumerate(chunk):
                m = (d["mask"][i] > 0.5) & (p[j, 2] > 0.5)
                if m.sum() < a.min_pixels:
                    continue
                preds.append(p[j, 1][m] / p[j, 0][m] - 1)
                trues.append(d["back"][i][m] / d["front"][i][m] - 1)
                views += 1
    if not views:
        sys.exit("no usable views (targets covered by the predicted mask)")
    pr, tr = np.concatenate(preds), np.concatenate(trues)
    gain = fit_gain(pr, tr)
    print(f"views {views}, pixels {len(pr)}: median thickness ratio predicted {np.median(pr):.4f}, "
          f"true {np.median(tr):.4f}; thickness_gain {gain:.3f}", flush=True)
    if a.write:
        path = os.path.join(os.path.dirname(os.path.abspath(a.weights)), "mrdepth.json")
        with open(path) as f:
            config = json.load(f)
        config["thickness_gain"] = round(gain, 3)
        with open(path, "w") as f:
            json.dump(config, f, indent=2)
            f.write("\n")
        print(f"wrote thickness_gain {config['thickness_gain']} to {path}")
    return gain


if __name__ == "__main__":
    main()
