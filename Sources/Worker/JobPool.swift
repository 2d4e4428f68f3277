import Foundation

/// A fixed set of threads running blocking jobs (downloads, the engine) off Swift's cooperative pool,
/// with a FIFO of waiting items. Items not yet started can be taken back (for a drain).
final class JobPool<Item: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var queue: [Item] = []
    private var running = 0
    private var stopping = false
    private let work: @Sendable (Item) -> Void

    init(threads: Int, name: String, work: @escaping @Sendable (Item) -> Void) {
        self.work = work
        for index in 0..<max(1, threads) {
            let thread = Thread { [self] in loop() }
            thread.name = "\(name)-\(index)"
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    func submit(_ item: Item) {
        condition.lock()
        queue.append(item)
        condition.signal()
        condition.unlock()
    }

    /// Removes and returns every item not started yet.
    func takeWaiting() -> [Item] {
        condition.lock(); defer { condition.unlock() }
        let waiting = queue
        queue.removeAll()
        return waiting
    }

    /// Items waiting plus items running.
    var load: Int {
        condition.lock(); defer { condition.unlock() }
        return queue.count + running
    }

    /// Lets the threads end once the queue is empty.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while queue.isEmpty && !stopping { condition.wait() }
            if queue.isEmpty && stopping {
                condition.unlock()
                return
            }
            let item = queue.removeFirst()
            running += 1
            condition.unlock()
            work(item)
            condition.lock()
            running -= 1
            condition.unlock()
        }
    }
}
