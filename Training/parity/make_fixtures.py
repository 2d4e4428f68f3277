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
  mrdepth-scene/             the mrdepth model + a scene head and a scale head, flip-averaged (mrdepth.json has
                             scene_head, metric_depth.scale_head and flip_average): its flip-averaged maps,
                             room logits (plain and flip-averaged) and log depth scale (flip-averaged)
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


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(path),
              metadata={"made_by": "Training/parity/make_fixtures.py"})


def randomize_batchnorms(model: nn.Module) -> None:
    """Gives every BatchNorm non-trivial running statistics and affine parameters."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.7, 1.3)
            m.bias.data.uniform_(-0.1, 0.1)


MRDEPTH_WIDTHS = [4, 8, 8, 12, 16]
MRDEPTH_SIZE = (64, 96)


def make_mrdepth() -> None:
    from mrdepth.model import MEAN, STD, MRDepthUNet

    torch.manual_seed(7)
    model = MRDepthUNet(MRDEPTH_WIDTHS)
    randomize_batchnorms(model)
    with torch.no_grad():
        # He-initialised convolutions keep activations O(1) through the ReLUs, so the three outputs
        # vary over the image (PyTorch's default init leaves them nearly constant: a weak test).
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.normal_(0, math.sqrt(2.0 / fan_in))
    model.eval()
    x = torch.randn(1, 3, *MRDEPTH_SIZE)
    config = {
        "architecture": "mrdepth-unet", "widths": MRDEPTH_WIDTHS, "input_size": list(MRDEPTH_SIZE),
        "mean": list(MEAN), "std": list(STD), "outputs": ["front", "back", "mask"],
        "depth_units": "relative to median foreground front depth", "fov_degrees": 50.0, "version": 1,
    }
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    for folder, dtype in (("mrdepth", torch.float32), ("mrdepth-f16", torch.float16)):
        d = FIXTURES / folder
        d.mkdir(parents=True, exist_ok=True)
        (d / "mrdepth.json").write_text(json.dumps(config, indent=2) + "\n")
        stored = {k: v.to(dtype) for k, v in state.items()}
        save_tensors(d / "mrdepth.safetensors", stored)
        # Reference: the model with the stored (possibly rounded) weights, evaluated in float32.
        ref = MRDepthUNet(MRDEPTH_WIDTHS)
        ref.load_state_dict({k: v.float() for k, v in stored.items()}, strict=False)
        ref.eval()
        with torch.no_grad():
            y = ref(x)
            raw = ref.raw(x)
        save_tensors(d / "input.safetensors", {"input": c(x)})
        save_tensors(d / "output.safetensors", {"output": c(y), "raw": c(raw)})
        ranges = [(round(y[0, i].min().item(), 3), round(y[0, i].max().item(), 3)) for i in range(3)]
        print(f"{folder}: output ranges (front, back, mask) {ranges}")
    print("mrdepth:", sum(v.numel() for v in state.values()), "parameters")


def make_mrdepth_scene() -> None:
    """The mrdepth fixture's weights plus a scene head (`scene.weight`, `scene.bias`) and a scale head
    (`scale.weight`, `scale.bias`), run flip-averaged."""
    from mrdepth.model import MRDepthUNet, scale_features

    src = FIXTURES / "mrdepth"
    from safetensors.torch import load_file
    state = load_file(str(src / "mrdepth.safetensors"))
    config = json.loads((src / "mrdepth.json").read_text())
    torch.manual_seed(8)
    model = MRDepthUNet(MRDEPTH_WIDTHS, scene_head=True, scale_head=True)
    model.load_state_dict(state, strict=False)
    with torch.no_grad():
        model.scene.weight.normal_(0, 1.0)
        model.scene.bias.fill_(-0.3)
        model.scale.weight.normal_(0, 0.3)
        model.scale.bias.fill_(0.4)
    model.eval()
    x = load_file(str(src / "input.safetensors"))["input"]
    with torch.no_grad():
        y1, p1 = model.raw_and_pooled(x)
        y2, p2 = model.raw_and_pooled(x.flip(3))
        maps = 0.5 * (model.postprocess(y1) + model.postprocess(y2).flip(3))
        logit = model.scene_logit(p1)
        logit_flip = 0.5 * (logit + model.scene_logit(p2))
        log_scale_flip = model.scale_log(scale_features(0.5 * (p1 + p2), maps[:, 2]))
    config = dict(config, flip_average=True, scene_head={"features": "mean of enc4", "classes": ["object", "room"]},
                  metric_depth={"canonical_focal_px": 166.2769, "scale_head": {"features": "mean of enc4"}})
    d = FIXTURES / "mrdepth-scene"
    d.mkdir(parents=True, exist_ok=True)
    (d / "mrdepth.json").write_text(json.dumps(config, indent=2) + "\n")
    stored = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    save_tensors(d / "mrdepth.safetensors", stored)
    save_tensors(d / "output.safetensors", {"output": c(maps), "room_logit": c(logit), "room_logit_flip": c(logit_flip),
                                            "log_scale_flip": c(log_scale_flip)})
    print(f"mrdepth-scene: room logit {logit.item():.4f}, flip-averaged {logit_flip.item():.4f}; "
          f"log depth scale {log_scale_flip.item():.4f}")


# Published Depth-Anything-V2 checkpoints use the transformers 4 attention names.
DAV2_RENAMES = (
    ("attention.q_proj.", "attention.attention.query."),
    ("attention.k_proj.", "attention.attention.key."),
    ("attention.v_proj.", "attention.attention.value."),
    ("attention.o_proj.", "attention.output.dense."),
)


def make_dav2() -> None:
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    torch.manual_seed(11)
    backbone = Dinov2Config(
        hidden_size=32, num_hidden_layers=4, num_attention_heads=4, mlp_ratio=4, image_size=70, patch_size=14,
        out_indices=[1, 2, 3, 4], reshape_hidden_states=False, layerscale_value=0.5,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone, patch_size=14, reassemble_hidden_size=32, reassemble_factors=[4, 2, 1, 0.5],
        neck_hidden_sizes=[8, 12, 16, 16], fusion_hidden_size=16, head_hidden_size=8, depth_estimation_type="relative",
    )
    model = DepthAnythingForDepthEstimation(config)
    with torch.no_grad():
        # transformers' init (std 0.02) gives a nearly constant output, a weak test: use
        # fan-in-scaled weights so every stage carries signal, and non-trivial norms and scales.
        for name, p in model.named_parameters():
            if name.endswith("lambda1"):
                p.uniform_(0.3, 1.0)          # layer scales other than the init constant
            elif "position_embeddings" in name or "cls_token" in name:
                p.normal_(0, 0.5)
            elif "norm" in name and name.endswith("weight"):
                p.uniform_(0.7, 1.3)
            elif name.endswith("bias"):
                p.normal_(0, 0.05)
            elif p.dim() >= 2:
                fan_in = p[0].numel() if "resize" not in name or p.shape[2] == 3 else p.shape[0]
                p.normal_(0, math.sqrt(1.5 / fan_in))
        model.head.conv3.bias.fill_(0.5)
    model.eval()
    # 84 x 112: a non-square grid of 6 x 8 patches, so the 5 x 5 position grid is bicubic-interpolated.
    x = torch.randn(1, 3, 84, 112)
    state = {}
    for k, v in model.state_dict().items():
        for new, old in DAV2_RENAMES:
            k = k.replace(new, old)
        state[k] = v
    cfg = config.to_dict()
    for folder, dtype in (("dav2", torch.float32), ("dav2-bf16", torch.bfloat16)):
        d = FIXTURES / folder
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.json").write_text(json.dumps(cfg, indent=2, default=str) + "\n")
        stored = {k: v.to(dtype) for k, v in state.items()}
        save_tensors(d / "model.safetensors", stored)
        ref = DepthAnythingForDepthEstimation(config)
        back = {}
        for k, v in stored.items():
            for new, old in DAV2_RENAMES:
                k = k.replace(old, new)
            back[k] = v.float()
        missing, unexpected = ref.load_state_dict(back, strict=False)
        assert not missing and not unexpected, (missing, unexpected)
        ref.eval()
        with torch.no_grad():
            y = ref(pixel_values=x).predicted_depth
        save_tensors(d / "input.safetensors", {"input": c(x)})
        save_tensors(d / "output.safetensors", {"predicted_depth": c(y)})
    print("dav2:", sum(v.numel() for v in state.values()), "parameters; output", tuple(y.shape),
          "range", (round(y.min().item(), 3), round(y.max().item(), 3)), "positive", round((y > 0).float().mean().item(), 3))


if __name__ == "__main__":
    which = set(sys.argv[1:]) or {"layers", "mrdepth", "dav2"}
    if "layers" in which:
        make_layers()
    if "mrdepth" in which:
        make_mrdepth()
    if "mrdepth" in which or "mrdepth-scene" in which:
        make_mrdepth_scene()
    if "dav2" in which:
        make_dav2()
