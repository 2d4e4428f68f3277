"""Procedural and photographic textures for the synthetic renderer.

Photographs come from scikit-image's bundled sample data (files shipped inside the wheel; nothing is
downloaded). Their licences are listed in PHOTO_LICENCES and repeated in Weights/README.md.
skimage.data.stereo_motorcycle is deliberately NOT used: it is the real-photo evaluation image.
All textures are float32 linear-RGB arrays in [0, 1].
"""
from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

# name -> (licence, source) as stated in scikit-image's data documentation
PHOTO_LICENCES = {
    "astronaut": ("public domain", "NASA Great Images database (Eileen Collins)"),
    "coffee": ("CC0", "photographer Rachel Michetti"),
    "chelsea": ("CC0", "photographer Stefan van der Walt"),
    "rocket": ("public domain", "SpaceX"),
    "camera": ("CC0", "photographer Lav Varshney"),
    "brick": ("CC0", "CC0Textures Bricks25"),
    "grass": ("CC0", "DeviantArt, linolafett 'Grass 01'"),
    "gravel": ("CC0", "CC0Textures Gravel04"),
    "coins": ("no known copyright restrictions", "Brooklyn Museum open collection"),
    "hubble_deep_field": ("public domain", "NASA"),
    "immunohistochemistry": ("no known copyright restrictions", "scikit-image data"),
    "clock": ("public domain", "photographer Stefan van der Walt"),
    "page": ("no licence stated; shipped in scikit-image (BSD-3-Clause)", "scikit-image data"),
    "text": ("public domain", "Wikipedia 'Corner.png'"),
    "retina": ("CC0 1.0", "Wikimedia Commons 'Fundus photograph of normal left eye'"),
}


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.power(np.clip(x, 0, 1), 2.2).astype(np.float32)


@functools.lru_cache(maxsize=None)
def photo_bank(size: int = 256) -> tuple:
    """The bundled photographs, centre-cropped and resized to size x size (cached per process)."""
    import skimage.data as data
    from PIL import Image

    out = []
    for name in PHOTO_LICENCES:
        a = getattr(data, name)()
        if a.ndim == 2:
            a = np.stack([a] * 3, -1)
        a = a[..., :3]
        if a.dtype != np.uint8:
            a = (np.clip(a, 0, 1) * 255).astype(np.uint8) if a.max() <= 1 else a.astype(np.uint8)
        h, w = a.shape[:2]
        # keep two crops of wide images so more of each photo is seen
        crops = []
        s = min(h, w)
        crops.append(a[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s])
        if w > 1.3 * h:
            crops.append(a[:, :s])
        for c in crops:
            im = Image.fromarray(c).resize((size, size), Image.BILINEAR)
            out.append((name, srgb_to_linear(np.asarray(im, np.float32) / 255.0)))
    return tuple(out)


def fractal_noise(rng, size=256, base=4, octaves=5, persistence=0.5) -> np.ndarray:
    acc = np.zeros((size, size), np.float32)
    amp, tot = 1.0, 0.0
    n = base
    for _ in range(octaves):
        g = rng.random((n + 1, n + 1)).astype(np.float32)
        acc += amp * ndimage.zoom(g, size / (n + 1), order=1)[:size, :size]
        tot += amp
        amp *= persistence
        n *= 2
        if n > size:
            break
    acc /= tot
    acc -= acc.min()
    return acc / max(acc.max(), 1e-6)


def _rand_color(rng, sat=(0.05, 0.65), val=(0.15, 0.95)):
    import colorsys

    h = rng.random()
    s = rng.uniform(*sat)
    v = rng.uniform(*val)
    return np.array(colorsys.hsv_to_rgb(h, s, v), np.float32)


def wood(rng, size=256):
    c1 = np.array([rng.uniform(0.35, 0.75), rng.uniform(0.2, 0.45), rng.uniform(0.08, 0.25)], np.float32)
    c2 = c1 * rng.uniform(0.45, 0.75)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    n = fractal_noise(rng, size, base=3)
    freq = rng.uniform(8, 30)
    rings = 0.5 + 0.5 * np.sin(2 * np.pi * (freq * (x + 0.15 * np.sin(3 * y)) + 2.5 * n))
    grain = fractal_noise(rng, size, base=32, octaves=2)
    t = np.clip(rings ** 2 * 0.8 + 0.2 * grain, 0, 1)[..., None]
    return srgb_to_linear(c1 * (1 - t) + c2 * t)


def fabric(rng, size=256):
    c = _rand_color(rng)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    f = rng.uniform(0.5, 1.6)
    weave = 0.5 + 0.25 * np.sin(x * f) * np.sign(np.sin(y * f / 2)) + 0.25 * np.sin(y * f) * np.sign(np.cos(x * f / 2))
    n = fractal_noise(rng, size, base=8)
    t = (0.75 + 0.15 * weave + 0.2 * (n - 0.5))[..., None]
    if rng.random() < 0.3:  # stripes / plaid
        c2 = _rand_color(rng)
        p = rng.uniform(8, 40)
        s = ((np.sin(x / p * 2 * np.pi) > 0.6) | (rng.random() < 0.5) & (np.sin(y / p * 2 * np.pi) > 0.6))[..., None]
        return srgb_to_linear(np.where(s, c2, c) * t)
    return srgb_to_linear(c * t)


def tiles(rng, size=256):
    n = int(rng.integers(2, 9))
    grout = _rand_color(rng, sat=(0, 0.2), val=(0.3, 0.9))
    base = _rand_color(rng)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) * n / size
    offset = rng.random() < 0.4
    if offset:
        x = x + 0.5 * (np.floor(y) % 2)
    ix, iy = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - ix, y - iy
    gw = rng.uniform(0.02, 0.08)
    is_grout = (fx < gw) | (fy < gw)
    var = rng.uniform(0.0, 0.25)
    r = np.random.default_rng(int(rng.integers(1 << 30)))
    cell = 1 + var * (r.random((n + 2, n + 2)) - 0.5)
    col = base * cell[iy % (n + 2), ix % (n + 2)][..., None]
    if rng.random() < 0.35:  # checkerboard of two colours
        col = np.where(((ix + iy) % 2 == 0)[..., None], col, _rand_color(rng) * cell[iy % (n + 2), ix % (n + 2)][..., None])
    img = np.where(is_grout[..., None], grout, col)
    img *= (0.9 + 0.2 * fractal_noise(rng, size, base=16))[..., None]
    return srgb_to_linear(img)


def noise_tex(rng, size=256):
    c1, c2 = _rand_color(rng), _rand_color(rng)
    n = fractal_noise(rng, size, base=int(rng.integers(2, 16)), persistence=rng.uniform(0.4, 0.7))
    if rng.random() < 0.4:  # marble
        y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
        n = 0.5 + 0.5 * np.sin(2 * np.pi * (x * rng.uniform(1, 5) + 4 * n))
    return srgb_to_linear(c1 * (1 - n[..., None]) + c2 * n[..., None])


def stripes(rng, size=256):
    cols = [_rand_color(rng) for _ in range(int(rng.integers(2, 4)))]
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    p = rng.uniform(6, 60)
    k = (np.floor(x / p).astype(int)) % len(cols)
    img = np.stack(cols)[k]
    img *= (0.9 + 0.2 * fractal_noise(rng, size, base=8))[..., None]
    return srgb_to_linear(img)


PROCEDURAL = (wood, fabric, tiles, noise_tex, stripes)


def sample_texture(tex: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Nearest-neighbour lookup with mirrored repeat; u, v in texture tiles."""
    h, w = tex.shape[:2]
    x = np.floor(u * w).astype(np.int64) % (2 * w)
    y = np.floor(v * h).astype(np.int64) % (2 * h)
    x = np.where(x >= w, 2 * w - 1 - x, x)
    y = np.where(y >= h, 2 * h - 1 - y, y)
    return tex[y, x]
