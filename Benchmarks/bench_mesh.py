#!/usr/bin/env python3
"""Times the whole `mesh` command on a photo (release build), per stage.

    swift build -c release --product mesh
    python3 Benchmarks/bench_mesh.py --mesh .build/release/mesh --photo samples/cube.jpg --runs 10

Each run is a fresh process (weights loaded each time, as a user's command would), with
`--json`; the table gives the median and the fastest run of every stage the engine reports
(decode, depth, mesh, write) and of the whole process, wall clock. Extra arguments after
`--` go to mesh (e.g. `-- --threads 1 --mode relief`).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mesh", default=".build/release/mesh")
    ap.add_argument("--photo", default="samples/cube.jpg")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("rest", nargs="*", help="extra mesh arguments (after --)")
    args = ap.parse_args()
    stages = {}
    walls = []
    info = None
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs + 1):
            cmd = [args.mesh, args.photo, "--json", "-o", os.path.join(tmp, "m.obj")] + args.rest
            t0 = time.perf_counter()
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            wall = (time.perf_counter() - t0) * 1000
            report = json.loads(out)[0]
            if i == 0:
                info = report["summary"]  # the first run warms the page cache; not counted
                continue
            walls.append(wall)
            for s in report["summary"]["milliseconds"]:
                stages.setdefault(s["stage"], []).append(s["milliseconds"])
    s = info
    print(f"photo {args.photo}: {s['photoWidth']}x{s['photoHeight']}, network {s['networkWidth']}x{s['networkHeight']}, "
          f"mode {s['mode']}, {s['vertices']} vertices, {s['faces']} faces, {args.runs} runs, cores {os.cpu_count()}")
    print(f"{'stage':<16}{'median ms':>12}{'fastest ms':>12}")
    total = 0.0
    for name, values in stages.items():
        total += statistics.median(values)
        print(f"{name:<16}{statistics.median(values):>12.1f}{min(values):>12.1f}")
    print(f"{'engine total':<16}{total:>12.1f}")
    print(f"{'process (wall)':<16}{statistics.median(walls):>12.1f}{min(walls):>12.1f}")


if __name__ == "__main__":
    sys.exit(main())
