import Dispatch
import _DepthNetKernels

/// Splits loops outside BLAS (convolution panels, im2col, bias and activation passes, resizing,
/// normalisation) over the threads an inference is given (``Workspace/threads``), so one inference
/// given N uses N cores throughout and a pool of single-threaded inferences stays single-threaded.
///
/// The loops run on the `_DepthNetKernels` thread pool (`mr_pool.h`): its workers spin briefly
/// between jobs and pieces are claimed dynamically, because one inference is some forty short
/// parallel regions and a thread wake-up per region cost as much as the second core gave. When
/// the pool is busy with another inference's loop, the loop falls back to
/// `DispatchQueue.concurrentPerform`.
enum Parallel {
    /// Loops with less total work than this (in the caller's work units) run on the caller alone.
    static let minimumTotalWork = 32_768
    /// Pieces per thread: enough that a thread that starts late or meets costlier pieces (the
    /// border panels of a convolution) does not hold up the others.
    static let piecesPerThread = 8

    /// Runs `body(i)` for every `i` in `0..<count`, in pieces spread over up to `threads` threads.
    /// Each index must touch memory no other index touches.
    static func forEach(_ count: Int, threads: Int, minimumWork: Int = 1, _ body: (Int) -> Void) {
        forEachChunk(count, limit: threads, minimumWork: minimumWork) { _, range in
            for i in range { body(i) }
        }
    }

    /// Splits `0..<count` into contiguous ranges and runs `body(slot, range)` for each,
    /// concurrently on up to `limit` threads when worthwhile. `slot` (below `limit`) names the
    /// thread running the range: two ranges running at once never share a slot, so callers size
    /// per-thread scratch by `limit` and index it by `slot`.
    static func forEachChunk(_ count: Int, limit: Int, minimumWork: Int = 1, _ body: (Int, Range<Int>) -> Void) {
        let threads = max(1, limit)
        guard threads > 1, count > 1, count * minimumWork >= minimumTotalWork else {
            if count > 0 { body(0, 0..<count) }
            return
        }
        let pieces = min(count, threads * piecesPerThread)
        func range(_ piece: Int) -> Range<Int> { (count * piece / pieces)..<(count * (piece + 1) / pieces) }
        withoutActuallyEscaping(body) { body in
            var job = PoolJob { piece, slot in body(slot, range(piece)) }
            let ran = withUnsafeMutablePointer(to: &job) { pointer in
                mr_pool_run(Int32(threads), pieces, { context, piece, slot in
                    context!.assumingMemoryBound(to: PoolJob.self).pointee.run(piece, Int(slot))
                }, pointer)
            }
            guard ran == 0 else { return }
            // Another loop holds the pool: split over dispatch's workers instead, one range per slot.
            let shared = UncheckedSendable(body)
            let chunks = min(count, threads)
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                shared.value(chunk, (count * chunk / chunks)..<(count * (chunk + 1) / chunks))
            }
        }
    }
}

/// The closure a pool job runs, behind the context pointer `mr_pool_run` passes back.
private struct PoolJob {
    let run: (Int, Int) -> Void
}

/// Carries a value into a `@Sendable` closure whose uses the caller has checked.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
