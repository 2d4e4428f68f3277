import ArgumentParser
import DepthNet
import Foundation
import Imaging
import Pipeline

/// `mesh network IMAGE… -o OUT.f32`: the depth network alone, its raw outputs written as float32,
/// so that another runtime's outputs on the same pixels can be compared number for number
/// (Training/scripts/compare_heldout.py does that against PyTorch on the held-out set).
struct NetworkCommand: MeshSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "network",
        abstract: "Run the depth network alone and write its raw outputs as float32.",
        discussion: """
            Each image is decoded (EXIF orientation applied), resized to --size × --size unless it \
            already has that size (default: the weights' input size), normalised as the weights' \
            config says, and run through the network as the engine runs it (for weights whose config \
            sets flip_average, the mean of two passes: the image and its mirror image). The outputs \
            of all images (for the project's network: front depth, back depth, mask probability) are written one after another as \
            little-endian float32 in N × C × H × W order, and one line per image reports the \
            output's shape.
            """
    )

    @Argument(help: "Images (JPEG or PNG), in the order their outputs are written.")
    var images: [String]

    @Option(name: [.short, .customLong("output")], help: "The float32 file to write.")
    var output: String

    @Option(help: "Weights folder (default: as for `mesh`).")
    var weights: String?

    @Option(help: "Square input side (default: the weights' input size; a multiple of the network's size step).")
    var size: Int?

    @Option(help: "Threads for the network.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("give at least one image") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        if let size, size < 1 { throw ValidationError("--size must be positive") }
    }

    func run(engine settings: EngineEnvironment, console: Console) throws {
        // OpenBLAS has one thread count per process.
        ImageTo3D.setNetworkThreads(threads)
        let model: DepthModel
        do {
            model = try ImageTo3D(weights: weights.map { URL(fileURLWithPath: $0) }, environment: settings).depthModel
        } catch {
            console.printError("mesh network: \(error)")
            throw ExitCode.failure
        }
        let preferred = model.preferredInputSize
        let side = size ?? max(preferred.height, preferred.width)
        guard side % model.sizeMultiple == 0 else {
            throw ValidationError("--size \(side) is not a multiple of \(model.sizeMultiple)")
        }
        let workspace = Workspace(threads: threads)
        var bytes = Data()
        for path in images {
            let decoded: DecodedImage
            do { decoded = try ImageDecoder.decode(contentsOf: URL(fileURLWithPath: path)) } catch {
                console.printError("mesh network: \(path): \(error)")
                throw ExitCode(65)
            }
            var image = decoded.image
            if image.width != side || image.height != side { image = image.resized(width: side, height: side) }
            let input = model.makeInput(pixels: image.pixels, width: side, height: side, channels: image.channels, workspace: workspace)
            let out = try model.predict(input, workspace: workspace)
            out.withUnsafeBufferPointer { values in
                for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
            }
            console.print("\(path): \(out.shape.map(String.init).joined(separator: "×"))")
        }
        try bytes.write(to: URL(fileURLWithPath: output), options: .atomic)
    }
}
