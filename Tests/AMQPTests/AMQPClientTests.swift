import Foundation
import Testing
@testable import AMQP

/// The threaded client against the real broker.
@Suite("AMQP client (broker)")
struct AMQPClientTests {
    /// A client consuming `queue` (declared by the topology), started and ready.
    private func startedClient(queue: String, name: String = Broker.unique("client"), heartbeat: Int = 30,
                               prefetch: UInt16 = 10, topology: AMQPTopology? = nil,
                               events: EventLog? = nil) async throws -> AMQPClient {
        let client = AMQPClient(
            configuration: try Broker.configuration(name: name, heartbeat: heartbeat),
            topology: topology ?? AMQPTopology(queues: [AMQPQueueSpec(name: queue)]),
            consumer: AMQPConsumerSpec(queue: queue, prefetch: prefetch),
            options: Broker.fastReconnect,
            onEvent: { events?.record($0) })
        client.start()
        try await client.waitUntilReady(timeout: .seconds(30))
        return client
    }

    private func job(_ queue: String, _ text: String, headers: AMQPTable = [:]) -> AMQPOutgoingMessage {
        AMQPOutgoingMessage(exchange: "", routingKey: queue, body: Array(text.utf8),
                            properties: AMQPProperties(contentType: "application/json", headers: headers,
                                                       correlationId: "c-\(text)", messageId: "id-\(text)"))
    }

    @Test func consumePublishAckRoundTrip() async throws {
        let queue = Broker.unique("client-rt"), results = Broker.unique("results")
        defer { Broker.cleanup(queues: [queue, results], exchanges: [results]) }
        let topology = AMQPTopology(
            exchanges: [AMQPExchangeSpec(name: results, type: .topic)],
            queues: [AMQPQueueSpec(name: queue), AMQPQueueSpec(name: results)],
            bindings: [AMQPBindingSpec(queue: results, exchange: results, routingKey: "model3d.result.*")])
        let client = try await startedClient(queue: queue, topology: topology)
        var it = client.messages.makeAsyncIterator()
        try await client.publish(job(queue, "job-1", headers: ["__TypeId__": "UploadMessage", "x-attempt": 1]))
        let m = try #require(await Broker.next(&it))
        #expect(String(decoding: m.body, as: UTF8.self) == "job-1")
        #expect(m.properties.messageId == "id-job-1")
        #expect(m.properties.correlationId == "c-job-1")
        #expect(m.properties.isPersistent)
        #expect(m.headers == ["__TypeId__": "UploadMessage", "x-attempt": 1])
        #expect(m.connectionID == client.connectionID)
        // The result event goes out with a confirm before the job is acked.
        try await client.publish(AMQPOutgoingMessage(exchange: results, routingKey: "model3d.result.succeeded",
                                                     body: Array("{}".utf8),
                                                     properties: AMQPProperties(correlationId: m.properties.messageId)))
        #expect(await client.ack(m) == .sent)
        // An unroutable mandatory publish comes back as a typed error.
        await #expect(throws: AMQPError.publishReturned(code: 312, text: "NO_ROUTE")) {
            try await client.publish(AMQPOutgoingMessage(exchange: results, routingKey: "nobody.listens", body: [1],
                                                         mandatory: true))
        }
        await client.shutdown()
        #expect(client.state == .stopped)
        #expect(try Broker.messageCount(queue) == 0)
        let event = try Broker.withChannel { _, ch in try ch.get(queue: results, noAck: true) }
        #expect(event?.properties.correlationId == "id-job-1")
        #expect(event?.routingKey == "model3d.result.succeeded")
        // After shutdown commands fail fast.
        await #expect(throws: AMQPError.shutDown) { try await client.publish(job(queue, "late")) }
    }

    @Test func nackWithRequeueRedelivers() async throws {
        let queue = Broker.unique("client-nack")
        defer { Broker.cleanup(queues: [queue]) }
        let client = try await startedClient(queue: queue)
        var it = client.messages.makeAsyncIterator()
        try await client.publish(job(queue, "retry-me"))
        let first = try #require(await Broker.next(&it))
        #expect(!first.redelivered)
        #expect(await client.nack(first, requeue: true) == .sent)
        let second = try #require(await Broker.next(&it))
        #expect(second.redelivered)
        #expect(second.body == first.body)
        #expect(await client.ack(second) == .sent)
        await client.shutdown()
        #expect(try Broker.messageCount(queue) == 0)
    }

    @Test func rejectDeadLettersThroughTheDLX() async throws {
        let work = Broker.unique("dl-work"), dlx = Broker.unique("dl-x"), dead = Broker.unique("dl-dead")
        defer { Broker.cleanup(queues: [work, dead], exchanges: [dlx]) }
        var workSpec = AMQPQueueSpec(name: work)
        workSpec.deadLetterExchange = dlx
        let topology = AMQPTopology(exchanges: [AMQPExchangeSpec(name: dlx, type: .direct)],
                                    queues: [workSpec, AMQPQueueSpec(name: dead)],
                                    bindings: [AMQPBindingSpec(queue: dead, exchange: dlx, routingKey: work)])
        let client = try await startedClient(queue: work, topology: topology)
        var it = client.messages.makeAsyncIterator()
        try await client.publish(job(work, "poison"))
        let m = try #require(await Broker.next(&it))
        #expect(await client.reject(m, requeue: false) == .sent)
        let deadline = ContinuousClock.now + .seconds(30)
        var deadMessage: AMQPDelivery?
        while deadMessage == nil, ContinuousClock.now < deadline {
            deadMessage = try await client.queueStatus(dead).messageCount > 0
                ? try Broker.withChannel { _, ch in try ch.get(queue: dead, noAck: true) } : nil
            if deadMessage == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        let d = try #require(deadMessage)
        #expect(String(decoding: d.body, as: UTF8.self) == "poison")
        #expect(d.exchange == dlx)
        guard case .array(let deaths)? = d.headers["x-death"], case .table(let death)? = deaths.first else {
            Issue.record("no x-death header")
            return
        }
        #expect(death["reason"] == "rejected")
        await client.shutdown()
    }

    /// The retry-delay pattern: a retry queue without consumers whose per-queue TTL dead-letters expired
    /// messages back to the work queue through the default exchange.
    @Test func ttlRetryQueueDeadLettersBackToWorkQueue() async throws {
        let work = Broker.unique("ttl-work"), retry = Broker.unique("ttl-retry-200ms")
        defer { Broker.cleanup(queues: [work, retry]) }
        var retrySpec = AMQPQueueSpec(name: retry)
        retrySpec.messageTTL = 200
        retrySpec.deadLetterExchange = ""
        retrySpec.deadLetterRoutingKey = work
        let client = try await startedClient(queue: work, topology: AMQPTopology(queues: [AMQPQueueSpec(name: work), retrySpec]))
        var it = client.messages.makeAsyncIterator()
        try await client.publish(job(work, "flaky", headers: ["x-attempt": 1]))
        let first = try #require(await Broker.next(&it))
        // Transient failure: republish to the retry queue with the attempt count raised, then ack.
        var props = first.properties
        props.headers["x-attempt"] = .int((first.headers["x-attempt"]?.intValue ?? 0) + 1)
        try await client.publish(AMQPOutgoingMessage(exchange: "", routingKey: retry, body: first.body, properties: props))
        #expect(await client.ack(first) == .sent)
        let again = try #require(await Broker.next(&it))
        #expect(again.body == first.body)
        #expect(again.headers["x-attempt"] == 2)
        #expect(again.properties.messageId == "id-flaky")
        guard case .array(let deaths)? = again.headers["x-death"], case .table(let death)? = deaths.first else {
            Issue.record("no x-death header")
            return
        }
        #expect(death["reason"] == "expired")
        #expect(death["queue"]?.stringValue == retry)
        #expect(await client.ack(again) == .sent)
        await client.shutdown()
        #expect(try Broker.messageCount(work) == 0)
        #expect(try Broker.messageCount(retry) == 0)
    }

    @Test func missingQueueCheckKeepsTheClientWorking() async throws {
        let queue = Broker.unique("side"), missing = Broker.unique("missing")
        defer { Broker.cleanup(queues: [queue]) }
        let client = try await startedClient(queue: queue)
        var it = client.messages.makeAsyncIterator()
        let connectionID = client.connectionID
        await #expect {
            _ = try await client.queueStatus(missing)
        } throws: { error in
            (error as? AMQPError)?.replyCode == AMQPReplyCode.notFound
        }
        // Twice: the side channel is replaced by a new one.
        await #expect(throws: AMQPError.self) { _ = try await client.queueStatus(missing) }
        #expect(try await client.queueStatus(queue).consumerCount == 1)
        try await client.publish(job(queue, "still-works"))
        let m = try #require(await Broker.next(&it))
        #expect(await client.ack(m) == .sent)
        #expect(client.connectionID == connectionID)
        #expect(client.isReady)
        await client.shutdown()
    }

    @Test func passiveTopologyOfMissingQueueRetriesWithTypedError() async throws {
        let missing = Broker.unique("absent")
        let client = AMQPClient(
            configuration: try Broker.configuration(),
            topology: AMQPTopology(queues: [AMQPQueueSpec(name: missing, passive: true)]),
            consumer: AMQPConsumerSpec(queue: missing, prefetch: 1), options: Broker.fastReconnect)
        client.start()
        await #expect {
            try await client.waitUntilReady(timeout: .seconds(10))
        } throws: { error in
            (error as? AMQPError)?.replyCode == AMQPReplyCode.notFound
        }
        // Once the owner declares it, the client gets ready by itself.
        defer { Broker.cleanup(queues: [missing]) }
        try Broker.withChannel { _, ch in _ = try ch.declareQueue(AMQPQueueSpec(name: missing)) }
        try await client.waitUntilReady(timeout: .seconds(30))
        await client.shutdown()
    }

    @Test func wrongPasswordIsReportedAsAuthenticationFailure() async throws {
        var config = try Broker.configuration()
        config.password = "wrong-\(UInt32.random(in: 0...UInt32.max))"
        let events = EventLog()
        let client = AMQPClient(configuration: config, options: Broker.fastReconnect, onEvent: { events.record($0) })
        client.start()
        await #expect {
            try await client.waitUntilReady(timeout: .seconds(10))
        } throws: { error in
            guard case .authenticationFailed(let user, _)? = error as? AMQPError else { return false }
            return user == config.username
        }
        guard case .reconnecting(_, _, let error) = client.state else {
            Issue.record("state \(client.state)")
            return
        }
        #expect(!error.description.contains(config.password))
        await client.shutdown()
        #expect(client.state == .stopped)
        #expect(events.readyCount == 0)
    }

    @Test func reconnectsAfterTheBrokerClosesTheConnection() async throws {
        let queue = Broker.unique("reconnect"), name = Broker.unique("reconnect-conn")
        defer { Broker.cleanup(queues: [queue]) }
        let events = EventLog()
        let client = try await startedClient(queue: queue, name: name, events: events)
        var it = client.messages.makeAsyncIterator()
        try await client.publish(job(queue, "before"))
        let before = try #require(await Broker.next(&it))
        #expect(await client.ack(before) == .sent)
        let firstConnection = try #require(client.connectionID)

        #expect(try Broker.closeConnections(named: name) == 1)
        let deadline = ContinuousClock.now + .seconds(30)
        while client.connectionID == nil || client.connectionID == firstConnection, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        try await client.waitUntilReady(timeout: .seconds(30))
        #expect(client.connectionID != firstConnection)
        #expect(events.connectionLosses == 1)
        #expect(events.readyCount == 2)
        guard case .connectionLost(let error)? = events.all.first(where: { if case .connectionLost = $0 { true } else { false } }) else {
            Issue.record("no connectionLost event")
            return
        }
        #expect(error.replyCode == AMQPReplyCode.connectionForced)

        try await client.publish(job(queue, "after"))
        let after = try #require(await Broker.next(&it))
        #expect(String(decoding: after.body, as: UTF8.self) == "after")
        #expect(after.connectionID == client.connectionID)
        #expect(await client.ack(after) == .sent)
        await client.shutdown()
        #expect(try Broker.messageCount(queue) == 0)
    }

    @Test func reconnectUnderLoadFinishesEveryMessage() async throws {
        let queue = Broker.unique("load"), name = Broker.unique("load-conn")
        defer { Broker.cleanup(queues: [queue]) }
        let total = 300
        try Broker.withChannel { _, ch in
            try ch.declareQueue(AMQPQueueSpec(name: queue))
            try ch.enableConfirms()
            var last: UInt64 = 0
            for i in 0..<total { last = try ch.publish(job(queue, "m\(i)")) }
            #expect(try ch.waitForConfirm(last, timeout: .seconds(5)))
        }
        let events = EventLog()
        let client = try await startedClient(queue: queue, name: name, prefetch: 8, events: events)
        var done = Set<String>()
        var stale = 0
        var closed = false
        // Only a failsafe: the loop ends when every message is done. Generous, because the
        // whole test run shares two cores and a cooperative pool of two threads.
        let deadline = ContinuousClock.now + .seconds(120)
        for await m in client.messages {
            try await Task.sleep(for: .milliseconds(1))  // a little work per message
            switch await client.ack(m) {
            case .sent: done.insert(String(decoding: m.body, as: UTF8.self))
            case .stale: stale += 1
            case .failed(let error): Issue.record("ack failed: \(error)")
            }
            if done.count == 100 && !closed {
                closed = true
                #expect(try Broker.closeConnections(named: name) == 1)
            }
            if done.count == total || ContinuousClock.now > deadline { break }
        }
        #expect(done.count == total)
        #expect(stale <= 8)  // at most the prefetch was in flight when the connection dropped
        #expect(events.connectionLosses == 1)
        #expect(events.readyCount == 2)
        await client.shutdown()
        #expect(try Broker.messageCount(queue) == 0)
    }

    @Test func staleDeliveryTagIsNotAckedOnTheNewConnection() async throws {
        let queue = Broker.unique("stale"), name = Broker.unique("stale-conn")
        defer { Broker.cleanup(queues: [queue]) }
        let client = try await startedClient(queue: queue, name: name, prefetch: 1)
        var it = client.messages.makeAsyncIterator()
        try await client.publish(job(queue, "held"))
        let old = try #require(await Broker.next(&it))
        #expect(old.deliveryTag == 1)
        let firstConnection = client.connectionID

        #expect(try Broker.closeConnections(named: name) == 1)
        // The broker requeues the unacked message and redelivers it on the new connection, with tag 1 again.
        let fresh = try #require(await Broker.next(&it))
        #expect(fresh.redelivered)
        #expect(fresh.body == old.body)
        #expect(fresh.connectionID != firstConnection)
        #expect(fresh.deliveryTag == old.deliveryTag)
        // Acking the old delivery must not ack tag 1 of the new connection.
        #expect(await client.ack(old) == .stale)
        #expect(await client.nack(old, requeue: false) == .stale)
        // The fresh delivery is still unacked: shutting down returns it to the queue.
        await client.shutdown()
        #expect(try Broker.messageCount(queue) == 1)
    }

    @Test func heartbeatsStayServicedWhileAMessageIsHeld() async throws {
        let queue = Broker.unique("heartbeat")
        defer { Broker.cleanup(queues: [queue]) }
        let events = EventLog()
        let client = try await startedClient(queue: queue, heartbeat: 1, events: events)
        var it = client.messages.makeAsyncIterator()
        let connectionID = client.connectionID
        try await client.publish(job(queue, "slow"))
        let m = try #require(await Broker.next(&it))
        // A slow job: four heartbeat intervals. Without heartbeats the broker drops the connection after two.
        try await Task.sleep(for: .seconds(4))
        #expect(client.connectionID == connectionID)
        #expect(events.connectionLosses == 0)
        #expect(await client.ack(m) == .sent)
        await client.shutdown()
        #expect(try Broker.messageCount(queue) == 0)
    }

    @Test func channelErrorOnTheMainChannelIsRecovered() async throws {
        let queue = Broker.unique("chan-error")
        defer { Broker.cleanup(queues: [queue]) }
        let events = EventLog()
        let client = try await startedClient(queue: queue, events: events)
        var it = client.messages.makeAsyncIterator()
        try await client.publish(job(queue, "first"))
        var m = try #require(await Broker.next(&it))
        // A tag the broker never sent: it closes the channel with 406; the client starts over.
        m.deliveryTag += 1000
        #expect(await client.ack(m) == .sent)
        let deadline = ContinuousClock.now + .seconds(30)
        while events.readyCount < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        let lost = events.all.compactMap { if case .connectionLost(let e) = $0 { e } else { nil } }
        #expect(lost.first?.replyCode == AMQPReplyCode.preconditionFailed)
        // The real message comes again and can be acked on the new connection.
        let again = try #require(await Broker.next(&it))
        #expect(again.redelivered)
        #expect(await client.ack(again) == .sent)
        await client.shutdown()
        #expect(try Broker.messageCount(queue) == 0)
    }

    @Test func consumerCancelledByBrokerIsRestored() async throws {
        let queue = Broker.unique("restored")
        defer { Broker.cleanup(queues: [queue]) }
        let events = EventLog()
        let client = try await startedClient(queue: queue, events: events)
        var it = client.messages.makeAsyncIterator()
        Broker.cleanup(queues: [queue])  // deletes the queue under the consumer
        let deadline = ContinuousClock.now + .seconds(30)
        while events.readyCount < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(events.all.contains { if case .consumerCancelled = $0 { true } else { false } })
        try await client.waitUntilReady(timeout: .seconds(30))
        try await client.publish(job(queue, "after-restore"))
        let m = try #require(await Broker.next(&it))
        #expect(await client.ack(m) == .sent)
        await client.shutdown()
    }

    @Test func stopConsumingThenShutdownLosesNothing() async throws {
        let queue = Broker.unique("drain")
        defer { Broker.cleanup(queues: [queue]) }
        let client = try await startedClient(queue: queue, prefetch: 2)
        var it = client.messages.makeAsyncIterator()
        for i in 0..<5 { try await client.publish(job(queue, "j\(i)")) }
        let a = try #require(await Broker.next(&it))
        let b = try #require(await Broker.next(&it))
        await client.stopConsuming()
        #expect(client.isReady)
        // In-flight jobs finish after the consumer stopped: their acks and publishes still go through.
        #expect(await client.ack(a) == .sent)
        try await client.publish(job(queue, "event-after-stop"))
        #expect(await client.nack(b, requeue: true) == .sent)
        await client.shutdown()
        // Nothing more was yielded, and the stream is finished.
        #expect(await Broker.next(&it, timeout: .seconds(2)) == nil)
        // 5 published - 1 acked + 1 published after stop = 5 (b requeued, the others never handed out).
        #expect(try Broker.messageCount(queue) == 5)
    }
}
