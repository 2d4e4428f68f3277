"""Evaluation metrics (MiDaS protocol) and the two no-network baselines.

Depth predictions are compared after a least-squares scale-and-shift alignment in disparity space:
    s, t = argmin sum_valid (s * (1 / pred) + t - 1 / gt)^2
the aligned disparity is clamped to >= 1 / DEPTH_CAP and inverted back to depth; then
    AbsRel = mean(|d - gt| / gt),  delta1 = mean(max(d / gt, gt / d) < 1.25)
per image, averaged over images. Back depth is aligned with the SAME (s, t) as the front depth of the
image (the mesher uses both in one frame) and scored on ground-truth foreground pixels. The obj_* variants
fit (s, t) on the object's front pixels only.
"""
from __future__ import annotations

import numpy as np

DEPTH_CAP = 30.0  # metres; equals the renderer's depth cap


def align_disparity(pred_depth, gt_depth, valid):
    x = 1.0 / np.maximum(pred_depth[valid].astype(np.float64), 1e-8)
    y = 1.0 / gt_depth[valid].astype(np.float64)
    A = np.stack([x, np.ones_like(x)], 1)
    (s, t), *_ = np.linalg.lstsq(A, y, rcond=None)
    return float(s), float(t)


def apply_alignment(pred_depth, s, t, cap=DEPTH_CAP):
    disp = s / np.maximum(pred_depth.astype(np.float64), 1e-8) + t
    disp = np.maximum(disp, 1.0 / cap)
    return 1.0 / disp


def depth_errors(pred, gt, valid):
    p, g = pred[valid], gt[valid].astype(np.float64)
    absrel = float(np.mean(np.abs(p - g) / g))
    d1 = float(np.mean(np.maximum(p / g, g / p) < 1.25))
    return absrel, d1


def mask_iou(prob, gt, thr=0.5):
    pm = prob > thr
    union = (pm | gt).sum()
    return float((pm & gt).sum() / union) if union else 1.0


def score_image(front_p, back_p, mask_p, front_g, back_g, mask_g):
    """All metrics for one image; depth maps in any units (alignment removes scale and shift)."""
    valid = np.isfinite(front_g) & (front_g > 0)
    s, t = align_disparity(front_p, front_g, valid)
    fa = apply_alignment(front_p, s, t)
    out = {}
    out["front_absrel"], out["front_d1"] = depth_errors(fa, front_g, valid)
    if mask_g.any():
        out["fg_front_absrel"], out["fg_front_d1"] = depth_errors(fa, front_g, valid & mask_g)
        ba = apply_alignment(back_p, s, t)
        out["back_absrel"], out["back_d1"] = depth_errors(ba, back_g, valid & mask_g)
        out["mask_iou"] = mask_iou(mask_p, mask_g)
        # object-aligned: scale and shift fitted on the object's own front pixels (shape + thickness of the
        # object alone, independent of how well the background was predicted)
        fg = valid & mask_g
        if fg.sum() >= 2:
            so, to = align_disparity(front_p, front_g, fg)
            out["obj_front_absrel"], out["obj_front_d1"] = depth_errors(apply_alignment(front_p, so, to), front_g, fg)
            out["obj_back_absrel"], out["obj_back_d1"] = depth_errors(apply_alignment(back_p, so, to), back_g, fg)
    else:
        out["room_fp_rate"] = float((mask_p > 0.5).mean())
    return out


def baseline_constant(h, w):
    """Constant depth; back = front; mask = the whole image."""
    f = np.ones((h, w))
    return f, f, np.ones((h, w))


def baseline_ground_plane(h, w):
    """'Lower in the image is nearer': disparity grows linearly towards the bottom row; back = front;
    mask = the centre box (middle half of the image in each direction)."""
    rows = (np.arange(h) + 0.5) / h
    f = np.repeat((1.0 / (0.05 + rows))[:, None], w, 1)
    m = np.zeros((h, w))
    m[h // 4:h - h // 4, w // 4:w - w // 4] = 1
    return f, f, m


def summarise(rows):
    keys = sorted({k for r in rows for k in r})
    return {k: float(np.mean([r[k] for r in rows if k in r])) for k in keys}
