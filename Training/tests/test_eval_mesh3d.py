"""Tests of the 3D mesh evaluation (Training/scripts/eval_mesh3d.py): metrics, ICP with scale, watertightness,
thin-part detection, failure accounting, and the ground-truth placement on a real val shard.

  cd Training && /opt/venv/bin/python -m unittest tests/test_eval_mesh3d.py

The shard test needs Training/data/photoreal/val/*.npz and the extracted catalogs (skipped without them).
"""
import glob
import os
import stat
import sys
import tempfile
import unittest

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import eval_mesh3d as E  # noqa: E402

VAL = os.path.join(ROOT, "data", "photoreal", "val")
SHARDS = sorted(f for f in glob.glob(os.path.join(VAL, "*.npz")) if not f.endswith(".tmp.npz"))


def unit_cube():
    """Side 1, standing on y = 0, centred in x and z: already in the normalised frame."""
    return E.box_mesh([-0.5, 0, -0.5], [0.5, 1, 0.5])


def rot(axis, deg):
    a = np.radians(deg)
    c, s = np.cos(a), np.sin(a)
    i, j = [(1, 2), (0, 2), (0, 1)][axis]
    R = np.eye(3)
    R[i, i], R[i, j], R[j, i], R[j, j] = c, -s, s, c
    return R


class OracleMapTests(unittest.TestCase):
    def test_oracle_maps_are_pfm_and_png_the_engine_reads(self):
        rng = np.random.default_rng(0)
        front = rng.uniform(1, 3, (6, 8)).astype(np.float32)
        mask = np.zeros((6, 8), bool)
        mask[2:5, 3:7] = True
        back = front + np.where(mask, 0.5, 0).astype(np.float32)
        back[2, 3] = front[2, 3] - 0.1   # a back nearer than the front is raised to it
        with tempfile.TemporaryDirectory() as tmp:
            args = E.write_oracle_maps(dict(front=front, back=back, mask=mask), os.path.join(tmp, "v"))
            self.assertEqual(args[0::2], ["--depth", "--back-depth", "--mask"])
            for path, want in ((args[1], front), (args[3], np.where(mask, np.maximum(back, front), front))):
                with open(path, "rb") as f:
                    self.assertEqual(f.readline(), b"Pf\n")
                    self.assertEqual(f.readline(), b"8 6\n")
                    self.assertLess(float(f.readline()), 0)   # little-endian
                    got = np.frombuffer(f.read(), "<f4").reshape(6, 8)[::-1]   # bottom row first
                np.testing.assert_array_equal(got, want)
            from PIL import Image
            np.testing.assert_array_equal(np.asarray(Image.open(args[5])) > 127, mask)


class MetricTests(unittest.TestCase):
    def test_cube_against_itself(self):
        V, F = unit_cube()
        gt = E.gt_from_mesh(V, F, 20000, seed=1)
        r = E.score(V, F, gt, 20000, seed=1)  # same seed: the same points
        self.assertAlmostEqual(r["chamfer"], 0.0, places=9)
        self.assertEqual((r["f5"], r["f10"]), (1.0, 1.0))
        self.assertAlmostEqual(r["icp_scale"], 1.0, places=6)
        r = E.score(V, F, gt, 20000, seed=2)  # other samples of the same surface
        self.assertLess(r["chamfer"], 0.01)
        self.assertGreater(r["f5"], 0.999)

    def test_icp_with_scale_recovers_a_similarity(self):
        # an asymmetric box, so the transform is unique
        V, F = E.box_mesh([-0.5, 0, -0.3], [0.5, 1, 0.2])
        gt = E.gt_from_mesh(V, F, 20000, seed=1)
        R = rot(1, 14) @ rot(0, -9)
        Vt = 1.7 * V @ R.T + np.array([0.3, -2.0, 5.0])
        self.assertLess(E.score(Vt, F, gt, 20000, seed=3, icp=False)["f5"], 0.8)
        r = E.score(Vt, F, gt, 20000, seed=3)
        self.assertGreater(r["f5"], 0.99)
        self.assertLess(r["chamfer"], 0.01)
        # and on the points themselves: the inverse transform
        P, _ = E.sample_surface(V, F, 8000, 0)
        s, R2, t = E.icp_similarity(0.6 * P @ rot(2, 10).T + 0.05, P)
        self.assertAlmostEqual(s * 0.6, 1.0, places=2)
        self.assertLess(E.rotation_angle_deg(R2 @ rot(2, 10)), 1.0)

    def test_half_size_cube_without_icp(self):
        V, F = unit_cube()
        Vh, Fh = E.box_mesh([-0.25, 0, -0.25], [0.25, 0.5, 0.25])  # on the same floor, same axis
        gt, _ = E.sample_surface(V, F, 60000, 1)
        pred, _ = E.sample_surface(Vh, Fh, 60000, 2)
        _, fs, _ = E.chamfer_fscore(pred, gt)
        a = 0.5
        for tau in E.TAUS:
            # precision: its bottom face and the strips of its sides below tau; recall: the unit cube's bottom
            # within tau of the small square (square + 4 strips + 4 quarter discs)
            p = (a * a + 4 * a * tau) / (6 * a * a)
            rc = (a * a + 4 * a * tau + np.pi * tau ** 2) / 6
            f = 2 * p * rc / (p + rc)
            self.assertAlmostEqual(fs[tau][1], p, delta=0.008)
            self.assertAlmostEqual(fs[tau][2], rc, delta=0.004)
            self.assertAlmostEqual(fs[tau][0], f, delta=0.006)

    def test_watertight(self):
        V, F = unit_cube()
        self.assertTrue(E.is_watertight(V, F))
        self.assertFalse(E.is_watertight(V, F[1:]))  # a hole
        # unwelded copy (every triangle its own vertices): still closed once identical positions are welded
        self.assertTrue(E.is_watertight(V[F].reshape(-1, 3), np.arange(3 * len(F)).reshape(-1, 3)))
        # a fin (an edge used three times) is not watertight either
        Vf = np.vstack([V, [[0.5, 0.0, 2.0]]])
        self.assertFalse(E.is_watertight(Vf, np.vstack([F, [[4, 5, 8]]])))

    def test_baseline_box(self):
        mask = np.zeros((50, 60), bool)
        mask[10:30, 5:15] = True  # 10 wide, 20 tall
        V, F = E.baseline_mesh(mask)
        np.testing.assert_allclose(V.min(0), [-0.25, 0, -0.25])
        np.testing.assert_allclose(V.max(0), [0.25, 1, 0.25])
        self.assertTrue(E.is_watertight(V, F))


class ThinTests(unittest.TestCase):
    def test_slab_on_a_cube_is_thin_the_cube_is_not(self):
        Vc, Fc = E.box_mesh([0, 0, 0], [1, 1, 1])
        Vs, Fs = E.box_mesh([1, 0.5, 0.2], [1.6, 0.52, 0.8])  # 2 % of the height thick, sticking out of a side
        Fs = Fs[:, ::-1]  # wound inwards: the orientation step must repair it
        V = np.vstack([Vc, Vs])
        F = np.vstack([Fc, Fs + len(Vc)])
        gt = E.gt_from_mesh(V, F, 20000, seed=4)
        P = gt["points"] / gt["scale"] + gt["anchor"]  # back to the mesh's frame (height 1 already)
        thin = gt["thick"] < E.THIN_FRACTION
        on_slab = P[:, 0] > 1 + 1e-6
        faces = on_slab & ((P[:, 1] < 0.5 + 1e-9) | (P[:, 1] > 0.52 - 1e-9))  # its two 0.6 x 0.6 faces
        self.assertGreater(faces.sum(), 1000)
        self.assertTrue(np.all(thin[faces]))
        np.testing.assert_allclose(gt["thick"][faces], 0.02, atol=1e-6)
        # the cube (and the slab's face against it, whose ray crosses the slab's 0.6 length) is not thin
        self.assertEqual(thin[~on_slab].sum(), 0)
        # the slab's narrow sides (0.6 deep along the ray) are not thin either
        self.assertFalse(np.any(thin[on_slab & ~faces]))

    def test_single_sided_sheet_is_thin(self):
        Vc, Fc = E.box_mesh([0, 0, 0], [1, 1, 1])
        Vq = np.array([[1.5, 0.0, 0.0], [2.5, 0.0, 0.0], [2.5, 0.0, 1.0], [1.5, 0.0, 1.0]])
        F = np.vstack([Fc, np.array([[0, 1, 2], [0, 2, 3]]) + len(Vc)])
        gt = E.gt_from_mesh(np.vstack([Vc, Vq]), F, 20000, seed=5)
        P = gt["points"] / gt["scale"] + gt["anchor"]
        sheet = P[:, 0] > 1.4
        self.assertTrue(np.all(gt["thick"][sheet] < 1e-9))
        self.assertFalse(np.any(gt["thick"][~sheet] < E.THIN_FRACTION))

    def test_ray_grid_matches_brute_force(self):
        rng = np.random.default_rng(0)
        V = (rng.random((200, 1, 3)) + rng.normal(0, 0.06, (200, 3, 3))).reshape(-1, 3)
        F = np.arange(600).reshape(-1, 3)
        O = rng.random((500, 3))
        D = rng.normal(size=(500, 3))
        D /= np.linalg.norm(D, axis=1, keepdims=True)
        fast = E.first_hits(V, F, O, D, 0.3)
        slow = E.first_hits(V, F, O, D, 0.3, cells_per_ray=0.01)  # one cell: every triangle against every ray
        np.testing.assert_array_equal(fast, slow)
        self.assertGreater(np.isfinite(slow).sum(), 20)


class FailureTests(unittest.TestCase):
    def test_failing_binary_counts_as_failure(self):
        tmp = tempfile.mkdtemp()
        fake = os.path.join(tmp, "mesh")
        with open(fake, "w") as f:
            f.write('#!/bin/sh\necho \'[{"ok": false, "error": "no object"}]\'\nexit 65\n')
        os.chmod(fake, os.stat(fake).st_mode | stat.S_IEXEC)
        V, F = unit_cube()
        gt = E.gt_from_mesh(V, F, 2000, seed=1)

        class Args:
            threads, timeout, points = 1, 30, 2000
        r = E.evaluate_prediction(fake, {"fov": 60.0}, gt, os.path.join(tmp, "x.png"), os.path.join(tmp, "x.obj"),
                                  Args)
        self.assertFalse(r["ok"])
        self.assertEqual((r["rc"], r["f5"], r["f10"], r["watertight"]), (65, 0.0, 0.0, False))
        ok = E.score(V, F, gt, 2000, seed=1)
        s = E.summarise([dict(r, has_thin=False), dict(ok, has_thin=False)], "m")
        self.assertEqual((s["views"], s["failures"]), (2, 1))
        self.assertAlmostEqual(s["f10_mean"], 0.5)
        self.assertAlmostEqual(s["chamfer_mean"], ok["chamfer"])  # Chamfer over the successful runs


@unittest.skipUnless(SHARDS, "no val shards (Training/data/photoreal/val)")
class ShardTests(unittest.TestCase):
    def test_gt_placement_matches_target_verts(self):
        try:
            cat = E.Catalog(points=4000)
        except FileNotFoundError as e:
            self.skipTest(str(e))
        n = 0
        on_mask = []
        for path, i, rec in E.iter_views(SHARDS[:1]):
            if str(rec["target_id"]) == "":
                continue
            if not os.path.exists(E.A.model_path(cat.cache, cat.models[str(rec["target_id"])])):
                self.skipTest("catalogs not extracted")
            gt = E.gt_view(cat, rec)
            self.assertLess(gt["place_err"], 1e-5, f"{path} view {i}")  # metres; float32 records
            # the whole placed mesh inside the recorded world box
            lo, hi = gt["verts_world"].min(0), gt["verts_world"].max(0)
            np.testing.assert_allclose(lo, rec["target_lo"], atol=1e-5)
            np.testing.assert_allclose(hi, rec["target_hi"], atol=1e-5)
            # the normalised GT is in the engine's frame
            Vn = (gt["verts_cam"] - gt["anchor"]) * gt["scale"]
            np.testing.assert_allclose([Vn[:, 1].min(), Vn[:, 1].max()], [0, 1], atol=1e-9)
            np.testing.assert_allclose(Vn.min(0)[[0, 2]], -Vn.max(0)[[0, 2]], atol=1e-9)
            self.assertTrue(np.all((gt["points"][:, 1] > -1e-9) & (gt["points"][:, 1] < 1 + 1e-9)))
            # camera convention: the GT projects onto the target's mask
            in_frame, m = E.visibility(rec, gt["points_cam"])
            if in_frame > 0.95:
                on_mask.append(m)
            n += 1
        self.assertGreater(n, 0)
        self.assertTrue(on_mask)
        self.assertGreater(np.median(on_mask), 0.9)


if __name__ == "__main__":
    unittest.main()
