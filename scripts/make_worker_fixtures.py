#!/usr/bin/env python3
"""Writes the small photos served by the worker tests' HTTP server
(Tests/WorkerTestSupport/Fixtures). Deterministic: run with /opt/venv/bin/python."""
from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parent.parent / "Tests" / "WorkerTestSupport" / "Fixtures"


def scene(width: int, height: int, seed: int) -> Image.Image:
    img = Image.new("RGB", (width, height), (200 - seed * 10, 180, 160 + seed * 5))
    draw = ImageDraw.Draw(img)
    draw.rectangle([width // 4, height // 3, 3 * width // 4, height - 4], fill=(90 + seed * 20, 60, 40))
    draw.ellipse([width // 3, 2, 2 * width // 3, height // 3], fill=(30, 120, 200 - seed * 10))
    return img


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    sizes = [(64, 48), (48, 64), (80, 40), (56, 56)]
    for i, (w, h) in enumerate(sizes):
        scene(w, h, i).save(OUT / f"photo_{i}.jpg", quality=85)
        scene(h, w, i + 1).save(OUT / f"photo_{i}.png")


if __name__ == "__main__":
    main()
