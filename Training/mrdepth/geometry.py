"""Vectorised ray-primitive intersection for the synthetic renderer.

Every primitive answers `interval(O, D)`: for rays with origins O (N,3) and unit directions D (N,3)
it returns the first solid interval [t_in, t_out] along each ray (t_in = inf on a miss) and the
outward surface normal at t_in, all in world units. Convex analytic primitives (box, cylinder,
sphere, ellipsoid) carry a world->local affine map (rotation + non-uniform scale), under which the
ray parameter t is unchanged. SDF primitives (rounded box, torus, capped cone, capsule) use a rigid
transform and sphere tracing inside their bounding box. Planes are one-sided background surfaces.
"""
from __future__ import annotations

import numpy as np

INF = np.float32(np.inf)
EPS = 1e-4


def rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=np.float64)


def rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=np.float64)


def rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=np.float64)


def _safe_inv(d: np.ndarray) -> np.ndarray:
    d = np.where(np.abs(d) < 1e-9, np.where(d < 0, -1e-9, 1e-9), d)
    return 1.0 / d


class Prim:
    """Base primitive. `obj` >= 0 marks which furniture object it belongs to; -1 is background."""

    kind = "prim"
    is_plane = False

    def __init__(self, material, obj: int = -1):
        self.material = material
        self.obj = obj

    def interval(self, O, D):  # pragma: no cover - abstract
        raise NotImplementedError

    def local_point(self, P: np.ndarray) -> np.ndarray:
        """Hit points in the primitive's rigid local frame (metres), for texture mapping."""
        return P


class Convex(Prim):
    """Unit convex shape under a world->local affine map x_l = M (x_w - c), M = S^-1 R^T."""

    def __init__(self, center, half, R, material, obj=-1):
        super().__init__(material, obj)
        self.c = np.asarray(center, dtype=np.float64)
        self.half = np.asarray(half, dtype=np.float64)
        self.R = np.asarray(R, dtype=np.float64)
        self.M = (self.R.T / self.half[:, None])  # S^-1 R^T
        lo, hi = self.bounds()
        self.lo, self.hi = lo, hi

    def bounds(self):
        # world AABB of the transformed unit cube (conservative for all unit shapes)
        ext = np.abs(self.R) @ self.half
        return self.c - ext, self.c + ext

    def to_local(self, O, D):
        o = (O - self.c) @ self.M.T
        d = D @ self.M.T
        return o, d

    def normal_world(self, n_local):
        n = n_local @ self.M  # M^T n, row-vector form
        return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)

    def local_point(self, P):
        return (P - self.c) @ self.R  # rigid local frame, metres


def _slab(o, d, lo=-1.0, hi=1.0):
    inv = _safe_inv(d)
    t1 = (lo - o) * inv
    t2 = (hi - o) * inv
    return np.minimum(t1, t2), np.maximum(t1, t2)


class Box(Convex):
    kind = "box"

    def interval(self, O, D):
        o, d = self.to_local(O, D)
        a, b = _slab(o, d)
        tin = a.max(1)
        tout = b.min(1)
        axis = a.argmax(1)
        hit = (tout >= tin) & (tout > EPS)
        n = np.zeros_like(o)
        idx = np.arange(len(o))
        n[idx, axis] = -np.sign(d[idx, axis])
        return _finish(tin, tout, hit, self.normal_world(n))


class Cylinder(Convex):
    """Unit cylinder x^2+z^2<=1, |y|<=1 (axis along local y)."""

    kind = "cylinder"

    def interval(self, O, D):
        o, d = self.to_local(O, D)
        A = d[:, 0] ** 2 + d[:, 2] ** 2
        B = 2 * (o[:, 0] * d[:, 0] + o[:, 2] * d[:, 2])
        C = o[:, 0] ** 2 + o[:, 2] ** 2 - 1
        A = np.maximum(A, 1e-12)
        disc = B * B - 4 * A * C
        ok = disc >= 0
        sq = np.sqrt(np.maximum(disc, 0))
        t0 = (-B - sq) / (2 * A)
        t1 = (-B + sq) / (2 * A)
        # rays parallel to the axis: inside iff C <= 0
        par = A < 1e-10
        t0 = np.where(par, np.where(C <= 0, -INF, INF), t0)
        t1 = np.where(par, np.where(C <= 0, INF, -INF), t1)
        ya, yb = _slab(o[:, 1], d[:, 1])
        tin = np.maximum(t0, ya)
        tout = np.minimum(t1, yb)
        hit = ok & (tout >= tin) & (tout > EPS)
        cap = ya > t0
        p = o + d * np.where(hit, tin, 0.0)[:, None]
        n = np.stack([p[:, 0], np.zeros_like(tin), p[:, 2]], 1)
        n[cap] = 0.0
        n[cap, 1] = -np.sign(d[cap, 1])
        return _finish(tin, tout, hit, self.normal_world(n))


class Sphere(Convex):
    """Unit sphere (an ellipsoid under non-uniform half extents)."""

    kind = "sphere"

    def interval(self, O, D):
        o, d = self.to_local(O, D)
        A = (d * d).sum(1)
        B = 2 * (o * d).sum(1)
        C = (o * o).sum(1) - 1
        disc = B * B - 4 * A * C
        ok = disc >= 0
        sq = np.sqrt(np.maximum(disc, 0))
        tin = (-B - sq) / (2 * A)
        tout = (-B + sq) / (2 * A)
        hit = ok & (tout > EPS)
        p = o + d * np.where(hit, tin, 0.0)[:, None]
        return _finish(tin, tout, hit, self.normal_world(p))


def _finish(tin, tout, hit, n):
    tin = np.where(hit, np.maximum(tin, 0.0), INF)
    tout = np.where(hit, tout, INF)
    return tin, tout, n


class Plane(Prim):
    """One-sided infinite plane n.x = h, visible from the side n points to (background only)."""

    kind = "plane"
    is_plane = True

    def __init__(self, normal, h, material, tangent=None):
        super().__init__(material, -1)
        self.n = np.asarray(normal, dtype=np.float64)
        self.n /= np.linalg.norm(self.n)
        self.h = float(h)
        t = np.asarray(tangent if tangent is not None else _any_perp(self.n), dtype=np.float64)
        t = t - self.n * (t @ self.n)
        self.t = t / np.linalg.norm(t)
        self.b = np.cross(self.n, self.t)

    def interval(self, O, D):
        dn = D @ self.n
        t = (self.h - O @ self.n) / np.where(np.abs(dn) < 1e-12, -1e-12, dn)
        hit = (dn < 0) & (t > EPS)
        tin = np.where(hit, t, INF)
        n = np.broadcast_to(self.n, O.shape).copy()
        return tin, tin.copy(), n

    def local_point(self, P):
        return np.stack([P @ self.t, P @ self.b, P @ self.n], 1)


def _any_perp(n):
    a = np.array([1.0, 0, 0]) if abs(n[0]) < 0.9 else np.array([0, 1.0, 0])
    return np.cross(n, a)


class SDFPrim(Prim):
    """Rigidly placed SDF shape, sphere-traced inside its local bounding box [-ext, ext]."""

    kind = "sdf"
    steps_in = 40
    steps_out = 48

    def __init__(self, center, R, ext, material, obj=-1):
        super().__init__(material, obj)
        self.c = np.asarray(center, dtype=np.float64)
        self.R = np.asarray(R, dtype=np.float64)
        self.ext = np.asarray(ext, dtype=np.float64) * 1.02 + 1e-3
        e = np.abs(self.R) @ self.ext
        self.lo, self.hi = self.c - e, self.c + e

    def sdf(self, p):  # pragma: no cover - abstract
        raise NotImplementedError

    def local_point(self, P):
        return (P - self.c) @ self.R

    def interval(self, O, D):
        N = len(O)
        tin = np.full(N, INF)
        tout = np.full(N, INF)
        nrm = np.zeros((N, 3))
        o = (O - self.c) @ self.R
        d = D @ self.R
        a, b = _slab(o / self.ext, d / self.ext)
        t0 = np.maximum(a.max(1), 0.0)
        t1 = b.min(1)
        cand = np.nonzero(t1 >= t0)[0]
        if len(cand) == 0:
            return tin, tout, nrm
        oc, dc, t, tend = o[cand], d[cand], t0[cand].copy(), t1[cand]
        alive = np.ones(len(cand), bool)
        found = np.zeros(len(cand), bool)
        for _ in range(self.steps_in):
            idx = np.nonzero(alive)[0]
            if len(idx) == 0:
                break
            s = self.sdf(oc[idx] + dc[idx] * t[idx, None])
            hit = s < 1e-3
            found[idx[hit]] = True
            alive[idx[hit]] = False
            t[idx] += np.where(hit, 0.0, np.maximum(s, 1e-3))
            gone = t[idx] > tend[idx]
            alive[idx[gone]] = False
        idx = np.nonzero(found)[0]
        if len(idx) == 0:
            return tin, tout, nrm
        th = t[idx]
        p = oc[idx] + dc[idx] * th[:, None]
        # exit: march through the interior until the SDF turns positive, then bisect the last step
        oi, di = oc[idx], dc[idx]
        minstep = max(2e-3, 0.01 * float(self.ext.max()))
        lo = th.copy()
        te = th + 2e-3
        inside = np.ones(len(idx), bool)
        for _ in range(self.steps_out):
            j = np.nonzero(inside)[0]
            if len(j) == 0:
                break
            s = self.sdf(oi[j] + di[j] * te[j, None])
            out = s > 0
            inside[j[out]] = False
            jin = j[~out]
            lo[jin] = te[jin]
            te[jin] += np.maximum(-s[~out], minstep)
        te = np.where(inside, tend[idx], te)
        j = np.nonzero(~inside)[0]
        hi = te[j]
        lo_j = lo[j]
        for _ in range(6):
            mid = 0.5 * (lo_j + hi)
            s = self.sdf(oi[j] + di[j] * mid[:, None])
            hi = np.where(s > 0, mid, hi)
            lo_j = np.where(s > 0, lo_j, mid)
        te[j] = hi
        te = np.minimum(te, tend[idx])
        h = 1e-3
        g = np.stack([
            self.sdf(p + [h, 0, 0]) - self.sdf(p - [h, 0, 0]),
            self.sdf(p + [0, h, 0]) - self.sdf(p - [0, h, 0]),
            self.sdf(p + [0, 0, h]) - self.sdf(p - [0, 0, h]),
        ], 1)
        g /= np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
        ci = cand[idx]
        tin[ci] = th
        tout[ci] = te
        nrm[ci] = g @ self.R.T
        return tin, tout, nrm


class RoundBox(SDFPrim):
    def __init__(self, center, half, radius, R, material, obj=-1):
        self.b = np.asarray(half, dtype=np.float64) - radius
        self.r = float(radius)
        super().__init__(center, R, half, material, obj)

    def sdf(self, p):
        q = np.abs(p) - self.b
        return np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(1), 0) - self.r


class Torus(SDFPrim):
    """Torus in the local xz plane: major radius R0, tube radius r."""

    def __init__(self, center, R0, r, R, material, obj=-1):
        self.R0, self.r = float(R0), float(r)
        super().__init__(center, R, [R0 + r, r, R0 + r], material, obj)

    def sdf(self, p):
        q = np.sqrt(p[:, 0] ** 2 + p[:, 2] ** 2) - self.R0
        return np.sqrt(q * q + p[:, 1] ** 2) - self.r


class CappedCone(SDFPrim):
    """Cone frustum along local y: radius r1 at y=-h, r2 at y=+h (exact SDF, Quilez)."""

    def __init__(self, center, h, r1, r2, R, material, obj=-1):
        self.h, self.r1, self.r2 = float(h), float(r1), float(r2)
        m = max(r1, r2)
        super().__init__(center, R, [m, h, m], material, obj)

    def sdf(self, p):
        h, r1, r2 = self.h, self.r1, self.r2
        qx = np.sqrt(p[:, 0] ** 2 + p[:, 2] ** 2)
        qy = p[:, 1]
        k1x, k1y = r2, h
        k2x, k2y = r2 - r1, 2 * h
        cax = qx - np.minimum(qx, np.where(qy < 0, r1, r2))
        cay = np.abs(qy) - h
        k2d = k2x * k2x + k2y * k2y
        tt = np.clip(((k1x - qx) * k2x + (k1y - qy) * k2y) / k2d, 0, 1)
        cbx = qx - k1x + k2x * tt
        cby = qy - k1y + k2y * tt
        sgn = np.where((cbx < 0) & (cay < 0), -1.0, 1.0)
        return sgn * np.sqrt(np.minimum(cax * cax + cay * cay, cbx * cbx + cby * cby))


class Capsule(SDFPrim):
    """Capsule along local y from -h to +h with radius r."""

    def __init__(self, center, h, r, R, material, obj=-1):
        self.h, self.r = float(h), float(r)
        super().__init__(center, R, [r, h + r, r], material, obj)

    def sdf(self, p):
        q = p.copy()
        q[:, 1] = p[:, 1] - np.clip(p[:, 1], -self.h, self.h)
        return np.linalg.norm(q, axis=1) - self.r
