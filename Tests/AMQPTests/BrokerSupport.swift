import Foundation
import Testing
@testable import AMQP

/// Helpers for tests against the real broker at `AMQP_URL` (default amqp://guest:guest@127.0.0.1:5672/).
enum Broker {
    static var url: String {
        let env = ProcessInfo.processInfo.environment["AMQP_URL"] ?? ""
        return env.isEmpty ? AMQPConfiguration.defaultURL : env
    }

    /// The broker's configuration with a connection name the test can find in `rabbitmqctl` output.
    static func configuration(name: String = unique("conn"), heartbeat: Int = 30) throws -> AMQPConfiguration {
        var c = try AMQPConfiguration(url: url, environment: ProcessInfo.processInfo.environment)
        c.connectionName = name
        c.heartbeat = heartbeat
        c.connectTimeout = .seconds(5)
        c.rpcTimeout = .seconds(5)
        return c
    }

    /// A name no other test (or test run) uses.
    static func unique(_ prefix: String) -> String {
        "amqp-test.\(prefix).\(UUID().uuidString.prefix(8).lowercased())"
    }

    /// Client options that reconnect fast, for tests.
    static let fastReconnect = AMQPClientOptions(
        reconnect: AMQPReconnectPolicy(initialDelay: .milliseconds(200), maxDelay: .seconds(1)),
        publishConfirmTimeout: .seconds(5), shutdownTimeout: .seconds(3))

    /// Runs `body` on a fresh low-level connection and channel, closing both afterwards.
    static func withChannel<R>(_ body: (AMQPConnection, AMQPChannel) throws -> R) throws -> R {
        let connection = try AMQPConnection(configuration: configuration(name: unique("helper")))
        defer { connection.close() }
        let channel = try connection.openChannel()
        return try body(connection, channel)
    }

    /// Runs `body` with a fresh connection, a channel and a new durable queue, all removed afterwards.
    static func withQueue(_ prefix: String, arguments: AMQPTable = [:],
                          _ body: (AMQPConnection, AMQPChannel, String) throws -> Void) throws {
        let queue = unique(prefix)
        defer { cleanup(queues: [queue]) }
        let connection = try AMQPConnection(configuration: configuration())
        defer { connection.close() }
        let channel = try connection.openChannel()
        try channel.declareQueue(AMQPQueueSpec(name: queue, arguments: arguments))
        try body(connection, channel, queue)
    }

    /// Deletes queues and exchanges (missing ones are fine).
    static func cleanup(queues: [String] = [], exchanges: [String] = []) {
        guard let connection = try? AMQPConnection(configuration: configuration(name: unique("cleanup"))) else { return }
        defer { connection.close() }
        for q in queues {
            if let ch = try? connection.openChannel() { _ = try? ch.deleteQueue(q); ch.close() }
        }
        for e in exchanges {
            if let ch = try? connection.openChannel() { try? ch.deleteExchange(e); ch.close() }
        }
    }

    /// Ready messages in `queue` (passive declare).
    static func messageCount(_ queue: String) throws -> UInt32 {
        try withChannel { _, ch in try ch.declareQueue(AMQPQueueSpec(name: queue, passive: true)).messageCount }
    }

    /// Reads events until a delivery arrives (or `timeout` passes, then nil), keeping heartbeats serviced.
    static func nextDelivery(_ connection: AMQPConnection, timeout: Duration = .seconds(5),
                             onOther: (AMQPEvent) -> Void = { _ in }) throws -> AMQPDelivery? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard let event = try connection.nextEvent(timeout: .milliseconds(100)) else { continue }
            if case .delivery(let d) = event { return d }
            onOther(event)
        }
        return nil
    }

    /// The next message of an `AMQPClient`, or nil after `timeout`.
    static func next(_ iterator: inout AsyncStream<AMQPDelivery>.Iterator,
                     timeout: Duration = .seconds(8)) async -> AMQPDelivery? {
        let box = IteratorBox(iterator)
        let result = await withTaskGroup(of: AMQPDelivery?.self) { group in
            group.addTask { await box.next() }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        iterator = box.iterator
        return result
    }

    /// Finds the path of `rabbitmqctl` (PATH, then the usual sbin folders).
    static func rabbitmqctlPath() throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let dirs = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/local/sbin", "/usr/lib/rabbitmq/bin"]
        for d in dirs where FileManager.default.isExecutableFile(atPath: d + "/rabbitmqctl") {
            return d + "/rabbitmqctl"
        }
        throw BrokerTestError("rabbitmqctl not found on PATH or in /usr/sbin")
    }

    @discardableResult
    static func rabbitmqctl(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try rabbitmqctlPath())
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw BrokerTestError("rabbitmqctl \(arguments.joined(separator: " ")) failed: \(text)")
        }
        return text
    }

    /// Closes, on the broker side, every connection whose `connection_name` is `name`, like
    /// `rabbitmqctl close_all_connections` but without touching other tests' connections. Returns how many.
    @discardableResult
    static func closeConnections(named name: String) throws -> Int {
        let listing = try rabbitmqctl(["list_connections", "-q", "pid", "client_properties"])
        var closed = 0
        for line in listing.split(separator: "\n") where line.contains("{\"connection_name\",\"\(name)\"}") {
            guard let pid = line.split(separator: "\t").first, pid.hasPrefix("<") else { continue }
            try rabbitmqctl(["close_connection", String(pid), "closed by AMQPTests"])
            closed += 1
        }
        return closed
    }
}

struct BrokerTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Lets a task group iterate a stream iterator owned by the test.
final class IteratorBox: @unchecked Sendable {
    var iterator: AsyncStream<AMQPDelivery>.Iterator
    init(_ iterator: AsyncStream<AMQPDelivery>.Iterator) { self.iterator = iterator }
    func next() async -> AMQPDelivery? { await iterator.next() }
}

/// Collects client events for later checks.
final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [AMQPClientEvent] = []

    func record(_ e: AMQPClientEvent) {
        lock.lock()
        events.append(e)
        lock.unlock()
    }

    var all: [AMQPClientEvent] {
        lock.lock()
        defer { lock.unlock() }
        return events
    }

    var connectionLosses: Int {
        all.filter { if case .connectionLost = $0 { return true } else { return false } }.count
    }

    var readyCount: Int {
        all.filter { if case .ready = $0 { return true } else { return false } }.count
    }
}
