import QwenFormats

/// A weight matrix of `rows` output features by `columns` input features, each row contiguous,
/// in any supported storage type (usually memory-mapped from the model file).
public struct WeightMatrix: @unchecked Sendable {
    public let type: TensorType
    public let rows: Int
    public let columns: Int
    public let data: UnsafeRawPointer
    public let rowBytes: Int

    /// Types the matrix-vector kernels can multiply.
    public static let supportedTypes: Set<TensorType> = [.f32, .f16, .bf16, .q8_0, .q4_0]

    public init(_ t: TensorData) throws {
        guard t.shape.count == 2 else { throw QwenError.format("'\(t.name)' should be a matrix, has shape \(t.shape)") }
        guard Self.supportedTypes.contains(t.type) else {
            throw QwenError.unsupported("'\(t.name)' has weight type \(t.type.name), which is not supported yet")
        }
        type = t.type
        rows = t.shape[0]
        columns = t.shape[1]
        data = t.data
        rowBytes = t.type.byteCount(elements: columns)!
    }

    @inline(__always) public func row(_ r: Int) -> UnsafeRawPointer { data + r * rowBytes }

    /// Whether activations are quantized to Q8_0 before the dot products.
    public var usesQ8Activations: Bool { type == .q8_0 || type == .q4_0 }

    /// Scratch bytes `linear` needs for `tokens` input rows.
    public func scratchBytes(tokens: Int) -> Int {
        usesQ8Activations ? tokens * (columns / 32) * 34 : 0
    }

    /// Copies row `r` as floats into `dst` (embedding lookup).
    public func dequantizeRow(_ r: Int, into dst: UnsafeMutablePointer<Float>) throws {
        try RowKernels.dequantizeRow(type, row(r), dst, columns)
    }
}

/// y[t][r] = Σ_k W[r][k] · x[t][k] (+ bias[r]) for `tokens` rows of x (stride `columns`) into y (stride `rows`).
/// Work is split over output rows across the pool; small products stay on the calling thread.
public func linear(_ w: WeightMatrix, input x: UnsafePointer<Float>, tokens: Int, output y: UnsafeMutablePointer<Float>,
                   bias: UnsafePointer<Float>? = nil, scratch: UnsafeMutableRawPointer?, pool: ThreadPool?,
                   path: KernelPath = .best) {
    let n = w.columns
    let rows = w.rows
    var xq: UnsafeRawPointer?
    if w.usesQ8Activations {
        let rowBytes = (n / 32) * 34
        guard let scratch else { preconditionFailure("linear: Q8 activations need scratch") }
        for t in 0 ..< tokens {
            RowKernels.quantizeQ8_0(x + t * n, scratch + t * rowBytes, n, path: path)
        }
        xq = UnsafeRawPointer(scratch)
    }
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
        let blocks = n / 32, stride = blocks * 34, xq = xq!
        dispatch { wr, t in RowKernels.dotQ8_0(blocks, wr, xq + t * stride, path: path) }
    case .q4_0:
        let blocks = n / 32, stride = blocks * 34, xq = xq!
        dispatch { wr, t in RowKernels.dotQ4_0(blocks, wr, xq + t * stride, path: path) }
    case .f16:
        dispatch { wr, t in RowKernels.dotF16(n, wr.assumingMemoryBound(to: UInt16.self), x + t * n, path: path) }
    case .bf16:
        dispatch { wr, t in RowKernels.dotBF16(n, wr.assumingMemoryBound(to: UInt16.self), x + t * n, path: path) }
    default:  // .f32 (WeightMatrix admits only supported types)
        dispatch { wr, t in RowKernels.dotF32(n, wr.assumingMemoryBound(to: Float.self), x + t * n) }
    }
}
