"""Parameter count and multiply-accumulates of mrdepth-unet at a given input size.

  python Training/scripts/flops.py --size 256 256
FLOPs are reported as 2 x MACs (convolutions, BN folded; upsampling, ReLU and the output
transforms are not counted, they are < 1% of the total).
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from mrdepth.model import MRDepthUNet  # noqa: E402


def count(widths, h, w):
    m = MRDepthUNet(widths).eval()
    macs = []

    def hook(mod, inp, out):
        macs.append(out.numel() * mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1] // mod.groups)

    for mod in m.modules():
        if isinstance(mod, torch.nn.Conv2d):
            mod.register_forward_hook(hook)
    with torch.no_grad():
        m(torch.zeros(1, 3, h, w))
    params = sum(p.numel() for p in m.parameters())
    return params, sum(macs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, nargs=2, default=[256, 256])
    ap.add_argument("--widths", default="16,32,64,128,256")
    a = ap.parse_args()
    p, macs = count([int(v) for v in a.widths.split(",")], *a.size)
    print(f"params {p} ({p / 1e6:.3f} M); at {a.size[0]}x{a.size[1]}: {macs / 1e9:.3f} GMAC = {2 * macs / 1e9:.3f} GFLOP")


if __name__ == "__main__":
    main()
