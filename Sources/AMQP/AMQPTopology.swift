/// The kind of an exchange.
public enum AMQPExchangeType: String, Sendable, Hashable, CaseIterable {
    case direct, fanout, topic, headers
}

/// An exchange to declare (or, with `passive`, only to check).
public struct AMQPExchangeSpec: Sendable, Hashable {
    /// The name.
    public var name: String
    /// How the exchange routes.
    public var type: AMQPExchangeType
    /// Survives a broker restart.
    public var durable: Bool
    /// Deleted when its last binding or consumer goes away.
    public var autoDelete: Bool
    /// Only other exchanges may publish to it.
    public var `internal`: Bool
    /// Only check that the exchange exists (404 NOT_FOUND otherwise); type, flags and arguments are ignored.
    public var passive: Bool
    /// Optional arguments (`x-…`).
    public var arguments: AMQPTable

    public init(name: String, type: AMQPExchangeType = .direct, durable: Bool = true, autoDelete: Bool = false,
                internal: Bool = false, passive: Bool = false, arguments: AMQPTable = [:]) {
        self.name = name
        self.type = type
        self.durable = durable
        self.autoDelete = autoDelete
        self.internal = `internal`
        self.passive = passive
        self.arguments = arguments
    }
}

/// A queue to declare (or, with `passive`, only to check).
public struct AMQPQueueSpec: Sendable, Hashable {
    /// Empty: the broker picks a name (server-named queue), returned by `declareQueue`.
    public var name: String
    /// Survives a broker restart.
    public var durable: Bool
    /// Only this connection may use it; deleted with the connection.
    public var exclusive: Bool
    /// Deleted when its last binding or consumer goes away.
    public var autoDelete: Bool
    /// Only check that the queue exists (404 NOT_FOUND otherwise). Use this where another party owns the
    /// queue's arguments: a declare with different arguments fails with 406 PRECONDITION_FAILED.
    public var passive: Bool
    /// Optional arguments (`x-…`).
    public var arguments: AMQPTable

    public init(name: String, durable: Bool = true, exclusive: Bool = false, autoDelete: Bool = false,
                passive: Bool = false, arguments: AMQPTable = [:]) {
        self.name = name
        self.durable = durable
        self.exclusive = exclusive
        self.autoDelete = autoDelete
        self.passive = passive
        self.arguments = arguments
    }

    /// `x-dead-letter-exchange`: rejected (requeue false), expired and overflowed messages go there.
    public var deadLetterExchange: String? {
        get { arguments["x-dead-letter-exchange"]?.stringValue }
        set { arguments["x-dead-letter-exchange"] = newValue.map { .string($0) } }
    }

    /// `x-dead-letter-routing-key`: replaces the routing key of dead-lettered messages.
    public var deadLetterRoutingKey: String? {
        get { arguments["x-dead-letter-routing-key"]?.stringValue }
        set { arguments["x-dead-letter-routing-key"] = newValue.map { .string($0) } }
    }

    /// `x-message-ttl` in milliseconds: how long a message may wait in the queue.
    public var messageTTL: Int64? {
        get { arguments["x-message-ttl"]?.intValue }
        set { arguments["x-message-ttl"] = newValue.map { .int($0) } }
    }
}

/// A binding of a queue to an exchange.
public struct AMQPBindingSpec: Sendable, Hashable {
    /// The queue.
    public var queue: String
    /// The exchange.
    public var exchange: String
    /// The binding key (empty for fanout).
    public var routingKey: String
    /// Optional arguments (`x-…`).
    public var arguments: AMQPTable

    public init(queue: String, exchange: String, routingKey: String = "", arguments: AMQPTable = [:]) {
        self.queue = queue
        self.exchange = exchange
        self.routingKey = routingKey
        self.arguments = arguments
    }
}

/// Exchanges, queues and bindings, declared in that order on every (re)connection.
public struct AMQPTopology: Sendable, Hashable {
    /// Declared first.
    public var exchanges: [AMQPExchangeSpec]
    /// Declared after the exchanges.
    public var queues: [AMQPQueueSpec]
    /// Declared last.
    public var bindings: [AMQPBindingSpec]

    public init(exchanges: [AMQPExchangeSpec] = [], queues: [AMQPQueueSpec] = [], bindings: [AMQPBindingSpec] = []) {
        self.exchanges = exchanges
        self.queues = queues
        self.bindings = bindings
    }
}

/// The consumer an `AMQPClient` runs.
public struct AMQPConsumerSpec: Sendable, Hashable {
    /// The queue.
    public var queue: String
    /// `basic.qos` prefetch count: at most this many unacknowledged deliveries at once (0: unlimited).
    public var prefetch: UInt16
    /// Empty: the broker picks a tag.
    public var consumerTag: String
    /// The only consumer of the queue (others are refused with 403 while it runs).
    public var exclusive: Bool
    /// Optional arguments (`x-…`).
    public var arguments: AMQPTable

    public init(queue: String, prefetch: UInt16, consumerTag: String = "", exclusive: Bool = false,
                arguments: AMQPTable = [:]) {
        self.queue = queue
        self.prefetch = prefetch
        self.consumerTag = consumerTag
        self.exclusive = exclusive
        self.arguments = arguments
    }
}

/// Result of a queue declare: the name (useful for server-named queues) and the counts at that moment.
public struct AMQPQueueStatus: Sendable, Hashable {
    /// The name.
    public var name: String
    /// Ready messages (not counting unacknowledged ones).
    public var messageCount: UInt32
    /// Consumers on the queue.
    public var consumerCount: UInt32

    public init(name: String, messageCount: UInt32, consumerCount: UInt32) {
        self.name = name
        self.messageCount = messageCount
        self.consumerCount = consumerCount
    }
}
