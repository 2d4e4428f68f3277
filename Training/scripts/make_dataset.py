"""Render a training or held-out set into shards.

  python Training/scripts/make_dataset.py --split train --count 8000 --size 128 --out Training/data/train128
  python Training/scripts/make_dataset.py --split eval  --count 300  --size 256 --out Training/data/eval256

Train seeds are start..start+count-1 (< 9,000,000); val seeds VAL_SEED_BASE + i; eval seeds are
EVAL_SEED_BASE + i (never used for training or model selection).
Existing shards are kept, so an interrupted run resumes.
"""
import argparse
import os
import sys
from multiprocessing import Pool

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from mrdepth.dataset import EVAL_SEED_BASE, VAL_SEED_BASE, render_shard  # noqa: E402


def _job(a):
    path, seeds, size = a
    if not os.path.exists(path):
        render_shard(path, seeds, size)
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=["train", "val", "eval"], required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--shard", type=int, default=250)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    base = {"train": 0, "val": VAL_SEED_BASE, "eval": EVAL_SEED_BASE}[a.split]
    if a.split == "train" and a.start + a.count > VAL_SEED_BASE:
        sys.exit("training seeds would overlap the held-out seeds")
    jobs = []
    for i in range(a.start, a.start + a.count, a.shard):
        seeds = list(range(base + i, base + min(i + a.shard, a.start + a.count)))
        jobs.append((os.path.join(a.out, f"{a.split}_{seeds[0]:09d}.npz"), seeds, a.size))
    if a.workers > 1:
        with Pool(a.workers) as p:
            for path in p.imap_unordered(_job, jobs):
                print("wrote", path, flush=True)
    else:
        for j in jobs:
            print("wrote", _job(j), flush=True)


if __name__ == "__main__":
    main()
