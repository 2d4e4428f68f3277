import Foundation

/// The worker's Prometheus metrics, rendered in the text exposition format at `/metrics`.
/// Thread-safe: pool threads, the I/O thread and the HTTP thread all update it.
public final class WorkerMetrics: @unchecked Sendable {
    private let lock = NSLock()
    private var jobs: [String: Int] = [:]
    private var failuresByCode: [String: Int] = [:]
    private var retries = 0
    private var inFlight = 0
    private var downloadBytes = 0
    private var reconnects = 0
    private var queueToDone = Histogram(bounds: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800])
    private var stages: [String: Histogram] = [:]
    private static let stageBounds: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

    public init() {}

    struct Histogram {
        let bounds: [Double]
        var counts: [Int]
        var sum = 0.0
        var total = 0
        init(bounds: [Double]) {
            self.bounds = bounds
            counts = Array(repeating: 0, count: bounds.count)
        }
        mutating func observe(_ value: Double) {
            for (i, bound) in bounds.enumerated() where value <= bound { counts[i] += 1 }
            sum += value
            total += 1
        }
    }

    /// Outcomes: `succeeded`, `failed` (dead-lettered), `retried`, `requeued` (shutdown or lost connection).
    public func recordOutcome(_ outcome: String, errorCode: String? = nil) {
        lock.lock(); defer { lock.unlock() }
        jobs[outcome, default: 0] += 1
        if outcome == "retried" { retries += 1 }
        if let errorCode { failuresByCode[errorCode, default: 0] += 1 }
    }

    public func jobStarted() { lock.lock(); inFlight += 1; lock.unlock() }
    public func jobEnded() { lock.lock(); inFlight -= 1; lock.unlock() }
    public func addDownloadBytes(_ count: Int) { lock.lock(); downloadBytes += count; lock.unlock() }
    public func recordReconnect() { lock.lock(); reconnects += 1; lock.unlock() }

    /// Seconds from the job's timestamp to its acknowledgement.
    public func observeQueueToDone(seconds: Double) {
        lock.lock(); defer { lock.unlock() }
        queueToDone.observe(max(0, seconds))
    }

    /// Seconds one stage took (`download`, `save`, the engine's stages, `total`).
    public func observeStage(_ stage: String, seconds: Double) {
        lock.lock(); defer { lock.unlock() }
        stages[stage, default: Histogram(bounds: Self.stageBounds)].observe(seconds)
    }

    /// Jobs counted for an outcome so far.
    public func count(outcome: String) -> Int {
        lock.lock(); defer { lock.unlock() }
        return jobs[outcome, default: 0]
    }

    /// The text exposition format; `connected`/`consuming` come from the AMQP client.
    public func render(connected: Bool, consuming: Bool) -> String {
        lock.lock(); defer { lock.unlock() }
        var out = ""
        func header(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        header("mesh_worker_jobs_total", "counter", "Jobs finished, by outcome (succeeded, failed, retried, requeued).")
        for outcome in ["succeeded", "failed", "retried", "requeued"] {
            out += "mesh_worker_jobs_total{outcome=\"\(outcome)\"} \(jobs[outcome, default: 0])\n"
        }
        header("mesh_worker_failures_total", "counter", "Dead-lettered or retried jobs, by error code.")
        for (code, count) in failuresByCode.sorted(by: { $0.key < $1.key }) {
            out += "mesh_worker_failures_total{code=\"\(Self.escape(code))\"} \(count)\n"
        }
        let singles: [(String, String, String, Int)] = [
            ("mesh_worker_retries_total", "counter", "Jobs sent to a retry queue.", retries),
            ("mesh_worker_jobs_in_flight", "gauge", "Jobs being processed now.", inFlight),
            ("mesh_worker_download_bytes_total", "counter", "Bytes of images downloaded.", downloadBytes),
            ("mesh_worker_amqp_connected", "gauge", "1 while connected to the broker.", connected ? 1 : 0),
            ("mesh_worker_amqp_consuming", "gauge", "1 while the consumer is active.", consuming ? 1 : 0),
            ("mesh_worker_amqp_reconnects_total", "counter", "Connections re-established after a loss.", reconnects),
        ]
        for (name, type, help, value) in singles {
            header(name, type, help)
            out += "\(name) \(value)\n"
        }
        header("mesh_worker_queue_to_done_seconds", "histogram", "From the job's timestamp to its acknowledgement.")
        Self.render(queueToDone, name: "mesh_worker_queue_to_done_seconds", labels: "", into: &out)
        header("mesh_worker_stage_duration_seconds", "histogram", "Duration of each stage of a job.")
        for (stage, histogram) in stages.sorted(by: { $0.key < $1.key }) {
            Self.render(histogram, name: "mesh_worker_stage_duration_seconds", labels: "stage=\"\(Self.escape(stage))\"",
                        into: &out)
        }
        return out
    }

    private static func render(_ histogram: Histogram, name: String, labels: String, into out: inout String) {
        let prefix = labels.isEmpty ? "" : labels + ","
        for (bound, count) in zip(histogram.bounds, histogram.counts) {
            out += "\(name)_bucket{\(prefix)le=\"\(bound)\"} \(count)\n"
        }
        out += "\(name)_bucket{\(prefix)le=\"+Inf\"} \(histogram.total)\n"
        let braces = labels.isEmpty ? "" : "{\(labels)}"
        out += "\(name)_sum\(braces) \(histogram.sum)\n"
        out += "\(name)_count\(braces) \(histogram.total)\n"
    }

    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
