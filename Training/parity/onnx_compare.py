#!/usr/bin/env python3
"""Times the same networks under onnxruntime and the Swift DepthNet runtime, side by side.

For each architecture (the project's mrdepth-unet at its default widths, and Depth Anything V2
at the Small configuration) this script
  1. builds the PyTorch model with random weights (fixed seed, no download),
  2. exports it to ONNX (opset 17) and writes the same weights as safetensors + config
     into a work folder (default /tmp/depthnet-bench),
  3. runs it under onnxruntime (CPU, intra_op_num_threads = --threads, sequential execution,
     all graph optimisations) and the Swift runtime on the same folder through the
     `depthnet-timing` executable of the Benchmarks package (release build, same thread count),
     alternating --rounds times, --iterations timed runs each after a warm-up,
  4. checks that the two outputs agree,
  5. prints wall-clock milliseconds (median and minimum), process CPU time per run (median; the
     steadier figure on a machine shared with other work) and the ratios swift/onnxruntime
     (< 1: Swift is faster), plus the paired ratio: the median over rounds of each Swift round's
     median over the onnxruntime round just before it (on a VM whose speed drifts by tens of
     percent from minute to minute, the figure least moved by the drift).

    /opt/venv/bin/python Training/parity/onnx_compare.py --threads 1
    /opt/venv/bin/python Training/parity/onnx_compare.py --threads 2 --iterations 5

Sizes: mrdepth needs multiples of 32, Depth Anything multiples of 14; the nearest sizes to
256 and 518 are used (mrdepth 256 and 512, plus its default input 128; Depth Anything 252 and 518).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Training"))

SIZES = {"mrdepth": (128, 256, 512), "dav2": (252, 518)}


def build_mrdepth(folder: Path) -> torch.nn.Module:
    from mrdepth.model import MEAN, STD, MRDepthUNet

    torch.manual_seed(0)
    model = MRDepthUNet().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_var.uniform_(0.5, 1.5)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    save_file(state, str(folder / "mrdepth.safetensors"))
    (folder / "mrdepth.json").write_text(json.dumps({
        "architecture": "mrdepth-unet", "widths": model.widths, "input_size": [256, 256],
        "mean": list(MEAN), "std": list(STD), "outputs": ["front", "back", "mask"], "version": 1}))
    return model


def build_dav2(folder: Path) -> torch.nn.Module:
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation

    torch.manual_seed(0)
    config = DepthAnythingConfig()          # the Depth-Anything-V2-Small sizes (ViT-S/14, 24.8 M parameters)
    model = DepthAnythingForDepthEstimation(config).eval()
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config.to_dict(), default=str))

    class Wrapper(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(pixel_values=x).predicted_depth

    return Wrapper(model).eval()


def export(model: torch.nn.Module, size: int, path: Path) -> None:
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        torch.onnx.export(model, (x,), str(path), opset_version=17, input_names=["input"], output_names=["output"],
                          dynamo=False)


def ort_session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def time_ort(session, size: int, iterations: int) -> tuple[list[float], np.ndarray]:
    x = swift_input(size)
    out = session.run(None, {"input": x})[0]
    times, cpu = [], []
    for _ in range(iterations):
        t0, c0 = time.perf_counter(), time.process_time()
        session.run(None, {"input": x})
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return times, cpu, out


def swift_input(size: int) -> np.ndarray:
    """The deterministic input the Swift timing tool also builds."""
    i = np.arange(3 * size * size, dtype=np.int64)
    return (((i * 7919) % 255).astype(np.float32) / 128 - 1).reshape(1, 3, size, size)


def time_swift(binary: Path, folder: Path, size: int, threads: int, iterations: int, out: Path) -> dict:
    result = subprocess.run([str(binary), str(folder), str(size), str(threads), str(iterations), str(out)],
                            check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=5, help="timed runs per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating onnxruntime/swift rounds")
    parser.add_argument("--work", type=Path, default=Path("/tmp/depthnet-bench"))
    parser.add_argument("--models", nargs="+", default=["mrdepth", "dav2"], choices=["mrdepth", "dav2"])
    parser.add_argument("--binary", type=Path, help="an existing depthnet-timing executable (default: build it)")
    args = parser.parse_args()

    binary = args.binary
    if binary is None:
        bench = ROOT / "Benchmarks"
        build = ["swift", "build", "-c", "release", "--package-path", str(bench), "--scratch-path", str(bench / ".build")]
        subprocess.run(build + ["--product", "depthnet-timing"], check=True)
        binary = Path(subprocess.run(build + ["--show-bin-path"], check=True, capture_output=True,
                                     text=True).stdout.strip()) / "depthnet-timing"
    torch.set_num_threads(args.threads)
    for name in args.models:
        folder = args.work / name
        model = build_mrdepth(folder) if name == "mrdepth" else build_dav2(folder)
        for size in SIZES[name]:
            onnx_path = args.work / f"{name}-{size}.onnx"
            export(model, size, onnx_path)
            session = ort_session(onnx_path, args.threads)
            out_path = args.work / f"{name}-{size}-swift.f32"
            # Alternate the two runtimes over several rounds so that load from other processes
            # affects both alike; report medians and minima over all timed runs.
            ort_times: list[float] = []
            ort_cpu: list[float] = []
            swift_medians: list[float] = []
            swift_minima: list[float] = []
            swift_cpu: list[float] = []
            paired: list[float] = []
            for _ in range(args.rounds):
                times, cpu, ort_out = time_ort(session, size, args.iterations)
                ort_times += times
                ort_cpu += cpu
                swift = time_swift(binary, folder, size, args.threads, args.iterations, out_path)
                # Adjacent rounds see about the same machine: their ratio cancels slow drifts in load.
                paired.append(swift["median_ms"] / statistics.median(times))
                swift_medians.append(swift["median_ms"])
                swift_minima.append(swift["min_ms"])
                swift_cpu.append(swift["cpu_median_ms"])
            swift_out = np.fromfile(out_path, dtype=np.float32).reshape(-1)
            reference = ort_out.reshape(-1)
            error = float(np.abs(swift_out - reference).max() / max(float(reference.max() - reference.min()), 1e-12))
            ort_med, ort_min = statistics.median(ort_times), min(ort_times)
            sw_med, sw_min = statistics.median(swift_medians), min(swift_minima)
            print(f"{name:8s} {size:4d}: median onnxruntime {ort_med:8.1f} ms  swift {sw_med:8.1f} ms  ratio {sw_med / ort_med:4.2f}"
                  f" | min onnxruntime {ort_min:8.1f} ms  swift {sw_min:8.1f} ms  ratio {sw_min / ort_min:4.2f}"
                  f" | CPU time onnxruntime {statistics.median(ort_cpu):8.1f} ms  swift {statistics.median(swift_cpu):8.1f} ms"
                  f"  ratio {statistics.median(swift_cpu) / statistics.median(ort_cpu):4.2f}"
                  f" | paired ratio {statistics.median(paired):4.2f} (median of {len(paired)} rounds)"
                  f" | swift {swift['gflops'] / sw_min * 1000:5.1f} GFLOP/s (best), activations {swift['peak_mb']:.0f} MB,"
                  f" max rel. diff {error:.1e}", flush=True)
    print(f"\nthreads={args.threads}, {args.rounds} rounds of {args.iterations} runs each; ratio = swift / onnxruntime")


if __name__ == "__main__":
    main()
