import CAMQP

/// Whether the broker writes a message to disk.
public enum AMQPDeliveryMode: UInt8, Sendable, Hashable {
    case transient = 1
    /// Survives a broker restart on a durable queue.
    case persistent = 2
}

/// The `basic` content properties of a message.
public struct AMQPProperties: Sendable, Hashable {
    /// MIME type of the body, e.g. `application/json`.
    public var contentType: String?
    /// Encoding of the body, e.g. `utf-8` or `gzip`.
    public var contentEncoding: String?
    /// Application headers; empty means none.
    public var headers: AMQPTable
    /// Persistent (2) or transient (1); nil when the publisher did not say.
    public var deliveryMode: AMQPDeliveryMode?
    /// Priority 0…9 for priority queues.
    public var priority: UInt8?
    /// Ties a reply or result event to its request.
    public var correlationId: String?
    /// Queue for replies (RPC pattern).
    public var replyTo: String?
    /// Per-message TTL in milliseconds, as a decimal string.
    public var expiration: String?
    /// The publisher's id for the message.
    public var messageId: String?
    /// Seconds since the Unix epoch.
    public var timestamp: UInt64?
    /// Message type name.
    public var type: String?
    /// The publishing user; RabbitMQ checks it against the login.
    public var userId: String?
    /// Name of the publishing application.
    public var appId: String?

    /// Properties for a new message: persistent unless told otherwise.
    public init(contentType: String? = nil, contentEncoding: String? = nil, headers: AMQPTable = [:],
                deliveryMode: AMQPDeliveryMode? = .persistent, priority: UInt8? = nil, correlationId: String? = nil,
                replyTo: String? = nil, expiration: String? = nil, messageId: String? = nil,
                timestamp: UInt64? = nil, type: String? = nil, userId: String? = nil, appId: String? = nil) {
        self.contentType = contentType
        self.contentEncoding = contentEncoding
        self.headers = headers
        self.deliveryMode = deliveryMode
        self.priority = priority
        self.correlationId = correlationId
        self.replyTo = replyTo
        self.expiration = expiration
        self.messageId = messageId
        self.timestamp = timestamp
        self.type = type
        self.userId = userId
        self.appId = appId
    }

    /// True when the message was published with delivery mode 2.
    public var isPersistent: Bool { deliveryMode == .persistent }

    // Flag bits of amqp_basic_properties_t._flags (amqp_framing.h).
    private static let contentTypeFlag: UInt32 = 1 << 15
    private static let contentEncodingFlag: UInt32 = 1 << 14
    private static let headersFlag: UInt32 = 1 << 13
    private static let deliveryModeFlag: UInt32 = 1 << 12
    private static let priorityFlag: UInt32 = 1 << 11
    private static let correlationIdFlag: UInt32 = 1 << 10
    private static let replyToFlag: UInt32 = 1 << 9
    private static let expirationFlag: UInt32 = 1 << 8
    private static let messageIdFlag: UInt32 = 1 << 7
    private static let timestampFlag: UInt32 = 1 << 6
    private static let typeFlag: UInt32 = 1 << 5
    private static let userIdFlag: UInt32 = 1 << 4
    private static let appIdFlag: UInt32 = 1 << 3

    init(_ p: amqp_basic_properties_t) {
        let f = p._flags
        func has(_ flag: UInt32) -> Bool { f & flag != 0 }
        self.init(deliveryMode: nil)
        if has(Self.contentTypeFlag) { contentType = p.content_type.string }
        if has(Self.contentEncodingFlag) { contentEncoding = p.content_encoding.string }
        if has(Self.headersFlag) { headers = p.headers.swiftTable }
        if has(Self.deliveryModeFlag) { deliveryMode = AMQPDeliveryMode(rawValue: p.delivery_mode) }
        if has(Self.priorityFlag) { priority = p.priority }
        if has(Self.correlationIdFlag) { correlationId = p.correlation_id.string }
        if has(Self.replyToFlag) { replyTo = p.reply_to.string }
        if has(Self.expirationFlag) { expiration = p.expiration.string }
        if has(Self.messageIdFlag) { messageId = p.message_id.string }
        if has(Self.timestampFlag) { timestamp = p.timestamp }
        if has(Self.typeFlag) { type = p.type.string }
        if has(Self.userIdFlag) { userId = p.user_id.string }
        if has(Self.appIdFlag) { appId = p.app_id.string }
    }

    func cProperties(_ arena: CArena) -> amqp_basic_properties_t {
        var p = amqp_basic_properties_t()
        var f: UInt32 = 0
        if let contentType { p.content_type = arena.bytes(contentType); f |= Self.contentTypeFlag }
        if let contentEncoding { p.content_encoding = arena.bytes(contentEncoding); f |= Self.contentEncodingFlag }
        if !headers.isEmpty { p.headers = arena.table(headers); f |= Self.headersFlag }
        if let deliveryMode { p.delivery_mode = deliveryMode.rawValue; f |= Self.deliveryModeFlag }
        if let priority { p.priority = priority; f |= Self.priorityFlag }
        if let correlationId { p.correlation_id = arena.bytes(correlationId); f |= Self.correlationIdFlag }
        if let replyTo { p.reply_to = arena.bytes(replyTo); f |= Self.replyToFlag }
        if let expiration { p.expiration = arena.bytes(expiration); f |= Self.expirationFlag }
        if let messageId { p.message_id = arena.bytes(messageId); f |= Self.messageIdFlag }
        if let timestamp { p.timestamp = timestamp; f |= Self.timestampFlag }
        if let type { p.type = arena.bytes(type); f |= Self.typeFlag }
        if let userId { p.user_id = arena.bytes(userId); f |= Self.userIdFlag }
        if let appId { p.app_id = arena.bytes(appId); f |= Self.appIdFlag }
        p._flags = f
        return p
    }
}

/// A message the broker delivered to a consumer (`basic.deliver`) or answered to `basic.get`.
public struct AMQPDelivery: Sendable {
    /// Identifies the connection the message came on (unique within the process; see `AMQPConnection.id`).
    /// A delivery tag is only meaningful on that connection and channel.
    public var connectionID: UInt64
    /// The channel the message came on.
    public var channel: UInt16
    /// Identifies the delivery for ack, nack and reject on its channel.
    public var deliveryTag: UInt64
    /// The broker delivered this message before (to this or another consumer) without an ack.
    public var redelivered: Bool
    /// The exchange the message was published to (empty: the default exchange).
    public var exchange: String
    /// The routing key the message was published with.
    public var routingKey: String
    /// Empty for `basic.get`.
    public var consumerTag: String
    /// Content properties and headers.
    public var properties: AMQPProperties
    /// The message body.
    public var body: [UInt8]

    public init(connectionID: UInt64, channel: UInt16, deliveryTag: UInt64, redelivered: Bool, exchange: String,
                routingKey: String, consumerTag: String, properties: AMQPProperties, body: [UInt8]) {
        self.connectionID = connectionID
        self.channel = channel
        self.deliveryTag = deliveryTag
        self.redelivered = redelivered
        self.exchange = exchange
        self.routingKey = routingKey
        self.consumerTag = consumerTag
        self.properties = properties
        self.body = body
    }

    /// Shortcut for `properties.headers`.
    public var headers: AMQPTable { properties.headers }
}

/// A mandatory message the broker could not route (`basic.return`).
public struct AMQPReturnedMessage: Sendable {
    /// The channel the message came on.
    public var channel: UInt16
    /// Why the broker returned the message, e.g. 312 NO_ROUTE.
    public var replyCode: UInt16
    /// The reply code as text, e.g. `NO_ROUTE`.
    public var replyText: String
    /// The exchange the message was published to (empty: the default exchange).
    public var exchange: String
    /// The routing key the message was published with.
    public var routingKey: String
    /// Content properties and headers.
    public var properties: AMQPProperties
    /// The message body.
    public var body: [UInt8]
}

/// A message to publish.
public struct AMQPOutgoingMessage: Sendable {
    /// The exchange the message was published to (empty: the default exchange).
    public var exchange: String
    /// The routing key the message was published with.
    public var routingKey: String
    /// The message body.
    public var body: [UInt8]
    /// Content properties and headers.
    public var properties: AMQPProperties
    /// Ask the broker to return the message (`basic.return`) when no queue takes it.
    public var mandatory: Bool

    /// A message for `exchange` (empty string: the default exchange, routing key = queue name).
    public init(exchange: String, routingKey: String, body: [UInt8], properties: AMQPProperties = AMQPProperties(),
                mandatory: Bool = false) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.body = body
        self.properties = properties
        self.mandatory = mandatory
    }
}
