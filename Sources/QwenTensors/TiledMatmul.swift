import CQwen
import QwenFormats

/// Prompt processing for Q8_0 and Q4_0 weights: every token row is quantized once into a "q8 row"
/// (int8 quants, f32 scales, per-block sums), then 4-row × 4-token tiles run over whole rows, using
/// AVX-512 VNNI when the CPU has it and AVX2 otherwise. Rows and tokens left over at the edges of a
/// task go through a scalar loop over the same prepared rows.
enum TiledMatmul {
    static let hasVNNI: Bool = cq_cpu_has_avx512vnni() != 0

    static func supports(_ w: WeightMatrix, tokens: Int, path: KernelPath) -> Bool {
        #if arch(x86_64)
        return path == .simd && tokens >= 4 && (w.type == .q8_0 || w.type == .q4_0)
        #else
        return false
        #endif
    }

    /// Scratch bytes for `tokens` prepared rows of `columns`.
    static func scratchBytes(columns: Int, tokens: Int) -> Int { tokens * (columns / 32) * 40 }

    #if arch(x86_64)
    static func run(_ w: WeightMatrix, input x: UnsafePointer<Float>, tokens: Int, output y: UnsafeMutablePointer<Float>,
                    bias: UnsafePointer<Float>?, scratch: UnsafeMutableRawPointer, pool: ThreadPool?) {
        let n = w.columns, rows = w.rows, nb = n / 32
        let rowStride = nb * 40
        let act = scratch.assumingMemoryBound(to: UInt8.self)
        for t in 0 ..< tokens { cq_prepare_q8row_avx2(x + t * n, act + t * rowStride, Int32(n)) }

        let threads = pool?.threadCount ?? 1
        let rowsPerTask = max(4, ((rows + threads * 4 - 1) / (threads * 4) + 3) / 4 * 4)
        let taskCount = (rows + rowsPerTask - 1) / rowsPerTask
        let base = w.data.assumingMemoryBound(to: UInt8.self)
        let ws = w.rowBytes
        let isQ8 = w.type == .q8_0
        let vnni = hasVNNI
        let fullTokens = tokens / 4 * 4

        func task(_ index: Int, _: Int) {
            let r0 = index * rowsPerTask, r1 = min(rows, r0 + rowsPerTask)
            let fullRows = r0 + (r1 - r0) / 4 * 4
            for t in stride(from: 0, to: fullTokens, by: 4) {
                let a = act + t * rowStride, out = y + t * rows
                for r in stride(from: r0, to: fullRows, by: 4) {
                    let wr = base + r * ws, o = out + r
                    switch (isQ8, vnni) {
                    case (true, true): cq_tile_q8_0_vnni(Int32(nb), wr, ws, a, rowStride, o, rows)
                    case (true, false): cq_tile_q8_0_avx2(Int32(nb), wr, ws, a, rowStride, o, rows)
                    case (false, true): cq_tile_q4_0_vnni(Int32(nb), wr, ws, a, rowStride, o, rows)
                    case (false, false): cq_tile_q4_0_avx2(Int32(nb), wr, ws, a, rowStride, o, rows)
                    }
                }
            }
            // edges: leftover rows for every token, leftover tokens for every row
            for t in 0 ..< tokens {
                let rowRange = t < fullTokens ? fullRows ..< r1 : r0 ..< r1
                for r in rowRange {
                    y[t * rows + r] = edgeDot(isQ8, base + r * ws, act + t * rowStride, nb)
                }
            }
            if let bias {
                for t in 0 ..< tokens {
                    for r in r0 ..< r1 { y[t * rows + r] += bias[r] }
                }
            }
        }

        if let pool, taskCount > 1 {
            pool.parallelFor(taskCount, task)
        } else {
            for i in 0 ..< taskCount { task(i, 0) }
        }
    }
    #endif

    /// One weight row (Q8_0 or Q4_0 blocks) times one prepared q8 row, portably.
    static func edgeDot(_ isQ8: Bool, _ w: UnsafePointer<UInt8>, _ row: UnsafePointer<UInt8>, _ nb: Int) -> Float {
        let xq = UnsafeRawPointer(row).assumingMemoryBound(to: Int8.self)
        let xd = UnsafeRawPointer(row + nb * 32).assumingMemoryBound(to: Float.self)
        var sum: Float = 0
        for b in 0 ..< nb {
            let blk = UnsafeRawPointer(w + b * (isQ8 ? 34 : 18))
            let dw = f16ToFloat(blk.loadUnaligned(as: UInt16.self))
            var isum: Int32 = 0
            if isQ8 {
                let q = (blk + 2).assumingMemoryBound(to: Int8.self)
                for j in 0 ..< 32 { isum &+= Int32(q[j]) &* Int32(xq[b * 32 + j]) }
            } else {
                let q = (blk + 2).assumingMemoryBound(to: UInt8.self)
                for j in 0 ..< 16 {
                    isum &+= (Int32(q[j] & 0x0F) - 8) &* Int32(xq[b * 32 + j])
                    isum &+= (Int32(q[j] >> 4) - 8) &* Int32(xq[b * 32 + j + 16])
                }
            }
            sum += Float(isum) * (dw * xd[b])
        }
        return sum
    }
}
