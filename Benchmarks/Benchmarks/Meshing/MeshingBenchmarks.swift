// Meshing benchmarks: marching cubes, the relief (height-field) mesher and the object-mode
// pipeline, each also reported as triangles per second.
//
//   cd Benchmarks && swift package benchmark --target MeshingBenchmarks
//
// Volumes: a thick gyroid sheet inside a sphere on 256³ samples (the same field as
// compare_meshers.py writes), and the volume object mode carves from a 256² depth map of
// a bumpy ball at resolution 256. Marching cubes runs on 1 thread and on every core.
import Benchmark
import Foundation
import Imaging
import Meshing

let cores = ProcessInfo.processInfo.activeProcessorCount
let trianglesPerSecond = BenchmarkMetric.custom("ktriangles/s", polarity: .prefersLarger, useScalingFactor: false)

/// Positive inside a gyroid sheet (8 periods across) clipped by a sphere.
func gyroidInSphere(_ n: Int) -> Volume {
    let c = Float(n - 1) / 2, k = 2 * Float.pi / (Float(n) / 8)
    return Volume(width: n, height: n, depth: n) { x, y, z in
        let px = Float(x) - c, py = Float(y) - c, pz = Float(z) - c
        let g = sin(k * px) * cos(k * py) + sin(k * py) * cos(k * pz) + sin(k * pz) * cos(k * px)
        let sphere = (0.45 * Float(n) - (px * px + py * py + pz * pz).squareRoot()) / (0.45 * Float(n))
        return min(sphere, (0.6 - abs(g)) / 1.5)
    }
}

/// Front/back depth and mask of a ball with bumps, seen from 3 units away.
func bumpyBall(size: Int) -> (DepthMaps, PinholeCamera) {
    let camera = PinholeCamera(width: size, height: size, verticalFieldOfView: 40)
    let center = SIMD3<Float>(0, 0, -3)
    var front = [Float](repeating: 0, count: size * size), back = front, mask = front
    for j in 0..<size {
        for i in 0..<size {
            let r = camera.ray(through: SIMD2(Float(i) + 0.5, Float(j) + 0.5))
            let a = (r * r).sum(), b = -2 * (r * center).sum()
            let radius = 0.8 + 0.05 * sin(9 * r.x) * cos(7 * r.y)
            let disc = b * b - 4 * a * ((center * center).sum() - radius * radius)
            guard disc > 0 else { continue }
            let k = j * size + i
            front[k] = (-b - disc.squareRoot()) / (2 * a)
            back[k] = (-b + disc.squareRoot()) / (2 * a)
            mask[k] = 1
        }
    }
    return (DepthMaps(width: size, height: size, front: front, back: back, mask: mask), camera)
}

/// A 1024² relief: rolling hills with a step (an occlusion edge) down the middle.
func hills(size: Int) -> DepthMaps {
    var depth = [Float](repeating: 0, count: size * size)
    for j in 0..<size {
        for i in 0..<size {
            let x = Float(i) / Float(size), y = Float(j) / Float(size)
            depth[j * size + i] = 3 + 0.2 * sin(12 * x) * cos(9 * y) + (i < size / 2 ? 0 : 0.8)
        }
    }
    return DepthMaps(width: size, height: size, depth: depth)
}

func measured(_ benchmark: Benchmark, _ body: () throws -> Int) rethrows {
    var best = Double.infinity, triangles = 0
    benchmark.startMeasurement()
    for _ in benchmark.scaledIterations {
        let start = DispatchTime.now().uptimeNanoseconds
        triangles = try body()
        best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
    benchmark.stopMeasurement()
    benchmark.measurement(trianglesPerSecond, Int((Double(triangles) / best / 1e3).rounded()))
}

let benchmarks: @Sendable () -> Void = {
    let config = Benchmark.Configuration(metrics: [.wallClock, .cpuTotal, .peakMemoryResident, trianglesPerSecond],
                                         maxDuration: .seconds(20), maxIterations: 10)
    let gyroid = gyroidInSphere(256)
    for threads in Set([1, cores]).sorted() {
        Benchmark("marching cubes gyroid-in-sphere 256³, \(threads) thread(s)", configuration: config) { b in
            measured(b) { MarchingCubes(level: 0, threads: threads).mesh(gyroid).triangleCount }
        }
    }
    let (ball, camera) = bumpyBall(size: 256)
    var carving = ObjectMesher.Options()
    carving.resolution = 256
    let depthVolume = try! ObjectMesher(options: carving).volume(ball, camera: camera)
    for threads in Set([1, cores]).sorted() {
        Benchmark("marching cubes depth-map volume \(depthVolume.width)x\(depthVolume.height)x\(depthVolume.depth), \(threads) thread(s)",
                  configuration: config) { b in
            measured(b) { MarchingCubes(level: 0, threads: threads).mesh(depthVolume).triangleCount }
        }
    }
    let relief = hills(size: 1024)
    let reliefCamera = PinholeCamera(width: 1024, height: 1024, verticalFieldOfView: 50)
    Benchmark("relief mesher 1024²", configuration: config) { b in
        try measured(b) { try ReliefMesher().mesh(relief, camera: reliefCamera).triangleCount }
    }
    let smallRelief = hills(size: 256)
    var simplify = ReliefMesher.Options()
    simplify.maxError = 1e-3
    Benchmark("relief mesher 256² simplified to 1e-3", configuration: config) { b in
        try measured(b) {
            try ReliefMesher(options: simplify).mesh(smallRelief, camera: PinholeCamera(width: 256, height: 256)).triangleCount
        }
    }
    let photo = Image(width: 1024, height: 1024, filledWith: [180, 120, 60])
    Benchmark("object mode 256² maps, resolution 128, 1024² photo", configuration: config) { b in
        try measured(b) { try ObjectMesher().mesh(ball, camera: camera, photo: photo).mesh.triangleCount }
    }
}
