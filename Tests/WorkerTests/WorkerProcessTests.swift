import AMQP
import Foundation
import Testing
import Worker
import WorkerTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The built `mesh-worker` executable (a dependency of this test target, so it is built beside the tests).
func meshWorkerExecutable() throws -> URL {
    var candidates: [URL] = []
    if let executable = Bundle.main.executableURL { candidates.append(executable.deletingLastPathComponent()) }
    let argv0 = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    candidates += [argv0, argv0.deletingLastPathComponent(), argv0.deletingLastPathComponent().deletingLastPathComponent()]
    for directory in candidates {
        let url = directory.appendingPathComponent("mesh-worker")
        if FileManager.default.isExecutableFile(atPath: url.path) { return url }
    }
    throw CommandFailed(command: "find mesh-worker", status: -1, output: "not found near \(candidates.map(\.path))")
}

/// A `mesh-worker` subprocess; its log goes to a file under the uploads root's parent.
final class WorkerProcess: @unchecked Sendable {
    let process = Process()
    let logURL: URL

    init(environment: [String: String], logURL: URL) throws {
        self.logURL = logURL
        process.executableURL = try meshWorkerExecutable()
        process.environment = environment
        guard FileManager.default.createFile(atPath: logURL.path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: logURL.path])
        }
        let log = try FileHandle(forWritingTo: logURL)
        log.seekToEndOfFile()
        process.standardError = log
        process.standardOutput = log
        try process.run()
    }

    var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Waits for the exit (at most `timeout` seconds) and returns the status, or nil when still running.
    func waitForExit(timeout: Double = 30) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// Waits until the log shows the worker consuming.
    func waitUntilConsuming(timeout: Double = 30) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !log.contains("connected and consuming") {
            try #require(Date() < deadline && process.isRunning, "mesh-worker did not start: \(log)")
            Thread.sleep(forTimeInterval: 0.05)
        }
    }
}

/// Waits until `condition` holds (at most `timeout` seconds).
func waitFor(_ what: String, timeout: Double = 30, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while try !condition() {
        try #require(Date() < deadline, "timed out waiting for \(what)")
        Thread.sleep(forTimeInterval: 0.05)
    }
}

/// The built executable under signals: SIGKILL mid-job, SIGTERM with jobs in flight.
@Suite(.serialized) struct WorkerProcessTests {
    /// A `mesh-worker` process on `harness`'s names with one pool slot, the box engine without delay and
    /// 5 s of drain grace, uploads and log in a fresh temporary folder named after `label`; `settings`
    /// are added to (or replace) its environment.
    func oneSlotWorker(_ label: String, _ harness: BrokerHarness, _ settings: [String: String]) throws -> WorkerProcess {
        let base = temporaryDirectory(label)
        let environment = harness.environment(root: base.appendingPathComponent("uploads"), poolSize: 1, boxDelay: 0, drainGrace: 5)
            .merging(settings) { $1 }
        return try WorkerProcess(environment: environment, logURL: base.appendingPathComponent("worker.log"))
    }

    @Test func helpDocumentsEverySetting() throws {
        let help = try runCommand(try meshWorkerExecutable().path, ["--help"])
        for setting in ["AMQP_URL", "AMQP_USERNAME", "AMQP_PASSWORD", "AMQP_TLS_CA", "--pool-size", "UPLOADS_ROOT",
                        "--max-download-bytes", "--max-pixels", "--retry-delays", "--allow-cidrs", "--http-port",
                        "--passive-queue", "--heartbeat", "--drain-grace", "--queue", "--http-host", "--http-idle-timeout"] {
            #expect(help.contains(setting), "--help does not mention \(setting)")
        }
    }

    /// The issue's `--http-host ::` (which once exited with EINVAL): the executable listens on IPv6
    /// and, through mapped addresses, IPv4; port 0 gives an ephemeral port, named in the log.
    @Test func listensOnIPv6AndIPv4WithHTTPHostAny() throws {
        let harness = try BrokerHarness()
        defer { harness.cleanup() }
        let worker = try oneSlotWorker("http-any", harness, ["WORKER_HTTP_HOST": "::", "WORKER_HTTP_PORT": "0"])
        try worker.waitUntilConsuming()
        let line = try #require(worker.log.split(separator: "\n").first { $0.contains("HTTP endpoints listening") })
        let object = try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let portText = try #require((object["metadata"] as? [String: Any])?["port"] as? String)
        let port = try #require(UInt16(portText))
        #expect(port != 0)
        #expect(try httpGet(host: "::1", port: port, path: "/healthz").0 == 200)
        #expect(try httpGet(host: "127.0.0.1", port: port, path: "/readyz").0 == 200)
        worker.signal(SIGTERM)
        #expect(worker.waitForExit() == 0)
    }

    /// Every line the executable writes is one JSON object (timestamp, level, label, message,
    /// metadata), and every line about a job names its member, delivery tag and job key.
    @Test func logLinesAreJSONAndJobLinesCarryTheJobsMetadata() throws {
        let harness = try BrokerHarness()
        defer { harness.cleanup() }
        let worker = try oneSlotWorker("json-logs", harness, ["WORKER_LOG_LEVEL": "debug"])
        try worker.waitUntilConsuming()
        try harness.publish(jobJSON(url: httpServer.url("/img/photo_2.jpg"), member: 4242), messageId: "\(harness.prefix)-logged")
        try harness.publish(#"{"imageUrl":"http://e/a.jpg","memberId":"# + "\n", messageId: "\(harness.prefix)-garbled")
        _ = try harness.events(atLeast: 2)
        worker.signal(SIGTERM)
        #expect(worker.waitForExit() == 0)

        let lines = worker.log.split(separator: "\n")
        #expect(lines.count >= 6, "\(worker.log)")
        var records: [[String: Any]] = []
        for line in lines {
            let object = try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
            #expect(Set(object.keys) == ["timestamp", "level", "label", "message", "metadata"], "\(line)")
            #expect((object["timestamp"] as? String)?.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil, "\(line)")
            #expect(["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(object["level"] as? String ?? ""))
            #expect((object["label"] as? String)?.isEmpty == false, "\(line)")
            #expect(object["metadata"] is [String: Any], "\(line)")
            records.append(object)
        }
        func metadata(_ record: [String: Any]) -> [String: String] {
            (record["metadata"] as? [String: Any] ?? [:]).compactMapValues { $0 as? String }
        }
        // The good job: started, downloaded (debug, from the processor), succeeded — all with its metadata.
        let good = records.filter { metadata($0)["messageId"] == "\(harness.prefix)-logged" }
        #expect(Set(good.compactMap { $0["message"] as? String }).isSuperset(of: ["job started", "downloaded", "job succeeded"]),
                "\(good)")
        for record in good {
            #expect(metadata(record)["memberId"] == "4242")
            #expect(metadata(record)["jobKey"] == "id:\(harness.prefix)-logged")
            #expect(metadata(record)["deliveryTag"].flatMap(UInt64.init) != nil)
        }
        // A body that is not JSON has no member, but still its delivery tag and key.
        let bad = try #require(records.first { metadata($0)["messageId"] == "\(harness.prefix)-garbled" && $0["message"] as? String == "job failed permanently: dead-lettering" })
        #expect(metadata(bad)["memberId"] == nil)
        #expect(metadata(bad)["jobKey"] == "id:\(harness.prefix)-garbled")
        #expect(metadata(bad)["errorCode"] == "malformed_json")
        #expect(metadata(bad)["deliveryTag"].flatMap(UInt64.init) != nil)
        // The AMQP client logs through the same handler.
        #expect(records.contains { metadata($0)["component"] == "amqp" }, "\(worker.log)")
    }

    @Test func anAddressItCannotBindEndsTheExecutableWithAClearError() throws {
        let harness = try BrokerHarness()
        defer { harness.cleanup() }
        // TEST-NET-1: on no interface here
        let worker = try oneSlotWorker("http-unbindable", harness, ["WORKER_HTTP_HOST": "192.0.2.1", "WORKER_HTTP_PORT": "0"])
        let status = worker.waitForExit()
        #expect(status != nil && status != 0)
        #expect(worker.log.contains("cannot listen for HTTP on 192.0.2.1:0"), "\(worker.log)")
    }

    @Test func killedMidJobThenRestartedCompletesExactlyOnce() throws {
        let harness = try BrokerHarness()
        defer { harness.cleanup() }
        let base = temporaryDirectory("sigkill")
        let root = base.appendingPathComponent("uploads")
        let logURL = base.appendingPathComponent("worker.log")
        let first = try WorkerProcess(environment: harness.environment(root: root, poolSize: 1, boxDelay: 30, drainGrace: 5),
                                      logURL: logURL)
        try first.waitUntilConsuming()
        try harness.publish(jobJSON(url: httpServer.url("/img/photo_3.jpg"), member: 77), messageId: "kill-me")

        // The model is half-way: written under its temporary name, not yet renamed.
        try waitFor("a temporary model file") { filesUnder(root).contains { $0.hasPrefix("models/.tmp-") } }
        first.signal(SIGKILL)
        #expect(first.waitForExit() != nil)
        #expect(!filesUnder(root).contains { $0.hasSuffix(".obj") && !$0.contains(".tmp-") })

        let second = try WorkerProcess(environment: harness.environment(root: root, poolSize: 1, boxDelay: 0, drainGrace: 5),
                                       logURL: logURL)
        try second.waitUntilConsuming()
        let events = try harness.events(atLeast: 1)
        #expect(events.first?.status == .succeeded)
        #expect(events.first?.memberId == 77)
        second.signal(SIGTERM)
        #expect(second.waitForExit() == 0)

        #expect(try harness.events(atLeast: 1, timeout: 0.5).isEmpty)  // no second event
        let files = filesUnder(root).filter { !$0.hasPrefix(".worker/") }
        #expect(files == ["image_77_20240108_160000.jpg", "models/model3d_77_20240108_160000.obj"], "\(files)")
        #expect(!filesUnder(root).contains { $0.contains(".tmp-") })
        #expect(OBJSummary(contentsOf: root.appendingPathComponent("models/model3d_77_20240108_160000.obj")) != nil)
        #expect(second.log.contains("removed a partial file left by a crashed worker"))
        #expect(try harness.depth(harness.names.workQueue) == 0)
    }

    @Test func sigtermFinishesOrRequeuesInFlightJobsAndLosesNothing() throws {
        let harness = try BrokerHarness()
        defer { harness.cleanup() }
        let base = temporaryDirectory("sigterm")
        let root = base.appendingPathComponent("uploads")
        let logURL = base.appendingPathComponent("worker.log")
        for i in 0..<6 {
            try harness.publish(jobJSON(url: httpServer.url("/img/photo_\(i % 4).png"), member: Int64(600 + i)),
                                messageId: "\(harness.prefix)-t\(i)")
        }
        var events: [ResultEvent] = []

        // 1. Generous grace: the two running jobs finish, the rest stays queued.
        let patient = try WorkerProcess(environment: harness.environment(root: root, poolSize: 2, boxDelay: 1.5, drainGrace: 20),
                                        logURL: logURL)
        try waitFor("two jobs in flight") { filesUnder(root).filter { $0.hasPrefix("models/.tmp-") }.count == 2 }
        patient.signal(SIGTERM)
        #expect(patient.waitForExit() == 0)
        try harness.events(atLeast: 2, timeout: 5, into: &events)
        #expect(events.count == 2)
        #expect(try harness.depth(harness.names.workQueue) == 4)

        // 2. Short grace: the running jobs are requeued, not lost.
        let hasty = try WorkerProcess(environment: harness.environment(root: root, poolSize: 2, boxDelay: 30, drainGrace: 0.5),
                                      logURL: logURL)
        try waitFor("two more jobs in flight") { filesUnder(root).filter { $0.hasPrefix("models/.tmp-") }.count == 2 }
        hasty.signal(SIGINT)
        #expect(hasty.waitForExit() == 0)
        #expect(hasty.log.contains("grace period over: requeued a running job"))
        try harness.events(atLeast: 3, timeout: 1, into: &events)
        #expect(events.count == 2)
        #expect(try harness.depth(harness.names.workQueue) == 4)

        // 3. A fresh worker finishes everything: six models, six events, nothing dead.
        let finisher = try WorkerProcess(environment: harness.environment(root: root, poolSize: 2, boxDelay: 0, drainGrace: 5),
                                         logURL: logURL)
        try harness.events(atLeast: 6, into: &events)
        finisher.signal(SIGTERM)
        #expect(finisher.waitForExit() == 0)
        #expect(Set(events.compactMap(\.memberId)) == Set((600..<606).map { Int64($0) }))
        #expect(events.allSatisfy { $0.status == .succeeded })
        let models = filesUnder(root).filter { $0.hasPrefix("models/") }
        #expect(models.count == 6 && models.allSatisfy { $0.hasSuffix(".obj") && !$0.contains(".tmp-") }, "\(models)")
        #expect(try harness.depth(harness.names.workQueue) == 0)
        #expect(try harness.depth(harness.names.deadLetterQueue) == 0)
    }
}
