#include "mr_pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

// The job state is one 64-bit word, so that a thread claims a piece with one compare-and-swap
// that also checks which job it belongs to: bits 0–19 one past the last unclaimed piece ("back"),
// 20–39 the first unclaimed piece ("front"), 40–47 the job's thread count. The caller claims
// from the front and the workers from the back, so with two threads each runs one contiguous
// run of pieces, and the next loop over the same rows splits them about the same way: a thread
// mostly reads what it wrote itself, from its own cache. A worker reads `fn` and `context` only
// after claiming a piece, and the caller replaces them only after every claimed piece has
// reported done, so a worker never runs a piece with another job's function.
#define PIECES_BITS 20
#define PIECES_MASK ((1ULL << PIECES_BITS) - 1)
#define NEXT_SHIFT PIECES_BITS
#define THREADS_SHIFT (2 * PIECES_BITS)

// How long an idle worker spins before it sleeps: long enough to bridge the serial code between
// two layers of an inference, short enough not to hold a core when inferences stop.
#define SPIN_NANOSECONDS 300000L

static _Atomic uint64_t job_word;       // pieces 0 / next 0: no work
static mr_pool_fn job_fn;
static void *job_context;
static _Atomic long job_done;
static atomic_flag pool_busy = ATOMIC_FLAG_INIT;
static _Atomic int sleepers;
static _Atomic int started;              // workers started (grown only while pool_busy is held)
static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;

static inline uint64_t pack(long next, long pieces, int threads) {
    return (uint64_t)pieces | ((uint64_t)next << NEXT_SHIFT) | ((uint64_t)threads << THREADS_SHIFT);
}

static inline int has_work(uint64_t word, int slot) {
    uint64_t back = word & PIECES_MASK, front = (word >> NEXT_SHIFT) & PIECES_MASK;
    return front < back && slot < (int)(word >> THREADS_SHIFT);
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

/// Claims and runs pieces of the current job as `slot` until none is left (the caller, slot 0,
/// from the front, workers from the back); returns how many ran.
static long work(int slot) {
    long ran = 0;
    uint64_t word = atomic_load(&job_word);
    while (has_work(word, slot)) {
        uint64_t claimed = slot == 0 ? word + (1ULL << NEXT_SHIFT) : word - 1;
        if (atomic_compare_exchange_weak(&job_word, &word, claimed)) {
            long piece = slot == 0 ? (long)((word >> NEXT_SHIFT) & PIECES_MASK) : (long)(word & PIECES_MASK) - 1;
            job_fn(job_context, piece, slot);
            atomic_fetch_add(&job_done, 1);
            ran++;
            word = atomic_load(&job_word);
        }
    }
    return ran;
}

static void *worker_main(void *argument) {
    int slot = (int)(intptr_t)argument;
    for (;;) {
        if (work(slot)) continue;
        // Spin a while for the next job (the next layer of the same inference, usually).
        long start = now_ns();
        int found = 0;
        for (long spins = 1;; spins++) {
            if (has_work(atomic_load_explicit(&job_word, memory_order_relaxed), slot)) { found = 1; break; }
            cpu_relax();
            if ((spins & 255) == 0 && now_ns() - start > SPIN_NANOSECONDS) break;
        }
        if (found) continue;
        // Sleep. The caller stores the job word and then reads `sleepers`; this thread increments
        // `sleepers` and then reads the job word (both sequentially consistent), so at least one
        // of them sees the other: either this thread finds the job, or the caller wakes it.
        pthread_mutex_lock(&sleep_lock);
        atomic_fetch_add(&sleepers, 1);
        while (!has_work(atomic_load(&job_word), slot)) pthread_cond_wait(&wake, &sleep_lock);
        atomic_fetch_sub(&sleepers, 1);
        pthread_mutex_unlock(&sleep_lock);
    }
    return 0;
}

/// Starts workers up to `wanted` (slots 1…wanted); returns how many are running.
static int start_workers(int wanted) {
    while (started < wanted) {
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attributes, worker_main, (void *)(intptr_t)(started + 1));
        pthread_attr_destroy(&attributes);
        if (failed) break;
        started++;
    }
    return started;
}

int mr_pool_run(int threads, long pieces, mr_pool_fn fn, void *context) {
    if (pieces <= 0) return 1;
    if (threads > MR_POOL_MAX_THREADS) threads = MR_POOL_MAX_THREADS;
    if (threads <= 1 || pieces == 1) {
        for (long piece = 0; piece < pieces; piece++) fn(context, piece, 0);
        return 1;
    }
    if (pieces > MR_POOL_MAX_PIECES) return 0;
    if (atomic_flag_test_and_set(&pool_busy)) return 0;
    int workers = start_workers(threads - 1);
    if (workers < threads - 1) threads = workers + 1;
    job_fn = fn;
    job_context = context;
    atomic_store(&job_done, 0);
    atomic_store(&job_word, pack(0, pieces, threads));
    if (atomic_load(&sleepers) > 0) {
        pthread_mutex_lock(&sleep_lock);
        pthread_cond_broadcast(&wake);
        pthread_mutex_unlock(&sleep_lock);
    }
    work(0);
    // Pieces claimed by workers may still be running.
    for (long spins = 1; atomic_load(&job_done) < pieces; spins++) {
        cpu_relax();
        if ((spins & 4095) == 0) sched_yield();
    }
    atomic_store(&job_word, 0);
    atomic_flag_clear(&pool_busy);
    return 1;
}

int mr_pool_workers(void) { return atomic_load(&started); }
