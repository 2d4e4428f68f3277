import AMQP
import Foundation
import Testing
import Worker
import WorkerTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The HTTP endpoints of a real worker on the real broker: IPv4 and IPv6, clients that hold a
/// connection without finishing a request, the idle timeout, `/readyz` following the worker's state,
/// and a clear error when the address cannot be bound. Request timeouts here are generous failure
/// conditions, never measurements.
@Suite(.serialized) struct HTTPEndpointTests {
    /// (address the worker binds, client addresses that must be answered, client addresses that must not).
    static let bindings: [(String, [String], [String])] = [
        ("127.0.0.1", ["127.0.0.1"], ["::1"]),
        ("::1", ["::1"], ["127.0.0.1"]),
        // `::` is the issue's `--http-host ::`: IPv6, and IPv4 through mapped addresses (Linux's default).
        ("::", ["::1", "127.0.0.1"], []),
    ]

    @Test(arguments: bindings)
    func probesAreAnsweredOnTheBoundAddressFamily(host: String, answered: [String], refused: [String]) async throws {
        let harness = try BrokerHarness()
        defer { harness.cleanup() }
        let (worker, _) = try await harness.startWorker("http-\(host)") { $0.httpHost = host }
        let port = try #require(worker.service.httpPort)
        #expect(port != 0)  // port 0 asked for an ephemeral port; the worker reports the one it got
        for client in answered {
            #expect(try httpGet(host: client, port: port, path: "/healthz") == (200, "ok\n"), "\(client)")
            #expect(try httpGet(host: client, port: port, path: "/readyz").0 == 200, "\(client)")
            let metrics = try httpGet(host: client, port: port, path: "/metrics")
            #expect(metrics.0 == 200 && metricValue(metrics.1, "mesh_worker_amqp_consuming") == 1, "\(client)")
            #expect(try httpGet(host: client, port: port, path: "/nothing-here").0 == 404)
            #expect(try httpGet(host: client, port: port, path: "/healthz", head: true) == (200, ""))
            #expect(try httpGet(host: client, port: port, path: "/readyz", head: true) == (200, ""))
        }
        for client in refused {
            #expect(try httpGet(host: client, port: port, path: "/healthz").0 == 0, "\(client) should not reach \(host)")
        }
        try await worker.stop()
        for client in answered {
            #expect(try httpGet(host: client, port: port, path: "/healthz").0 == 0)  // closed with the worker
        }
    }

    @Test func silentAndTricklingClientsNeverDelayAProbe() async throws {
        let harness = try BrokerHarness()
        defer { harness.cleanup() }
        let (worker, _) = try await harness.startWorker("http-busy")
        let port = try #require(worker.service.httpPort)

        // Connected and silent; connected and half-way through a request head, a byte every 200 ms
        // for as long as the probes run. A server that serves one connection at a time never gets
        // past the trickling one.
        let silent = try (0..<4).map { _ in try RawClient(port: port) }
        let trickling = try RawClient(port: port)
        let stop = StopFlag()
        let trickler = Thread {
            let head = Array("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ".utf8) + Array(repeating: UInt8(ascii: "a"), count: 4000)
            for byte in head where !stop.isSet {
                trickling.send([byte])
                Thread.sleep(forTimeInterval: 0.2)
            }
        }
        trickler.start()
        defer { stop.set() }

        for _ in 0..<5 {
            #expect(try httpGet(port: port, path: "/healthz", timeout: 20).0 == 200)
            #expect(try httpGet(port: port, path: "/readyz", timeout: 20).0 == 200)
            #expect(try httpGet(port: port, path: "/metrics", timeout: 20).0 == 200)
        }
        stop.set()
        withExtendedLifetime(silent) {}
        try await worker.stop()
    }

    /// The endpoints and the consumer do not need Swift's cooperative pool: with every one of its
    /// threads blocked (as a test's polling loop or a library's blocking call does), probes are
    /// answered and a job is consumed and done.
    @Test func probesAndJobsGoOnWhileTheCooperativePoolIsBlocked() async throws {
        let harness = try BrokerHarness()
        defer { harness.cleanup() }
        let (worker, _) = try await harness.startWorker("http-blocked-pool")
        let port = try #require(worker.service.httpPort)
        let release = DispatchSemaphore(value: 0)
        let blocked = DispatchSemaphore(value: 0)
        let threads = ProcessInfo.processInfo.activeProcessorCount
        let blockers = (0..<threads).map { _ in
            Task.detached {
                blocked.signal()
                release.wait()  // holds a cooperative thread
            }
        }
        // This test's own thread is one of them; the blockers take the others (or wait for them).
        for _ in 0..<(threads - 1) { blocked.wait() }
        let answers = (try? httpGet(port: port, path: "/healthz", timeout: 20).0, try? httpGet(port: port, path: "/readyz", timeout: 20).0)
        let event = Result {
            try harness.publish(jobJSON(url: httpServer.url("/img/photo_2.jpg"), member: 72), messageId: "blocked-pool")
            return try harness.events(atLeast: 1, timeout: 30).first
        }
        for _ in 0..<threads { release.signal() }
        for blocker in blockers { await blocker.value }
        #expect(answers.0 == 200)
        #expect(answers.1 == 200)
        #expect(try event.get()?.status == .succeeded)
        try await worker.stop()
    }

    @Test func aSilentConnectionIsClosedAfterTheIdleTimeout() async throws {
        let harness = try BrokerHarness()
        defer { harness.cleanup() }
        let (worker, _) = try await harness.startWorker("http-idle") { $0.httpIdleTimeout = 0.5 }
        let port = try #require(worker.service.httpPort)
        let silent = try RawClient(port: port)
        // recv returns 0 when the server closes; -1 if nothing happened in 30 s.
        #expect(silent.receive(timeout: 30) == 0)
        // Keep-alive: two requests in one write are both answered on the connection, which is
        // closed once silent.
        let kept = try RawClient(port: port)
        kept.send(Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        let answers = kept.receiveUntilClosed(timeout: 30)
        #expect(answers.components(separatedBy: "HTTP/1.1 200 OK\r\n").count == 3, "\(answers)")
        #expect(answers.hasSuffix("ready\n"), "\(answers)")
        #expect(try httpGet(port: port, path: "/healthz").0 == 200)
        try await worker.stop()
    }

    @Test func readyzFollowsTheWorker() async throws {
        let harness = try BrokerHarness()
        defer { harness.cleanup() }
        // 1. The work queue does not exist yet (passive mode): alive but not ready.
        var config = try harness.configuration(root: temporaryDirectory("http-ready"))
        config.passiveWorkQueue = true
        config.poolSize = 1
        config.queues.workQueue = "\(harness.prefix).later"
        let connection = try AMQPConnection(configuration: try AMQPConfiguration(url: brokerURL))
        let channel = try connection.openChannel()
        try channel.enableConfirms()
        defer {
            _ = try? channel.deleteQueue(config.queues.workQueue)
            connection.close()
        }
        let worker = InProcessWorker(configuration: config, generator: BoxModelGenerator(delay: 3))
        var port: UInt16?
        try waitFor("the HTTP endpoints") { port = worker.service.httpPort; return port != nil }
        let http = try #require(port)
        #expect(try httpGet(port: http, path: "/healthz").0 == 200)
        #expect(try httpGet(port: http, path: "/readyz").0 == 503)

        // 2. The backend declares the queue: the worker's reconnect finds it and consumes.
        _ = try channel.declareQueue(AMQPQueueSpec(name: config.queues.workQueue))
        try waitFor("/readyz to answer 200", timeout: 60) { try httpGet(port: http, path: "/readyz").0 == 200 }

        // 3. Draining with a job in flight: still alive, no longer ready, until it stops.
        try channel.publishAndWaitForConfirm(AMQPOutgoingMessage(
            exchange: "", routingKey: config.queues.workQueue,
            body: Array(jobJSON(url: httpServer.url("/img/photo_1.jpg"), member: 71).utf8)))
        try waitFor("the job to start") {
            metricValue(try httpGet(port: http, path: "/metrics").1, "mesh_worker_jobs_in_flight") == 1
        }
        worker.service.requestShutdown()
        try waitFor("/readyz to answer 503 while draining") { try httpGet(port: http, path: "/readyz").0 == 503 }
        #expect(try httpGet(port: http, path: "/healthz").0 == 200)
        try await worker.stop()
        #expect(try httpGet(port: http, path: "/readyz").0 == 0)
    }

    @Test(arguments: ["192.0.2.1", "not-a-host.invalid"])
    func anAddressThatCannotBeBoundIsAClearErrorAndTheQueueIsNeverTouched(host: String) async throws {
        let harness = try BrokerHarness()
        defer { harness.cleanup() }
        var config = try harness.configuration(root: temporaryDirectory("http-bind"))
        config.httpHost = host  // 192.0.2.1: TEST-NET-1, on no interface here
        config.queues.workQueue = "\(harness.prefix).never-declared"
        let service = WorkerService(configuration: config, generator: BoxModelGenerator(), logger: testLogger)
        let error = try await #require(throws: HTTPEndpoints.BindError.self) { try await service.run() }
        #expect(error.host == host)
        #expect("\(error)".contains("cannot listen for HTTP on \(host):0"), "\(error)")
        #expect(service.httpPort == nil)
        // The AMQP client never started: the worker's work queue was never declared.
        let connection = try AMQPConnection(configuration: try AMQPConfiguration(url: brokerURL))
        defer {
            // Should this fail, leave nothing behind on the shared broker.
            if let cleanup = try? connection.openChannel() {
                let names = [config.queues.workQueue]
                    + config.retry.delays.indices.map { config.retry.retryQueueName(workQueue: config.queues.workQueue, delayIndex: $0) }
                for name in names { _ = try? cleanup.deleteQueue(name) }
            }
            connection.close()
        }
        let channel = try connection.openChannel()
        #expect(throws: AMQPError.self) {
            _ = try channel.declareQueue(AMQPQueueSpec(name: config.queues.workQueue, passive: true))
        }
    }

    @Test func aPortInUseIsAClearError() async throws {
        let harness = try BrokerHarness()
        defer { harness.cleanup() }
        let (first, _) = try await harness.startWorker("http-first")
        let port = try #require(first.service.httpPort)
        var config = try harness.configuration(root: temporaryDirectory("http-second"))
        config.httpPort = port
        let second = WorkerService(configuration: config, generator: BoxModelGenerator(), logger: testLogger)
        let error = try await #require(throws: HTTPEndpoints.BindError.self) { try await second.run() }
        #expect("\(error)".contains("127.0.0.1:\(port)"), "\(error)")
        #expect(try httpGet(port: port, path: "/healthz").0 == 200)  // the first worker is untouched
        try await first.stop()
    }
}

/// A plain TCP client on 127.0.0.1, for connections that curl cannot make: silent or unfinished.
final class RawClient: @unchecked Sendable {
    private let fd: Int32

    init(port: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .ECONNREFUSED)
        }
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// recv's result: bytes read, 0 when the peer closed, -1 on error or when `timeout` passed first.
    func receive(timeout: Double) -> Int {
        var limit = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 4096)
        return buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
    }

    /// Everything that arrives until the peer closes, as text; what came so far if a read waits
    /// longer than `timeout` (the caller's checks then fail).
    func receiveUntilClosed(timeout: Double) -> String {
        var limit = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return String(decoding: received, as: UTF8.self) + (n < 0 ? "[no close]" : "") }
            received += buffer[0..<n]
        }
    }
}

final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false
    func set() { lock.withLock { stopped = true } }
    var isSet: Bool { lock.withLock { stopped } }
}
