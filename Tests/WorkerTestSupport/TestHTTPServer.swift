import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A small HTTP/1.1 server on 127.0.0.1 with an ephemeral port, for tests only: blocking POSIX
/// sockets, one thread per connection, `Connection: close` on every answer. Routes are exact
/// paths (query strings are parsed and handed to the handler).
public final class TestHTTPServer: @unchecked Sendable {
    /// One parsed request.
    public struct Request: Sendable {
        public var method: String
        public var path: String
        public var query: [String: String]
        public var headers: [String: String]
    }

    /// What to send back.
    public struct Response: Sendable {
        public enum Body: Sendable {
            /// Sent with a Content-Length.
            case bytes([UInt8])
            /// `count` bytes starting with `prefix` then a repeating pattern, written in 64 KiB
            /// pieces; with a Content-Length when `declareLength`, otherwise ended by closing.
            case stream(count: Int, prefix: [UInt8], declareLength: Bool)
        }
        public var status: Int
        public var headers: [(String, String)]
        public var body: Body
        /// Sleep before the status line is written.
        public var delay: Double

        public init(status: Int, headers: [(String, String)] = [], body: Body = .bytes([]), delay: Double = 0) {
            self.status = status
            self.headers = headers
            self.body = body
            self.delay = delay
        }

        public static func ok(_ bytes: [UInt8], contentType: String) -> Response {
            Response(status: 200, headers: [("Content-Type", contentType)], body: .bytes(bytes))
        }

        public static func status(_ code: Int) -> Response {
            Response(status: code, headers: [("Content-Type", "text/html")],
                     body: .bytes(Array("<html><body>\(code)</body></html>".utf8)))
        }

        public static func redirect(to location: String, status: Int = 302) -> Response {
            Response(status: status, headers: [("Location", location)])
        }
    }

    public typealias Handler = @Sendable (Request) -> Response

    public let port: UInt16
    private let listenFD: Int32
    private let lock = NSLock()
    private var routes: [String: Handler] = [:]
    private var hits: [String: Int] = [:]
    private var stopped = false

    /// Binds 127.0.0.1 on an ephemeral port and starts accepting.
    public init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 128) == 0 else {
            close(fd)
            throw POSIXError(.init(rawValue: errno) ?? .EIO)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        listenFD = fd
        port = UInt16(bigEndian: address.sin_port)
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "TestHTTPServer.accept"
        thread.start()
    }

    deinit { stop() }

    /// `http://127.0.0.1:PORT`
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// `baseURL + path`
    public func url(_ path: String) -> String { baseURL + path }

    /// Registers (or replaces) the handler for an exact path.
    public func route(_ path: String, _ handler: @escaping Handler) {
        lock.lock(); defer { lock.unlock() }
        routes[path] = handler
    }

    /// How many requests reached `path` so far.
    public func hitCount(_ path: String) -> Int {
        lock.lock(); defer { lock.unlock() }
        return hits[path, default: 0]
    }

    /// Stops accepting new connections (connections already open finish).
    public func stop() {
        // Shutdown wakes the accept loop, which closes the socket itself. Closing it here let
        // the descriptor number go to another test's new server while this loop could still call
        // accept on it, answering that server's clients with 404s. (Under the lock, so it never
        // meets a descriptor the loop has closed.)
        lock.lock(); defer { lock.unlock() }
        if !stopped { shutdown(listenFD, Int32(SHUT_RDWR)) }
        stopped = true
    }

    private func acceptLoop() {
        while true {
            let client = accept(listenFD, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                lock.lock()
                stopped = true
                close(listenFD)
                lock.unlock()
                return
            }
            let thread = Thread { [self] in
                serve(client)
                close(client)
            }
            thread.start()
        }
    }

    private func serve(_ fd: Int32) {
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard let request = readRequest(fd) else { return }
        lock.lock()
        hits[request.path, default: 0] += 1
        let handler = routes[request.path]
        lock.unlock()
        let response = handler?(request) ?? .status(404)
        if response.delay > 0 { Thread.sleep(forTimeInterval: response.delay) }
        write(response, to: fd)
    }

    private func readRequest(_ fd: Int32) -> Request? {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        let terminator: [UInt8] = [13, 10, 13, 10]
        while buffer.count < 64 * 1024 {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return nil }
            buffer.append(contentsOf: chunk[0..<n])
            if buffer.count >= 4, let end = findSubsequence(terminator, in: buffer) {
                buffer.removeSubrange(end...)
                break
            }
        }
        let lines = String(decoding: buffer, as: UTF8.self).components(separatedBy: "\r\n")
        let parts = lines.first?.split(separator: " ") ?? []
        guard parts.count >= 2 else { return nil }
        let target = String(parts[1])
        let components = URLComponents(string: target)
        var query: [String: String] = [:]
        for item in components?.queryItems ?? [] { query[item.name] = item.value ?? "" }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Request(method: String(parts[0]), path: components?.path ?? target, query: query, headers: headers)
    }

    private func findSubsequence(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
            if Array(haystack[i..<i + needle.count]) == needle { return i }
        }
        return nil
    }

    private func write(_ response: Response, to fd: Int32) {
        var head = "HTTP/1.1 \(response.status) \(Self.reason(response.status))\r\nConnection: close\r\n"
        for (name, value) in response.headers { head += "\(name): \(value)\r\n" }
        switch response.body {
        case .bytes(let bytes):
            head += "Content-Length: \(bytes.count)\r\n\r\n"
            guard sendAll(Array(head.utf8), fd) else { return }
            _ = sendAll(bytes, fd)
        case .stream(let count, let prefix, let declareLength):
            if declareLength { head += "Content-Length: \(count)\r\n" }
            head += "\r\n"
            guard sendAll(Array(head.utf8), fd) else { return }
            var sent = 0
            var piece = [UInt8](repeating: 0x5A, count: 64 * 1024)
            for (i, byte) in prefix.prefix(piece.count).enumerated() { piece[i] = byte }
            while sent < count {
                let n = min(piece.count, count - sent)
                guard sendAll(Array(piece[0..<n]), fd) else { return }
                if sent == 0 { for i in 0..<min(prefix.count, piece.count) { piece[i] = 0x5A } }
                sent += n
            }
        }
    }

    /// Writes everything or gives up when the peer has gone (no SIGPIPE).
    private func sendAll(_ bytes: [UInt8], _ fd: Int32) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n <= 0 {
                if n < 0 && errno == EINTR { continue }
                return false
            }
            offset += n
        }
        return true
    }

    private static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 404: "Not Found"
        case 408: "Request Timeout"
        case 429: "Too Many Requests"
        case 500: "Internal Server Error"
        case 503: "Service Unavailable"
        default: "Status"
        }
    }
}
