/// TLS settings for `amqps://` connections (rabbitmq-c's `amqp_ssl_socket`, OpenSSL).
public struct AMQPTLSOptions: Sendable, Hashable {
    /// PEM file with the CA certificates that sign the broker's certificate. `nil`: OpenSSL's default paths.
    public var caCertificateFile: String?
    /// PEM client certificate for mutual TLS (needs `clientKeyFile`).
    public var clientCertificateFile: String?
    /// PEM private key of the client certificate.
    public var clientKeyFile: String?
    /// Check the broker's certificate chain against the CA (default true).
    public var verifyPeer: Bool
    /// Check that the broker's certificate names the host connected to (default true).
    public var verifyHostname: Bool

    public init(caCertificateFile: String? = nil, clientCertificateFile: String? = nil, clientKeyFile: String? = nil,
                verifyPeer: Bool = true, verifyHostname: Bool = true) {
        self.caCertificateFile = caCertificateFile
        self.clientCertificateFile = clientCertificateFile
        self.clientKeyFile = clientKeyFile
        self.verifyPeer = verifyPeer
        self.verifyHostname = verifyHostname
    }
}

/// Where and how to connect: parsed from an AMQP URL, then adjustable field by field.
///
/// `description` never shows the password.
public struct AMQPConfiguration: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable {
    /// The URL every test and the worker fall back to.
    public static let defaultURL = "amqp://guest:guest@127.0.0.1:5672/"

    /// Host name or IP address of the broker.
    public var host: String
    /// TCP port; 5672 for amqp, 5671 for amqps unless the URL says otherwise.
    public var port: Int
    /// The virtual host, decoded (`%2F` in the URL → `/`). An empty URL path means `/`.
    public var virtualHost: String
    /// User name for PLAIN login.
    public var username: String
    /// Password for PLAIN login; never part of `description`, `debugDescription` or the mirror.
    public var password: String
    /// True for `amqps://`: the connection uses TLS.
    public var useTLS: Bool
    /// Certificate checks and files for `useTLS`.
    public var tls: AMQPTLSOptions
    /// Heartbeat interval proposed to the broker in seconds; 0 disables heartbeats. Default 30.
    public var heartbeat: Int
    /// Largest frame proposed to the broker, in bytes. Default 131072.
    public var frameMax: Int
    /// Most channels proposed to the broker; 0 means the broker's limit. Default 0.
    public var channelMax: Int
    /// Shown in the broker's management UI and `rabbitmqctl list_connections` (client property `connection_name`).
    public var connectionName: String?
    /// Limit for opening the socket and the AMQP handshake. Default 10 s.
    public var connectTimeout: Duration
    /// Limit for each synchronous request (declare, bind, qos, …). Default 30 s.
    public var rpcTimeout: Duration

    /// A configuration with every field given; see `init(url:environment:)` for the usual way.
    public init(host: String = "127.0.0.1", port: Int? = nil, virtualHost: String = "/", username: String = "guest",
                password: String = "guest", useTLS: Bool = false, tls: AMQPTLSOptions = AMQPTLSOptions(),
                heartbeat: Int = 30, frameMax: Int = 131_072, channelMax: Int = 0, connectionName: String? = nil,
                connectTimeout: Duration = .seconds(10), rpcTimeout: Duration = .seconds(30)) {
        self.host = host
        self.port = port ?? (useTLS ? 5671 : 5672)
        self.virtualHost = virtualHost
        self.username = username
        self.password = password
        self.useTLS = useTLS
        self.tls = tls
        self.heartbeat = heartbeat
        self.frameMax = frameMax
        self.channelMax = channelMax
        self.connectionName = connectionName
        self.connectTimeout = connectTimeout
        self.rpcTimeout = rpcTimeout
    }

    /// Parses `amqp://[user[:password]@]host[:port][/vhost][?query]` (or `amqps://`).
    ///
    /// - User, password and vhost are percent-decoded; `/` and an empty path mean the vhost `/`, `/%2F` too.
    /// - Host may be an IPv6 literal in brackets. Port defaults to 5672 (amqp) or 5671 (amqps).
    /// - Query keys (RabbitMQ's URI conventions): `heartbeat` (s), `connection_timeout` (ms), `frame_max`,
    ///   `channel_max`, `connection_name`, `cacertfile`, `certfile`, `keyfile`, `verify` (`verify_peer` |
    ///   `verify_none`), `verify_hostname` (`true` | `false`). Unknown keys are an error.
    /// - `AMQP_USERNAME` and `AMQP_PASSWORD` in `environment`, when set and not empty, override the URL's credentials.
    public init(url: String, environment: [String: String] = [:]) throws(AMQPError) {
        let scheme: String
        var rest: Substring
        if let r = url.range(of: "://") {
            scheme = url[..<r.lowerBound].lowercased()
            rest = url[r.upperBound...]
        } else {
            throw .invalidURL("missing scheme (expected amqp:// or amqps://)")
        }
        guard scheme == "amqp" || scheme == "amqps" else {
            throw .invalidURL("scheme '\(scheme)' is not amqp or amqps")
        }
        self.init(useTLS: scheme == "amqps")

        var query: Substring = ""
        if let q = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }
        if let f = rest.firstIndex(of: "#") { rest = rest[..<f] }
        var authority = rest
        var path: Substring? = nil
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            path = rest[rest.index(after: slash)...]
        }
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            authority = authority[authority.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                username = try Self.percentDecode(userInfo[..<colon], what: "user name")
                password = try Self.percentDecode(userInfo[userInfo.index(after: colon)...], what: "password")
            } else {
                username = try Self.percentDecode(userInfo, what: "user name")
            }
        }
        var hostPart = authority
        var portPart: Substring? = nil
        if hostPart.hasPrefix("[") {
            guard let close = hostPart.firstIndex(of: "]") else { throw .invalidURL("unterminated IPv6 literal") }
            let after = hostPart[hostPart.index(after: close)...]
            hostPart = hostPart[hostPart.index(after: hostPart.startIndex)..<close]
            if after.hasPrefix(":") { portPart = after.dropFirst() } else if !after.isEmpty {
                throw .invalidURL("unexpected text after IPv6 literal")
            }
        } else if let colon = hostPart.lastIndex(of: ":") {
            portPart = hostPart[hostPart.index(after: colon)...]
            hostPart = hostPart[..<colon]
        }
        if !hostPart.isEmpty { host = try Self.percentDecode(hostPart, what: "host") }
        if let portPart, !portPart.isEmpty {
            guard let p = Int(portPart), (1...65535).contains(p) else { throw .invalidURL("bad port '\(portPart)'") }
            port = p
        }
        if let path, !path.isEmpty {
            guard !path.contains("/") else { throw .invalidURL("vhost must be one path segment; encode '/' as %2F") }
            virtualHost = try Self.percentDecode(path, what: "vhost")
        }
        for item in query.split(separator: "&") where !item.isEmpty {
            let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = try Self.percentDecode(pair[0], what: "query key")
            let value = pair.count > 1 ? try Self.percentDecode(pair[1], what: "query value") : ""
            try applyQuery(key: key, value: value)
        }
        if let user = environment["AMQP_USERNAME"], !user.isEmpty { username = user }
        if let pass = environment["AMQP_PASSWORD"], !pass.isEmpty { password = pass }
    }

    private mutating func applyQuery(key: String, value: String) throws(AMQPError) {
        func int(_ range: ClosedRange<Int>) throws(AMQPError) -> Int {
            guard let v = Int(value), range.contains(v) else { throw .invalidURL("bad value '\(value)' for \(key)") }
            return v
        }
        func bool() throws(AMQPError) -> Bool {
            switch value.lowercased() {
            case "true", "1", "yes": return true
            case "false", "0", "no": return false
            default: throw .invalidURL("bad value '\(value)' for \(key)")
            }
        }
        switch key {
        case "heartbeat": heartbeat = try int(0...65535)
        case "connection_timeout": connectTimeout = .milliseconds(try int(1...3_600_000))
        case "frame_max": frameMax = try int(4096...Int(Int32.max))
        case "channel_max": channelMax = try int(0...65535)
        case "connection_name": connectionName = value
        case "cacertfile": tls.caCertificateFile = value
        case "certfile": tls.clientCertificateFile = value
        case "keyfile": tls.clientKeyFile = value
        case "verify":
            switch value {
            case "verify_peer": tls.verifyPeer = true
            case "verify_none": tls.verifyPeer = false; tls.verifyHostname = false
            default: throw .invalidURL("bad value '\(value)' for verify (verify_peer or verify_none)")
            }
        case "verify_hostname": tls.verifyHostname = try bool()
        default: throw .invalidURL("unknown query parameter '\(key)'")
        }
    }

    /// The configuration from `AMQP_URL` (default `defaultURL`) and `AMQP_USERNAME`/`AMQP_PASSWORD` in `environment`.
    public static func fromEnvironment(_ environment: [String: String]) throws(AMQPError) -> AMQPConfiguration {
        let url = environment["AMQP_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? defaultURL
        return try AMQPConfiguration(url: url, environment: environment)
    }

    /// The URL without the password (`amqp://user@host:port/vhost`), for logs.
    public var redactedURL: String {
        let scheme = useTLS ? "amqps" : "amqp"
        let h = host.contains(":") ? "[\(host)]" : host
        return "\(scheme)://\(Self.percentEncode(username))@\(h):\(port)/\(Self.percentEncode(virtualHost))"
    }

    /// Like `description`: no password.
    public var debugDescription: String { "AMQPConfiguration(\(description))" }

    /// Every field but the password (shown as `<redacted>`), so `dump` cannot leak it.
    public var customMirror: Mirror {
        Mirror(self, children: [
            "host": host, "port": port, "virtualHost": virtualHost, "username": username,
            "password": "<redacted>", "useTLS": useTLS, "tls": tls, "heartbeat": heartbeat, "frameMax": frameMax,
            "channelMax": channelMax, "connectionName": connectionName as Any, "connectTimeout": connectTimeout,
            "rpcTimeout": rpcTimeout,
        ], displayStyle: .struct)
    }

    /// The redacted URL and the main settings, for logs.
    public var description: String {
        var s = "\(redactedURL) heartbeat=\(heartbeat)s"
        if let connectionName { s += " name=\(connectionName)" }
        if useTLS { s += " tls(verifyPeer=\(tls.verifyPeer), verifyHostname=\(tls.verifyHostname))" }
        return s
    }

    static func percentDecode(_ s: Substring, what: String) throws(AMQPError) -> String {
        guard s.contains("%") else { return String(s) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(s.utf8.count)
        var it = Array(s.utf8)[...]
        while let b = it.popFirst() {
            if b == UInt8(ascii: "%") {
                guard it.count >= 2, let hi = hexValue(it.removeFirst()), let lo = hexValue(it.removeFirst()) else {
                    throw .invalidURL("bad percent-encoding in \(what)")
                }
                bytes.append(hi << 4 | lo)
            } else {
                bytes.append(b)
            }
        }
        let decoded = String(decoding: bytes, as: UTF8.self)
        guard decoded.utf8.elementsEqual(bytes) else { throw .invalidURL("\(what) is not UTF-8 after percent-decoding") }
        return decoded
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    static func percentEncode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                 UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%" + String(decoding: [hex[Int(b >> 4)], hex[Int(b & 15)]], as: UTF8.self)
            }
        }
        return out
    }
}
