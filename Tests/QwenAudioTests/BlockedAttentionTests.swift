import QwenTensors
import Testing

/// `Attention.bidirectionalBlocked` (the audio encoder's attention) equals `Attention.bidirectional` (the simple
/// reference kernel) on random data: spans with partial key ranges, grouped heads, head sizes with leftovers.
@Suite struct BlockedAttentionTests {
    @Test(arguments: [(16, 4, 4, false), (64, 20, 20, false), (80, 4, 2, false), (13, 2, 1, false), (40, 3, 3, true), (80, 2, 1, true)])
    func blockedEqualsSimple(_ shape: (Int, Int, Int, Bool)) throws {
        let (d, heads, kvHeads, f16) = shape
        let rows = 105
        var rng = SystemRandomNumberGenerator()
        func random(_ n: Int) -> [Float] { (0 ..< n).map { _ in Float.random(in: -2 ... 2, using: &rng) } }
        let q = random(rows * heads * d), k = random(rows * kvHeads * d), v = random(rows * kvHeads * d)
        // with F16 rounding the blocked kernel must equal the simple one on keys and values rounded beforehand
        let roundedK = f16 ? k.map { Float(Float16($0)) } : k, roundedV = f16 ? v.map { Float(Float16($0)) } : v
        let spans = [AttentionSpan(0 ..< 57), AttentionSpan(queries: 57 ..< 100, keys: 57 ..< 85), AttentionSpan(100 ..< 105)]
        var a = [Float](repeating: 0, count: rows * heads * d), b = a
        let pool = ThreadPool(threads: 2)
        let per = Attention.bidirectionalScratchFloats(longestKeySpan: 57)
        var scratch = [Float](repeating: 0, count: 2 * per)
        scratch.withUnsafeMutableBufferPointer { s in
            a.withUnsafeMutableBufferPointer {
                Attention.bidirectional(queries: q, keys: roundedK, values: roundedV, heads: heads, kvHeads: kvHeads, headDim: d, spans: spans,
                                        output: $0.baseAddress!, scratch: s.baseAddress!, scratchPerWorker: per, pool: pool)
            }
        }
        try b.withUnsafeMutableBufferPointer {
            try Attention.bidirectionalBlocked(queries: q, keys: k, values: v, rows: rows, heads: heads, kvHeads: kvHeads, headDim: d,
                                               spans: spans, roundToF16: f16, output: $0.baseAddress!, pool: pool)
        }
        var worst: Float = 0
        for i in 0 ..< a.count { worst = max(worst, abs(a[i] - b[i])) }
        #expect(worst < 1e-5, "d \(d) heads \(heads)/\(kvHeads): \(worst)")
    }
}
