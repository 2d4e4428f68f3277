import AMQP
import Fetch
import Foundation
import Logging
import Testing
import Worker
import WorkerTestSupport

/// JSON lines on standard error, as the executable logs; a worker sets its level from its configuration.
let testLogger = Logger(label: "mesh-worker-test") { JSONLogHandler(label: $0, logLevel: .error) }

/// The broker the tests talk to: `AMQP_URL`, default `amqp://guest:guest@127.0.0.1:5672/`.
let brokerURL = ProcessInfo.processInfo.environment["AMQP_URL"] ?? AMQPConfiguration.defaultURL

/// Test-side view of one isolated set of queues: publishes jobs and reads result events and dead
/// letters with `basic.get`. Every name starts with a unique prefix; `cleanup()` deletes them all.
final class BrokerHarness: @unchecked Sendable {
    let prefix: String
    let names: QueueNames
    let eventsQueue: String
    let retryDelays: [Double]
    private let connection: AMQPConnection
    private let channel: AMQPChannel

    init(retryDelays: [Double] = [0.3, 0.6]) throws {
        prefix = "test-\(UUID().uuidString.prefix(8).lowercased())"
        names = .prefixed(prefix)
        eventsQueue = "\(prefix).events"
        self.retryDelays = retryDelays
        var configuration = try AMQPConfiguration(url: brokerURL)
        configuration.heartbeat = 0  // used in bursts; nothing services heartbeats in between
        configuration.connectionName = "harness \(prefix)"
        connection = try AMQPConnection(configuration: configuration)
        channel = try connection.openChannel()
        // The same declarations as the worker (so jobs published first are kept), plus an events queue.
        let topology = WorkerConfiguration(queues: names, retry: RetryPolicy(delays: retryDelays)).topology
        try channel.declare(AMQPTopology(
            exchanges: topology.exchanges,
            queues: topology.queues + [AMQPQueueSpec(name: eventsQueue)],
            bindings: topology.bindings + [AMQPBindingSpec(queue: eventsQueue, exchange: names.resultExchange, routingKey: "#")]))
        try channel.enableConfirms()
    }

    /// A worker configuration on this harness's names, writing under `root`.
    func configuration(root: URL, poolSize: Int = 2, drainGrace: Double = 10) throws -> WorkerConfiguration {
        var amqp = try AMQPConfiguration(url: brokerURL)
        amqp.connectionName = "mesh-worker \(prefix)"
        var config = WorkerConfiguration(
            amqp: amqp, reconnect: AMQPReconnectPolicy(initialDelay: .milliseconds(200), maxDelay: .seconds(2)),
            queues: names, poolSize: poolSize, uploadsRoot: root, fetch: testFetchOptions,
            retry: RetryPolicy(delays: retryDelays), httpPort: 0, httpHost: "127.0.0.1", drainGrace: drainGrace)
        config.logLevel = .error
        return config
    }

    /// Starts an in-process worker on this harness's names, writing under a fresh folder named after
    /// `label`, and waits until it consumes.
    func startWorker(_ label: String, generator: any ModelGenerating = BoxModelGenerator(),
                     adjust: (inout WorkerConfiguration) -> Void = { _ in }) async throws -> (InProcessWorker, URL) {
        let root = temporaryDirectory(label)
        var config = try configuration(root: root)
        adjust(&config)
        let worker = InProcessWorker(configuration: config, generator: generator)
        try await worker.waitUntilReady()
        return (worker, root)
    }

    /// The environment for a `mesh-worker` subprocess on this harness's names.
    func environment(root: URL, poolSize: Int, boxDelay: Double, drainGrace: Double) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["AMQP_URL"] = brokerURL + (brokerURL.contains("?") ? "&" : "?") + "connection_name=mesh-worker%20\(prefix)"
        env["WORKER_QUEUE"] = names.workQueue
        env["WORKER_DLX"] = names.deadLetterExchange
        env["WORKER_DEAD_QUEUE"] = names.deadLetterQueue
        env["WORKER_RESULT_EXCHANGE"] = names.resultExchange
        env["WORKER_RETRY_DELAYS"] = retryDelays.map { "\($0)" }.joined(separator: ",")
        env["WORKER_POOL_SIZE"] = "\(poolSize)"
        env["UPLOADS_ROOT"] = root.path
        env["WORKER_ALLOW_CIDRS"] = "127.0.0.0/8"
        env["WORKER_HTTP_PORT"] = "-1"
        env["WORKER_BOX_DELAY"] = "\(boxDelay)"
        env["WORKER_DRAIN_GRACE"] = "\(drainGrace)"
        env["WORKER_LOG_LEVEL"] = "info"
        env["WORKER_ENGINE"] = "box"
        return env
    }

    /// Publishes a job body to the work queue (persistent, confirmed), as Spring AMQP would.
    func publish(_ json: String, messageId: String? = nil) throws {
        let properties = AMQPProperties(contentType: "application/json", headers: ["__TypeId__": "com.myroom.Model3DRequest"],
                                        messageId: messageId)
        try channel.publishAndWaitForConfirm(AMQPOutgoingMessage(exchange: "", routingKey: names.workQueue,
                                                                 body: Array(json.utf8), properties: properties))
    }

    /// Result events read so far plus new ones, until `count` arrived or `timeout` passed.
    func events(atLeast count: Int, timeout: Double = 60, into events: inout [ResultEvent]) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while events.count < count && Date() < deadline {
            if let message = try channel.get(queue: eventsQueue, noAck: true) {
                events.append(try JSONDecoder().decode(ResultEvent.self, from: Data(message.body)))
            } else {
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
    }

    func events(atLeast count: Int, timeout: Double = 60) throws -> [ResultEvent] {
        var events: [ResultEvent] = []
        try self.events(atLeast: count, timeout: timeout, into: &events)
        return events
    }

    /// Dead letters, until `count` arrived or `timeout` passed.
    func deadLetters(atLeast count: Int, timeout: Double = 60) throws -> [AMQPDelivery] {
        var letters: [AMQPDelivery] = []
        let deadline = Date().addingTimeInterval(timeout)
        while letters.count < count && Date() < deadline {
            if let message = try channel.get(queue: names.deadLetterQueue, noAck: true) {
                letters.append(message)
            } else {
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
        return letters
    }

    /// Ready messages in a queue.
    func depth(_ queue: String) throws -> Int {
        Int(try channel.declareQueue(AMQPQueueSpec(name: queue, passive: true)).messageCount)
    }

    /// Closes every broker connection of this harness's workers (`rabbitmqctl close_connection` on
    /// the connections whose client-provided name is `mesh-worker {prefix}`), leaving other tests'
    /// connections alone. Returns how many were closed.
    @discardableResult
    func closeWorkerConnections() throws -> Int {
        let listing = try runCommand("/usr/sbin/rabbitmqctl", ["list_connections", "-q", "--no-table-headers", "pid", "client_properties"])
        var closed = 0
        for line in listing.split(separator: "\n") where line.contains("\"mesh-worker \(prefix)\"") {
            guard let pid = line.split(separator: "\t").first else { continue }
            _ = try runCommand("/usr/sbin/rabbitmqctl", ["close_connection", String(pid), "test: close connections mid-run"])
            closed += 1
        }
        return closed
    }

    func cleanup() {
        let retry = RetryPolicy(delays: retryDelays)
        let queues = [names.workQueue, names.deadLetterQueue, eventsQueue]
            + retryDelays.indices.map { retry.retryQueueName(workQueue: names.workQueue, delayIndex: $0) }
        for queue in queues { _ = try? channel.deleteQueue(queue) }
        for exchange in [names.deadLetterExchange, names.resultExchange] { try? channel.deleteExchange(exchange) }
        channel.close()
        connection.close()
    }
}

/// A command failed.
struct CommandFailed: Error, CustomStringConvertible {
    var command: String
    var status: Int32
    var output: String
    var description: String { "\(command) exited with \(status): \(output)" }
}

/// Runs a command and returns its standard output; throws `CommandFailed` when it exits non-zero.
func runCommand(_ path: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw CommandFailed(command: ([path] + arguments).joined(separator: " "), status: process.terminationStatus,
                            output: String(decoding: data, as: UTF8.self))
    }
    return String(decoding: data, as: UTF8.self)
}

/// A `WorkerService` running in this process.
final class InProcessWorker: @unchecked Sendable {
    let service: WorkerService
    private let task: Task<Void, any Error>

    init(configuration: WorkerConfiguration, generator: any ModelGenerating = BoxModelGenerator()) {
        let service = WorkerService(configuration: configuration, generator: generator,
                                    logger: testLogger)
        self.service = service
        task = Task.detached { try await service.run() }
    }

    /// Waits until the worker consumes (or 60 s: at the start of a test run every suite starts at
    /// once on two cores, and the worker's async start-up waits for the cooperative pool's threads).
    func waitUntilReady() async throws {
        let deadline = Date().addingTimeInterval(60)
        while !service.isReady {
            try #require(Date() < deadline, "worker did not become ready")
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    func stop() async throws {
        service.requestShutdown()
        try await task.value
    }
}

/// GET `http://host:port/path` → (status, body) through a curl subprocess, independent of the
/// worker's own HTTP code. `host` is an IPv4 or IPv6 address (`::1`). Status 0 when nothing
/// answers (connection refused). No answer within `timeout` seconds throws: that bound is
/// generous, a failure condition, never a measurement.
/// `head`: a HEAD request; the body is then empty.
func httpGet(host: String = "127.0.0.1", port: UInt16, path: String, timeout: Double = 30, head: Bool = false) throws -> (Int, String) {
    let authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    let output: String
    do {
        output = try runCommand("/usr/bin/curl", ["-s", "-g", "--max-time", "\(timeout)", "-w", "\n%{http_code}"]
                                    + (head ? ["--head", "-o", "/dev/null"] : []) + ["http://\(authority)\(path)"])
    } catch let failure as CommandFailed where failure.status == 7 {
        return (0, "")
    }
    var lines = output.split(separator: "\n", omittingEmptySubsequences: false)
    let status = Int(lines.removeLast()) ?? 0
    return (status, lines.joined(separator: "\n"))
}

/// The value of one series (`name{labels}` exactly as exposed) in Prometheus text; nil when absent.
func metricValue(_ text: String, _ series: String) -> Double? {
    for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
        return Double(line.dropFirst(series.count + 1))
    }
    return nil
}

/// Every file under `root`, relative paths.
func filesUnder(_ root: URL) -> [String] {
    guard let enumerator = FileManager.default.enumerator(atPath: root.path) else { return [] }
    return enumerator.compactMap { $0 as? String }.filter { path in
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: root.appendingPathComponent(path).path, isDirectory: &isDirectory)
        return exists && !isDirectory.boolValue
    }.sorted()
}
