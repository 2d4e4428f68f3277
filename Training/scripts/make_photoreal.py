"""Render the photoreal data set (Blender Cycles, Sweet Home 3D furniture, real photographs) into shards.

  python Training/scripts/make_photoreal.py --split train --scenes 2500 --out Training/data/photoreal/train
  python Training/scripts/make_photoreal.py --split eval --scenes 150 --out Training/data/photoreal/eval
  python Training/scripts/make_photoreal.py --split val --scenes 32 --out Training/data/photoreal/val

Each shard holds --per-shard scenes x --views views (`{split}_{first scene:07d}.npz`, the format of
mrdepth.dataset plus photoreal fields; see Training/README.md). Train scenes use only the training models,
val and eval scenes only the held-out models (Training/photoreal/heldout_models.txt). Existing shards are
kept, so the same command resumes; `--minutes` stops starting new shards after a wall-clock budget; a
Blender crash costs its shard a retry (up to 3). Every shard is a function of its scene seeds.
Writes <out>/manifest.json (shards, views, seconds) and prints the rate in images per hour.

`--install` first installs the Debian packages it needs (blender, sweethome3d-furniture, the wallpapers,
python3-numpy, python3-pil) when they are missing.
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor

import numpy.lib.format as fmt

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from photoreal import assets as A  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(HERE), "photoreal", "blender_render.py")


def install_missing():
    missing = []
    for p in A.APT_PACKAGES:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True)
        if "install ok installed" not in r.stdout:
            missing.append(p)
    if missing:
        print("installing", " ".join(missing), flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], check=True, env=env)


def render_shard(path, scenes, a, log):
    cmd = [a.blender, "-b", "--factory-startup", "--python", SCRIPT, "--", "--out", path, "--split", a.split,
           "--scenes", ",".join(map(str, scenes)), "--views", str(a.views), "--size", str(a.size),
           "--samples", str(a.samples), "--threads", str(a.threads), "--cache", a.cache]
    for attempt in range(3):
        t0 = time.time()
        with open(path + ".log", "w") as lf:
            rc = subprocess.run(["nice", "-n", str(a.nice), *cmd], stdout=lf, stderr=subprocess.STDOUT).returncode
        if rc == 0 and os.path.exists(path):
            os.remove(path + ".log")
            return time.time() - t0
        log(f"{os.path.basename(path)}: blender exited {rc} (attempt {attempt + 1}), see {path}.log")
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=["train", "val", "eval"], required=True)
    ap.add_argument("--scenes", type=int, required=True, help="number of scenes (each seen from --views cameras)")
    ap.add_argument("--start", type=int, default=0, help="first scene seed")
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--per-shard", type=int, default=4, help="scenes per shard")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--workers", type=int, default=1, help="Blender processes at once")
    ap.add_argument("--threads", type=int, default=0, help="render threads per process (default: cores / workers)")
    ap.add_argument("--nice", type=int, default=19, help="scheduling priority of the renders (background work)")
    ap.add_argument("--minutes", type=float, default=0.0, help="stop starting shards after this wall-clock budget")
    ap.add_argument("--cache", default=A.default_cache())
    ap.add_argument("--blender", default=shutil.which("blender") or "blender")
    ap.add_argument("--install", action="store_true", help="apt-get install the Debian packages that are missing")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.install:
        install_missing()
    if not shutil.which(a.blender):
        sys.exit("blender not found: apt-get install blender (or pass --install)")
    a.threads = a.threads or max(1, (os.cpu_count() or 1) // a.workers)
    os.makedirs(a.out, exist_ok=True)
    A.extract_catalogs(a.cache)
    A.prepare_photos(a.cache)
    log = lambda s: print(f"[{time.strftime('%H:%M:%S')}] {s}", flush=True)  # noqa: E731
    jobs = []
    for i in range(a.start, a.start + a.scenes, a.per_shard):
        scenes = list(range(i, min(i + a.per_shard, a.start + a.scenes)))
        jobs.append((os.path.join(a.out, f"{a.split}_{scenes[0]:07d}.npz"), scenes))
    todo = [j for j in jobs if not os.path.exists(j[0])]
    log(f"{len(jobs) - len(todo)} of {len(jobs)} shards exist; rendering {len(todo)} with {a.workers} worker(s) x "
        f"{a.threads} thread(s), {a.views} views per scene at {a.size}x{a.size}, {a.samples} samples")
    t0 = time.time()
    done_views = [0]

    def run(job):
        path, scenes = job
        if a.minutes > 0 and time.time() - t0 > 60 * a.minutes:
            return None
        secs = render_shard(path, scenes, a, log)
        if secs is not None:
            done_views[0] += len(scenes) * a.views
            rate = done_views[0] / max(time.time() - t0, 1e-6) * 3600
            log(f"wrote {os.path.basename(path)} ({len(scenes) * a.views} views, {secs:.0f} s); "
                f"{done_views[0]} views this run, {rate:.0f} images/hour")
        return secs

    with ThreadPoolExecutor(a.workers) as ex:
        list(ex.map(run, todo))
    shards = sorted(f for f in glob.glob(os.path.join(a.out, f"{a.split}_*.npz")) if ".tmp" not in f)
    views = 0
    for f in shards:  # count views from the npz member's header without loading it
        with zipfile.ZipFile(f) as z, z.open("fov.npy") as fh:
            fmt.read_magic(fh)
            views += fmt.read_array_header_1_0(fh)[0][0]
    disk = sum(os.path.getsize(f) for f in shards)
    man = dict(split=a.split, size=a.size, samples=a.samples, views_per_scene=a.views, shards=len(shards),
               views=int(views), disk_bytes=disk, missing=[os.path.basename(p) for p, _ in jobs if not os.path.exists(p)])
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(man, f, indent=1)
    el = time.time() - t0
    log(f"{a.out}: {len(shards)} shards, {views} views, {disk / 2 ** 20:.0f} MiB; this run {done_views[0]} views in "
        f"{el / 60:.1f} min ({done_views[0] / max(el, 1e-6) * 3600:.0f} images/hour)")


if __name__ == "__main__":
    main()
