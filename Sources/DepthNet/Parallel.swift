import CBLAS
import Dispatch

/// Splits loops outside BLAS (im2col, bias and activation passes, resizing, normalisation)
/// over as many threads as OpenBLAS is set to use, so one inference with ``BLASThreads`` at N
/// uses N cores throughout and a pool of single-threaded inferences stays single-threaded.
enum Parallel {
    /// Runs `body(i)` for every `i` in `0..<count`, in chunks spread over the BLAS thread count.
    /// Each index must touch memory no other index touches.
    static func forEach(_ count: Int, minimumWork: Int = 1, _ body: (Int) -> Void) {
        let threads = Int(openblas_get_num_threads())
        guard threads > 1, count > 1, count * minimumWork >= 32_768 else {
            for i in 0..<count { body(i) }
            return
        }
        let chunks = min(count, threads)
        withoutActuallyEscaping(body) { body in
            // Indices touch disjoint memory (the caller's contract), so sharing `body` is safe.
            let shared = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                let lo = count * chunk / chunks, hi = count * (chunk + 1) / chunks
                for i in lo..<hi { shared.value(i) }
            }
        }
    }
}

extension Parallel {
    /// How many chunks ``forEachChunk(_:minimumWork:_:)`` may use: the BLAS thread count.
    static var maximumChunks: Int { max(1, Int(openblas_get_num_threads())) }

    /// Splits `0..<count` into at most `limit` contiguous ranges and runs `body(chunk, range)` for
    /// each, concurrently when worthwhile; `chunk` is below `limit` (callers size per-chunk scratch by it).
    static func forEachChunk(_ count: Int, limit: Int, minimumWork: Int = 1, _ body: (Int, Range<Int>) -> Void) {
        let threads = max(1, limit)
        let chunks = threads > 1 && count > 1 && count * minimumWork >= 32_768 ? min(count, threads) : 1
        if chunks == 1 {
            body(0, 0..<count)
            return
        }
        withoutActuallyEscaping(body) { body in
            let shared = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                shared.value(chunk, (count * chunk / chunks)..<(count * (chunk + 1) / chunks))
            }
        }
    }
}

/// Carries a value into a `@Sendable` closure whose uses the caller has checked.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
