import CCurl
import Foundation
import Imaging
#if canImport(Glibc)
import Glibc
#endif

/// Limits and policy for one kind of download.
public struct FetchOptions: Sendable, Equatable {
    /// Seconds allowed to establish the connection (TCP + TLS).
    public var connectTimeout: Double
    /// Seconds allowed for the whole transfer, redirects included.
    public var totalTimeout: Double
    /// Largest accepted body, checked against Content-Length and while streaming.
    public var maxBytes: Int
    /// Redirects followed at most (each must stay http/https and pass the address policy).
    public var maxRedirects: Int
    /// Which peer addresses may be connected to.
    public var addressPolicy: AddressPolicy
    /// Sent as the User-Agent header.
    public var userAgent: String

    public init(connectTimeout: Double = 10, totalTimeout: Double = 60, maxBytes: Int = 25 * 1024 * 1024,
                maxRedirects: Int = 3, addressPolicy: AddressPolicy = AddressPolicy(),
                userAgent: String = "myroom-3d mesh-worker") {
        self.connectTimeout = connectTimeout
        self.totalTimeout = totalTimeout
        self.maxBytes = maxBytes
        self.maxRedirects = maxRedirects
        self.addressPolicy = addressPolicy
        self.userAgent = userAgent
    }
}

/// A downloaded image: the bytes and what is known about them.
public struct FetchedImage: Sendable {
    public var bytes: [UInt8]
    /// Sniffed from the bytes, never from headers; always JPEG or PNG.
    public var format: ImageFormat
    /// The URL after redirects.
    public var effectiveURL: String
    public var statusCode: Int
    /// The Content-Type the server sent (informational only).
    public var contentType: String?
    /// The peer address of the last connection.
    public var remoteAddress: String?
    public var redirectCount: Int
}

/// Downloads images over http/https with libcurl, with timeouts, a size limit enforced while
/// streaming, content sniffing and an address guard applied to every socket curl opens.
/// Thread-safe: each call uses its own curl handle.
public struct Fetcher: Sendable {
    public var options: FetchOptions

    public init(options: FetchOptions = FetchOptions()) {
        self.options = options
    }

    /// Bytes read before the content is sniffed (enough for every signature `ImageFormat` knows
    /// and for `describeNonImage` to recognise an HTML page).
    static let sniffLength = 64

    /// Downloads `urlString`; every failure is a `FetchError`.
    public func fetch(_ urlString: String) throws(FetchError) -> FetchedImage {
        try Self.checkURL(urlString)
        Self.globalInit
        guard let handle = curl_easy_init() else { throw .connectionFailed("curl_easy_init failed") }
        defer { curl_easy_cleanup(handle) }

        let context = TransferContext(maxBytes: options.maxBytes, policy: options.addressPolicy)
        let unmanaged = Unmanaged.passRetained(context)
        defer { unmanaged.release() }
        let opaque = unmanaged.toOpaque()

        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        let code: CURLcode = errorBuffer.withUnsafeMutableBufferPointer { errorPointer in
            var setupFailed: CURLcode = CURLE_OK
            func set(_ result: CURLcode) { if result != CURLE_OK && setupFailed == CURLE_OK { setupFailed = result } }
            set(mr_curl_setopt_string(handle, CURLOPT_URL, urlString))
            set(mr_curl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https"))
            set(mr_curl_setopt_string(handle, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"))
            set(mr_curl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 1))
            set(mr_curl_setopt_long(handle, CURLOPT_MAXREDIRS, options.maxRedirects))
            set(mr_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1))
            set(mr_curl_setopt_long(handle, CURLOPT_FAILONERROR, 1))
            set(mr_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, max(1, Int(options.connectTimeout * 1000))))
            set(mr_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, max(1, Int(options.totalTimeout * 1000))))
            set(mr_curl_setopt_off(handle, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(options.maxBytes)))
            // No proxy: the address guard must see the real peer, not a proxy.
            set(mr_curl_setopt_string(handle, CURLOPT_PROXY, ""))
            set(mr_curl_setopt_string(handle, CURLOPT_USERAGENT, options.userAgent))
            set(mr_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorPointer.baseAddress))
            set(mr_curl_setopt_write_callback(handle, fetchWriteCallback))
            set(mr_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, opaque))
            set(mr_curl_setopt_header_callback(handle, fetchHeaderCallback))
            set(mr_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, opaque))
            set(mr_curl_setopt_opensocket_callback(handle, fetchOpenSocketCallback))
            set(mr_curl_setopt_pointer(handle, CURLOPT_OPENSOCKETDATA, opaque))
            guard setupFailed == CURLE_OK else { return setupFailed }
            return curl_easy_perform(handle)
        }
        let curlMessage = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)

        var status = 0
        var redirects = 0
        var effective: UnsafeMutablePointer<CChar>?
        var contentType: UnsafeMutablePointer<CChar>?
        var remoteIP: UnsafeMutablePointer<CChar>?
        _ = mr_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        _ = mr_curl_getinfo_long(handle, CURLINFO_REDIRECT_COUNT, &redirects)
        _ = mr_curl_getinfo_string(handle, CURLINFO_EFFECTIVE_URL, &effective)
        _ = mr_curl_getinfo_string(handle, CURLINFO_CONTENT_TYPE, &contentType)
        _ = mr_curl_getinfo_string(handle, CURLINFO_PRIMARY_IP, &remoteIP)

        if let failure = context.failure { throw failure }
        if code == CURLE_FILESIZE_EXCEEDED {
            // curl raises this only for a Content-Length over the limit (streaming is checked in `append`).
            throw .tooLarge(limit: options.maxBytes, declared: context.declaredLength)
        }
        if code != CURLE_OK {
            throw Self.classify(code, status: status, message: curlMessage.isEmpty ? Self.describe(code) : curlMessage,
                                options: options, redirectScheme: context.locationScheme)
        }
        if context.bytes.isEmpty { throw .empty }
        let format = try context.sniffFormat()
        return FetchedImage(bytes: context.bytes, format: format,
                            effectiveURL: effective.map { String(cString: $0) } ?? urlString,
                            statusCode: status, contentType: contentType.map { String(cString: $0) },
                            remoteAddress: remoteIP.map { String(cString: $0) }, redirectCount: redirects)
    }

    /// Rejects what curl should never see: non-http(s) schemes and URLs without a host.
    static func checkURL(_ urlString: String) throws(FetchError) {
        guard let components = URLComponents(string: urlString), let scheme = components.scheme?.lowercased() else {
            throw .invalidURL(urlString)
        }
        guard scheme == "http" || scheme == "https" else { throw .unsupportedScheme(scheme) }
        guard let host = components.host, !host.isEmpty else { throw .invalidURL(urlString) }
    }

    /// - Parameter redirectScheme: the scheme of the last `Location` the server sent, if any.
    static func classify(_ code: CURLcode, status: Int, message: String, options: FetchOptions,
                         redirectScheme: String? = nil) -> FetchError {
        switch code {
        case CURLE_HTTP_RETURNED_ERROR: return .httpStatus(status)
        case CURLE_UNSUPPORTED_PROTOCOL:
            // The job's URL was checked; this comes from a redirect. curl's message ("Protocol "file"
            // not supported or disabled in libcurl") is not for users: name the scheme instead.
            return .redirectToUnsupportedScheme(redirectScheme ?? Self.quotedScheme(in: message) ?? "non-http")
        case CURLE_URL_MALFORMAT: return .invalidURL(message)
        case CURLE_TOO_MANY_REDIRECTS: return .tooManyRedirects(limit: options.maxRedirects)
        case CURLE_FILESIZE_EXCEEDED: return .tooLarge(limit: options.maxBytes, declared: nil)
        case CURLE_OPERATION_TIMEDOUT: return .timeout(message)
        default: return .connectionFailed(message)
        }
    }

    /// `file` from curl's `Protocol "file" not supported…`, when the message has that shape.
    static func quotedScheme(in message: String) -> String? {
        let parts = message.split(separator: "\"", omittingEmptySubsequences: false)
        guard parts.count >= 3, !parts[1].isEmpty, parts[1].allSatisfy({ $0.isLetter || $0.isNumber || "+-.".contains($0) }) else {
            return nil
        }
        return parts[1].lowercased()
    }

    static func describe(_ code: CURLcode) -> String {
        guard let text = curl_easy_strerror(code) else { return "curl error \(code.rawValue)" }
        return String(cString: text)
    }

    /// curl_global_init is not thread-safe; run it once, before any handle exists.
    static let globalInit: Void = {
        _ = curl_global_init(Int(CURL_GLOBAL_DEFAULT))
    }()
}

/// Mutable state of one transfer, shared with the C callbacks through an opaque pointer.
/// Only the thread running `curl_easy_perform` touches it.
final class TransferContext {
    let maxBytes: Int
    let policy: AddressPolicy
    var bytes: [UInt8] = []
    var failure: FetchError?
    var sniffed = false
    /// The Content-Length of the latest response (each redirect hop resets it).
    var declaredLength: Int?
    /// The scheme of the latest response's `Location` header, lowercased (nil when it had none, or
    /// it is relative).
    var locationScheme: String?

    init(maxBytes: Int, policy: AddressPolicy) {
        self.maxBytes = maxBytes
        self.policy = policy
    }

    func sniffFormat() throws(FetchError) -> ImageFormat {
        guard let format = ImageFormat.detect(bytes) else {
            throw .notAnImage(ImageFormat.describeNonImage(bytes))
        }
        guard format.isDecodable else { throw .unsupportedFormat(format.rawValue) }
        return format
    }

    /// Appends a chunk; returns false (abort) past the size limit or when the first bytes are
    /// not a JPEG or PNG.
    func append(_ chunk: UnsafeRawBufferPointer) -> Bool {
        if bytes.count + chunk.count > maxBytes {
            failure = .tooLarge(limit: maxBytes, declared: nil)
            return false
        }
        bytes.append(contentsOf: chunk)
        if !sniffed && bytes.count >= Fetcher.sniffLength {
            sniffed = true
            do { _ = try sniffFormat() } catch {
                failure = error
                return false
            }
        }
        return true
    }
}

private let fetchWriteCallback: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = {
    data, size, count, userdata in
    guard let userdata else { return 0 }
    let context = Unmanaged<TransferContext>.fromOpaque(userdata).takeUnretainedValue()
    let total = size * count
    guard total > 0, let data else { return total }
    return context.append(UnsafeRawBufferPointer(start: data, count: total)) ? total : 0
}

/// Notes each response's Content-Length (for the error message when it is over the limit) and
/// Location scheme (for the error message when a redirect leaves http/https).
private let fetchHeaderCallback: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = {
    data, size, count, userdata in
    let total = size * count
    guard let userdata, let data, total > 0 else { return total }
    let context = Unmanaged<TransferContext>.fromOpaque(userdata).takeUnretainedValue()
    let line = String(decoding: UnsafeRawBufferPointer(start: data, count: total), as: UTF8.self)
    if line.hasPrefix("HTTP/") {
        context.declaredLength = nil
        context.locationScheme = nil
    } else if line.lowercased().hasPrefix("content-length:") {
        context.declaredLength = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespacesAndNewlines))
    } else if line.lowercased().hasPrefix("location:") {
        let target = line.dropFirst("location:".count).trimmingCharacters(in: .whitespacesAndNewlines)
        context.locationScheme = URLComponents(string: target)?.scheme?.lowercased()
    }
    return total
}

/// Opens every socket curl asks for, after checking the address it is about to connect to.
private let fetchOpenSocketCallback: @convention(c) (UnsafeMutableRawPointer?, curlsocktype, UnsafeMutablePointer<curl_sockaddr>?) -> curl_socket_t = {
    clientp, purpose, address in
    guard let clientp, let address else { return CURL_SOCKET_BAD }
    let context = Unmanaged<TransferContext>.fromOpaque(clientp).takeUnretainedValue()
    let offset = MemoryLayout<curl_sockaddr>.offset(of: \curl_sockaddr.addr)!
    let raw = UnsafeRawPointer(address) + offset
    guard let peer = IPAddress(sockaddr: raw, length: Int(address.pointee.addrlen)) else {
        context.failure = .refusedAddress("unsupported address family \(address.pointee.family)")
        return CURL_SOCKET_BAD
    }
    if let reason = context.policy.refusalReason(for: peer) {
        context.failure = .refusedAddress(reason)
        return CURL_SOCKET_BAD
    }
    let fd = socket(address.pointee.family, address.pointee.socktype | Int32(SOCK_CLOEXEC.rawValue), address.pointee.protocol)
    return fd < 0 ? CURL_SOCKET_BAD : fd
}
