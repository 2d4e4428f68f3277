import CBLAS
/// A contiguous float32 tensor, row-major (NCHW for images, `[N, T, C]` for token sequences).
///
/// Activations come from a ``Workspace``: when the last reference to a tensor goes away its
/// buffer returns to the workspace's pool, and the next layer asking for the same number of
/// elements gets it back. After the first inference at a given input size, a steady-state
/// inference therefore allocates no activation memory at all.
///
/// A tensor is a reference type so that intermediate results are released as soon as a layer
/// no longer needs them; layers write into the tensors they create and never mutate their inputs.
public final class Tensor {
    /// The dimensions, outermost first.
    public let shape: [Int]
    /// The number of elements (the product of `shape`).
    public let count: Int
    let base: UnsafeMutablePointer<Float>
    private let pool: BufferPool?

    /// Creates a tensor that owns a copy of `values`, outside any workspace.
    /// - Precondition: `values.count` equals the product of `shape`.
    public convenience init(shape: [Int], values: [Float]) {
        let count = shape.reduce(1, *)
        precondition(values.count == count, "Tensor: \(values.count) values for shape \(shape)")
        self.init(shape: shape, pool: nil)
        values.withUnsafeBufferPointer { source in
            if count > 0 { base.update(from: source.baseAddress!, count: count) }
        }
    }

    /// Creates a zero-filled tensor outside any workspace.
    public convenience init(zeros shape: [Int]) {
        self.init(shape: shape, pool: nil)
        base.update(repeating: 0, count: count)
    }

    /// An uninitialised tensor; its buffer comes from `pool` (or the heap when `pool` is nil).
    init(shape: [Int], pool: BufferPool?) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in \(shape)")
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.pool = pool
        if let pool {
            base = pool.take(count)
        } else {
            base = .allocate(capacity: max(count, 1))
        }
    }

    deinit {
        if let pool {
            pool.recycle(base, count: count)
        } else {
            base.deallocate()
        }
    }

    /// The number of dimensions.
    public var rank: Int { shape.count }

    /// The elements as an array (a copy).
    public func toArray() -> [Float] {
        Array(UnsafeBufferPointer(start: base, count: count))
    }

    /// Calls `body` with the elements; the pointer must not escape.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: base, count: count))
    }

    /// Calls `body` with the mutable elements; the pointer must not escape.
    public func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        try body(UnsafeMutableBufferPointer(start: base, count: count))
    }

    /// Channels of an NCHW tensor.
    var channels: Int { shape[1] }
    /// Height of an NCHW tensor.
    var height: Int { shape[2] }
    /// Width of an NCHW tensor.
    var width: Int { shape[3] }
}

/// Recycled activation buffers, keyed by element count. One per ``Workspace``; not thread-safe.
final class BufferPool {
    private var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
    private(set) var bytesInUse = 0
    private(set) var peakBytesInUse = 0
    private(set) var bytesHeld = 0
    private(set) var allocations = 0

    func take(_ count: Int) -> UnsafeMutablePointer<Float> {
        let bytes = count * MemoryLayout<Float>.stride
        bytesInUse += bytes
        peakBytesInUse = max(peakBytesInUse, bytesInUse)
        if var list = free[count], let pointer = list.popLast() {
            free[count] = list
            return pointer
        }
        allocations += 1
        bytesHeld += bytes
        return .allocate(capacity: max(count, 1))
    }

    func recycle(_ pointer: UnsafeMutablePointer<Float>, count: Int) {
        bytesInUse -= count * MemoryLayout<Float>.stride
        free[count, default: []].append(pointer)
    }

    func releaseAll() {
        for (_, list) in free { for pointer in list { pointer.deallocate() } }
        bytesHeld -= free.reduce(0) { $0 + $1.key * $1.value.count * MemoryLayout<Float>.stride }
        free.removeAll()
    }

    deinit { releaseAll() }
}

/// Scratch memory for inferences: a pool of activation buffers reused from layer to layer and
/// from one inference to the next.
///
/// Use one workspace per thread (it is not thread-safe); keep it across inferences so that
/// steady-state inference allocates nothing. Tensors made by a workspace keep its pool alive.
public final class Workspace {
    let pool = BufferPool()
    /// Threads the network's own loops may use in an inference on this workspace (convolution
    /// panels, im2col, bias passes, resizing); nil: as many as OpenBLAS is set to use. OpenBLAS's
    /// own calls follow its process-wide count (``BLASThreads``).
    public var threads: Int?

    /// Creates an empty workspace whose inferences use `threads` threads (nil: OpenBLAS's count).
    public init(threads: Int? = nil) { self.threads = threads }

    /// The thread count the loops use: ``threads``, or OpenBLAS's, at least 1.
    var loopThreads: Int { max(1, threads ?? Int(openblas_get_num_threads())) }

    /// A new uninitialised tensor from the pool.
    func make(_ shape: [Int]) -> Tensor {
        Tensor(shape: shape, pool: pool)
    }

    /// A new zero-filled tensor from the pool.
    func zeros(_ shape: [Int]) -> Tensor {
        let tensor = Tensor(shape: shape, pool: pool)
        tensor.base.update(repeating: 0, count: tensor.count)
        return tensor
    }

    /// A tensor from the pool holding a copy of `values` (e.g. a network input).
    public func tensor(shape: [Int], values: [Float]) -> Tensor {
        let tensor = make(shape)
        precondition(values.count == tensor.count, "Tensor: \(values.count) values for shape \(shape)")
        values.withUnsafeBufferPointer { source in
            if tensor.count > 0 { tensor.base.update(from: source.baseAddress!, count: tensor.count) }
        }
        return tensor
    }

    /// Bytes of activation memory handed out right now.
    public var bytesInUse: Int { pool.bytesInUse }
    /// The most activation memory handed out at once since the workspace was created
    /// (or since ``resetPeak()``): the activation peak of an inference.
    public var peakBytesInUse: Int { pool.peakBytesInUse }
    /// Bytes the pool holds, in use or free.
    public var bytesHeld: Int { pool.bytesHeld }
    /// How many buffers the pool has allocated from the heap so far; constant in steady state.
    public var allocationCount: Int { pool.allocations }

    /// Starts a new peak measurement from the memory in use now.
    public func resetPeak() { pool.resetPeak() }
}

extension BufferPool {
    func resetPeak() { peakBytesInUse = bytesInUse }
}
