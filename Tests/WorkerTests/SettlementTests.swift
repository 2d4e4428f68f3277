import AMQP
import Foundation
import Testing
import Worker

/// `Settlement.decide`: outcome + delivery → what to publish, then the ack. No broker needed.
@Suite struct SettlementTests {
    let context = Settlement.Context(queues: .prefixed("s"), retry: RetryPolicy(delays: [5, 30]),
                                     now: Date(timeIntervalSince1970: 1_704_729_601.5), worker: "host-a:42")
    let json = #"{"imageUrl":"http://e/a.jpg","memberId":9,"timestamp":1704729600000}"#

    func delivery(attempts: Int? = nil, headers: AMQPTable = [:]) -> AMQPDelivery {
        var properties = AMQPProperties(contentType: "application/json", headers: headers, messageId: "m-1")
        properties.headers["__TypeId__"] = "com.myroom.Model3DRequest"
        if let attempts { properties.headers[RetryPolicy.attemptsHeader] = .int(Int64(attempts)) }
        return AMQPDelivery(connectionID: 1, channel: 1, deliveryTag: 5, redelivered: false, exchange: "uploads",
                            routingKey: "s.upload.queue", consumerTag: "c", properties: properties, body: Array(json.utf8))
    }

    func event(_ status: ResultEvent.Status) -> ResultEvent {
        ResultEvent(status: status, memberId: 9, timestamp: 1_704_729_600_000, modelPath: "models/model3d_9_20240108_160000.obj",
                    messageId: "m-1", correlationId: "m-1", finishedAt: 1_704_729_601_500, worker: "host-a:42")
    }

    @Test func successPublishesTheEventThenAcks() throws {
        let plan = Settlement.decide(.succeeded(event(.succeeded)), for: delivery(), in: context)
        #expect(plan.outcome == "succeeded" && plan.errorCode == nil)
        try #require(plan.publishes.count == 1)
        let message = plan.publishes[0]
        #expect(message.exchange == "s.result" && message.routingKey == "model3d.result.succeeded")
        #expect(message.properties.contentType == "application/json")
        #expect(message.properties.correlationId == "m-1" && message.properties.messageId == "m-1")
        #expect(message.properties.timestamp == 1_704_729_601)
        let decoded = try JSONDecoder().decode(ResultEvent.self, from: Data(message.body))
        #expect(decoded.status == .succeeded && decoded.memberId == 9 && decoded.modelPath == "models/model3d_9_20240108_160000.obj")
    }

    @Test func permanentFailurePublishesTheEventThenTheDeadLetterWithItsHeaders() throws {
        var failed = event(.failed)
        failed.errorCode = "http_404"
        let failure = JobFailure(kind: .permanent, code: "http_404", message: "the server answered HTTP 404")
        let plan = Settlement.decide(.failed(failed, failure), for: delivery(attempts: 2), in: context)
        #expect(plan.outcome == "failed" && plan.errorCode == "http_404")
        try #require(plan.publishes.count == 2)
        #expect(plan.publishes[0].exchange == "s.result" && plan.publishes[0].routingKey == "model3d.result.failed")
        let letter = plan.publishes[1]
        #expect(letter.exchange == "s.upload.dlx" && letter.routingKey == "s.upload.queue" && letter.mandatory)
        #expect(letter.body == Array(json.utf8))
        #expect(letter.properties.deliveryMode == .persistent)
        #expect(letter.properties.messageId == "m-1" && letter.properties.contentType == "application/json")
        let headers = letter.properties.headers
        #expect(headers["x-exception-message"]?.stringValue == "the server answered HTTP 404")
        #expect(headers["x-error-code"]?.stringValue == "http_404")
        #expect(headers["x-failure-kind"]?.stringValue == "permanent")
        #expect(headers["x-original-exchange"]?.stringValue == "uploads")
        #expect(headers["x-original-routingKey"]?.stringValue == "s.upload.queue")
        #expect(headers[RetryPolicy.attemptsHeader]?.intValue == 3)  // the attempt that failed
        #expect(headers["x-failed-at"]?.intValue == 1_704_729_601_500)
        #expect(headers["x-worker"]?.stringValue == "host-a:42")
        #expect(headers["__TypeId__"]?.stringValue == "com.myroom.Model3DRequest")
    }

    @Test func transientFailureGoesToItsRetryQueueWithTheAttemptCounted() throws {
        let failure = JobFailure(kind: .transient, code: "http_503", message: "the server answered HTTP 503")
        let plan = Settlement.decide(.retry(delayIndex: 1, attempt: 2, failure), for: delivery(attempts: 1), in: context)
        #expect(plan.outcome == "retried" && plan.errorCode == "http_503")
        try #require(plan.publishes.count == 1)  // no event: the job is not finished
        let retry = plan.publishes[0]
        #expect(retry.exchange == "" && retry.routingKey == RetryPolicy(delays: [5, 30]).retryQueueName(workQueue: "s.upload.queue", delayIndex: 1))
        #expect(retry.mandatory && retry.properties.deliveryMode == .persistent && retry.body == Array(json.utf8))
        #expect(retry.properties.headers[RetryPolicy.attemptsHeader]?.intValue == 2)
        #expect(retry.properties.headers["x-last-error-code"]?.stringValue == "http_503")
        #expect(retry.properties.headers["x-last-error-message"]?.stringValue == "the server answered HTTP 503")
        #expect(retry.properties.headers["x-original-exchange"]?.stringValue == "uploads")
    }

    /// A job that went through a retry queue arrives from the default exchange; its dead letter still
    /// names where it first came from.
    @Test func theOriginalExchangeAndRoutingKeySurviveRetries() throws {
        let retried = delivery(attempts: 3, headers: ["x-original-exchange": "backend", "x-original-routingKey": "upload"])
        let failure = JobFailure(kind: .permanent, code: "download_timeout", message: "download timed out (gave up after 3 attempts)")
        let plan = Settlement.decide(.failed(event(.failed), failure), for: retried, in: context)
        let headers = try #require(plan.publishes.last).properties.headers
        #expect(headers["x-original-exchange"]?.stringValue == "backend")
        #expect(headers["x-original-routingKey"]?.stringValue == "upload")
    }

    @Test(arguments: [
        (AMQPError.connectionLost("reset"), Settlement.Unconfirmed.leaveForRedelivery),
        (.notConnected, .leaveForRedelivery),
        (.shutDown, .leaveForRedelivery),
        (.publishNacked, .nackAndRequeue(pauseSeconds: 1)),
        (.publishReturned(code: 312, text: "NO_ROUTE"), .nackAndRequeue(pauseSeconds: 1)),
        (.timeout("confirm"), .nackAndRequeue(pauseSeconds: 1)),
    ])
    func anUnconfirmedPublishIsLeftForRedeliveryOrNackedBack(error: AMQPError, expected: Settlement.Unconfirmed) {
        #expect(Settlement.ifUnconfirmed(error) == expected)
    }
}
