"""Tests of Training/scripts/fit_thickness_gain.py: the slope, and the whole script on a tiny shard with
weights whose thickness is known (random weights of the real architecture, exported in a temporary folder).

  cd Training && /opt/venv/bin/python -m unittest tests/test_fit_thickness_gain.py
"""
import json
import os
import sys
import tempfile
import unittest

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, ROOT)
import fit_thickness_gain as G  # noqa: E402
import evaluate as EV  # noqa: E402


class FitGain(unittest.TestCase):
    def test_slope_recovers_a_known_gain(self):
        rng = np.random.default_rng(0)
        pred = rng.uniform(0.01, 0.2, 5000)
        true = 2.4 * pred + rng.normal(0, 0.01, pred.shape)
        self.assertAlmostEqual(G.fit_gain(pred, true), 2.4, delta=0.02)
        self.assertAlmostEqual(G.fit_gain(pred, pred), 1.0, places=6)
        with self.assertRaises(ValueError):
            G.fit_gain(np.zeros(10), np.ones(10))

    def test_script_fits_the_true_over_predicted_thickness_and_writes_it(self):
        from mrdepth.model import MRDepthUNet
        from safetensors.torch import save_file
        torch.manual_seed(0)
        widths = [4, 4, 4, 4, 4]
        model = MRDepthUNet(widths).eval()
        with tempfile.TemporaryDirectory() as tmp:
            weights = os.path.join(tmp, "mrdepth.safetensors")
            save_file({k: v.contiguous() for k, v in model.state_dict().items() if v.dtype.is_floating_point}, weights)
            with open(os.path.join(tmp, "mrdepth.json"), "w") as f:
                json.dump({"architecture": "mrdepth-unet", "widths": widths, "mean": [0.485, 0.456, 0.406],
                           "std": [0.229, 0.224, 0.225]}, f)
            rng = np.random.default_rng(1)
            rgb = rng.integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
            loaded, _ = EV.load_model(weights)
            p = EV.predict(loaded, rgb)
            # Ground truth: exactly 3x the network's thickness; the mask the network's own (so every pixel counts).
            front = p[:, 0]
            back = front * (1 + 3.0 * (p[:, 1] / p[:, 0] - 1))
            mask = np.ones_like(front)
            data = os.path.join(tmp, "val")
            os.makedirs(data)
            np.savez(os.path.join(data, "val_0.npz"), rgb=rgb, front=front, back=back, mask=mask,
                     target_id=np.array(["a", "b", ""]))
            # the untrained net's mask is about 0.5 everywhere: accept every pixel for this test
            original = EV.predict
            def with_full_mask(*args, **kw):
                y = original(*args, **kw)
                y[:, 2] = 1
                return y
            EV.predict = with_full_mask
            try:
                gain = G.main(["--weights", weights, "--data", data, "--min-pixels", "1", "--write"])
            finally:
                EV.predict = original
            self.assertAlmostEqual(gain, 3.0, delta=1e-3)
            with open(os.path.join(tmp, "mrdepth.json")) as f:
                self.assertEqual(json.load(f)["thickness_gain"], 3.0)


if __name__ == "__main__":
    unittest.main()
