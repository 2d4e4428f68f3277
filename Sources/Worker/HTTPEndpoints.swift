import Foundation
internal import Hummingbird
import Logging
internal import NIOCore
import ServiceLifecycle

/// `/healthz`, `/readyz` and `/metrics` on Hummingbird 2: GET and HEAD, HTTP/1.1 with keep-alive,
/// on IPv4 or IPv6 (`::` listens on both where the system allows it). Connections are served
/// concurrently on SwiftNIO's event loops, so an idle or slow client never delays a probe; a
/// connection that sends nothing for `idleTimeout` is closed.
///
/// A `Service`: `run()` serves until graceful shutdown (it stops listening, finishes the
/// requests in flight and closes idle connections) or cancellation.
public struct HTTPEndpoints: Service, CustomStringConvertible {
    /// What the endpoints read.
    public struct Probes: Sendable {
        /// `/readyz` answers 200 while this is true, else 503.
        public var ready: @Sendable () -> Bool
        /// The body of `/metrics`.
        public var metrics: @Sendable () -> String

        public init(ready: @escaping @Sendable () -> Bool, metrics: @escaping @Sendable () -> String) {
            self.ready = ready
            self.metrics = metrics
        }
    }

    /// The HTTP endpoints could not listen.
    public struct BindError: Error, CustomStringConvertible {
        public var host: String
        public var port: Int
        /// SwiftNIO's error (e.g. `bind(...) failed: Cannot assign requested address (errno: 99)`).
        public var underlying: any Error
        public var description: String {
            let address = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            return "cannot listen for HTTP on \(address) (--http-host/WORKER_HTTP_HOST, --http-port/WORKER_HTTP_PORT): \(underlying)"
        }
    }

    public let host: String
    public let port: Int
    public let idleTimeout: Duration
    private let probes: Probes
    private let logger: Logger
    private let onListening: @Sendable (Int) -> Void

    /// - Parameters:
    ///   - host: an IPv4 or IPv6 address or a host name (`0.0.0.0`, `::`, `::1`, `localhost`).
    ///   - port: 0 picks a free port; `onListening` is told which.
    ///   - idleTimeout: a connection silent this long (none of a request, or nothing after one) is closed.
    ///   - onListening: called with the bound port once the server accepts connections.
    public init(host: String, port: Int, idleTimeout: Duration = .seconds(30), probes: Probes, logger: Logger,
                onListening: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.host = host
        self.port = port
        self.idleTimeout = idleTimeout
        self.probes = probes
        self.logger = logger
        self.onListening = onListening
    }

    public var description: String { "HTTPEndpoints(\(host):\(port))" }

    /// The router: also used by tests that need no socket.
    func router() -> Router<BasicRequestContext> {
        let router = Router(options: .autoGenerateHeadEndpoints)
        let probes = probes
        router.get("healthz") { _, _ in Self.text(.ok, "ok\n") }
        router.get("readyz") { _, _ in probes.ready() ? Self.text(.ok, "ready\n") : Self.text(.serviceUnavailable, "not ready\n") }
        router.get("metrics") { _, _ in
            Self.text(.ok, probes.metrics(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
        return router
    }

    public func run() async throws {
        let listening = Listening()
        let onListening = onListening
        let app = Application(
            router: router(),
            server: .http1(configuration: .init(idleTimeout: TimeAmount(idleTimeout))),
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in
                listening.set()
                onListening(channel.localAddress?.port ?? 0)
            },
            logger: logger)
        do {
            // On its own thread, not Swift's cooperative pool: code elsewhere in the process that
            // blocks the pool's few threads (a test's polling loop, a library's blocking call)
            // cannot stall a probe.
            try await withTaskExecutorPreference(DispatchTaskExecutor(label: "mesh-worker.http")) {
                try await app.run()
            }
        } catch where !listening.value {
            throw BindError(host: host, port: port, underlying: error)
        }
    }

    private static func text(_ status: HTTPResponse.Status, _ body: String, contentType: String = "text/plain; charset=utf-8") -> Response {
        var buffer = ByteBuffer()
        buffer.writeString(body)
        return Response(status: status, headers: [.contentType: contentType], body: ResponseBody(byteBuffer: buffer))
    }

    private final class Listening: @unchecked Sendable {
        private let lock = NSLock()
        private var listening = false
        func set() { lock.withLock { listening = true } }
        var value: Bool { lock.withLock { listening } }
    }
}
