#!/usr/bin/env python3
"""Makes the DepthNet parity fixtures (Tests/DepthNetTests/Fixtures) with PyTorch + transformers.

Everything is randomly initialised from fixed seeds; nothing is downloaded.

    /opt/venv/bin/python Training/parity/make_fixtures.py            # all fixtures
    /opt/venv/bin/python Training/parity/make_fixtures.py layers     # only layers.safetensors

Outputs (all small, float32):
  layers.safetensors         inputs, parameters and outputs of single layers (conv, conv-transpose,
                             resize, pooling, norms, attention, activations)
  mrdepth/                   mrdepth.json + mrdepth.safetensors (f32), input.safetensors, output.safetensors
  mrdepth-f16/               the same weights stored as f16, with the f16 model's reference output
  dav2/                      a tiny Depth Anything V2 (config.json + model.safetensors with the published
                             tensor names), input.safetensors, output.safetensors
  dav2-bf16/                 the same tiny model stored as bf16, with its reference output
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "Tests" / "DepthNetTests" / "Fixtures"
sys.path.insert(0, str(ROOT / "Training"))


def c(t: torch.Tensor) -> torch.Tensor:
    return t.detach().float().contiguous().clone()


def make_layers() -> None:
    torch.manual_seed(1234)
    out: dict[str, torch.Tensor] = {}

    def conv_case(name, cin, cout, k, stride, padding, groups, h, w, bias=True):
        conv = nn.Conv2d(cin, cout, k, stride=stride, padding=padding, groups=groups, bias=bias)
        x = torch.randn(1, cin, h, w)
        out[f"{name}.x"] = c(x)
        out[f"{name}.weight"] = c(conv.weight)
        if bias:
            out[f"{name}.bias"] = c(conv.bias)
        out[f"{name}.y"] = c(conv(x))

    conv_case("conv3x3", 5, 7, 3, 1, 1, 1, 9, 11)
    conv_case("conv3x3_s2", 5, 8, 3, 2, 1, 1, 10, 13)
    conv_case("conv5x5_p2_nobias", 3, 4, 5, 1, 2, 1, 8, 7, bias=False)
    conv_case("conv_groups2", 4, 6, 3, 1, 1, 2, 7, 6)
    conv_case("depthwise", 6, 6, 3, 1, 1, 6, 8, 9)
    conv_case("depthwise_s2", 6, 6, 3, 2, 1, 6, 9, 8)
    conv_case("conv1x1", 9, 5, 1, 1, 0, 1, 6, 7)
    conv_case("conv_patch", 3, 8, 4, 4, 0, 1, 12, 16)

    def convt_case(name, cin, cout, k, stride, padding, h, w):
        layer = nn.ConvTranspose2d(cin, cout, k, stride=stride, padding=padding)
        x = torch.randn(1, cin, h, w)
        out[f"{name}.x"] = c(x)
        out[f"{name}.weight"] = c(layer.weight)
        out[f"{name}.bias"] = c(layer.bias)
        out[f"{name}.y"] = c(layer(x))

    convt_case("convt_k2s2", 4, 3, 2, 2, 0, 5, 6)
    convt_case("convt_k4s4", 3, 5, 4, 4, 0, 3, 4)
    convt_case("convt_k3s2p1", 4, 3, 3, 2, 1, 5, 5)

    # Conv + BatchNorm (eval) + ReLU: the Swift side folds the BN into the conv.
    conv = nn.Conv2d(4, 6, 3, padding=1, bias=False)
    bn = nn.BatchNorm2d(6)
    bn.running_mean.uniform_(-0.5, 0.5)
    bn.running_var.uniform_(0.5, 2.0)
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.uniform_(-0.3, 0.3)
    bn.eval()
    x = torch.randn(1, 4, 7, 8)
    out["convbn.x"] = c(x)
    out["convbn.weight"] = c(conv.weight)
    for k in ("weight", "bias", "running_mean", "running_var"):
        out[f"convbn.bn.{k}"] = c(getattr(bn, k))
    out["convbn.y"] = c(F.relu(bn(conv(x))))

    x = torch.randn(1, 3, 5, 7)
    out["resize.x"] = c(x)
    for (h, w) in ((10, 14), (13, 17), (3, 4)):
        for ac in (True, False):
            out[f"resize.bilinear_{h}x{w}_ac{int(ac)}"] = c(F.interpolate(x, size=(h, w), mode="bilinear", align_corners=ac))
        out[f"resize.nearest_{h}x{w}"] = c(F.interpolate(x, size=(h, w), mode="nearest"))
        out[f"resize.bicubic_{h}x{w}"] = c(F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False))
    out["resize.bilinear_x2_ac0"] = c(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))
    out["resize.bilinear_x2_ac1"] = c(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True))

    x = torch.randn(1, 3, 9, 8)
    out["pool.x"] = c(x)
    out["pool.max_k2s2"] = c(F.max_pool2d(x, 2, 2))
    out["pool.max_k3s2p1"] = c(F.max_pool2d(x, 3, 2, 1))
    out["pool.avg_k2s2"] = c(F.avg_pool2d(x, 2, 2))
    out["pool.avg_k3s2p1"] = c(F.avg_pool2d(x, 3, 2, 1))

    x = torch.randn(11, 24) * 3 + 1
    ln = nn.LayerNorm(24, eps=1e-6)
    ln.weight.data.uniform_(0.5, 1.5)
    ln.bias.data.uniform_(-0.5, 0.5)
    out["layernorm.x"] = c(x)
    out["layernorm.weight"] = c(ln.weight)
    out["layernorm.bias"] = c(ln.bias)
    out["layernorm.y"] = c(ln(x))

    lin = nn.Linear(24, 10)
    out["linear.x"] = c(x)
    out["linear.weight"] = c(lin.weight)
    out["linear.bias"] = c(lin.bias)
    out["linear.y"] = c(lin(x))
    out["linear.y_gelu"] = c(F.gelu(lin(x)))

    # Multi-head self-attention, reference via scaled_dot_product_attention.
    tokens, dim, heads = 13, 24, 4
    x = torch.randn(tokens, dim)
    out["attention.x"] = c(x)
    proj = {}
    for name in ("query", "key", "value", "output"):
        layer = nn.Linear(dim, dim)
        proj[name] = layer
        out[f"attention.{name}.weight"] = c(layer.weight)
        out[f"attention.{name}.bias"] = c(layer.bias)

    def split(t):
        return t.view(tokens, heads, dim // heads).transpose(0, 1)

    q, k, v = (split(proj[n](x)) for n in ("query", "key", "value"))
    ctx = F.scaled_dot_product_attention(q, k, v).transpose(0, 1).reshape(tokens, dim)
    out["attention.y"] = c(proj["output"](ctx))

    x = torch.randn(1, 2, 5, 6) * 4
    out["act.x"] = c(x)
    out["act.relu"] = c(F.relu(x))
    out["act.gelu"] = c(F.gelu(x))
    out["act.sigmoid"] = c(torch.sigmoid(x))
    a, b = torch.randn(1, 2, 4, 5), torch.randn(1, 3, 4, 5)
    out["cat.a"], out["cat.b"] = c(a), c(b)
    out["cat.y"] = c(torch.cat([a, b], 1))

    FIXTURES.mkdir(parents=True, exist_ok=True)
    save_file(out, str(FIXTURES / "layers.safetensors"), metadata={"made_by": "Training/parity/make_fixtures.py"})
    print("layers.safetensors:", len(out), "tensors")


if __name__ == "__main__":
    which = set(sys.argv[1:]) or {"layers", "mrdepth", "dav2"}
    if "layers" in which:
        make_layers()
    if "mrdepth" in which:
        make_mrdepth()
    if "dav2" in which:
        make_dav2()
