import Dispatch
import Foundation
import Synchronization
import Testing
import _DepthNetKernels
@testable import DepthNet

/// The thread pool behind ``Parallel``: every index exactly once, slots below the limit and never
/// shared by two ranges at the same moment, also when several callers compete for the pool.
@Suite("Parallel loops on the spinning pool")
struct ParallelTests {
    /// Runs one loop and checks its coverage and slot use; returns the slots seen.
    static func check(count: Int, limit: Int, minimumWork: Int, microsecondsPerRange: UInt64 = 0) -> Set<Int> {
        let hits = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: count)
        hits.initialize(repeating: 0)
        defer { hits.deallocate() }
        let busy = UnsafeMutableBufferPointer<Atomic<Int>>.allocate(capacity: limit)
        for i in 0..<limit { (busy.baseAddress! + i).initialize(to: Atomic(0)) }
        defer { busy.deallocate() }
        let problems = Atomic(0)
        let seen = Mutex(Set<Int>())
        Parallel.forEachChunk(count, limit: limit, minimumWork: minimumWork) { slot, range in
            guard slot >= 0 && slot < limit else { problems.add(1, ordering: .relaxed); return }
            if busy[slot].add(1, ordering: .acquiringAndReleasing).newValue != 1 { problems.add(1, ordering: .relaxed) }
            seen.withLock { _ = $0.insert(slot) }
            for i in range { hits[i] &+= 1 }
            if microsecondsPerRange > 0 {   // real work takes time: let a sleeping worker wake up and join
                let end = DispatchTime.now().uptimeNanoseconds + microsecondsPerRange * 1000
                while DispatchTime.now().uptimeNanoseconds < end {}
            }
            busy[slot].subtract(1, ordering: .acquiringAndReleasing)
        }
        #expect(problems.load(ordering: .relaxed) == 0, "a slot out of range or shared by two running ranges")
        #expect(hits.allSatisfy { $0 == 1 }, "count \(count) limit \(limit): an index ran \(hits.filter { $0 != 1 }.count) times wrong")
        return seen.withLock { $0 }
    }

    @Test("every index once, slots below the limit", arguments: [1, 2, 3, 5, 8])
    func coverage(limit: Int) {
        for count in [0, 1, 2, 7, 31, 64, 1000, 100_003] {
            _ = Self.check(count: count, limit: limit, minimumWork: 32_768)
        }
    }

    @Test("small loops stay on the caller (slot 0)")
    func smallLoopsSerial() {
        #expect(Self.check(count: 100, limit: 4, minimumWork: 1) == [0])
    }

    @Test("the pool's workers take part in a long loop")
    func workersJoin() {
        var slots = Set<Int>()
        for _ in 0..<50 where slots.count < 2 {
            slots.formUnion(Self.check(count: 64, limit: 2, minimumWork: 1 << 20, microsecondsPerRange: 200))
        }
        #expect(slots == [0, 1])
        #expect(mr_pool_workers() >= 1)
    }

    @Test("callers competing for the pool all finish correctly (the losers use dispatch)")
    func competingCallers() {
        DispatchQueue.concurrentPerform(iterations: 4) { caller in
            for round in 0..<300 {
                _ = Self.check(count: 97 + caller * 13 + round % 7, limit: 2 + caller % 2, minimumWork: 32_768)
            }
        }
    }

    @Test("an inference's thread count is its workspace's: 1 and 3 threads give the same maps", arguments: KernelChoice.allCases)
    func workspaceThreads(_ kernels: KernelChoice) throws {
        let model = try DepthModel.randomlyInitialised(.mrdepth(MRDepthConfig(widths: [8, 16, 16, 24, 32])), kernels: kernels)
        let input = Tensor(shape: [1, 3, 64, 96], values: (0..<(3 * 64 * 96)).map { Float(($0 * 7919) % 255) / 128 - 1 })
        let one = try model.predict(input, workspace: Workspace(threads: 1)).toArray()
        let three = try model.predict(input, workspace: Workspace(threads: 3)).toArray()
        #expect(relativeError(three, one) <= 1e-6, "\(kernels)")
    }
}
