#!/usr/bin/env python3
"""Renders the sample photos in samples/ with the project's own scene renderer
(Training/mrdepth/render.py): furniture scenes at 1024x768, saved as JPEG.

    /opt/venv/bin/python scripts/make_samples.py            # needs numpy, pillow, scikit-image

Seeds are fixed, so the samples are reproducible.
"""
import os
import sys

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "Training"))
from mrdepth.render import render  # noqa: E402

OUT = os.path.join(ROOT, "samples")
WIDTH, HEIGHT = 1024, 768


def main():
    wanted = {"object": 3, "room": 1}
    names = {"object": ["lamp_and_chair", "cube", "dresser"], "room": ["room"]}
    os.makedirs(OUT, exist_ok=True)
    seed = 9_000_000  # far from the training and evaluation seeds
    while any(wanted.values()):
        seed += 1
        scene = render(seed, width=WIDTH, height=HEIGHT, room_prob=0.5)
        kind = scene["kind"]
        if wanted.get(kind, 0) == 0:
            continue
        fraction = scene["mask"].mean()
        if kind == "object" and not 0.08 <= fraction <= 0.6:
            continue
        name = names[kind][len(names[kind]) - wanted[kind]]
        wanted[kind] -= 1
        rgb = scene["rgb"]  # uint8, already gamma-encoded with camera noise and JPEG-like artefacts
        Image.fromarray(rgb).save(os.path.join(OUT, f"{name}.jpg"), "JPEG", quality=92)
        print(f"{name}.jpg: seed {seed}, {kind}, mask {fraction:.2f}, fov {scene['fov']:.1f}")


if __name__ == "__main__":
    main()
