// swift-tools-version:6.1
// myroom-3d: photo in, 3D model out, on the CPU.
//
// Linux only (Debian 12 and its libraries): the sources use Glibc, and the C libraries below
// come from Debian's packages through pkg-config.
import PackageDescription

#if !os(Linux)
#error("myroom-3d builds on Linux only (Debian 12): it uses Glibc and Debian's libjpeg, libpng, libcurl, OpenBLAS and rabbitmq-c")
#endif

let package = Package(
    name: "myroom-3d",
    products: [
        .library(name: "Imaging", targets: ["Imaging"]),
        .library(name: "DepthNet", targets: ["DepthNet"]),
        .library(name: "Meshing", targets: ["Meshing"]),
        .library(name: "MeshIO", targets: ["MeshIO"]),
        .library(name: "Pipeline", targets: ["Pipeline"]),
        .library(name: "MeshCommands", targets: ["MeshCommands"]),
        .library(name: "AMQP", targets: ["AMQP"]),
        .executable(name: "mesh", targets: ["mesh"]),
        .executable(name: "mesh-worker", targets: ["mesh-worker"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // 1.16: LogHandler.log(event:), which JSONLogHandler implements.
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // HTTP endpoints; no default traits: swift-configuration and full Foundation are not needed.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // MARK: C libraries, found through pkg-config, installed from Debian's packages.
        .systemLibrary(name: "CJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg62-turbo-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng16", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CAMQP", pkgConfig: "librabbitmq", providers: [.apt(["librabbitmq-dev"])]),
        // libjpeg's and libpng's error paths are longjmps: the decode calls live in C.
        .target(name: "CImageCodecs", dependencies: ["CJPEG", "CPNG"]),

        // MARK: Seeded random numbers (random weights, fuzz inputs, test shapes)
        .target(name: "SeededRandom"),

        // MARK: Imaging: the Image type, decode and encode, orientation, resize
        .target(name: "Imaging", dependencies: ["CImageCodecs", "CJPEG", "CPNG"]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging", "SeededRandom"], exclude: ["Fixtures"]),

        // MARK: DepthNet: tensors, layers, the network architectures
        .target(name: "_DepthNetKernels"),
        .target(name: "DepthNet", dependencies: ["CBLAS", "_DepthNetKernels", "SeededRandom"]),
        .testTarget(name: "DepthNetTests", dependencies: ["DepthNet", "SeededRandom"], resources: [.copy("Fixtures")]),

        // MARK: Meshing and MeshIO
        .target(name: "Meshing", dependencies: ["Imaging"]),
        .target(name: "MeshIO", dependencies: ["Meshing", "Imaging"]),
        .testTarget(name: "MeshingTests", dependencies: ["Meshing", "Imaging", "SeededRandom", "WorkerTestSupport"]),
        .testTarget(name: "MeshIOTests", dependencies: ["MeshIO", "Meshing", "Imaging"]),

        // MARK: Pipeline (the engine), mesh's commands and the mesh executable
        .target(name: "Pipeline", dependencies: ["Imaging", "DepthNet", "Meshing", "MeshIO"]),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "DepthNet", "Imaging", "Meshing", "MeshIO", "WorkerTestSupport"]),
        .target(name: "MeshCommands", dependencies: [
            "Meshing", "MeshIO", "Pipeline", "Imaging", "DepthNet", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "MeshCommandsTests", dependencies: [
            "MeshCommands", "Pipeline", "DepthNet", "Imaging", "Meshing", "MeshIO", "WorkerTestSupport",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "mesh", dependencies: ["MeshCommands", "Pipeline"]),

        // MARK: Fetch, AMQP, Worker and mesh-worker
        .target(name: "Fetch", dependencies: ["CCurl", "Imaging"]),
        .target(name: "WorkerTestSupport", dependencies: ["Imaging"], path: "Tests/WorkerTestSupport",
                resources: [.copy("Fixtures")]),
        .testTarget(name: "FetchTests", dependencies: ["Fetch", "Imaging", "WorkerTestSupport"]),
        .target(name: "AMQP", dependencies: ["CAMQP", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "AMQPTests", dependencies: ["AMQP"]),
        .target(name: "Worker", dependencies: [
            "AMQP", "Fetch", "Imaging", "MeshIO", "Pipeline", .product(name: "Logging", package: "swift-log"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ]),
        .executableTarget(name: "mesh-worker", dependencies: [
            "Worker", "Pipeline", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ]),
        .testTarget(name: "WorkerTests", dependencies: ["Worker", "AMQP", "Fetch", "Imaging", "MeshIO", "Pipeline", "WorkerTestSupport", "mesh-worker",
                                                    .product(name: "Logging", package: "swift-log")]),
    ],
    swiftLanguageModes: [.v6]
)
