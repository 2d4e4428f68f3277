import AMQP
import Fetch
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals
#if canImport(Glibc)
import Glibc
#endif

/// The queue front: consumes the work queue, runs up to `poolSize` jobs at once on dedicated threads,
/// and settles each one as `Settlement.decide` plans it:
/// - success → result event (confirmed) → ack;
/// - permanent failure → failure event (confirmed) → original body and properties republished to the
///   dead-letter exchange with `x-exception-message`, `x-error-code`, `x-original-exchange`,
///   `x-original-routingKey`, `x-attempts`, … (confirmed, mandatory) → ack;
/// - transient failure with retries left → republished to the retry queue for its delay with
///   `x-attempts` raised (confirmed, mandatory) → ack.
/// When a publish cannot be confirmed the job is not acked: it is nacked back to the queue (or, when
/// the connection was lost, redelivered by the broker), so nothing is dropped without a trace.
///
/// One `AMQPClient` I/O thread owns the connection and keeps heartbeats serviced; pool threads hand
/// their publishes and acks to it.
///
/// `run()` runs three swift-service-lifecycle services in one `ServiceGroup`: the HTTP endpoints, the
/// AMQP client (started once the endpoints listen, so a worker that cannot bind its port never
/// touches the queue) and the job runner (consumer loop and pool). Graceful shutdown — a signal in
/// `gracefulShutdownSignals` (SIGTERM/SIGINT for the executable) or `requestShutdown()` — stops
/// them in reverse order: the job runner drains (stop consuming, requeue jobs not started, give
/// running ones `drainGrace` seconds, requeue what is still running), then the connection closes,
/// then the endpoints (`/readyz` says 503 throughout the drain). `run()` then returns.
public final class WorkerService: @unchecked Sendable {
    public let configuration: WorkerConfiguration
    public let metrics: WorkerMetrics
    /// The logger every part of the worker logs through (copies with a `component` or job metadata).
    public let logger: Logger
    private let processor: JobProcessor
    private let client: AMQPClient
    private let keyedLocks = KeyedLocks()
    private let state = NSLock()
    private var settlements: [String: Bool] = [:]  // in-flight delivery → settled (or being settled)
    private var draining = false
    private var shutdownRequested = false
    private var group: ServiceGroup?
    private var readyCount = 0
    private var boundHTTPPort: UInt16?

    /// - Parameters:
    ///   - generator: the engine (the `Pipeline`; `BoxModelGenerator` for plumbing checks).
    ///   - logger: where logs go (the executable bootstraps `JSONLogHandler`); its level is set to
    ///     `configuration.logLevel`.
    public init(configuration: WorkerConfiguration, generator: any ModelGenerating, logger: Logger = Logger(label: "mesh-worker")) {
        self.configuration = configuration
        var leveled = logger
        leveled.logLevel = configuration.logLevel
        let logger = leveled
        self.logger = logger
        let metrics = WorkerMetrics()
        self.metrics = metrics
        processor = JobProcessor(store: OutputStore(root: configuration.uploadsRoot),
                                 fetcher: Fetcher(options: configuration.fetch), generator: generator,
                                 retryPolicy: configuration.retry, decodeLimits: configuration.decodeLimits,
                                 blasThreads: configuration.blasThreads, metrics: metrics)
        let counter = ReadyCounter()
        client = AMQPClient(
            configuration: configuration.amqp, topology: configuration.topology,
            consumer: AMQPConsumerSpec(queue: configuration.queues.workQueue,
                                       prefetch: UInt16(clamping: configuration.poolSize)),
            options: AMQPClientOptions(reconnect: configuration.reconnect),
            logger: logger.with(component: "amqp"),
            onEvent: { event in
                switch event {
                case .ready(let id):
                    if counter.increment() > 1 { metrics.recordReconnect() }
                    logger.info("connected and consuming", metadata: ["connectionID": "\(id)"])
                case .connectionLost(let error):
                    logger.warning("connection lost; running jobs will be redelivered", metadata: ["error": "\(error)"])
                case .reconnectScheduled(let attempt, let delay, let error):
                    logger.warning("reconnecting", metadata: ["attempt": "\(attempt)", "delay": "\(delay)", "error": "\(error)"])
                case .consumerCancelled(let tag):
                    logger.warning("consumer cancelled by the broker", metadata: ["consumerTag": "\(tag)"])
                case .returned(let message):
                    logger.error("publish returned unroutable",
                                 metadata: ["exchange": "\(message.exchange)", "routingKey": "\(message.routingKey)"])
                case .blocked(let reason):
                    logger.warning("broker blocked the connection", metadata: ["reason": "\(reason)"])
                case .unblocked:
                    logger.info("broker unblocked the connection")
                case .stopped:
                    logger.info("AMQP client stopped")
                }
            })
    }

    /// Connected, consuming and not draining.
    public var isReady: Bool {
        state.lock(); defer { state.unlock() }
        return !draining && client.isReady
    }

    /// The port the HTTP endpoints listen on, once `run()` has started them.
    public var httpPort: UInt16? {
        state.lock(); defer { state.unlock() }
        return boundHTTPPort
    }

    /// Asks `run()` to drain and return, as SIGTERM does. Safe from any thread, before or during
    /// `run()`; later calls do nothing.
    public func requestShutdown() {
        let group = state.withLock {
            shutdownRequested = true
            return self.group
        }
        if let group { Task { await group.triggerGracefulShutdown() } }
    }

    /// Runs until graceful shutdown, then drains and returns.
    /// - Parameter gracefulShutdownSignals: signals that start the drain (`[.sigterm, .sigint]` in
    ///   the executable; none in tests, which call `requestShutdown()`).
    /// - Throws: when the uploads root cannot be created or the HTTP endpoints cannot listen
    ///   (`HTTPEndpoints.BindError`).
    public func run(gracefulShutdownSignals: [UnixSignal] = []) async throws {
        // The worker's own async work (the consumer loop, the drain) runs on its own thread, as the
        // HTTP endpoints do on theirs: a process whose cooperative pool is blocked still consumes.
        let executor = DispatchTaskExecutor(label: "mesh-worker.service")
        try await withTaskExecutorPreference(executor) {
            try await runServices(gracefulShutdownSignals: gracefulShutdownSignals, executor: executor)
        }
    }

    private func runServices(gracefulShutdownSignals: [UnixSignal], executor: DispatchTaskExecutor) async throws {
        signal(SIGPIPE, SIG_IGN)
        let store = processor.store
        try store.prepare()
        for path in store.removeStaleTemporaries() {
            logger.info("removed a partial file left by a crashed worker", metadata: ["path": "\(path)"])
        }
        logger.info("starting", metadata: ["queue": "\(configuration.queues.workQueue)", "poolSize": "\(configuration.poolSize)",
                                           "uploads": "\(configuration.uploadsRoot.path)", "broker": "\(configuration.amqp)"])
        let listening = StartGate()
        var services: [any Service] = []
        if let endpoints = makeHTTPEndpoints(onListening: listening.open) {
            services.append(endpoints)
        } else {
            listening.open()
        }
        services.append(AMQPClientService(client: client, startAfter: listening))
        services.append(JobRunner(worker: self, startAfter: listening, executor: executor))
        // ServiceGroup's notes on each start and stop are noise at info.
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: gracefulShutdownSignals,
            logger: logger.with(component: "services", atLeast: .warning)))
        let stopAtOnce = state.withLock {
            self.group = group
            return shutdownRequested
        }
        if stopAtOnce { await group.triggerGracefulShutdown() }
        try await group.run()
        logger.info("stopped")
    }

    /// The HTTP endpoints, when a port is configured; `onListening` is called once they accept connections.
    private func makeHTTPEndpoints(onListening: @escaping @Sendable () -> Void) -> HTTPEndpoints? {
        guard let port = configuration.httpPort else { return nil }
        return HTTPEndpoints(
            host: configuration.httpHost, port: Int(port), idleTimeout: .milliseconds(Int64(configuration.httpIdleTimeout * 1000)),
            probes: HTTPEndpoints.Probes(
                ready: { [weak self] in self?.isReady ?? false },
                metrics: { [weak self] in
                    guard let self else { return "" }
                    return self.metrics.render(connected: self.client.connectionID != nil, consuming: self.client.isReady)
                }),
            logger: logger.with(component: "http", atLeast: .warning),  // Hummingbird's per-connection notes are noise
            onListening: { [weak self] bound in
                guard let self else { return }
                state.withLock { boundHTTPPort = UInt16(bound) }
                logger.info("HTTP endpoints listening", metadata: ["host": "\(configuration.httpHost)", "port": "\(bound)"])
                onListening()
            })
    }

    /// The job runner's body: consumes into the pool until graceful shutdown, then drains.
    func runJobs(executor: DispatchTaskExecutor) async {
        let pool = JobPool<AMQPDelivery>(threads: configuration.poolSize, name: "mesh-worker.job") { [self] delivery in
            handle(delivery)
        }
        let consumer = Task(executorPreference: executor) { [client, self] in
            for await delivery in client.messages {
                if isDraining {
                    _ = await client.nack(delivery, requeue: true)
                    continue
                }
                register(delivery)
                pool.submit(delivery)
            }
        }
        try? await gracefulShutdown()  // or cancellation: the drain then hurries
        await drain(pool: pool)
        consumer.cancel()
        pool.stop()
    }

    private var isDraining: Bool {
        state.lock(); defer { state.unlock() }
        return draining
    }

    private func drain(pool: JobPool<AMQPDelivery>) async {
        state.withLock { draining = true }
        logger.info("draining: no new jobs", metadata: ["graceSeconds": "\(configuration.drainGrace)"])
        await client.stopConsuming()
        for delivery in pool.takeWaiting() where claimSettlement(delivery) {
            let result = await client.nack(delivery, requeue: true)
            finishSettlement(delivery)
            metrics.recordOutcome("requeued")
            logger.info("requeued a job that had not started", metadata: ["deliveryTag": "\(delivery.deliveryTag)", "result": "\(result)"])
        }
        let deadline = Date().addingTimeInterval(configuration.drainGrace)
        while pool.load > 0 && Date() < deadline && !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(50))
        }
        // Still running after the grace period: requeue them. Their threads may finish later; they
        // find the settlement taken and publish nothing.
        for delivery in unsettledDeliveries() where claimSettlement(delivery) {
            let result = await client.nack(delivery, requeue: true)
            finishSettlement(delivery)
            metrics.recordOutcome("requeued")
            logger.warning("grace period over: requeued a running job", metadata: ["deliveryTag": "\(delivery.deliveryTag)", "result": "\(result)"])
        }
        // Jobs that were settling when the grace ended get a moment to finish their publishes.
        let settleDeadline = Date().addingTimeInterval(5)
        while inFlightCount > 0 && Date() < settleDeadline && !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    // MARK: In-flight bookkeeping: exactly one party settles each delivery.

    private static func key(_ d: AMQPDelivery) -> String { "\(d.connectionID)/\(d.channel)/\(d.deliveryTag)" }

    private func register(_ delivery: AMQPDelivery) {
        state.lock(); settlements[Self.key(delivery)] = false; state.unlock()
    }

    /// True for the first caller only.
    private func claimSettlement(_ delivery: AMQPDelivery) -> Bool {
        state.lock(); defer { state.unlock() }
        guard settlements[Self.key(delivery)] == false else { return false }
        settlements[Self.key(delivery)] = true
        return true
    }

    private func finishSettlement(_ delivery: AMQPDelivery) {
        state.lock(); settlements[Self.key(delivery)] = nil; state.unlock()
    }

    private func unsettledDeliveries() -> [AMQPDelivery] {
        state.lock(); defer { state.unlock() }
        return runningDeliveries.filter { settlements[Self.key($0)] == false }
    }

    private var runningDeliveries: [AMQPDelivery] = []

    private var inFlightCount: Int {
        state.lock(); defer { state.unlock() }
        return settlements.count
    }

    // MARK: One job, on a pool thread.

    private func handle(_ delivery: AMQPDelivery) {
        state.lock(); runningDeliveries.append(delivery); state.unlock()
        defer {
            state.lock()
            runningDeliveries.removeAll { Self.key($0) == Self.key(delivery) }
            state.unlock()
        }
        if configuration.noopJobs {
            guard claimSettlement(delivery) else { return }
            _ = settleAndWait { client.ack(delivery, onComplete: $0) }
            finishSettlement(delivery)
            metrics.recordOutcome("succeeded")
            return
        }
        // Every line about this job names its delivery, its key and (when the body parses) its member.
        let jobKey = OutputStore.jobKey(messageId: delivery.properties.messageId, body: delivery.body)
        var jobLogger = logger
        jobLogger[metadataKey: "deliveryTag"] = "\(delivery.deliveryTag)"
        jobLogger[metadataKey: "jobKey"] = "\(jobKey)"
        let parsed = try? Job.parse(delivery.body)
        if let parsed { jobLogger[metadataKey: "memberId"] = "\(parsed.memberId)" }
        if let id = delivery.properties.messageId { jobLogger[metadataKey: "messageId"] = "\(id)" }
        jobLogger.info("job started", metadata: ["attempt": "\(JobProcessor.attempt(of: delivery))", "redelivered": "\(delivery.redelivered)"])
        metrics.jobStarted()
        defer { metrics.jobEnded() }

        let outcome = keyedLocks.withLock(jobKey) { processor.process(delivery, logger: jobLogger) }
        guard claimSettlement(delivery) else {
            jobLogger.warning("job finished after it was requeued by the drain; the broker redelivers it")
            return
        }
        defer { finishSettlement(delivery) }
        settle(delivery, outcome, parsed: parsed, logger: jobLogger)
    }

    /// Carries out `Settlement.decide`: publishes (each confirmed), then the ack; logs and counts.
    private func settle(_ delivery: AMQPDelivery, _ outcome: JobOutcome, parsed: Job?, logger jobLogger: Logger) {
        let plan = Settlement.decide(outcome, for: delivery, in: Settlement.Context(
            queues: configuration.queues, retry: configuration.retry, now: Date(), worker: JobProcessor.workerName))
        switch outcome {
        case .succeeded(let event):
            for (stage, ms) in event.durationsMs { metrics.observeStage(stage, seconds: ms / 1000) }
            jobLogger.info("job succeeded", metadata: [
                "model": "\(event.modelPath ?? "")", "vertices": "\(event.vertexCount ?? 0)", "faces": "\(event.faceCount ?? 0)",
                "alreadyDone": "\(event.alreadyDone ?? false)", "totalMs": "\(String(format: "%.1f", event.durationsMs["total"] ?? 0))",
            ])
        case .failed(_, let failure):
            jobLogger.warning("job failed permanently: dead-lettering", metadata: ["errorCode": "\(failure.code)", "error": "\(failure.message)"])
        case .retry(let delayIndex, let attempt, let failure):
            jobLogger.warning("job failed transiently: retrying later",
                              metadata: ["errorCode": "\(failure.code)", "error": "\(failure.message)", "attempt": "\(attempt)",
                                         "delaySeconds": "\(configuration.retry.delays[delayIndex])"])
        }
        for message in plan.publishes {
            guard case .failure(let error) = publishAndWait(message) else { continue }
            switch Settlement.ifUnconfirmed(error) {
            case .leaveForRedelivery:
                jobLogger.warning("publish not confirmed: connection lost; the broker redelivers the job",
                                  metadata: ["exchange": "\(message.exchange)", "error": "\(error)"])
            case .nackAndRequeue(let pause):
                jobLogger.error("publish not confirmed: requeueing the job", metadata: ["exchange": "\(message.exchange)", "error": "\(error)"])
                Thread.sleep(forTimeInterval: pause)
                _ = settleAndWait { client.nack(delivery, requeue: true, onComplete: $0) }
            }
            metrics.recordOutcome("requeued")
            return
        }
        let acked = settleAndWait { client.ack(delivery, onComplete: $0) }
        if acked != .sent {
            jobLogger.warning("ack not sent; the broker redelivers the job (the model is not made twice)", metadata: ["result": "\(acked)"])
        }
        metrics.recordOutcome(plan.outcome, errorCode: plan.errorCode)
        if let parsed, plan.outcome != "retried" {
            metrics.observeQueueToDone(seconds: Date().timeIntervalSince1970 - Double(parsed.timestamp) / 1000)
        }
    }

    // MARK: Blocking bridges for pool threads

    private func publishAndWait(_ message: AMQPOutgoingMessage) -> Result<Void, AMQPError> {
        let box = Box<Result<Void, AMQPError>>()
        client.publish(message) { box.set($0) }
        return box.wait()
    }

    private func settleAndWait(_ send: (@escaping @Sendable (AMQPSettleResult) -> Void) -> Void) -> AMQPSettleResult {
        let box = Box<AMQPSettleResult>()
        send { box.set($0) }
        return box.wait()
    }
}

/// A value handed from the I/O thread to a waiting pool thread.
final class Box<Value: Sendable>: @unchecked Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private var value: Value?
    func set(_ value: Value) {
        self.value = value
        semaphore.signal()
    }
    func wait() -> Value {
        semaphore.wait()
        return value!
    }
}

final class ReadyCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() -> Int {
        lock.lock(); defer { lock.unlock() }
        count += 1
        return count
    }
}

extension Logger {
    /// A copy naming the part of the worker that logs (`component` metadata), at `atLeast` or above.
    func with(component: String, atLeast floor: Logger.Level = .trace) -> Logger {
        var copy = self
        copy[metadataKey: "component"] = "\(component)"
        copy.logLevel = max(copy.logLevel, floor)
        return copy
    }
}
