"""Checks for the renderer, metrics and model contract.  Run: /opt/venv/bin/python -m unittest discover Training/tests"""
import math
import os
import sys
import unittest

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from mrdepth import geometry as G  # noqa: E402
from mrdepth import metrics as M  # noqa: E402
from mrdepth.model import MRDepthUNet, normalize  # noqa: E402
from mrdepth.render import render  # noqa: E402


class GeometryTests(unittest.TestCase):
    O = np.array([[0, 0.0, 5], [0.5, 0.0, 5], [3, 0, 5]])
    D = np.array([[0, 0, -1.0]] * 3)

    def check(self, prim, tin, tout):
        a, b, _ = prim.interval(self.O, self.D)
        np.testing.assert_allclose(a, tin, atol=2e-3)
        np.testing.assert_allclose(b, tout, atol=2e-3)

    def test_convex(self):
        self.check(G.Box([0, 0, 0], [1, 1, 1], G.rot_y(0.0), None), [4, 4, np.inf], [6, 6, np.inf])
        s = np.sqrt(1 - 0.25)
        self.check(G.Sphere([0, 0, 0], [1, 1, 1], np.eye(3), None), [4, 5 - s, np.inf], [6, 5 + s, np.inf])
        self.check(G.Cylinder([0, 0, 0], [1, 1, 1], G.rot_x(np.pi / 2), None), [4, 4, np.inf], [6, 6, np.inf])

    def test_rotated_box(self):
        b = G.Box([0, 0, 0], [1, 1, 1], G.rot_y(np.pi / 4), None)
        a, e, _ = b.interval(self.O[:1], self.D[:1])
        np.testing.assert_allclose([a[0], e[0]], [5 - np.sqrt(2), 5 + np.sqrt(2)], atol=1e-6)

    def test_sdf(self):
        tube = np.sqrt(0.3 ** 2 - 0.1 ** 2)
        self.check(G.Torus([0, 0, 0], 0.6, 0.3, G.rot_x(np.pi / 2), None), [np.inf, 5 - tube, np.inf], [np.inf, 5 + tube, np.inf])
        self.check(G.CappedCone([0, 0, 0], 1, 1, 0.5, G.rot_x(np.pi / 2), None), [4, 4, np.inf], [6, 6, np.inf])
        self.check(G.RoundBox([0, 0, 0], [1, 1, 1], 0.2, np.eye(3), None), [4, 4, np.inf], [6, 6, np.inf])


class RenderTests(unittest.TestCase):
    def test_deterministic_and_consistent(self):
        for seed in (3, 5, 11):
            a, b = render(seed, 64), render(seed, 64)
            self.assertTrue((a["rgb"] == b["rgb"]).all())
            self.assertTrue(np.array_equal(a["front"], b["front"]))
            f, bk, m = a["front"], a["back"], a["mask"]
            self.assertTrue(np.isfinite(f).all() and (f > 0).all())
            self.assertTrue((bk >= f - 1e-5).all())
            np.testing.assert_array_equal(bk[~m], f[~m])
            if a["kind"] == "room":
                self.assertFalse(m.any())
            else:
                self.assertTrue(m.any())
                self.assertTrue((bk[m] > f[m]).mean() > 0.9)


class MetricTests(unittest.TestCase):
    def test_alignment_invariance(self):
        r = np.random.default_rng(0)
        gt = r.uniform(1, 10, (32, 32))
        pred = 1.0 / (0.3 / gt + 0.05)  # any positive affine map of disparity
        m = np.zeros((32, 32), bool)
        m[8:20, 8:20] = True
        back = 1.0 / (0.3 / (gt * 1.1) + 0.05)
        out = M.score_image(pred, back, m.astype(float), gt, gt * 1.1, m)
        self.assertLess(out["front_absrel"], 1e-6)
        self.assertEqual(out["front_d1"], 1.0)
        self.assertEqual(out["mask_iou"], 1.0)
        self.assertLess(out["back_absrel"], 1e-6)

    def test_baseline_is_worse_than_truth(self):
        h = w = 32
        gt = np.repeat(np.linspace(2, 8, h)[:, None], w, 1)
        f, b, m = M.baseline_constant(h, w)
        out = M.score_image(f, b, m, gt, gt, np.zeros((h, w), bool))
        self.assertGreater(out["front_absrel"], 0.1)


class LossTests(unittest.TestCase):
    def test_lovasz_hinge(self):
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
        from train import lovasz_hinge
        labels = torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0])
        # every pixel on the right side with a margin of at least 1: no loss
        self.assertEqual(lovasz_hinge(torch.tensor([2.0, 1.0, -1.0, -3.0, -1.5]), labels).item(), 0.0)
        # all logits 0: every hinge error is 1, and the loss is the Jaccard loss of predicting everything
        self.assertAlmostEqual(lovasz_hinge(torch.zeros(5), labels).item(), 1.0, places=6)
        # one missed object pixel costs more than one extra background pixel (IoU 1/2 vs 2/3)
        missed = lovasz_hinge(torch.tensor([2.0, -2.0, -2.0, -2.0, -2.0]), labels).item()
        extra = lovasz_hinge(torch.tensor([2.0, 2.0, 2.0, -2.0, -2.0]), labels).item()
        self.assertGreater(missed, extra)
        # the gradient at 0 pushes object logits up
        x = torch.zeros(5, requires_grad=True)
        lovasz_hinge(x, labels).backward()
        self.assertTrue((x.grad[:2] < 0).all())


class AugmentTests(unittest.TestCase):
    def test_native_windows_keep_image_and_labels_aligned(self):
        """Native mode (render larger than the training input): the output is a window of about S render
        pixels, the photo and the labels are sampled from the same window, and most windows hold the object."""
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
        from train import augment
        B, R, S = 32, 128, 48
        yy, xx = np.mgrid[0:R, 0:R]
        mask = np.zeros((B, R, R), bool)
        depth = np.zeros((B, R, R), np.float32)
        for i in range(B):  # a disc at a different place in every image; depth = column index + 1
            cx, cy = 20 + (i * 37) % 88, 20 + (i * 53) % 88
            mask[i] = (xx - cx) ** 2 + (yy - cy) ** 2 < 15 ** 2
            depth[i] = xx + 1.0
        rgb = np.repeat((mask * 255).astype(np.uint8)[..., None], 3, -1)  # grey: bright on the object
        g = torch.Generator().manual_seed(0)
        x, fr, bk, mk, crop = augment(torch.from_numpy(rgb), torch.from_numpy(depth), torch.from_numpy(depth),
                                      torch.from_numpy(mask), g, out_size=S)
        self.assertEqual(tuple(x.shape), (B, 3, S, S))
        self.assertEqual(tuple(mk.shape), (B, S, S))
        holding = 0
        for i in range(B):
            grey = x[i].mean(0)
            if mk[i].any() and (~mk[i]).any():
                holding += 1
                bright = grey > (grey[mk[i]].mean() + grey[~mk[i]].mean()) / 2
                self.assertGreater((bright == mk[i]).float().mean().item(), 0.95)
            # the window spans about S render pixels (x0.8..1.25): the depth (= column) changes by that much
            span = (fr[i, S // 2, -1] - fr[i, S // 2, 0]).abs().item()
            self.assertGreater(span, 0.8 * S * 0.8 - 2)
            self.assertLess(span, 1.25 * S + 2)
            # the crop fraction it reports is the share of the render's width the window covers
            self.assertAlmostEqual(crop[i].item() * R, span * (S - 1) / S + 1, delta=3)
        self.assertGreaterEqual(holding, B // 2)

    def test_metric_targets_use_the_canonical_camera(self):
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
        from train import canonical_factor, targets
        front = torch.full((2, 4, 4), 3.0)
        mask = torch.ones(2, 4, 4, dtype=torch.bool)
        # a 60 degree view seen whole is the canonical camera: metres stay metres
        canon = canonical_factor(torch.tensor([60.0, 90.0]), torch.tensor([1.0, 0.5]))
        self.assertAlmostEqual(canon[0].item(), 1.0, places=5)
        # a 90 degree view cropped to half its width: tan(45)/2 / tan(30)
        self.assertAlmostEqual(canon[1].item(), 0.5 / math.tan(math.radians(30)), places=5)
        f, _ = targets(front, front * 1.5, mask, canon)
        self.assertAlmostEqual(f[0, 0, 0].item(), 3.0, places=5)
        self.assertAlmostEqual(f[1, 0, 0].item(), 3.0 * canon[1].item(), places=5)
        # without a factor (NaN) the image is median-normalised as before
        f, _ = targets(front, front, mask, torch.tensor([float("nan"), float("nan")]))
        self.assertTrue(torch.allclose(f, torch.ones_like(f)))


class ModelTests(unittest.TestCase):
    def test_output_contract(self):
        torch.manual_seed(0)
        m = MRDepthUNet().eval()
        with torch.no_grad():
            y = m(normalize(torch.rand(2, 3, 64, 96)))
        self.assertEqual(tuple(y.shape), (2, 3, 64, 96))
        self.assertTrue((y[:, 0] > 0).all())
        self.assertTrue((y[:, 1] >= y[:, 0]).all())
        self.assertTrue(((y[:, 2] >= 0) & (y[:, 2] <= 1)).all())
        names = set(m.state_dict())
        for k in ("stem.conv.weight", "enc4.conv2.bn.running_var", "dec1.conv1.conv.weight", "head.out.bias"):
            self.assertIn(k, names)

    def test_flip_average(self):
        """run_net with flip averaging (flip_average in the json) is the mean of the two passes, and mirror-equivariant."""
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
        from evaluate import run_net
        torch.manual_seed(0)
        m = MRDepthUNet((4, 8, 8, 12, 16)).eval()
        x = normalize(torch.rand(1, 3, 64, 96))
        with torch.no_grad():
            plain, mirrored = m(x), m(x.flip(3)).flip(3)
            y = run_net(m, x, flip=True)
            self.assertTrue(torch.allclose(y, 0.5 * (plain + mirrored)))
            self.assertFalse(torch.allclose(y, plain, atol=1e-4))
            self.assertTrue(torch.allclose(run_net(m, x.flip(3), flip=True).flip(3), y, atol=1e-6))
            self.assertTrue(torch.equal(run_net(m, x), plain))


if __name__ == "__main__":
    unittest.main()
