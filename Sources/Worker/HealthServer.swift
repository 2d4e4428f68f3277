import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A minimal HTTP/1.1 server for `/healthz`, `/readyz` and `/metrics`: one thread, blocking POSIX
/// sockets, GET only, one request per connection. Enough for probes and a Prometheus scraper,
/// without pulling an HTTP framework into the build.
public final class HealthServer: @unchecked Sendable {
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

    /// The port actually bound (useful with port 0).
    public let port: UInt16
    private let fd: Int32
    private let probes: Probes
    private let lock = NSLock()
    private var closed = false

    /// Binds `host:port` (port 0: ephemeral) and starts serving on a background thread.
    public init(host: String = "0.0.0.0", port: UInt16, probes: Probes) throws {
        self.probes = probes
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            Glibc.close(fd)
            throw POSIXError(.EINVAL)
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0, listen(fd, 16) == 0 else {
            let failure = errno
            Glibc.close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: failure) ?? .EADDRINUSE)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        self.port = UInt16(bigEndian: address.sin_port)
        let thread = Thread { [self] in serveForever() }
        thread.name = "mesh-worker.http"
        thread.start()
    }

    /// Stops listening.
    public func close() {
        lock.lock()
        let wasClosed = closed
        closed = true
        lock.unlock()
        if !wasClosed {
            shutdown(fd, Int32(SHUT_RDWR))
            Glibc.close(fd)
        }
    }

    deinit { close() }

    private func serveForever() {
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return
            }
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            respond(client)
            Glibc.close(client)
        }
    }

    private func respond(_ client: Int32) {
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 2048)
        while request.count < 16 * 1024 {
            let n = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return }
            request += buffer[0..<n]
            if String(decoding: request, as: UTF8.self).contains("\r\n\r\n") { break }
        }
        let requestLine = String(decoding: request, as: UTF8.self).prefix { $0 != "\r" && $0 != "\n" }
        let parts = requestLine.split(separator: " ")
        let (status, contentType, body): (Int, String, String)
        if parts.count < 2 || (parts[0] != "GET" && parts[0] != "HEAD") {
            (status, contentType, body) = (405, "text/plain", "method not allowed\n")
        } else {
            switch parts[1].split(separator: "?").first.map(String.init) ?? "" {
            case "/healthz": (status, contentType, body) = (200, "text/plain", "ok\n")
            case "/readyz":
                (status, contentType, body) = probes.ready() ? (200, "text/plain", "ready\n") : (503, "text/plain", "not ready\n")
            case "/metrics": (status, contentType, body) = (200, "text/plain; version=0.0.4", probes.metrics())
            default: (status, contentType, body) = (404, "text/plain", "not found\n")
            }
        }
        let reason = [200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"][status] ?? "OK"
        let payload = Array(body.utf8)
        var response = Array("HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(contentType)\r\nContent-Length: \(payload.count)\r\nConnection: close\r\n\r\n".utf8)
        if parts.first != "HEAD" { response += payload }
        var offset = 0
        while offset < response.count {
            let n = response.withUnsafeBytes { send(client, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }
}
