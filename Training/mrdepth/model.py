"""mrdepth-unet: the project's own depth network (PyTorch reference).

The architecture and output contract are fixed by /work/notes/net.md and mirrored by the Swift
DepthNet runtime; do not change tensor names or post-processing without changing both.

Input: RGB in [0,1] normalised with ImageNet mean/std, NCHW, H and W multiples of 32.
Output: (N, 3, H, W) = cat(front, back, mask) where
  front = exp(o0)                       depth relative to the median front depth of the foreground object
  back  = front * (1 + softplus(o1))    depth where the ray leaves the first object it hit
  mask  = sigmoid(o2)                   foreground-object probability

Optional scene head (`scene_head=True`; `scene_head` in mrdepth.json): one logit per image,
  room = sigmoid(scene.weight . mean_{h,w}(enc4 output) + scene.bias)   P(the photo is a room view)
read by the engine's `--mode auto` (a room is meshed as a relief). With flip averaging the engine averages
the pooled features of the two passes, i.e. the logits (the head is linear).

Optional scale head (`scale_head=True`; `metric_depth.scale_head` in mrdepth.json): one value per image,
  s = scale.weight . scale_features(pooled, mask) + scale.bias   log(canonical-camera depth / front)
so that front x exp(s) is metric depth for a camera of 60 degrees vertical field of view (the engine
multiplies by the photo's focal length over the canonical one). Its features are the scene head's pooled
ones and two of the object's size in the picture (see `scale_features`): how large a thing looks and what
it is give how far away it is. Fitted by scripts/fit_scale_head.py.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_WIDTHS = (16, 32, 64, 128, 256)
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class ConvBNReLU(nn.Module):
    """3x3 conv (no bias, padding 1) -> BatchNorm2d (eps 1e-5) -> ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class ConvPair(nn.Module):
    """`conv1` = ConvBNReLU(cin, cout, stride) then `conv2` = ConvBNReLU(cout, cout, 1).

    Encoder stages use stride 2, decoder stages stride 1 (after upsampling and skip concatenation)."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = ConvBNReLU(cin, cout, stride)
        self.conv2 = ConvBNReLU(cout, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))


class Head(nn.Module):
    def __init__(self, w0: int):
        super().__init__()
        self.conv1 = ConvBNReLU(w0, w0, 1)
        self.out = nn.Conv2d(w0, 3, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.conv1(x))


def _up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class MRDepthUNet(nn.Module):
    """Compact U-Net predicting front depth, back depth and foreground mask."""

    def __init__(self, widths=DEFAULT_WIDTHS, scene_head: bool = False, scale_head: bool = False):
        super().__init__()
        w = list(widths)
        assert len(w) == 5
        self.widths = w
        self.stem = ConvBNReLU(3, w[0], 2)
        self.enc1 = ConvPair(w[0], w[1], 2)
        self.enc2 = ConvPair(w[1], w[2], 2)
        self.enc3 = ConvPair(w[2], w[3], 2)
        self.enc4 = ConvPair(w[3], w[4], 2)
        self.dec4 = ConvPair(w[4] + w[3], w[3])
        self.dec3 = ConvPair(w[3] + w[2], w[2])
        self.dec2 = ConvPair(w[2] + w[1], w[1])
        self.dec1 = ConvPair(w[1] + w[0], w[0])
        self.head = Head(w[0])
        self.scene = nn.Linear(w[4], 1) if scene_head else None
        self.scale = nn.Linear(w[4] + 2, 1) if scale_head else None

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """Raw head output o (N,3,H,W) for a normalised input."""
        return self.raw_and_pooled(x)[0]

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """(N, w4) spatial mean of the encoder's last stage: what the scene head reads."""
        return self.enc4(self.enc3(self.enc2(self.enc1(self.stem(x))))).mean((2, 3))

    def scene_logit(self, pooled: torch.Tensor) -> torch.Tensor:
        """(N,) room logit from `pooled` features (requires scene_head)."""
        return self.scene(pooled)[:, 0]

    def scale_log(self, features: torch.Tensor) -> torch.Tensor:
        """(N,) log(canonical depth / front) from `scale_features` (requires scale_head)."""
        return self.scale(features)[:, 0]

    def raw_and_pooled(self, x: torch.Tensor):
        """(raw head output o, pooled enc4 features) for a normalised input."""
        s0 = self.stem(x)
        s1 = self.enc1(s0)
        s2 = self.enc2(s1)
        s3 = self.enc3(s2)
        s4 = self.enc4(s3)
        pooled = s4.mean((2, 3))
        y = self.dec4(torch.cat([_up2(s4), s3], 1))
        y = self.dec3(torch.cat([_up2(y), s2], 1))
        y = self.dec2(torch.cat([_up2(y), s1], 1))
        y = self.dec1(torch.cat([_up2(y), s0], 1))
        return self.head(_up2(y)), pooled

    @staticmethod
    def postprocess(o: torch.Tensor) -> torch.Tensor:
        front = torch.exp(o[:, 0:1])
        back = front * (1.0 + F.softplus(o[:, 1:2]))
        mask = torch.sigmoid(o[:, 2:3])
        return torch.cat([front, back, mask], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.postprocess(self.raw(x))


def scale_features(pooled: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N, w4 + 2) scale head input: `pooled` (N, w4) and, of the mask (N, H, W) thresholded at 0.5,
    log(max(sqrt(covered fraction), 0.01)) and log(max(fraction of the rows it spans, 0.01))."""
    m = mask >= 0.5
    area = m.float().mean((1, 2)).sqrt()
    rows = m.any(2)
    idx = torch.arange(m.shape[1], device=mask.device)
    top = torch.where(rows, idx, m.shape[1]).min(1).values
    bottom = torch.where(rows, idx, -1).max(1).values
    span = (bottom - top + 1).clamp(min=0).float() / m.shape[1]
    return torch.cat([pooled, area.clamp(min=0.01).log()[:, None], span.clamp(min=0.01).log()[:, None]], 1)


def normalize(rgb01: torch.Tensor) -> torch.Tensor:
    """Normalise an (N,3,H,W) RGB tensor in [0,1] with the ImageNet mean/std the net expects."""
    mean = torch.tensor(MEAN, dtype=rgb01.dtype, device=rgb01.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, dtype=rgb01.dtype, device=rgb01.device).view(1, 3, 1, 1)
    return (rgb01 - mean) / std
