import AMQP
import Foundation
import Testing
import Worker
import WorkerTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Two `mesh-worker` processes on one queue and one uploads root, as two machines on a shared
/// filesystem would be: RabbitMQ's competing consumers share the jobs out, and nothing in a worker
/// may assume it is alone.
@Suite(.serialized) struct CompetingConsumersTests {
    @Test func twoWorkersOnOneQueueDoEveryJobOnceWithoutFileClashes() throws {
        let harness = try BrokerHarness()
        defer { harness.cleanup() }
        let base = temporaryDirectory("two-workers")
        let root = base.appendingPathComponent("uploads")
        // Box engine with a short delay, so both workers hold jobs at the same time.
        let workers = try ["a", "b"].map { name in
            try WorkerProcess(environment: harness.environment(root: root, poolSize: 2, boxDelay: 0.05, drainGrace: 10),
                              logURL: base.appendingPathComponent("worker-\(name).log"))
        }
        for worker in workers { try worker.waitUntilConsuming() }

        // 40 jobs from 10 members, four per member in the same second: each member's four jobs want
        // the same file names, and the two workers race for them.
        let jobs = (0..<40).map { i in
            (messageId: "\(harness.prefix)-job\(i)",
             json: jobJSON(url: httpServer.url("/img/photo_\(i % 4).\(i % 2 == 0 ? "jpg" : "png")"), member: Int64(1000 + i % 10)))
        }
        for job in jobs { try harness.publish(job.json, messageId: job.messageId) }

        let events = try harness.events(atLeast: jobs.count, timeout: 120)
        for worker in workers { worker.signal(SIGTERM) }
        for worker in workers { #expect(worker.waitForExit() == 0) }

        // Every job done exactly once: one succeeded event each, none twice, nothing left or dead.
        #expect(events.count == jobs.count)
        #expect(events.allSatisfy { $0.status == .succeeded }, "\(events.filter { $0.status != .succeeded })")
        #expect(Set(events.compactMap(\.messageId)) == Set(jobs.map(\.messageId)))
        #expect(try harness.events(atLeast: 1, timeout: 1).isEmpty)  // no second event for any job
        #expect(try harness.depth(harness.names.workQueue) == 0)
        #expect(try harness.depth(harness.names.deadLetterQueue) == 0)
        #expect(events.allSatisfy { $0.alreadyDone != true })
        // Both workers took jobs: the broker shared them out.
        #expect(Set(events.map(\.worker)).count == 2, "\(Dictionary(grouping: events, by: \.worker).mapValues(\.count))")

        // No clashes: 40 distinct images and models, each the file its event names, each a model.
        let modelPaths = events.compactMap(\.modelPath)
        let imagePaths = events.compactMap(\.imagePath)
        #expect(Set(modelPaths).count == jobs.count && Set(imagePaths).count == jobs.count)
        let files = filesUnder(root).filter { !$0.hasPrefix(".worker/") }
        #expect(files.filter { $0.hasPrefix("models/") }.sorted() == modelPaths.sorted())
        #expect(files.filter { $0.hasPrefix("image_") }.sorted() == imagePaths.sorted())
        #expect(!filesUnder(root).contains { $0.contains(".tmp-") })
        for path in modelPaths {
            #expect(OBJSummary(contentsOf: root.appendingPathComponent(path)) != nil, "\(path)")
        }
        // Each member's four jobs: the contract name once, then names made unique by the job's key.
        for member in 1000..<1010 {
            let mine = modelPaths.filter { $0.hasPrefix("models/model3d_\(member)_20240108_160000") }
            #expect(mine.count == 4)
            #expect(mine.contains("models/model3d_\(member)_20240108_160000.obj"), "\(mine)")
        }
        // Each image is the photo its job named (a clash would have put another job's photo there).
        for event in events {
            let index = try #require(jobs.firstIndex { $0.messageId == event.messageId })
            let name = "photo_\(index % 4).\(index % 2 == 0 ? "jpg" : "png")"
            let saved = try Data(contentsOf: root.appendingPathComponent(try #require(event.imagePath)))
            let same = Array(saved) == TestFixtures.bytes(name)
            #expect(same, "\(event.imagePath ?? "") does not hold \(name)")
        }
    }
}
