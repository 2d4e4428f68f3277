/// How transient failures are retried: the n-th retry waits `delays[n-1]` seconds in a broker-side
/// retry queue (a queue with that message TTL that dead-letters back to the work queue). After
/// `delays.count` retries the failure is treated as permanent.
public struct RetryPolicy: Sendable, Equatable {
    /// Seconds before each retry, in order (default 5, 30, 120).
    public var delays: [Double]

    public init(delays: [Double] = [5, 30, 120]) {
        precondition(delays.allSatisfy { $0 > 0 }, "retry delays must be positive")
        self.delays = delays
    }

    /// Attempts in all: the first plus one per delay.
    public var maxAttempts: Int { delays.count + 1 }

    /// The header holding how many attempts a message has already had.
    public static let attemptsHeader = "x-attempts"

    /// What to do after attempt number `attempt` (1-based) failed transiently: the index of the delay
    /// to wait, or nil when no retry is left.
    public func retryDelayIndex(afterAttempt attempt: Int) -> Int? {
        attempt >= 1 && attempt <= delays.count ? attempt - 1 : nil
    }

    /// The retry queue name for a delay: `{workQueue}.retry.{milliseconds}ms`.
    public func retryQueueName(workQueue: String, delayIndex: Int) -> String {
        "\(workQueue).retry.\(delayMilliseconds(delayIndex))ms"
    }

    /// The TTL of a retry queue, in milliseconds.
    public func delayMilliseconds(_ delayIndex: Int) -> Int64 {
        Int64((delays[delayIndex] * 1000).rounded())
    }
}
