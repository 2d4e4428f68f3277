// Tests through socat relays in front of the broker: TLS termination, and a relay that can be frozen.
import Foundation
import Testing
@testable import AMQP

/// A TLS front for the broker: `socat` terminates TLS with a throw-away CA and forwards to 127.0.0.1:5672.
final class TLSProxy {
    static var toolsAvailable: Bool {
        ["/usr/bin/socat", "/usr/bin/openssl"].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }
    }

    let directory: URL
    let port: Int
    private let process: Process

    var caFile: String { directory.appendingPathComponent("ca.pem").path }

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("amqp-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let d = directory.path
        // A CA and a server certificate for DNS name "localhost" only (not for 127.0.0.1).
        try Self.run("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                                          "-subj", "/CN=amqp-test-ca", "-keyout", "\(d)/ca.key", "-out", "\(d)/ca.pem"])
        try Self.run("/usr/bin/openssl", ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                                          "-keyout", "\(d)/server.key", "-out", "\(d)/server.csr"])
        try "subjectAltName=DNS:localhost\n".write(toFile: "\(d)/ext.cnf", atomically: true, encoding: .utf8)
        try Self.run("/usr/bin/openssl", ["x509", "-req", "-in", "\(d)/server.csr", "-CA", "\(d)/ca.pem",
                                          "-CAkey", "\(d)/ca.key", "-CAcreateserial", "-days", "1",
                                          "-extfile", "\(d)/ext.cnf", "-out", "\(d)/server.crt"])
        let cert = try String(contentsOfFile: "\(d)/server.crt", encoding: .utf8)
        let key = try String(contentsOfFile: "\(d)/server.key", encoding: .utf8)
        try (cert + key).write(toFile: "\(d)/server.pem", atomically: true, encoding: .utf8)
        port = Int.random(in: 20_000...40_000)
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/socat")
        process.arguments = ["openssl-listen:\(port),bind=127.0.0.1,reuseaddr,fork,cert=\(d)/server.pem,verify=0",
                             "tcp:127.0.0.1:5672"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait until it listens.
        let deadline = ContinuousClock.now + .seconds(5)
        while AMQPConnection.probeTCP(host: "127.0.0.1", port: port, timeout: .seconds(1)) != nil {
            guard ContinuousClock.now < deadline, process.isRunning else { throw BrokerTestError("socat did not start") }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    deinit {
        // SIGKILL: Foundation starts children with the signal mask of a dispatch thread, which blocks SIGTERM.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: directory)
    }

    private static func run(_ tool: String, _ arguments: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = arguments
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw BrokerTestError("\(tool) \(arguments.first ?? "") failed") }
    }
}

@Suite("AMQP over TLS (broker behind a socat TLS front)", .enabled(if: TLSProxy.toolsAvailable, "needs socat and openssl"))
struct AMQPTLSTests {
    private func config(_ proxy: TLSProxy, host: String, query: String) throws -> AMQPConfiguration {
        var c = try Broker.configuration()
        let tls = try AMQPConfiguration(url: "amqps://\(host):\(proxy.port)/?\(query)")
        c.host = tls.host
        c.port = tls.port
        c.useTLS = true
        c.tls = tls.tls
        return c
    }

    @Test func amqpsWithTheRightCAWorks() throws {
        let proxy = try TLSProxy()
        let queue = Broker.unique("tls")
        defer { Broker.cleanup(queues: [queue]) }
        let connection = try AMQPConnection(configuration: config(proxy, host: "localhost", query: "cacertfile=\(proxy.caFile)"))
        defer { connection.close() }
        let ch = try connection.openChannel()
        try ch.declareQueue(AMQPQueueSpec(name: queue))
        try ch.publishAndWaitForConfirm(AMQPOutgoingMessage(exchange: "", routingKey: queue, body: Array("over tls".utf8)))
        #expect(try ch.get(queue: queue, noAck: true)?.body == Array("over tls".utf8))
    }

    @Test func certificateChecksRefuseWhatTheyShould() throws {
        let proxy = try TLSProxy()
        // Unknown CA (system store only): refused.
        #expect {
            _ = try AMQPConnection(configuration: config(proxy, host: "localhost", query: ""))
        } throws: { error in
            guard case .connectionFailed(_, _, let reason)? = error as? AMQPError else { return false }
            return reason.contains("peer cert verification failed")
        }
        // The certificate names "localhost", not 127.0.0.1: refused while hostnames are checked.
        #expect {
            _ = try AMQPConnection(configuration: config(proxy, host: "127.0.0.1", query: "cacertfile=\(proxy.caFile)"))
        } throws: { error in
            guard case .connectionFailed(_, _, let reason)? = error as? AMQPError else { return false }
            return reason.contains("hostname verification failed")
        }
        let noHostname = try AMQPConnection(configuration: config(
            proxy, host: "127.0.0.1", query: "cacertfile=\(proxy.caFile)&verify_hostname=false"))
        #expect(noHostname.isOpen)
        noHostname.close()
        let noVerify = try AMQPConnection(configuration: config(proxy, host: "127.0.0.1", query: "verify=verify_none"))
        #expect(noVerify.isOpen)
        noVerify.close()
    }
}

/// A plain TCP relay to the broker for one connection (`socat` without fork), which a test can freeze with
/// SIGSTOP to make the broker go silent without closing the socket.
final class FreezableRelay {
    let port: Int
    private let process: Process

    init() throws {
        port = Int.random(in: 40_001...60_000)
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/socat")
        process.arguments = ["tcp-listen:\(port),bind=127.0.0.1,reuseaddr", "tcp:127.0.0.1:5672"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = ContinuousClock.now + .seconds(5)
        // Wait for the listening socket without connecting to it (one connection only).
        while !Self.isListening(port) {
            guard ContinuousClock.now < deadline, process.isRunning else { throw BrokerTestError("socat did not start") }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    private static func isListening(_ port: Int) -> Bool {
        let hex = String(format: ":%04X ", port)
        guard let table = try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8) else { return false }
        return table.split(separator: "\n").contains { $0.contains("0100007F\(hex)") && $0.contains(" 0A ") }
    }

    /// Stops forwarding: the socket stays open, nothing moves either way.
    func freeze() { kill(process.processIdentifier, SIGSTOP) }

    deinit {
        kill(process.processIdentifier, SIGKILL)
        kill(process.processIdentifier, SIGCONT)
        process.waitUntilExit()
    }
}

@Suite("AMQP heartbeats against a silent broker", .enabled(if: TLSProxy.toolsAvailable, "needs socat"))
struct AMQPSilentBrokerTests {
    private func relayed(_ relay: FreezableRelay, name: String) throws -> AMQPConfiguration {
        var c = try Broker.configuration(name: name, heartbeat: 1)
        c.host = "127.0.0.1"
        c.port = relay.port
        return c
    }

    @Test func connectionNoticesMissingHeartbeats() throws {
        let relay = try FreezableRelay()
        let connection = try AMQPConnection(configuration: relayed(relay, name: Broker.unique("silent")))
        defer { connection.close() }
        #expect(connection.negotiatedHeartbeat == 1)
        // Idle but healthy: heartbeats flow both ways.
        let idleUntil = ContinuousClock.now + .seconds(2)
        while ContinuousClock.now < idleUntil { _ = try connection.nextEvent(timeout: .milliseconds(200)) }
        #expect(connection.isOpen)
        relay.freeze()
        var caught: AMQPError?
        let deadline = ContinuousClock.now + .seconds(6)
        while caught == nil, ContinuousClock.now < deadline {
            do { _ = try connection.nextEvent(timeout: .milliseconds(200)) } catch { caught = error }
        }
        #expect(caught == .connectionLost("no heartbeat from the broker"))
        #expect(!connection.isOpen)
    }

    @Test func clientNoticesMissingHeartbeatsWhileIdle() async throws {
        let relay = try FreezableRelay()
        let events = EventLog()
        let client = AMQPClient(configuration: try relayed(relay, name: Broker.unique("silent-client")),
                                options: Broker.fastReconnect, onEvent: { events.record($0) })
        client.start()
        try await client.waitUntilReady(timeout: .seconds(5))
        relay.freeze()
        let deadline = ContinuousClock.now + .seconds(6)
        while events.connectionLosses == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        let lost = events.all.compactMap { if case .connectionLost(let e) = $0 { e } else { nil } }
        #expect(lost == [.connectionLost("no heartbeat from the broker")])
        #expect(!client.isReady)
        await client.shutdown()
    }
}
