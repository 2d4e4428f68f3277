import Foundation
import Fetch
import Imaging

/// The engine, as the worker sees it: image bytes in, model files out. `PipelineModelGenerator`
/// implements it with `Pipeline`'s `ImageTo3D`; `BoxModelGenerator` is the stand-in that plumbing
/// checks and tests use behind the same protocol.
public protocol ModelGenerating: Sendable {
    /// Turns one photo into model files.
    ///
    /// - Parameters:
    ///   - imageBytes: the downloaded photo (already checked to start like a JPEG or PNG).
    ///   - imageURL: where the worker saved that photo under the uploads root.
    ///   - modelsDirectory: the folder to write into (`uploads/models`).
    ///   - baseName: the file name without extension, e.g. `model3d_12345_20240108_160000`; write
    ///     `baseName.obj` (and `.mtl`, `.png`, `.glb` as configured) there.
    ///   - blasThreads: threads this one job may use (the worker runs several jobs at once; it sets
    ///     OpenBLAS's process-wide count once, before its pool starts).
    /// - Returns: the files written and what was measured.
    /// - Throws: `ImageError` for photos that cannot be decoded (permanent); an error conforming to
    ///   `ClassifiedJobError` to choose the outcome; any other error counts as a permanent
    ///   `generation_failed`. Files must be written atomically (temporary name, then rename: MeshIO's
    ///   `AtomicFile`, which `OutputStore.writeAtomically` calls), so a crash never leaves a partial model.
    func generate(imageBytes: [UInt8], imageURL: URL, modelsDirectory: URL, baseName: String,
                  blasThreads: Int) throws -> GenerationResult
}

/// What the engine produced for one job.
public struct GenerationResult: Sendable, Equatable {
    /// Every file written, the primary model (`.obj`) first.
    public var modelFiles: [URL]
    public var vertexCount: Int
    public var faceCount: Int
    /// Milliseconds per engine stage, e.g. `["decode": 3.1, "depth": 410, "mesh": 55, "write": 4]`.
    public var stageMilliseconds: [String: Double]
    /// The model's size in metres, when the engine knows it.
    public var size: ModelSize?
    /// How the size was found (`unknown` when it was not).
    public var sizeSource: String?

    public init(modelFiles: [URL], vertexCount: Int, faceCount: Int, stageMilliseconds: [String: Double],
                size: ModelSize? = nil, sizeSource: String? = nil) {
        self.modelFiles = modelFiles
        self.vertexCount = vertexCount
        self.faceCount = faceCount
        self.stageMilliseconds = stageMilliseconds
        self.size = size
        self.sizeSource = sizeSource
    }
}

/// A model's extent in metres: width (x), depth (z) and height (y) of the output frame.
public struct ModelSize: Codable, Sendable, Equatable {
    public var width: Double
    public var depth: Double
    public var height: Double

    public init(width: Double, depth: Double, height: Double) {
        self.width = width
        self.depth = depth
        self.height = height
    }
}

/// Whether trying the same job again later can help.
public enum FailureKind: String, Sendable, Equatable {
    case permanent
    case transient
}

/// An error that chooses its own outcome and code (engines may conform their errors to it).
public protocol ClassifiedJobError: Error {
    var code: String { get }
    var kind: FailureKind { get }
}

/// A failure reduced to what the outcome needs: kind, stable code, human message.
public struct JobFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public var kind: FailureKind
    public var code: String
    public var message: String

    public init(kind: FailureKind, code: String, message: String) {
        self.kind = kind
        self.code = code
        self.message = message
    }

    /// Classifies any error a job can hit:
    /// `JobError`, `ImageError` → permanent; `FetchError` → its own `isTransient`;
    /// `ClassifiedJobError` → its own kind; file-system errors (`POSIXError`, `CocoaError`: disk full,
    /// permissions, a shared filesystem gone) → transient `io_error`; anything else → permanent
    /// `generation_failed`.
    public init(classifying error: any Error) {
        switch error {
        case let failure as JobFailure:
            self = failure
        case let error as JobError:
            self.init(kind: .permanent, code: error.code.rawValue, message: error.message)
        case let error as ImageError:
            self.init(kind: .permanent, code: error.code, message: error.description)
        case let error as FetchError:
            self.init(kind: error.isTransient ? .transient : .permanent, code: error.code, message: error.description)
        case let error as any ClassifiedJobError:
            self.init(kind: error.kind, code: error.code, message: String(describing: error))
        case let error as POSIXError:
            self.init(kind: .transient, code: "io_error", message: "file system error: \(error.code) (\(error.localizedDescription))")
        case let error as CocoaError:
            self.init(kind: .transient, code: "io_error", message: "file system error: \(error.localizedDescription)")
        default:
            self.init(kind: .permanent, code: "generation_failed", message: String(describing: error))
        }
    }

    public var description: String { "\(kind) \(code): \(message)" }
}
