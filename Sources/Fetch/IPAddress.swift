#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address as its raw network-order bytes (4 or 16 of them).
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// 4 bytes for IPv4, 16 for IPv6, network order.
    public let bytes: [UInt8]

    /// Wraps raw bytes; `bytes.count` must be 4 or 16.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// Parses dotted IPv4 ("127.0.0.1") or IPv6 ("::1", "::ffff:10.0.0.1") text.
    public init?(_ text: String) {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self.bytes = withUnsafeBytes(of: &v4) { Array($0) }
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            self.bytes = withUnsafeBytes(of: &v6) { Array($0) }
            return
        }
        return nil
    }

    /// Reads the address out of a `sockaddr_in` / `sockaddr_in6`; nil for other families.
    public init?(sockaddr pointer: UnsafeRawPointer, length: Int) {
        let family = Int32(pointer.load(fromByteOffset: MemoryLayout<sockaddr>.offset(of: \sockaddr.sa_family)!,
                                        as: sa_family_t.self))
        if family == AF_INET, length >= MemoryLayout<sockaddr_in>.size {
            let offset = MemoryLayout<sockaddr_in>.offset(of: \sockaddr_in.sin_addr)!
            self.bytes = Array(UnsafeRawBufferPointer(start: pointer + offset, count: 4))
        } else if family == AF_INET6, length >= MemoryLayout<sockaddr_in6>.size {
            let offset = MemoryLayout<sockaddr_in6>.offset(of: \sockaddr_in6.sin6_addr)!
            self.bytes = Array(UnsafeRawBufferPointer(start: pointer + offset, count: 16))
        } else {
            return nil
        }
    }

    public var isIPv4: Bool { bytes.count == 4 }

    /// The IPv4 address embedded in an IPv4-mapped (`::ffff:a.b.c.d`) or IPv4-compatible
    /// (`::a.b.c.d`) IPv6 address, or in the NAT64 (`64:ff9b::/96`) and 6to4 (`2002::/16`) prefixes.
    public var embeddedIPv4: IPAddress? {
        guard bytes.count == 16 else { return nil }
        let zeros10 = bytes[0..<10].allSatisfy { $0 == 0 }
        if zeros10 && bytes[10] == 0xFF && bytes[11] == 0xFF { return IPAddress(bytes: Array(bytes[12..<16])) }
        if zeros10 && bytes[10] == 0 && bytes[11] == 0 { return IPAddress(bytes: Array(bytes[12..<16])) }
        if bytes[0..<12] == [0x00, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0][...] {
            return IPAddress(bytes: Array(bytes[12..<16]))
        }
        if bytes[0] == 0x20 && bytes[1] == 0x02 { return IPAddress(bytes: Array(bytes[2..<6])) }
        return nil
    }

    public var description: String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        var raw = bytes
        let family = isIPv4 ? AF_INET : AF_INET6
        let ok = raw.withUnsafeMutableBytes { inet_ntop(family, $0.baseAddress, &text, socklen_t(text.count)) } != nil
        guard ok else { return bytes.map(String.init).joined(separator: ".") }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A CIDR block such as `127.0.0.0/8` or `fd00::/8`.
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    public let address: IPAddress
    public let prefixLength: Int

    /// Parses `ADDRESS/PREFIX` (a bare address means a single host).
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { return nil }
        let maxPrefix = address.bytes.count * 8
        var prefix = maxPrefix
        if parts.count == 2 {
            guard let p = Int(parts[1]), (0...maxPrefix).contains(p) else { return nil }
            prefix = p
        }
        self.init(address: address, prefixLength: prefix)
    }

    public init(address: IPAddress, prefixLength: Int) {
        precondition(prefixLength >= 0 && prefixLength <= address.bytes.count * 8, "prefix out of range")
        // Store the network address (host bits cleared) so equal blocks compare equal.
        var bytes = address.bytes
        for i in bytes.indices {
            let bitsHere = max(0, min(8, prefixLength - i * 8))
            bytes[i] &= bitsHere == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - bitsHere))
        }
        self.address = IPAddress(bytes: bytes)!
        self.prefixLength = prefixLength
    }

    /// Whether `candidate` lies in this block (same family only).
    public func contains(_ candidate: IPAddress) -> Bool {
        guard candidate.bytes.count == address.bytes.count else { return false }
        var remaining = prefixLength
        for i in address.bytes.indices where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            if candidate.bytes[i] & mask != address.bytes[i] { return false }
            remaining -= bits
        }
        return true
    }

    public var description: String { "\(address)/\(prefixLength)" }
}

/// Decides which peer addresses a download may connect to. By default only globally routable
/// unicast addresses pass; `allowed` blocks (CIDR) pass whatever they are.
public struct AddressPolicy: Sendable, Equatable {
    /// Blocks that pass even when they are not public (e.g. `127.0.0.0/8` in tests).
    public var allowed: [IPNetwork]

    public init(allowed: [IPNetwork] = []) {
        self.allowed = allowed
    }

    /// Parses comma- or space-separated CIDR text; nil when any entry does not parse.
    public init?(allowList text: String) {
        var networks: [IPNetwork] = []
        for item in text.split(whereSeparator: { $0 == "," || $0 == " " }) {
            guard let network = IPNetwork(String(item)) else { return nil }
            networks.append(network)
        }
        self.init(allowed: networks)
    }

    private static let refusedV4: [(IPNetwork, String)] = [
        ("0.0.0.0/8", "unspecified/this-network"), ("10.0.0.0/8", "private"), ("100.64.0.0/10", "carrier-grade NAT"),
        ("127.0.0.0/8", "loopback"), ("169.254.0.0/16", "link-local"), ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol assignments"), ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4 relay anycast"), ("192.168.0.0/16", "private"), ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"), ("203.0.113.0/24", "documentation"), ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved/broadcast"),
    ].map { (IPNetwork($0.0)!, $0.1) }

    private static let refusedV6: [(IPNetwork, String)] = [
        ("::/128", "unspecified"), ("::1/128", "loopback"), ("100::/64", "discard-only"),
        ("2001::/23", "IETF protocol assignments"), ("2001:db8::/32", "documentation"), ("fc00::/7", "unique local (private)"),
        ("fe80::/10", "link-local"), ("fec0::/10", "site-local"), ("ff00::/8", "multicast"),
    ].map { (IPNetwork($0.0)!, $0.1) }

    /// Why `address` is refused, or nil when a connection to it is allowed.
    public func refusalReason(for address: IPAddress) -> String? {
        if allowed.contains(where: { $0.contains(address) }) { return nil }
        if !address.isIPv4, let reason = Self.refusedV6.first(where: { $0.0.contains(address) })?.1 {
            return "\(address) is a \(reason) address"
        }
        if let v4 = address.embeddedIPv4 {
            if allowed.contains(where: { $0.contains(v4) }) { return nil }
            if let reason = Self.refusedV4.first(where: { $0.0.contains(v4) })?.1 {
                return "\(address) embeds \(v4), a \(reason) address"
            }
            return nil
        }
        if address.isIPv4, let reason = Self.refusedV4.first(where: { $0.0.contains(address) })?.1 {
            return "\(address) is a \(reason) address"
        }
        return nil
    }
}
