import AMQP
import Fetch
import Foundation
import Testing
import Worker
import WorkerTestSupport

/// One HTTP server for the whole test process.
let httpServer: TestHTTPServer = {
    let server = try! TestHTTPServer()
    server.installStandardRoutes()
    return server
}()

/// Downloads may reach loopback only because tests allow it explicitly.
let testFetchOptions = FetchOptions(connectTimeout: 5, totalTimeout: 10, maxBytes: 10 * 1024 * 1024,
                                    addressPolicy: AddressPolicy(allowList: "127.0.0.0/8")!)

func delivery(_ json: String, messageId: String? = nil, attempts: Int? = nil, tag: UInt64 = 1) -> AMQPDelivery {
    var properties = AMQPProperties(contentType: "application/json", headers: ["__TypeId__": "com.myroom.Model3DRequest"],
                                    messageId: messageId)
    if let attempts { properties.headers[RetryPolicy.attemptsHeader] = .int(Int64(attempts)) }
    return AMQPDelivery(connectionID: 1, channel: 1, deliveryTag: tag, redelivered: false, exchange: "",
                        routingKey: "model3d.upload.queue", consumerTag: "c", properties: properties, body: Array(json.utf8))
}

func jobJSON(url: String, member: Int64, timestamp: Int64 = 1_704_729_600_000) -> String {
    #"{"imageUrl":"\#(url)","memberId":\#(member),"timestamp":\#(timestamp)}"#
}

/// The bad inputs of the issue, each with the error code it must be dead-lettered with.
let badJobCases: [(String, String)] = [
    ("{\"imageUrl\": \"http://x/y.jpg\", \"memberId\": ", "malformed_json"),
    (#"{"memberId":7,"timestamp":1704729600000}"#, "missing_field"),
    (jobJSON(url: httpServer.url("/img/photo_0.jpg"), member: -7), "invalid_field"),
    (jobJSON(url: "file:///etc/passwd", member: 7), "unsupported_scheme"),
    (jobJSON(url: "ftp://127.0.0.1/photo.jpg", member: 7), "unsupported_scheme"),
    (jobJSON(url: httpServer.url("/status/404"), member: 7), "http_404"),
    (jobJSON(url: httpServer.url("/html-as-jpeg"), member: 7), "not_an_image"),
    (jobJSON(url: httpServer.url("/big-declared?bytes=50000000"), member: 7), "file_too_large"),
    (jobJSON(url: httpServer.url("/huge-png"), member: 7), "image_too_large"),
    (redirectToFileJob, "unsupported_scheme"),
    (tooDeepJob, "json_too_deep"),
]

/// A job whose photo URL redirects to `file:///etc/passwd`.
let redirectToFileJob = jobJSON(url: httpServer.url("/redirect?to=file%3A%2F%2F%2Fetc%2Fpasswd"), member: 7)
/// A valid job but for an unknown field nested past `Job.maxNestingDepth`.
let tooDeepJob = #"{"imageUrl":"http://e/a.jpg","memberId":7,"timestamp":1,"x":"#
    + String(repeating: "[", count: Job.maxNestingDepth) + String(repeating: "]", count: Job.maxNestingDepth) + "}"

/// The exact messages of some bad inputs (the `x-exception-message` a dead letter carries).
let badJobMessages: [String: String] = [
    redirectToFileJob: "redirect to a file:// URL is not allowed (http and https are)",
    tooDeepJob: "message body nests arrays or objects deeper than \(Job.maxNestingDepth) levels",
]

@Suite struct JobProcessorTests {
    let root = temporaryDirectory("processor")
    var processor: JobProcessor {
        JobProcessor(store: OutputStore(root: root), fetcher: Fetcher(options: testFetchOptions),
                     generator: BoxModelGenerator(), retryPolicy: RetryPolicy(delays: [1, 2]))
    }
    let log = testLogger

    init() throws { try OutputStore(root: root).prepare() }

    @Test func successWritesImageAndModelAndRedeliveryDoesNotRegenerate() throws {
        let d = delivery(jobJSON(url: httpServer.url("/img/photo_1.png"), member: 99), messageId: "msg-ok")
        guard case .succeeded(let event) = processor.process(d, logger: log) else {
            Issue.record("expected success")
            return
        }
        #expect(event.imagePath == "image_99_20240108_160000.png")
        #expect(event.modelPath == "models/model3d_99_20240108_160000.obj")
        #expect(event.vertexCount == 8 && event.faceCount == 12)
        #expect(event.messageId == "msg-ok" && event.correlationId == "msg-ok")
        #expect(event.durationsMs["download"] != nil && event.durationsMs["decode"] != nil && event.durationsMs["total"] != nil)
        #expect(OBJSummary(contentsOf: root.appendingPathComponent(event.modelPath!)) != nil)
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent(event.imagePath!).path))

        let hits = httpServer.hitCount("/img/photo_1.png")
        guard case .succeeded(let again) = processor.process(d, logger: log) else {
            Issue.record("expected success on redelivery")
            return
        }
        #expect(again.alreadyDone == true)
        #expect(again.modelPath == event.modelPath)
        #expect(httpServer.hitCount("/img/photo_1.png") == hits)  // not downloaded again
        let models = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("models").path)
        #expect(models == ["model3d_99_20240108_160000.obj"])
    }

    @Test func twoJobsInTheSameSecondKeepTheirOwnFiles() throws {
        let a = delivery(jobJSON(url: httpServer.url("/img/photo_0.jpg"), member: 5, timestamp: 1_704_729_600_100), messageId: "a")
        let b = delivery(jobJSON(url: httpServer.url("/img/photo_3.png"), member: 5, timestamp: 1_704_729_600_900), messageId: "b")
        guard case .succeeded(let ea) = processor.process(a, logger: log), case .succeeded(let eb) = processor.process(b, logger: log) else {
            Issue.record("expected two successes")
            return
        }
        #expect(ea.modelPath == "models/model3d_5_20240108_160000.obj")
        #expect(eb.modelPath != ea.modelPath)
        #expect(eb.modelPath?.hasPrefix("models/model3d_5_20240108_160000_") == true)
        #expect(eb.imagePath?.hasSuffix(".png") == true)
    }

    @Test(arguments: badJobCases)
    func permanentFailures(json: String, code: String) throws {
        guard case .failed(let event, let failure) = processor.process(delivery(json), logger: log) else {
            Issue.record("expected a permanent failure for \(json)")
            return
        }
        #expect(failure.code == code)
        if let message = badJobMessages[json] { #expect(failure.message == message) }
        #expect(failure.kind == .permanent)
        #expect(event.status == .failed && event.errorCode == code)
        // Nothing is left under the uploads root for a failed job.
        let images = try FileManager.default.contentsOfDirectory(atPath: root.path).filter { $0.hasPrefix("image_") }
        #expect(images.isEmpty)
    }

    @Test func transientFailuresRetryThenGiveUp() {
        let url = httpServer.url("/status/503")
        guard case .retry(let index, let attempt, let failure) = processor.process(delivery(jobJSON(url: url, member: 3)), logger: log) else {
            Issue.record("expected a retry")
            return
        }
        #expect(index == 0 && attempt == 1 && failure.code == "http_503")
        guard case .retry(let index2, let attempt2, _) = processor.process(delivery(jobJSON(url: url, member: 3), attempts: 1), logger: log) else {
            Issue.record("expected a second retry")
            return
        }
        #expect(index2 == 1 && attempt2 == 2)
        guard case .failed(let event, let final) = processor.process(delivery(jobJSON(url: url, member: 3), attempts: 2), logger: log) else {
            Issue.record("expected the last attempt to fail permanently")
            return
        }
        #expect(final.kind == .permanent && final.code == "http_503")
        #expect(final.message.contains("gave up after 3 attempts"))
        #expect(event.attempts == 3)
    }
}

@Suite struct CrashLoopTests {
    @Test func aJobThatKeepsCrashingItsWorkerIsDeadLettered() throws {
        let root = temporaryDirectory("crashloop")
        let store = OutputStore(root: root)
        try store.prepare()
        let processor = JobProcessor(store: store, fetcher: Fetcher(options: testFetchOptions), generator: BoxModelGenerator(),
                                     retryPolicy: RetryPolicy(delays: [1]), maxRestarts: 2)
        let json = jobJSON(url: httpServer.url("/img/photo_0.jpg"), member: 66)
        // Four earlier starts that never finished (each one "crashed" after claiming).
        let claim = try store.claim(job: try Job.parse(Array(json.utf8)), key: "id:crashy")
        for _ in 0..<4 { _ = try store.recordStart(stem: claim.stem) }
        var redelivered = delivery(json, messageId: "crashy")
        redelivered.redelivered = true
        guard case .failed(_, let failure) = processor.process(redelivered, logger: testLogger) else {
            Issue.record("expected a permanent failure")
            return
        }
        #expect(failure.code == "too_many_restarts")
        // A first delivery with the same history is still run (it is not a crash redelivery).
        guard case .succeeded = processor.process(delivery(json, messageId: "crashy"), logger: testLogger) else {
            Issue.record("expected success")
            return
        }
    }
}
