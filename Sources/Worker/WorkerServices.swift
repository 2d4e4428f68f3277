import AMQP
import Foundation
import ServiceLifecycle

/// The AMQP client as a service: starts the client's I/O thread once `startAfter` opens (the HTTP
/// endpoints listen), and closes the connection at graceful shutdown — after the job runner, which
/// stops before it, has drained.
struct AMQPClientService: Service, CustomStringConvertible {
    let client: AMQPClient
    let startAfter: StartGate

    var description: String { "AMQPClient" }

    func run() async throws {
        guard await startAfter.wait() else { return }  // cancelled first: the endpoints could not listen
        client.start()
        try? await gracefulShutdown()
        await client.shutdown()
    }
}

/// The consumer loop and the job pool as a service: consumes once `startAfter` opens; at graceful
/// shutdown it drains (see `WorkerService`).
struct JobRunner: Service, CustomStringConvertible {
    let worker: WorkerService
    let startAfter: StartGate
    let executor: DispatchTaskExecutor

    var description: String { "JobRunner" }

    func run() async throws {
        guard await startAfter.wait() else { return }
        await worker.runJobs(executor: executor)
    }
}

/// Opens once. `wait()` returns true when it is open, false when the waiting task is cancelled first.
final class StartGate: @unchecked Sendable {
    private let lock = NSLock()
    private var isOpen = false
    private var waiters: [UUID: CheckedContinuation<Bool, Never>] = [:]

    @Sendable func open() {
        let waiting = lock.withLock {
            isOpen = true
            defer { waiters.removeAll() }
            return Array(waiters.values)
        }
        for waiter in waiting { waiter.resume(returning: true) }
    }

    func wait() async -> Bool {
        let id = UUID()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                lock.lock()
                if isOpen {
                    lock.unlock()
                    continuation.resume(returning: true)
                } else if Task.isCancelled {
                    lock.unlock()
                    continuation.resume(returning: false)
                } else {
                    waiters[id] = continuation
                    lock.unlock()
                }
            }
        } onCancel: {
            let waiter = lock.withLock { waiters.removeValue(forKey: id) }
            waiter?.resume(returning: false)
        }
    }
}
