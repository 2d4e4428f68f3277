"""Synthetic scene renderer: numpy ray casting with exact front/back depth and object masks.

`render(seed, size)` builds a random scene from the seed (object-centric furniture on a floor against
walls or studio backdrops, or a whole room for relief mode), casts one primary ray per pixel, shades
with a directional light (soft shadow rays), hemisphere ambient with ray-traced ambient occlusion
(contact shadows) and Blinn-Phong highlights, then applies camera effects (exposure, vignetting,
blur, noise, JPEG). Everything is deterministic given (seed, size).

Outputs (dict): rgb uint8 (H,W,3); front, back float32 (H,W) camera z-depth in metres; mask bool (H,W);
kind str ("object" or "room"); fov float (vertical, degrees).
back = the depth where each ray leaves the solid it first hit (the first contiguous solid segment of
the union of that object's primitives); back == front off the foreground objects.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy import ndimage

from . import geometry as G
from . import textures as T

FOV_CENTER = 55.0
MAX_DEPTH = 30.0  # z-depth labels are capped here (grazing floor towards the horizon)
FOV_RANGE = (38.0, 72.0)


# ----------------------------------------------------------------------------- materials
class Material:
    def __init__(self, albedo, tex=None, scale=1.0, spec=0.05, shin=16.0, emit=0.0):
        self.albedo = np.asarray(albedo, np.float32)
        self.tex = tex
        self.scale = float(scale)
        self.spec = float(spec)
        self.shin = float(shin)
        self.emit = float(emit)


class MatFactory:
    """Draws materials for a scene from its rng."""

    def __init__(self, rng, photo_prob=0.3):
        self.rng = rng
        self.photo_prob = photo_prob
        self.photos = T.photo_bank()
        self.cache = {}

    def photo(self, scale=None):
        r = self.rng
        name, tex = self.photos[int(r.integers(len(self.photos)))]
        if r.random() < 0.5:
            tex = tex[:, ::-1]
        if r.random() < 0.3:
            tex = np.ascontiguousarray(np.transpose(tex, (1, 0, 2)))
        return Material(np.ones(3) * r.uniform(0.7, 1.2), tex, scale or r.uniform(0.25, 1.5),
                        spec=r.uniform(0, 0.25), shin=r.uniform(8, 64))

    def procedural(self, kind=None, scale=None):
        r = self.rng
        fns = {f.__name__: f for f in T.PROCEDURAL}
        kind = kind or r.choice(list(fns))
        tex = fns[kind](r, 128 if kind != "tiles" else 256)
        sc = scale or {"wood": r.uniform(0.3, 1.2), "fabric": r.uniform(0.05, 0.3), "tiles": r.uniform(0.6, 3.0),
                       "noise_tex": r.uniform(0.3, 2.0), "stripes": r.uniform(0.3, 1.5)}[kind]
        spec = r.uniform(0.0, 0.5) if kind in ("wood", "tiles") else r.uniform(0.0, 0.15)
        return Material(np.ones(3), tex, sc, spec=spec, shin=r.uniform(8, 96))

    def flat(self, muted=False):
        r = self.rng
        c = T._rand_color(r, sat=(0.0, 0.3), val=(0.4, 0.95)) if muted else T._rand_color(r)
        return Material(T.srgb_to_linear(c), None, 1.0, spec=r.uniform(0, 0.6), shin=r.uniform(8, 128))

    def any(self, kinds=None):
        r = self.rng
        u = r.random()
        if u < self.photo_prob:
            return self.photo()
        if u < self.photo_prob + 0.2:
            return self.flat()
        return self.procedural(r.choice(kinds) if kinds else None)


# ----------------------------------------------------------------------------- furniture
class Builder:
    """Collects the primitives of one object in its own frame (yaw about y, base at floor)."""

    def __init__(self, obj, x, z, yaw, y0=0.0):
        self.obj, self.R, self.t, self.prims = obj, G.rot_y(yaw), np.array([x, y0, z]), []

    def _c(self, c):
        return self.t + self.R @ np.asarray(c, np.float64)

    def box(self, c, half, mat, R=None):
        self.prims.append(G.Box(self._c(c), half, self.R @ (R if R is not None else np.eye(3)), mat, self.obj))

    def cyl(self, c, r, h, mat, R=None, rz=None):
        self.prims.append(G.Cylinder(self._c(c), [r, h, rz or r], self.R @ (R if R is not None else np.eye(3)), mat, self.obj))

    def sph(self, c, half, mat):
        self.prims.append(G.Sphere(self._c(c), half, self.R, mat, self.obj))

    def rbox(self, c, half, rad, mat):
        rad = min(rad, 0.95 * min(half))
        self.prims.append(G.RoundBox(self._c(c), half, rad, self.R, mat, self.obj))

    def torus(self, c, R0, r, mat, R=None):
        self.prims.append(G.Torus(self._c(c), R0, r, self.R @ (R if R is not None else np.eye(3)), mat, self.obj))

    def cone(self, c, h, r1, r2, mat):
        self.prims.append(G.CappedCone(self._c(c), h, r1, r2, self.R, mat, self.obj))

    def capsule(self, c, h, r, mat, R=None):
        self.prims.append(G.Capsule(self._c(c), h, r, self.R @ (R if R is not None else np.eye(3)), mat, self.obj))


def _legs(b, r, w, d, h, th, mat, style):
    for sx in (-1, 1):
        for sz in (-1, 1):
            x, z = sx * (w - th), sz * (d - th)
            if style == 0:
                b.box([x, h / 2, z], [th, h / 2, th], mat)
            elif style == 1:
                b.cyl([x, h / 2, z], th, h / 2, mat)
            else:
                b.cone([x, h / 2, z], h / 2, th * 0.6, th, mat)


def chair(b, r, mf):
    wood, seatm = mf.any(["wood", "noise_tex"]), mf.any(["fabric", "wood"])
    w, d = r.uniform(0.2, 0.28), r.uniform(0.2, 0.27)
    sh, th, lt = r.uniform(0.4, 0.5), r.uniform(0.02, 0.05), r.uniform(0.015, 0.03)
    _legs(b, r, w, d, sh - th, lt, wood, int(r.integers(3)))
    if r.random() < 0.5:
        b.rbox([0, sh - th / 2, 0], [w, th, d], th * 0.8, seatm)
    else:
        b.box([0, sh - th / 2, 0], [w, th / 2 + 0.005, d], seatm)
    bh = r.uniform(0.3, 0.5)
    style = int(r.integers(3))
    if style == 0:
        b.box([0, sh + bh / 2, -d + 0.02], [w, bh / 2, 0.02], seatm)
    elif style == 1:
        n = int(r.integers(3, 6))
        for i in range(n):
            x = -w + lt + (2 * w - 2 * lt) * i / (n - 1)
            b.box([x, sh + bh / 2, -d + lt], [lt * 0.7, bh / 2, lt * 0.7], wood)
        b.box([0, sh + bh - 0.03, -d + lt], [w, 0.03, lt], wood)
    else:
        for sx in (-1, 1):
            b.cyl([sx * (w - lt), sh + bh / 2, -d + lt], lt, bh / 2, wood)
        b.rbox([0, sh + bh * 0.7, -d + lt], [w, bh * 0.25, 0.025], 0.02, seatm)
    if r.random() < 0.3:  # arms
        for sx in (-1, 1):
            b.box([sx * (w - lt), sh + 0.1, 0], [lt, 0.012, d], wood)
            b.box([sx * (w - lt), sh + 0.05, d - lt], [lt, 0.05, lt], wood)
    return max(w, d) * 1.4, sh + bh


def table(b, r, mf):
    top, legm = mf.any(["wood", "noise_tex", "tiles"]), mf.any(["wood", "noise_tex"])
    h = r.uniform(0.45, 0.78)
    th = r.uniform(0.02, 0.06)
    if r.random() < 0.35:  # round
        rad = r.uniform(0.3, 0.6)
        b.cyl([0, h - th / 2, 0], rad, th / 2, top)
        if r.random() < 0.5:
            b.cyl([0, (h - th) / 2, 0], r.uniform(0.03, 0.06), (h - th) / 2, legm)
            b.cyl([0, 0.015, 0], rad * 0.5, 0.015, legm)
        else:
            for k in range(3):
                a = 2 * np.pi * k / 3
                b.cyl([0.7 * rad * np.cos(a), (h - th) / 2, 0.7 * rad * np.sin(a)], 0.02, (h - th) / 2, legm)
        if r.random() < 0.3:
            b.torus([0, h - th / 2, 0], rad, th / 2, top)
        return rad * 1.1, h
    w, d = r.uniform(0.3, 0.8), r.uniform(0.25, 0.5)
    b.box([0, h - th / 2, 0], [w, th / 2, d], top)
    lt = r.uniform(0.02, 0.04)
    _legs(b, r, w * 0.95, d * 0.95, h - th, lt, legm, int(r.integers(3)))
    if r.random() < 0.4:  # lower shelf
        b.box([0, h * 0.25, 0], [w * 0.9, 0.01, d * 0.9], top)
    return np.hypot(w, d), h


def sofa(b, r, mf):
    m, legm = mf.any(["fabric", "noise_tex"]), mf.any(["wood"])
    n = int(r.integers(1, 4))
    sw = r.uniform(0.25, 0.35)
    w = n * sw + 0.15
    d = r.uniform(0.38, 0.5)
    leg = r.uniform(0.03, 0.12)
    bh = r.uniform(0.12, 0.2)
    b.rbox([0, leg + bh, 0], [w, bh, d], 0.03, m)
    for i in range(n):
        x = -w + 0.15 + sw + 2 * sw * i
        b.rbox([x, leg + 2 * bh + 0.06, 0.04], [sw - 0.01, 0.06, d - 0.06], 0.04, m)
        if r.random() < 0.7:
            b.rbox([x, leg + 2 * bh + 0.3, -d + 0.15], [sw - 0.02, 0.18, 0.07], 0.05, m)
    b.rbox([0, leg + 2 * bh + 0.25, -d + 0.06], [w, 0.25, 0.06], 0.04, m)
    aw = 0.08
    ah = r.uniform(0.12, 0.25)
    for sx in (-1, 1):
        if r.random() < 0.6:
            b.rbox([sx * (w - aw), leg + 2 * bh + ah / 2, 0], [aw, ah / 2 + bh / 2, d], 0.05, m)
        else:
            b.capsule([sx * (w - aw), leg + 2 * bh + ah * 0.6, 0], d - aw, aw, m, G.rot_x(np.pi / 2))
    _legs(b, r, w * 0.95, d * 0.9, leg, 0.025, legm, int(r.integers(3)))
    return np.hypot(w, d), leg + 2 * bh + 0.5


def lamp(b, r, mf):
    base, shade = mf.any(["noise_tex", "wood"]), mf.any(["fabric", "stripes"])
    floor = r.random() < 0.5
    h = r.uniform(1.2, 1.7) if floor else r.uniform(0.35, 0.6)
    br = r.uniform(0.08, 0.18)
    if r.random() < 0.5:
        b.cyl([0, 0.015, 0], br, 0.015, base)
    else:
        b.sph([0, br * 0.6, 0], [br * 0.8, br * 0.6, br * 0.8], base)
    b.cyl([0, h / 2, 0], r.uniform(0.01, 0.02), h / 2, base)
    sh = r.uniform(0.1, 0.22)
    if r.random() < 0.7:
        b.cone([0, h, 0], sh / 2, r.uniform(0.12, 0.25), r.uniform(0.06, 0.15), shade)
    else:
        b.sph([0, h, 0], [sh * 0.8, sh * 0.8, sh * 0.8], shade)
    return max(br, 0.25), h + sh


def shelf(b, r, mf):
    m = mf.any(["wood", "noise_tex"])
    w, d, h = r.uniform(0.3, 0.6), r.uniform(0.12, 0.2), r.uniform(0.6, 1.9)
    t = r.uniform(0.01, 0.025)
    for sx in (-1, 1):
        b.box([sx * (w - t), h / 2, 0], [t, h / 2, d], m)
    n = int(r.integers(2, 6))
    for i in range(n + 1):
        y = t + (h - 2 * t) * i / n
        b.box([0, y, 0], [w - t, t, d], m)
        if i < n and r.random() < 0.7:  # books
            x = -w + 2 * t
            gap = (h - 2 * t) / n
            while x < w - 0.06:
                bw = r.uniform(0.01, 0.03)
                bh = min(r.uniform(0.5, 0.9) * gap, gap - 2 * t)
                if r.random() < 0.85:
                    b.box([x + bw, y + t + bh / 2, r.uniform(-0.02, 0.02)], [bw, bh / 2, d * r.uniform(0.6, 0.9)],
                          Material(T.srgb_to_linear(T._rand_color(r)), None, spec=0.05))
                x += 2 * bw + 0.003
    if r.random() < 0.6:
        b.box([0, h / 2, -d + 0.005], [w, h / 2, 0.005], m)
    return np.hypot(w, d), h


def cabinet(b, r, mf):
    m, knob = mf.any(["wood", "noise_tex", "stripes"]), mf.flat()
    w, d, h = r.uniform(0.25, 0.7), r.uniform(0.2, 0.3), r.uniform(0.4, 1.2)
    leg = r.uniform(0.0, 0.12)
    b.box([0, leg + h / 2, 0], [w, h / 2, d], m)
    n = int(r.integers(1, 5))
    for i in range(n):
        y = leg + h * (i + 0.5) / n
        b.box([0, y, d + 0.005], [w * 0.94, h / n / 2 * 0.9, 0.006], m)
        b.sph([0, y, d + 0.02], [0.012, 0.012, 0.012], knob)
    if leg > 0.02:
        _legs(b, r, w * 0.95, d * 0.9, leg, 0.02, m, int(r.integers(3)))
    return np.hypot(w, d), leg + h


def stool(b, r, mf):
    m = mf.any(["wood", "fabric", "noise_tex"])
    h, rad = r.uniform(0.4, 0.75), r.uniform(0.15, 0.22)
    b.cyl([0, h - 0.02, 0], rad, 0.02 + r.uniform(0, 0.03), m)
    n = int(r.integers(3, 5))
    for k in range(n):
        a = 2 * np.pi * k / n
        tilt = G.rot_z(0.08 * np.cos(a)) @ G.rot_x(-0.08 * np.sin(a))
        b.cyl([0.75 * rad * np.cos(a), h / 2, 0.75 * rad * np.sin(a)], 0.015, h / 2, m, tilt)
    if r.random() < 0.6:
        b.torus([0, h * 0.35, 0], rad * 0.75, 0.01, m)
    return rad * 1.2, h


def plant(b, r, mf):
    pot, leaf = mf.any(["noise_tex", "tiles", "stripes"]), Material(
        T.srgb_to_linear(np.array([r.uniform(0.1, 0.3), r.uniform(0.35, 0.6), r.uniform(0.05, 0.25)])),
        T.noise_tex(r, 128), 0.2, spec=0.1)
    ph, pr = r.uniform(0.15, 0.45), r.uniform(0.1, 0.22)
    b.cone([0, ph / 2, 0], ph / 2, pr * 0.75, pr, pot)
    for _ in range(int(r.integers(3, 9))):
        s = r.uniform(0.06, 0.18)
        b.sph([r.normal(0, pr * 0.5), ph + s + r.uniform(0, 0.4), r.normal(0, pr * 0.5)], [s, s * r.uniform(0.6, 1.4), s], leaf)
    return pr * 1.5, ph + 0.7


def vase(b, r, mf):
    m = mf.any()
    h = r.uniform(0.2, 0.6)
    rad = r.uniform(0.06, 0.18)
    b.sph([0, h * 0.4, 0], [rad, h * 0.4, rad], m)
    b.cyl([0, h * 0.8, 0], rad * 0.4, h * 0.2, m)
    if r.random() < 0.5:
        b.torus([0, h, 0], rad * 0.45, rad * 0.1, m)
    return rad * 1.3, h


def sculpture(b, r, mf):
    """Random stack of primitives: shape variety beyond furniture."""
    y = 0.0
    R = 0.0
    for _ in range(int(r.integers(2, 6))):
        m = mf.any()
        k = int(r.integers(6))
        s = r.uniform(0.06, 0.3)
        if k == 0:
            b.box([r.normal(0, 0.05), y + s, r.normal(0, 0.05)], [s * r.uniform(0.5, 1.5), s, s * r.uniform(0.5, 1.5)], m,
                  G.rot_y(r.uniform(0, np.pi)))
        elif k == 1:
            b.sph([0, y + s, 0], [s, s, s], m)
        elif k == 2:
            b.cyl([0, y + s, 0], s * r.uniform(0.3, 1.0), s, m)
        elif k == 3:
            b.torus([0, y + s * 0.3, 0], s, s * 0.3, m, G.rot_x(r.uniform(0, np.pi / 2)) if r.random() < 0.5 else None)
        elif k == 4:
            b.cone([0, y + s, 0], s, s * r.uniform(0.3, 1), s * r.uniform(0, 0.6), m)
        else:
            b.rbox([0, y + s, 0], [s * 1.2, s, s * 0.8], s * 0.3, m)
        y += 2 * s * 0.9
        R = max(R, s * 1.5)
    return R, y


FURNITURE = [chair, chair, table, table, sofa, sofa, lamp, shelf, cabinet, cabinet, stool, plant, vase, sculpture]


# ----------------------------------------------------------------------------- scenes
class Scene:
    def __init__(self):
        self.prims = []
        self.kind = "object"
        self.eye = self.fwd = self.up = self.right = None
        self.fov = FOV_CENTER


def _place(r, placed, rad, lo, hi, tries=20):
    for _ in range(tries):
        x, z = r.uniform(lo[0], hi[0]), r.uniform(lo[1], hi[1])
        if all(np.hypot(x - px, z - pz) > rad + pr for px, pz, pr in placed):
            return x, z
    return None


def _add_object(sc, r, mf, obj, x, z, yaw, kind=None):
    f = kind or FURNITURE[int(r.integers(len(FURNITURE)))]
    b = Builder(obj, x, z, yaw)
    rad, h = f(b, r, mf)
    gid = ("obj", len(sc.prims), obj)
    for p in b.prims:
        p.group = gid
    sc.prims += b.prims
    return rad, h


def _decor(sc, r, mf, walls):
    """Rugs and wall pictures (background, never in the mask)."""
    if r.random() < 0.5:
        w, d = r.uniform(0.6, 1.6), r.uniform(0.5, 1.2)
        sc.prims.append(G.Box([r.uniform(-0.5, 0.5), 0.004, r.uniform(-0.3, 0.8)], [w, 0.004, d], G.rot_y(r.uniform(0, np.pi)),
                              mf.any(["fabric", "stripes", "noise_tex"]), -1))
    for (n, h) in walls:
        if r.random() < 0.6:
            # wall plane n.x = h, facing inwards; picture on its surface
            n = np.asarray(n, np.float64)
            c = n * h
            tang = np.cross([0, 1.0, 0], n)
            if np.linalg.norm(tang) < 1e-6:
                continue
            tang /= np.linalg.norm(tang)
            pos = c + tang * r.uniform(-1.2, 1.2) + np.array([0, r.uniform(1.0, 1.8), 0]) + n * 0.012
            Rm = np.stack([tang, [0, 1.0, 0], n], 1)
            mat = mf.photo(scale=r.uniform(0.4, 1.0)) if r.random() < 0.8 else mf.any()
            if r.random() < 0.3:  # window: bright emissive pane
                mat = Material(np.ones(3) * r.uniform(0.8, 1.0), None, emit=r.uniform(1.2, 3.0))
            sc.prims.append(G.Box(pos, [r.uniform(0.2, 0.6), r.uniform(0.15, 0.45), 0.012], Rm, mat, -1))


def _look(sc, eye, target, roll):
    f = target - eye
    f /= np.linalg.norm(f)
    right = np.cross(f, [0, 1.0, 0])
    right /= np.linalg.norm(right)
    up = np.cross(right, f)
    c, s = np.cos(roll), np.sin(roll)
    sc.eye, sc.fwd, sc.right, sc.up = eye, f, c * right + s * up, -s * right + c * up


def object_scene(r, mf):
    sc = Scene()
    sc.kind = "object"
    n_obj = 1 + int(r.random() < 0.45) + int(r.random() < 0.2)
    placed = []
    yaw0 = r.uniform(-0.6, 0.6)
    rad0, h0 = _add_object(sc, r, mf, 0, 0.0, 0.0, yaw0)
    placed.append((0.0, 0.0, rad0))
    hmax, radmax = h0, rad0
    for k in range(1, n_obj):
        rad_guess = 0.5
        pos = _place(r, placed, rad_guess, (-1.8, -1.5), (1.8, 1.0))
        if pos is None:
            continue
        rad, h = _add_object(sc, r, mf, k, pos[0], pos[1], r.uniform(-np.pi, np.pi))
        placed.append((pos[0], pos[1], rad))
    sc.fov = float(r.uniform(*FOV_RANGE))
    half = np.radians(sc.fov / 2)
    if r.random() < 0.5:  # most photos are taken near the centre fov
        sc.fov = float(np.clip(r.normal(FOV_CENTER, 5), *FOV_RANGE))
        half = np.radians(sc.fov / 2)
    # camera framing the hero object
    size = max(rad0, h0 * 0.6, 0.25)
    dist = size / np.tan(half) * r.uniform(1.1, 2.4) + rad0
    az = yaw0 + r.uniform(-1.2, 1.2)
    el = np.radians(r.uniform(2, 40))
    target = np.array([r.normal(0, 0.05), h0 * r.uniform(0.3, 0.6), r.normal(0, 0.05)])
    eye = target + dist * np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])
    eye[1] = max(eye[1], 0.25)
    _look(sc, eye, target, np.radians(r.normal(0, 2.5)))
    # drop secondary objects that would swallow or crowd the camera
    near = {p.group for p in sc.prims if p.obj >= 1
            and np.linalg.norm((p.lo + p.hi) / 2 - eye) < np.linalg.norm(p.hi - p.lo) / 2 + 0.5}
    sc.prims = [p for p in sc.prims if getattr(p, "group", None) not in near]
    # background
    floor_m = mf.any(["wood", "tiles", "noise_tex", "fabric"]) if r.random() < 0.85 else mf.flat()
    sc.prims.append(G.Plane([0, 1.0, 0], 0.0, floor_m, tangent=[1.0, 0, 0]))
    style = r.choice(["studio", "corner", "room", "wall"], p=[0.25, 0.3, 0.25, 0.2])
    walls = []
    if style == "studio":
        wm = mf.flat(muted=True) if r.random() < 0.6 else mf.any()
        if r.random() < 0.5:
            floor_m = wm
            sc.prims[-1].material = wm
        zb = -r.uniform(1.0, 4.0)
        sc.prims.append(G.Plane([0, 0, 1.0], zb, wm, tangent=[1.0, 0, 0]))
    else:
        wm = mf.any(["noise_tex", "stripes", "tiles"]) if r.random() < 0.5 else mf.flat(muted=True)
        zb = -r.uniform(0.6, 3.0)
        walls.append(([0, 0, 1.0], zb))
        if style in ("corner", "room"):
            side = 1 if r.random() < 0.5 else -1
            xw = max(abs(eye[0]) + 0.3, r.uniform(1.2, 3.5))
            walls.append(([-side, 0, 0], -xw))
        if style == "room":
            walls.append(([-walls[-1][0][0], 0, 0], -max(abs(eye[0]) + 0.3, r.uniform(1.2, 3.5))))
            walls.append(([0, 0, -1.0], -(eye[2] + r.uniform(0.3, 2.0))))
            sc.prims.append(G.Plane([0, -1.0, 0], -max(eye[1] + 0.3, r.uniform(2.4, 3.2)), mf.flat()))
        for n, h in walls:
            m = wm if r.random() < 0.8 else mf.any()
            sc.prims.append(G.Plane(n, h, m, tangent=[0, 1.0, 0]))
        _decor(sc, r, mf, walls)
    # close the box far away so no ray escapes (far walls / ceiling in the backdrop's material)
    have = {tuple(np.sign(n).astype(int)) for n, _ in walls}
    far = [([1.0, 0, 0], -(abs(eye[0]) + r.uniform(3, 8))), ([-1.0, 0, 0], -(abs(eye[0]) + r.uniform(3, 8))),
           ([0, 0, -1.0], -(abs(eye[2]) + r.uniform(1, 5)))]
    for n, h in far:
        if tuple(np.sign(n).astype(int)) not in have:
            sc.prims.append(G.Plane(n, h, wm, tangent=[0, 1.0, 0]))
    if style != "room":
        sc.prims.append(G.Plane([0, -1.0, 0], -(eye[1] + r.uniform(1.5, 4)), wm if r.random() < 0.5 else mf.flat(muted=True)))
    return sc


def room_scene(r, mf):
    sc = Scene()
    sc.kind = "room"
    W, D, H = r.uniform(3, 7), r.uniform(3, 7), r.uniform(2.4, 3.2)
    floor_m = mf.any(["wood", "tiles", "noise_tex", "fabric"])
    wm = mf.any(["noise_tex", "stripes", "tiles"]) if r.random() < 0.5 else mf.flat(muted=True)
    walls = [([0, 0, 1.0], -D / 2), ([0, 0, -1.0], -D / 2), ([1.0, 0, 0], -W / 2), ([-1.0, 0, 0], -W / 2)]
    sc.prims.append(G.Plane([0, 1.0, 0], 0.0, floor_m, tangent=[1.0, 0, 0]))
    sc.prims.append(G.Plane([0, -1.0, 0], -H, mf.flat()))
    for n, h in walls:
        sc.prims.append(G.Plane(n, h, wm if r.random() < 0.75 else mf.any(), tangent=[0, 1.0, 0]))
    placed = []
    for k in range(int(r.integers(3, 9))):
        if r.random() < 0.5:  # against a wall, facing the room
            wi = int(r.integers(4))
            n = np.array(walls[wi][0])
            t = np.cross([0, 1.0, 0], n)
            s = r.uniform(-0.4, 0.4)
            p = -n * (D / 2 if wi < 2 else W / 2) * 0.8 + t * s * (W if wi < 2 else D)
            yaw = np.arctan2(n[0], n[2])
            pos = (p[0], p[2])
            if not all(np.hypot(pos[0] - px, pos[1] - pz) > 0.6 + pr for px, pz, pr in placed):
                continue
        else:
            pos = _place(r, placed, 0.6, (-W / 2 + 0.7, -D / 2 + 0.7), (W / 2 - 0.7, D / 2 - 0.7))
            if pos is None:
                continue
            yaw = r.uniform(-np.pi, np.pi)
        rad, _ = _add_object(sc, r, mf, -1, pos[0], pos[1], yaw)
        placed.append((pos[0], pos[1], rad))
    _decor(sc, r, mf, walls)
    sc.fov = float(r.uniform(45, 75))
    cz = D / 2 - r.uniform(0.2, 0.8)
    cx = r.uniform(-W / 2 + 0.3, W / 2 - 0.3)
    eye = np.array([cx, r.uniform(1.0, 1.8), cz])
    target = np.array([r.uniform(-W / 4, W / 4), r.uniform(0.0, 1.0), -D / 2])
    _look(sc, eye, target, np.radians(r.normal(0, 2)))
    near = {p.group for p in sc.prims if hasattr(p, "group")
            and np.linalg.norm((p.lo + p.hi) / 2 - eye) < np.linalg.norm(p.hi - p.lo) / 2 + 0.4}
    sc.prims = [p for p in sc.prims if getattr(p, "group", None) not in near]
    return sc


# ----------------------------------------------------------------------------- ray casting
class Accel:
    """Two-level bounding-sphere culling: object groups, then primitives; planes are always tested."""

    def __init__(self, prims):
        self.prims = prims
        self.planes = [i for i, p in enumerate(prims) if p.is_plane]
        groups = {}
        for i, p in enumerate(prims):
            if not p.is_plane:
                groups.setdefault(getattr(p, "group", ("p", i)), []).append(i)
        self.groups = []
        for ids in groups.values():
            lo = np.min([prims[i].lo for i in ids], 0)
            hi = np.max([prims[i].hi for i in ids], 0)
            sph = [((prims[i].lo + prims[i].hi) / 2, np.linalg.norm(prims[i].hi - prims[i].lo) / 2 + 1e-3) for i in ids]
            self.groups.append(((lo + hi) / 2, np.linalg.norm(hi - lo) / 2 + 1e-3, ids, sph))

    @staticmethod
    def _sphere(O, D, c, R, tmax):
        oc = c[None] - O
        tc = np.einsum("ij,ij->i", oc, D)
        d2 = np.einsum("ij,ij->i", oc, oc) - tc * tc
        return (d2 <= R * R) & (tc + R > 0) & (tc - R < tmax)

    def closest(self, O, D):
        """Nearest hit: t, primitive id, normal, and per-primitive entry/exit (P,N) arrays."""
        N = len(O)
        P = len(self.prims)
        tins = np.full((P, N), np.inf)
        touts = np.full((P, N), np.inf)
        best = np.full(N, np.inf)
        pid = np.full(N, -1, np.int32)
        nrm = np.zeros((N, 3))

        def take(i, idx, o, d):
            tin, tout, n = self.prims[i].interval(o, d)
            tins[i, idx] = tin
            touts[i, idx] = tout
            closer = tin < best[idx]
            ci = idx[closer]
            best[ci] = tin[closer]
            pid[ci] = i
            nrm[ci] = n[closer]

        allidx = np.arange(N)
        for i in self.planes:
            take(i, allidx, O, D)
        for c, R, ids, sph in self.groups:
            g = np.nonzero(self._sphere(O, D, c, R, best))[0]
            if len(g) == 0:
                continue
            og, dg = O[g], D[g]
            for i, (pc, pr) in zip(ids, sph):
                m = self._sphere(og, dg, pc, pr, np.inf)
                if m.any():
                    take(i, g[m], og[m], dg[m])
        return best, pid, nrm, tins, touts

    def occluded(self, O, D, tmax):
        """Any-hit test against object primitives within tmax (planes never cast shadows)."""
        N = len(O)
        occ = np.zeros(N, bool)
        tm = np.broadcast_to(np.asarray(tmax, np.float64), (N,))
        for c, R, ids, sph in self.groups:
            g = np.nonzero(~occ & self._sphere(O, D, c, R, tm))[0]
            if len(g) == 0:
                continue
            for i, (pc, pr) in zip(ids, sph):
                m = self._sphere(O[g], D[g], pc, pr, tm[g])
                if not m.any():
                    continue
                gi = g[m]
                tin, _, _ = self.prims[i].interval(O[gi], D[gi])
                hit = (tin > 1e-3) & (tin < tm[gi])
                occ[gi[hit]] = True
                g = g[~occ[g]]
                if len(g) == 0:
                    break
        return occ


def _albedo(prims, pid, P, Nw):
    alb = np.zeros((len(P), 3), np.float32)
    emit = np.zeros(len(P), np.float32)
    spec = np.zeros(len(P), np.float32)
    shin = np.ones(len(P), np.float32)
    for i in np.unique(pid):
        if i < 0:
            continue
        sel = np.nonzero(pid == i)[0]
        p = prims[i]
        m = p.material
        col = np.broadcast_to(m.albedo, (len(sel), 3)).astype(np.float32)
        if m.tex is not None:
            lp = p.local_point(P[sel]) / m.scale
            if p.is_plane:
                u, v = lp[:, 0], lp[:, 1]
            else:
                nl = np.abs(Nw[sel] @ p.R)
                ax = nl.argmax(1)
                u = np.where(ax == 0, lp[:, 2], lp[:, 0])
                v = np.where(ax == 1, lp[:, 2], lp[:, 1])
            col = col * T.sample_texture(m.tex, u, v)
        alb[sel] = col
        emit[sel] = m.emit
        spec[sel] = m.spec
        shin[sel] = m.shin
    return alb, emit, spec, shin


def _hemisphere(r, n, k):
    """k cosine-weighted directions around each normal n (N,3) -> (k,N,3)."""
    N = len(n)
    a = np.where(np.abs(n[:, :1]) < 0.9, np.array([[1.0, 0, 0]]), np.array([[0, 1.0, 0]]))
    t = np.cross(n, a)
    t /= np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
    b = np.cross(n, t)
    out = []
    for _ in range(k):
        u1, u2 = r.random(N), r.random(N)
        rr, phi = np.sqrt(u1), 2 * np.pi * u2
        x, y, z = rr * np.cos(phi), rr * np.sin(phi), np.sqrt(1 - u1)
        out.append(t * x[:, None] + b * y[:, None] + n * z[:, None])
    return out


def _postprocess(r, img, kind):
    H, W = img.shape[:2]
    # exposure and white balance
    img = img * r.uniform(0.7, 1.4) * (1 + r.normal(0, 0.05, 3)).astype(np.float32)
    # vignetting
    if r.random() < 0.5:
        y, x = np.mgrid[0:H, 0:W] / np.array([H, W])[:, None, None]
        v = 1 - r.uniform(0.1, 0.45) * (((x - 0.5) ** 2 + (y - 0.5) ** 2) * 2)
        img = img * v[..., None]
    # simple tone curve (filmic-ish) and sRGB encoding
    img = img / (1 + img * r.uniform(0.0, 0.4))
    img = np.power(np.clip(img, 0, 1), 1 / 2.2)
    if True:  # always a little optical blur (also hides aliasing of the 1-sample-per-pixel render)
        s = (r.uniform(0.35, 0.6) if r.random() < 0.5 else r.uniform(0.6, 1.0)) * H / 128
        img = ndimage.gaussian_filter(img, (s, s, 0))
    if r.random() < 0.7:
        sig = r.uniform(0.003, 0.03)
        img = img + r.normal(0, sig, img.shape) * (0.5 + 0.5 * np.sqrt(np.clip(img, 0, 1)))
    img = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    if r.random() < 0.7:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=int(r.integers(35, 95)))
        img = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return img


def render(seed: int, size: int = 128, room_prob: float = 0.15, width: int | None = None, height: int | None = None):
    """Render the scene of `seed` at size x size pixels (or width x height when given; the
    field of view is vertical). See the module doc for the outputs."""
    r = np.random.default_rng(seed)
    mf = MatFactory(r, photo_prob=0.35)
    sc = room_scene(r, mf) if r.random() < room_prob else object_scene(r, mf)
    prims = sc.prims
    acc = Accel(prims)
    H = height or size
    W = width or size
    th = np.tan(np.radians(sc.fov) / 2)
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float64)
    px = ((xs + 0.5) / W * 2 - 1) * th * W / H
    py = (1 - (ys + 0.5) / H * 2) * th
    D = sc.fwd[None] + px.reshape(-1, 1) * sc.right[None] + py.reshape(-1, 1) * sc.up[None]
    cosz = 1.0 / np.linalg.norm(D, axis=1)
    D = D * cosz[:, None]
    O = np.broadcast_to(sc.eye, D.shape).copy()
    t, pid, Nw, tins, touts = acc.closest(O, D)
    t = np.minimum(t, MAX_DEPTH / cosz)
    pid_obj = np.array([p.obj for p in prims] + [-1])[pid]
    Nw = np.where((np.sum(Nw * D, 1) > 0)[:, None], -Nw, Nw)
    P = O + D * t[:, None]
    # back depth: exit of the first contiguous solid segment of the object first hit
    tback = t.copy()
    if sc.kind == "object":
        for k in np.unique(pid_obj[pid_obj >= 0]):
            sel = np.nonzero(pid_obj == k)[0]
            ks = [i for i, p in enumerate(prims) if p.obj == k]
            tend = touts[pid[sel], sel]
            for _ in range(4):
                changed = False
                for i in ks:
                    ext = (tins[i, sel] <= tend + 0.01) & (touts[i, sel] > tend) & np.isfinite(touts[i, sel])
                    if ext.any():
                        tend = np.where(ext, touts[i, sel], tend)
                        changed = True
                if not changed:
                    break
            tback[sel] = np.maximum(tend, t[sel])
    mask = (pid_obj >= 0) if sc.kind == "object" else np.zeros(len(t), bool)
    # lighting
    alb, emit, spec, shin = _albedo(prims, pid, P, Nw)
    overcast = r.random() < 0.25
    el, az = np.radians(r.uniform(20, 75)), r.uniform(0, 2 * np.pi)
    L = np.array([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)])
    Lcol = np.array([1.0, r.uniform(0.85, 1.0), r.uniform(0.7, 1.0)]) * (r.uniform(0.15, 0.4) if overcast else r.uniform(0.7, 1.4))
    amb = r.uniform(0.35, 0.7) if overcast else r.uniform(0.12, 0.45)
    Acol = np.array([r.uniform(0.85, 1.0), r.uniform(0.9, 1.0), 1.0]) * amb
    spread = r.uniform(0.1, 0.35) if overcast else r.uniform(0.0, 0.12)
    Po = P + Nw * 2e-3
    vis = np.zeros(len(t))
    ns = 2
    for _ in range(ns):
        Lj = L + r.normal(0, spread, 3)
        Lj /= np.linalg.norm(Lj)
        vis += ~acc.occluded(Po, np.broadcast_to(Lj, Po.shape), 1e3)
    vis /= ns
    # ambient occlusion (contact shadows)
    ao = np.zeros(len(t))
    dirs = _hemisphere(r, Nw, 3)
    for d in dirs:
        ao += ~acc.occluded(Po, d, 0.4)
    ao /= len(dirs)
    ndl = np.clip(Nw @ L, 0, None)
    sky = 0.75 + 0.25 * Nw[:, 1]
    Hh = L[None] - D
    Hh /= np.linalg.norm(Hh, axis=1, keepdims=True)
    sp = spec * np.power(np.clip(np.sum(Nw * Hh, 1), 0, 1), shin) * (ndl > 0)
    col = alb * (Acol[None] * (sky * (0.25 + 0.75 * ao))[:, None] + Lcol[None] * (ndl * vis)[:, None])
    col += (sp * vis)[:, None] * Lcol[None]
    col += alb * emit[:, None]
    img = col.reshape(H, W, 3).astype(np.float32)
    rgb = _postprocess(r, img, sc.kind)
    front = (t * cosz).reshape(H, W).astype(np.float32)
    back = (tback * cosz).reshape(H, W).astype(np.float32)
    return dict(rgb=rgb, front=front, back=back, mask=mask.reshape(H, W), kind=sc.kind, fov=sc.fov)
