"""Evaluate exported weights (and the two no-network baselines) on the held-out renders and on a real photo.

  python Training/scripts/make_dataset.py --split eval --count 200 --size 256 --out Training/data/eval256
  python Training/scripts/evaluate.py --weights Weights/mrdepth.safetensors --data Training/data/eval256 \
      --json Training/runs/eval256.json

The held-out set uses seeds EVAL_SEED_BASE + i, never used in training. Images are fed at their rendered
size (256x256 = the default input size). --real adds scikit-image's Middlebury 2014 "motorcycle" photo
(left view with ground-truth disparity), resized so its long side is the net input size.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from mrdepth import metrics as M  # noqa: E402
from mrdepth.dataset import load_shards  # noqa: E402
from mrdepth.model import MRDepthUNet, normalize, scale_features  # noqa: E402


def load_model(weights, config=None):
    config = config or os.path.join(os.path.dirname(weights), "mrdepth.json")
    with open(config) as f:
        cfg = json.load(f)
    model = MRDepthUNet(cfg["widths"], scene_head="scene_head" in cfg,
                        scale_head="scale_head" in (cfg.get("metric_depth") or {}))
    sd = {k: v.float() for k, v in load_file(weights).items()}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"weights do not match: missing {missing}, unexpected {unexpected}")
    return model.eval(), cfg


def engine_flip(cfg):
    """Whether the engine runs these weights flip-averaged (`flip_average` in mrdepth.json)."""
    return bool(cfg.get("flip_average", False))


def run_net(model, x, flip=False):
    """What the engine runs on a normalised batch: model(x), or with flip averaging (`flip_average` in the
    json) the mean of model(x) and the mirror image of model(mirror(x)) (MRDepthUNet.predict in Swift)."""
    y = model(x)
    if flip:
        y = 0.5 * (y + model(x.flip(3)).flip(3))
    return y


@torch.no_grad()
def predict(model, rgb_uint8, bs=16, infer_size=None, flip=False):
    """(N,H,W,3) uint8 -> (N,3,H,W) float32 numpy: front, back, mask.

    infer_size (h, w): run the net at that size (bilinear resize in, bilinear resize of the outputs back).
    flip: average with the mirrored pass (see run_net)."""
    outs = []
    for i in range(0, len(rgb_uint8), bs):
        x = torch.from_numpy(np.array(rgb_uint8[i:i + bs])).permute(0, 3, 1, 2).float() / 255.0
        H, W = x.shape[2:]
        if infer_size and tuple(infer_size) != (H, W):
            x = F.interpolate(x, size=tuple(infer_size), mode="bilinear", align_corners=False, antialias=True)
            y = F.interpolate(run_net(model, normalize(x), flip), size=(H, W), mode="bilinear", align_corners=False)
        else:
            y = run_net(model, normalize(x), flip)
        outs.append(y.numpy())
    return np.concatenate(outs)


def evaluate_set(pred, data):
    """pred: dict name -> (N,3,H,W) predictions. Returns name -> summary."""
    res = {}
    for name, p in pred.items():
        rows = [M.score_image(p[i, 0], p[i, 1], p[i, 2], data["front"][i], data["back"][i], data["mask"][i])
                for i in range(len(p))]
        res[name] = M.summarise(rows)
    return res


def baselines(n, h, w):
    c = np.stack(M.baseline_constant(h, w))[None].repeat(n, 0)
    gp = np.stack(M.baseline_ground_plane(h, w))[None].repeat(n, 0)
    return {"constant": c, "ground_plane": gp}


@torch.no_grad()
def scale_inputs(model, rgb_uint8, size, bs=32):
    """What the scale head reads, as the engine computes it (`mrdepth.model.scale_features` of the
    flip-averaged pooled features and mask at the net input `size`), (N, w4 + 2), and the flip-averaged
    front depth (N, H, W) at the render's own size."""
    feats, fronts = [], []
    for i in range(0, len(rgb_uint8), bs):
        x = torch.from_numpy(np.ascontiguousarray(rgb_uint8[i:i + bs])).permute(0, 3, 1, 2).float() / 255.0
        H, W = x.shape[2:]
        x = normalize(F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True))
        o1, p1 = model.raw_and_pooled(x)
        o2, p2 = model.raw_and_pooled(x.flip(3))
        o = 0.5 * (model.postprocess(o1) + model.postprocess(o2).flip(3))
        front = F.interpolate(o[:, 0:1], size=(H, W), mode="bilinear", align_corners=False)[:, 0]
        feats.append(scale_features(0.5 * (p1 + p2), o[:, 2]).numpy())
        fronts.append(front.numpy())
    return np.concatenate(feats), np.concatenate(fronts)


def motorcycle(long_side=256):
    """Middlebury 2014 motorcycle (bundled with scikit-image) resized like the Swift pipeline does (long
    side = long_side, short side in proportion, both multiples of 32): (rgb, true depth in metres, valid
    pixels, the photo's vertical field of view in degrees)."""
    import skimage.data as data
    from PIL import Image

    left, _, disp = data.stereo_motorcycle()
    f, baseline_m, doffs = 994.978, 0.193001, 31.086
    W = long_side
    H = max(32, int(round(long_side * left.shape[0] / left.shape[1] / 32)) * 32)
    img = np.asarray(Image.fromarray(left).resize((W, H), Image.BILINEAR))
    d = np.asarray(Image.fromarray(disp.astype(np.float32)).resize((W, H), Image.NEAREST))
    valid = np.isfinite(d) & (d > 0)
    gt = np.where(valid, f * baseline_m / np.where(valid, d + doffs, 1.0), np.nan)
    fov = 2 * np.degrees(np.arctan(left.shape[0] / 2 / f))
    return img, gt, valid, float(fov)


def real_photo(model, long_side=256, flip=False):
    """The motorcycle's front-depth metrics on valid pixels (see `motorcycle`)."""
    img, gt, valid, _ = motorcycle(long_side)
    H, W = img.shape[:2]
    out = {}
    preds = {"model": predict(model, img[None], flip=flip)[0]}
    preds.update({k: v[0] for k, v in baselines(1, H, W).items()})
    for name, p in preds.items():
        s, t = M.align_disparity(p[0], gt, valid)
        a = M.apply_alignment(p[0], s, t)
        absrel, d1 = M.depth_errors(a, gt, valid)
        out[name] = {"front_absrel": absrel, "front_d1": d1}
    return out, img, preds["model"]


def metric_factor(cfg, infer_h, fov_degrees):
    """Output -> metres for weights trained on canonical-camera metric depth (`metric_depth` in the json):
    x (focal length in network-input pixels) / canonical_focal_px; None for relative weights."""
    md = cfg.get("metric_depth")
    if not md:
        return None
    focal = infer_h / 2 / np.tan(np.radians(np.asarray(fov_degrees, np.float64)) / 2)
    return focal / md["canonical_focal_px"]


def head_scales(model, cfg, rgb_uint8, infer_size):
    """Per image exp(scale head) for weights with a scale head (`metric_depth.scale_head`), else ones:
    the factor from the network's relative front depth to canonical-camera depth."""
    if "scale_head" not in (cfg.get("metric_depth") or {}):
        return np.ones(len(rgb_uint8))
    x, _ = scale_inputs(model, rgb_uint8, tuple(infer_size))
    with torch.no_grad():
        return np.exp(model.scale_log(torch.from_numpy(x)).numpy().astype(np.float64))


def metric_scores(pred_front, gt_front, mask, factor):
    """Per image with an object: the ratio of predicted to true metric depth (median over the object's
    pixels), which is also the ratio of the object's predicted to true size (the size of a back-projected
    object scales with its depth). Returns the median |ratio - 1| and the share of images within 15 %."""
    ratios = []
    for i in range(len(pred_front)):
        m = mask[i] & np.isfinite(gt_front[i]) & (gt_front[i] > 0)
        if m.sum() < 20:
            continue
        ratios.append(np.median(pred_front[i][m] * factor[i] / gt_front[i][m]))
    err = np.abs(np.asarray(ratios) - 1)
    return {"size_error_median": float(np.median(err)), "size_within_15pct": float(np.mean(err <= 0.15)),
            "size_ratio_median": float(np.median(ratios)), "images": len(ratios)}


def table(res, keys):
    lines = ["| method | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, r in res.items():
        lines.append(f"| {name} | " + " | ".join(f"{r[k]:.3f}" if k in r else "-" for k in keys) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default="Weights/mrdepth.safetensors")
    ap.add_argument("--config")
    ap.add_argument("--data", default="Training/data/eval256")
    ap.add_argument("--real", action="store_true", help="also score the real Middlebury photo")
    ap.add_argument("--json")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--flip", choices=["json", "on", "off"], default="json",
                    help="flip averaging (mean with the mirrored pass): as the json's flip_average says (default), or forced")
    ap.add_argument("--infer-size", type=int, nargs=2,
                    help="run the net at H W (default: input_size of the json, the size the engine runs it at); "
                         "inputs are resized to it and the outputs back to the render size")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model, cfg = load_model(a.weights, a.config)
    if not a.infer_size and cfg.get("input_size"):
        a.infer_size = [int(v) for v in cfg["input_size"]]
    data = load_shards(a.data)
    n, h, w = data["front"].shape
    flip = engine_flip(cfg) if a.flip == "json" else a.flip == "on"
    pred = {"model": predict(model, data["rgb"], infer_size=a.infer_size, flip=flip)}
    pred.update(baselines(n, h, w))
    res = evaluate_set(pred, data)
    keys = ["front_absrel", "front_d1", "back_absrel", "back_d1", "mask_iou", "fg_front_absrel", "fg_front_d1",
            "obj_front_absrel", "obj_front_d1", "obj_back_absrel", "obj_back_d1", "room_fp_rate"]
    print(f"held-out set: {n} images {h}x{w} ({int(data['room'].sum())} rooms) from {a.data}, "
          f"net input {tuple(a.infer_size) if a.infer_size else (h, w)}{', flip-averaged' if flip else ''}")
    print(table(res, keys))
    out = {"heldout": res, "n": int(n), "size": [int(h), int(w)], "net_input": list(a.infer_size or (h, w)), "flip": flip}
    infer_h = a.infer_size[0] if a.infer_size else h
    if metric_factor(cfg, infer_h, 60.0) is not None and "target_size" in data:
        factor = metric_factor(cfg, infer_h, data["fov"]) * head_scales(model, cfg, data["rgb"], a.infer_size or (h, w))
        ms = metric_scores(pred["model"][:, 0], data["front"], data["mask"], factor)
        print(f"metric depth (field of view given): object size error median {ms['size_error_median']:.3f}, "
              f"within 15 % {ms['size_within_15pct']:.3f}, median ratio {ms['size_ratio_median']:.3f} ({ms['images']} images)")
        out["metric"] = ms
    if a.real:
        long_side = max(a.infer_size) if a.infer_size else max(h, w)
        rr, img, p_real = real_photo(model, long_side, flip)
        print(f"real photo (Middlebury 2014 motorcycle, net input {img.shape[0]}x{img.shape[1]}):")
        print(table(rr, ["front_absrel", "front_d1"]))
        out["real_motorcycle"] = rr
        if metric_factor(cfg, img.shape[0], 60.0) is not None:
            _, gt, valid, fov = motorcycle(long_side)
            factor = metric_factor(cfg, img.shape[0], fov) * head_scales(model, cfg, img[None], img.shape[:2])[0]
            ratio = float(np.median(p_real[0][valid] * factor / gt[valid]))
            print(f"real photo metric depth (its vertical field of view {fov:.1f} degrees given): median ratio {ratio:.3f}")
            out["real_motorcycle"]["metric_ratio"] = ratio
    if a.json:
        os.makedirs(os.path.dirname(a.json) or ".", exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
