"""Fit the scene head (room or object?) on frozen weights, evaluate it, and add it to a weights folder.

  P=/opt/venv/bin/python
  $P Training/scripts/fit_scene_head.py --weights Weights/mrdepth.safetensors \
      --train Training/data/photoreal/train192 Training/data/train192prim \
      --val Training/data/photoreal/val Training/data/val192 \
      --eval Training/data/photoreal/eval Training/data/eval256 --samples samples --write

The head is a logistic regression on the spatial mean of the encoder's last stage (see
`mrdepth/model.py`), fitted on features of the training renders while every other weight stays as it is:
the depth and mask outputs of the weights do not change by a bit. Each view is seen as the engine sees it,
flip-averaged, once square (192x192) and once as a landscape photo (the middle 3/4 of the rows stretched
to 192x160, as the engine feeds a 4:3 photo). Classes are weighted to balance; the L2 strength is picked on
--val (balanced accuracy), and the decision threshold stays 0.5. Reported beside it on every set: what
the engine decides (relief when the head says room or the mask rule finds no object), the mask rule alone
(object when the mask covers 2-85 % and does not touch all four borders: the engine without a head) and
"always object". `--samples` also runs the bundled sample photos (room.jpg is a room, the others objects).
`--write` adds `scene.weight`/`scene.bias` to the safetensors and `"scene_head"` to the json.
"""
import argparse
import glob
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from evaluate import load_model  # noqa: E402
from mrdepth.model import normalize  # noqa: E402

SIDE = 192
LANDSCAPE = (160, 192)   # what the engine feeds for a 4:3 photo at 192 (H, W)


def shard_files(folder):
    return sorted(f for f in glob.glob(os.path.join(folder, "*.npz")) if ".tmp" not in f and ".scene" not in f)


@torch.no_grad()
def features(model, rgb_uint8, size, crop_rows=1.0, bs=32):
    """(N, w4 + 1) flip-averaged pooled features + the engine's mask-rule decision (1 = relief)."""
    out = []
    for i in range(0, len(rgb_uint8), bs):
        x = torch.from_numpy(np.ascontiguousarray(rgb_uint8[i:i + bs])).permute(0, 3, 1, 2).float() / 255.0
        if crop_rows < 1.0:
            h = x.shape[2]
            keep = int(round(h * crop_rows))
            top = (h - keep) // 2
            x = x[:, :, top:top + keep]
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        x = normalize(x)
        o1, p1 = model.raw_and_pooled(x)
        o2, p2 = model.raw_and_pooled(x.flip(3))
        pooled = 0.5 * (p1 + p2)
        mask = 0.5 * (torch.sigmoid(o1[:, 2]) + torch.sigmoid(o2[:, 2]).flip(2))
        out.append(torch.cat([pooled, mask_rule(mask)[:, None]], 1).numpy())
    return np.concatenate(out)


def mask_rule(mask):
    """The engine's AutoModeRule on (N, H, W) masks: 1 where it picks relief."""
    m = mask >= 0.5
    frac = m.float().mean((1, 2))
    borders = m[:, 0].any(1) & m[:, -1].any(1) & m[:, :, 0].any(1) & m[:, :, -1].any(1)
    return (~((frac >= 0.02) & (frac <= 0.85) & ~borders)).float()


def load_set(model, folders, cache_dir=None, weights_key=""):
    """Features and room labels of every view in `folders`, square and landscape (cached per shard and
    weights file)."""
    feats, labels, names = [], [], []
    for folder in folders:
        for f in shard_files(folder):
            cache = None
            if cache_dir:
                key = weights_key + os.path.abspath(f).replace("/", "_")
                cache = os.path.join(cache_dir, key + ".feat.npz")
            if cache and os.path.exists(cache) and os.path.getmtime(cache) >= os.path.getmtime(f):
                z = np.load(cache)
                sq, ls, room = z["sq"], z["ls"], z["room"]
            else:
                z = np.load(f)
                rgb, room = z["rgb"], z["room"].astype(np.float32)
                sq = features(model, rgb, (SIDE, SIDE))
                ls = features(model, rgb, LANDSCAPE, crop_rows=0.75)
                if cache:
                    np.savez(cache, sq=sq, ls=ls, room=room)
            feats += [sq, ls]
            labels += [room, room]
            names.append(folder)
    return np.concatenate(feats), np.concatenate(labels)


def fit(x, y, l2):
    """Balanced, L2-regularised logistic regression; returns (w, b) in the raw feature space."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xs = torch.from_numpy((x - mu) / sd).double()
    yt = torch.from_numpy(y).double()
    pos = yt.mean().clamp(1e-3, 1 - 1e-3)
    weight = torch.where(yt > 0.5, 0.5 / pos, 0.5 / (1 - pos))
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = (weight * F.binary_cross_entropy_with_logits(xs @ w + b, yt, reduction="none")).mean() + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    w_raw = w.detach().numpy() / sd
    b_raw = float(b.detach()) - float((w_raw * mu).sum())
    return w_raw.astype(np.float32), np.float32(b_raw)


def scores(pred, y):
    """accuracy, balanced accuracy, room recall, object recall (pred, y: 1 = room/relief)."""
    pred, y = pred.astype(bool), y.astype(bool)
    rec_room = (pred & y).sum() / max(1, y.sum())
    rec_obj = (~pred & ~y).sum() / max(1, (~y).sum())
    return dict(n=int(len(y)), rooms=int(y.sum()), accuracy=float((pred == y).mean()),
                balanced=float(0.5 * (rec_room + rec_obj)), room_recall=float(rec_room), object_recall=float(rec_obj))


# scikit-image's bundled real photographs, all of objects (never used for fitting; the threshold is fixed).
REAL_OBJECT_PHOTOS = ("motorcycle_left.png", "coffee.png", "chelsea.png", "astronaut.png")


def sample_photos(model, folder, w, b):
    """P(room) on the sample photos and on scikit-image's real object photos."""
    from PIL import Image
    import skimage
    real = [os.path.join(os.path.dirname(skimage.__file__), "data", n) for n in REAL_OBJECT_PHOTOS]
    rows = []
    for path in sorted(glob.glob(os.path.join(folder, "*.jpg"))) + real:
        im = Image.open(path).convert("RGB")
        W, H = im.size
        long = SIDE
        short = max(32, int(round(long * min(W, H) / max(W, H) / 32)) * 32)
        size = (short, long) if W >= H else (long, short)
        f = features(model, np.asarray(im)[None], size)
        logit = float(f[0, :-1] @ w + b)
        rows.append(dict(photo=os.path.basename(path), room_probability=float(1 / (1 + np.exp(-logit))),
                         mask_rule="relief" if f[0, -1] > 0.5 else "object"))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", default="Weights/mrdepth.safetensors")
    ap.add_argument("--train", nargs="+", required=True)
    ap.add_argument("--val", nargs="+", required=True)
    ap.add_argument("--eval", nargs="*", default=[])
    ap.add_argument("--samples", help="folder of sample photos (room.jpg is the room)")
    ap.add_argument("--l2", type=float, nargs="+", default=[1e-4, 1e-3, 1e-2, 1e-1])
    ap.add_argument("--cache", default="Training/runs/scene_features", help="feature cache folder")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--write", action="store_true", help="add the head to the weights folder")
    ap.add_argument("--json", help="write the report here")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(a.cache, exist_ok=True)
    model, cfg = load_model(a.weights)
    import hashlib
    # features depend on the weights (the scene head's own tensors aside)
    sd = {k: v for k, v in load_file(a.weights).items() if not k.startswith("scene.")}
    weights_key = hashlib.sha1(b"".join(sd[k].float().numpy().tobytes() for k in sorted(sd))).hexdigest()[:12] + "_"
    xtr, ytr = load_set(model, a.train, a.cache, weights_key)
    xva, yva = load_set(model, a.val, a.cache, weights_key)
    print(f"train {len(ytr)} feature rows ({int(ytr.sum())} rooms), val {len(yva)} ({int(yva.sum())} rooms)")
    best = None
    for l2 in a.l2:
        w, b = fit(xtr[:, :-1], ytr, l2)
        s = scores((xva[:, :-1] @ w + b) > 0, yva)
        print(f"l2 {l2:g}: val balanced accuracy {s['balanced']:.3f} (room recall {s['room_recall']:.3f}, "
              f"object recall {s['object_recall']:.3f})")
        if best is None or s["balanced"] > best[0]["balanced"]:
            best = (s, l2, w, b)
    _, l2, w, b = best
    stored = load_file(a.weights)
    dt = stored["head.out.weight"].dtype
    # score what will be stored (the weights' dtype, f16 for the shipped ones)
    w = torch.from_numpy(w).to(dt).float().numpy()
    b = np.float32(torch.tensor(float(b)).to(dt).float())
    report = dict(weights=a.weights, l2=l2, sets={})
    print(f"\nchosen l2 {l2:g}\n")
    print("| set | views | rooms | method | accuracy | balanced accuracy | room recall | object recall |")
    print("|---|---|---|---|---|---|---|---|")
    for folder in a.val + a.eval:
        x, y = load_set(model, [folder], a.cache, weights_key)
        head = (x[:, :-1] @ w + b) > 0
        rows = {"scene head": scores(head, y), "engine (head, then mask rule)": scores(head | (x[:, -1] > 0.5), y),
                "mask rule (no head)": scores(x[:, -1] > 0.5, y), "always object": scores(np.zeros_like(y), y)}
        report["sets"][folder] = rows
        for name, s in rows.items():
            print(f"| {folder} | {s['n']} | {s['rooms']} | {name} | {s['accuracy']:.3f} | {s['balanced']:.3f} | "
                  f"{s['room_recall']:.3f} | {s['object_recall']:.3f} |")
    if a.samples:
        report["samples"] = sample_photos(model, a.samples, w, b)
        print("\n(samples/room.jpg is a room; the other samples and scikit-image's photos are objects)")
        for r in report["samples"]:
            print(f"{r['photo']}: P(room) {r['room_probability']:.3f}, mask rule {r['mask_rule']}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=2)
    if a.write:
        sd = stored
        with safe_open(a.weights, "pt") as f:
            meta = f.metadata() or {"format": "pt"}
        sd["scene.weight"] = torch.from_numpy(w[None]).to(dt)
        sd["scene.bias"] = torch.tensor([b]).to(dt)
        save_file(sd, a.weights, metadata=meta)
        cfg_path = os.path.join(os.path.dirname(a.weights), "mrdepth.json")
        cfg["scene_head"] = {"features": "mean of enc4", "classes": ["object", "room"], "fitted": "fit_scene_head.py",
                             "l2": l2}
        with open(cfg_path, "w") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")
        print(f"wrote scene.weight/scene.bias into {a.weights} and scene_head into {cfg_path}")


if __name__ == "__main__":
    main()
