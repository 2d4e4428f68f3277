/// AMQP reply codes the broker uses in `connection.close` and `channel.close` (AMQP 0-9-1 §1.9).
public enum AMQPReplyCode {
    /// 320: the broker closed the connection on purpose (e.g. `rabbitmqctl close_connection`).
    public static let connectionForced: UInt16 = 320
    /// 403: authentication failed, or no permission on the resource.
    public static let accessRefused: UInt16 = 403
    /// 404: the exchange or queue does not exist.
    public static let notFound: UInt16 = 404
    /// 405: exclusive queue in use by another connection.
    public static let resourceLocked: UInt16 = 405
    /// 406: the request contradicts the current state (e.g. declare with different arguments, unknown delivery tag).
    public static let preconditionFailed: UInt16 = 406
    /// 530: not allowed (e.g. unknown virtual host).
    public static let notAllowed: UInt16 = 530
}

/// Every failure of the AMQP module. Messages never contain passwords.
public enum AMQPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The AMQP URL could not be parsed.
    case invalidURL(String)
    /// A setting is out of range or inconsistent.
    case invalidConfiguration(String)
    /// The TCP (or TLS) connection could not be opened: refused, unreachable, DNS failure, TLS handshake.
    case connectionFailed(host: String, port: Int, reason: String)
    /// The broker refused the credentials (reply 403 ACCESS_REFUSED during login).
    case authenticationFailed(username: String, replyText: String)
    /// The broker closed the connection (`connection.close`), e.g. 320 CONNECTION_FORCED or 530 NOT_ALLOWED.
    case connectionClosed(code: UInt16, text: String)
    /// The broker closed a channel (`channel.close`), e.g. 404 NOT_FOUND for a passive declare of a missing queue.
    case channelClosed(channel: UInt16, code: UInt16, text: String)
    /// The socket broke, the peer went away, or heartbeats stopped arriving.
    case connectionLost(String)
    /// An operation did not finish in time.
    case timeout(String)
    /// The broker cancelled the consumer (`basic.cancel`), e.g. because its queue was deleted.
    case consumerCancelled(consumerTag: String)
    /// The broker answered a publish with `basic.nack`: it did not take responsibility for the message.
    case publishNacked
    /// A mandatory publish could not be routed to any queue (`basic.return`).
    case publishReturned(code: UInt16, text: String)
    /// The operation needs an open connection (or channel) and there is none right now.
    case notConnected
    /// The client has been shut down.
    case shutDown
    /// The connection or channel was used against the protocol (a bug in the caller).
    case protocolViolation(String)
    /// Any other rabbitmq-c status code, with its message.
    case library(operation: String, status: Int32, message: String)

    public var description: String {
        switch self {
        case .invalidURL(let reason): return "invalid AMQP URL: \(reason)"
        case .invalidConfiguration(let reason): return "invalid AMQP configuration: \(reason)"
        case let .connectionFailed(host, port, reason): return "cannot connect to AMQP broker at \(host):\(port): \(reason)"
        case let .authenticationFailed(user, text): return "AMQP authentication failed for user '\(user)' (403 ACCESS_REFUSED): \(text)"
        case let .connectionClosed(code, text): return "AMQP connection closed by broker: \(code) \(text)"
        case let .channelClosed(channel, code, text): return "AMQP channel \(channel) closed by broker: \(code) \(text)"
        case .connectionLost(let reason): return "AMQP connection lost: \(reason)"
        case .timeout(let operation): return "AMQP timeout: \(operation)"
        case .consumerCancelled(let tag): return "AMQP consumer '\(tag)' cancelled by broker"
        case .publishNacked: return "AMQP publish was nacked by the broker"
        case let .publishReturned(code, text): return "AMQP publish returned unroutable: \(code) \(text)"
        case .notConnected: return "AMQP client is not connected"
        case .shutDown: return "AMQP client is shut down"
        case .protocolViolation(let reason): return "AMQP protocol violation: \(reason)"
        case let .library(operation, status, message): return "AMQP \(operation) failed: \(message) (status \(status))"
        }
    }

    /// The broker's reply code for errors that carry one (`connection.close`, `channel.close`, return, auth).
    public var replyCode: UInt16? {
        switch self {
        case .connectionClosed(let code, _), .channelClosed(_, let code, _), .publishReturned(let code, _): return code
        case .authenticationFailed: return AMQPReplyCode.accessRefused
        default: return nil
        }
    }

    /// True when the error means the whole connection is unusable and must be re-established.
    public var isConnectionLevel: Bool {
        switch self {
        case .connectionFailed, .authenticationFailed, .connectionClosed, .connectionLost, .timeout, .library:
            return true
        default:
            return false
        }
    }
}
