import AMQP
import ArgumentParser
import Fetch
import Imaging
import Foundation
import Logging
import MeshIO
import Testing
import Worker
import WorkerTestSupport

func body(_ json: String) -> [UInt8] { Array(json.utf8) }

func temporaryDirectory(_ label: String = "worker") -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString.prefix(8))")
    try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite struct JobParsingTests {
    @Test func parsesContractMessageAndIgnoresUnknownFields() throws {
        let job = try Job.parse(body(#"{"imageUrl":"http://example.com/a.jpg","memberId":12345,"timestamp":1704729600000,"extra":{"x":[1,2]}}"#))
        #expect(job == Job(imageURL: "http://example.com/a.jpg", memberId: 12345, timestamp: 1_704_729_600_000))
    }

    @Test func acceptsNumericStrings() throws {
        let job = try Job.parse(body(#"{"imageUrl":"http://e/a.jpg","memberId":"7","timestamp":"1704729600000"}"#))
        #expect(job.memberId == 7)
    }

    /// The backend is Spring Boot: Jackson keeps the last value of a repeated key, and so do we.
    @Test func aRepeatedKeyKeepsItsLastValueAsJacksonDoes() throws {
        let job = try Job.parse(body(#"{"imageUrl":"http://e/first.jpg","memberId":"bad","timestamp":1,"#
            + #""memberId":7,"imageUrl":"http://e/last.jpg","timestamp":1704729600000}"#))
        #expect(job == Job(imageURL: "http://e/last.jpg", memberId: 7, timestamp: 1_704_729_600_000))
        // …whichever of the two is the bad one.
        #expect(throws: JobError(code: .invalidField, message: "memberId must be an integer, got \"bad\"", field: "memberId")) {
            try Job.parse(body(#"{"imageUrl":"http://e/a.jpg","memberId":7,"memberId":"bad","timestamp":1}"#))
        }
    }

    /// `depth` arrays and objects, alternating, around a number: `{"a":[{"a":[…1…]}]}` has depth 4.
    static func nested(depth: Int) -> String {
        var open = "", close: [Character] = []
        for level in 0..<depth {
            if level % 2 == 0 { open += #"{"a":"#; close.append("}") } else { open += "["; close.append("]") }
        }
        return open + "1" + String(close.reversed())
    }

    /// A valid job with an unknown field nested deeper than Foundation's decoder goes (512) but within
    /// Jackson's 1,000 levels is a job; the unknown field is ignored.
    @Test(arguments: [2, 100, 600, Job.maxNestingDepth - 1])
    func aDeeplyNestedUnknownFieldIsIgnored(depth: Int) throws {
        // The top-level object is level 1, so the field holds `depth` more levels at most.
        let json = #"{"imageUrl":"http://e/a.jpg","extra":"# + Self.nested(depth: depth) + #","memberId":3,"timestamp":5}"#
        #expect(try Job.parse(body(json)) == Job(imageURL: "http://e/a.jpg", memberId: 3, timestamp: 5))
    }

    /// Past the limit the message is refused with its own code and a message that says why, not
    /// "not JSON"; a million levels are refused the same way (no recursion to overflow the stack).
    @Test(arguments: [Job.maxNestingDepth, Job.maxNestingDepth + 5, 1_000_000])
    func nestingPastTheLimitIsRefusedClearly(depth: Int) {
        let json = #"{"imageUrl":"http://e/a.jpg","memberId":3,"timestamp":5,"extra":"# + Self.nested(depth: depth) + "}"
        #expect(throws: JobError(code: .nestingTooDeep,
                                 message: "message body nests arrays or objects deeper than \(Job.maxNestingDepth) levels")) {
            try Job.parse(body(json))
        }
        let array = String(repeating: "[", count: depth + 1) + String(repeating: "]", count: depth + 1)
        #expect(throws: JobError(code: .nestingTooDeep,
                                 message: "message body nests arrays or objects deeper than \(Job.maxNestingDepth) levels")) {
            try Job.parse(body(array))
        }
    }

    @Test(arguments: [
        (#"{"imageUrl":"http://e/\u00e9\ud83d\ude00.jpg","memberId":1,"timestamp":1}"#, "http://e/\u{e9}\u{1F600}.jpg"),
        ("\u{FEFF}" + #"{"imageUrl":"http://e/a.jpg","memberId":1,"timestamp":1}"#, "http://e/a.jpg"),
        (#" { "imageUrl" : "http://e/\"q\".jpg" , "memberId" : 1 , "timestamp" : 1 , "x" : [ ] , "y" : { } } "#, "http://e/\"q\".jpg"),
    ])
    func readsEscapesByteOrderMarkAndWhitespace(json: String, url: String) throws {
        #expect(try Job.parse(body(json)).imageURL == url)
    }

    @Test(arguments: [
        #"{"imageUrl":"http://e/a.jpg","memberId":1,"timestamp":1"#,
        #"{"imageUrl":"http://e/a.jpg","memberId":1,"timestamp":1,}"#,
        #"{"imageUrl":"http://e/a.jpg","memberId":01,"timestamp":1}"#,
        #"{"imageUrl":"http://e/a.jpg","memberId":1,"timestamp":1,"x":[1,]}"#,
        #"{"imageUrl":"http://e/a.jpg","memberId":1,"timestamp":1,"x":{"k"}}"#,
        #"{"imageUrl":"http://e/a.jpg","memberId":1,"timestamp":1,"x":"\q"}"#,
        #"{"imageUrl":"http://e/a.jpg","memberId":1,"timestamp":1} {}"#,
        "",
    ])
    func syntaxErrorsAreNotJSON(json: String) {
        do {
            _ = try Job.parse(body(json))
            Issue.record("accepted \(json)")
        } catch {
            #expect(error.code == .malformedJSON)
            #expect(error.message.hasPrefix("message body is not JSON ("), "\(error.message)")
        }
    }

    @Test func invalidUTF8IsNotJSON() {
        let bytes = Array(#"{"imageUrl":"http://e/"#.utf8) + [0xC3, 0x28] + Array(#".jpg","memberId":1,"timestamp":1}"#.utf8)
        #expect(throws: JobError.self) { try Job.parse(bytes) }
    }

    @Test(arguments: [
        ("not json at all", JobError.Code.malformedJSON, nil as String?),
        ("[1,2,3]", .malformedJSON, nil),
        (#"{"imageUrl":"http://e/a.jpg","memberId":1}"#, .missingField, "timestamp"),
        (#"{"memberId":1,"timestamp":1}"#, .missingField, "imageUrl"),
        (#"{"imageUrl":"http://e/a.jpg","timestamp":1}"#, .missingField, "memberId"),
        (#"{"imageUrl":"http://e/a.jpg","memberId":-5,"timestamp":1}"#, .invalidField, "memberId"),
        (#"{"imageUrl":"http://e/a.jpg","memberId":0,"timestamp":1}"#, .invalidField, "memberId"),
        (#"{"imageUrl":"http://e/a.jpg","memberId":1.5,"timestamp":1}"#, .invalidField, "memberId"),
        (#"{"imageUrl":"http://e/a.jpg","memberId":true,"timestamp":1}"#, .invalidField, "memberId"),
        (#"{"imageUrl":"http://e/a.jpg","memberId":1,"timestamp":-1}"#, .invalidField, "timestamp"),
        (#"{"imageUrl":42,"memberId":1,"timestamp":1}"#, .invalidField, "imageUrl"),
        (#"{"imageUrl":"  ","memberId":1,"timestamp":1}"#, .invalidField, "imageUrl"),
        (#"{"imageUrl":null,"memberId":1,"timestamp":1}"#, .missingField, "imageUrl"),
    ])
    func rejectsBadMessages(json: String, code: JobError.Code, field: String?) {
        #expect(throws: JobError.self) { try Job.parse(body(json)) }
        do {
            _ = try Job.parse(body(json))
        } catch {
            #expect(error.code == code)
            #expect(error.field == field)
        }
    }
}

@Suite struct OutputStoreTests {
    @Test(arguments: [(Int64(1_704_729_600_000), "20240108_160000"), (0, "19700101_000000"),
                      (951_782_400_999, "20000229_000000"), (1_709_251_199_000, "20240229_235959"),
                      (253_402_300_799_999, "99991231_235959")])
    func stampsInUTC(ms: Int64, expected: String) {
        #expect(OutputStore.stamp(epochMilliseconds: ms) == expected)
    }

    @Test func sameMemberAndSecondGetDistinctStemsAndRedeliveryReusesItsOwn() throws {
        let store = OutputStore(root: temporaryDirectory())
        try store.prepare()
        let job = Job(imageURL: "http://e/a.jpg", memberId: 42, timestamp: 1_704_729_600_000)
        let first = try store.claim(job: job, key: "id:A")
        let second = try store.claim(job: Job(imageURL: "http://e/b.jpg", memberId: 42, timestamp: 1_704_729_600_500),
                                     key: "id:B")
        #expect(first.stem == "42_20240108_160000")
        #expect(second.stem.hasPrefix("42_20240108_160000_"))
        #expect(second.stem.count == first.stem.count + 9)
        #expect(first.modelBaseName == "model3d_42_20240108_160000")
        #expect(first.imageName(fileExtension: "jpg") == "image_42_20240108_160000.jpg")
        // A redelivery of A finds A's claim.
        let again = try store.claim(job: job, key: "id:A")
        #expect(again == first)
        #expect(again.completed == nil)
        let record = OutputStore.CompletionRecord(imagePath: "image_42_20240108_160000.jpg",
                                                  modelPaths: ["models/model3d_42_20240108_160000.obj"],
                                                  vertexCount: 8, faceCount: 12, stageMilliseconds: ["mesh": 1], finishedAt: 5)
        try store.complete(stem: first.stem, record: record)
        #expect(try store.claim(job: job, key: "id:A").completed == record)
        #expect(try store.claim(job: job, key: "id:B") == second)
    }

    @Test func jobKeyPrefersMessageIdThenBodyHash() {
        #expect(OutputStore.jobKey(messageId: "m1", body: [1]) == "id:m1")
        #expect(OutputStore.jobKey(messageId: nil, body: [1, 2]) == OutputStore.jobKey(messageId: "", body: [1, 2]))
        #expect(OutputStore.jobKey(messageId: nil, body: [1, 2]) != OutputStore.jobKey(messageId: nil, body: [1, 3]))
    }

    @Test func atomicWriteLeavesNoTemporaryAndStaleTemporariesAreRemoved() throws {
        let store = OutputStore(root: temporaryDirectory())
        try store.prepare()
        let target = store.modelsDirectory.appendingPathComponent("model3d_1_20240101_000000.obj")
        try OutputStore.writeAtomically(Array("v 0 0 0\n".utf8), to: target)
        #expect(try String(contentsOf: target, encoding: .utf8) == "v 0 0 0\n")
        // A temporary of a dead process on this host, one of a live process (ours), one of another host.
        let dead = store.modelsDirectory.appendingPathComponent(".tmp-\(OutputStore.hostTag)-999999-ab-model3d_x.obj")
        let live = OutputStore.temporaryURL(for: target)
        let foreign = store.root.appendingPathComponent(".tmp-otherhost-1-cd-image_x.jpg")
        for url in [dead, live, foreign] { try Data("partial".utf8).write(to: url) }
        let removed = store.removeStaleTemporaries()
        #expect(removed == [dead.path])
        #expect(FileManager.default.fileExists(atPath: live.path))
        #expect(FileManager.default.fileExists(atPath: foreign.path))
        // Old enough, any owner goes.
        let later = store.removeStaleTemporaries(maxAge: 3600, now: Date().addingTimeInterval(7200))
        #expect(Set(later) == Set([live.path, foreign.path]))
        // The engine's writers (MeshIO) name their temporaries the same way, so a crashed
        // engine's half-written model is found by the same clean-up.
        #expect(AtomicFile.temporaryURL(for: target).lastPathComponent
            .hasPrefix(".tmp-\(OutputStore.hostTag)-\(getpid())-"))
    }
}

@Suite struct PolicyAndFormatTests {
    @Test func retryPolicyBoundsAttempts() {
        let policy = RetryPolicy(delays: [5, 30, 120])
        #expect(policy.maxAttempts == 4)
        #expect(policy.retryDelayIndex(afterAttempt: 1) == 0)
        #expect(policy.retryDelayIndex(afterAttempt: 3) == 2)
        #expect(policy.retryDelayIndex(afterAttempt: 4) == nil)
        #expect(policy.retryQueueName(workQueue: "model3d.upload.queue", delayIndex: 1) == "model3d.upload.queue.retry.30000ms")
    }

    @Test func classifiesErrors() {
        #expect(JobFailure(classifying: FetchError.httpStatus(503)).kind == .transient)
        #expect(JobFailure(classifying: FetchError.httpStatus(404)) == JobFailure(kind: .permanent, code: "http_404",
                                                                                  message: "the server answered HTTP 404"))
        #expect(JobFailure(classifying: JobError(code: .invalidField, message: "m")).code == "invalid_field")
        #expect(JobFailure(classifying: POSIXError(.ENOSPC)).kind == .transient)
        struct EngineBug: Error {}
        #expect(JobFailure(classifying: EngineBug()).code == "generation_failed")
    }

    @Test func resultEventJSON() throws {
        let event = ResultEvent(status: .succeeded, memberId: 7, timestamp: 1, modelPath: "models/m.obj",
                                durationsMs: ["total": 2], finishedAt: 3, worker: "h:1")
        let object = try #require(JSONSerialization.jsonObject(with: Data(event.encoded())) as? [String: Any])
        #expect(object["status"] as? String == "succeeded")
        #expect(object["modelPath"] as? String == "models/m.obj")
        #expect(object["errorCode"] == nil)
        #expect(event.routingKey == "model3d.result.succeeded")
    }

    @Test func metricsRenderPrometheusText() {
        let metrics = WorkerMetrics()
        metrics.recordOutcome("succeeded")
        metrics.recordOutcome("failed", errorCode: "http_404")
        metrics.recordOutcome("retried", errorCode: "http_503")
        metrics.observeStage("download", seconds: 0.02)
        metrics.observeStage("download", seconds: 3)
        metrics.observeQueueToDone(seconds: 0.07)
        metrics.addDownloadBytes(1234)
        metrics.jobStarted()
        let text = metrics.render(connected: true, consuming: false)
        #expect(metricValue(text, #"mesh_worker_jobs_total{outcome="succeeded"}"#) == 1)
        #expect(metricValue(text, #"mesh_worker_jobs_total{outcome="requeued"}"#) == 0)
        #expect(metricValue(text, #"mesh_worker_failures_total{code="http_404"}"#) == 1)
        #expect(metricValue(text, #"mesh_worker_failures_total{code="http_503"}"#) == 1)
        #expect(metricValue(text, "mesh_worker_retries_total") == 1)
        #expect(metricValue(text, #"mesh_worker_stage_duration_seconds_bucket{stage="download",le="0.01"}"#) == 0)
        #expect(metricValue(text, #"mesh_worker_stage_duration_seconds_bucket{stage="download",le="0.025"}"#) == 1)
        #expect(metricValue(text, #"mesh_worker_stage_duration_seconds_bucket{stage="download",le="5.0"}"#) == 2)
        #expect(metricValue(text, #"mesh_worker_stage_duration_seconds_bucket{stage="download",le="+Inf"}"#) == 2)
        #expect(metricValue(text, #"mesh_worker_stage_duration_seconds_count{stage="download"}"#) == 2)
        #expect(abs((metricValue(text, #"mesh_worker_stage_duration_seconds_sum{stage="download"}"#) ?? 0) - 3.02) < 1e-6)
        #expect(metricValue(text, #"mesh_worker_queue_to_done_seconds_bucket{le="0.05"}"#) == 0)
        #expect(metricValue(text, #"mesh_worker_queue_to_done_seconds_bucket{le="0.1"}"#) == 1)
        #expect(metricValue(text, "mesh_worker_download_bytes_total") == 1234)
        #expect(metricValue(text, "mesh_worker_jobs_in_flight") == 1)
        #expect(metricValue(text, "mesh_worker_amqp_connected") == 1)
        #expect(metricValue(text, "mesh_worker_amqp_consuming") == 0)
        #expect(metricValue(text, "mesh_worker_amqp_reconnects_total") == 0)
        #expect(text.contains("# TYPE mesh_worker_queue_to_done_seconds histogram\n"))
        #expect(text.contains("# TYPE mesh_worker_jobs_in_flight gauge\n"))
    }

    @Test func eachWorkersMetricsAreItsOwn() {
        let one = WorkerMetrics(), two = WorkerMetrics()
        one.recordOutcome("succeeded")
        one.recordOutcome("succeeded")
        two.recordOutcome("succeeded")
        #expect(metricValue(one.render(connected: true, consuming: true), #"mesh_worker_jobs_total{outcome="succeeded"}"#) == 2)
        #expect(metricValue(two.render(connected: true, consuming: true), #"mesh_worker_jobs_total{outcome="succeeded"}"#) == 1)
    }

    @Test func boxGeneratorWritesAClosedBoxShapedByTheAspect() throws {
        let dir = temporaryDirectory()
        let result = try BoxModelGenerator().generate(imageBytes: TestFixtures.bytes("photo_2.jpg"),
                                                      imageURL: dir.appendingPathComponent("x.jpg"), modelsDirectory: dir,
                                                      baseName: "model3d_1_20240101_000000", blasThreads: 1)
        let summary = try #require(OBJSummary(contentsOf: result.modelFiles[0]))
        #expect(summary == OBJSummary(text: try String(contentsOf: result.modelFiles[0], encoding: .utf8)))
        #expect(summary.vertices == 8 && summary.faces == 12)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["model3d_1_20240101_000000.obj"])
    }

    @Test func aCutOutPNGIsMeshedInsideItsAlphaWithTheSizeUnknown() async throws {
        let engine = try WorkerIntegrationTests.realEngine()
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // An opaque disc on a transparent, noisy background.
        var image = Image(width: 160, height: 120, layout: .rgba, filledWith: [0, 0, 0, 0])
        for y in 0..<120 {
            for x in 0..<160 {
                let inside = (x - 80) * (x - 80) + (y - 60) * (y - 60) < 40 * 40
                let i = (y * 160 + x) * 4
                image.pixels.replaceSubrange(i..<i + 4, with: inside ? [180, 90, 40, 255] : [UInt8((x * 37) % 256), UInt8((y * 53) % 256), 200, 0])
            }
        }
        let png = try PNGEncoder.encode(image)
        let result = try await offCooperativePool {
            try engine.generate(imageBytes: png, imageURL: dir.appendingPathComponent("x.png"),
                                modelsDirectory: dir, baseName: "model3d_1_20240101_000000", blasThreads: 1)
        }
        #expect(result.sizeSource == "unknown" && result.size == nil)
        let obj = try #require(OBJSummary(contentsOf: result.modelFiles[0]))
        #expect(obj.vertices > 100)
    }

    @Test func tooSmallAndTooElongatedPhotosArePermanentWithTheirCodes() throws {
        let engine = try WorkerIntegrationTests.realEngine()
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for (width, height, code) in [(1, 1, "image_too_small"), (400, 40, "bad_aspect_ratio")] {
            let png = try PNGEncoder.encode(Image(width: width, height: height, filledWith: [128, 128, 128]))
            #expect(throws: JobFailure.self) {
                do {
                    _ = try engine.generate(imageBytes: png, imageURL: dir.appendingPathComponent("x.png"), modelsDirectory: dir,
                                            baseName: "model3d_1_20240101_000000", blasThreads: 1)
                } catch let failure as JobFailure {
                    #expect(failure.kind == .permanent && failure.code == code, "\(failure)")
                    throw failure
                }
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }
}

@Suite struct MeshWorkerOptionsTests {
    @Test func flagsOverrideEnvironmentAndDefaultsFollowTheContract() throws {
        let defaults = try MeshWorkerOptions.parse([]).configuration(environment: [:])
        #expect(defaults.queues == QueueNames())
        #expect(defaults.queues.workQueue == "model3d.upload.queue")
        #expect(defaults.retry.delays == [5, 30, 120])
        #expect(defaults.amqp.heartbeat == 30)
        #expect(defaults.fetch.addressPolicy.allowed.isEmpty)

        let env = ["AMQP_URL": "amqp://u:p@broker:5673/vh", "AMQP_PASSWORD": "secret", "WORKER_POOL_SIZE": "3",
                   "WORKER_ALLOW_CIDRS": "10.0.0.0/8", "WORKER_RETRY_DELAYS": "1,2", "UPLOADS_ROOT": "/srv/up"]
        let config = try MeshWorkerOptions.parse(["--pool-size", "5", "--queue", "q", "--http-port=-1",
                                                  "--passive-queue", "--heartbeat", "10"]).configuration(environment: env)
        #expect(config.poolSize == 5)
        #expect(config.queues.workQueue == "q")
        #expect(config.httpPort == nil)
        #expect(config.passiveWorkQueue)
        #expect(config.amqp.host == "broker" && config.amqp.port == 5673 && config.amqp.virtualHost == "vh")
        #expect(config.amqp.username == "u" && config.amqp.password == "secret")
        #expect(config.amqp.heartbeat == 10)
        #expect(config.fetch.addressPolicy.allowed == [IPNetwork("10.0.0.0/8")!])
        #expect(config.retry.delays == [1, 2])
        #expect(config.uploadsRoot.path == "/srv/up")
        #expect(config.topology.queues.first?.passive == true)
    }

    @Test(arguments: [["--pool-size", "0"], ["--allow-cidrs", "10.0.0.0/99"], ["--retry-delays", "1,-2"],
                      ["--log-level", "loud"], ["--amqp-url", "http://broker"]])
    func rejectsBadSettings(arguments: [String]) {
        #expect(throws: (any Error).self) { try MeshWorkerOptions.parse(arguments) }
    }

    @Test func topologyHasRetryQueuesThatDeadLetterBackToTheWorkQueue() throws {
        let config = WorkerConfiguration(queues: .prefixed("t1"), retry: RetryPolicy(delays: [0.5, 2]))
        let retry = try #require(config.topology.queues.first { $0.name == "t1.upload.queue.retry.500ms" })
        #expect(retry.messageTTL == 500)
        #expect(retry.deadLetterExchange == "")
        #expect(retry.deadLetterRoutingKey == "t1.upload.queue")
        #expect(config.topology.bindings.first?.exchange == "t1.upload.dlx")
    }
}

/// Lines a `JSONLogHandler` wrote, collected in memory.
final class LineCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var collected: [String] = []
    var lines: [String] { lock.withLock { collected } }
    var sink: JSONLogHandler.Sink { JSONLogHandler.Sink { [self] line in lock.withLock { collected.append(line) } } }
}

@Suite struct JSONLogHandlerTests {
    @Test func writesOneJSONObjectPerLineWithNestedMetadataAndEscapes() throws {
        let collector = LineCollector()
        var logger = Logger(label: "mesh-worker") { JSONLogHandler(label: $0, logLevel: .info, sink: collector.sink) }
        logger[metadataKey: "memberId"] = "12345"
        logger.debug("not written: below the level")
        logger.info("a \"quoted\"\nmessage\u{1}", metadata: ["deliveryTag": "7", "nested": ["list": ["a", "2"]], "memberId": "6"])
        logger.warning("second")
        let lines = collector.lines
        #expect(lines.count == 2)
        #expect(lines.allSatisfy { $0.hasSuffix("}\n") && $0.filter { $0 == "\n" }.count == 1 })
        let first = try #require(JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(first["level"] as? String == "info")
        #expect(first["label"] as? String == "mesh-worker")
        #expect(first["message"] as? String == "a \"quoted\"\nmessage\u{1}")
        let metadata = try #require(first["metadata"] as? [String: Any])
        #expect(metadata["memberId"] as? String == "6")  // the call's metadata wins over the logger's
        #expect(metadata["deliveryTag"] as? String == "7")
        #expect(((metadata["nested"] as? [String: Any])?["list"] as? [String]) == ["a", "2"])
        let second = try #require(JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as? [String: Any])
        #expect((second["metadata"] as? [String: String]) == ["memberId": "12345"])
        #expect(second["level"] as? String == "warning")
    }

    @Test func timestampsAreUTCWithMilliseconds() {
        #expect(JSONLogHandler.iso8601(Date(timeIntervalSince1970: 1_704_729_600.0425)) == "2024-01-08T16:00:00.042Z")
        #expect(JSONLogHandler.iso8601(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
    }

    @Test(arguments: [("warn", Logger.Level.warning), ("INFO", .info), ("trace", .trace), ("critical", .critical)])
    func logLevelNames(name: String, level: Logger.Level) {
        #expect(Logger.Level(name: name) == level)
    }

    @Test func anUnknownLogLevelIsRefused() throws {
        #expect(Logger.Level(name: "verbose") == nil)
        #expect(throws: ValidationError.self) {
            _ = try MeshWorkerOptions.parse([]).configuration(environment: ["WORKER_LOG_LEVEL": "verbose"])
        }
        #expect(try MeshWorkerOptions.parse([]).configuration(environment: ["WORKER_LOG_LEVEL": "warn"]).logLevel == .warning)
    }
}
