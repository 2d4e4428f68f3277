#!/usr/bin/env python3
"""Regenerates Tests/ImagingTests/Fixtures: every JPEG/PNG variant the decoder must
handle, each with a reference decode (raw RGB/RGBA bytes) made by Pillow / pypng.

    /opt/venv/bin/pip install pillow pypng numpy
    python3 scripts/make_imaging_fixtures.py

Needs gcc and libjpeg headers (for the YCCK writer). Deterministic: same bytes each run
for the same library versions. The Swift tests never run this; they read the output.
"""
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import png  # pypng: writes every PNG bit depth, palette and interlacing
from PIL import Image, ImageOps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "ImagingTests", "Fixtures")
W, H = 37, 23  # odd sizes catch stride and subsampling-edge bugs

manifest = {}


def picture(w=W, h=H, seed=0):
    """A smooth, asymmetric colour picture (JPEG-friendly) with a few hard edges."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * x / (w - 1)
    g = 255 * y / (h - 1)
    b = 128 + 100 * np.sin(x / 4.0) * np.cos(y / 5.0)
    img = np.stack([r, g, b], axis=-1)
    img[2:7, 3:12] = [250, 30, 30]  # a red block near the top-left: shows orientation
    img[h - 6:h - 2, w - 9:w - 3] = [20, 20, 220]
    return np.clip(img.round(), 0, 255).astype(np.uint8)


def save_ref(name, arr):
    """Stores the reference decode as raw bytes and records it in the manifest."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    h, w, c = arr.shape
    ref = name + ".ref"
    with open(os.path.join(OUT, ref), "wb") as f:
        f.write(arr.tobytes())
    manifest[name] = {"reference": ref, "width": w, "height": h, "channels": c}


def pil_reference(path):
    im = Image.open(path)
    im = ImageOps.exif_transpose(im)
    mode = "RGBA" if ("A" in im.mode or "transparency" in im.info) else "RGB"
    return np.asarray(im.convert(mode))


def jpeg_fixtures():
    base = Image.fromarray(picture())
    variants = {
        "jpeg_baseline_420.jpg": dict(quality=90, subsampling=2),
        "jpeg_baseline_422.jpg": dict(quality=90, subsampling=1),
        "jpeg_baseline_444.jpg": dict(quality=95, subsampling=0),
        "jpeg_progressive.jpg": dict(quality=90, progressive=True, subsampling=2),
        "jpeg_optimized_restart.jpg": dict(quality=85, optimize=True, subsampling=2, restart_marker_blocks=2),
    }
    for name, opts in variants.items():
        base.save(os.path.join(OUT, name), "JPEG", **opts)
        save_ref(name, pil_reference(os.path.join(OUT, name)))
    base.convert("L").save(os.path.join(OUT, "jpeg_gray.jpg"), "JPEG", quality=90)
    save_ref("jpeg_gray.jpg", pil_reference(os.path.join(OUT, "jpeg_gray.jpg")))
    base.convert("L").save(os.path.join(OUT, "jpeg_gray_progressive.jpg"), "JPEG", quality=90, progressive=True)
    save_ref("jpeg_gray_progressive.jpg", pil_reference(os.path.join(OUT, "jpeg_gray_progressive.jpg")))
    # CMYK with the Adobe marker (Pillow writes inverted CMYK, as Photoshop does).
    cmyk = base.convert("CMYK")
    cmyk.save(os.path.join(OUT, "jpeg_cmyk_adobe.jpg"), "JPEG", quality=95)
    save_ref("jpeg_cmyk_adobe.jpg", pil_reference(os.path.join(OUT, "jpeg_cmyk_adobe.jpg")))
    # YCCK, through a tiny libjpeg program.
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "write_ycck")
        subprocess.check_call(["gcc", "-O2", "-o", exe, os.path.join(ROOT, "scripts", "fixtures", "write_ycck.c"), "-ljpeg"])
        raw = os.path.join(tmp, "in.cmyk")
        inverted = 255 - np.asarray(cmyk)
        with open(raw, "wb") as f:
            f.write(inverted.astype(np.uint8).tobytes())
        subprocess.check_call([exe, str(W), str(H), raw, os.path.join(OUT, "jpeg_ycck_adobe.jpg")])
    save_ref("jpeg_ycck_adobe.jpg", pil_reference(os.path.join(OUT, "jpeg_ycck_adobe.jpg")))
    # EXIF orientation 1..8: the stored pixels are `base`; the reference is upright.
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        name = f"jpeg_orientation_{orientation}.jpg"
        base.save(os.path.join(OUT, name), "JPEG", quality=95, subsampling=0, exif=exif.tobytes())
        save_ref(name, pil_reference(os.path.join(OUT, name)))


def png_write(name, rows, w, h, **kw):
    with open(os.path.join(OUT, name), "wb") as f:
        png.Writer(w, h, **kw).write(f, rows)


def png_fixtures():
    rgb = picture().astype(np.int64)
    rng = np.random.default_rng(7)
    alpha = np.clip(np.linspace(0, 255, W)[None, :] + rng.integers(-20, 20, (H, W)), 0, 255).astype(np.int64)
    gray8 = (rgb[..., 0] * 299 + rgb[..., 1] * 587 + rgb[..., 2] * 114) // 1000

    def rows(a):
        return [list(map(int, r)) for r in a.reshape(a.shape[0], -1)]

    def as_rgb(gray):
        return np.repeat(gray[..., None], 3, axis=-1)

    # Gray at every bit depth: reference value = v * 255 / (2^bits - 1).
    for bits in (1, 2, 4, 8, 16):
        top = (1 << bits) - 1
        g = (gray8 * top + 127) // 255
        for interlace in (False, True):
            if interlace and bits not in (1, 8, 16):
                continue
            name = f"png_gray{bits}{'_interlaced' if interlace else ''}.png"
            png_write(name, rows(g), W, H, greyscale=True, bitdepth=bits, interlace=interlace)
            save_ref(name, as_rgb(np.round(g * 255 / top)))
    # Gray + alpha.
    for bits in (8, 16):
        top = (1 << bits) - 1
        g = (gray8 * top + 127) // 255
        a = (alpha * top + 127) // 255
        name = f"png_graya{bits}.png"
        png_write(name, rows(np.stack([g, a], -1)), W, H, greyscale=True, alpha=True, bitdepth=bits)
        save_ref(name, np.concatenate([as_rgb(np.round(g * 255 / top)), np.round(a * 255 / top)[..., None]], -1))
    # Gray with a tRNS colour key: becomes RGBA.
    key = int(gray8[0, 0])
    name = "png_gray8_trns.png"
    png_write(name, rows(gray8), W, H, greyscale=True, bitdepth=8, transparent=key)
    save_ref(name, np.concatenate([as_rgb(gray8), np.where(gray8 == key, 0, 255)[..., None]], -1))
    # RGB and RGBA, 8 and 16 bits, plain and interlaced.
    for bits in (8, 16):
        top = (1 << bits) - 1
        c = (rgb * top + 127) // 255
        a = (alpha * top + 127) // 255
        for interlace in (False, True):
            suffix = "_interlaced" if interlace else ""
            name = f"png_rgb{bits}{suffix}.png"
            png_write(name, rows(c), W, H, greyscale=False, bitdepth=bits, interlace=interlace)
            save_ref(name, np.round(c * 255 / top))
            name = f"png_rgba{bits}{suffix}.png"
            png_write(name, rows(np.concatenate([c, a[..., None]], -1)), W, H, greyscale=False, alpha=True,
                      bitdepth=bits, interlace=interlace)
            save_ref(name, np.round(np.concatenate([c, a[..., None]], -1) * 255 / top))
    # Palettes at 1/2/4/8 bits, with and without tRNS (palette alpha).
    for bits in (1, 2, 4, 8):
        n = 1 << bits
        palette_rgb = [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(n)]
        index = (np.arange(W)[None, :] * 3 + np.arange(H)[:, None] * 5) % n
        for trns in (False, True):
            if trns:
                palette = [p + (int(255 * i / max(1, n - 1)),) for i, p in enumerate(palette_rgb)]
            else:
                palette = palette_rgb
            name = f"png_palette{bits}{'_trns' if trns else ''}.png"
            png_write(name, rows(index), W, H, palette=palette, bitdepth=bits)
            table = np.array(palette)
            save_ref(name, table[index])
    name = "png_palette4_interlaced.png"
    palette = [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(16)]
    index = (np.arange(W)[None, :] + np.arange(H)[:, None] * 2) % 16
    png_write(name, rows(index), W, H, palette=palette, bitdepth=4, interlace=True)
    save_ref(name, np.array(palette)[index])
    # PNG with an eXIf orientation (Pillow writes the chunk).
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(picture()).save(os.path.join(OUT, "png_exif_orientation_6.png"), exif=exif.tobytes())
    save_ref("png_exif_orientation_6.png", pil_reference(os.path.join(OUT, "png_exif_orientation_6.png")))


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def refusal_fixtures():
    """Files that must be refused with a typed error (not references)."""
    # A PNG whose header claims 100000 x 100000 RGB pixels; one tiny IDAT.
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + png_chunk(b"IEND", b"")
    with open(os.path.join(OUT, "bomb_100000x100000.png"), "wb") as f:
        f.write(data)
    # A JPEG whose SOF claims 60000 x 60000 (a 3.6 gigapixel decompression bomb).
    buf = io.BytesIO()
    Image.fromarray(picture(16, 16)).save(buf, "JPEG", quality=80)
    jpeg = bytearray(buf.getvalue())
    sof = jpeg.find(b"\xff\xc0")
    struct.pack_into(">HH", jpeg, sof + 5, 60000, 60000)
    with open(os.path.join(OUT, "bomb_60000x60000.jpg"), "wb") as f:
        f.write(bytes(jpeg))
    small = Image.fromarray(picture(16, 12))
    small.save(os.path.join(OUT, "other.gif"), "GIF")
    small.save(os.path.join(OUT, "other.webp"), "WEBP", quality=80)
    small.save(os.path.join(OUT, "other.bmp"), "BMP")
    small.save(os.path.join(OUT, "other.tiff"), "TIFF")


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    jpeg_fixtures()
    png_fixtures()
    refusal_fixtures()
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"{len(manifest)} decode fixtures, {total} bytes in {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
