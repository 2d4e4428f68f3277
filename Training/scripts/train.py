"""Train mrdepth-unet on rendered shards (CPU), resumable, with periodic checkpoints.

  python Training/scripts/train.py --data Training/data/train128 --val Training/data/val128 \
      --run Training/runs/main --steps 7000 --batch 16

Re-running the same command resumes from <run>/ckpt.pt. Logs go to <run>/log.csv.
Loss (per image, then averaged):
  front: scale-invariant log loss  mean((d - mean d)^2) + 0.25 (mean d)^2,  d = o0 - log(front / median_fg)
         + 0.5 * multi-scale gradient matching of log depth (4 scales)
  back : L1 between log(1 + softplus(o1)) and log(back / front), weight 1 + 4 * mask
  mask : BCE with logits + soft Dice (Dice only on images with an object)
         [+ --lovasz W times the Lovasz hinge, a convex surrogate of 1 - IoU, on images with an object]
"""
import argparse
import glob
import zipfile
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from mrdepth.dataset import load_shards  # noqa: E402
from mrdepth.model import MRDepthUNet, normalize  # noqa: E402


def augment(rgb, front, back, mask, g: torch.Generator, out_size=None, native=True, zoom_max=2.0):
    """rgb uint8 (B,R,R,3) -> float (B,3,S,S), S = out_size (default R); geometric + photometric augmentation.

    Zoom mode (S == R, or native=False): a random zoom-in crop, zoom 1..zoom_max, anywhere in the image,
    resampled to S (full views: the whole scene's context, at S/R of the render's pixel scale).
    Native mode (S < R and native): a window of about S render pixels (x0.8..1.25), so the net sees objects
    at the pixel scale of an R-pixel input at a fraction of the cost; 70 % of windows are centred on the
    foreground object (jittered), the rest anywhere."""
    B, H, W, _ = rgb.shape
    S = out_size or H
    x = rgb.permute(0, 3, 1, 2).float() / 255.0
    geo = torch.stack([front, back, mask.float()], 1)
    windows = S < H and native
    if windows:
        s = ((S / H) * torch.exp(math.log(1.25) * (2 * torch.rand(B, generator=g) - 1))).clamp(max=1.0)
    else:
        s = 1.0 / (1.0 + (zoom_max - 1.0) * torch.rand(B, generator=g))
    tx = (1 - s) * (2 * torch.rand(B, generator=g) - 1)
    ty = (1 - s) * (2 * torch.rand(B, generator=g) - 1)
    if windows:
        centred = torch.rand(B, generator=g) < 0.7
        m = mask.float()
        area = m.sum((1, 2))
        xs = (torch.arange(W, dtype=torch.float32) + 0.5) / W * 2 - 1
        ys = (torch.arange(H, dtype=torch.float32) + 0.5) / H * 2 - 1
        cx = (m.sum(1) * xs).sum(1) / area.clamp(min=1)
        cy = (m.sum(2) * ys).sum(1) / area.clamp(min=1)
        use = centred & (area > 0)
        jx = cx + 0.5 * s * (2 * torch.rand(B, generator=g) - 1)
        jy = cy + 0.5 * s * (2 * torch.rand(B, generator=g) - 1)
        tx = torch.where(use, torch.maximum(torch.minimum(jx, 1 - s), s - 1), tx)
        ty = torch.where(use, torch.maximum(torch.minimum(jy, 1 - s), s - 1), ty)
    flip = torch.where(torch.rand(B, generator=g) < 0.5, -1.0, 1.0)
    theta = torch.zeros(B, 2, 3)
    theta[:, 0, 0] = s * flip
    theta[:, 1, 1] = s
    theta[:, 0, 2] = tx
    theta[:, 1, 2] = ty
    grid = F.affine_grid(theta, (B, 3, S, S), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    geo = F.grid_sample(geo, grid, mode="nearest", padding_mode="border", align_corners=False)
    # photometric: gamma, per-channel gain, contrast, saturation, occasional grey / channel shuffle
    gam = torch.exp(0.25 * torch.randn(B, 1, 1, 1, generator=g))
    x = x.clamp(1e-4, 1) ** gam
    x = x * (1 + 0.08 * torch.randn(B, 3, 1, 1, generator=g))
    mean = x.mean((1, 2, 3), keepdim=True)
    x = (x - mean) * (1 + 0.2 * torch.randn(B, 1, 1, 1, generator=g)).clamp(0.5, 1.6) + mean
    grey = x.mean(1, keepdim=True)
    sat = (1 + 0.3 * torch.randn(B, 1, 1, 1, generator=g)).clamp(0, 1.6)
    sat = torch.where(torch.rand(B, 1, 1, 1, generator=g) < 0.08, torch.zeros_like(sat), sat)
    x = grey + (x - grey) * sat
    perm = torch.rand(B, generator=g) < 0.15
    if perm.any():
        x[perm] = x[perm][:, torch.randperm(3, generator=g)]
    x = x.clamp(0, 1)
    crop = s if torch.is_tensor(s) else torch.full((B,), float(s))
    return x, geo[:, 0], geo[:, 1], geo[:, 2] > 0.5, crop


CANONICAL_FOV = 60.0  # metric depth is learnt for a camera of this vertical field of view


def canonical_factor(fov_degrees, crop):
    """Metres -> canonical-camera depth: depth x f_canonical / f, for a view of vertical field of view
    `fov_degrees` of which the network sees the fraction `crop` (a zoom-in crop narrows the view).
    A network that predicts canonical depth gives metric depth for any camera: d x f / f_canonical
    (as in Metric3D, Yin et al. 2023)."""
    return crop * torch.tan(torch.deg2rad(fov_degrees) / 2) / math.tan(math.radians(CANONICAL_FOV) / 2)


def targets(front, back, mask, canon=None):
    """Normalise depth by the median foreground front depth (whole image if no object); images with a
    finite `canon` factor (metric renders) are instead scaled to canonical-camera metric depth."""
    B = front.shape[0]
    med = torch.empty(B)
    for i in range(B):
        if canon is not None and torch.isfinite(canon[i]):
            med[i] = 1.0 / canon[i]
            continue
        v = front[i][mask[i]] if mask[i].any() else front[i].flatten()
        med[i] = v.median()
    f = front / med.view(B, 1, 1)
    b = torch.maximum(back / med.view(B, 1, 1), f)
    return f, b


def grad_loss(d, scales=4):
    loss = 0.0
    for k in range(scales):
        if k:
            d = F.avg_pool2d(d, 2)
        gx = (d[..., :, 1:] - d[..., :, :-1]).abs()
        gy = (d[..., 1:, :] - d[..., :-1, :]).abs()
        loss = loss + gx.mean((1, 2)) + gy.mean((1, 2))
    return loss / scales


def lovasz_hinge(logits, labels):
    """Lovasz hinge (Berman et al., CVPR 2018): a convex surrogate of 1 - IoU for one image's mask logits."""
    signs = 2.0 * labels - 1.0
    errors = 1.0 - logits * signs
    errors_sorted, perm = torch.sort(errors, descending=True)
    gt_sorted = labels[perm]
    gts = gt_sorted.sum()
    jaccard = 1.0 - (gts - gt_sorted.cumsum(0)) / (gts + (1.0 - gt_sorted).cumsum(0))
    jaccard = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])
    return torch.dot(F.relu(errors_sorted), jaccard)


def losses(o, f, b, m, mask_weight=0.5, lovasz_weight=0.0, metric=None, metric_weight=1.0):
    """Scale-invariant log loss on the front depth (Eigen et al. 2014: variance of the log error plus a
    weight on its mean), whose mean term is the metric term for `metric` images (weight `metric_weight`)
    and a weak pull towards the median-normalised target otherwise (0.25)."""
    logf = torch.log(f)
    d = o[:, 0] - logf
    dm = d.mean((1, 2))
    w = torch.full_like(dm, 0.25) if metric is None else torch.where(metric, metric_weight, 0.25)
    l_front = ((d - dm.view(-1, 1, 1)) ** 2).mean((1, 2)) + w * dm ** 2
    l_grad = grad_loss(d)
    rp = torch.log1p(F.softplus(o[:, 1]))
    rt = torch.log(b / f)
    mf = m.float()
    l_back = ((rp - rt).abs() * (1 + 4 * mf)).mean((1, 2)) / (1 + 4 * mf.mean((1, 2)))
    l_bce = F.binary_cross_entropy_with_logits(o[:, 2], mf, reduction="none").mean((1, 2))
    p = torch.sigmoid(o[:, 2])
    inter = (p * mf).sum((1, 2))
    dice = 1 - (2 * inter + 1) / (p.sum((1, 2)) + mf.sum((1, 2)) + 1)
    has = (mf.sum((1, 2)) > 0).float()
    l_mask = l_bce + dice * has
    if lovasz_weight > 0:
        lov = torch.stack([lovasz_hinge(o[i, 2].flatten(), mf[i].flatten()) if has[i] > 0 else o.new_zeros(())
                           for i in range(o.shape[0])])
        l_mask = l_mask + lovasz_weight * lov
    total = l_front + 0.5 * l_grad + l_back + mask_weight * l_mask
    parts = dict(front=l_front.mean().item(), grad=l_grad.mean().item(), back=l_back.mean().item(),
                 mask=l_mask.mean().item())
    if metric is not None and metric.any():
        parts["scale"] = dm[metric].abs().mean().item()  # |log(predicted / true scale)|
    return total.mean(), parts


@torch.no_grad()
def validate(model, val, bs=32, metric=False):
    """Val loss, median-scaled delta1, mask IoU, and (metric val data) the median |log scale error|."""
    model.eval()
    n = len(val["rgb"])
    tot, d1s, ious, scales = 0.0, [], [], []
    for i in range(0, n, bs):
        rgb = torch.from_numpy(val["rgb"][i:i + bs]).permute(0, 3, 1, 2).float() / 255
        fr = torch.from_numpy(val["front"][i:i + bs])
        bk = torch.from_numpy(val["back"][i:i + bs])
        mk = torch.from_numpy(val["mask"][i:i + bs])
        canon = canonical_factor(torch.from_numpy(val["fov"][i:i + bs]).float(), torch.ones(len(rgb))) if metric else None
        f, b = targets(fr, bk, mk, canon)
        o = model.raw(normalize(rgb))
        l, _ = losses(o, f, b, mk, metric=torch.ones(len(rgb), dtype=torch.bool) if metric else None)
        if metric:
            scales += (o[:, 0] - torch.log(f)).mean((1, 2)).abs().tolist()
        tot += l.item() * len(rgb)
        pred = torch.exp(o[:, 0])
        for j in range(len(rgb)):  # delta1 after median scaling in log space (cheap monitor)
            r = torch.log(pred[j]) - torch.log(f[j])
            r = r - r.median()
            d1s.append((r.abs() < math.log(1.25)).float().mean().item())
            pm = torch.sigmoid(o[j, 2]) > 0.5
            if mk[j].any():
                ious.append(((pm & mk[j]).sum() / (pm | mk[j]).sum().clamp(min=1)).item())
    model.train()
    return (tot / n, float(np.mean(d1s)), float(np.mean(ious)) if ious else float("nan"),
            float(np.median(scales)) if scales else float("nan"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, nargs="+",
                    help="one or more shard folders; each step draws its batch from one of them (see --mix)")
    ap.add_argument("--mix", help="comma-separated sampling weights of the --data folders (default: equal)")
    ap.add_argument("--input", type=int, default=128,
                    help="training input size; folders rendered larger are used in native mode (windows of about "
                         "this many render pixels), folders rendered at this size in zoom mode")
    ap.add_argument("--views", choices=["native", "full"], default="native",
                    help="for folders rendered at another size than --input: native-scale windows, or full views "
                         "(zoom 1..--zoom-max of the whole render, resampled to --input)")
    ap.add_argument("--zoom-max", type=float, default=2.0, help="largest zoom of zoom-mode crops (1 = whole render)")
    ap.add_argument("--val")
    ap.add_argument("--run", required=True)
    ap.add_argument("--steps", type=int, default=7000)
    ap.add_argument("--minutes", type=float, default=0.0,
                    help="if > 0, a wall-clock budget: the cosine schedule follows elapsed time and training stops at it")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ckpt-every", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--widths", default="16,32,64,128,256")
    ap.add_argument("--init", help="start from this checkpoint's weights, or from exported .safetensors weights "
                                   "(fresh optimiser and schedule): a next stage")
    ap.add_argument("--mask-weight", type=float, default=0.5, help="weight of the mask loss in the total")
    ap.add_argument("--lovasz", type=float, default=0.0,
                    help="weight of a Lovasz-hinge IoU surrogate added to the mask loss (images with an object)")
    ap.add_argument("--metric", action="store_true",
                    help="learn canonical-camera metric depth on data sets with metric labels (the photoreal renders, "
                         "recognised by their target_size field); others stay median-normalised")
    ap.add_argument("--back-rule", type=int, default=0,
                    help="use only photoreal shards labelled under this back rule or a later one (a shard relabelled "
                         "in the background joins when it is rewritten)")
    ap.add_argument("--metric-weight", type=float, default=1.0, help="weight of the metric (mean log error) term")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(a.run, exist_ok=True)
    widths = [int(v) for v in a.widths.split(",")]
    val = load_shards(a.val) if a.val else None

    def usable(folder):
        """The folder's shards, without those labelled under an older back rule than --back-rule (photoreal
        shards carry `back_rule`; primitive shards, which have none, are exact and always used)."""
        files = sorted(f for f in glob.glob(os.path.join(folder, "*.npz")) if ".tmp" not in f and ".scene" not in f)
        if not a.back_rule:
            return files
        keep = []
        for f in files:
            with zipfile.ZipFile(f) as z:
                names = z.namelist()
            if "back_rule.npy" in names:
                if int(np.load(f)["back_rule"].min()) >= a.back_rule:
                    keep.append(f)
            elif "target_id.npy" not in names:   # not a photoreal shard
                keep.append(f)
        return keep

    def shard_count(folder):
        return len(usable(folder))

    def load(folder):
        files = usable(folder)
        if not files:
            sys.exit(f"{folder}: no usable shards (--back-rule {a.back_rule})")
        parts = [dict(np.load(f)) for f in files]
        d = {k: np.concatenate([p[k] for p in parts]) for k in ("rgb", "front", "back", "mask", "fov")}
        if all("target_size" in p for p in parts):
            d["target_size"] = True
        size = d["rgb"].shape[1]
        if size < a.input and a.views == "native":
            sys.exit(f"{folder} is rendered at {size}, smaller than --input {a.input} (native windows need larger renders)")
        print(f"train images: {len(d['rgb'])} at {size} from {folder}", flush=True)
        return dict(n=len(d["rgb"]), rgb=torch.from_numpy(d["rgb"]), front=torch.from_numpy(d["front"]),
                    back=torch.from_numpy(d["back"]), mask=torch.from_numpy(d["mask"]), shards=shard_count(folder),
                    fov=torch.from_numpy(d["fov"]).float(), metric=a.metric and "target_size" in d)

    sets = [load(f) for f in a.data]
    mix = torch.tensor([float(v) for v in a.mix.split(",")] if a.mix else [1.0] * len(sets))
    if len(mix) != len(sets):
        sys.exit("--mix needs one weight per --data folder")
    torch.manual_seed(a.seed)
    model = MRDepthUNet(widths).to(memory_format=torch.channels_last)  # ~2x faster convolutions on CPU
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-4)
    warm = 200

    elapsed0 = 0.0
    t0 = time.time()

    def progress(step):
        p = (step - warm) / max(1, a.steps - warm)
        if a.minutes > 0:
            p = max(p, (elapsed0 + time.time() - t0) / (60 * a.minutes))
        return p

    def lr_at(step):
        if step < warm:
            return a.lr * (step + 1) / warm
        return a.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(progress(step), 1.0))))

    g = torch.Generator().manual_seed(a.seed)
    step = 0
    ck = os.path.join(a.run, "ckpt.pt")
    if os.path.exists(ck):
        st = torch.load(ck, weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step = st["step"]
        g.set_state(st["gen"])
        elapsed0 = st.get("elapsed", 0.0)
        print(f"resumed at step {step}", flush=True)
    elif a.init and a.init.endswith(".safetensors"):
        # Exported weights (e.g. the committed Weights/mrdepth.safetensors, fp16): a next stage can
        # start from them on a fresh clone, without the git-ignored checkpoint.
        from safetensors.torch import load_file
        # (the scene head, fitted afterwards on frozen features by fit_scene_head.py, is not trained here)
        sd = {k: v.float() for k, v in load_file(a.init).items() if not k.startswith("scene.")}
        missing, unexpected = model.load_state_dict(sd, strict=False)
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]
        if missing or unexpected:
            sys.exit(f"--init {a.init} does not match widths {widths}: missing {missing}, unexpected {unexpected}")
        print(f"initialised from exported weights {a.init}", flush=True)
    elif a.init:
        st = torch.load(a.init, weights_only=False)
        if list(st["widths"]) != widths:
            sys.exit(f"--init {a.init} has widths {st['widths']}, this run {widths}")
        model.load_state_dict(st["model"])
        print(f"initialised from {a.init} (its step {st['step']})", flush=True)
    logf = open(os.path.join(a.run, "log.csv"), "a")
    if step == 0:
        logf.write("step,time,lr,loss,front,grad,back,mask,val_loss,val_d1,val_iou,val_scale\n")
    model.train()
    run = {}
    while step < a.steps and progress(step) < 1.0:
        for pg in opt.param_groups:
            pg["lr"] = lr_at(step)
        if step % 250 == 0:
            for k, folder in enumerate(a.data):
                if shard_count(folder) != sets[k]["shards"]:
                    # shards still being rendered in the background join the pool as they appear
                    sets[k] = load(folder)
        # one folder: no draw, so single-folder runs keep the random stream of the earlier stages
        d = sets[int(torch.multinomial(mix, 1, generator=g))] if len(sets) > 1 else sets[0]
        idx = torch.randint(0, d["n"], (a.batch,), generator=g)
        x, fr, bk, mk, crop = augment(d["rgb"][idx], d["front"][idx], d["back"][idx], d["mask"][idx], g, a.input,
                                      native=a.views == "native", zoom_max=a.zoom_max)
        canon = canonical_factor(d["fov"][idx], crop) if d["metric"] else None
        f, b = targets(fr, bk, mk, canon)
        o = model.raw(normalize(x).contiguous(memory_format=torch.channels_last))
        metric = torch.full((a.batch,), d["metric"], dtype=torch.bool)
        loss, parts = losses(o, f, b, mk, a.mask_weight, a.lovasz, metric=metric, metric_weight=a.metric_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        step += 1
        for k, v in dict(loss=loss.item(), **parts).items():
            run[k] = 0.98 * run.get(k, v) + 0.02 * v
        if step % 50 == 0:
            print(f"step {step} {time.time() - t0:.0f}s lr {lr_at(step):.5f} " +
                  " ".join(f"{k} {v:.4f}" for k, v in run.items()), flush=True)
        if step % a.ckpt_every == 0 or step == a.steps or progress(step) >= 1.0:
            vl = validate(model, val, metric=a.metric and "target_size" in val) if val is not None else (float("nan"),) * 4
            logf.write(f"{step},{time.time() - t0:.1f},{lr_at(step):.6f},{run['loss']:.5f},{run['front']:.5f},"
                       f"{run['grad']:.5f},{run['back']:.5f},{run['mask']:.5f},{vl[0]:.5f},{vl[1]:.4f},{vl[2]:.4f},{vl[3]:.4f}\n")
            logf.flush()
            print(f"== step {step} val loss {vl[0]:.4f} d1(median-scaled) {vl[1]:.4f} iou {vl[2]:.4f} "
                  f"|log scale| {vl[3]:.4f}", flush=True)
            tmp = ck + ".tmp"
            torch.save(dict(model=model.state_dict(), opt=opt.state_dict(), step=step, gen=g.get_state(), elapsed=elapsed0 + time.time() - t0,
                            widths=widths, args=vars(a)), tmp)
            os.replace(tmp, ck)
    print("done", flush=True)


if __name__ == "__main__":
    main()
