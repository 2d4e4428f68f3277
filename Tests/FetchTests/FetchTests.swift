import Fetch
import Foundation
import Imaging
import Testing
import WorkerTestSupport

/// One server for the whole suite; every route is stateless or keyed.
let server: TestHTTPServer = {
    let server = try! TestHTTPServer()
    server.installStandardRoutes()
    return server
}()

/// Loopback is allowed explicitly, as a deployment's allow-list would.
func loopbackFetcher(maxBytes: Int = 25 * 1024 * 1024, totalTimeout: Double = 20) -> Fetcher {
    Fetcher(options: FetchOptions(connectTimeout: 5, totalTimeout: totalTimeout, maxBytes: maxBytes,
                                  addressPolicy: AddressPolicy(allowList: "127.0.0.0/8")!))
}

func fetchError(_ body: () throws(FetchError) -> FetchedImage) -> FetchError? {
    do {
        _ = try body()
        return nil
    } catch {
        return error
    }
}

@Suite struct FetchTests {
    @Test(arguments: ["photo_0.jpg", "photo_1.png"])
    func downloadsAndSniffsFixture(name: String) throws {
        let image = try loopbackFetcher().fetch(server.url("/img/\(name)"))
        #expect(image.bytes == TestFixtures.bytes(name))
        #expect(image.format == (name.hasSuffix(".png") ? .png : .jpeg))
        #expect(image.statusCode == 200)
        #expect(image.remoteAddress == "127.0.0.1")
    }

    @Test func loopbackIsRefusedByDefault() {
        let error = fetchError { () throws(FetchError) in try Fetcher().fetch(server.url("/img/photo_0.jpg")) }
        guard case .refusedAddress(let reason)? = error else {
            Issue.record("expected refusedAddress, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("loopback"))
        #expect(error?.isTransient == false)
        #expect(error?.code == "address_refused")
    }

    @Test func localhostNameIsCheckedOnTheConnectedAddress() {
        // The host name passes URL checks; the guard sees the resolved 127.0.0.1 / ::1.
        let error = fetchError { () throws(FetchError) in
            try Fetcher().fetch("http://localhost:\(server.port)/img/photo_0.jpg")
        }
        #expect(error?.code == "address_refused")
    }

    @Test func redirectIntoRefusedAddressIsRefused() {
        // Allowed to reach 127.0.0.1 only; the redirect goes to 127.0.0.2 (also this machine).
        let fetcher = Fetcher(options: FetchOptions(addressPolicy: AddressPolicy(allowList: "127.0.0.1/32")!))
        let target = "http://127.0.0.2:\(server.port)/img/photo_0.jpg"
        let error = fetchError { () throws(FetchError) in
            try fetcher.fetch(server.url("/redirect?to=\(target.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)"))
        }
        #expect(error?.code == "address_refused")
    }

    @Test(arguments: [("file:///etc/passwd", "unsupported_scheme"), ("ftp://127.0.0.1/x.jpg", "unsupported_scheme"),
                      ("gopher://127.0.0.1/", "unsupported_scheme"), ("not a url", "invalid_url"),
                      ("http:///nohost.jpg", "invalid_url")])
    func rejectsBadURLs(url: String, code: String) {
        let error = fetchError { () throws(FetchError) in try loopbackFetcher().fetch(url) }
        #expect(error?.code == code)
        #expect(error?.isTransient == false)
    }

    /// Once reported as `URL scheme "Protocol "file" not supported or disabled in libcurl" is not allowed`.
    @Test(arguments: [("file%3A%2F%2F%2Fetc%2Fpasswd", "file"), ("FTP%3A%2F%2F127.0.0.1%2Fx.jpg", "ftp"),
                      ("gopher%3A%2F%2F127.0.0.1%2F", "gopher")])
    func redirectToAnotherSchemeIsRefusedClearly(target: String, scheme: String) {
        let error = fetchError { () throws(FetchError) in
            try loopbackFetcher().fetch(server.url("/redirect?to=\(target)"))
        }
        #expect(error == .redirectToUnsupportedScheme(scheme))
        #expect(error?.code == "unsupported_scheme")
        #expect(error?.isTransient == false)
        #expect(error?.description == "redirect to a \(scheme):// URL is not allowed (http and https are)")
    }

    @Test func followsUpToThreeRedirects() throws {
        let image = try loopbackFetcher().fetch(server.url("/redirect-chain?n=3&img=photo_2.jpg"))
        #expect(image.redirectCount == 3)
        #expect(image.bytes == TestFixtures.bytes("photo_2.jpg"))
        let error = fetchError { () throws(FetchError) in
            try loopbackFetcher().fetch(server.url("/redirect-chain?n=4&img=photo_2.jpg"))
        }
        #expect(error?.code == "too_many_redirects")
    }

    @Test(arguments: [(404, false), (403, false), (410, false), (400, false), (408, true), (429, true),
                      (500, true), (502, true), (503, true)])
    func classifiesHTTPStatus(status: Int, transient: Bool) {
        let error = fetchError { () throws(FetchError) in try loopbackFetcher().fetch(server.url("/status/\(status)")) }
        #expect(error == .httpStatus(status))
        #expect(error?.isTransient == transient)
    }

    @Test func htmlServedAsJPEGIsNotAnImage() {
        let error = fetchError { () throws(FetchError) in try loopbackFetcher().fetch(server.url("/html-as-jpeg")) }
        #expect(error?.code == "not_an_image")
        #expect(error?.description.contains("HTML") == true)
    }

    @Test func declaredLengthOverLimitIsRefusedBeforeStreaming() {
        let error = fetchError { () throws(FetchError) in
            try loopbackFetcher(maxBytes: 1_000_000).fetch(server.url("/big-declared?bytes=50000000"))
        }
        #expect(error == .tooLarge(limit: 1_000_000, declared: 50_000_000))
        #expect(error?.code == "file_too_large")
        #expect(error?.isTransient == false)
    }

    @Test func undeclaredLengthIsCutWhileStreaming() {
        let error = fetchError { () throws(FetchError) in
            try loopbackFetcher(maxBytes: 1_000_000).fetch(server.url("/big-streamed?bytes=50000000"))
        }
        #expect(error == .tooLarge(limit: 1_000_000, declared: nil))
    }

    @Test func totalTimeoutIsTransient() {
        let error = fetchError { () throws(FetchError) in
            try loopbackFetcher(totalTimeout: 0.5).fetch(server.url("/slow?seconds=3"))
        }
        #expect(error?.code == "download_timeout")
        #expect(error?.isTransient == true)
    }

    @Test func connectionRefusedIsTransient() throws {
        // A port that was just bound and released: nothing listens there.
        let closed = try TestHTTPServer()
        let port = closed.port
        closed.stop()
        let error = fetchError { () throws(FetchError) in
            try loopbackFetcher().fetch("http://127.0.0.1:\(port)/img/photo_0.jpg")
        }
        #expect(error?.code == "connection_failed")
        #expect(error?.isTransient == true)
    }

    @Test func hugePNGHeaderPassesTheDownloadAndFailsTheDecoderHeaderCheck() throws {
        let image = try loopbackFetcher().fetch(server.url("/huge-png"))
        #expect(image.format == .png)
        #expect(throws: ImageError.self) { try ImageDecoder.info(image.bytes) }
    }
}

@Suite struct AddressPolicyTests {
    @Test(arguments: ["127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
                      "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fd00::1",
                      "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a00:1", "2002:a00:1::1"])
    func refusesNonPublicAddresses(text: String) throws {
        let address = try #require(IPAddress(text))
        #expect(AddressPolicy().refusalReason(for: address) != nil)
    }

    @Test(arguments: ["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
    func allowsPublicAddresses(text: String) throws {
        let address = try #require(IPAddress(text))
        #expect(AddressPolicy().refusalReason(for: address) == nil)
    }

    @Test func allowListOverridesRefusal() throws {
        let policy = try #require(AddressPolicy(allowList: "127.0.0.0/8, fd00::/8"))
        #expect(policy.refusalReason(for: IPAddress("127.9.9.9")!) == nil)
        #expect(policy.refusalReason(for: IPAddress("::ffff:127.0.0.1")!) == nil)
        #expect(policy.refusalReason(for: IPAddress("fd12::1")!) == nil)
        #expect(policy.refusalReason(for: IPAddress("10.0.0.1")!) != nil)
    }

    @Test func parsesCIDR() throws {
        let network = try #require(IPNetwork("192.168.77.9/16"))
        #expect(network.description == "192.168.0.0/16")
        #expect(network.contains(IPAddress("192.168.255.1")!))
        #expect(!network.contains(IPAddress("192.169.0.1")!))
        #expect(IPNetwork("10.0.0.0/33") == nil)
        #expect(IPNetwork("nonsense/8") == nil)
        #expect(AddressPolicy(allowList: "127.0.0.0/8,bogus") == nil)
    }
}
