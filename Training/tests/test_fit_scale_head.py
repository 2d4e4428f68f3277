"""Tests of Training/scripts/fit_scale_head.py and the scale head's features (mrdepth.model.scale_features):
targets, the ridge fit, the scores, and that evaluate.py turns a fitted head into the per-image factor.

  cd Training && /opt/venv/bin/python -m unittest tests/test_fit_scale_head.py
"""
import math
import os
import sys
import unittest

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, ROOT)
import fit_scale_head as S  # noqa: E402
import evaluate as EV  # noqa: E402
from mrdepth.model import MRDepthUNet, scale_features  # noqa: E402


class ScaleFeatures(unittest.TestCase):
    def test_size_features_of_a_known_mask(self):
        mask = torch.zeros(2, 10, 20)
        mask[0, 2:6, 5:10] = 0.9                   # 20 of 200 pixels, rows 2..5
        f = scale_features(torch.full((2, 3), 7.0), mask)
        self.assertEqual(tuple(f.shape), (2, 5))
        self.assertAlmostEqual(f[0, 3].item(), math.log(math.sqrt(0.1)), places=5)
        self.assertAlmostEqual(f[0, 4].item(), math.log(0.4), places=5)
        # no object: both floored at 1 %
        self.assertAlmostEqual(f[1, 3].item(), math.log(0.01), places=5)
        self.assertAlmostEqual(f[1, 4].item(), math.log(0.01), places=5)


class FitScale(unittest.TestCase):
    def test_targets_are_log_canonical_depth_over_front(self):
        front = np.ones((2, 8, 8), np.float32)
        gt = np.full((2, 8, 8), 3.0, np.float32)
        mask = np.zeros((2, 8, 8), bool)
        mask[0, 2:7, 2:7] = True                  # 25 pixels: an object; view 1 has none
        t = S.log_scale_targets(front, gt, mask, np.array([60.0, 60.0]))
        self.assertAlmostEqual(t[0], math.log(3.0), places=6)
        self.assertTrue(np.isnan(t[1]))
        # a narrower lens sees the same picture of an object farther away: its canonical depth is smaller
        t30 = S.log_scale_targets(front, gt, mask, np.array([30.0, 30.0]))
        self.assertAlmostEqual(t30[0], math.log(3.0 * math.tan(math.radians(15)) / math.tan(math.radians(30))), places=6)

    def test_ridge_recovers_a_linear_log_scale_and_beats_the_constant(self):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(2000, 6)) * [1, 2, 3, 1, 1, 1] + 5
        t = x @ np.array([0.3, -0.1, 0.05, 0, 0, 0.2]) - 1.0 + rng.normal(0, 0.01, 2000)
        w, b = S.fit(x, t, 1e-6)
        np.testing.assert_allclose(w, [0.3, -0.1, 0.05, 0, 0, 0.2], atol=0.01)
        head, const = S.size_scores(x @ w + b, t), S.size_scores(np.full_like(t, np.median(t)), t)
        self.assertLess(head["size_error_median"], 0.02)
        self.assertGreater(const["size_error_median"], 0.1)

    def test_scores(self):
        s = S.size_scores(np.log([1.0, 1.1, 2.0, 0.5]), np.zeros(4))
        self.assertAlmostEqual(s["size_error_median"], (0.1 + 0.5) / 2, places=6)
        self.assertAlmostEqual(s["within_15pct"], 0.5)

    def test_evaluate_applies_a_fitted_head(self):
        torch.manual_seed(0)
        model = MRDepthUNet([4, 4, 4, 4, 4], scale_head=True).eval()
        with torch.no_grad():
            model.scale.weight.zero_()
            model.scale.bias.fill_(math.log(2.0))
        rgb = np.random.default_rng(1).integers(0, 255, (3, 64, 64, 3), dtype=np.uint8)
        cfg = {"metric_depth": {"canonical_focal_px": 166.2769, "scale_head": {}}}
        np.testing.assert_allclose(EV.head_scales(model, cfg, rgb, (64, 64)), 2.0, rtol=1e-5)
        np.testing.assert_allclose(EV.head_scales(model, {"metric_depth": {"canonical_focal_px": 1}}, rgb, (64, 64)), 1.0)


if __name__ == "__main__":
    unittest.main()
