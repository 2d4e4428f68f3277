import CAMQP

/// One channel of an `AMQPConnection`; same thread rule as the connection.
///
/// Every method throws `.channelClosed` once the broker has closed the channel (the connection then stays
/// usable: open another channel), and the connection's error once the connection is gone.
public final class AMQPChannel {
    /// The channel number on its connection.
    public let id: UInt16
    private weak var connection: AMQPConnection?
    private var closeReason: AMQPError?
    /// True after `enableConfirms()`.
    public private(set) var confirmsEnabled = false
    /// The sequence number the next publish gets in confirm mode (starts at 1).
    public private(set) var nextPublishSequence: UInt64 = 1
    private var unconfirmed = Set<UInt64>()
    private var nacked = Set<UInt64>()

    init(connection: AMQPConnection, id: UInt16) {
        self.connection = connection
        self.id = id
    }

    /// True until the channel is closed by `close()`, by the broker or with its connection.
    public var isOpen: Bool { closeReason == nil && connection?.isOpen == true }

    /// Why the channel is closed, once it is.
    public var closedError: AMQPError? { closeReason }

    private func live() throws(AMQPError) -> (AMQPConnection, amqp_connection_state_t) {
        if let closeReason { throw closeReason }
        guard let connection else { throw AMQPError.notConnected }
        return (connection, try connection.liveState())
    }

    /// Runs an RPC and checks its reply.
    private func rpc<T>(_ operation: String, _ body: (amqp_connection_state_t, CArena) -> T) throws(AMQPError) -> T {
        let (conn, st) = try live()
        let arena = CArena()
        let result = body(st, arena)
        try conn.check(amqp_get_rpc_reply(st), operation, channel: id)
        withExtendedLifetime(arena) {}
        return result
    }

    /// Sends a method that has no reply (ack, nack, reject, publish); a failure means the socket is gone.
    private func send(_ operation: String, _ body: (amqp_connection_state_t) -> Int32) throws(AMQPError) {
        let (conn, st) = try live()
        let rc = body(st)
        if rc != AMQP_STATUS_OK.rawValue { throw conn.lost(rc, operation) }
    }

    func markClosed(_ error: AMQPError) {
        if closeReason == nil { closeReason = error }
    }

    func confirmed(_ sequence: UInt64, multiple: Bool, acked: Bool) {
        if multiple {
            let done = unconfirmed.filter { $0 <= sequence }
            unconfirmed.subtract(done)
            if !acked { nacked.formUnion(done) }
        } else if unconfirmed.remove(sequence) != nil, !acked {
            nacked.insert(sequence)
        }
    }

    // MARK: flow and topology

    /// `basic.qos`: at most `prefetchCount` unacknowledged deliveries for this channel's consumers.
    public func qos(prefetchCount: UInt16, prefetchSize: UInt32 = 0, global: Bool = false) throws(AMQPError) {
        _ = try rpc("basic.qos") { st, _ in amqp_basic_qos(st, id, prefetchSize, prefetchCount, global ? 1 : 0) }
    }

    /// `exchange.declare` (or a passive check when `spec.passive`).
    public func declareExchange(_ spec: AMQPExchangeSpec) throws(AMQPError) {
        _ = try rpc("exchange.declare \(spec.name)") { st, a in
            amqp_exchange_declare(st, id, a.bytes(spec.name), a.bytes(spec.type.rawValue), spec.passive ? 1 : 0,
                                  spec.durable ? 1 : 0, spec.autoDelete ? 1 : 0, spec.internal ? 1 : 0,
                                  a.table(spec.arguments))
        }
    }

    /// `exchange.delete`.
    public func deleteExchange(_ name: String, ifUnused: Bool = false) throws(AMQPError) {
        _ = try rpc("exchange.delete \(name)") { st, a in amqp_exchange_delete(st, id, a.bytes(name), ifUnused ? 1 : 0) }
    }

    /// `queue.declare` (or a passive check when `spec.passive`): 404 NOT_FOUND for a missing queue in passive
    /// mode and 406 PRECONDITION_FAILED for different arguments both close this channel.
    @discardableResult
    public func declareQueue(_ spec: AMQPQueueSpec) throws(AMQPError) -> AMQPQueueStatus {
        let ok = try rpc("queue.declare \(spec.name)") { st, a in
            amqp_queue_declare(st, id, a.bytes(spec.name), spec.passive ? 1 : 0, spec.durable ? 1 : 0,
                               spec.exclusive ? 1 : 0, spec.autoDelete ? 1 : 0, a.table(spec.arguments))?.pointee
        }
        guard let ok else { throw AMQPError.protocolViolation("queue.declare-ok missing") }
        return AMQPQueueStatus(name: ok.queue.string, messageCount: ok.message_count, consumerCount: ok.consumer_count)
    }

    /// `queue.bind`.
    public func bindQueue(_ spec: AMQPBindingSpec) throws(AMQPError) {
        _ = try rpc("queue.bind \(spec.queue)→\(spec.exchange)") { st, a in
            amqp_queue_bind(st, id, a.bytes(spec.queue), a.bytes(spec.exchange), a.bytes(spec.routingKey),
                            a.table(spec.arguments))
        }
    }

    /// `queue.unbind`.
    public func unbindQueue(_ spec: AMQPBindingSpec) throws(AMQPError) {
        _ = try rpc("queue.unbind \(spec.queue)→\(spec.exchange)") { st, a in
            amqp_queue_unbind(st, id, a.bytes(spec.queue), a.bytes(spec.exchange), a.bytes(spec.routingKey),
                              a.table(spec.arguments))
        }
    }

    /// `queue.delete`; returns how many messages it held.
    @discardableResult
    public func deleteQueue(_ name: String, ifUnused: Bool = false, ifEmpty: Bool = false) throws(AMQPError) -> UInt32 {
        let ok = try rpc("queue.delete \(name)") { st, a in
            amqp_queue_delete(st, id, a.bytes(name), ifUnused ? 1 : 0, ifEmpty ? 1 : 0)?.pointee
        }
        return ok?.message_count ?? 0
    }

    /// `queue.purge`; returns how many messages it removed.
    @discardableResult
    public func purgeQueue(_ name: String) throws(AMQPError) -> UInt32 {
        let ok = try rpc("queue.purge \(name)") { st, a in amqp_queue_purge(st, id, a.bytes(name))?.pointee }
        return ok?.message_count ?? 0
    }

    /// Declares exchanges, then queues, then bindings.
    public func declare(_ topology: AMQPTopology) throws(AMQPError) {
        for e in topology.exchanges { try declareExchange(e) }
        for q in topology.queues { try declareQueue(q) }
        for b in topology.bindings { try bindQueue(b) }
    }

    // MARK: consuming

    /// `basic.consume`; returns the consumer tag. Deliveries arrive through `AMQPConnection.nextEvent`.
    @discardableResult
    public func consume(queue: String, consumerTag: String = "", noAck: Bool = false, exclusive: Bool = false,
                        arguments: AMQPTable = [:]) throws(AMQPError) -> String {
        let ok = try rpc("basic.consume \(queue)") { st, a in
            amqp_basic_consume(st, id, a.bytes(queue), a.bytes(consumerTag), 0, noAck ? 1 : 0, exclusive ? 1 : 0,
                               a.table(arguments))?.pointee
        }
        guard let ok else { throw AMQPError.protocolViolation("basic.consume-ok missing") }
        return ok.consumer_tag.string
    }

    /// `basic.cancel`: no new deliveries for this consumer; unacknowledged ones stay yours to settle.
    public func cancel(consumerTag: String) throws(AMQPError) {
        _ = try rpc("basic.cancel \(consumerTag)") { st, a in amqp_basic_cancel(st, id, a.bytes(consumerTag)) }
    }

    /// `basic.ack`.
    public func ack(deliveryTag: UInt64, multiple: Bool = false) throws(AMQPError) {
        try send("basic.ack") { st in amqp_basic_ack(st, id, deliveryTag, multiple ? 1 : 0) }
    }

    /// `basic.nack`: with `requeue` the broker delivers the message again (redelivered = true), without it the
    /// message is dead-lettered (or dropped when the queue has no dead-letter exchange).
    public func nack(deliveryTag: UInt64, multiple: Bool = false, requeue: Bool) throws(AMQPError) {
        try send("basic.nack") { st in amqp_basic_nack(st, id, deliveryTag, multiple ? 1 : 0, requeue ? 1 : 0) }
    }

    /// `basic.reject`: like `nack` for one message.
    public func reject(deliveryTag: UInt64, requeue: Bool) throws(AMQPError) {
        try send("basic.reject") { st in amqp_basic_reject(st, id, deliveryTag, requeue ? 1 : 0) }
    }

    /// `basic.get`: one message from `queue`, or nil when it is empty.
    public func get(queue: String, noAck: Bool = false) throws(AMQPError) -> AMQPDelivery? {
        let (conn, st) = try live()
        let arena = CArena()
        let reply = amqp_basic_get(st, id, arena.bytes(queue), noAck ? 1 : 0)
        try conn.check(reply, "basic.get \(queue)", channel: id)
        guard reply.reply.id == AMQPMethod.basicGetOk, let decoded = reply.reply.decoded else { return nil }
        let ok = decoded.assumingMemoryBound(to: amqp_basic_get_ok_t.self).pointee
        let tag = ok.delivery_tag, redelivered = ok.redelivered != 0
        let exchange = ok.exchange.string, key = ok.routing_key.string
        var message = amqp_message_t()
        let r = amqp_read_message(st, id, &message, 0)
        try conn.check(r, "basic.get \(queue) body", channel: id)
        defer { amqp_destroy_message(&message) }
        return AMQPDelivery(connectionID: conn.id, channel: id, deliveryTag: tag, redelivered: redelivered,
                            exchange: exchange, routingKey: key, consumerTag: "",
                            properties: AMQPProperties(message.properties), body: message.body.array)
    }

    // MARK: publishing

    /// `confirm.select`: from now on the broker acks or nacks every publish on this channel.
    public func enableConfirms() throws(AMQPError) {
        guard !confirmsEnabled else { return }
        _ = try rpc("confirm.select") { st, _ in amqp_confirm_select(st, id) }
        confirmsEnabled = true
    }

    /// `basic.publish`. In confirm mode returns the publish's sequence number (to match `.publishConfirm` events
    /// or to pass to `waitForConfirm`), otherwise 0.
    @discardableResult
    public func publish(_ message: AMQPOutgoingMessage) throws(AMQPError) -> UInt64 {
        let arena = CArena()
        var props = message.properties.cProperties(arena)
        try send("basic.publish") { st in
            message.body.withUnsafeBytes { raw in
                let body = amqp_bytes_t(len: raw.count, bytes: UnsafeMutableRawPointer(mutating: raw.baseAddress))
                return amqp_basic_publish(st, id, arena.bytes(message.exchange), arena.bytes(message.routingKey),
                                          message.mandatory ? 1 : 0, 0, &props, body)
            }
        }
        withExtendedLifetime(arena) {}
        guard confirmsEnabled else { return 0 }
        let seq = nextPublishSequence
        nextPublishSequence += 1
        unconfirmed.insert(seq)
        return seq
    }

    /// True while the broker has not yet acked or nacked publish `sequence`.
    public func isUnconfirmed(_ sequence: UInt64) -> Bool { unconfirmed.contains(sequence) }

    /// Reads events until the broker confirms publish `sequence`: true for ack, false for nack.
    ///
    /// Deliveries and other events that arrive meanwhile are kept, in order, for `AMQPConnection.nextEvent`.
    public func waitForConfirm(_ sequence: UInt64, timeout: Duration = .seconds(30)) throws(AMQPError) -> Bool {
        guard confirmsEnabled else { throw AMQPError.protocolViolation("confirms are not enabled on channel \(id)") }
        let (conn, _) = try live()
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while unconfirmed.contains(sequence) {
            let left = deadline - clock.now
            guard left > .zero else { throw AMQPError.timeout("publisher confirm \(sequence) on channel \(id)") }
            guard let event = try conn.readEvent(timeout: min(left, .milliseconds(200))) else { continue }
            switch event {
            case .publishConfirm(let ch, _, _, _) where ch == id:
                break
            case .channelClosed(let ch, let error) where ch == id:
                conn.putAside(event)
                throw error
            default:
                conn.putAside(event)
            }
        }
        return nacked.remove(sequence) == nil
    }

    /// Publishes and waits for the broker's confirm; enables confirms first if needed.
    /// - Throws: `.publishNacked` when the broker refuses the message.
    public func publishAndWaitForConfirm(_ message: AMQPOutgoingMessage,
                                         timeout: Duration = .seconds(30)) throws(AMQPError) {
        try enableConfirms()
        let seq = try publish(message)
        guard try waitForConfirm(seq, timeout: timeout) else { throw AMQPError.publishNacked }
    }

    /// `channel.close`. Idempotent; unacknowledged deliveries of this channel go back to their queues.
    public func close() {
        guard closeReason == nil, let connection, let st = try? connection.liveState() else { return }
        _ = amqp_channel_close(st, id, Int32(AMQP_REPLY_SUCCESS))
        connection.channelDidClose(id, .notConnected)
    }
}
