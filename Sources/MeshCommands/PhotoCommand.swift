import ArgumentParser
import Foundation
import Imaging
import Meshing
import Pipeline

extension PipelineOptions.Mode: ExpressibleByArgument {}
extension PipelineOptions.Format: ExpressibleByArgument {}

/// `mesh PHOTO [PHOTO ...]`: the whole engine on each photo.
struct PhotoCommand: MeshSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "photo",
        abstract: "Turn photos into 3D models (the default subcommand: `mesh chair.jpg`).",
        discussion: """
            Each photo is decoded (JPEG or PNG, EXIF orientation applied), the depth network \
            estimates front depth, back depth and a foreground mask, and the mesher builds a \
            closed object (object mode) or a relief of the whole picture (relief mode). \
            --mode auto picks relief mode when the network's scene head calls the photo a room \
            view (the shipped weights have one) or when the foreground covers under 2% or over 85% \
            of the picture or touches all four borders, object mode otherwise.

            A cut-out PNG (its alpha channel marks the object: iPhone's "lift subject", rembg, \
            photo editors) or --mask FILE gives the object's silhouette instead of the network.

            Output frame (all formats): +Y up, the camera looks along −Z, the photographed side \
            faces +Z. Object models stand on y = 0, centred, in metres when the size is known (--height, \
            or weights with metric depth), else with a height of 1; relief models keep camera units. Exit status: 0 all written, 65 some photo was bad input (the rest are still \
            written), 1 another failure, 64 usage.
            """
    )

    @Argument(help: "Photos to turn into models (JPEG or PNG).")
    var photos: [String]

    @Option(name: [.short, .long], help: ArgumentHelp(
        "Output file (its extension picks the format) or folder.",
        discussion: "Default: uploads/models/model3d_<photo name>_<yyyyMMdd_HHmmss>.<ext> under the current folder."))
    var output: String?

    @Option(help: "auto, object or relief.")
    var mode: PipelineOptions.Mode = .auto

    @Option(name: .customLong("format"), help: "Output format: obj, glb or ply (repeatable; default obj).")
    var formats: [PipelineOptions.Format] = []

    @Flag(help: "Write OBJ+MTL+PNG (and a textured GLB) instead of vertex colours.")
    var texture = false

    @Option(help: "Network input size along the photo's longer side (default: the weights' input_size; 192 for the shipped ones).")
    var resolution: Int?

    @Option(name: .customLong("volume"), help: ArgumentHelp(
        "Marching-cubes voxels along the object's longest side.",
        discussion: "Default: 128, finer (up to 256) where the silhouette has thin parts."))
    var volumeResolution: Int?

    @Option(help: ArgumentHelp("A mask of the object: an image of the photo's size, white = object (or its alpha, if it has one).",
                               discussion: "Only with one photo."))
    var mask: String?

    @Option(name: .customLong("depth"),
            help: ArgumentHelp("Front depth to use instead of the network's: a PFM of camera z-depth (larger = farther), the photo's aspect.",
                               discussion: "From a depth sensor, another model or ground truth; --depth-out writes this format. Only with one photo."))
    var depthIn: String?

    @Option(help: ArgumentHelp("Back depth (where each ray leaves the object) to go with --depth, same format and size.",
                               discussion: "Without it the network's thickness ratio is kept."))
    var backDepth: String?

    @Option(help: "The object's real height in metres: the model is then in metres.")
    var height: Float?

    @Option(name: .customLong("fov"), help: "The photo's vertical field of view in degrees (default: the weights').")
    var fovDegrees: Float?

    @Option(help: "Relief mode: simplify to this maximum error (camera units).")
    var simplify: Float?

    @Option(help: "Weights folder (ours, or a Depth-Anything-V2 folder with config.json + model.safetensors).")
    var weights: String?

    @Option(help: "Write the front depth as PFM (float32, photo size, larger = farther).")
    var depthOut: String?

    @Option(help: "Write the foreground mask as PNG (photo size).")
    var maskOut: String?

    @Option(help: "Write a PNG rendering of the model from a three-quarter view.")
    var preview: String?

    @Option(help: "Threads for the network and the mesher (default: all cores).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Largest photo accepted, in megapixels.")
    var maxMegapixels: Double = 40

    @Flag(name: .shortAndLong, help: "Print nothing but errors.")
    var quiet = false

    @Flag(help: "Print a JSON summary (paths, counts, per-stage milliseconds) instead of text.")
    var json = false

    func validate() throws {
        guard !photos.isEmpty else { throw ValidationError("give at least one photo") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        let resolutions = PipelineOptions.resolutionRange, volumes = PipelineOptions.volumeResolutionRange
        if let resolution, !resolutions.contains(resolution) {
            throw ValidationError("--resolution must be between \(resolutions.lowerBound) and \(resolutions.upperBound)")
        }
        if let volumeResolution, !volumes.contains(volumeResolution) {
            throw ValidationError("--volume must be between \(volumes.lowerBound) and \(volumes.upperBound)")
        }
        if let height, !(height > 0 && height < 1000) {
            throw ValidationError("--height must be a height in metres, more than 0 and under 1000")
        }
        if mask != nil && photos.count > 1 { throw ValidationError("--mask goes with one photo") }
        if depthIn != nil && photos.count > 1 { throw ValidationError("--depth goes with one photo") }
        if backDepth != nil && depthIn == nil { throw ValidationError("--back-depth goes with --depth") }
        if let fovDegrees, !PipelineOptions.isValidFieldOfView(fovDegrees) {
            let bounds = PipelineOptions.fieldOfViewBounds
            throw ValidationError("--fov must be between \(Int(bounds.lower)) and \(Int(bounds.upper))")
        }
        guard maxMegapixels > 0 else { throw ValidationError("--max-megapixels must be positive") }
        if photos.count > 1 {
            for (name, path) in [("--depth-out", depthOut), ("--mask-out", maskOut), ("--preview", preview), ("--output", output)] {
                if let path, !isDirectory(path) {
                    throw ValidationError("with several photos, \(name) must be an existing folder")
                }
            }
        }
        if let output, !isDirectory(output), !output.hasSuffix("/") {
            let ext = URL(fileURLWithPath: output).pathExtension.lowercased()
            guard PipelineOptions.Format(rawValue: ext) != nil else {
                throw ValidationError("--output \(output): use a folder or a file ending in .obj, .glb or .ply")
            }
        }
    }

    func run(engine settings: EngineEnvironment, console: Console) throws {
        let options = pipelineOptions()
        // OpenBLAS has one thread count per process; this command runs one photo at a time.
        ImageTo3D.setNetworkThreads(threads)
        let engine: ImageTo3D
        do {
            engine = try ImageTo3D(weights: weights.map { URL(fileURLWithPath: $0) }, environment: settings)
        } catch {
            console.printError("mesh: \(error)")
            throw ExitCode.failure
        }
        var results: [PhotoReport] = []
        var badInput = false, otherFailure = false
        for (index, path) in photos.enumerated() {
            if !quiet && !json && photos.count > 1 { console.print("[\(index + 1)/\(photos.count)] \(path)") }
            do {
                let report = try process(path, engine: engine, options: options)
                results.append(report)
                if !quiet && !json { console.print(report.line) }
            } catch let error as PipelineError {
                if error.isBadInput { badInput = true } else { otherFailure = true }
                results.append(PhotoReport(photo: path, error: error.description, errorCode: error.code))
                console.printError("mesh: \(path): \(error)")
            } catch {
                otherFailure = true
                results.append(PhotoReport(photo: path, error: "\(error)", errorCode: "io_error"))
                console.printError("mesh: \(path): \(error)")
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            console.print(String(decoding: try encoder.encode(results), as: UTF8.self))
        }
        if otherFailure { throw ExitCode.failure }
        if badInput { throw ExitCode(65) }
    }

    func pipelineOptions() -> PipelineOptions {
        var o = PipelineOptions()
        o.mode = mode
        o.texture = texture
        o.resolution = resolution
        if let volumeResolution {
            o.volumeResolution = volumeResolution
            o.maxVolumeResolution = volumeResolution
        }
        o.objectHeight = height
        o.fovDegrees = fovDegrees
        o.reliefMaxError = simplify
        o.threads = threads
        o.limits.maxPixels = Int(maxMegapixels * 1_000_000)
        var formats = formats
        if let output, photos.count == 1, let f = PipelineOptions.Format(rawValue: URL(fileURLWithPath: output).pathExtension.lowercased()),
           !isDirectory(output) {
            if !formats.contains(f) { formats.append(f) }
        }
        o.formats = formats.isEmpty ? [.obj] : formats
        return o
    }

    func process(_ path: String, engine: ImageTo3D, options: PipelineOptions) throws -> PhotoReport {
        let url = URL(fileURLWithPath: path)
        let bytes: [UInt8]
        do {
            let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            if size > options.limits.maxBytes {
                throw PipelineError.image(.tooManyBytes(count: size, limit: options.limits.maxBytes))
            }
            bytes = [UInt8](try Data(contentsOf: url))
        } catch let error as PipelineError {
            throw error
        } catch {
            throw PipelineError.invalidOptions("cannot read \(path): \((error as NSError).localizedDescription)")
        }
        var maskImage: Image?
        if let mask {
            do {
                maskImage = try ImageDecoder.decode(contentsOf: URL(fileURLWithPath: mask), limits: options.limits).image
            } catch let error as ImageError {
                throw PipelineError.badMask("\(mask): \(error)")
            } catch {
                throw PipelineError.invalidOptions("cannot read \(mask): \((error as NSError).localizedDescription)")
            }
        }
        var givenDepth: GivenDepth?
        if let depthIn {
            func read(_ path: String) throws -> [UInt8] {
                do { return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) } catch {
                    throw PipelineError.invalidOptions("cannot read \(path): \((error as NSError).localizedDescription)")
                }
            }
            givenDepth = try GivenDepth(frontPFM: try read(depthIn), backPFM: try backDepth.map(read),
                                        names: (depthIn, backDepth ?? ""))
        }
        let base = outputBase(stem: url.deletingPathExtension().lastPathComponent)
        // Side outputs in a folder are named after the model: <model name>_depth.pfm, …
        let stem = base.lastPathComponent
        let result = try engine.run(imageBytes: bytes, output: base, options: options, mask: maskImage, depth: givenDepth)
        var extra: [String] = []
        if let depthOut {
            let target = sidecar(depthOut, stem: stem, suffix: "_depth.pfm")
            let photo = result.photo, maps = result.maps
            let depth = ImageTo3DMaps.upsample(maps.front, width: maps.width, height: maps.height, to: photo.width, photo.height)
            try write(PFM.encode(width: photo.width, height: photo.height, values: depth), to: target)
            extra.append(target)
        }
        if let maskOut {
            let target = sidecar(maskOut, stem: stem, suffix: "_mask.png")
            // At the photo's upright size, like --depth-out, so it lies over the photo in an editor;
            // in object mode the refined silhouette the object was carved from.
            let photo = result.photo, maps = result.silhouette
            let mask = ImageTo3DMaps.upsample(maps.mask, width: maps.width, height: maps.height, to: photo.width, photo.height)
            let bytes = mask.map { UInt8(max(0, min(255, ($0 * 255).rounded()))) }
            try write(try PNGEncoder.encodeGray(width: photo.width, height: photo.height, pixels: bytes), to: target)
            extra.append(target)
        }
        if let preview {
            let target = sidecar(preview, stem: stem, suffix: "_preview.png")
            let image = PreviewRenderer().render(result.mesh)
            try write(try PNGEncoder.encode(image), to: target)
            extra.append(target)
        }
        return PhotoReport(photo: path, summary: result.summary, extraFiles: extra)
    }

    /// `<output>` without extension: a file given by -o, a folder + the photo's name, or the default.
    func outputBase(stem: String) -> URL {
        if let output {
            if isDirectory(output) || output.hasSuffix("/") {
                return URL(fileURLWithPath: output).appendingPathComponent(stem)
            }
            return URL(fileURLWithPath: output).deletingPathExtension()
        }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyyMMdd_HHmmss"
        return URL(fileURLWithPath: "uploads/models").appendingPathComponent("model3d_\(stem)_\(formatter.string(from: Date()))")
    }

    /// A side output's path: the file given, or `<folder>/<photo name><suffix>` for a folder.
    func sidecar(_ path: String, stem: String, suffix: String) -> String {
        isDirectory(path) ? URL(fileURLWithPath: path).appendingPathComponent(stem + suffix).path : path
    }

    func write(_ bytes: [UInt8], to path: String) throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: url, options: .atomic)
    }
}

func isDirectory(_ path: String) -> Bool {
    var dir: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &dir) && dir.boolValue
}

/// One photo's outcome, as printed and as `--json` writes it.
struct PhotoReport: Codable {
    var photo: String
    var ok: Bool
    var summary: PipelineSummary?
    var extraFiles: [String]?
    var error: String?
    var errorCode: String?

    init(photo: String, summary: PipelineSummary, extraFiles: [String]) {
        self.photo = photo
        ok = true
        self.summary = summary
        self.extraFiles = extraFiles.isEmpty ? nil : extraFiles
    }

    init(photo: String, error: String, errorCode: String) {
        self.photo = photo
        ok = false
        self.error = error
        self.errorCode = errorCode
    }

    var line: String {
        guard let s = summary else { return "\(photo): \(error ?? "failed")" }
        let main = s.files.last(where: { !$0.hasSuffix(".png") && !$0.hasSuffix(".mtl") }) ?? s.files.first ?? "-"
        let stages = s.milliseconds.map { "\($0.stage) \(Int($0.milliseconds.rounded())) ms" }.joined(separator: ", ")
        var text = "\(photo) -> \(main)  \(s.mode.rawValue), \(s.vertices) vertices, \(s.faces) faces  (\(stages))"
        if let size = s.size {
            text += String(format: "\n  size: %.2f x %.2f x %.2f m (width x depth x height, %@)", size.width, size.depth, size.height,
                           size.source.rawValue)
        }
        if s.files.count > 1 { text += "\n  also: " + s.files.filter { $0 != main }.joined(separator: ", ") }
        if let extra = extraFiles { text += "\n  also: " + extra.joined(separator: ", ") }
        return text
    }
}
