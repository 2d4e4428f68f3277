"""Render the photoreal data set (Blender Cycles, Sweet Home 3D furniture, real photographs) into shards.

  python Training/scripts/make_photoreal.py --split train --scenes 2500 --out Training/data/photoreal/train
  python Training/scripts/make_photoreal.py --split eval --scenes 150 --out Training/data/photoreal/eval
  python Training/scripts/make_photoreal.py --split val --scenes 32 --out Training/data/photoreal/val

Each shard holds --per-shard scenes x --views views (`{split}_{first scene:07d}.npz`, the format of
mrdepth.dataset plus photoreal fields; see Training/README.md). Train scenes use only the training models,
val and eval scenes only the held-out models (Training/photoreal/heldout_models.txt). Existing shards are
kept, so the same command resumes; `--minutes` stops starting new shards after a wall-clock budget; a
Blender crash costs its shard one retry, then it is rendered scene by scene and the scenes that crash
every time are skipped (listed in the manifest). Every shard is a function of its scene seeds.
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


def blender(path, scenes, a):
    """One Blender process rendering `scenes` into `path`; True when it wrote the file."""
    cmd = [a.blender, "-b", "--factory-startup", "--python", SCRIPT, "--", "--out", path, "--split", a.split,
           "--scenes", ",".join(map(str, scenes)), "--views", str(a.views), "--size", str(a.size),
           "--samples", str(a.samples), "--threads", str(a.threads), "--cache", a.cache]
    with open(path + ".log", "w") as lf:
        rc = subprocess.run(["nice", "-n", str(a.nice), *cmd], stdout=lf, stderr=subprocess.STDOUT).returncode
    if rc == 0 and os.path.exists(path):
        os.remove(path + ".log")
        return True
    return False


def merge_shards(parts, path):
    """Concatenates per-scene shards (every array is per view) into `path`, atomically."""
    import numpy as np
    loaded = [np.load(p) for p in parts]
    out = {k: np.concatenate([z[k] for z in loaded]) for k in loaded[0].files}
    tmp = path + ".tmp.npz"
    np.savez(tmp, **out)
    os.replace(tmp, path)


def render_shard(path, scenes, a, log):
    """Renders a shard; returns (seconds, skipped scene seeds) or None when nothing could be rendered.

    Blender 3.4 segfaults reproducibly on a few scenes. A shard whose process crashes is retried once
    whole, then scene by scene (two tries each): the scenes that still crash are skipped and listed in
    `<shard>.skipped.json` and the manifest, and the rest of the shard is kept."""
    t0 = time.time()
    for attempt in range(2):
        if blender(path, scenes, a):
            return time.time() - t0, []
        log(f"{os.path.basename(path)}: blender crashed (attempt {attempt + 1}), see {path}.log")
        if len(scenes) == 1:
            continue
        break
    if len(scenes) == 1:
        return None
    parts, skipped = [], []
    for s in scenes:
        part = f"{path[:-4]}.scene{s:07d}.part"  # not *.npz: readers of the folder never see it
        if os.path.exists(part) or blender(part, [s], a) or blender(part, [s], a):
            parts.append(part)
        else:
            skipped.append(s)
            log(f"{os.path.basename(path)}: scene {s} crashes Blender every time; skipped (see {part}.log)")
    if not parts:
        return None
    with open(path[:-4] + ".skipped.json", "w") as f:
        json.dump(skipped, f)
    merge_shards(parts, path)
    for p in parts:
        os.remove(p)
    return time.time() - t0, skipped


def current_back_rule():
    with open(SCRIPT) as f:
        for line in f:
            if line.startswith("BACK_RULE = "):
                return int(line.split("=")[1])
    raise RuntimeError("no BACK_RULE in " + SCRIPT)


def shard_back_rule(path):
    """The shard's back rule (1 when it has no back_rule field), read without loading the arrays."""
    import numpy as np
    with zipfile.ZipFile(path) as z:
        if "back_rule.npy" not in z.namelist():
            return 1
    return int(np.load(path)["back_rule"].min())


def relabel_all(a, log, batch=4):
    rule = current_back_rule()
    shards = sorted(f for f in glob.glob(os.path.join(a.out, f"{a.split}_*.npz")) if ".tmp" not in f and ".scene" not in f)
    todo = [f for f in shards if shard_back_rule(f) < rule]
    log(f"{len(shards) - len(todo)} of {len(shards)} shards have back rule {rule}; relabelling {len(todo)}")
    t0 = time.time()

    def run(paths):
        if a.minutes > 0 and time.time() - t0 > 60 * a.minutes:
            return
        cmd = ["nice", "-n", str(a.nice), a.blender, "-b", "--factory-startup", "--python", SCRIPT, "--", "--relabel",
               "--out", ",".join(paths), "--split", a.split, "--threads", "1", "--cache", a.cache]
        r = subprocess.run(cmd, capture_output=True, text=True)
        for line in r.stdout.splitlines():
            if line.startswith("[photoreal]"):
                log(line[12:])
        if r.returncode != 0:
            log(f"relabelling {paths} failed (exit {r.returncode}): {(r.stdout + r.stderr)[-500:]}")

    with ThreadPoolExecutor(a.workers) as ex:
        list(ex.map(run, [todo[i:i + batch] for i in range(0, len(todo), batch)]))
    left = sum(shard_back_rule(f) < rule for f in shards)
    log(f"{a.out}: {len(shards) - left} of {len(shards)} shards have back rule {rule} ({time.time() - t0:.0f} s)")
    return 1 if left else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=["train", "val", "eval"], required=True)
    ap.add_argument("--scenes", type=int, help="number of scenes (each seen from --views cameras)")
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
    ap.add_argument("--relabel", action="store_true",
                    help="render nothing: recompute the back depth of the shards in --out made under an older back "
                         "rule (blender_render.BACK_RULE), from their scenes and stored cameras")
    ap.add_argument("--install", action="store_true", help="apt-get install the Debian packages that are missing")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.scenes is None and not a.relabel:
        ap.error("--scenes is required (except with --relabel)")
    if a.install:
        install_missing()
    if not shutil.which(a.blender):
        sys.exit("blender not found: apt-get install blender (or pass --install)")
    a.threads = a.threads or max(1, (os.cpu_count() or 1) // a.workers)
    os.makedirs(a.out, exist_ok=True)
    A.extract_catalogs(a.cache)
    A.prepare_photos(a.cache)
    log = lambda s: print(f"[{time.strftime('%H:%M:%S')}] {s}", flush=True)  # noqa: E731
    if a.relabel:
        return relabel_all(a, log)
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
        if os.path.exists(path):  # made meanwhile by another run on the same folder
            return None
        got = render_shard(path, scenes, a, log)
        if got is None:
            return None
        secs, skipped = got
        n = (len(scenes) - len(skipped)) * a.views
        done_views[0] += n
        rate = done_views[0] / max(time.time() - t0, 1e-6) * 3600
        log(f"wrote {os.path.basename(path)} ({n} views, {secs:.0f} s); {done_views[0]} views this run, "
            f"{rate:.0f} images/hour")
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
               views=int(views), disk_bytes=disk, missing=[os.path.basename(p) for p, _ in jobs if not os.path.exists(p)],
               skipped_scenes=sorted(s for f in glob.glob(os.path.join(a.out, f"{a.split}_*.skipped.json"))
                                     for s in json.load(open(f))))
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(man, f, indent=1)
    el = time.time() - t0
    log(f"{a.out}: {len(shards)} shards, {views} views, {disk / 2 ** 20:.0f} MiB; this run {done_views[0]} views in "
        f"{el / 60:.1f} min ({done_views[0] / max(el, 1e-6) * 3600:.0f} images/hour)")


if __name__ == "__main__":
    sys.exit(main())
