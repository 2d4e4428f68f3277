/// What happened to an ack, nack or reject sent through `AMQPClient`.
public enum AMQPSettleResult: Sendable, Equatable {
    /// Sent to the broker on the connection the message came from.
    case sent
    /// Not sent: the message came on a connection that has been lost since. Its delivery tag means nothing
    /// (or another message) on the new connection; the broker delivers the message again (redelivered = true).
    case stale
    /// Sending failed (the connection or channel broke meanwhile, or the client is shut down).
    case failed(AMQPError)
}

/// Where an `AMQPClient` stands.
public enum AMQPClientState: Sendable, Equatable {
    /// `start()` not called yet.
    case idle
    /// Opening the connection, declaring the topology, starting the consumer.
    case connecting
    /// Connected, topology declared and (when there is a consumer spec and it was not stopped) consuming.
    case ready
    /// The connection was lost or could not be made; waiting `delay` before attempt `attempt`.
    case reconnecting(attempt: Int, delay: Duration, error: AMQPError)
    /// Shut down; the client cannot be started again.
    case stopped
}

/// Notifications from the client's I/O thread. The callback runs on that thread: keep it short, never block.
public enum AMQPClientEvent: Sendable {
    /// Connected, topology declared and consumer started on connection `connectionID`.
    case ready(connectionID: UInt64)
    /// The connection failed, the broker closed it, or the broker closed the client's channel (the client then
    /// drops the whole connection and starts over); deliveries from it are now stale.
    case connectionLost(AMQPError)
    /// A connection attempt (connect, login, topology, consume) failed; the next one follows after `delay`.
    case reconnectScheduled(attempt: Int, delay: Duration, error: AMQPError)
    /// The broker cancelled the consumer (e.g. the queue was deleted); the client reconnects to restore it.
    case consumerCancelled(consumerTag: String)
    /// A mandatory publish came back unroutable.
    case returned(AMQPReturnedMessage)
    /// The broker blocked the connection (memory or disk alarm) or unblocked it.
    case blocked(reason: String)
    case unblocked
    /// The client has shut down.
    case stopped
}

/// Capped exponential backoff with jitter between connection attempts.
public struct AMQPReconnectPolicy: Sendable, Hashable {
    /// Delay before the first retry. Default 0.5 s.
    public var initialDelay: Duration
    /// Upper bound of the delay. Default 30 s.
    public var maxDelay: Duration
    /// Growth per failed attempt. Default 2.
    public var multiplier: Double
    /// Relative jitter: each delay is multiplied by a random factor in 1 ± jitter. Default 0.2.
    public var jitter: Double

    public init(initialDelay: Duration = .milliseconds(500), maxDelay: Duration = .seconds(30),
                multiplier: Double = 2, jitter: Double = 0.2) {
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
        self.multiplier = multiplier
        self.jitter = jitter
    }

    /// The delay before attempt `attempt` (1 = first retry), without jitter.
    public func baseDelay(attempt: Int) -> Duration {
        let initial = Self.seconds(initialDelay), cap = Self.seconds(maxDelay)
        let exponent = Double(max(0, attempt - 1))
        return .seconds(min(cap, initial * pow(multiplier, exponent)))
    }

    /// The delay before attempt `attempt`, with jitter, never above `maxDelay`.
    public func delay(attempt: Int) -> Duration {
        let base = Self.seconds(baseDelay(attempt: attempt))
        let j = max(0, min(jitter, 1))
        let factor = j == 0 ? 1 : Double.random(in: (1 - j)...(1 + j))
        return .seconds(min(Self.seconds(maxDelay), base * factor))
    }

    static func seconds(_ d: Duration) -> Double {
        let c = d.components
        return Double(c.seconds) + Double(c.attoseconds) * 1e-18
    }
}

/// Settings of `AMQPClient` beyond the connection itself.
public struct AMQPClientOptions: Sendable, Hashable {
    /// Backoff between connection attempts.
    public var reconnect: AMQPReconnectPolicy
    /// How long a publish waits for the broker's confirm before it fails with `.timeout`. Default 30 s.
    public var publishConfirmTimeout: Duration
    /// How long `shutdown()` waits for outstanding confirms before closing anyway. Default 10 s.
    public var shutdownTimeout: Duration

    public init(reconnect: AMQPReconnectPolicy = AMQPReconnectPolicy(), publishConfirmTimeout: Duration = .seconds(30),
                shutdownTimeout: Duration = .seconds(10)) {
        self.reconnect = reconnect
        self.publishConfirmTimeout = publishConfirmTimeout
        self.shutdownTimeout = shutdownTimeout
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
