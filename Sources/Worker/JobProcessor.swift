import AMQP
import Fetch
import Foundation
import Imaging
import Logging

/// What became of one delivery; `WorkerService` turns it into publishes and an ack.
public enum JobOutcome: Sendable {
    /// The model exists: publish the event (`model3d.result.succeeded`), then ack.
    case succeeded(ResultEvent)
    /// Permanent failure (or retries exhausted): publish the event (`model3d.result.failed`),
    /// dead-letter the original message with error headers, then ack.
    case failed(ResultEvent, JobFailure)
    /// Transient failure with retries left: republish to the retry queue for `delayIndex` with
    /// `x-attempts = attempt`, then ack.
    case retry(delayIndex: Int, attempt: Int, JobFailure)
}

/// Runs one job from delivery to files: parse, claim names, download, check, save, generate,
/// record completion. Holds no broker state, so it can run on any pool thread (and in tests
/// without a broker). Thread-safe.
public struct JobProcessor: Sendable {
    public var store: OutputStore
    public var fetcher: Fetcher
    public var generator: any ModelGenerating
    public var retryPolicy: RetryPolicy
    /// Header limits for the downloaded image (checked before it is saved).
    public var decodeLimits: DecodeLimits
    public var blasThreads: Int
    public var metrics: WorkerMetrics
    /// Redeliveries of an unfinished job (crashes, lost connections, drains) tolerated beyond its
    /// attempts before it is dead-lettered as `too_many_restarts`, so a job that crashes every
    /// worker cannot loop forever.
    public var maxRestarts: Int

    public init(store: OutputStore, fetcher: Fetcher, generator: any ModelGenerating, retryPolicy: RetryPolicy,
                decodeLimits: DecodeLimits = .default, blasThreads: Int = 1, metrics: WorkerMetrics = WorkerMetrics(),
                maxRestarts: Int = 3) {
        self.maxRestarts = maxRestarts
        self.store = store
        self.fetcher = fetcher
        self.generator = generator
        self.retryPolicy = retryPolicy
        self.decodeLimits = decodeLimits
        self.blasThreads = blasThreads
        self.metrics = metrics
    }

    /// The attempt number of a delivery: 1 + the `x-attempts` header.
    public static func attempt(of delivery: AMQPDelivery) -> Int {
        Int(delivery.headers[RetryPolicy.attemptsHeader]?.intValue ?? 0) + 1
    }

    /// `host:pid`, named in events and dead-letter headers.
    public static let workerName = "\(OutputStore.hostTag):\(getpid())"

    /// Processes one delivery. Never throws: every failure becomes an outcome.
    public func process(_ delivery: AMQPDelivery, logger: Logger) -> JobOutcome {
        let started = DispatchTime.now()
        let attempt = Self.attempt(of: delivery)
        var durations: [String: Double] = [:]
        var job: Job?
        var savedImage: URL?

        func event(_ status: ResultEvent.Status) -> ResultEvent {
            durations["total"] = Self.milliseconds(since: started)
            return ResultEvent(status: status, memberId: job?.memberId, timestamp: job?.timestamp, imageUrl: job?.imageURL,
                               durationsMs: durations, attempts: attempt, messageId: delivery.properties.messageId,
                               correlationId: delivery.properties.correlationId ?? delivery.properties.messageId,
                               finishedAt: Self.nowMilliseconds(), worker: Self.workerName)
        }

        do {
            let parsed = try Job.parse(delivery.body)
            job = parsed
            let key = OutputStore.jobKey(messageId: delivery.properties.messageId, body: delivery.body)
            let claim = try store.claim(job: parsed, key: key)
            if let done = claim.completed {
                logger.info("already done: model exists, not generating again", metadata: ["stem": "\(claim.stem)"])
                var result = event(.succeeded)
                fill(&result, from: done)
                result.durationsMs = done.stageMilliseconds
                result.alreadyDone = true
                return .succeeded(result)
            }

            let starts = try store.recordStart(stem: claim.stem)
            if delivery.redelivered && starts > retryPolicy.maxAttempts + maxRestarts {
                throw JobFailure(kind: .permanent, code: "too_many_restarts",
                                 message: "started \(starts) times without finishing (the worker crashed or stopped each time)")
            }

            var mark = DispatchTime.now()
            let image = try fetcher.fetch(parsed.imageURL)
            durations["download"] = Self.milliseconds(since: mark)
            metrics.addDownloadBytes(image.bytes.count)
            logger.debug("downloaded", metadata: ["bytes": "\(image.bytes.count)", "format": "\(image.format.rawValue)"])

            // Refuse undecodable headers (e.g. 100000×100000) before anything is written.
            _ = try ImageDecoder.info(image.bytes, limits: decodeLimits)
            mark = DispatchTime.now()
            let imageURL = store.root.appendingPathComponent(claim.imageName(fileExtension: image.format.fileExtension))
            try OutputStore.writeAtomically(image.bytes, to: imageURL)
            savedImage = imageURL
            durations["save"] = Self.milliseconds(since: mark)

            let generated = try generator.generate(imageBytes: image.bytes, imageURL: imageURL,
                                                   modelsDirectory: store.modelsDirectory, baseName: claim.modelBaseName,
                                                   blasThreads: blasThreads)
            for (stage, ms) in generated.stageMilliseconds { durations[stage] = ms }
            let record = OutputStore.CompletionRecord(
                imagePath: store.relativePath(imageURL), modelPaths: generated.modelFiles.map(store.relativePath),
                vertexCount: generated.vertexCount, faceCount: generated.faceCount,
                stageMilliseconds: durations, finishedAt: Self.nowMilliseconds(),
                size: generated.size, sizeSource: generated.sizeSource)
            try store.complete(stem: claim.stem, record: record)
            var result = event(.succeeded)
            fill(&result, from: record)
            return .succeeded(result)
        } catch {
            let failure = JobFailure(classifying: error)
            if failure.kind == .transient, let delayIndex = retryPolicy.retryDelayIndex(afterAttempt: attempt) {
                return .retry(delayIndex: delayIndex, attempt: attempt, failure)
            }
            var final = failure
            if failure.kind == .transient {
                final = JobFailure(kind: .permanent, code: failure.code,
                                   message: "\(failure.message) (gave up after \(attempt) attempts)")
            }
            // A dead-lettered job leaves no image behind.
            if let savedImage { try? FileManager.default.removeItem(at: savedImage) }
            var result = event(.failed)
            result.errorCode = final.code
            result.errorMessage = final.message
            return .failed(result, final)
        }
    }

    private func fill(_ event: inout ResultEvent, from record: OutputStore.CompletionRecord) {
        event.imagePath = record.imagePath
        event.modelPath = record.modelPaths.first
        event.modelPaths = record.modelPaths
        event.vertexCount = record.vertexCount
        event.faceCount = record.faceCount
        event.size = record.size
        event.sizeSource = record.sizeSource
    }

    static func milliseconds(since start: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6
    }

    static func nowMilliseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}
