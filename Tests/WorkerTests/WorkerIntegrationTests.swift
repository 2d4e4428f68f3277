import AMQP
import Foundation
import Testing
import Worker
import Pipeline
import WorkerTestSupport

/// Against the real broker (`AMQP_URL`) and the test HTTP server on 127.0.0.1. Each test has its own
/// queues and exchanges. Serialized: they share two cores with each other's worker pools.
@Suite(.serialized) struct WorkerIntegrationTests {
    /// The real engine (the committed weights), at a reduced volume grid and without the mesher's
    /// symmetry search and feature-preserving smoothing (the Pipeline and Meshing tests cover those)
    /// to keep these tests quick in a debug build.
    static func realEngine() throws -> PipelineModelGenerator {
        let weights = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Weights")
        var options = PipelineOptions()
        options.volumeResolution = 64
        options.maxVolumeResolution = 64
        options.symmetry = false
        options.featurePreservingIterations = 0
        return PipelineModelGenerator(engine: try ImageTo3D(weights: weights), options: options)
    }

    @Test func twentyValidJobsBecomeTwentyModels() async throws {
        let harness = try BrokerHarness()
        defer { harness.cleanup() }
        let (worker, root) = try await harness.startWorker("twenty", generator: try Self.realEngine())

        let now = Int64(Date().timeIntervalSince1970 * 1000)
        for i in 0..<20 {
            let name = TestFixtures.names[i % TestFixtures.names.count]
            try harness.publish(jobJSON(url: httpServer.url("/img/\(name)"), member: Int64(1000 + i), timestamp: now),
                                messageId: "\(harness.prefix)-\(i)")
        }
        let events = try harness.events(atLeast: 20)
        #expect(events.count == 20)
        #expect(events.allSatisfy { $0.status == .succeeded && $0.alreadyDone == nil })
        // Without metric depth or a given height the size is unknown: said so in object mode, absent in relief mode.
        #expect(events.allSatisfy { $0.size == nil && ($0.sizeSource == nil || $0.sizeSource == "unknown") })
        #expect(events.contains { $0.sizeSource == "unknown" })
        #expect(Set(events.compactMap(\.memberId)) == Set((0..<20).map { Int64(1000 + $0) }))
        #expect(Set(events.compactMap(\.messageId)) == Set((0..<20).map { "\(harness.prefix)-\($0)" }))
        for event in events {
            let model = try #require(event.modelPath)
            #expect(OBJSummary(contentsOf: root.appendingPathComponent(model)) != nil, "\(model) does not parse")
            #expect(event.durationsMs["download"] != nil)
            #expect(event.durationsMs["depth"] != nil && event.durationsMs["mesh"] != nil, "engine stages: \(event.durationsMs)")
        }
        let files = filesUnder(root)
        #expect(files.filter { $0.hasPrefix("models/") && $0.hasSuffix(".obj") }.count == 20)
        #expect(files.filter { $0.hasPrefix("image_") }.count == 20)
        #expect(files.filter { $0.hasPrefix("image_") && $0.hasSuffix(".png") }.count == 10)
        #expect(!files.contains { $0.contains(".tmp-") })
        #expect(try harness.depth(harness.names.workQueue) == 0)
        #expect(try harness.depth(harness.names.deadLetterQueue) == 0)

        let port = try #require(worker.service.httpPort)
        #expect(try httpGet(port: port, path: "/healthz").0 == 200)
        #expect(try httpGet(port: port, path: "/readyz").0 == 200)
        let (status, metrics) = try httpGet(port: port, path: "/metrics")
        #expect(status == 200)
        // Each worker has its own registry: exact counts, whatever other suites' workers did.
        #expect(metricValue(metrics, #"mesh_worker_jobs_total{outcome="succeeded"}"#) == 20)
        for outcome in ["failed", "retried", "requeued"] {
            #expect(metricValue(metrics, "mesh_worker_jobs_total{outcome=\"\(outcome)\"}") == 0)
        }
        #expect(metricValue(metrics, "mesh_worker_retries_total") == 0)
        #expect(metricValue(metrics, "mesh_worker_jobs_in_flight") == 0)
        #expect(metricValue(metrics, "mesh_worker_amqp_connected") == 1)
        #expect(metricValue(metrics, "mesh_worker_amqp_consuming") == 1)
        #expect(metricValue(metrics, "mesh_worker_amqp_reconnects_total") == 0)
        let fixtureBytes = (0..<20).map { TestFixtures.bytes(TestFixtures.names[$0 % TestFixtures.names.count]).count }.reduce(0, +)
        #expect(metricValue(metrics, "mesh_worker_download_bytes_total") == Double(fixtureBytes))
        for stage in ["download", "save", "depth", "mesh", "total"] {
            #expect(metricValue(metrics, "mesh_worker_stage_duration_seconds_count{stage=\"\(stage)\"}") == 20, "\(stage)")
            #expect(metricValue(metrics, "mesh_worker_stage_duration_seconds_bucket{stage=\"\(stage)\",le=\"+Inf\"}") == 20)
            #expect((metricValue(metrics, "mesh_worker_stage_duration_seconds_sum{stage=\"\(stage)\"}") ?? 0) > 0)
        }
        #expect(metricValue(metrics, "mesh_worker_queue_to_done_seconds_count") == 20)
        // Buckets for jobs of 50 ms to a minute (and retry waits past it).
        for bound in ["0.05", "1.0", "60.0", "1800.0"] {
            #expect(metricValue(metrics, "mesh_worker_queue_to_done_seconds_bucket{le=\"\(bound)\"}") != nil, "le=\(bound)")
        }
        #expect(metrics.contains("# TYPE mesh_worker_stage_duration_seconds histogram"))
        #expect(metrics.contains("# TYPE mesh_worker_jobs_total counter"))

        try await worker.stop()
        #expect(try httpGet(port: port, path: "/healthz").0 == 0)  // endpoints closed with the worker
    }

    @Test func badInputsAreDeadLetteredWithTheirCodesAndTheWorkerKeepsConsuming() async throws {
        let harness = try BrokerHarness()
        defer { harness.cleanup() }
        let (worker, root) = try await harness.startWorker("bad")

        let cases = badJobCases
        for (i, (json, _)) in cases.enumerated() { try harness.publish(json, messageId: "bad-\(i)") }

        let letters = try harness.deadLetters(atLeast: cases.count)
        #expect(letters.count == cases.count)
        var events = try harness.events(atLeast: cases.count)
        #expect(events.count == cases.count)
        for (i, (json, code)) in cases.enumerated() {
            let letter = try #require(letters.first { $0.properties.messageId == "bad-\(i)" }, "no dead letter for \(code)")
            #expect(letter.headers["x-error-code"]?.stringValue == code)
            #expect(letter.headers["x-exception-message"]?.stringValue?.isEmpty == false)
            if let message = badJobMessages[json] { #expect(letter.headers["x-exception-message"]?.stringValue == message) }
            #expect(letter.headers["x-original-routingKey"]?.stringValue == harness.names.workQueue)
            #expect(letter.headers["x-original-exchange"]?.stringValue == "")
            #expect(letter.headers["__TypeId__"]?.stringValue == "com.myroom.Model3DRequest")
            #expect(letter.properties.contentType == "application/json")
            #expect(letter.body == Array(json.utf8))
            let event = try #require(events.first { $0.messageId == "bad-\(i)" })
            #expect(event.status == .failed && event.errorCode == code && event.errorMessage != nil)
        }
        // Still consuming: a good job after the bad ones.
        try harness.publish(jobJSON(url: httpServer.url("/img/photo_1.jpg"), member: 8), messageId: "good")
        try harness.events(atLeast: cases.count + 1, into: &events)
        #expect(events.last?.status == .succeeded && events.last?.memberId == 8)
        #expect(filesUnder(root).filter { $0.hasPrefix("image_") } == ["image_8_20240108_160000.jpg"])
        let metrics = try httpGet(port: try #require(worker.service.httpPort), path: "/metrics").1
        #expect(metricValue(metrics, #"mesh_worker_jobs_total{outcome="failed"}"#) == Double(cases.count))
        #expect(metricValue(metrics, #"mesh_worker_jobs_total{outcome="succeeded"}"#) == 1)
        for (code, count) in Dictionary(grouping: cases.map(\.1), by: { $0 }).mapValues(\.count) {
            #expect(metricValue(metrics, "mesh_worker_failures_total{code=\"\(code)\"}") == Double(count), "\(code)")
        }
        try await worker.stop()
    }

    @Test func serverFailingTwiceThenAnsweringGivesOneModelAfterRetries() async throws {
        let harness = try BrokerHarness()
        defer { harness.cleanup() }
        let (worker, root) = try await harness.startWorker("flaky")

        let url = httpServer.url("/flaky?key=\(harness.prefix)&failures=2&img=photo_2.png")
        try harness.publish(jobJSON(url: url, member: 31), messageId: "flaky")
        let events = try harness.events(atLeast: 1)
        let event = try #require(events.first)
        #expect(event.status == .succeeded)
        #expect(event.attempts == 3)
        #expect(filesUnder(root).filter { $0.hasSuffix(".obj") } == ["models/model3d_31_20240108_160000.obj"])
        #expect(try harness.depth(harness.names.deadLetterQueue) == 0)
        let metrics = try httpGet(port: try #require(worker.service.httpPort), path: "/metrics").1
        #expect(metricValue(metrics, #"mesh_worker_jobs_total{outcome="retried"}"#) == 2)
        #expect(metricValue(metrics, #"mesh_worker_jobs_total{outcome="succeeded"}"#) == 1)
        #expect(metricValue(metrics, "mesh_worker_retries_total") == 2)
        #expect(metricValue(metrics, #"mesh_worker_failures_total{code="http_503"}"#) == 2)
        try await worker.stop()
    }

    @Test func retriesAreBoundedThenDeadLettered() async throws {
        let harness = try BrokerHarness()
        defer { harness.cleanup() }
        let (worker, _) = try await harness.startWorker("exhausted")
        try harness.publish(jobJSON(url: httpServer.url("/status/503"), member: 32), messageId: "always-503")
        let letters = try harness.deadLetters(atLeast: 1)
        let letter = try #require(letters.first)
        #expect(letter.headers["x-error-code"]?.stringValue == "http_503")
        #expect(letter.headers[RetryPolicy.attemptsHeader]?.intValue == 3)
        #expect(try harness.events(atLeast: 1).first?.errorCode == "http_503")
        try await worker.stop()
    }

    @Test func reconnectsAfterTheBrokerClosesItsConnectionsAndFinishesEveryJob() async throws {
        let harness = try BrokerHarness()
        defer { harness.cleanup() }
        let (worker, root) = try await harness.startWorker("reconnect", generator: BoxModelGenerator(delay: 0.6))
        for i in 0..<16 {
            try harness.publish(jobJSON(url: httpServer.url("/img/photo_\(i % 4).jpg"), member: Int64(500 + i)),
                                messageId: "\(harness.prefix)-r\(i)")
        }
        var events = try harness.events(atLeast: 2)
        #expect(try harness.closeWorkerConnections() >= 1)
        // Every job finishes; a job whose ack was lost with the connection is redelivered and reported
        // again as already done, never generated twice.
        let deadline = Date().addingTimeInterval(60)
        while Set(events.filter { $0.status == .succeeded }.compactMap(\.memberId)).count < 16 && Date() < deadline {
            try harness.events(atLeast: events.count + 1, timeout: 1, into: &events)
        }
        let succeeded: Set<Int64> = Set(events.filter { $0.status == .succeeded }.compactMap(\.memberId))
        let published: Set<Int64> = Set((0..<16).map { Int64(500 + $0) })
        #expect(succeeded == published)
        #expect(filesUnder(root).filter { $0.hasSuffix(".obj") }.count == 16)
        #expect(try harness.depth(harness.names.deadLetterQueue) == 0)
        let port = try #require(worker.service.httpPort)
        try waitFor("the reconnect to show in /metrics") {
            metricValue(try httpGet(port: port, path: "/metrics").1, "mesh_worker_amqp_reconnects_total") == 1
        }
        #expect(try httpGet(port: port, path: "/readyz").0 == 200)
        try await worker.stop()
        #expect(try harness.depth(harness.names.workQueue) == 0)
    }

    @Test func heartbeatsAreServicedWhileALongJobRuns() async throws {
        let harness = try BrokerHarness()
        defer { harness.cleanup() }
        let (worker, _) = try await harness.startWorker("heartbeat", generator: BoxModelGenerator(delay: 5)) { config in
            config.poolSize = 1
            config.amqp.heartbeat = 2  // the broker drops a connection after two silent intervals (4 s)
        }
        try harness.publish(jobJSON(url: httpServer.url("/img/photo_2.jpg"), member: 41), messageId: "slow")
        let event = try #require(try harness.events(atLeast: 1).first)
        #expect(event.status == .succeeded && event.alreadyDone == nil)
        let metrics = try httpGet(port: try #require(worker.service.httpPort), path: "/metrics").1
        #expect(metricValue(metrics, "mesh_worker_amqp_reconnects_total") == 0)
        try await worker.stop()
    }

    @Test func passiveModeOnlyChecksTheWorkQueue() async throws {
        let harness = try BrokerHarness()
        defer { harness.cleanup() }
        let (worker, _) = try await harness.startWorker("passive") { $0.passiveWorkQueue = true }
        try harness.publish(jobJSON(url: httpServer.url("/img/photo_0.png"), member: 42))
        #expect(try harness.events(atLeast: 1).first?.status == .succeeded)
        try await worker.stop()

        // A work queue that does not exist is not created: the worker never becomes ready.
        var missing = try harness.configuration(root: temporaryDirectory("passive-missing"))
        missing.passiveWorkQueue = true
        missing.queues.workQueue = "\(harness.prefix).does-not-exist"
        let orphan = InProcessWorker(configuration: missing)
        try await Task.sleep(for: .seconds(1.5))
        #expect(!orphan.service.isReady)
        let port = try #require(orphan.service.httpPort)
        #expect(try httpGet(port: port, path: "/healthz").0 == 200)
        #expect(try httpGet(port: port, path: "/readyz").0 == 503)
        try await orphan.stop()
    }
}
