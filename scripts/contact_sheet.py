"""Contact sheet of what the engine makes: photo | silhouette | model preview, one row per input.

  swift build -c release --product mesh
  /opt/venv/bin/python scripts/contact_sheet.py --out docs/contact_sheet.jpg
  /opt/venv/bin/python scripts/contact_sheet.py --mesh .build-old/release/mesh --out /tmp/before.jpg   # another build

Rows: the bundled samples (samples/*.jpg); real photographs that scikit-image ships (a cup of coffee, a
cat, the Middlebury 2014 motorcycle: never used for training or tuning); and, when rendered
(Training/scripts/make_photoreal.py), views of held-out furniture models from the photoreal val split.
Each input runs through `mesh --mode auto --preview --mask-out --json`; the row's caption gives the mode,
the volume grid and the milliseconds of the depth and mesh stages. Needs numpy, pillow and
scikit-image (`python3-skimage`, or pip).
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image, ImageDraw

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def real_photos(tmp):
    try:
        import skimage.data as data
    except ImportError:
        print("scikit-image missing: no real photos on the sheet", file=sys.stderr)
        return []
    out = []
    for name, image in [("coffee", data.coffee()), ("chelsea", data.chelsea()), ("motorcycle", data.stereo_motorcycle()[0])]:
        path = os.path.join(tmp, f"{name}.png")
        Image.fromarray(image).convert("RGB").save(path)
        out.append((name, path))
    return out


def heldout_renders(tmp, count, folder):
    files = sorted(glob.glob(os.path.join(folder, "val_*.npz")))
    out = []
    for f in files:
        z = np.load(f)
        for i in range(len(z["rgb"])):
            if len(out) >= count:
                return out
            # views with a whole target of a fair size: the sheet shows objects, not cut-offs
            m = z["mask"][i]
            if z["target_id"][i] == "" or m.mean() < 0.08 or m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any():
                continue
            name = f"heldout_{os.path.basename(f)[4:11]}_{i}"
            path = os.path.join(tmp, name + ".png")
            Image.fromarray(z["rgb"][i]).save(path)
            out.append((f"{name} ({z['target_id'][i]})", path))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mesh", default=os.path.join(ROOT, ".build", "release", "mesh"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--weights", default=os.path.join(ROOT, "Weights"), help="weights folder (default: the committed ones)")
    ap.add_argument("--heldout", type=int, default=4, help="held-out renders on the sheet")
    ap.add_argument("--val", default=os.path.join(ROOT, "Training", "data", "photoreal", "val"))
    ap.add_argument("--tile", type=int, default=200)
    a = ap.parse_args()
    T = a.tile
    with tempfile.TemporaryDirectory() as tmp:
        inputs = [(os.path.splitext(os.path.basename(p))[0], p) for p in sorted(glob.glob(os.path.join(ROOT, "samples", "*.jpg")))]
        inputs += real_photos(tmp) + heldout_renders(tmp, a.heldout, a.val)
        rows = []
        for label, path in inputs:
            stem = os.path.splitext(os.path.basename(path))[0]
            out = os.path.join(tmp, "out")
            os.makedirs(out, exist_ok=True)
            r = subprocess.run([a.mesh, path, "-o", out + "/", "--preview", out + "/", "--mask-out", out + "/", "--json",
                                "--threads", "2"], capture_output=True, text=True,
                               env=dict(os.environ, MYROOM_WEIGHTS=a.weights))
            report = json.loads(r.stdout)[0] if r.stdout.strip() else {"ok": False, "error": r.stderr.strip()}
            photo = Image.open(path).convert("RGB")
            tiles = [photo]
            if report.get("ok"):
                s = report["summary"]
                ms = {m["stage"]: m["milliseconds"] for m in s["milliseconds"]}
                caption = (f"{label}: {s['mode']}, {s['faces']} faces, grid {s.get('volumeResolution') or '-'}, "
                           f"depth {ms['depth']:.0f} ms, mesh {ms['mesh']:.0f} ms")
                tiles += [Image.open(os.path.join(out, stem + "_mask.png")).convert("RGB"),
                          Image.open(os.path.join(out, stem + "_preview.png")).convert("RGB")]
            else:
                caption = f"{label}: {report.get('errorCode') or ''} {report.get('error', '')}"[:90]
            rows.append((caption, tiles))
            print(caption, flush=True)
        sheet = Image.new("RGB", (3 * T, len(rows) * (T + 16)), "white")
        draw = ImageDraw.Draw(sheet)
        for i, (caption, tiles) in enumerate(rows):
            y = i * (T + 16)
            draw.text((4, y + 2), caption, fill=(0, 0, 0))
            for j, t in enumerate(tiles):
                t = t.copy()
                t.thumbnail((T, T))
                sheet.paste(t, (j * T + (T - t.width) // 2, y + 16 + (T - t.height) // 2))
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        sheet.save(a.out, quality=85)
        print(f"{a.out}: {len(rows)} rows, {os.path.getsize(a.out) / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
