// A small fork-join thread pool for DepthNet's parallel loops.
//
// One inference runs some forty short parallel regions (a convolution at 8×8 takes tens of
// microseconds). Waking a sleeping thread per region (what DispatchQueue.concurrentPerform does
// after its workers park) costs about as much as the region itself, so the second core bought
// little. This pool's workers spin for a short while after each job before they sleep, the
// caller works on the job too, and pieces are claimed one at a time, so a late worker delays
// nothing: it just takes fewer pieces. The caller claims from the front and workers from the
// back, so two threads split a loop into two contiguous runs that the next loop over the same
// rows repeats.
#ifndef MR_POOL_H
#define MR_POOL_H

#ifdef __cplusplus
extern "C" {
#endif

/// The work of one piece: `slot` (< the job's thread count) names the thread running it, for
/// per-thread scratch; two pieces running at the same time never share a slot.
typedef void (*mr_pool_fn)(void *context, long piece, int slot);

/// The largest thread count a job may use (caller included).
#define MR_POOL_MAX_THREADS 64
/// The largest number of pieces one job may have.
#define MR_POOL_MAX_PIECES ((1L << 20) - 1)

/// Runs fn(context, piece, slot) for every piece in [0, pieces) on `threads` threads: the caller
/// (slot 0) and threads − 1 pool workers (started on first use). Returns 1 when every piece has
/// run, or 0 without running anything when another caller's job holds the pool (run the pieces
/// some other way then). threads ≤ 1 or pieces ≤ 1 run on the caller alone. `threads` is capped
/// at MR_POOL_MAX_THREADS; `pieces` must not exceed MR_POOL_MAX_PIECES.
int mr_pool_run(int threads, long pieces, mr_pool_fn fn, void *context);

/// Workers started so far (for tests).
int mr_pool_workers(void);

#ifdef __cplusplus
}
#endif

#endif
