#!/usr/bin/env python3
"""Mesh one raw float32 volume with scikit-image (Lewiner), PyMCubes, VTK's
vtkFlyingEdges3D and this project's `mesh volume`, and print times, counts and
ratios side by side.

    /opt/venv/bin/python Benchmarks/compare_meshers.py [--size 256] [--repeats 5]
        [--mesh .build/release/mesh] [--raw existing.raw --dims X,Y,Z --level L]

Without --raw it writes the benchmark volume (a thick gyroid sheet inside a sphere,
inside = greater than 0) to /tmp. Every tool gets exactly the same bytes; times are the
best of --repeats runs, meshing only (no file reading or writing).
"""
import argparse
import os
import re
import subprocess
import sys
import time

import numpy as np


def gyroid_in_sphere(n):
    """Float32 (z, y, x) array: positive inside a gyroid sheet clipped by a sphere."""
    c = (n - 1) / 2.0
    ax = np.arange(n, dtype=np.float32) - c
    z, y, x = np.meshgrid(ax, ax, ax, indexing="ij")
    k = 2 * np.pi / (n / 8.0)
    g = (np.sin(k * x) * np.cos(k * y) + np.sin(k * y) * np.cos(k * z)
         + np.sin(k * z) * np.cos(k * x))
    sphere = (0.45 * n - np.sqrt(x * x + y * y + z * z)) / (0.45 * n)
    return np.minimum(sphere, (0.6 - np.abs(g)) / 1.5).astype(np.float32)


def best(fn, repeats):
    """Best wall-clock and best process-CPU milliseconds over `repeats` runs."""
    times, cpus, out = [], [], None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        times.append((time.perf_counter() - t0) * 1000)
        cpus.append((time.process_time() - c0) * 1000)
    return (min(times), min(cpus)), out


def run_skimage(vol, level, repeats):
    from skimage import measure
    ms, (v, f, _, _) = best(lambda: measure.marching_cubes(vol, level, method="lewiner"), repeats)
    return ms + (len(f), len(v))


def run_mcubes(vol, level, repeats):
    import mcubes
    ms, (v, f) = best(lambda: mcubes.marching_cubes(vol, level), repeats)
    return ms + (len(f), len(v))


def run_vtk(vol, level, repeats, threads):
    import vtk
    from vtk.util import numpy_support
    vtk.vtkSMPTools.SetBackend("STDThread")
    vtk.vtkSMPTools.Initialize(threads)
    nz, ny, nx = vol.shape
    image = vtk.vtkImageData()
    image.SetDimensions(nx, ny, nz)
    arr = numpy_support.numpy_to_vtk(vol.ravel(order="C"), deep=True, array_type=vtk.VTK_FLOAT)
    image.GetPointData().SetScalars(arr)
    fe = vtk.vtkFlyingEdges3D()
    fe.SetInputData(image)
    fe.SetValue(0, level)
    fe.ComputeNormalsOff()
    fe.ComputeGradientsOff()
    fe.ComputeScalarsOff()

    def once():
        fe.Modified()
        fe.Update()
        return fe.GetOutput()
    ms, out = best(once, repeats)
    return ms + (out.GetNumberOfPolys(), out.GetNumberOfPoints())


def run_ours(binary, raw, dims, level, repeats, threads):
    cmd = [binary, "volume", raw, "--dims", ",".join(map(str, dims)), "--level", str(level),
           "--threads", str(threads), "--repeats", str(repeats)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    m = re.search(r"triangles (\d+) vertices (\d+) ms ([0-9.]+) cpu_ms ([0-9.]+)", out)
    return float(m.group(3)), float(m.group(4)), int(m.group(1)), int(m.group(2))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--mesh", default=".build/release/mesh")
    p.add_argument("--raw")
    p.add_argument("--dims")
    p.add_argument("--level", type=float, default=0.0)
    a = p.parse_args()
    if a.raw:
        nx, ny, nz = map(int, a.dims.split(","))
        vol = np.fromfile(a.raw, dtype="<f4").reshape(nz, ny, nx)
        raw = a.raw
    else:
        vol = gyroid_in_sphere(a.size)
        raw = f"/tmp/gyroid_sphere_{a.size}.raw"
        vol.astype("<f4").tofile(raw)
        nz, ny, nx = vol.shape
    load = os.getloadavg()[0]
    print(f"volume {nx}x{ny}x{nz} level {a.level} ({raw}), best of {a.repeats}, cpu cores {os.cpu_count()}")
    rows = []
    rows.append(("scikit-image lewiner (1 thread)",) + run_skimage(vol, a.level, a.repeats))
    rows.append(("PyMCubes (1 thread)",) + run_mcubes(vol, a.level, a.repeats))
    rows.append(("vtkFlyingEdges3D, 1 thread",) + run_vtk(vol, a.level, a.repeats, 1))
    rows.append(("vtkFlyingEdges3D, 2 threads",) + run_vtk(vol, a.level, a.repeats, 2))
    for t in (1, 2):
        rows.append((f"myroom-3d mesh volume, {t} thread{'s' if t > 1 else ''}",)
                    + run_ours(a.mesh, raw, (nx, ny, nz), a.level, a.repeats, t))
    vtk1, vtk1cpu = rows[2][1], rows[2][2]
    print(f"{'mesher':40s} {'wall ms':>9s} {'cpu ms':>9s} {'triangles':>10s} {'vertices':>10s} "
          f"{'Mtri/s':>7s} {'wall vs VTK 1t':>14s} {'cpu vs VTK 1t':>13s}")
    for name, ms, cpu, tris, verts in rows:
        print(f"{name:40s} {ms:9.1f} {cpu:9.1f} {tris:10d} {verts:10d} {tris / ms / 1000:7.2f} "
              f"{vtk1 / ms:13.2f}x {vtk1cpu / cpu:12.2f}x")
    ours1, ours2 = rows[4][1], rows[5][1]
    print(f"ours 2 threads vs ours 1 thread (wall): {ours1 / ours2:.2f}x; "
          f"load average before the run: {load:.2f}")

if __name__ == "__main__":
    sys.exit(main())
