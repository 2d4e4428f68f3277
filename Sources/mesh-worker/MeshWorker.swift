import ArgumentParser
import Foundation
import Logging
import Pipeline
import UnixSignals
import Worker

extension PipelineOptions.Mode: ExpressibleByArgument {}
extension PipelineOptions.Format: ExpressibleByArgument {}

/// `mesh-worker`: consumes `model3d.upload.queue`, downloads each photo, makes its model, saves the
/// files, reports the result and acknowledges the job. Everything happens in the `Worker` module.
@main
struct MeshWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mesh-worker",
        abstract: "Turn queued photo uploads into 3D models (RabbitMQ worker).",
        discussion: """
        Consumes jobs {"imageUrl", "memberId", "timestamp"} from the work queue and writes \
        uploads/image_{memberId}_{yyyyMMdd_HHmmss}.{jpg|png} and \
        uploads/models/model3d_{memberId}_{yyyyMMdd_HHmmss}.obj (the job's timestamp, in UTC).

        Results go to the result exchange with routing key model3d.result.succeeded or \
        model3d.result.failed. Permanent failures are republished to the dead-letter exchange with \
        x-error-code and x-exception-message headers; transient ones are retried through per-delay \
        retry queues ({queue}.retry.{ms}ms), then dead-lettered.

        SIGTERM or SIGINT drains (no new jobs, running ones get the grace period, then are requeued) \
        and exits 0. HTTP (Hummingbird): /healthz, /readyz (503 unless consuming), /metrics (Prometheus \
        text), on IPv4 or IPv6 (--http-host ::, ::1, 127.0.0.1).

        Every option can also be set in the environment (named in its help); flags win.
        """)

    @OptionGroup var options: MeshWorkerOptions

    /// The engines this executable can run.
    enum Engine: String, ExpressibleByArgument, CaseIterable {
        /// The `Pipeline` engine (`ImageTo3D`): depth network, mesher, model files.
        case pipeline
        /// `BoxModelGenerator`: decodes the photo and writes a box sized by its aspect (plumbing checks).
        case box
    }

    @Option(help: ArgumentHelp("Model generator (env WORKER_ENGINE; default pipeline): pipeline runs the engine; box decodes the photo and writes a box sized by its aspect, for checking the queue plumbing without weights.",
                               valueName: "engine"))
    var engine: Engine?

    @Option(help: ArgumentHelp("Weights folder of the pipeline engine (env MYROOM_WEIGHTS; default: Weights/ beside or above the executable, or in the current folder).",
                               valueName: "dir"))
    var weights: String?

    @Option(help: ArgumentHelp("Pipeline mode: auto, object or relief (env WORKER_MODE; default auto).", valueName: "mode"))
    var mode: PipelineOptions.Mode?

    @Option(name: .customLong("format"), help: ArgumentHelp("Model format, repeatable: obj, glb, ply (env WORKER_FORMATS, comma-separated; default obj). OBJ is always written: it is the model the result event names.",
                                                          valueName: "format"))
    var formats: [PipelineOptions.Format] = []

    @Flag(help: "Textured OBJ (+ .mtl and .png) instead of per-vertex colours (env WORKER_TEXTURE=1).")
    var texture = false

    @Option(help: ArgumentHelp("Seconds the box engine waits per job, standing in for engine time (env WORKER_BOX_DELAY; default 0).",
                               valueName: "seconds"))
    var boxDelay: Double?

    func validate() throws {
        if engine == nil, let name = ProcessInfo.processInfo.environment["WORKER_ENGINE"], Engine(rawValue: name) == nil {
            throw ValidationError("WORKER_ENGINE=\(name) is not one of \(Engine.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() async throws {
        let configuration = try options.configuration()
        // The one place logging is set up: every line of the worker, its AMQP client, Hummingbird and
        // ServiceGroup is a JSON object on standard error.
        LoggingSystem.bootstrap { label in JSONLogHandler(label: label, logLevel: configuration.logLevel) }
        let logger = Logger(label: "mesh-worker")
        let delay = boxDelay ?? ProcessInfo.processInfo.environment["WORKER_BOX_DELAY"].flatMap(Double.init) ?? 0
        let environment = ProcessInfo.processInfo.environment
        // The no-op benchmark mode never runs a job: no weights needed.
        let selected = configuration.noopJobs ? .box
            : engine ?? environment["WORKER_ENGINE"].flatMap(Engine.init(rawValue:)) ?? .pipeline
        let generator: any ModelGenerating
        switch selected {
        case .box:
            generator = BoxModelGenerator(delay: delay, decodeLimits: configuration.decodeLimits)
        case .pipeline:
            var pipeline = PipelineOptions()
            pipeline.limits = configuration.decodeLimits
            pipeline.threads = configuration.blasThreads
            if let mode = mode ?? environment["WORKER_MODE"].flatMap(PipelineOptions.Mode.init(rawValue:)) { pipeline.mode = mode }
            var chosen = formats
            if chosen.isEmpty, let text = environment["WORKER_FORMATS"] {
                chosen = text.split(separator: ",").compactMap { PipelineOptions.Format(rawValue: $0.trimmingCharacters(in: .whitespaces)) }
            }
            pipeline.formats = [.obj] + chosen.filter { $0 != .obj }
            pipeline.texture = texture || environment["WORKER_TEXTURE"] == "1"
            // N pipelines at once, each with its own BLAS threads.
            ImageTo3D.setNetworkThreads(configuration.blasThreads)
            let engine: ImageTo3D
            do {
                engine = try ImageTo3D(weights: weights.map { URL(fileURLWithPath: $0) }, environment: EngineEnvironment(
                    environment: environment, executable: URL(fileURLWithPath: CommandLine.arguments.first ?? "mesh-worker"),
                    currentDirectory: URL(fileURLWithPath: FileManager.default.currentDirectoryPath)))
            } catch {
                throw ValidationError("cannot load the engine: \(error)")
            }
            generator = PipelineModelGenerator(engine: engine, options: pipeline)
        }
        let service = WorkerService(configuration: configuration, generator: generator, logger: logger)
        do {
            try await service.run(gracefulShutdownSignals: [.sigterm, .sigint])
        } catch {
            // Logged as JSON like everything else (e.g. the HTTP port cannot be bound), then exit 1.
            logger.critical("mesh-worker stopped: \(error)")
            throw ExitCode.failure
        }
    }
}
