import Foundation
import Pipeline

/// The real engine behind the worker: `ImageTo3D` (decode → depth network → mesher → files).
///
/// One instance serves every job: the engine is immutable and each call has its own
/// workspace. A cut-out PNG (non-trivial alpha) is meshed inside its alpha. Outcomes: a photo
/// that cannot be decoded (`ImageError`), is too small or too elongated (`image_too_small`,
/// `bad_aspect_ratio`) or holds no object for object mode is permanent; a failed write (disk
/// full, shared filesystem gone) is transient; anything else from the engine is permanent.
public struct PipelineModelGenerator: ModelGenerating {
    public let engine: ImageTo3D
    public let options: PipelineOptions

    public init(engine: ImageTo3D, options: PipelineOptions = PipelineOptions()) {
        self.engine = engine
        self.options = options
    }

    public func generate(imageBytes: [UInt8], imageURL: URL, modelsDirectory: URL, baseName: String,
                         blasThreads: Int) throws -> GenerationResult {
        var options = options
        options.threads = max(1, blasThreads)
        let result: PipelineResult
        do {
            result = try engine.run(imageBytes: imageBytes, output: modelsDirectory.appendingPathComponent(baseName),
                                    options: options)
        } catch {
            switch error {
            case .image(let imageError): throw imageError
            case .output(let ioError): throw JobFailure(kind: .transient, code: "io_error", message: ioError.description)
            default: throw JobFailure(kind: .permanent, code: error.code, message: error.description)
            }
        }
        let files = result.summary.files.map { URL(fileURLWithPath: $0) }
        let ordered = files.filter { $0.pathExtension == "obj" } + files.filter { $0.pathExtension != "obj" }
        var stages: [String: Double] = [:]
        for stage in result.summary.milliseconds { stages[stage.stage] = stage.milliseconds }
        let size = result.summary.size.map { ModelSize(width: Double($0.width), depth: Double($0.depth), height: Double($0.height)) }
        return GenerationResult(modelFiles: ordered, vertexCount: result.summary.vertices,
                                faceCount: result.summary.faces, stageMilliseconds: stages,
                                size: size, sizeSource: result.summary.mode == .relief ? nil : result.summary.sizeSource.rawValue)
    }
}
