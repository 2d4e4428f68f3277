#!/usr/bin/env python3
"""Times the whole `mesh` command on photos (release builds), per stage, one build or several side by side.

    swift build -c release --product mesh
    python3 Benchmarks/bench_mesh.py --mesh .build/release/mesh --photo samples/cube.jpg --runs 10
    # two builds (e.g. an older commit built with --scratch-path .build-old) on every sample, interleaved:
    python3 Benchmarks/bench_mesh.py --mesh .build-old/release/mesh --label before \\
        --mesh .build/release/mesh --label after --photo samples/*.jpg --runs 10 -- --mode object

Each run is a fresh process (weights loaded each time, as a user's command would), with
`--json`; the table gives the median and the fastest run of every stage the engine reports
(decode, depth, mesh, write) and of the whole process, wall clock. With several builds, the runs
alternate between them (ABAB..., the order turned every round), so a load that comes and goes on a
shared machine falls on all of them alike, and the last table gives each build's median per-round
ratio to the first build, per stage. Extra arguments after `--` go to mesh (e.g. `-- --threads 1
--mode relief`). The first run of every build on every photo warms the page cache and is not counted.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def run_once(mesh, photo, rest, tmp):
    cmd = [mesh, photo, "--json", "-o", os.path.join(tmp, "m.obj")] + rest
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    wall = (time.perf_counter() - t0) * 1000
    summary = json.loads(out)[0]["summary"]
    stages = {s["stage"]: s["milliseconds"] for s in summary["milliseconds"]}
    stages["process (wall)"] = wall
    return summary, stages


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mesh", action="append", help="mesh binary (repeatable; default .build/release/mesh)")
    ap.add_argument("--label", action="append", help="label of each --mesh, in order")
    ap.add_argument("--photo", nargs="+", default=["samples/cube.jpg"])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("rest", nargs="*", help="extra mesh arguments (after --)")
    args = ap.parse_args()
    meshes = args.mesh or [".build/release/mesh"]
    labels = (args.label or []) + [os.path.dirname(os.path.dirname(m)) or m for m in meshes[len(args.label or []):]]
    for m in meshes:
        if not os.access(m, os.X_OK):
            sys.exit(f"{m}: not an executable (build it with swift build -c release --product mesh)")
    print(f"{args.runs} runs per build and photo, cores {os.cpu_count()}, mesh arguments {args.rest or 'none'}")
    ratios = {}  # label -> stage -> [per-round ratio to the first build, over all photos]
    with tempfile.TemporaryDirectory() as tmp:
        for photo in args.photo:
            times = {label: {} for label in labels}
            info = {}
            for r in range(args.runs + 1):
                order = list(zip(meshes, labels))
                if r % 2:
                    order.reverse()
                round_stages = {}
                for mesh, label in order:
                    summary, stages = run_once(mesh, photo, args.rest, tmp)
                    if r == 0:
                        info[label] = summary
                        continue
                    round_stages[label] = stages
                    for k, v in stages.items():
                        times[label].setdefault(k, []).append(v)
                if r and len(labels) > 1:
                    first = round_stages[labels[0]]
                    for label in labels[1:]:
                        for k, v in round_stages[label].items():
                            if first.get(k):
                                ratios.setdefault(label, {}).setdefault(k, []).append(v / first[k])
            s = info[labels[0]]
            print(f"\nphoto {photo}: {s['photoWidth']}x{s['photoHeight']}, network {s['networkWidth']}x{s['networkHeight']}")
            for label in labels:
                s = info[label]
                print(f"  {label}: mode {s['mode']}, {s['vertices']} vertices, {s['faces']} faces")
            header = "".join(f"{label + ' median':>18}{'fastest':>10}" for label in labels)
            print(f"{'stage':<16}{header}")
            for stage in times[labels[0]]:
                row = "".join(f"{statistics.median(times[lb][stage]):>18.1f}{min(times[lb][stage]):>10.1f}"
                              for lb in labels if stage in times[lb])
                print(f"{stage:<16}{row}")
    if len(labels) > 1:
        print(f"\nmedian per-round ratio to {labels[0]} (all photos; < 1 is faster)")
        for label in labels[1:]:
            print(f"  {label}: " + ", ".join(f"{k} {statistics.median(v):.2f}x" for k, v in ratios[label].items()))


if __name__ == "__main__":
    sys.exit(main())
