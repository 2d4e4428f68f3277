import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A long-lived AMQP client: one dedicated I/O thread owns the connection; every other thread talks to it
/// through thread-safe commands.
///
/// On `start()` the thread connects, declares `topology`, enables publisher confirms and (with a consumer
/// spec) sets the prefetch and starts consuming; deliveries arrive on `messages`. Acks, nacks, rejects and
/// publishes may be called from any thread or task; the I/O thread executes them in order. It calls into
/// rabbitmq-c at least every 250 ms, so heartbeats are serviced however long the caller holds a message.
///
/// When the connection is lost the client reconnects with capped exponential backoff and restores the
/// topology and the consumer. Messages from the lost connection are stale: settling them returns `.stale`
/// without sending anything, and the broker delivers them again. Publishes that were waiting for a confirm
/// fail with `.connectionLost` (their outcome is unknown); publishes while disconnected fail with `.notConnected`.
///
/// Shutdown: `stopConsuming()` (no new deliveries; ones still in flight from the broker are requeued), settle
/// what is in flight, then `shutdown()` (waits for outstanding confirms, closes channel and connection).
///
/// Completion handlers (`onComplete:`) and `onEvent` run on the I/O thread: they must return quickly and must
/// never wait for another command of this client (that would stop the thread that has to execute it).
public final class AMQPClient: Sendable, CustomStringConvertible {
    /// Where to connect (the password never shows in logs).
    public let configuration: AMQPConfiguration
    /// Declared on every connection, before the consumer starts.
    public let topology: AMQPTopology
    /// The consumer started on every connection; nil for a publish-only client.
    public let consumer: AMQPConsumerSpec?
    /// Reconnect backoff and timeouts.
    public let options: AMQPClientOptions
    /// Deliveries of the consumer, across reconnections; finishes after `shutdown()`. Iterate it from one task.
    public let messages: AsyncStream<AMQPDelivery>

    let logger: Logger
    let onEvent: (@Sendable (AMQPClientEvent) -> Void)?
    let continuation: AsyncStream<AMQPDelivery>.Continuation
    let shared = Locked(Shared())
    let wakeReadFD: Int32
    let wakeWriteFD: Int32

    struct Shared {
        var state: AMQPClientState = .idle
        var commands: [Command] = []
        var wakePending = false
        var accepting = true
        var stopRequested = false
        var consumingWanted = true
        var connectionID: UInt64?
        /// Why the last connection attempt failed; nil once ready. Kept apart from `state`, which
        /// is `.connecting` again while the next attempt runs.
        var lastConnectError: AMQPError?
        var stopWaiters: [CheckedContinuation<Void, Never>] = []
    }

    enum SettleKind: Sendable {
        case ack(multiple: Bool)
        case nack(multiple: Bool, requeue: Bool)
        case reject(requeue: Bool)
    }

    enum Command: Sendable {
        case settle(connectionID: UInt64, channel: UInt16, tag: UInt64, SettleKind, @Sendable (AMQPSettleResult) -> Void)
        case publish(AMQPOutgoingMessage, @Sendable (Result<Void, AMQPError>) -> Void)
        case queueStatus(String, @Sendable (Result<AMQPQueueStatus, AMQPError>) -> Void)
        case stopConsuming(@Sendable () -> Void)
    }

    /// Creates the client; nothing happens until `start()`.
    ///
    /// - Parameters:
    ///   - topology: declared on every connection, before the consumer starts.
    ///   - consumer: the queue to consume with manual acks and its prefetch; nil for a publish-only client.
    ///   - onEvent: called on the I/O thread for state changes, returns and cancellations; must not block.
    public init(configuration: AMQPConfiguration, topology: AMQPTopology = AMQPTopology(),
                consumer: AMQPConsumerSpec? = nil, options: AMQPClientOptions = AMQPClientOptions(),
                logger: Logger = Logger(label: "amqp"), onEvent: (@Sendable (AMQPClientEvent) -> Void)? = nil) {
        self.configuration = configuration
        self.topology = topology
        self.consumer = consumer
        self.options = options
        self.logger = logger
        self.onEvent = onEvent
        (messages, continuation) = AsyncStream.makeStream(of: AMQPDelivery.self, bufferingPolicy: .unbounded)
        var fds: [Int32] = [-1, -1]
        let rc = pipe(&fds)
        precondition(rc == 0, "pipe() failed: \(errno)")
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        wakeReadFD = fds[0]
        wakeWriteFD = fds[1]
    }

    deinit {
        closeDescriptor(wakeReadFD)
        closeDescriptor(wakeWriteFD)
    }

    public var description: String {
        "AMQPClient(\(configuration)\(consumer.map { ", consuming \($0.queue) prefetch \($0.prefetch)" } ?? ""))"
    }

    /// The current state.
    public var state: AMQPClientState { shared.withLock { $0.state } }

    /// Connected with the topology declared and, unless there is no consumer or it was stopped, consuming.
    public var isReady: Bool { state == .ready }

    /// The id of the live connection, if any (`AMQPDelivery.connectionID` of fresh deliveries).
    public var connectionID: UInt64? { shared.withLock { $0.connectionID } }

    /// Starts the I/O thread. Calling it again does nothing.
    public func start() {
        let go = shared.withLock { s -> Bool in
            guard s.state == .idle else { return false }
            s.state = .connecting
            return true
        }
        guard go else { return }
        let thread = Thread { [self] in
            let loop = IOLoop(client: self)
            loop.run()
        }
        thread.name = "amqp-io"
        thread.start()
    }

    /// Waits until the client is `.ready` (or throws `.timeout` / `.shutDown`).
    public func waitUntilReady(timeout: Duration = .seconds(30)) async throws(AMQPError) {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while true {
            switch state {
            case .ready: return
            case .stopped: throw .shutDown
            default: break
            }
            if clock.now >= deadline {
                // The last attempt's error, even when the deadline falls during the next attempt.
                if let error = shared.withLock({ $0.lastConnectError }) { throw error }
                throw .timeout("waiting for the client to become ready")
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    // MARK: commands

    private func enqueue(_ command: Command) -> Bool {
        let wake = shared.withLock { s -> Bool? in
            guard s.accepting else { return nil }
            s.commands.append(command)
            defer { s.wakePending = true }
            return !s.wakePending
        }
        guard let wake else { return false }
        if wake { wakeUp() }
        return true
    }

    func wakeUp() {
        var byte: UInt8 = 1
        _ = write(wakeWriteFD, &byte, 1)
    }

    /// Acknowledges `message` (and, with `multiple`, every earlier one on its channel).
    public func ack(_ message: AMQPDelivery, multiple: Bool = false,
                    onComplete: @escaping @Sendable (AMQPSettleResult) -> Void) {
        settle(message, .ack(multiple: multiple), onComplete)
    }

    /// Negatively acknowledges `message`: back to the queue with `requeue`, else dead-lettered or dropped.
    public func nack(_ message: AMQPDelivery, multiple: Bool = false, requeue: Bool,
                     onComplete: @escaping @Sendable (AMQPSettleResult) -> Void) {
        settle(message, .nack(multiple: multiple, requeue: requeue), onComplete)
    }

    /// Rejects `message`: back to the queue with `requeue`, else dead-lettered or dropped.
    public func reject(_ message: AMQPDelivery, requeue: Bool, onComplete: @escaping @Sendable (AMQPSettleResult) -> Void) {
        settle(message, .reject(requeue: requeue), onComplete)
    }

    /// Acknowledges `message`; returns once the I/O thread has sent it (or found it stale).
    @discardableResult
    public func ack(_ message: AMQPDelivery, multiple: Bool = false) async -> AMQPSettleResult {
        await withCheckedContinuation { c in ack(message, multiple: multiple) { c.resume(returning: $0) } }
    }

    /// Negatively acknowledges `message`; see `nack(_:multiple:requeue:onComplete:)`.
    @discardableResult
    public func nack(_ message: AMQPDelivery, multiple: Bool = false, requeue: Bool) async -> AMQPSettleResult {
        await withCheckedContinuation { c in nack(message, multiple: multiple, requeue: requeue) { c.resume(returning: $0) } }
    }

    /// Rejects `message`; see `reject(_:requeue:onComplete:)`.
    @discardableResult
    public func reject(_ message: AMQPDelivery, requeue: Bool) async -> AMQPSettleResult {
        await withCheckedContinuation { c in reject(message, requeue: requeue) { c.resume(returning: $0) } }
    }

    private func settle(_ m: AMQPDelivery, _ kind: SettleKind, _ done: @escaping @Sendable (AMQPSettleResult) -> Void) {
        let cmd = Command.settle(connectionID: m.connectionID, channel: m.channel, tag: m.deliveryTag, kind, done)
        if !enqueue(cmd) { done(.failed(.shutDown)) }
    }

    /// Publishes `message` and calls `onComplete` once the broker confirmed it (`.success`), nacked it
    /// (`.publishNacked`), returned it (`.publishReturned`, mandatory only), or the connection was lost first.
    public func publish(_ message: AMQPOutgoingMessage,
                        onComplete: @escaping @Sendable (Result<Void, AMQPError>) -> Void) {
        if !enqueue(.publish(message, onComplete)) { onComplete(.failure(.shutDown)) }
    }

    /// Publishes `message` and returns once the broker has confirmed it.
    /// - Throws: `.publishNacked`, `.publishReturned`, `.notConnected`, `.connectionLost`, `.timeout`, `.shutDown`.
    public func publish(_ message: AMQPOutgoingMessage) async throws(AMQPError) {
        let result = await withCheckedContinuation { (c: CheckedContinuation<Result<Void, AMQPError>, Never>) in
            publish(message) { c.resume(returning: $0) }
        }
        try result.get()
    }

    /// Checks a queue with a passive declare on a separate channel: its message and consumer counts, or
    /// `.channelClosed` with 404 when it does not exist. The client's main channel is not affected.
    public func queueStatus(_ queue: String) async throws(AMQPError) -> AMQPQueueStatus {
        let result = await withCheckedContinuation { (c: CheckedContinuation<Result<AMQPQueueStatus, AMQPError>, Never>) in
            if !enqueue(.queueStatus(queue, { c.resume(returning: $0) })) { c.resume(returning: .failure(.shutDown)) }
        }
        return try result.get()
    }

    /// Cancels the consumer (`basic.cancel`) and keeps it off after reconnections. Messages the broker sent
    /// before the cancel took effect are requeued, never yielded. Returns once the broker confirmed the cancel
    /// (or at once when disconnected).
    public func stopConsuming() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            if !enqueue(.stopConsuming({ c.resume() })) { c.resume() }
        }
    }

    /// Stops the client: cancels the consumer, runs the commands already queued, waits (up to
    /// `options.shutdownTimeout`) for outstanding publisher confirms, closes channel and connection, finishes
    /// `messages`. Unacknowledged messages go back to the queue. Later commands fail with `.shutDown`.
    public func shutdown() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let resumeNow = shared.withLock { s -> Bool in
                if s.state == .stopped { return true }
                s.accepting = false
                s.stopRequested = true
                if s.state == .idle {
                    s.state = .stopped
                    return true
                }
                s.stopWaiters.append(c)
                return false
            }
            if resumeNow {
                continuation.finish()
                c.resume()
            } else {
                wakeUp()
            }
        }
    }
}

// MARK: - The I/O thread

/// Everything the I/O thread owns. Created and used only on that thread.
final class IOLoop {
    let client: AMQPClient
    var logger: Logger
    var connection: AMQPConnection?
    var channel: AMQPChannel?
    var sideChannel: AMQPChannel?
    var consumerTag: String?
    var pending: [UInt64: PendingPublish] = [:]
    var nextTimeoutCheck = ContinuousClock.now
    let clock = ContinuousClock()

    struct PendingPublish {
        let message: AMQPOutgoingMessage
        let deadline: ContinuousClock.Instant
        let reply: @Sendable (Result<Void, AMQPError>) -> Void
        var returned: (code: UInt16, text: String)?
    }

    init(client: AMQPClient) {
        self.client = client
        self.logger = client.logger
    }

    private func emit(_ event: AMQPClientEvent) { client.onEvent?(event) }

    private func setState(_ state: AMQPClientState, connectionID: UInt64?) {
        client.shared.withLock {
            if $0.state != .stopped { $0.state = state }
            $0.connectionID = connectionID
            switch state {
            case .reconnecting(_, _, let error): $0.lastConnectError = error
            case .ready: $0.lastConnectError = nil
            default: break
            }
        }
    }

    private var stopRequested: Bool { client.shared.withLock { $0.stopRequested } }

    func run() {
        var attempt = 0
        while !stopRequested {
            do {
                setState(.connecting, connectionID: nil)
                try connect()
                attempt = 0
                try serve()
                break
            } catch {
                let wasConnected = connection.map { $0.id == client.connectionID } ?? false
                teardown(error)
                if wasConnected {
                    logger.warning("AMQP connection lost: \(error)")
                    emit(.connectionLost(error))
                }
                if stopRequested { break }
                attempt += 1
                let delay = client.options.reconnect.delay(attempt: attempt)
                logger.info("AMQP reconnect attempt \(attempt) in \(delay): \(error)")
                setState(.reconnecting(attempt: attempt, delay: delay, error: error), connectionID: nil)
                emit(.reconnectScheduled(attempt: attempt, delay: delay, error: error))
                waitWhileDisconnected(until: clock.now + delay)
            }
        }
        finish()
    }

    /// Connects, declares the topology, enables confirms, starts the consumer.
    private func connect() throws(AMQPError) {
        let conn = try AMQPConnection(configuration: client.configuration)
        connection = conn
        logger[metadataKey: "amqpConnection"] = "\(conn.id)"
        let ch = try conn.openChannel()
        channel = ch
        try ch.declare(client.topology)
        try ch.enableConfirms()
        if let consumer = client.consumer, client.shared.withLock({ $0.consumingWanted }) {
            try ch.qos(prefetchCount: consumer.prefetch)
            consumerTag = try ch.consume(queue: consumer.queue, consumerTag: consumer.consumerTag,
                                         exclusive: consumer.exclusive, arguments: consumer.arguments)
        }
        setState(.ready, connectionID: conn.id)
        let consuming = consumerTag.map { " consumer \($0)" } ?? ""
        logger.info("AMQP ready: \(client.configuration), negotiated heartbeat \(conn.negotiatedHeartbeat)s\(consuming)")
        emit(.ready(connectionID: conn.id))
    }

    /// Serves the live connection until shutdown (returns) or a failure (throws).
    private func serve() throws(AMQPError) {
        guard let conn = connection else { throw AMQPError.notConnected }
        var fds = [pollfd(fd: conn.socketDescriptor, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: client.wakeReadFD, events: Int16(POLLIN), revents: 0)]
        while true {
            try runCommands()
            if stopRequested {
                try gracefulClose()
                return
            }
            expireConfirms()
            // Read what has arrived. rabbitmq-c also sends heartbeats and notices missing ones in here, so this
            // runs at least every 250 ms (the poll timeout below) whatever the callers are doing.
            var handled = 0
            while handled < 512, let event = try conn.nextEvent(timeout: .zero) {
                try handle(event)
                handled += 1
                if client.shared.withLock({ $0.wakePending }) { break }
            }
            if handled > 0 && conn.hasBufferedInput { continue }
            if client.shared.withLock({ $0.wakePending }) { continue }
            fds[0].revents = 0
            fds[1].revents = 0
            _ = poll(&fds, 2, 250)
        }
    }

    private func drainWakePipe() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(client.wakeReadFD, &buffer, buffer.count) > 0 {}
    }

    private func takeCommands() -> [Command] {
        drainWakePipe()
        return client.shared.withLock { s in
            s.wakePending = false
            defer { s.commands.removeAll(keepingCapacity: true) }
            return s.commands
        }
    }

    typealias Command = AMQPClient.Command

    private func runCommands() throws(AMQPError) {
        for command in takeCommands() {
            try execute(command)
        }
    }

    private func execute(_ command: Command) throws(AMQPError) {
        guard let conn = connection, let ch = channel else {
            failDisconnected(command)
            return
        }
        switch command {
        case let .settle(connectionID, channelID, tag, kind, reply):
            guard connectionID == conn.id, channelID == ch.id else {
                reply(.stale)
                return
            }
            do {
                switch kind {
                case .ack(let multiple): try ch.ack(deliveryTag: tag, multiple: multiple)
                case let .nack(multiple, requeue): try ch.nack(deliveryTag: tag, multiple: multiple, requeue: requeue)
                case .reject(let requeue): try ch.reject(deliveryTag: tag, requeue: requeue)
                }
                reply(.sent)
            } catch {
                reply(.failed(error))
                throw error
            }
        case let .publish(message, reply):
            do {
                let seq = try ch.publish(message)
                pending[seq] = PendingPublish(message: message, deadline: clock.now + client.options.publishConfirmTimeout,
                                              reply: reply)
            } catch {
                reply(.failure(error))
                throw error
            }
        case let .queueStatus(name, reply):
            do {
                if sideChannel?.isOpen != true { sideChannel = try conn.openChannel() }
                let status = try sideChannel!.declareQueue(AMQPQueueSpec(name: name, passive: true))
                reply(.success(status))
            } catch {
                reply(.failure(error))
                if case .channelClosed = error { sideChannel = nil } else { throw error }
            }
        case .stopConsuming(let reply):
            client.shared.withLock { $0.consumingWanted = false }
            defer { reply() }
            if let tag = consumerTag {
                consumerTag = nil
                try ch.cancel(consumerTag: tag)
                logger.info("AMQP consumer \(tag) cancelled")
                setState(.ready, connectionID: conn.id)
            }
        }
    }

    /// Answers a command when there is no connection.
    private func failDisconnected(_ command: Command) {
        switch command {
        case .settle(_, _, _, _, let reply): reply(.stale)
        case .publish(_, let reply): reply(.failure(.notConnected))
        case .queueStatus(_, let reply): reply(.failure(.notConnected))
        case .stopConsuming(let reply):
            client.shared.withLock { $0.consumingWanted = false }
            reply()
        }
    }

    private func handle(_ event: AMQPEvent) throws(AMQPError) {
        switch event {
        case .delivery(let delivery):
            if consumerTag != nil, delivery.consumerTag == consumerTag {
                client.continuation.yield(delivery)
            } else if let ch = channel, delivery.channel == ch.id {
                // Sent before our basic.cancel took effect: give it back to the queue.
                try ch.nack(deliveryTag: delivery.deliveryTag, multiple: false, requeue: true)
            }
        case let .publishConfirm(ch, sequence, multiple, acked):
            guard ch == channel?.id else { return }
            let done = multiple ? pending.keys.filter { $0 <= sequence } : (pending[sequence] == nil ? [] : [sequence])
            for seq in done.sorted() {
                guard let p = pending.removeValue(forKey: seq) else { continue }
                if !acked {
                    p.reply(.failure(.publishNacked))
                } else if let r = p.returned {
                    p.reply(.failure(.publishReturned(code: r.code, text: r.text)))
                } else {
                    p.reply(.success(()))
                }
            }
        case .returned(let message):
            // The broker sends basic.return before the confirm of the same publish: mark the oldest match.
            let match = pending.filter {
                $0.value.message.mandatory && $0.value.returned == nil && $0.value.message.exchange == message.exchange
                    && $0.value.message.routingKey == message.routingKey
                    && $0.value.message.properties.messageId == message.properties.messageId
            }.keys.min()
            if let match { pending[match]?.returned = (message.replyCode, message.replyText) }
            emit(.returned(message))
        case .consumerCancelled(_, let tag):
            guard tag == consumerTag else { return }
            logger.warning("AMQP consumer \(tag) cancelled by the broker; reconnecting to restore it")
            emit(.consumerCancelled(consumerTag: tag))
            throw AMQPError.consumerCancelled(consumerTag: tag)
        case .channelClosed(let ch, let error):
            if ch == channel?.id { throw error }
            if ch == sideChannel?.id { sideChannel = nil }
        case .blocked(let reason):
            logger.warning("AMQP connection blocked by the broker: \(reason)")
            emit(.blocked(reason: reason))
        case .unblocked:
            logger.info("AMQP connection unblocked")
            emit(.unblocked)
        }
    }

    private func expireConfirms() {
        let now = clock.now
        guard !pending.isEmpty, now >= nextTimeoutCheck else { return }
        nextTimeoutCheck = now + .milliseconds(100)
        for (seq, p) in pending where p.deadline <= now {
            pending[seq] = nil
            p.reply(.failure(.timeout("publisher confirm after \(client.options.publishConfirmTimeout)")))
        }
    }

    /// Shutdown on a live connection: cancel, finish queued commands, wait for confirms, close.
    private func gracefulClose() throws(AMQPError) {
        guard let conn = connection, let ch = channel else { return }
        if let tag = consumerTag {
            consumerTag = nil
            try ch.cancel(consumerTag: tag)
        }
        try runCommands()
        let deadline = clock.now + client.options.shutdownTimeout
        while !pending.isEmpty, clock.now < deadline {
            if let event = try conn.nextEvent(timeout: .milliseconds(50)) { try handle(event) }
        }
        for (_, p) in pending { p.reply(.failure(.timeout("publisher confirm before shutdown"))) }
        pending.removeAll()
        ch.close()
        conn.close()
        connection = nil
        channel = nil
        sideChannel = nil
        logger.info("AMQP connection closed")
    }

    /// Drops a broken connection: pending confirms fail, deliveries from it become stale.
    private func teardown(_ error: AMQPError) {
        let lost: AMQPError
        if case .connectionLost = error { lost = error } else { lost = .connectionLost(error.description) }
        for (_, p) in pending { p.reply(.failure(lost)) }
        pending.removeAll()
        connection?.close()
        connection = nil
        channel = nil
        sideChannel = nil
        consumerTag = nil
        setState(.connecting, connectionID: nil)
    }

    /// Waits for the reconnect delay, answering commands as disconnected; returns early on shutdown.
    private func waitWhileDisconnected(until deadline: ContinuousClock.Instant) {
        var fd = pollfd(fd: client.wakeReadFD, events: Int16(POLLIN), revents: 0)
        while !stopRequested {
            for command in takeCommands() { failDisconnected(command) }
            let left = deadline - clock.now
            if left <= .zero || stopRequested { return }
            let ms = Int32(min(AMQPReconnectPolicy.seconds(left) * 1000 + 1, 1000))
            fd.revents = 0
            _ = poll(&fd, 1, ms)
        }
    }

    private func finish() {
        if let conn = connection {
            conn.close()
            connection = nil
        }
        let waiters = client.shared.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.accepting = false
            s.state = .stopped
            s.connectionID = nil
            defer { s.stopWaiters.removeAll() }
            return s.stopWaiters
        }
        for command in takeCommands() {
            switch command {
            case .settle(_, _, _, _, let reply): reply(.failed(.shutDown))
            case .publish(_, let reply): reply(.failure(.shutDown))
            case .queueStatus(_, let reply): reply(.failure(.shutDown))
            case .stopConsuming(let reply): reply()
            }
        }
        client.continuation.finish()
        emit(.stopped)
        for w in waiters { w.resume() }
    }
}
