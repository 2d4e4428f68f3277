"""Rendered data sets on disk: shards of `render()` outputs, and a torch Dataset over them.

Seeds: training uses seeds [0, N); the held-out evaluation set uses seeds starting at EVAL_SEED_BASE,
which no training command ever uses.
"""
from __future__ import annotations

import glob
import os

import numpy as np

EVAL_SEED_BASE = 10_000_000
VAL_SEED_BASE = 9_000_000  # small validation set for monitoring (neither train nor held-out eval)


def render_shard(path: str, seeds, size: int):
    """Render `seeds` at size x size and save them to one .npz shard."""
    from .render import render

    rgb, front, back, mask, room, fov = [], [], [], [], [], []
    for s in seeds:
        o = render(int(s), size)
        rgb.append(o["rgb"])
        front.append(o["front"])
        back.append(o["back"])
        mask.append(o["mask"])
        room.append(o["kind"] == "room")
        fov.append(o["fov"])
    tmp = path + ".tmp.npz"
    np.savez(tmp, seeds=np.asarray(seeds, np.int64), rgb=np.stack(rgb), front=np.stack(front).astype(np.float32),
             back=np.stack(back).astype(np.float32), mask=np.stack(mask), room=np.asarray(room), fov=np.asarray(fov, np.float32))
    os.replace(tmp, path)


def load_shards(folder: str):
    """Concatenate every shard in `folder` (sorted by name)."""
    # Not the temporaries of a shard being written (".tmp"), nor the per-scene parts of one being
    # rendered scene by scene after a Blender crash (".scene").
    files = sorted(f for f in glob.glob(os.path.join(folder, "*.npz")) if ".tmp" not in f and ".scene" not in f)
    if not files:
        raise FileNotFoundError(f"no shards in {folder}")
    parts = [dict(np.load(f)) for f in files]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def normalise_depth(front: np.ndarray, back: np.ndarray, mask: np.ndarray):
    """Divide by the median front depth of the foreground (whole image when the mask is empty)."""
    m = np.median(front[mask]) if mask.any() else np.median(front)
    return front / m, back / m
