import Foundation
internal import Metrics
internal import class Prometheus.PrometheusCollectorRegistry
internal import struct Prometheus.PrometheusMetricsFactory

/// The worker's metrics: swift-metrics handles backed by a swift-prometheus registry that this
/// instance owns, rendered in the Prometheus text format at `/metrics`.
///
/// The registry is not the process-wide `MetricsSystem` bootstrap (which can happen once per
/// process): every worker has its own, so several workers in one process (the tests) count
/// apart. Thread-safe: pool threads, the I/O thread and the HTTP event loops all update it.
///
/// Series (names follow Prometheus' conventions: `_total`, `_seconds`, `_bytes`):
/// - `mesh_worker_jobs_total{outcome}` — `succeeded`, `failed` (dead-lettered), `retried`, `requeued`
/// - `mesh_worker_failures_total{code}` — dead-lettered or retried jobs by error code
/// - `mesh_worker_retries_total`, `mesh_worker_jobs_in_flight`, `mesh_worker_download_bytes_total`
/// - `mesh_worker_amqp_connected`, `mesh_worker_amqp_consuming`, `mesh_worker_amqp_reconnects_total`
/// - `mesh_worker_queue_to_done_seconds` (histogram) — the job's timestamp to its acknowledgement
/// - `mesh_worker_stage_duration_seconds{stage}` (histogram) — `download`, `save`, the engine's stages, `total`
public final class WorkerMetrics: @unchecked Sendable {
    /// The registry `/metrics` renders.
    let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory

    /// Outcomes every scrape shows, from the first one on (a counter that appears only once it
    /// is non-zero breaks `rate()` over its first increment).
    public static let outcomes = ["succeeded", "failed", "retried", "requeued"]

    /// Stage durations: a download or a save takes milliseconds, an engine stage a fraction of a
    /// second to a minute.
    public static let stageBuckets: [Duration] = [
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        .seconds(20), .seconds(30), .seconds(60), .seconds(120),
    ]
    /// Timestamp to acknowledgement: a job's engine time plus its wait in the queue and in retry
    /// queues (5 s, 30 s, 120 s by default).
    public static let queueToDoneBuckets: [Duration] = [
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
        .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(120),
        .seconds(300), .seconds(600), .seconds(1800),
    ]

    static let stageName = "mesh_worker_stage_duration_seconds"
    static let queueToDoneName = "mesh_worker_queue_to_done_seconds"

    private let jobs: [String: Counter]
    private let retries: Counter
    private let inFlight: Meter
    private let downloadBytes: Counter
    private let connected: Gauge
    private let consuming: Gauge
    private let reconnects: Counter
    private let queueToDone: CoreMetrics.Timer
    private let lock = NSLock()
    private var failuresByCode: [String: Counter] = [:]
    private var stages: [String: CoreMetrics.Timer] = [:]

    /// A worker's metrics in a fresh registry.
    public init() {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = [Self.stageName: Self.stageBuckets, Self.queueToDoneName: Self.queueToDoneBuckets]
        self.registry = registry
        self.factory = factory
        var jobs: [String: Counter] = [:]
        for outcome in Self.outcomes {
            jobs[outcome] = Counter(label: "mesh_worker_jobs_total", dimensions: [("outcome", outcome)], factory: factory)
        }
        self.jobs = jobs
        retries = Counter(label: "mesh_worker_retries_total", factory: factory)
        inFlight = Meter(label: "mesh_worker_jobs_in_flight", factory: factory)
        downloadBytes = Counter(label: "mesh_worker_download_bytes_total", factory: factory)
        connected = Gauge(label: "mesh_worker_amqp_connected", factory: factory)
        consuming = Gauge(label: "mesh_worker_amqp_consuming", factory: factory)
        reconnects = Counter(label: "mesh_worker_amqp_reconnects_total", factory: factory)
        queueToDone = CoreMetrics.Timer(label: Self.queueToDoneName, factory: factory)
        inFlight.set(0)
        connected.record(0)
        consuming.record(0)
    }

    /// Counts a finished job. Outcomes: `succeeded`, `failed` (dead-lettered), `retried`,
    /// `requeued` (shutdown or lost connection); `errorCode` for failed and retried jobs.
    public func recordOutcome(_ outcome: String, errorCode: String? = nil) {
        precondition(jobs[outcome] != nil, "unknown outcome \(outcome)")
        jobs[outcome]?.increment()
        if outcome == "retried" { retries.increment() }
        if let errorCode { failureCounter(errorCode).increment() }
    }

    public func jobStarted() { inFlight.increment() }
    public func jobEnded() { inFlight.decrement() }
    public func addDownloadBytes(_ count: Int) { downloadBytes.increment(by: count) }
    public func recordReconnect() { reconnects.increment() }

    /// Seconds from the job's timestamp to its acknowledgement (a clock ahead of ours counts as 0).
    public func observeQueueToDone(seconds: Double) {
        queueToDone.recordSeconds(max(0, seconds))
    }

    /// Seconds one stage took (`download`, `save`, the engine's stages, `total`).
    public func observeStage(_ stage: String, seconds: Double) {
        stageTimer(stage).recordSeconds(max(0, seconds))
    }

    /// The text exposition format; `connected`/`consuming` are the AMQP client's state at the scrape.
    public func render(connected isConnected: Bool, consuming isConsuming: Bool) -> String {
        connected.record(isConnected ? 1 : 0)
        consuming.record(isConsuming ? 1 : 0)
        return registry.emitToString()
    }

    private func failureCounter(_ code: String) -> Counter {
        lock.lock(); defer { lock.unlock() }
        if let counter = failuresByCode[code] { return counter }
        let counter = Counter(label: "mesh_worker_failures_total", dimensions: [("code", code)], factory: factory)
        failuresByCode[code] = counter
        return counter
    }

    private func stageTimer(_ stage: String) -> CoreMetrics.Timer {
        lock.lock(); defer { lock.unlock() }
        if let timer = stages[stage] { return timer }
        let timer = CoreMetrics.Timer(label: Self.stageName, dimensions: [("stage", stage)], factory: factory)
        stages[stage] = timer
        return timer
    }
}
