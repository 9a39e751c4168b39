import CQwen
import QwenFormats
import Synchronization

/// A weight matrix of `rows` output features by `columns` input features, each row contiguous,
/// in any supported storage type (usually memory-mapped from the model file).
public struct WeightMatrix: @unchecked Sendable {
    public let type: TensorType
    public let rows: Int
    public let columns: Int
    public let data: UnsafeRawPointer
    public let rowBytes: Int

    /// The kernels that multiply this matrix.
    public let kernels: WeightKernels
    /// The repacked form for this CPU's fastest kernels, when it has them for this type; made on first use.
    let packing: LazyPacking?

    /// The matrix repacked for this CPU's fastest kernels (packing it now if it was not yet), if it has them for this type.
    public var packed: PackedWeights? { packing?.weights(pool: nil) }

    /// `pack`: repack for the CPU's fastest kernels when possible, on first use (so loading a mapped file does no
    /// repacking), into `arena` when given (the model's, so its matrices lie in one stream); the mapped pages of the
    /// original are released then (`row(_:)` still reads them, through page faults). Packing uses the pool of its
    /// first multiply.
    public init(_ t: TensorData, pack: Bool = false, arena: PackingArena? = nil) throws {
        guard t.shape.count == 2 else { throw QwenError.format("'\(t.name)' should be a matrix, has shape \(t.shape)") }
        guard let kernels = WeightKernels.lookup(t.type) else {
            throw QwenError.unsupported("'\(t.name)' has weight type \(t.type.name), which is not supported yet")
        }
        type = t.type
        rows = t.shape[0]
        columns = t.shape[1]
        data = t.data
        rowBytes = t.type.byteCount(elements: columns)!
        self.kernels = kernels
        packing = pack && PackedWeights.isAvailable && PackedWeights.canPack(t.type) ? LazyPacking(t, rows: rows, columns: columns, arena: arena) : nil
    }

    @inline(__always) public func row(_ r: Int) -> UnsafeRawPointer { data + r * rowBytes }

    /// Scratch bytes `linear` needs for `tokens` input rows.
    public func scratchBytes(tokens: Int) -> Int {
        max(tokens * kernels.activation.rowBytes(columns: columns), TiledMatmul.scratchBytes(columns: columns, tokens: tokens),
            packing.map { _ in tokens * PackedWeights.activationRowBytes(type, columns: columns) } ?? 0)
    }

    /// Copies row `r` as floats into `dst` (embedding lookup).
    public func dequantizeRow(_ r: Int, into dst: UnsafeMutablePointer<Float>) throws {
        try RowKernels.dequantizeRow(type, row(r), dst, columns)
        // A tied embedding that is also the packed output head: its mapped pages were returned after packing, and
        // each lookup's page fault maps 64 KiB around the row; random tokens would pull the whole table back in.
        if let packing, packing.releasedSource { releaseMappedPages(row(r), rowBytes, touching: true) }
    }
}

/// y[t][r] = Σ_k W[r][k] · x[t][k] (+ bias[r]) for `tokens` rows of x (stride `columns`) into y (stride `rows`).
/// `scratch` must hold `w.scratchBytes(tokens:)` bytes. Work is split over output rows across the pool;
/// small products stay on the calling thread.
public func linear(_ w: WeightMatrix, input x: UnsafePointer<Float>, tokens: Int, output y: UnsafeMutablePointer<Float>,
                   bias: UnsafePointer<Float>? = nil, scratch scratchBuffer: UnsafeMutableRawBufferPointer, pool: ThreadPool?,
                   path: KernelPath = .best) {
    precondition(scratchBuffer.count >= w.scratchBytes(tokens: tokens), "linear: scratch too small")
    #if arch(x86_64)
    let packed = path == .simd ? w.packing?.weights(pool: pool) : nil  // packs the matrix on its first use
    #endif
    let profileStart = MatmulProfile.enabled && tokens == 1 ? MatmulProfile.now() : 0
    defer { if profileStart != 0 { MatmulProfile.record([w], since: profileStart) } }
    let scratch = scratchBuffer.baseAddress
    #if arch(x86_64)
    if let scratch, let packed {
        packed.multiply(input: x, tokens: tokens, output: y, bias: bias, scratch: scratch, pool: pool)
        return
    }
    if TiledMatmul.supports(w, tokens: tokens, path: path), let scratch {
        TiledMatmul.run(w, input: x, tokens: tokens, output: y, bias: bias, scratch: scratch, pool: pool)
        return
    }
    #endif
    let n = w.columns
    let rows = w.rows
    let format = w.kernels.activation
    let xStride = format.rowBytes(columns: n)
    if format != .f32 {
        guard let scratch else { preconditionFailure("linear: quantized activations need scratch") }
        for t in 0 ..< tokens {
            format.quantize(x + t * n, into: scratch + t * xStride, columns: n, path: path)
        }
    }
    let xq = UnsafeRawPointer(scratch)
    // rows per task: a multiple of 16, about 4 tasks per thread for balance
    let threads = pool?.threadCount ?? 1
    let work = rows * n * tokens
    let tasksWanted = work < 1 << 17 ? 1 : threads * 4
    let rowsPerTask = max(16, (rows + tasksWanted - 1) / tasksWanted + 15) / 16 * 16
    let taskCount = (rows + rowsPerTask - 1) / rowsPerTask

    func run(_ task: Int, _ dot: (UnsafeRawPointer, Int) -> Float) {
        let r0 = task * rowsPerTask, r1 = min(rows, r0 + rowsPerTask)
        for t in 0 ..< tokens {
            let out = y + t * rows
            for r in r0 ..< r1 { out[r] = dot(w.row(r), t) }
        }
        if let bias {
            for t in 0 ..< tokens {
                let out = y + t * rows
                for r in r0 ..< r1 { out[r] += bias[r] }
            }
        }
    }

    // non-escaping closures all the way down: no allocation per call
    func dispatch(_ dot: (UnsafeRawPointer, Int) -> Float) {
        if let pool, taskCount > 1 {
            pool.parallelFor(taskCount) { task, _ in run(task, dot) }
        } else {
            for task in 0 ..< taskCount { run(task, dot) }
        }
    }

    switch w.type {
    case .q8_0:
        let blocks = n / 32, xq = xq!
        dispatch { wr, t in RowKernels.dotQ8_0(blocks, wr, xq + t * xStride, path: path) }
    case .q4_0:
        let blocks = n / 32, xq = xq!
        dispatch { wr, t in RowKernels.dotQ4_0(blocks, wr, xq + t * xStride, path: path) }
    case .f32:
        dispatch { wr, t in RowKernels.dotF32(n, wr.assumingMemoryBound(to: Float.self), x + t * n) }
    default:
        // every other type through its table entry (one indirect call per row)
        let kernels = path == .best ? w.kernels : WeightKernels.lookup(w.type, path: path)!
        if format == .f32 {
            dispatch { wr, t in kernels.dot(wr, UnsafeRawPointer(x + t * n), n) }
        } else {
            let xq = xq!
            dispatch { wr, t in kernels.dot(wr, xq + t * xStride, n) }
        }
    }
}

/// One product of a batch that shares its input (`linear(_:input:tokens:scratch:pool:)`).
public struct LinearProduct {
    public let weight: WeightMatrix
    public let output: UnsafeMutablePointer<Float>
    public let bias: UnsafePointer<Float>?

    public init(_ weight: WeightMatrix, output: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>? = nil) {
        self.weight = weight
        self.output = output
        self.bias = bias
    }
}

/// The products of one input with several matrices of the same width (a layer's query, key and value projections;
/// its gate and up projections), each as `linear(_:input:...)` computes it. When every matrix is packed they run as
/// one job for the pool, its tasks spread over all their rows: one hand-out and one wait instead of one per matrix,
/// which at two threads made a small product (the key and value projections) stream at half speed. Otherwise, and
/// when `scratch` cannot hold every kind of activations they need at once, one after another.
public func linear(_ products: UnsafeBufferPointer<LinearProduct>, input x: UnsafePointer<Float>, tokens: Int,
                   scratch: UnsafeMutableRawBufferPointer, pool: ThreadPool?, path: KernelPath = .best) {
    #if arch(x86_64)
    if products.count > 1, path == .simd, let scratchBase = scratch.baseAddress {
        let ran = withUnsafeTemporaryAllocation(of: PackedWeights.Product.self, capacity: products.count) { packed -> Bool in
            var count = 0
            defer { packed.baseAddress!.deinitialize(count: count) }
            for p in products {  // packs the matrices on their first use
                guard p.weight.columns == products[0].weight.columns, let w = p.weight.packing?.weights(pool: pool) else { return false }
                (packed.baseAddress! + count).initialize(to: PackedWeights.Product(weights: w, output: p.output, bias: p.bias))
                count += 1
            }
            let profileStart = MatmulProfile.enabled && tokens == 1 ? MatmulProfile.now() : 0
            guard PackedWeights.multiply(UnsafeBufferPointer(packed), input: x, tokens: tokens, scratch: scratchBase,
                                         scratchBytes: scratch.count, pool: pool) else { return false }
            if profileStart != 0 { MatmulProfile.record(products.map(\.weight), since: profileStart) }
            return true
        }
        if ran { return }
    }
    #endif
    for p in products {
        linear(p.weight, input: x, tokens: tokens, output: p.output, bias: p.bias, scratch: scratch, pool: pool, path: path)
    }
}

/// A weight matrix's packed form, made by the first multiply that needs it and then shared by every copy of the
/// matrix and every context. Once made it is read with one atomic load (matrices are multiplied ~200 times per
/// token); the lock only orders concurrent first uses. If packing fails (no memory), the matrix keeps using its
/// original layout.
final class LazyPacking: @unchecked Sendable {
    private let source: TensorData
    private let rows: Int, columns: Int
    private let arena: PackingArena?
    private let packed = AtomicLazyReference<PackedWeights>()
    private let failed = Atomic<Bool>(false)
    private let lock = Mutex<Void>(())

    init(_ source: TensorData, rows: Int, columns: Int, arena: PackingArena?) {
        self.source = source
        self.arena = arena
        self.rows = rows
        self.columns = columns
    }

    /// Whether the matrix is packed and its original, mapped from the file, was returned to the kernel.
    var releasedSource: Bool { source.isFileMapped && packed.load() != nil }

    func weights(pool: ThreadPool?) -> PackedWeights? {
        if let w = packed.load() { return w }
        if failed.load(ordering: .acquiring) { return nil }
        return lock.withLock { _ -> PackedWeights? in
            if let w = packed.load() { return w }
            if failed.load(ordering: .acquiring) { return nil }
            let t = source
            guard let w = try? PackedWeights(type: t.type, rows: rows, columns: columns, data: t.data,
                                             rowBytes: t.type.byteCount(elements: columns)!, pool: pool,
                                             releasingSource: t.isFileMapped, arena: arena) else {
                failed.store(true, ordering: .releasing)
                return nil
            }
            if t.isFileMapped { releaseMappedPages(t.data, t.byteCount) }
            return packed.storeIfNil(w)
        }
    }
}
