import CAMQP
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Something the broker sent that is not the answer to a request: read with `AMQPConnection.nextEvent(timeout:)`.
public enum AMQPEvent: Sendable {
    /// A message for one of this connection's consumers.
    case delivery(AMQPDelivery)
    /// A publisher confirm: the broker took (`acked`) or refused (`!acked`) the publish with this sequence
    /// number, or with every sequence number up to it when `multiple`.
    case publishConfirm(channel: UInt16, sequence: UInt64, multiple: Bool, acked: Bool)
    /// A mandatory publish that no queue took.
    case returned(AMQPReturnedMessage)
    /// The broker cancelled a consumer (e.g. its queue was deleted). Its channel stays open.
    case consumerCancelled(channel: UInt16, consumerTag: String)
    /// The broker closed a channel (already answered with `channel.close-ok`); the connection stays open.
    case channelClosed(channel: UInt16, error: AMQPError)
    /// The broker stopped reading from this connection (resource alarm).
    case blocked(reason: String)
    /// The broker reads from this connection again.
    case unblocked
}

/// Method ids (class << 16 | method) of AMQP 0-9-1, as in amqp_framing.h.
enum AMQPMethod {
    static let connectionClose: UInt32 = 0x000A_0032
    static let connectionCloseOk: UInt32 = 0x000A_0033
    static let connectionBlocked: UInt32 = 0x000A_003C
    static let connectionUnblocked: UInt32 = 0x000A_003D
    static let channelClose: UInt32 = 0x0014_0028
    static let channelCloseOk: UInt32 = 0x0014_0029
    static let basicCancel: UInt32 = 0x003C_001E
    static let basicReturn: UInt32 = 0x003C_0032
    static let basicAck: UInt32 = 0x003C_0050
    static let basicNack: UInt32 = 0x003C_0078
    static let basicGetOk: UInt32 = 0x003C_0047
}

private let connectionIDs = Locked<UInt64>(0)

/// `close(2)`, out of reach of the classes' own `close()` methods.
func closeDescriptor(_ fd: Int32) { _ = close(fd) }

func makeTimeval(_ d: Duration) -> timeval {
    let c = d.components
    let usec = max(0, c.attoseconds / 1_000_000_000_000)
    return timeval(tv_sec: max(0, Int(c.seconds)), tv_usec: .init(usec))
}

/// One AMQP connection (rabbitmq-c `amqp_connection_state_t`), synchronous.
///
/// Not thread-safe, like rabbitmq-c itself: create it, use it and close it on one thread. rabbitmq-c sends
/// and checks heartbeats only while a call is inside the library, so a consumer must call
/// `nextEvent(timeout:)` at least every heartbeat/2 seconds. `AMQPClient` does all of that on its own thread.
public final class AMQPConnection {
    /// Unique within the process; stamped on every delivery (`AMQPDelivery.connectionID`).
    public let id: UInt64
    /// What the connection was opened with.
    public let configuration: AMQPConfiguration
    /// The heartbeat interval agreed with the broker, in seconds (0: none).
    public private(set) var negotiatedHeartbeat: Int = 0
    /// The broker's `connection.start` properties (product, version, capabilities, …).
    public private(set) var serverProperties: AMQPTable = [:]
    /// Why the connection is no longer usable, once it is not.
    public private(set) var closeReason: AMQPError?

    private var state: amqp_connection_state_t?
    private var channels: [UInt16: AMQPChannel] = [:]
    private var nextChannelID: UInt16 = 1
    private var pendingEvents: [AMQPEvent] = []
    private var pendingHead = 0

    /// Opens the socket (TCP or TLS), logs in with PLAIN and opens the virtual host.
    ///
    /// - Throws: `.connectionFailed` (refused, unreachable, TLS), `.authenticationFailed` (403),
    ///   `.connectionClosed` (e.g. 530 for an unknown vhost), `.timeout`.
    public init(configuration: AMQPConfiguration) throws(AMQPError) {
        self.configuration = configuration
        self.id = connectionIDs.withLock { $0 += 1; return $0 }
        let config = configuration
        guard let st = amqp_new_connection() else {
            throw .library(operation: "amqp_new_connection", status: -1, message: "out of memory")
        }
        state = st
        func fail(_ e: AMQPError) -> AMQPError {
            amqp_destroy_connection(st)
            state = nil
            closeReason = e
            return e
        }
        let socket: OpaquePointer?
        if config.useTLS {
            socket = amqp_ssl_socket_new(st)
            guard let socket else { throw fail(.connectionFailed(host: config.host, port: config.port, reason: "cannot create TLS socket")) }
            if let ca = config.tls.caCertificateFile {
                let rc = amqp_ssl_socket_set_cacert(socket, ca)
                if rc != AMQP_STATUS_OK.rawValue {
                    throw fail(.connectionFailed(host: config.host, port: config.port,
                                                 reason: "cannot load CA file \(ca): \(Self.statusText(rc))"))
                }
            }
            if let cert = config.tls.clientCertificateFile {
                guard let key = config.tls.clientKeyFile else {
                    throw fail(.invalidConfiguration("a TLS client certificate needs a key file"))
                }
                let rc = amqp_ssl_socket_set_key(socket, cert, key)
                if rc != AMQP_STATUS_OK.rawValue {
                    throw fail(.connectionFailed(host: config.host, port: config.port,
                                                 reason: "cannot load client certificate \(cert): \(Self.statusText(rc))"))
                }
            }
            amqp_ssl_socket_set_verify_peer(socket, config.tls.verifyPeer ? 1 : 0)
            amqp_ssl_socket_set_verify_hostname(socket, config.tls.verifyHostname ? 1 : 0)
        } else {
            socket = amqp_tcp_socket_new(st)
            guard socket != nil else { throw fail(.connectionFailed(host: config.host, port: config.port, reason: "cannot create socket")) }
        }
        var connectTV = makeTimeval(config.connectTimeout)
        errno = 0
        let rc = amqp_socket_open_noblock(socket, config.host, Int32(config.port), &connectTV)
        if rc != AMQP_STATUS_OK.rawValue {
            let err = errno
            var reason = Self.statusText(rc)
            if rc == AMQP_STATUS_SOCKET_ERROR.rawValue {
                // rabbitmq-c drops the connect errno; ask the socket ourselves for a useful reason.
                reason = Self.probeTCP(host: config.host, port: config.port, timeout: config.connectTimeout)
                    ?? (err != 0 && err != EINPROGRESS ? String(cString: strerror(err)).lowercased() : reason)
            } else if rc == AMQP_STATUS_TIMEOUT.rawValue || rc == AMQP_STATUS_SOCKET_INUSE.rawValue {
                reason = "timed out after \(config.connectTimeout)"
            }
            throw fail(.connectionFailed(host: config.host, port: config.port, reason: reason))
        }
        _ = amqp_set_handshake_timeout(st, &connectTV)
        var rpcTV = makeTimeval(config.rpcTimeout)
        _ = amqp_set_rpc_timeout(st, &rpcTV)

        let arena = CArena()
        // consumer_cancel_notify: without it the broker cancels a consumer silently (queue deleted).
        var clientProperties: AMQPTable = [
            "product": "myroom-3d AMQP (rabbitmq-c)",
            "capabilities": ["consumer_cancel_notify": true, "publisher_confirms": true, "basic.nack": true,
                             "connection.blocked": true, "authentication_failure_close": true,
                             "exchange_exchange_bindings": true],
        ]
        if let name = config.connectionName { clientProperties["connection_name"] = .string(name) }
        var table = arena.table(clientProperties)
        let reply = mr_amqp_login_plain_with_properties(st, config.virtualHost, Int32(config.channelMax),
                                                        Int32(config.frameMax), Int32(config.heartbeat), &table,
                                                        config.username, config.password)
        withExtendedLifetime(arena) {}
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            break
        case AMQP_RESPONSE_SERVER_EXCEPTION where reply.reply.id == AMQPMethod.connectionClose:
            let close = reply.reply.decoded!.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            let code = close.reply_code
            let text = close.reply_text.string
            var ok = amqp_connection_close_ok_t()
            _ = amqp_send_method(st, 0, AMQPMethod.connectionCloseOk, &ok)
            if code == AMQPReplyCode.accessRefused {
                throw fail(.authenticationFailed(username: config.username, replyText: text))
            }
            throw fail(.connectionClosed(code: code, text: text))
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            let status = reply.library_error
            if status == AMQP_STATUS_TIMEOUT.rawValue {
                throw fail(.timeout("login to \(config.host):\(config.port)"))
            }
            // Brokers without the authentication_failure_close capability just drop the socket.
            throw fail(.connectionFailed(host: config.host, port: config.port,
                                         reason: "login failed: \(Self.statusText(status))"))
        default:
            throw fail(.protocolViolation("unexpected reply to login"))
        }
        negotiatedHeartbeat = Int(amqp_get_heartbeat(st))
        if let props = amqp_get_server_properties(st) { serverProperties = props.pointee.swiftTable }
    }

    deinit {
        close()
    }

    /// True until the connection is closed, by `close()`, by the broker or by a network failure.
    public var isOpen: Bool { state != nil && closeReason == nil }

    /// The socket, for `poll(2)` in an event loop; -1 when closed.
    public var socketDescriptor: Int32 {
        guard let state, closeReason == nil else { return -1 }
        return amqp_get_sockfd(state)
    }

    /// True when events can be read without waiting for the socket (frames or bytes already received).
    public var hasBufferedInput: Bool {
        guard let state, closeReason == nil else { return false }
        return pendingHead < pendingEvents.count || amqp_frames_enqueued(state) != 0 || amqp_data_in_buffer(state) != 0
    }

    /// Opens a new channel (numbers are not reused while the connection lives).
    public func openChannel() throws(AMQPError) -> AMQPChannel {
        let st = try liveState()
        let id = nextChannelID
        let channelMax = Int(amqp_get_channel_max(st))  // negotiated; 0 means 65535
        guard id != 0, channelMax == 0 || Int(id) <= channelMax else {
            throw .protocolViolation("out of channel numbers (channel max \(channelMax))")
        }
        nextChannelID &+= 1
        _ = amqp_channel_open(st, id)
        try check(amqp_get_rpc_reply(st), "channel.open", channel: id)
        let channel = AMQPChannel(connection: self, id: id)
        channels[id] = channel
        return channel
    }

    /// Reads the next event, waiting at most `timeout` (`.zero`: only what has already arrived).
    ///
    /// Returns nil when nothing arrived in time. Heartbeats are sent and checked inside this call.
    /// Publisher confirms also update the channel's bookkeeping (`AMQPChannel.waitForConfirm`).
    /// - Throws: `.connectionClosed` when the broker closes the connection (answered with close-ok),
    ///   `.connectionLost` on socket failure or missed heartbeats. After that `isOpen` is false.
    public func nextEvent(timeout: Duration) throws(AMQPError) -> AMQPEvent? {
        if pendingHead < pendingEvents.count {
            let e = pendingEvents[pendingHead]
            pendingHead += 1
            if pendingHead == pendingEvents.count { pendingEvents.removeAll(keepingCapacity: true); pendingHead = 0 }
            return e
        }
        return try readEvent(timeout: timeout)
    }

    /// Reads one event from rabbitmq-c without looking at the queue of put-aside events.
    func readEvent(timeout: Duration) throws(AMQPError) -> AMQPEvent? {
        let st = try liveState()
        amqp_maybe_release_buffers(st)
        var envelope = amqp_envelope_t()
        var tv = makeTimeval(timeout)
        let reply = amqp_consume_message(st, &envelope, &tv, 0)
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            defer { amqp_destroy_envelope(&envelope) }
            let delivery = AMQPDelivery(
                connectionID: id, channel: envelope.channel, deliveryTag: envelope.delivery_tag,
                redelivered: envelope.redelivered != 0, exchange: envelope.exchange.string,
                routingKey: envelope.routing_key.string, consumerTag: envelope.consumer_tag.string,
                properties: AMQPProperties(envelope.message.properties), body: envelope.message.body.array)
            return .delivery(delivery)
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            let status = reply.library_error
            if status == AMQP_STATUS_TIMEOUT.rawValue { return nil }
            if status == AMQP_STATUS_UNEXPECTED_STATE.rawValue { return try readOtherFrame(st) }
            throw lost(status, "reading from the broker")
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            try check(reply, "consume", channel: 0)
            return nil
        default:
            throw markClosed(.protocolViolation("no reply from amqp_consume_message"))
        }
    }

    /// A frame that is not a delivery: confirms, returns, cancels, close frames, flow control.
    private func readOtherFrame(_ st: amqp_connection_state_t) throws(AMQPError) -> AMQPEvent? {
        var frame = amqp_frame_t()
        var tv = makeTimeval(.zero)
        let rc = amqp_simple_wait_frame_noblock(st, &frame, &tv)
        if rc == AMQP_STATUS_TIMEOUT.rawValue { return nil }
        guard rc == AMQP_STATUS_OK.rawValue else { throw lost(rc, "reading a frame") }
        guard frame.frame_type == UInt8(AMQP_FRAME_METHOD) else { return nil }  // stray header/body frame
        let method = frame.payload.method
        let ch = frame.channel
        switch method.id {
        case AMQPMethod.basicAck:
            let m = method.decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
            channels[ch]?.confirmed(m.delivery_tag, multiple: m.multiple != 0, acked: true)
            return .publishConfirm(channel: ch, sequence: m.delivery_tag, multiple: m.multiple != 0, acked: true)
        case AMQPMethod.basicNack:
            let m = method.decoded.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
            channels[ch]?.confirmed(m.delivery_tag, multiple: m.multiple != 0, acked: false)
            return .publishConfirm(channel: ch, sequence: m.delivery_tag, multiple: m.multiple != 0, acked: false)
        case AMQPMethod.basicReturn:
            let m = method.decoded.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
            let code = m.reply_code, text = m.reply_text.string
            let exchange = m.exchange.string, key = m.routing_key.string
            var message = amqp_message_t()
            let r = amqp_read_message(st, ch, &message, 0)
            guard r.reply_type == AMQP_RESPONSE_NORMAL else { throw lost(r.library_error, "reading a returned message") }
            defer { amqp_destroy_message(&message) }
            return .returned(AMQPReturnedMessage(channel: ch, replyCode: code, replyText: text, exchange: exchange,
                                                 routingKey: key, properties: AMQPProperties(message.properties),
                                                 body: message.body.array))
        case AMQPMethod.basicCancel:
            let m = method.decoded.assumingMemoryBound(to: amqp_basic_cancel_t.self).pointee
            return .consumerCancelled(channel: ch, consumerTag: m.consumer_tag.string)
        case AMQPMethod.channelClose:
            let m = method.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            let error = AMQPError.channelClosed(channel: ch, code: m.reply_code, text: m.reply_text.string)
            var ok = amqp_channel_close_ok_t()
            _ = amqp_send_method(st, ch, AMQPMethod.channelCloseOk, &ok)
            channelDidClose(ch, error)
            return .channelClosed(channel: ch, error: error)
        case AMQPMethod.connectionClose:
            let m = method.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            var ok = amqp_connection_close_ok_t()
            _ = amqp_send_method(st, 0, AMQPMethod.connectionCloseOk, &ok)
            throw markClosed(.connectionClosed(code: m.reply_code, text: m.reply_text.string))
        case AMQPMethod.connectionBlocked:
            let m = method.decoded.assumingMemoryBound(to: amqp_connection_blocked_t.self).pointee
            return .blocked(reason: m.reason.string)
        case AMQPMethod.connectionUnblocked:
            return .unblocked
        default:
            return nil
        }
    }

    /// Closes every channel and the connection (politely when it is still open), then frees it. Idempotent.
    public func close() {
        guard let st = state else { return }
        if closeReason == nil {
            _ = amqp_connection_close(st, Int32(AMQP_REPLY_SUCCESS))
        }
        amqp_destroy_connection(st)
        state = nil
        if closeReason == nil { closeReason = .notConnected }
        for (_, c) in channels { c.markClosed(closeReason!) }
        channels.removeAll()
    }

    // MARK: internals shared with AMQPChannel

    func liveState() throws(AMQPError) -> amqp_connection_state_t {
        if let closeReason { throw closeReason }
        guard let state else { throw AMQPError.notConnected }
        return state
    }

    func putAside(_ event: AMQPEvent) { pendingEvents.append(event) }

    func channelDidClose(_ id: UInt16, _ error: AMQPError) {
        channels[id]?.markClosed(error)
        channels[id] = nil
    }

    @discardableResult
    func markClosed(_ error: AMQPError) -> AMQPError {
        if closeReason == nil { closeReason = error }
        for (_, c) in channels { c.markClosed(error) }
        channels.removeAll()
        return error
    }

    func lost(_ status: Int32, _ what: String) -> AMQPError {
        if status == AMQP_STATUS_HEARTBEAT_TIMEOUT.rawValue {
            return markClosed(.connectionLost("no heartbeat from the broker"))
        }
        if status == AMQP_STATUS_TIMEOUT.rawValue {
            return markClosed(.timeout(what))
        }
        return markClosed(.connectionLost("\(what): \(Self.statusText(status))"))
    }

    /// Turns an RPC reply into a thrown error, answering close frames and updating state.
    func check(_ reply: amqp_rpc_reply_t, _ operation: String, channel: UInt16) throws(AMQPError) {
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            throw lost(reply.library_error, operation)
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            guard let st = state else { throw AMQPError.notConnected }
            if reply.reply.id == AMQPMethod.channelClose {
                let m = reply.reply.decoded!.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
                let error = AMQPError.channelClosed(channel: channel, code: m.reply_code, text: m.reply_text.string)
                var ok = amqp_channel_close_ok_t()
                _ = amqp_send_method(st, channel, AMQPMethod.channelCloseOk, &ok)
                channelDidClose(channel, error)
                throw error
            }
            if reply.reply.id == AMQPMethod.connectionClose {
                let m = reply.reply.decoded!.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                var ok = amqp_connection_close_ok_t()
                _ = amqp_send_method(st, 0, AMQPMethod.connectionCloseOk, &ok)
                throw markClosed(.connectionClosed(code: m.reply_code, text: m.reply_text.string))
            }
            throw markClosed(.protocolViolation("unexpected method \(reply.reply.id) in reply to \(operation)"))
        default:
            throw markClosed(.protocolViolation("no reply to \(operation)"))
        }
    }

    /// Why a TCP connect to host:port fails (e.g. "connection refused"), or nil when it succeeds.
    static func probeTCP(host: String, port: Int, timeout: Duration) -> String? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let gai = getaddrinfo(host, String(port), &hints, &list)
        guard gai == 0, let first = list else {
            return "cannot resolve host: \(String(cString: gai_strerror(gai)))"
        }
        defer { freeaddrinfo(list) }
        var lastError: Int32 = 0
        var ai: UnsafeMutablePointer<addrinfo>? = first
        while let a = ai {
            ai = a.pointee.ai_next
            let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype, a.pointee.ai_protocol)
            guard fd >= 0 else { lastError = errno; continue }
            defer { closeDescriptor(fd) }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK)
            if connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 { return nil }
            guard errno == EINPROGRESS else { lastError = errno; continue }
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let ms = Int32(min(AMQPReconnectPolicy.seconds(timeout) * 1000, 30_000))
            guard poll(&p, 1, ms) == 1 else { lastError = ETIMEDOUT; continue }
            var soError: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len)
            if soError == 0 { return nil }
            lastError = soError
        }
        return lastError == 0 ? nil : String(cString: strerror(lastError)).lowercased()
    }

    static func statusText(_ status: Int32) -> String {
        guard let s = amqp_error_string2(status) else { return "status \(status)" }
        return String(cString: s)
    }
}
