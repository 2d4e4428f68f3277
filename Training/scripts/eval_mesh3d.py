"""3D evaluation of object meshes on held-out-model photoreal renders.

  P=/opt/venv/bin/python
  nice -n 10 $P Training/scripts/eval_mesh3d.py --data Training/data/photoreal/val \
      --mesh .build-old/release/mesh --label before --mesh .build/release/mesh --label after \
      --json Training/runs/mesh3d_val.json
  nice -n 10 $P Training/scripts/eval_mesh3d.py --data Training/data/photoreal/eval \
      --mesh .build/release/mesh --label after --limit 100 --keep /tmp/mesh3d_keep
  nice -n 10 $P -m unittest Training/tests/test_eval_mesh3d.py     # (from the checkout root)

For every view with a target (`target_id != ""`) of the shards (`Training/photoreal/blender_render.py`):

* **Prediction.** The view's `rgb` is written as PNG and each `--mesh` binary runs
  `MESH IMG --mode object --fov <view fov> -o OUT.obj --json --threads 1` (env MYROOM_WEIGHTS=<checkout>/Weights).
  A run that fails (exit status != 0, e.g. 65 "no object", a time-out, or an empty mesh) is a failure: it
  counts with F = 0, thin-part recall 0 and not watertight; Chamfer is averaged over the successful runs.
* **Ground truth.** The target's whole catalog OBJ (visible and hidden sides) placed exactly as the renderer
  placed it (`import_model_scaled`: OBJ -> Blender axes (x, -z, y), the catalog modelRotation unless stale,
  per-axis scale to the catalog size, bottom centre at the origin; then `target_to_world`), checked against
  the view's `target_verts` (max distance printed, and asserted by the tests), then into the camera frame
  with inverse(`cam_to_world`) (Blender cameras: x right, y up, looking along -Z: the engine's frame).
* **Normalisation** as the engine's output frame: bounding box centred in x and z, lowest y = 0, height
  (camera-frame y extent) 1. The prediction is renormalised the same way (the engine already is, an older
  binary may not be centred).
* **Alignment.** ICP with scale (similarity: rotation, translation, uniform scale) from the identity: point
  to point with Umeyama's closed form on the correspondences of both directions (prediction -> GT and
  GT -> prediction); each direction drops its 5 % farthest pairs (light trimming against stray parts), at
  most 40 iterations on 5,000 points a side then at most 5 on all the points, each stage stopped when the
  mean pair distance changes by < 1e-6.
* **Metrics** on N (--points, 20,000) points a side, sampled uniformly by area with fixed seeds, after
  alignment, in units of the GT height: Chamfer-L1 = mean of the two directed mean nearest-neighbour
  distances; F-score at tau = 0.05 and 0.10 (precision: predicted points within tau of GT; recall: GT points
  within tau of the prediction; F = 2PR/(P+R)); watertight = every edge of the OBJ shared by exactly two
  triangles (vertices at identical positions welded), beside the engine's own `watertight` flag;
  thin-part recall = recall at tau = 0.05 on the GT points whose local thickness is under 8 % of the height.
  Thickness: the faces of each connected component (triangles joined by manifold edges) are wound
  consistently, outwards by the sign of the component's volume; a ray from the point along its inward
  normal goes to the next GT surface hit. A point whose ray hits nothing within the 8 % bound, on an open
  component (one with boundary edges), takes the component's mean thickness 2|volume|/area (0 for a flat
  single-sided sheet, such as a table top drawn as one surface; about 2r/3 for an open tube of radius r).
  Parts that interpenetrate or nest (a cover around a mattress) count as thin where the next surface is
  near: the rule is geometric, not semantic.
* **Oracle maps (`--oracle MESH`):** the same binary given the view's ground-truth front depth, back depth
  (the target's; the front elsewhere) and target mask (`--depth`, `--back-depth`, `--mask`) instead of the
  network's: the mesher's ceiling, so the table separates what the maps cost from what the mesher costs.
* **Baseline (no network, no GT):** the box of height 1 whose width is the mask's bounding-box width/height
  ratio (in pixels) and whose depth equals its width, standing on y = 0, centred; scored like a prediction
  (ICP with scale included).

Views are skipped when the target fills less than --min-fill (0.03) of the frame, when less than
--min-in-frame (0.95) of its GT surface points project inside the frame (cut by the frame's edge), with
--skip-border when its mask touches the image border at all (strict: about 60 % of the views touch it, most
by a few pixels), and when less than --min-visible (off by default) of the in-frame GT points land on the
mask (occluded by other furniture). The skip counts are printed. Everything is seeded: the same shards and
binaries give the same table. A second table gives diagnostics: F@10% before ICP, the median ICP scale and
rotation, and how far the engine's `cameraPosition` lies from the GT camera in the GT-normalised frame
(a check of the frame conventions: it is small when the predicted box matches the true one).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components
from scipy.spatial import cKDTree

HERE = os.path.dirname(os.path.abspath(__file__))
TRAINING = os.path.dirname(HERE)
ROOT = os.path.dirname(TRAINING)
sys.path.insert(0, TRAINING)
from photoreal import assets as A  # noqa: E402

TAUS = (0.05, 0.10)
THIN_FRACTION = 0.08  # of the object's height
THIN_TAU = 0.05
OBJ_TO_BLENDER = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # forward -Z, up Y import


# ----------------------------------------------------------------------------- meshes
def load_obj(path: str):
    """Vertices (n,3) float64 and triangles (m,3) int64 of an OBJ (polygons fan-triangulated, negative indices
    resolved, texture/normal indices ignored)."""
    verts, faces = [], []
    with open(path, encoding="latin-1") as f:
        for line in f:
            if line.startswith("v "):
                p = line.split()
                verts.append((float(p[1]), float(p[2]), float(p[3])))
            elif line.startswith("f "):
                idx = []
                for tok in line.split()[1:]:
                    i = int(tok.split("/", 1)[0])
                    idx.append(i - 1 if i > 0 else len(verts) + i)
                for k in range(1, len(idx) - 1):
                    faces.append((idx[0], idx[k], idx[k + 1]))
    V = np.array(verts, np.float64).reshape(-1, 3)
    F = np.array(faces, np.int64).reshape(-1, 3)
    return V, F


def used_vertices(V, F):
    """The vertices the triangles use (an OBJ's unused vertices are not imported by Blender)."""
    return V[np.unique(F)] if len(F) else V[:0]


def box_mesh(lo, hi):
    """Closed, outward-wound box."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    V = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    # vertex index = 4*ix + 2*iy + iz
    quads = [(0, 1, 3, 2), (4, 6, 7, 5),  # x- , x+
             (0, 4, 5, 1), (2, 3, 7, 6),  # y-, y+
             (0, 2, 6, 4), (1, 5, 7, 3)]  # z-, z+
    F = []
    for a, b, c, d in quads:
        F += [(a, b, c), (a, c, d)]
    return V, np.array(F, np.int64)


def face_normals(V, F):
    n = np.cross(V[F[:, 1]] - V[F[:, 0]], V[F[:, 2]] - V[F[:, 0]])
    area2 = np.linalg.norm(n, axis=1)
    return n / np.maximum(area2, 1e-300)[:, None], area2 / 2


def sample_surface(V, F, n, seed):
    """n points uniformly by area: (points, face index). Deterministic for a seed."""
    _, area = face_normals(V, F)
    if len(F) == 0 or area.sum() <= 0:
        raise ValueError("no surface to sample")
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(area)
    fi = np.minimum(np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right"), len(F) - 1)
    u, v = rng.random(n), rng.random(n)
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    a, b, c = V[F[fi, 0]], V[F[fi, 1]], V[F[fi, 2]]
    return a + u[:, None] * (b - a) + v[:, None] * (c - a), fi


def weld(V, F, tol=0.0):
    """Merge vertices at identical (or, with tol, rounded) positions: (unique vertices, remapped faces)."""
    key = V if tol <= 0 else np.round(V / tol)
    U, inv = np.unique(key, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    Vu = np.zeros((len(U), 3))
    Vu[inv] = V
    return Vu, inv[F]


def edge_counts(F):
    """(undirected edges (k,2), how many triangles use each)."""
    e = np.sort(np.concatenate([F[:, [0, 1]], F[:, [1, 2]], F[:, [2, 0]]]), axis=1)
    return np.unique(e, axis=0, return_counts=True)


def is_watertight(V, F):
    """Every edge shared by exactly two triangles (after welding identical positions)."""
    if len(F) == 0:
        return False
    _, Fw = weld(V, F)
    Fw = Fw[(Fw[:, 0] != Fw[:, 1]) & (Fw[:, 1] != Fw[:, 2]) & (Fw[:, 0] != Fw[:, 2])]
    if len(Fw) == 0:
        return False
    _, c = edge_counts(Fw)
    return bool(np.all(c == 2))


def normalise(P, ref=None):
    """The engine's output frame: (P - anchor) * scale with anchor = (bbox centre x, min y, bbox centre z) and
    scale = 1 / y extent, both from `ref` (default P). Returns (normalised P, anchor, scale)."""
    R = P if ref is None else ref
    lo, hi = R.min(0), R.max(0)
    anchor = np.array([(lo[0] + hi[0]) / 2, lo[1], (lo[2] + hi[2]) / 2])
    s = 1.0 / max(hi[1] - lo[1], 1e-12)
    return (P - anchor) * s, anchor, s


# ----------------------------------------------------------------------------- alignment and metrics
def umeyama(src, dst, with_scale=True):
    """Similarity (s, R, t) minimising sum |s R src + t - dst|^2."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / len(src)
    U, S, Vt = np.linalg.svd(cov)
    D = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        D[2, 2] = -1
    R = U @ D @ Vt
    var = (xs ** 2).sum() / len(src)
    s = float(np.trace(np.diag(S) @ D) / var) if with_scale and var > 0 else 1.0
    t = mu_d - s * R @ mu_s
    return s, R, t


def icp_similarity(src, dst, iters=40, trim=0.05, n_max=5000, seed=0, with_scale=True, final_iters=5):
    """ICP with scale aligning src onto dst from the identity: symmetric correspondences, each direction
    dropping its `trim` farthest pairs; `iters` iterations on n_max-point subsets, then up to `final_iters` on
    all the points (so an exact alignment stays exact). Returns (s, R, t): aligned = s * src @ R.T + t."""
    rng = np.random.default_rng(seed)
    sub_s = src[rng.choice(len(src), n_max, replace=False)] if len(src) > n_max else src
    sub_d = dst[rng.choice(len(dst), n_max, replace=False)] if len(dst) > n_max else dst
    s, R, t = 1.0, np.eye(3), np.zeros(3)
    for a, b, n_it in ((sub_s, sub_d, iters), (src, dst, final_iters)):
        tree_b = cKDTree(b)
        prev = np.inf
        for _ in range(n_it):
            cur = s * a @ R.T + t
            d1, i1 = tree_b.query(cur)
            d2, i2 = cKDTree(cur).query(b)
            k1 = d1 <= np.quantile(d1, 1 - trim) if trim > 0 else np.ones(len(d1), bool)
            k2 = d2 <= np.quantile(d2, 1 - trim) if trim > 0 else np.ones(len(d2), bool)
            err = 0.5 * (d1[k1].mean() + d2[k2].mean())
            if err < 1e-12 or abs(prev - err) < 1e-6:
                break
            prev = err
            s, R, t = umeyama(np.concatenate([a[k1], a[i2[k2]]]), np.concatenate([b[i1[k1]], b[k2]]), with_scale)
    return s, R, t


def chamfer_fscore(pred, gt, taus=TAUS):
    """Chamfer-L1 and {tau: (F, precision, recall)}; also the per-GT-point distances to pred."""
    d_pg, _ = cKDTree(gt).query(pred)
    d_gp, _ = cKDTree(pred).query(gt)
    cd = 0.5 * (d_pg.mean() + d_gp.mean())
    out = {}
    for tau in taus:
        p, r = float((d_pg < tau).mean()), float((d_gp < tau).mean())
        out[tau] = (2 * p * r / (p + r) if p + r > 0 else 0.0, p, r)
    return float(cd), out, d_gp


def rotation_angle_deg(R):
    return float(np.degrees(np.arccos(np.clip((np.trace(R) - 1) / 2, -1, 1))))


# ----------------------------------------------------------------------------- thickness
def orient_faces(V, F):
    """Consistent outward winding: faces joined by manifold edges (used by exactly 2 faces) form components;
    each is wound like its first face by breadth-first propagation, then flipped if its volume (about its own
    centroid) is negative. Returns (sign per face (+1 keep, -1 flip), component label per face,
    per-component signed volume, area, and whether it has boundary edges)."""
    m = len(F)
    diag = float(np.linalg.norm(V.max(0) - V.min(0))) if len(V) else 1.0
    _, Fw = weld(V, F, tol=1e-7 * max(diag, 1e-9))
    e = np.concatenate([Fw[:, [0, 1]], Fw[:, [1, 2]], Fw[:, [2, 0]]])
    fid = np.tile(np.arange(m), 3)
    und = np.sort(e, axis=1)
    _, inv, cnt = np.unique(und, axis=0, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    order = np.argsort(inv, kind="stable")
    starts = np.searchsorted(inv[order], np.arange(len(cnt)))
    two = np.nonzero(cnt == 2)[0]
    a, b = order[starts[two]], order[starts[two] + 1]
    fa, fb = fid[a], fid[b]
    rel = np.where(e[a, 0] == e[b, 0], -1.0, 1.0)  # same direction in both faces: opposite winding
    ok = fa != fb
    fa, fb, rel = fa[ok], fb[ok], rel[ok]
    G = coo_matrix((np.ones(len(fa)), (fa, fb)), shape=(m, m)).tocsr()
    ncomp, label = connected_components(G, directed=False)
    # one breadth-first traversal from a virtual root joined to the first face of every component
    first = np.full(ncomp, -1)
    first[label[::-1]] = np.arange(m)[::-1]
    rows = np.concatenate([fa, fb, np.full(ncomp, m)])
    cols = np.concatenate([fb, fa, first])
    relm = coo_matrix((np.concatenate([rel, rel, np.ones(ncomp)]), (rows, cols)), shape=(m + 1, m + 1)).tocsr()
    Gr = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(m + 1, m + 1)).tocsr()
    bfs, pred = breadth_first_order(Gr, m, directed=True, return_predecessors=True)
    sign = np.ones(m + 1)
    nodes = bfs[1:]
    parents = pred[nodes]
    r = np.sign(np.asarray(relm[parents, nodes]).ravel())
    r[r == 0] = 1
    for node, parent, rr in zip(nodes.tolist(), parents.tolist(), r.tolist()):
        sign[node] = sign[parent] * rr
    sign = sign[:m]
    # outward by volume
    tri = V[F]
    cen = np.zeros((ncomp, 3))
    _, area = face_normals(V, F)
    A_c = np.bincount(label, area, ncomp)
    for k in range(3):
        cen[:, k] = np.bincount(label, tri[:, :, k].mean(1) * area, ncomp) / np.maximum(A_c, 1e-300)
    c = cen[label]
    vol = sign * np.einsum("ij,ij->i", tri[:, 0] - c, np.cross(tri[:, 1] - c, tri[:, 2] - c)) / 6
    V_c = np.bincount(label, vol, ncomp)
    sign = sign * np.where(V_c[label] < 0, -1.0, 1.0)
    boundary = np.zeros(ncomp, bool)
    bedge = np.nonzero(cnt[inv] == 1)[0]
    boundary[label[fid[bedge]]] = True
    return sign, label, np.abs(V_c), A_c, boundary


def first_hits(V, F, O, D, tmax, skip=None, eps=None, chunk=4000, cells_per_ray=12):
    """Distance along each ray (origin O, unit direction D) to its first triangle hit in (eps, tmax], inf if
    none; triangle `skip[i]` is ignored for ray i. Triangles are binned in a uniform grid (cell = tmax /
    cells_per_ray), each registered in the cells its bounding box overlaps once grown by a quarter cell; a
    ray gathers the triangles of the cells of its samples every half cell, which covers every triangle its
    segment meets (a point of the segment is within a quarter cell of a sample)."""
    n = len(O)
    best = np.full(n, np.inf)
    if n == 0 or len(F) == 0:
        return best
    eps = 1e-6 * tmax if eps is None else eps
    tri = V[F]
    while True:  # coarser cells when large triangles would fill too many
        cell = tmax / cells_per_ray
        grow = cell / 4
        g0 = np.minimum(V.min(0), O.min(0)) - cell
        tlo = np.floor((tri.min(1) - grow - g0) / cell).astype(np.int64)
        thi = np.floor((tri.max(1) + grow - g0) / cell).astype(np.int64)
        span = thi - tlo + 1
        cnt = span.prod(1)
        if cnt.sum() <= 5e6 or cells_per_ray <= 1:
            break
        cells_per_ray = max(1, cells_per_ray // 2)
    dims = np.maximum(thi.max(0), np.floor((O.max(0) + tmax - g0) / cell).astype(np.int64)) + 2
    tid = np.repeat(np.arange(len(F)), cnt)
    k = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    sx, sy = span[tid, 0], span[tid, 1]
    ix = tlo[tid, 0] + k % sx
    iy = tlo[tid, 1] + (k // sx) % sy
    iz = tlo[tid, 2] + k // (sx * sy)
    key = (ix * dims[1] + iy) * dims[2] + iz
    o = np.argsort(key, kind="stable")
    key, tid = key[o], tid[o]
    v0, e1, e2 = tri[:, 0], tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    ts = np.linspace(0.0, tmax, int(np.ceil(2 * cells_per_ray)) + 1)  # samples at most half a cell apart
    for s0 in range(0, n, chunk):
        q = np.arange(s0, min(n, s0 + chunk))
        Oq, Dq = O[q], D[q]
        S = Oq[:, None, :] + Dq[:, None, :] * ts[None, :, None]
        c = np.floor((S - g0) / cell).astype(np.int64)
        kk = np.sort((c[..., 0] * dims[1] + c[..., 1]) * dims[2] + c[..., 2], axis=1)
        first = np.ones(kk.shape, bool)
        first[:, 1:] = kk[:, 1:] != kk[:, :-1]
        rq = np.nonzero(first)[0]
        kk = kk[first]
        lo = np.searchsorted(key, kk, "left")
        ln = np.searchsorted(key, kk, "right") - lo
        if ln.sum() == 0:
            continue
        rep = np.repeat(np.arange(len(kk)), ln)
        off = np.arange(ln.sum()) - np.repeat(np.cumsum(ln) - ln, ln)
        pq, pt = rq[rep], tid[lo[rep] + off]
        if skip is not None:
            keep = pt != skip[q][pq]
            pq, pt = pq[keep], pt[keep]
        # Moller-Trumbore, two-sided
        d = Dq[pq]
        pv = np.cross(d, e2[pt])
        det = np.einsum("ij,ij->i", e1[pt], pv)
        good = np.abs(det) > 1e-18
        inv = np.where(good, 1.0 / np.where(good, det, 1.0), 0.0)
        tv = Oq[pq] - v0[pt]
        u = np.einsum("ij,ij->i", tv, pv) * inv
        qv = np.cross(tv, e1[pt])
        v = np.einsum("ij,ij->i", d, qv) * inv
        t = np.einsum("ij,ij->i", e2[pt], qv) * inv
        hit = good & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > eps) & (t <= tmax)
        loc = np.full(len(q), np.inf)
        np.minimum.at(loc, pq[hit], t[hit])
        best[q] = loc
    return best


def thickness(V, F, points, fi, tmax):
    """Local thickness at surface points (on faces fi) up to tmax (inf beyond): see the module docstring."""
    sign, label, vol, area, boundary = orient_faces(V, F)
    n, _ = face_normals(V, F)
    inward = -n[fi] * sign[fi][:, None]
    t = first_hits(V, F, points, inward, tmax, skip=fi, eps=1e-5 * tmax)
    lab = label[fi]
    sheet = ~np.isfinite(t) & boundary[lab]
    t[sheet] = 2 * vol[lab[sheet]] / np.maximum(area[lab[sheet]], 1e-300)
    t[t > tmax] = np.inf
    return t


# ----------------------------------------------------------------------------- ground truth
class Catalog:
    """Catalog models as the renderer imports them, in its object frame (metres, Blender axes, bottom centre
    at the origin), with their seeded surface samples and thickness, cached per model."""

    def __init__(self, cache=None, points=20000):
        self.cache = cache or A.default_cache()
        self.models = {m["id"]: m for m in A.read_catalogs()}
        self.points = points
        self._mesh, self._samples = {}, {}

    def mesh(self, model_id):
        if model_id not in self._mesh:
            m = self.models[model_id]
            V, F = load_obj(A.model_path(self.cache, m))
            V = V @ OBJ_TO_BLENDER.T
            U = used_vertices(V, F)
            if m["rotation"]:
                R = np.array(m["rotation"], float).reshape(3, 3)
                Rb = OBJ_TO_BLENDER @ R @ OBJ_TO_BLENDER.T
                ext_raw = U.max(0) - U.min(0)
                ext_rot = np.abs(Rb) @ ext_raw
                want = np.array(m["size_cm"], float)
                uneven = lambda e: (want / np.maximum(e, 1e-9)).max() / (want / np.maximum(e, 1e-9)).min()  # noqa: E731
                if not (uneven(ext_rot) > 1.5 and uneven(ext_raw) < 1.05):  # the renderer's stale-rotation rule
                    V, U = V @ Rb.T, U @ Rb.T
            lo, hi = U.min(0), U.max(0)
            s = np.array(m["size_cm"], float) / 100 / np.maximum(hi - lo, 1e-6)
            t = np.array([-(lo[0] + hi[0]) / 2, -(lo[1] + hi[1]) / 2, -lo[2]])
            V = (V + t) * s
            # keep only the used vertices (renumbered): bbox and placement checks see what Blender imported
            used = np.unique(F)
            remap = np.full(len(V), -1)
            remap[used] = np.arange(len(used))
            self._mesh[model_id] = (V[used], remap[F])
        return self._mesh[model_id]

    def samples(self, model_id, n=None):
        """(points (n,3), thickness (n,) in metres (inf = thicker than 8 % of the model's diagonal))."""
        n = n or self.points
        if (model_id, n) not in self._samples:
            V, F = self.mesh(model_id)
            seed = int(hashlib.sha256(model_id.encode()).hexdigest()[:8], 16)
            P, fi = sample_surface(V, F, n, seed)
            diag = float(np.linalg.norm(V.max(0) - V.min(0)))
            th = thickness(V, F, P, fi, THIN_FRACTION * diag * 1.01)
            self._samples[(model_id, n)] = (P, th)
        return self._samples[(model_id, n)]


def gt_from_mesh(V, F, n=20000, seed=0):
    """Ground truth from any mesh already in the camera frame (tests, other data): normalised points and
    normalised thickness, as gt_view gives them."""
    P, fi = sample_surface(V, F, n, seed)
    diag = float(np.linalg.norm(V.max(0) - V.min(0)))
    th = thickness(V, F, P, fi, THIN_FRACTION * diag * 1.01)
    Pn, anchor, s = normalise(P, ref=V)
    return dict(points=Pn, thick=th * s, anchor=anchor, scale=s, camera=-anchor * s)


def transform(M, P):
    return P @ M[:3, :3].T + M[:3, 3]


def gt_view(cat, rec, n=None):
    """Ground truth of a view in the camera frame: dict with verts (camera frame), points, thickness (both in
    the normalised frame), anchor, scale, the max distance from the view's target_verts to the placed mesh
    vertices (metres), and the camera position in the normalised frame."""
    V, F = cat.mesh(rec["target_id"])
    P, th = cat.samples(rec["target_id"], n)
    Mt = np.asarray(rec["target_to_world"], np.float64)
    C = np.asarray(rec["cam_to_world"], np.float64)
    Vw = transform(Mt, V)
    tv = np.asarray(rec["target_verts"], np.float64)[: int(rec["target_nverts"])]
    place_err = float(cKDTree(Vw).query(tv)[0].max()) if len(tv) else float("nan")
    W2C = np.linalg.inv(C)
    Vc = transform(W2C, Vw)
    Pc = transform(W2C, transform(Mt, P))
    Vn, anchor, s = normalise(Vc)
    Pn = (Pc - anchor) * s
    return dict(verts_cam=Vc, faces=F, points_cam=Pc, points=Pn, thick=th * s, anchor=anchor, scale=s,
                place_err=place_err, camera=-anchor * s, verts_world=Vw)


def project(Pc, fov_deg, size):
    """Camera-frame points -> pixel (row, col) floats of the renderer's pinhole camera, and in-front flag."""
    t = np.tan(np.radians(fov_deg) / 2)
    z = -Pc[:, 2]
    front = z > 1e-6
    zz = np.where(front, z, 1.0)
    xc, yc = Pc[:, 0] / zz / t, Pc[:, 1] / zz / t
    H, W = size
    col = (xc + 1) / 2 * W - 0.5
    row = (1 - yc) / 2 * H - 0.5
    return row, col, front


def visibility(rec, Pc):
    """(share of GT points projecting into the image, share of those landing on the (3x3-dilated) mask)."""
    mask = np.asarray(rec["mask"], bool)
    H, W = mask.shape
    row, col, front = project(Pc, float(rec["fov"]), (H, W))
    r, c = np.round(row).astype(int), np.round(col).astype(int)
    inside = front & (r >= 0) & (r < H) & (c >= 0) & (c < W)
    dil = mask.copy()
    dil[1:] |= mask[:-1]; dil[:-1] |= mask[1:]  # noqa: E702
    d2 = dil.copy()
    d2[:, 1:] |= dil[:, :-1]; d2[:, :-1] |= dil[:, 1:]  # noqa: E702
    in_frame = float(inside.mean())
    on_mask = float(d2[r[inside], c[inside]].mean()) if inside.any() else 0.0
    return in_frame, on_mask


def baseline_mesh(mask):
    """No-network baseline: box of height 1, width = mask bbox width/height (pixels), depth = width, centred."""
    rows, cols = np.nonzero(mask)
    w = (cols.max() - cols.min() + 1) / (rows.max() - rows.min() + 1)
    return box_mesh([-w / 2, 0, -w / 2], [w / 2, 1, w / 2])


# ----------------------------------------------------------------------------- scoring
def score(Vp, Fp, gt, n, seed, icp=True):
    """Align a predicted mesh (any frame; renormalised here) to a view's GT and score it."""
    Pp, _ = sample_surface(Vp, Fp, n, seed)
    Pp, _, _ = normalise(Pp, ref=Vp)
    Gt = gt["points"]
    cd0, fs0, _ = chamfer_fscore(Pp, Gt)
    s, R, t = icp_similarity(Pp, Gt, seed=seed) if icp else (1.0, np.eye(3), np.zeros(3))
    Pa = s * Pp @ R.T + t
    cd, fs, d_gp = chamfer_fscore(Pa, Gt)
    thin = gt["thick"] < THIN_FRACTION
    out = dict(ok=True, chamfer=cd, f5=fs[0.05][0], f10=fs[0.10][0], p5=fs[0.05][1], r5=fs[0.05][2],
               p10=fs[0.10][1], r10=fs[0.10][2], chamfer_noicp=cd0, f5_noicp=fs0[0.05][0], f10_noicp=fs0[0.10][0],
               icp_scale=float(s), icp_rot_deg=rotation_angle_deg(R), icp_shift=float(np.linalg.norm(t)),
               watertight=is_watertight(Vp, Fp), n_thin=int(thin.sum()),
               thin_recall=float((d_gp[thin] < THIN_TAU).mean()) if thin.any() else None)
    return out


def failure(**kw):
    d = dict(ok=False, chamfer=None, f5=0.0, f10=0.0, watertight=False, watertight_engine=False, thin_recall=0.0)
    d.update(kw)
    return d


def run_mesh(binary, png, fov, out_obj, threads=1, timeout=600, weights=None, extra=()):
    env = dict(os.environ)
    env.setdefault("MYROOM_WEIGHTS", weights or os.path.join(ROOT, "Weights"))
    cmd = [binary, png, "--mode", "object", "--fov", f"{fov:.4f}", "-o", out_obj, "--json",
           "--threads", str(threads), *extra]
    t0 = time.time()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return dict(rc=124, seconds=time.time() - t0, summary=None, error="timeout")
    summary, error = None, None
    try:
        js = json.loads(r.stdout)
        item = js[0] if isinstance(js, list) else js
        summary = item.get("summary")
        error = item.get("error")
    except (ValueError, IndexError, AttributeError):
        error = (r.stderr or r.stdout).strip()[-300:]
    return dict(rc=r.returncode, seconds=time.time() - t0, summary=summary,
                error=error if r.returncode != 0 else None)


def write_oracle_maps(rec, stem):
    """The view's ground-truth maps as `mesh --depth/--back-depth/--mask` files; returns those arguments."""
    from PIL import Image
    front = np.asarray(rec["front"], np.float32)
    mask = np.asarray(rec["mask"], bool)
    back = np.where(mask, np.maximum(np.asarray(rec["back"], np.float32), front), front)
    paths = [stem + "_front.pfm", stem + "_back.pfm", stem + "_mask.png"]
    for path, values in zip(paths[:2], (front, back)):
        h, w = values.shape
        with open(path, "wb") as f:   # PFM: bottom row first, little-endian (negative scale)
            f.write(f"Pf\n{w} {h}\n-1.0\n".encode())
            f.write(np.ascontiguousarray(values[::-1]).astype("<f4").tobytes())
    Image.fromarray((mask * 255).astype(np.uint8)).save(paths[2])
    return ["--depth", paths[0], "--back-depth", paths[1], "--mask", paths[2]]


def evaluate_prediction(binary, rec, gt, png, obj, args, extra=()):
    r = run_mesh(binary, png, float(rec["fov"]), obj, args.threads, args.timeout, extra=extra)
    base = dict(rc=r["rc"], seconds=round(r["seconds"], 3))
    if r["rc"] != 0 or not os.path.exists(obj):
        return failure(error=r.get("error") or f"exit {r['rc']}", **base)
    V, F = load_obj(obj)
    if len(F) == 0:
        return failure(error="empty mesh", **base)
    out = score(V, F, gt, args.points, seed=1)
    summ = r["summary"] or {}
    out.update(base, watertight_engine=bool(summ.get("watertight", False)), faces=int(len(F)))
    if summ.get("cameraPosition") is not None:
        # the engine's camera in its own frame against the GT camera in the GT-normalised frame (both height 1)
        out["camera_err"] = float(np.linalg.norm(np.array(summ["cameraPosition"]) - gt["camera"]))
    return out


# ----------------------------------------------------------------------------- data
def iter_views(data_dirs):
    import glob
    for d in data_dirs:
        files = sorted(f for f in glob.glob(os.path.join(d, "*.npz")) if not f.endswith(".tmp.npz")) \
            if os.path.isdir(d) else [d]  # (a shard being written is *.tmp.npz)
        for f in files:
            z = np.load(f)
            keys = z.files
            arrays = {k: z[k] for k in keys}
            for i in range(len(arrays["rgb"])):
                yield f, i, {k: arrays[k][i] for k in keys}


def select(rec, args):
    """None if the view is used, else the reason it is skipped."""
    if str(rec["target_id"]) == "":
        return "no target"
    if float(rec["fill"]) < args.min_fill:
        return "small"
    m = np.asarray(rec["mask"], bool)
    if args.skip_border and (m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any()):
        return "mask on the border"
    return None


# ----------------------------------------------------------------------------- table
def summarise(rows, key):
    ok = [r for r in rows if r["ok"]]
    cd = np.array([r["chamfer"] for r in ok], float)
    f5, f10 = np.array([r["f5"] for r in rows], float), np.array([r["f10"] for r in rows], float)
    thin = [r["thin_recall"] for r in rows if r.get("has_thin")]
    return dict(method=key, views=len(rows), failures=len(rows) - len(ok),
                chamfer_mean=float(cd.mean()) if len(cd) else None, chamfer_median=float(np.median(cd)) if len(cd) else None,
                f5_mean=float(f5.mean()), f5_median=float(np.median(f5)),
                f10_mean=float(f10.mean()), f10_median=float(np.median(f10)),
                watertight=sum(bool(r["watertight"]) for r in rows),
                watertight_engine=sum(bool(r.get("watertight_engine", False)) for r in rows)
                if any("watertight_engine" in r for r in rows) else None,
                thin_mean=float(np.mean(thin)) if thin else None, thin_views=len(thin),
                f10_noicp_mean=float(np.mean([r["f10_noicp"] if r["ok"] else 0.0 for r in rows])),
                icp_scale_median=med([r["icp_scale"] for r in ok]), icp_rot_median=med([r["icp_rot_deg"] for r in ok]),
                camera_err_median=med([r["camera_err"] for r in ok if r.get("camera_err") is not None]),
                seconds_median=med([r["seconds"] for r in rows if "seconds" in r]))


def med(x):
    return float(np.median(x)) if len(x) else None


def table(summaries):
    f = lambda x, d=3: "–" if x is None else f"{x:.{d}f}"  # noqa: E731
    lines = ["| method | views | failures | Chamfer-L1 mean (median) | F@5% mean (median) | F@10% mean (median) "
             "| watertight (engine flag) | thin-part recall (views) |",
             "|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        wt = f"{s['watertight']}" + (f" ({s['watertight_engine']})" if s["watertight_engine"] is not None else "")
        lines.append(f"| {s['method']} | {s['views']} | {s['failures']} | {f(s['chamfer_mean'])} ({f(s['chamfer_median'])}) "
                     f"| {f(s['f5_mean'])} ({f(s['f5_median'])}) | {f(s['f10_mean'])} ({f(s['f10_median'])}) "
                     f"| {wt} | {f(s['thin_mean'])} ({s['thin_views']}) |")
    lines += ["", "| diagnostics | F@10% without ICP | ICP scale (median) | ICP rotation (median, deg) "
              "| engine camera vs GT camera (median, heights) | mesh run (median, s) |", "|---|---|---|---|---|---|"]
    for s in summaries:
        lines.append(f"| {s['method']} | {f(s['f10_noicp_mean'])} | {f(s['icp_scale_median'])} "
                     f"| {f(s['icp_rot_median'], 1)} | {f(s['camera_err_median'])} | {f(s['seconds_median'], 2)} |")
    return "\n".join(lines)


class MeshAction(argparse.Action):
    def __call__(self, parser, ns, values, option_string=None):
        lst = getattr(ns, "meshes", None) or []
        if option_string == "--mesh":
            lst.append([values, None])
        else:
            if not lst or lst[-1][1] is not None:
                parser.error("--label must follow its --mesh")
            lst[-1][1] = values
        ns.meshes = lst


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", nargs="+", default=[os.path.join(TRAINING, "data", "photoreal", "val")],
                    help="shard folders or .npz files")
    ap.add_argument("--mesh", action=MeshAction, dest="meshes", help="engine binary (repeatable)")
    ap.add_argument("--label", action=MeshAction, dest="meshes", help="label of the preceding --mesh")
    ap.add_argument("--limit", type=int, help="evaluate the first N usable views")
    ap.add_argument("--min-fill", type=float, default=0.03, help="skip targets filling less of the frame")
    ap.add_argument("--min-in-frame", type=float, default=0.95,
                    help="skip targets with less of their GT surface projecting inside the frame (cut by it)")
    ap.add_argument("--skip-border", action="store_true", help="also skip targets whose mask touches the border")
    ap.add_argument("--min-visible", type=float, default=0.0,
                    help="skip views where less of the in-frame GT surface projects onto the mask (occlusion)")
    ap.add_argument("--points", type=int, default=20000)
    ap.add_argument("--threads", type=int, default=1, help="--threads of the mesh binary")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per mesh run")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--oracle", metavar="MESH",
                    help="also run this binary on the view's ground-truth maps (--depth, --back-depth, --mask): "
                         "what the mesher makes of perfect maps, its ceiling (label 'oracle maps')")
    ap.add_argument("--cache", default=A.default_cache(), help="extracted catalog cache")
    ap.add_argument("--json", help="write per-view results here")
    ap.add_argument("--keep", help="keep the PNGs and OBJs in this folder")
    args = ap.parse_args(argv)
    meshes = [(os.path.abspath(p), lab or os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(p)))) or p)
              for p, lab in (args.meshes or [])]
    for p, _ in meshes + ([(os.path.abspath(args.oracle), "")] if args.oracle else []):
        if not os.access(p, os.X_OK):
            ap.error(f"{p} is not an executable")
    cat = Catalog(args.cache, args.points)
    work = args.keep or tempfile.mkdtemp(prefix="mesh3d_")
    os.makedirs(work, exist_ok=True)
    from PIL import Image

    skipped, views = {}, []
    t_start = time.time()
    for path, i, rec in iter_views(args.data):
        if args.limit is not None and len(views) >= args.limit:
            break
        why = select(rec, args)
        gt = None
        if why is None:
            gt = gt_view(cat, rec)
            in_frame, on_mask = visibility(rec, gt["points_cam"])
            if in_frame < args.min_in_frame:
                why = "cut by the frame"
            elif on_mask < args.min_visible:
                why = "occluded"
        if why is not None:
            skipped[why] = skipped.get(why, 0) + 1
            continue
        name = f"{os.path.splitext(os.path.basename(path))[0]}_{i:02d}"
        png = os.path.join(work, name + ".png")
        Image.fromarray(np.asarray(rec["rgb"], np.uint8)).save(png)
        v = dict(view=name, shard=path, index=i, target_id=str(rec["target_id"]), fill=float(rec["fill"]),
                 fov=float(rec["fov"]), layout=str(rec["layout"]), in_frame=in_frame, on_mask=on_mask,
                 place_err_m=gt["place_err"], gt_n_thin=int((gt["thick"] < THIN_FRACTION).sum()), results={})
        t0 = time.time()
        for binary, label in meshes:
            res = evaluate_prediction(binary, rec, gt, png, os.path.join(work, f"{name}_{label}.obj"), args)
            res["has_thin"] = v["gt_n_thin"] > 0
            v["results"][label] = res
        if args.oracle:
            extra = write_oracle_maps(rec, os.path.join(work, name))
            res = evaluate_prediction(os.path.abspath(args.oracle), rec, gt, png,
                                      os.path.join(work, f"{name}_oracle.obj"), args, extra)
            res["has_thin"] = v["gt_n_thin"] > 0
            v["results"]["oracle maps"] = res
        if not args.no_baseline:
            Vb, Fb = baseline_mesh(np.asarray(rec["mask"], bool))
            res = score(Vb, Fb, gt, args.points, seed=1)
            res["has_thin"] = v["gt_n_thin"] > 0
            v["results"]["baseline"] = res
        v["seconds"] = round(time.time() - t0, 2)
        views.append(v)
        msg = " ".join(f"{k} F10 {r['f10']:.3f}" + ("" if r["ok"] else f" (fail {r.get('rc')})")
                       for k, r in v["results"].items())
        print(f"[{len(views)}] {name} {v['target_id']} fill {v['fill']:.2f} place_err {gt['place_err']:.1e} m "
              f"thin {v['gt_n_thin']} | {msg} | {v['seconds']:.1f}s", flush=True)
    labels = [lab for _, lab in meshes] + (["oracle maps"] if args.oracle else []) + ([] if args.no_baseline else ["baseline"])
    summaries = [summarise([v["results"][lab] for v in views], lab) for lab in labels] if views else []
    elapsed = time.time() - t_start
    print()
    print(f"views used: {len(views)}; skipped: " + (", ".join(f"{k} {n}" for k, n in sorted(skipped.items())) or "none")
          + f"; views with thin parts: {sum(v['gt_n_thin'] > 0 for v in views)}; {elapsed:.0f} s")
    if views:
        print(f"GT placement vs target_verts: max {max(v['place_err_m'] for v in views):.2e} m")
        print()
        print(table(summaries))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(dict(args=vars(args), skipped=skipped, summaries=summaries, views=views, seconds=elapsed),
                      f, indent=1, default=lambda o: o.item() if hasattr(o, "item") else str(o))
    return summaries, views


if __name__ == "__main__":
    main()
