import ArgumentParser
import Foundation
import Worker

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
        and exits 0. HTTP: /healthz, /readyz, /metrics (Prometheus text).

        Every option can also be set in the environment (named in its help); flags win.
        """)

    @OptionGroup var options: MeshWorkerOptions

    /// The engines this executable can run.
    enum Engine: String, ExpressibleByArgument, CaseIterable {
        /// `BoxModelGenerator`: decodes the photo and writes a box sized by its aspect (plumbing checks).
        case box
    }

    @Option(help: ArgumentHelp("Model generator (env WORKER_ENGINE; default box until the Pipeline engine is wired): box decodes the photo and writes a box sized by its aspect, for checking the queue plumbing.",
                               valueName: "engine"))
    var engine: Engine?

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
        let delay = boxDelay ?? ProcessInfo.processInfo.environment["WORKER_BOX_DELAY"].flatMap(Double.init) ?? 0
        let selected = engine ?? ProcessInfo.processInfo.environment["WORKER_ENGINE"].flatMap(Engine.init(rawValue:)) ?? .box
        let generator: any ModelGenerating
        switch selected {
        case .box: generator = BoxModelGenerator(delay: delay, decodeLimits: configuration.decodeLimits)
        }
        let service = WorkerService(configuration: configuration, generator: generator)
        let signals = service.installSignalHandlers()
        try await service.run()
        withExtendedLifetime(signals) {}
    }
}
