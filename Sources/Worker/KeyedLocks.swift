import Foundation

/// One lock per key, created on demand and dropped when unused: two deliveries of the same job in
/// this process (a redelivery racing the original after a reconnect) run one after the other.
final class KeyedLocks: @unchecked Sendable {
    private let condition = NSCondition()
    private var held: Set<String> = []

    func withLock<T>(_ key: String, _ body: () throws -> T) rethrows -> T {
        condition.lock()
        while held.contains(key) { condition.wait() }
        held.insert(key)
        condition.unlock()
        defer {
            condition.lock()
            held.remove(key)
            condition.broadcast()
            condition.unlock()
        }
        return try body()
    }
}
