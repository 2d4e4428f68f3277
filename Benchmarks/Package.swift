// swift-tools-version:6.1
// Benchmarks for myroom-3d: its own package, so the main package and CI do not build
// benchmark-only dependencies. Run: cd Benchmarks && swift package benchmark
import PackageDescription

let package = Package(
    name: "myroom-3d-benchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "myroom-3d", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // MARK: Meshing benchmarks
        .executableTarget(
            name: "MeshingBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Meshing", package: "myroom-3d"),
            ],
            path: "Benchmarks/Meshing",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),

        // MARK: DepthNet benchmarks
        .executableTarget(
            name: "DepthNetBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "DepthNet", package: "myroom-3d"),
            ],
            path: "Benchmarks/DepthNet",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // Times one model folder; used by Training/parity/onnx_compare.py.
        .executableTarget(
            name: "depthnet-timing",
            dependencies: [.product(name: "DepthNet", package: "myroom-3d")],
            path: "Sources/depthnet-timing"
        ),
    ],
    swiftLanguageModes: [.v6]
)
