import Dispatch

/// A Swift concurrency task executor that runs its jobs on one serial dispatch queue, outside the
/// cooperative pool (which has one thread per core and stalls while those threads are blocked).
/// Tasks started with `Task(executorPreference:)` on it, and their child tasks, run here.
final class DispatchTaskExecutor: TaskExecutor, @unchecked Sendable {
    private let queue: DispatchQueue

    init(label: String) {
        queue = DispatchQueue(label: label)
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
