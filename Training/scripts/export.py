"""Export a training checkpoint to Weights/mrdepth.safetensors (fp16) + Weights/mrdepth.json.

  python Training/scripts/export.py --ckpt Training/runs/main/ckpt.pt --out Weights
"""
import argparse
import json
import math
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from mrdepth.model import MEAN, STD  # noqa: E402
from mrdepth.render import FOV_CENTER  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--out", default="Weights")
    ap.add_argument("--dtype", choices=["f16", "f32"], default="f16")
    ap.add_argument("--input-size", type=int, nargs=2, default=[256, 256], metavar=("H", "W"),
                    help="the input size the engine runs the net at (input_size in the json; multiples of 32)")
    ap.add_argument("--flip-average", action="store_true",
                    help="set flip_average in the json: the engine averages each output with that of the mirror image")
    a = ap.parse_args()
    if any(v <= 0 or v % 32 for v in a.input_size):
        sys.exit(f"--input-size {a.input_size}: sides must be positive multiples of 32")
    st = torch.load(a.ckpt, weights_only=False, map_location="cpu")
    dt = torch.float16 if a.dtype == "f16" else torch.float32
    tensors = {k: v.detach().to(dt).contiguous() for k, v in st["model"].items() if not k.endswith("num_batches_tracked")}
    for k, v in tensors.items():
        if not torch.isfinite(v).all():
            sys.exit(f"non-finite values in {k} after conversion")
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "mrdepth.safetensors")
    save_file(tensors, path, metadata={"format": "pt", "architecture": "mrdepth-unet", "step": str(st["step"])})
    cfg = {"architecture": "mrdepth-unet", "widths": st.get("widths", [16, 32, 64, 128, 256]), "input_size": list(a.input_size),
           "mean": list(MEAN), "std": list(STD), "outputs": ["front", "back", "mask"],
           "depth_units": "relative to median foreground front depth", "fov_degrees": FOV_CENTER, "version": 1}
    if a.flip_average:
        cfg["flip_average"] = True
    args = st.get("args", {})
    if args.get("metric"):
        # Trained on canonical-camera metric depth (train.py --metric): a 60 degree vertical field of view at
        # the training input size. Depth in metres = output x (the photo's focal length in network-input
        # pixels) / canonical_focal_px.
        side = int(args.get("input", 192))
        cfg["depth_units"] = "canonical-camera metres (the front channel; back and mask as before)"
        cfg["metric_depth"] = {"canonical_focal_px": round(side / 2 / math.tan(math.radians(60) / 2), 4),
                               "canonical_fov_degrees": 60.0, "trained_input": side}
    with open(os.path.join(a.out, "mrdepth.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    size = os.path.getsize(path)
    print(f"wrote {path} ({size / 1e6:.2f} MB, {sum(v.numel() for v in tensors.values())} values, step {st['step']})")
    if size > 25e6:
        sys.exit("weights exceed 25 MB")


if __name__ == "__main__":
    main()
