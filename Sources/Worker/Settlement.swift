import AMQP
import Foundation

/// What to do with a delivery once its job has an outcome: the messages to publish, each with a
/// publisher confirm and in order, then the ack. A pure function of the outcome, the delivery and
/// the settings (the clock and the worker's name are passed in), so it is tested without a broker;
/// `WorkerService` carries it out.
///
/// - success → the result event → ack;
/// - permanent failure → the failure event, then the original body and properties republished to the
///   dead-letter exchange with `x-exception-message`, `x-error-code`, `x-failure-kind`,
///   `x-original-exchange`, `x-original-routingKey`, `x-attempts`, `x-failed-at`, `x-worker`
///   (mandatory) → ack;
/// - transient failure with retries left → the original republished to the retry queue for its
///   delay with `x-attempts` raised and `x-last-error-code` / `x-last-error-message` (mandatory) → ack.
///
/// A publish that is not confirmed stops the plan before the ack: see `ifUnconfirmed(_:)`.
public struct Settlement: Sendable {
    /// Published in order, each confirmed before the next.
    public var publishes: [AMQPOutgoingMessage]
    /// The `outcome` label of `mesh_worker_jobs_total`: `succeeded`, `failed` or `retried`.
    public var outcome: String
    /// The error code counted in `mesh_worker_failures_total`, for failures and retries.
    public var errorCode: String?

    /// What to do when a publish is not confirmed (the ack is never sent then).
    public enum Unconfirmed: Sendable, Equatable {
        /// The connection is gone: the broker redelivers the unacked job by itself.
        case leaveForRedelivery
        /// The broker refused or returned the message: nack the job back to the queue after a pause,
        /// so a broker that keeps refusing is not hammered.
        case nackAndRequeue(pauseSeconds: Double)
    }

    /// Where the settings come from.
    public struct Context: Sendable {
        public var queues: QueueNames
        public var retry: RetryPolicy
        /// Now, for `x-failed-at` and the event's AMQP timestamp.
        public var now: Date
        /// `host:pid`, for `x-worker`.
        public var worker: String

        public init(queues: QueueNames, retry: RetryPolicy, now: Date, worker: String) {
            self.queues = queues
            self.retry = retry
            self.now = now
            self.worker = worker
        }
    }

    /// The plan for `outcome` of `delivery`.
    public static func decide(_ outcome: JobOutcome, for delivery: AMQPDelivery, in context: Context) -> Settlement {
        switch outcome {
        case .succeeded(let event):
            return Settlement(publishes: [eventMessage(event, context)], outcome: "succeeded", errorCode: nil)
        case .failed(let event, let failure):
            return Settlement(publishes: [eventMessage(event, context), deadLetterMessage(delivery, failure, context)],
                              outcome: "failed", errorCode: failure.code)
        case .retry(let delayIndex, let attempt, let failure):
            let queue = context.retry.retryQueueName(workQueue: context.queues.workQueue, delayIndex: delayIndex)
            return Settlement(publishes: [retryMessage(delivery, failure, attempt: attempt, queue: queue)],
                              outcome: "retried", errorCode: failure.code)
        }
    }

    /// What to do after `error` left a publish unconfirmed.
    public static func ifUnconfirmed(_ error: AMQPError) -> Unconfirmed {
        switch error {
        case .connectionLost, .notConnected, .shutDown: .leaveForRedelivery
        default: .nackAndRequeue(pauseSeconds: 1)
        }
    }

    // MARK: Messages

    static func eventMessage(_ event: ResultEvent, _ context: Context) -> AMQPOutgoingMessage {
        AMQPOutgoingMessage(
            exchange: context.queues.resultExchange, routingKey: event.routingKey, body: event.encoded(),
            properties: AMQPProperties(contentType: "application/json", contentEncoding: "utf-8",
                                       correlationId: event.correlationId, messageId: event.messageId,
                                       timestamp: UInt64(max(0, context.now.timeIntervalSince1970)), type: event.routingKey,
                                       appId: "mesh-worker"))
    }

    /// The original body and properties plus error headers (Spring's `RepublishMessageRecoverer` names).
    static func deadLetterMessage(_ delivery: AMQPDelivery, _ failure: JobFailure, _ context: Context) -> AMQPOutgoingMessage {
        var properties = delivery.properties
        properties.deliveryMode = .persistent
        properties.headers["x-exception-message"] = .string(failure.message)
        properties.headers["x-error-code"] = .string(failure.code)
        properties.headers["x-failure-kind"] = .string(failure.kind.rawValue)
        keepOrigin(&properties, of: delivery)
        properties.headers[RetryPolicy.attemptsHeader] = .int(Int64(JobProcessor.attempt(of: delivery)))
        properties.headers["x-failed-at"] = .int(Int64((context.now.timeIntervalSince1970 * 1000).rounded(.down)))
        properties.headers["x-worker"] = .string(context.worker)
        return AMQPOutgoingMessage(exchange: context.queues.deadLetterExchange, routingKey: context.queues.workQueue,
                                   body: delivery.body, properties: properties, mandatory: true)
    }

    static func retryMessage(_ delivery: AMQPDelivery, _ failure: JobFailure, attempt: Int, queue: String) -> AMQPOutgoingMessage {
        var properties = delivery.properties
        properties.deliveryMode = .persistent
        properties.headers[RetryPolicy.attemptsHeader] = .int(Int64(attempt))
        properties.headers["x-last-error-code"] = .string(failure.code)
        properties.headers["x-last-error-message"] = .string(failure.message)
        keepOrigin(&properties, of: delivery)
        return AMQPOutgoingMessage(exchange: "", routingKey: queue, body: delivery.body, properties: properties, mandatory: true)
    }

    /// Where the job first came from: set on its first republish, kept through retries.
    private static func keepOrigin(_ properties: inout AMQPProperties, of delivery: AMQPDelivery) {
        if properties.headers["x-original-exchange"] == nil {
            properties.headers["x-original-exchange"] = .string(delivery.exchange)
        }
        if properties.headers["x-original-routingKey"] == nil {
            properties.headers["x-original-routingKey"] = .string(delivery.routingKey)
        }
    }
}
