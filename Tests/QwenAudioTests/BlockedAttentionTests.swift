import QwenTensors
import Testing

/// `Attention.bidirectionalBlocked` (the audio encoder's attention) equals `Attention.bidirectional` (the simple
/// reference kernel) on random data: spans with partial key ranges, grouped heads, head sizes with leftovers.
@Suite struct BlockedAttentionTests {
    @Test(arguments: [(16, 4, 4), (64, 20, 20), (80, 4, 2), (13, 2, 1)])
    func blockedEqualsSimple(_ shape: (Int, Int, Int)) throws {
        let (d, heads, kvHeads) = shape
        let rows = 75
        var rng = SystemRandomNumberGenerator()
        func random(_ n: Int) -> [Float] { (0 ..< n).map { _ in Float.random(in: -2 ... 2, using: &rng) } }
        let q = random(rows * heads * d), k = random(rows * kvHeads * d), v = random(rows * kvHeads * d)
        let spans = [AttentionSpan(0 ..< 37), AttentionSpan(queries: 37 ..< 70, keys: 37 ..< 62), AttentionSpan(70 ..< 75)]
        var a = [Float](repeating: 0, count: rows * heads * d), b = a
        let pool = ThreadPool(threads: 2)
        let per = Attention.bidirectionalScratchFloats(longestKeySpan: 37)
        var scratch = [Float](repeating: 0, count: 2 * per)
        scratch.withUnsafeMutableBufferPointer { s in
            a.withUnsafeMutableBufferPointer {
                Attention.bidirectional(queries: q, keys: k, values: v, heads: heads, kvHeads: kvHeads, headDim: d, spans: spans,
                                        output: $0.baseAddress!, scratch: s.baseAddress!, scratchPerWorker: per, pool: pool)
            }
        }
        try b.withUnsafeMutableBufferPointer {
            try Attention.bidirectionalBlocked(queries: q, keys: k, values: v, rows: rows, heads: heads, kvHeads: kvHeads, headDim: d,
                                               spans: spans, output: $0.baseAddress!, pool: pool)
        }
        var worst: Float = 0
        for i in 0 ..< a.count { worst = max(worst, abs(a[i] - b[i])) }
        #expect(worst < 1e-5, "d \(d) heads \(heads)/\(kvHeads): \(worst)")
    }
}
