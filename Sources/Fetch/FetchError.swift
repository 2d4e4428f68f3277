import Imaging

/// Why a download failed. `isTransient` says whether trying again later can help.
public enum FetchError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The URL does not parse or has no host.
    case invalidURL(String)
    /// A scheme other than http/https in the job's URL.
    case unsupportedScheme(String)
    /// A redirect to a scheme other than http/https (`file`, `ftp`, …), which is never followed.
    case redirectToUnsupportedScheme(String)
    /// The peer address is loopback, private, link-local, … and not allow-listed.
    case refusedAddress(String)
    /// The server answered with an HTTP error status.
    case httpStatus(Int)
    /// More redirects than allowed.
    case tooManyRedirects(limit: Int)
    /// The body is larger than allowed (`declared` when the Content-Length said so up front).
    case tooLarge(limit: Int, declared: Int?)
    /// The body is empty.
    case empty
    /// The body is not an image (an HTML page served as image/jpeg, …).
    case notAnImage(String)
    /// An image format that is recognised but not decoded (GIF, WebP, …).
    case unsupportedFormat(String)
    /// Connect or total timeout.
    case timeout(String)
    /// DNS failure, refused or reset connection, TLS failure, broken transfer.
    case connectionFailed(String)

    /// A short, stable code for logs, metrics and dead-letter headers.
    public var code: String {
        switch self {
        case .invalidURL: "invalid_url"
        case .unsupportedScheme, .redirectToUnsupportedScheme: "unsupported_scheme"
        case .refusedAddress: "address_refused"
        case .httpStatus(let status): "http_\(status)"
        case .tooManyRedirects: "too_many_redirects"
        case .tooLarge: "file_too_large"
        case .empty: "empty"
        case .notAnImage: "not_an_image"
        case .unsupportedFormat: "unsupported_format"
        case .timeout: "download_timeout"
        case .connectionFailed: "connection_failed"
        }
    }

    /// True for failures that may go away on a later try: timeouts, connection errors,
    /// HTTP 5xx, 408 and 429. Everything else is permanent.
    public var isTransient: Bool {
        switch self {
        case .timeout, .connectionFailed: true
        case .httpStatus(let status): status >= 500 || status == 408 || status == 429
        default: false
        }
    }

    public var description: String {
        switch self {
        case .invalidURL(let url): "invalid URL: \(url)"
        case .unsupportedScheme(let scheme): "URL scheme \"\(scheme)\" is not allowed (http and https are)"
        case .redirectToUnsupportedScheme(let scheme): "redirect to a \(scheme):// URL is not allowed (http and https are)"
        case .refusedAddress(let reason): "refused to connect: \(reason)"
        case .httpStatus(let status): "the server answered HTTP \(status)"
        case .tooManyRedirects(let limit): "more than \(limit) redirects"
        case .tooLarge(let limit, let declared?): "the server declared \(declared) bytes, more than the limit of \(limit) bytes"
        case .tooLarge(let limit, nil): "the download exceeded the limit of \(limit) bytes"
        case .empty: "the server sent an empty body"
        case .notAnImage(let what): "not an image: \(what)"
        case .unsupportedFormat(let format): "\(format) images are not supported (JPEG and PNG are)"
        case .timeout(let detail): "download timed out: \(detail)"
        case .connectionFailed(let detail): "download failed: \(detail)"
        }
    }
}
