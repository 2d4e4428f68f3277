import AMQP
import Fetch
import Foundation
import Imaging
import Logging

/// The broker names the worker uses. The defaults are the queue contract's; tests (and unusual
/// deployments) use others.
public struct QueueNames: Sendable, Equatable {
    /// Durable work queue the backend publishes jobs to.
    public var workQueue: String
    /// Exchange dead letters are republished to (direct).
    public var deadLetterExchange: String
    /// Queue bound to the dead-letter exchange with the work queue's name as routing key.
    public var deadLetterQueue: String
    /// Durable topic exchange for result events.
    public var resultExchange: String

    public init(workQueue: String = "model3d.upload.queue", deadLetterExchange: String = "model3d.upload.dlx",
                deadLetterQueue: String = "model3d.upload.dead", resultExchange: String = "model3d.result") {
        self.workQueue = workQueue
        self.deadLetterExchange = deadLetterExchange
        self.deadLetterQueue = deadLetterQueue
        self.resultExchange = resultExchange
    }

    /// Names with a common prefix instead of `model3d.` — handy for isolated tests:
    /// `{prefix}.upload.queue`, `{prefix}.upload.dlx`, `{prefix}.upload.dead`, `{prefix}.result`.
    public static func prefixed(_ prefix: String) -> QueueNames {
        QueueNames(workQueue: "\(prefix).upload.queue", deadLetterExchange: "\(prefix).upload.dlx",
                   deadLetterQueue: "\(prefix).upload.dead", resultExchange: "\(prefix).result")
    }
}

/// Everything `WorkerService` needs, with production defaults.
public struct WorkerConfiguration: Sendable {
    public var amqp: AMQPConfiguration
    public var reconnect: AMQPReconnectPolicy
    public var queues: QueueNames
    /// Only check that the work queue exists (passive declare) instead of declaring it, for brokers
    /// where the backend owns its arguments.
    public var passiveWorkQueue: Bool
    /// Jobs run at once; also the prefetch. Default: the number of cores.
    public var poolSize: Int
    /// Threads each job's engine may use for BLAS. Default 1.
    public var blasThreads: Int
    public var uploadsRoot: URL
    public var fetch: FetchOptions
    public var decodeLimits: DecodeLimits
    public var retry: RetryPolicy
    /// Port of `/healthz`, `/readyz`, `/metrics`; nil: no HTTP server; 0: any free port.
    public var httpPort: UInt16?
    /// Address the HTTP endpoints bind: IPv4 (`0.0.0.0`, `127.0.0.1`), IPv6 (`::` — also IPv4 where
    /// the system maps it —, `::1`) or a host name.
    public var httpHost: String
    /// Seconds an HTTP connection may stay silent (before or between requests) before it is closed.
    public var httpIdleTimeout: Double = 30
    /// Seconds in-flight jobs get to finish after SIGTERM/SIGINT before they are requeued.
    public var drainGrace: Double
    /// Lines below this level are not logged (swift-log's levels, `trace` … `critical`).
    public var logLevel: Logger.Level
    /// Benchmark mode: every delivery is acked as soon as a pool thread takes it, without being run
    /// (measures the consume → pool → ack path alone). Never for production.
    public var noopJobs = false

    public init(amqp: AMQPConfiguration = AMQPConfiguration(), reconnect: AMQPReconnectPolicy = AMQPReconnectPolicy(),
                queues: QueueNames = QueueNames(), passiveWorkQueue: Bool = false,
                poolSize: Int = ProcessInfo.processInfo.activeProcessorCount, blasThreads: Int = 1,
                uploadsRoot: URL = URL(fileURLWithPath: "uploads"), fetch: FetchOptions = FetchOptions(),
                decodeLimits: DecodeLimits = .default, retry: RetryPolicy = RetryPolicy(), httpPort: UInt16? = 8080,
                httpHost: String = "0.0.0.0", drainGrace: Double = 30, logLevel: Logger.Level = .info) {
        self.amqp = amqp
        self.reconnect = reconnect
        self.queues = queues
        self.passiveWorkQueue = passiveWorkQueue
        self.poolSize = max(1, poolSize)
        self.blasThreads = max(1, blasThreads)
        self.uploadsRoot = uploadsRoot
        self.fetch = fetch
        self.decodeLimits = decodeLimits
        self.retry = retry
        self.httpPort = httpPort
        self.httpHost = httpHost
        self.drainGrace = drainGrace
        self.logLevel = logLevel
    }

    /// The exchanges, queues and bindings declared on every connection: the work queue (or a passive
    /// check), the dead-letter exchange and queue, the result exchange, and one retry queue per delay
    /// (message TTL = the delay, dead-lettering back to the work queue through the default exchange).
    public var topology: AMQPTopology {
        var queuesToDeclare = [
            AMQPQueueSpec(name: queues.workQueue, passive: passiveWorkQueue),
            AMQPQueueSpec(name: queues.deadLetterQueue),
        ]
        for index in retry.delays.indices {
            queuesToDeclare.append(AMQPQueueSpec(
                name: retry.retryQueueName(workQueue: queues.workQueue, delayIndex: index),
                arguments: ["x-message-ttl": .int(retry.delayMilliseconds(index)),
                            "x-dead-letter-exchange": "",
                            "x-dead-letter-routing-key": .string(queues.workQueue)]))
        }
        return AMQPTopology(
            exchanges: [AMQPExchangeSpec(name: queues.deadLetterExchange, type: .direct),
                        AMQPExchangeSpec(name: queues.resultExchange, type: .topic)],
            queues: queuesToDeclare,
            bindings: [AMQPBindingSpec(queue: queues.deadLetterQueue, exchange: queues.deadLetterExchange,
                                       routingKey: queues.workQueue)])
    }
}
