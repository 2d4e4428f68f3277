import Foundation

/// The photos under Fixtures/ (made by scripts/make_worker_fixtures.py).
public enum TestFixtures {
    /// File names of every fixture photo, JPEG and PNG.
    public static let names: [String] = (0..<4).flatMap { ["photo_\($0).jpg", "photo_\($0).png"] }

    /// The bytes of one fixture.
    public static func bytes(_ name: String) -> [UInt8] {
        guard let url = Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil),
              let data = try? Data(contentsOf: url) else {
            fatalError("missing test fixture \(name)")
        }
        return Array(data)
    }

    /// A PNG that is only a signature, a valid IHDR claiming `width`×`height` pixels, a tiny IDAT and
    /// an IEND: a decompression bomb's header, rejected from the header before any allocation.
    public static func pngHeader(width: UInt32, height: UInt32) -> [UInt8] {
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        out += pngChunk("IHDR", be32(width) + be32(height) + [8, 2, 0, 0, 0])
        // A few compressed bytes: libpng wants an IDAT before it reports the header.
        out += pngChunk("IDAT", [0x78, 0x9C, 0x63, 0x60, 0xA0, 0x0C, 0x00, 0x00, 0x00, 0x40, 0x00, 0x01])
        out += pngChunk("IEND", [])
        return out
    }

    /// `png` with an EXIF orientation, as an eXIf chunk right after IHDR.
    public static func png(_ png: [UInt8], withOrientation orientation: UInt16) -> [UInt8] {
        // Big-endian TIFF header, one IFD entry: tag 0x0112 (Orientation), SHORT, count 1.
        let exif: [UInt8] = [0x4D, 0x4D, 0x00, 0x2A, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1,
                             UInt8(orientation >> 8), UInt8(orientation & 0xFF), 0, 0, 0, 0, 0, 0]
        let afterIHDR = 8 + 8 + 13 + 4
        return Array(png[..<afterIHDR]) + pngChunk("eXIf", exif) + Array(png[afterIHDR...])
    }

    /// One PNG chunk: length, type, data, CRC.
    public static func pngChunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let typed = Array(type.utf8) + data
        return be32(UInt32(data.count)) + typed + be32(crc32(typed))
    }

    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    static func contentType(_ name: String) -> String {
        name.hasSuffix(".png") ? "image/png" : "image/jpeg"
    }
}

/// Counts per key, shared between server threads.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [String: Int] = [:]
    func next(_ key: String) -> Int {
        lock.lock(); defer { lock.unlock() }
        counts[key, default: 0] += 1
        return counts[key]!
    }
}

extension TestHTTPServer {
    /// Registers the routes the Fetch and Worker tests use:
    /// - `/img/NAME` — a fixture photo with its content type
    /// - `/status/CODE` — that status with a small HTML body
    /// - `/html-as-jpeg` — an HTML page served as `image/jpeg`
    /// - `/big-declared?bytes=N` — N bytes (default 50 MB) with a Content-Length, starting like a JPEG
    /// - `/big-streamed?bytes=N` — the same without a Content-Length (ended by closing)
    /// - `/huge-png` — a 100000×100000 PNG header
    /// - `/flaky?key=K&failures=F&img=NAME` — 503 for the first F requests with key K, then the photo
    /// - `/slow?seconds=S&img=NAME` — the photo after S seconds
    /// - `/redirect?to=URL` — 302 to URL; `/redirect-chain?n=N&img=NAME` — N redirects, then the photo
    public func installStandardRoutes() {
        for name in TestFixtures.names {
            let bytes = TestFixtures.bytes(name)
            route("/img/\(name)") { _ in .ok(bytes, contentType: TestFixtures.contentType(name)) }
        }
        route("/html-as-jpeg") { _ in
            .ok(Array("<!DOCTYPE html><html><head><title>Not found</title></head><body>gone</body></html>".utf8),
                contentType: "image/jpeg")
        }
        let jpegStart: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0x4A, 0x46, 0x49, 0x46, 0x00]
        route("/big-declared") { request in
            let count = request.query["bytes"].flatMap(Int.init) ?? 50_000_000
            return TestHTTPServer.Response(status: 200, headers: [("Content-Type", "image/jpeg")],
                                           body: .stream(count: count, prefix: jpegStart, declareLength: true))
        }
        route("/big-streamed") { request in
            let count = request.query["bytes"].flatMap(Int.init) ?? 50_000_000
            return TestHTTPServer.Response(status: 200, headers: [("Content-Type", "image/jpeg")],
                                           body: .stream(count: count, prefix: jpegStart, declareLength: false))
        }
        let huge = TestFixtures.pngHeader(width: 100_000, height: 100_000)
        route("/huge-png") { _ in .ok(huge, contentType: "image/png") }
        let counter = Counter()
        route("/flaky") { request in
            let failures = request.query["failures"].flatMap(Int.init) ?? 2
            let n = counter.next(request.query["key"] ?? "")
            guard n > failures else { return .status(503) }
            let name = request.query["img"] ?? "photo_0.jpg"
            return .ok(TestFixtures.bytes(name), contentType: TestFixtures.contentType(name))
        }
        route("/slow") { request in
            let name = request.query["img"] ?? "photo_0.jpg"
            var response = TestHTTPServer.Response.ok(TestFixtures.bytes(name), contentType: TestFixtures.contentType(name))
            response.delay = request.query["seconds"].flatMap(Double.init) ?? 2
            return response
        }
        route("/redirect") { request in .redirect(to: request.query["to"] ?? "/") }
        let base = baseURL
        route("/redirect-chain") { request in
            let n = request.query["n"].flatMap(Int.init) ?? 1
            let name = request.query["img"] ?? "photo_0.jpg"
            if n <= 0 { return .ok(TestFixtures.bytes(name), contentType: TestFixtures.contentType(name)) }
            return .redirect(to: "\(base)/redirect-chain?n=\(n - 1)&img=\(name)")
        }
        route("/status/404") { _ in .status(404) }
        for code in [400, 403, 408, 410, 429, 500, 502, 503] {
            route("/status/\(code)") { _ in .status(code) }
        }
    }
}
