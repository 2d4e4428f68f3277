import AMQP
import ArgumentParser
import Fetch
import Foundation
import Logging
import Imaging

/// Every setting of `mesh-worker`. Each flag falls back to an environment variable, then to the
/// default; flags win over the environment.
public struct MeshWorkerOptions: ParsableArguments, Sendable {
    public init() {}

    @Option(name: .customLong("amqp-url"), help: ArgumentHelp(
        "Broker URL: amqp://[user[:password]@]host[:port][/vhost][?heartbeat=30&connection_name=…] or amqps://… (env AMQP_URL; default \(AMQPConfiguration.defaultURL)).",
        valueName: "url"))
    public var amqpURL: String?

    @Option(help: ArgumentHelp("Broker user name, overriding the URL's (env AMQP_USERNAME).", valueName: "name"))
    public var amqpUsername: String?

    @Option(help: ArgumentHelp("Broker password, overriding the URL's (env AMQP_PASSWORD; prefer the environment).", valueName: "secret"))
    public var amqpPassword: String?

    @Option(help: ArgumentHelp("PEM file of the CA that signs the broker's certificate, for amqps:// (env AMQP_TLS_CA).", valueName: "file"))
    public var tlsCA: String?

    @Option(help: ArgumentHelp("Heartbeat interval in seconds; 0 disables (env AMQP_HEARTBEAT; default 30).", valueName: "seconds"))
    public var heartbeat: Int?

    @Option(help: ArgumentHelp("Work queue (env WORKER_QUEUE; default model3d.upload.queue).", valueName: "name"))
    public var queue: String?

    @Option(help: ArgumentHelp("Dead-letter exchange (env WORKER_DLX; default model3d.upload.dlx).", valueName: "name"))
    public var deadLetterExchange: String?

    @Option(help: ArgumentHelp("Dead-letter queue (env WORKER_DEAD_QUEUE; default model3d.upload.dead).", valueName: "name"))
    public var deadLetterQueue: String?

    @Option(help: ArgumentHelp("Result event exchange (env WORKER_RESULT_EXCHANGE; default model3d.result).", valueName: "name"))
    public var resultExchange: String?

    @Flag(help: "Only check that the work queue exists instead of declaring it, when the backend owns its arguments (env WORKER_PASSIVE_QUEUE=1).")
    public var passiveQueue = false

    @Option(name: .customLong("pool-size"), help: ArgumentHelp(
        "Jobs run at once, and the prefetch (env WORKER_POOL_SIZE; default: the number of cores).", valueName: "n"))
    public var poolSize: Int?

    @Option(help: ArgumentHelp("BLAS threads per job (env WORKER_BLAS_THREADS; default 1).", valueName: "n"))
    public var blasThreads: Int?

    @Option(help: ArgumentHelp("Uploads root: images and models/ are written there (env UPLOADS_ROOT; default uploads).", valueName: "dir"))
    public var uploads: String?

    @Option(help: ArgumentHelp("Largest accepted download in bytes (env WORKER_MAX_DOWNLOAD_BYTES; default 26214400).", valueName: "bytes"))
    public var maxDownloadBytes: Int?

    @Option(help: ArgumentHelp("Largest accepted image in pixels, width × height (env WORKER_MAX_PIXELS; default 40000000).", valueName: "pixels"))
    public var maxPixels: Int?

    @Option(help: ArgumentHelp("Download connect timeout (env WORKER_CONNECT_TIMEOUT; default 10).", valueName: "seconds"))
    public var connectTimeout: Double?

    @Option(help: ArgumentHelp("Download total timeout, redirects included (env WORKER_DOWNLOAD_TIMEOUT; default 60).", valueName: "seconds"))
    public var downloadTimeout: Double?

    @Option(name: .customLong("allow-cidrs"), help: ArgumentHelp(
        "Comma-separated CIDR blocks that downloads may reach although not public, e.g. 10.0.0.0/8,fd00::/8 (env WORKER_ALLOW_CIDRS; default none: loopback, private, link-local, CGNAT, multicast and reserved addresses are refused).",
        valueName: "cidrs"))
    public var allowCIDRs: String?

    @Option(help: ArgumentHelp(
        "Comma-separated seconds before each retry of a transient failure; their count bounds the retries (env WORKER_RETRY_DELAYS; default 5,30,120).",
        valueName: "list"))
    public var retryDelays: String?

    @Option(help: ArgumentHelp("Port of /healthz, /readyz and /metrics; 0 picks a free port, --http-port=-1 disables (env WORKER_HTTP_PORT; default 8080).",
                               valueName: "port"))
    public var httpPort: Int?

    @Option(help: ArgumentHelp("Address the HTTP endpoints bind, IPv4 or IPv6: 0.0.0.0, 127.0.0.1, :: (IPv6, and IPv4 where the system maps it), ::1 (env WORKER_HTTP_HOST; default 0.0.0.0).", valueName: "ip"))
    public var httpHost: String?

    @Option(help: ArgumentHelp("Seconds an HTTP connection may stay silent before it is closed (env WORKER_HTTP_IDLE_TIMEOUT; default 30).",
                               valueName: "seconds"))
    public var httpIdleTimeout: Double?

    @Option(help: ArgumentHelp("Seconds running jobs get to finish after SIGTERM/SIGINT before they are requeued (env WORKER_DRAIN_GRACE; default 30).",
                               valueName: "seconds"))
    public var drainGrace: Double?

    @Option(help: ArgumentHelp("trace, debug, info, notice, warning, error or critical; log lines are JSON objects on standard error (env WORKER_LOG_LEVEL; default info).", valueName: "level"))
    public var logLevel: String?

    @Flag(help: "Benchmark mode: ack every job at once without running it, to measure the consume → ack path (env WORKER_NOOP_JOBS=1). Never in production.")
    public var noopJobs = false

    public mutating func validate() throws {
        _ = try configuration(environment: [:])
    }

    /// The configuration these options and `environment` describe.
    /// - Throws: `ValidationError` naming the bad setting.
    public func configuration(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> WorkerConfiguration {
        func env(_ name: String) -> String? {
            guard let value = environment[name], !value.isEmpty else { return nil }
            return value
        }
        func number<T: LosslessStringConvertible>(_ flag: T?, _ name: String, _ what: String) throws -> T? {
            if let flag { return flag }
            guard let text = env(name) else { return nil }
            guard let value = T(text) else { throw ValidationError("\(name)=\(text) is not a valid \(what)") }
            return value
        }

        var credentials = environment
        if let amqpUsername { credentials["AMQP_USERNAME"] = amqpUsername }
        if let amqpPassword { credentials["AMQP_PASSWORD"] = amqpPassword }
        var amqp: AMQPConfiguration
        do {
            amqp = try AMQPConfiguration(url: amqpURL ?? env("AMQP_URL") ?? AMQPConfiguration.defaultURL, environment: credentials)
        } catch {
            throw ValidationError("\(error)")
        }
        if let ca = tlsCA ?? env("AMQP_TLS_CA") { amqp.tls.caCertificateFile = ca }
        if let beat: Int = try number(heartbeat, "AMQP_HEARTBEAT", "number of seconds") {
            guard beat >= 0 else { throw ValidationError("heartbeat must be 0 or more seconds") }
            amqp.heartbeat = beat
        }
        if amqp.connectionName == nil { amqp.connectionName = "mesh-worker \(JobProcessor.workerName)" }

        var names = QueueNames()
        if let value = queue ?? env("WORKER_QUEUE") { names.workQueue = value }
        if let value = deadLetterExchange ?? env("WORKER_DLX") { names.deadLetterExchange = value }
        if let value = deadLetterQueue ?? env("WORKER_DEAD_QUEUE") { names.deadLetterQueue = value }
        if let value = resultExchange ?? env("WORKER_RESULT_EXCHANGE") { names.resultExchange = value }

        var config = WorkerConfiguration(amqp: amqp, queues: names)
        config.passiveWorkQueue = passiveQueue || ["1", "true", "yes"].contains(env("WORKER_PASSIVE_QUEUE")?.lowercased() ?? "")
        if let n: Int = try number(poolSize, "WORKER_POOL_SIZE", "pool size") {
            guard (1...1000).contains(n) else { throw ValidationError("pool size must be between 1 and 1000") }
            config.poolSize = n
        }
        if let n: Int = try number(blasThreads, "WORKER_BLAS_THREADS", "thread count") {
            guard n >= 1 else { throw ValidationError("BLAS threads must be at least 1") }
            config.blasThreads = n
        }
        if let root = uploads ?? env("UPLOADS_ROOT") { config.uploadsRoot = URL(fileURLWithPath: root) }
        if let bytes: Int = try number(maxDownloadBytes, "WORKER_MAX_DOWNLOAD_BYTES", "byte count") {
            guard bytes > 0 else { throw ValidationError("the download limit must be positive") }
            config.fetch.maxBytes = bytes
            config.decodeLimits.maxBytes = max(config.decodeLimits.maxBytes, bytes)
        }
        if let pixels: Int = try number(maxPixels, "WORKER_MAX_PIXELS", "pixel count") {
            guard pixels > 0 else { throw ValidationError("the pixel limit must be positive") }
            config.decodeLimits.maxPixels = pixels
        }
        if let seconds: Double = try number(connectTimeout, "WORKER_CONNECT_TIMEOUT", "number of seconds") {
            guard seconds > 0 else { throw ValidationError("the connect timeout must be positive") }
            config.fetch.connectTimeout = seconds
        }
        if let seconds: Double = try number(downloadTimeout, "WORKER_DOWNLOAD_TIMEOUT", "number of seconds") {
            guard seconds > 0 else { throw ValidationError("the download timeout must be positive") }
            config.fetch.totalTimeout = seconds
        }
        if let text = allowCIDRs ?? env("WORKER_ALLOW_CIDRS") {
            guard let policy = AddressPolicy(allowList: text) else {
                throw ValidationError("allow-list \"\(text)\" is not a comma-separated list of CIDR blocks")
            }
            config.fetch.addressPolicy = policy
        }
        if let text = retryDelays ?? env("WORKER_RETRY_DELAYS") {
            let delays = text.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard !delays.isEmpty, delays.allSatisfy({ ($0 ?? 0) > 0 }) else {
                throw ValidationError("retry delays \"\(text)\" must be positive seconds separated by commas")
            }
            config.retry = RetryPolicy(delays: delays.map { $0! })
        }
        if let port: Int = try number(httpPort, "WORKER_HTTP_PORT", "port") {
            guard (-1...65535).contains(port) else { throw ValidationError("HTTP port must be -1 (off) or 0…65535") }
            config.httpPort = port < 0 ? nil : UInt16(port)
        }
        if let host = httpHost ?? env("WORKER_HTTP_HOST") { config.httpHost = host }
        if let seconds: Double = try number(httpIdleTimeout, "WORKER_HTTP_IDLE_TIMEOUT", "number of seconds") {
            guard seconds > 0 else { throw ValidationError("the HTTP idle timeout must be positive") }
            config.httpIdleTimeout = seconds
        }
        if let seconds: Double = try number(drainGrace, "WORKER_DRAIN_GRACE", "number of seconds") {
            guard seconds >= 0 else { throw ValidationError("drain grace must be 0 or more seconds") }
            config.drainGrace = seconds
        }
        if let text = logLevel ?? env("WORKER_LOG_LEVEL") {
            guard let level = Logger.Level(name: text) else {
                throw ValidationError("unknown log level \"\(text)\" (trace, debug, info, notice, warning, error or critical)")
            }
            config.logLevel = level
        }
        config.noopJobs = noopJobs || env("WORKER_NOOP_JOBS") == "1"
        return config
    }
}

extension Logger.Level {
    /// swift-log's level names, any case, and `warn` for `warning`.
    public init?(name: String) {
        let lowered = name.lowercased()
        guard let level = Logger.Level(rawValue: lowered == "warn" ? "warning" : lowered) else { return nil }
        self = level
    }
}
