import Foundation
import Testing
@testable import AMQP

/// The synchronous connection and channel against the real broker.
@Suite("AMQP connection and channel (broker)")
struct AMQPConnectionTests {
    @Test func roundTripPreservesPropertiesAndHeaders() throws {
        let exchange = Broker.unique("x"), queue = Broker.unique("q")
        defer { Broker.cleanup(queues: [queue], exchanges: [exchange]) }
        let connection = try AMQPConnection(configuration: Broker.configuration())
        defer { connection.close() }
        #expect(connection.negotiatedHeartbeat == 30)
        #expect(connection.serverProperties["product"]?.stringValue == "RabbitMQ")
        let ch = try connection.openChannel()
        try ch.declare(AMQPTopology(
            exchanges: [AMQPExchangeSpec(name: exchange, type: .direct)],
            queues: [AMQPQueueSpec(name: queue)],
            bindings: [AMQPBindingSpec(queue: queue, exchange: exchange, routingKey: "jobs")]))

        let body = Array(#"{"imageUrl":"http://127.0.0.1/a.jpg","memberId":12345,"timestamp":1704729600000}"#.utf8)
        let headers: AMQPTable = ["__TypeId__": "com.myroom.UploadMessage", "x-attempt": 2, "retry": true,
                                  "negative": -7, "nested": ["k": "v"], "list": [1, "two"]]
        let properties = AMQPProperties(contentType: "application/json", headers: headers, correlationId: "corr-1",
                                        messageId: "msg-1", timestamp: 1_704_729_600, appId: "tests")
        try ch.publishAndWaitForConfirm(AMQPOutgoingMessage(exchange: exchange, routingKey: "jobs", body: body,
                                                            properties: properties))
        let tag = try ch.consume(queue: queue)
        #expect(!tag.isEmpty)
        let d = try #require(try Broker.nextDelivery(connection))
        #expect(d.body == body)
        #expect(d.exchange == exchange)
        #expect(d.routingKey == "jobs")
        #expect(d.consumerTag == tag)
        #expect(!d.redelivered)
        #expect(d.connectionID == connection.id)
        #expect(d.properties.contentType == "application/json")
        #expect(d.properties.deliveryMode == .persistent)
        #expect(d.properties.messageId == "msg-1")
        #expect(d.properties.correlationId == "corr-1")
        #expect(d.properties.timestamp == 1_704_729_600)
        #expect(d.properties.appId == "tests")
        #expect(d.headers == headers)
        try ch.ack(deliveryTag: d.deliveryTag)
        try ch.cancel(consumerTag: tag)
        #expect(try Broker.messageCount(queue) == 0)
    }

    @Test func publisherConfirmsWhileDeliveriesArrive() throws {
        try Broker.withQueue("confirm") { connection, ch, queue in
            try ch.enableConfirms()
            try ch.qos(prefetchCount: 100)
            try ch.consume(queue: queue)
            // Publish a batch, then wait for the last confirm: the deliveries of the first ones arrive meanwhile
            // and must be kept for nextEvent, in order.
            var sequences: [UInt64] = []
            for i in 0..<50 {
                sequences.append(try ch.publish(AMQPOutgoingMessage(exchange: "", routingKey: queue, body: Array("m\(i)".utf8))))
            }
            #expect(sequences == Array(1...50))
            #expect(try ch.waitForConfirm(50, timeout: .seconds(5)))
            #expect(sequences.allSatisfy { !ch.isUnconfirmed($0) })
            var bodies: [String] = []
            while bodies.count < 50, let d = try Broker.nextDelivery(connection) {
                bodies.append(String(decoding: d.body, as: UTF8.self))
                try ch.ack(deliveryTag: d.deliveryTag)
            }
            #expect(bodies == (0..<50).map { "m\($0)" })
        }
    }

    @Test func brokerNacksAndReturnsPublishes() throws {
        try Broker.withQueue("full", arguments: ["x-max-length": 1, "x-overflow": "reject-publish"]) { connection, ch, queue in
            try ch.enableConfirms()
            let first = try ch.publish(AMQPOutgoingMessage(exchange: "", routingKey: queue, body: [1]))
            #expect(try ch.waitForConfirm(first, timeout: .seconds(5)))
            let second = try ch.publish(AMQPOutgoingMessage(exchange: "", routingKey: queue, body: [2]))
            #expect(try ch.waitForConfirm(second, timeout: .seconds(5)) == false)
            #expect(throws: AMQPError.publishNacked) {
                try ch.publishAndWaitForConfirm(AMQPOutgoingMessage(exchange: "", routingKey: queue, body: [3]))
            }
            // Unroutable mandatory message: basic.return, then the broker still acks it.
            let third = try ch.publish(AMQPOutgoingMessage(exchange: "", routingKey: Broker.unique("nowhere"), body: [4],
                                                           mandatory: true))
            var returned: AMQPReturnedMessage?
            var confirmed = false
            let deadline = ContinuousClock.now + .seconds(5)
            while !confirmed, ContinuousClock.now < deadline {
                switch try connection.nextEvent(timeout: .milliseconds(100)) {
                case .returned(let r)?: returned = r
                case let .publishConfirm(_, seq, _, acked)? where seq == third: confirmed = acked
                default: break
                }
            }
            #expect(confirmed)
            #expect(returned?.replyCode == 312)
            #expect(returned?.body == [4])
        }
    }

    @Test func nackWithRequeueRedelivers() throws {
        try Broker.withQueue("requeue") { connection, ch, queue in
            try ch.publishAndWaitForConfirm(AMQPOutgoingMessage(exchange: "", routingKey: queue, body: Array("again".utf8)))
            try ch.consume(queue: queue)
            let first = try #require(try Broker.nextDelivery(connection))
            #expect(!first.redelivered)
            try ch.nack(deliveryTag: first.deliveryTag, requeue: true)
            let second = try #require(try Broker.nextDelivery(connection))
            #expect(second.redelivered)
            #expect(second.body == first.body)
            #expect(second.deliveryTag != first.deliveryTag)
            try ch.ack(deliveryTag: second.deliveryTag)
        }
    }

    @Test func rejectWithoutRequeueDeadLetters() throws {
        let work = Broker.unique("work"), dlx = Broker.unique("dlx"), dead = Broker.unique("dead")
        defer { Broker.cleanup(queues: [work, dead], exchanges: [dlx]) }
        let connection = try AMQPConnection(configuration: Broker.configuration())
        defer { connection.close() }
        let ch = try connection.openChannel()
        var workSpec = AMQPQueueSpec(name: work)
        workSpec.deadLetterExchange = dlx
        try ch.declare(AMQPTopology(
            exchanges: [AMQPExchangeSpec(name: dlx, type: .fanout)],
            queues: [workSpec, AMQPQueueSpec(name: dead)],
            bindings: [AMQPBindingSpec(queue: dead, exchange: dlx)]))
        try ch.publishAndWaitForConfirm(AMQPOutgoingMessage(
            exchange: "", routingKey: work, body: Array("bad job".utf8),
            properties: AMQPProperties(headers: ["x-error-code": "E_TEST"], messageId: "m-dl")))
        let d = try #require(try ch.get(queue: work))
        try ch.reject(deliveryTag: d.deliveryTag, requeue: false)
        var deadLettered: AMQPDelivery?
        let deadline = ContinuousClock.now + .seconds(5)
        while deadLettered == nil, ContinuousClock.now < deadline {
            deadLettered = try ch.get(queue: dead, noAck: true)
            if deadLettered == nil { Thread.sleep(forTimeInterval: 0.05) }
        }
        let m = try #require(deadLettered)
        #expect(m.body == Array("bad job".utf8))
        #expect(m.properties.messageId == "m-dl")
        #expect(m.headers["x-error-code"] == "E_TEST")
        guard case .array(let deaths)? = m.headers["x-death"], case .table(let death)? = deaths.first else {
            Issue.record("no x-death header: \(m.headers)")
            return
        }
        #expect(death["reason"] == "rejected")
        #expect(death["queue"]?.stringValue == work)
        #expect(try Broker.messageCount(work) == 0)
    }

    @Test func passiveDeclareOfMissingQueueClosesOnlyThatChannel() throws {
        let missing = Broker.unique("missing"), queue = Broker.unique("alive")
        defer { Broker.cleanup(queues: [queue]) }
        let connection = try AMQPConnection(configuration: Broker.configuration())
        defer { connection.close() }
        let ch1 = try connection.openChannel()
        do {
            try ch1.declareQueue(AMQPQueueSpec(name: missing, passive: true))
            Issue.record("passive declare of a missing queue succeeded")
        } catch {
            guard case let .channelClosed(channel, code, text) = error else {
                Issue.record("unexpected error \(error)")
                return
            }
            #expect(channel == ch1.id)
            #expect(code == AMQPReplyCode.notFound)
            #expect(text.contains("NOT_FOUND"))
            #expect(error.replyCode == 404)
        }
        #expect(!ch1.isOpen)
        #expect(connection.isOpen)
        #expect(throws: AMQPError.self) { try ch1.qos(prefetchCount: 1) }
        let ch2 = try connection.openChannel()
        #expect(ch2.id != ch1.id)
        try ch2.declareQueue(AMQPQueueSpec(name: queue))
        try ch2.publishAndWaitForConfirm(AMQPOutgoingMessage(exchange: "", routingKey: queue, body: [42]))
        let got = try #require(try ch2.get(queue: queue, noAck: true))
        #expect(got.body == [42])
        // Declaring an existing queue with different arguments: 406 on that channel only.
        let ch3 = try connection.openChannel()
        #expect {
            try ch3.declareQueue(AMQPQueueSpec(name: queue, arguments: ["x-message-ttl": 1000]))
        } throws: { error in
            guard case let .channelClosed(channel, code, _)? = error as? AMQPError else { return false }
            return channel == ch3.id && code == AMQPReplyCode.preconditionFailed
        }
        #expect(connection.isOpen)
    }

    @Test func channelCloseFromTheBrokerArrivesAsAnEvent() throws {
        try Broker.withQueue("bad-ack") { connection, ch, queue in
            try ch.ack(deliveryTag: 999)  // the broker answers with channel.close 406 PRECONDITION_FAILED
            var closed: AMQPError?
            let deadline = ContinuousClock.now + .seconds(5)
            while closed == nil, ContinuousClock.now < deadline {
                if case .channelClosed(let id, let error)? = try connection.nextEvent(timeout: .milliseconds(100)) {
                    #expect(id == ch.id)
                    closed = error
                }
            }
            #expect(closed?.replyCode == AMQPReplyCode.preconditionFailed)
            #expect(closed?.description.contains("unknown delivery tag 999") == true)
            #expect(!ch.isOpen)
            #expect(connection.isOpen)
            #expect(try connection.openChannel().declareQueue(AMQPQueueSpec(name: queue, passive: true)).name == queue)
        }
    }

    @Test func wrongPasswordIsAnAuthenticationError() throws {
        var config = try Broker.configuration()
        config.password = "definitely-wrong-\(UInt32.random(in: 0...UInt32.max))"
        do {
            _ = try AMQPConnection(configuration: config)
            Issue.record("login with a wrong password succeeded")
        } catch {
            #expect(error == .authenticationFailed(username: config.username, replyText: error.authText))
            #expect(error.replyCode == AMQPReplyCode.accessRefused)
            #expect(!error.description.contains(config.password))
        }
    }

    @Test func unknownVirtualHostAndRefusedPort() throws {
        var config = try Broker.configuration()
        config.virtualHost = Broker.unique("no-such-vhost")
        #expect {
            _ = try AMQPConnection(configuration: config)
        } throws: { error in
            (error as? AMQPError)?.replyCode == AMQPReplyCode.notAllowed
        }
        var refused = try Broker.configuration()
        refused.port = 1
        #expect {
            _ = try AMQPConnection(configuration: refused)
        } throws: { error in
            guard case let .connectionFailed(_, port, reason)? = error as? AMQPError else { return false }
            return port == 1 && reason.contains("refused")
        }
    }

    @Test func brokerCancelIsAnEvent() throws {
        try Broker.withQueue("cancelled") { connection, ch, queue in
            let tag = try ch.consume(queue: queue)
            Broker.cleanup(queues: [queue])
            var cancelled: String?
            let deadline = ContinuousClock.now + .seconds(5)
            while cancelled == nil, ContinuousClock.now < deadline {
                if case .consumerCancelled(_, let t)? = try connection.nextEvent(timeout: .milliseconds(100)) { cancelled = t }
            }
            #expect(cancelled == tag)
            #expect(ch.isOpen)
        }
    }

    @Test func connectionClosedByBrokerIsTyped() throws {
        let name = Broker.unique("forced")
        let connection = try AMQPConnection(configuration: Broker.configuration(name: name))
        defer { connection.close() }
        #expect(try Broker.closeConnections(named: name) == 1)
        var caught: AMQPError?
        let deadline = ContinuousClock.now + .seconds(5)
        while caught == nil, ContinuousClock.now < deadline {
            do { _ = try connection.nextEvent(timeout: .milliseconds(100)) } catch { caught = error }
        }
        #expect(caught?.replyCode == AMQPReplyCode.connectionForced)
        #expect(!connection.isOpen)
    }
}

extension AMQPError {
    /// The reply text of an authentication error (the broker's wording varies by version).
    var authText: String {
        if case .authenticationFailed(_, let text) = self { return text }
        return ""
    }
}
