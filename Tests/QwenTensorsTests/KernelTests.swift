import CQwen
import QwenFormats
import QwenTensors
import Testing

/// Deterministic pseudo-random floats (xorshift), roughly N(0, 1)-ish.
struct TestRandom {
    var state: UInt64
    init(_ seed: UInt64) { state = seed | 1 }
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
    mutating func float() -> Float { Float(Double(next() >> 11) * 0x1p-53) * 2 - 1 }
    mutating func floats(_ n: Int, scale: Float = 1) -> [Float] { (0 ..< n).map { _ in float() * scale } }
}

func quantizeQ8(_ x: [Float], path: KernelPath) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: x.count / 32 * 34)
    x.withUnsafeBufferPointer { xb in out.withUnsafeMutableBytes { RowKernels.quantizeQ8_0(xb.baseAddress!, $0.baseAddress!, x.count, path: path) } }
    return out
}

/// Q4_0 as llama.cpp's reference quantizer makes it: d = max / -8 (signed max), q = clamp(x/d + 8.5).
func quantizeQ4(_ x: [Float]) -> [UInt8] {
    var out: [UInt8] = []
    for b in 0 ..< x.count / 32 {
        let blk = Array(x[b * 32 ..< b * 32 + 32])
        var amax: Float = 0, maxv: Float = 0
        for v in blk where abs(v) > amax { amax = abs(v); maxv = v }
        let d = maxv / -8, id: Float = d != 0 ? 1 / d : 0
        let dh = floatToF16(d)
        out += [UInt8(dh & 0xFF), UInt8(dh >> 8)]
        for j in 0 ..< 16 {
            let q0 = min(15, UInt8(max(0, blk[j] * id + 8.5)))
            let q1 = min(15, UInt8(max(0, blk[j + 16] * id + 8.5)))
            out.append(q0 | q1 << 4)
        }
    }
    return out
}

@Suite struct KernelTests {
    @Test(arguments: [32, 64, 896, 4864])
    func quantizeQ8SimdMatchesPortable(n: Int) {
        var rng = TestRandom(UInt64(n))
        var x = rng.floats(n, scale: 3)
        x[0] = 0; x[5] = 1e-30  // an all-small block stays finite
        for j in 32 ..< min(n, 64) { x[j] = 0 }  // an all-zero block
        #expect(quantizeQ8(x, path: .simd) == quantizeQ8(x, path: .portable))
    }

    @Test func quantizingNaNAndInfinityNeverTraps() {
        var x = [Float](repeating: 0.5, count: 96)
        x[3] = .nan; x[40] = .infinity; x[41] = -.infinity; x[70] = .greatestFiniteMagnitude
        let simd = quantizeQ8(x, path: .simd), portable = quantizeQ8(x, path: .portable)
        // the block holding NaN may differ in its scale bits; quants of the finite blocks must agree
        #expect(Array(simd[70 ..< 102]) == Array(portable[70 ..< 102]))
        var y = [UInt8](repeating: 0, count: 96 / 256 * 292 + 292)
        var xk = [Float](repeating: 1, count: 256)
        xk[7] = .nan
        xk.withUnsafeBufferPointer { xp in y.withUnsafeMutableBytes {
            RowKernels.quantizeQ8_K(xp.baseAddress!, $0.baseAddress!, 256, path: .portable)
            RowKernels.quantizeQ8_K(xp.baseAddress!, $0.baseAddress!, 256, path: .simd)
        } }
    }

    @Test func q8ReconstructionIsWithinHalfAStep() throws {
        var rng = TestRandom(7)
        let x = rng.floats(256)
        let q = quantizeQ8(x, path: .portable)
        var back = [Float](repeating: 0, count: 256)
        try q.withUnsafeBytes { src in try back.withUnsafeMutableBufferPointer { try RowKernels.dequantizeRow(.q8_0, src.baseAddress!, $0.baseAddress!, 256) } }
        for b in 0 ..< 8 {
            let amax = x[b * 32 ..< b * 32 + 32].map(abs).max()!
            for j in b * 32 ..< b * 32 + 32 { #expect(abs(back[j] - x[j]) <= amax / 127 * 0.51 + 1e-6) }
        }
    }

    @Test(arguments: [32, 96, 896, 4864])
    func quantizedDotsSimdMatchPortable(n: Int) {
        var rng = TestRandom(UInt64(n) &* 31)
        let w = rng.floats(n), x = rng.floats(n, scale: 2)
        let wq8 = quantizeQ8(w, path: .portable), wq4 = quantizeQ4(w), xq = quantizeQ8(x, path: .portable)
        let blocks = n / 32
        wq8.withUnsafeBytes { wp in xq.withUnsafeBytes { xp in
            let s = RowKernels.dotQ8_0(blocks, wp.baseAddress!, xp.baseAddress!, path: .simd)
            let p = RowKernels.dotQ8_0(blocks, wp.baseAddress!, xp.baseAddress!, path: .portable)
            #expect(abs(s - p) <= 1e-4 * max(1, abs(p)))
        } }
        wq4.withUnsafeBytes { wp in xq.withUnsafeBytes { xp in
            let s = RowKernels.dotQ4_0(blocks, wp.baseAddress!, xp.baseAddress!, path: .simd)
            let p = RowKernels.dotQ4_0(blocks, wp.baseAddress!, xp.baseAddress!, path: .portable)
            #expect(abs(s - p) <= 1e-4 * max(1, abs(p)))
        } }
    }

    @Test func quantizedDotsApproximateTheFloatDot() {
        var rng = TestRandom(99)
        let n = 1024
        let w = rng.floats(n), x = rng.floats(n)
        let exact = zip(w, x).map { Double($0) * Double($1) }.reduce(0, +)
        let wq8 = quantizeQ8(w, path: .portable), xq = quantizeQ8(x, path: .portable), wq4 = quantizeQ4(w)
        let d8 = wq8.withUnsafeBytes { wp in xq.withUnsafeBytes { RowKernels.dotQ8_0(n / 32, wp.baseAddress!, $0.baseAddress!, path: .best) } }
        let d4 = wq4.withUnsafeBytes { wp in xq.withUnsafeBytes { RowKernels.dotQ4_0(n / 32, wp.baseAddress!, $0.baseAddress!, path: .best) } }
        #expect(abs(Double(d8) - exact) < 0.1)
        #expect(abs(Double(d4) - exact) < 1.0)
    }

    @Test(arguments: [1, 7, 16, 33, 896])
    func halfDotsSimdMatchPortable(n: Int) {
        var rng = TestRandom(UInt64(n) + 5)
        let w = rng.floats(n), x = rng.floats(n)
        let h = w.map(floatToF16), b = w.map(floatToBF16)
        h.withUnsafeBufferPointer { hp in x.withUnsafeBufferPointer { xp in
            let s = RowKernels.dotF16(n, hp.baseAddress!, xp.baseAddress!, path: .simd)
            let p = RowKernels.dotF16(n, hp.baseAddress!, xp.baseAddress!, path: .portable)
            #expect(abs(s - p) <= 1e-5 * Float(n))
        } }
        b.withUnsafeBufferPointer { bp in x.withUnsafeBufferPointer { xp in
            let s = RowKernels.dotBF16(n, bp.baseAddress!, xp.baseAddress!, path: .simd)
            let p = RowKernels.dotBF16(n, bp.baseAddress!, xp.baseAddress!, path: .portable)
            #expect(abs(s - p) <= 1e-5 * Float(n))
        } }
        let f = x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { RowKernels.dotF32(n, $0.baseAddress!, xp.baseAddress!) } }
        let exact = zip(w, x).map { Double($0) * Double($1) }.reduce(0, +)
        #expect(abs(Double(f) - exact) < 1e-4 * Double(n))
    }

    @Test func halfConversionsRoundLikeTheReference() {
        #expect(floatToBF16(1.0) == 0x3F80)
        #expect(floatToBF16(Float(bitPattern: 0x3F80_8000)) == 0x3F80)  // tie to even
        #expect(floatToBF16(Float(bitPattern: 0x3F81_8000)) == 0x3F82)
        #expect(bf16ToFloat(0xC000) == -2)
        #expect(floatToF16(65504) == 0x7BFF)
        #expect(f16ToFloat(0x3C00) == 1)
    }

    /// Every path (portable, SIMD, tiled, packed) against a double-precision reference, with row counts
    /// that leave partial 4-row tiles and 16-row groups, token counts that leave partial tiles, 1 and 3 threads, and
    /// rows wide enough (4192) to be packed in column panels, the last one partial.
    @Test(arguments: [TensorType.f32, .f16, .bf16, .q8_0, .q4_0], [(70, 1, 96), (70, 5, 96), (45, 11, 96), (16, 8, 96), (70, 1, 4192), (45, 11, 4192)])
    func linearMatchesReferenceOnEveryPathAndThreadCount(type: TensorType, shape: (rows: Int, tokens: Int, cols: Int)) throws {
        let rows = shape.rows, cols = shape.cols, tokens = shape.tokens
        var rng = TestRandom(1234)
        let w = rng.floats(rows * cols), x = rng.floats(tokens * cols), bias = rng.floats(rows)
        var stored: [UInt8] = []
        for r in 0 ..< rows {
            let row = Array(w[r * cols ..< (r + 1) * cols])
            switch type {
            case .f32: stored += row.withUnsafeBytes { Array($0) }
            case .f16: stored += row.map(floatToF16).withUnsafeBytes { Array($0) }
            case .bf16: stored += row.map(floatToBF16).withUnsafeBytes { Array($0) }
            case .q8_0: stored += quantizeQ8(row, path: .portable)
            default: stored += quantizeQ4(row)
            }
        }
        // reference: dequantized weights times (for Q types, Q8-rounded) activations
        var wDeq = [Float](repeating: 0, count: rows * cols)
        try stored.withUnsafeBytes { s in
            let rb = type.byteCount(elements: cols)!
            for r in 0 ..< rows { try wDeq.withUnsafeMutableBufferPointer { try RowKernels.dequantizeRow(type, s.baseAddress! + r * rb, $0.baseAddress! + r * cols, cols) } }
        }
        var xRef = x
        if type == .q8_0 || type == .q4_0 {
            for t in 0 ..< tokens {
                let q = quantizeQ8(Array(x[t * cols ..< (t + 1) * cols]), path: .portable)
                try q.withUnsafeBytes { s in try xRef.withUnsafeMutableBufferPointer { try RowKernels.dequantizeRow(.q8_0, s.baseAddress!, $0.baseAddress! + t * cols, cols) } }
            }
        }
        var scratch: AlignedBuffer<UInt8>!
        for (path, pack) in [(KernelPath.portable, false), (.simd, false), (.simd, true)] {
            for threads in [1, 3] {
                let pool = threads > 1 ? ThreadPool(threads: threads) : nil
                var y = [Float](repeating: .nan, count: tokens * rows)
                try stored.withUnsafeBytes { s in
                    let m = try WeightMatrix(TensorData(name: "w", type: type, shape: [rows, cols], data: s.baseAddress!, byteCount: s.count), pack: pack)
                    scratch = try AlignedBuffer<UInt8>(count: m.scratchBytes(tokens: tokens))
                    x.withUnsafeBufferPointer { xp in bias.withUnsafeBufferPointer { bp in y.withUnsafeMutableBufferPointer { yp in
                        linear(m, input: xp.baseAddress!, tokens: tokens, output: yp.baseAddress!, bias: bp.baseAddress!,
                               scratch: scratch.rawBuffer, pool: pool, path: path)
                    } } }
                }
                for t in 0 ..< tokens {
                    for r in 0 ..< rows {
                        var ref = Double(bias[r])
                        for k in 0 ..< cols { ref += Double(wDeq[r * cols + k]) * Double(xRef[t * cols + k]) }
                        #expect(abs(Double(y[t * rows + r]) - ref) < 2e-4 * Double(cols) / 96, "type \(type.name) path \(path) pack \(pack) threads \(threads) t \(t) r \(r)")
                    }
                }
            }
        }
    }
}

extension KernelTests {
    /// Random K-quant blocks with sane F16 super-block scales: the packed VNNI kernels against the portable dots, on
    /// rows of one column panel (512) and of several, the last one partial (4864).
    @Test(arguments: [TensorType.q4_K, .q6_K, .q5_0], [(1, 512), (5, 512), (11, 512), (1, 4864), (11, 4864)])
    func packedKQuantsMatchPortable(type: TensorType, shape: (tokens: Int, cols: Int)) throws {
        let rows = 45, cols = shape.cols, tokens = shape.tokens
        var rng = TestRandom(UInt64(tokens) &* 77 &+ UInt64(type.rawValue))
        let rowBytes = type.byteCount(elements: cols)!
        var stored = (0 ..< rows * rowBytes).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        for r in 0 ..< rows {
            for b in 0 ..< cols / type.blockSize {
                let o = r * rowBytes + b * type.blockBytes
                let d = floatToF16(0.001 + abs(rng.float()) * 0.01), m = floatToF16(abs(rng.float()) * 0.01)
                if type == .q5_0 {
                    stored[o] = UInt8(d & 0xFF); stored[o + 1] = UInt8(d >> 8)
                } else if type == .q4_K {
                    stored[o] = UInt8(d & 0xFF); stored[o + 1] = UInt8(d >> 8)
                    stored[o + 2] = UInt8(m & 0xFF); stored[o + 3] = UInt8(m >> 8)
                } else {
                    stored[o + 208] = UInt8(d & 0xFF); stored[o + 209] = UInt8(d >> 8)
                }
            }
        }
        let x = rng.floats(tokens * cols, scale: 2)
        var outputs: [[Float]] = []
        for pack in [false, true] {
            let pool = ThreadPool(threads: 2)
            var y = [Float](repeating: .nan, count: tokens * rows)
            try stored.withUnsafeBytes { s in
                let m = try WeightMatrix(TensorData(name: "w", type: type, shape: [rows, cols], data: s.baseAddress!, byteCount: s.count), pack: pack)
                #expect((m.packed != nil) == (pack && PackedWeights.isAvailable))
                let scratch = try AlignedBuffer<UInt8>(count: m.scratchBytes(tokens: tokens))
                x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
                    linear(m, input: xp.baseAddress!, tokens: tokens, output: yp.baseAddress!, scratch: scratch.rawBuffer,
                           pool: pool, path: pack ? .simd : .portable)
                } }
            }
            outputs.append(y)
        }
        for i in 0 ..< tokens * rows {
            let a = outputs[0][i], b = outputs[1][i]
            #expect(abs(a - b) <= 1e-4 * max(1, abs(a)), "\(type.name) tokens \(tokens) [\(i)]: portable \(a) packed \(b)")
        }
    }
}

@Suite struct ThreadPoolTests {
    @Test(arguments: [2, 3, 5])
    func runsEveryTaskExactlyOnce(threads: Int) {
        // many short jobs back to back, tasks of uneven length, short spins so workers also sleep:
        // a late worker must never run a task of the next job or run one twice
        let pool = ThreadPool(threads: threads, spinIterations: 50)
        var badWorker = false
        for round in 0 ..< 3000 {
            let n = 1 + round % 37
            let hits = UnsafeMutablePointer<Int>.allocate(capacity: n)
            hits.initialize(repeating: 0, count: n)
            pool.parallelFor(n) { task, worker in
                if worker < 0 || worker >= threads { badWorker = true }
                if (task + round) % 7 == 0 { for _ in 0 ..< (round % 5) * 200 { cq_pause() } }
                hits[task] += 1
            }
            let ok = (0 ..< n).allSatisfy { hits[$0] == 1 }
            hits.deallocate()
            #expect(ok, "round \(round)")
            if !ok { break }
        }
        #expect(!badWorker)
    }

    @Test func poolsComeAndGo() {
        for _ in 0 ..< 20 {
            let pool = ThreadPool(threads: 3, spinIterations: 10)
            var sum = 0
            let s = UnsafeMutablePointer<Int>.allocate(capacity: 100)
            pool.parallelFor(100) { t, _ in s[t] = t }
            for i in 0 ..< 100 { sum += s[i] }
            s.deallocate()
            #expect(sum == 4950)
        }
    }
}

@Suite struct OpsTests {
    @Test func rmsNormAndSoftmax() {
        let x: [Float] = [1, -2, 3, -4], w: [Float] = [1, 0.5, 2, 1]
        var y = [Float](repeating: 0, count: 4)
        Ops.rmsNorm(x, w, &y, n: 4, eps: 1e-6)
        let rms = (30.0 / 4 + 1e-6).squareRoot()
        for i in 0 ..< 4 { #expect(abs(Double(y[i]) - Double(x[i] * w[i]) / rms) < 1e-6) }
        var s: [Float] = [1, 2, 3, -1e30]
        Ops.softmax(&s, 4)
        #expect(abs(s.reduce(0, +) - 1) < 1e-6)
        #expect(s[3] == 0)
    }

    @Test func vectorExpIsWithinAFewUlps() {
        var worst: Float = 0
        var x: Float = -87
        while x < 88 {
            let v = Ops.exp8(SIMD8(repeating: x))[0], ref = Float(Glibc.exp(Double(x)))
            worst = max(worst, abs(v - ref) / ref)
            x += 0.0137
        }
        #expect(worst < 3e-7, "worst relative error \(worst)")
        let edges = Ops.exp8(SIMD8(-1000, -88, 0, 1e-30, 89, 1000, .infinity, -.infinity))
        #expect(edges[2] == 1 && edges[0] >= 0 && edges[4].isFinite && edges[5].isFinite && edges[7] >= 0)
        var g: [Float] = (0 ..< 37).map { Float($0) - 18 }, u = [Float](repeating: 2, count: 37)
        Ops.siluMul(&g, u, count: 37)
        for i in 0 ..< 37 {
            let v = Float(i) - 18
            #expect(abs(g[i] - 2 * v / (1 + expf(-v))) <= 1e-5 * max(1, abs(g[i])))
        }
    }

    @Test func ropeRotatesPairsHalfApart() {
        let rope = RotaryEmbedding(dimension: 4, theta: 10_000)
        var c = [Float](repeating: 0, count: 2), s = [Float](repeating: 0, count: 2)
        rope.angles(position: 3, cos: &c, sin: &s)
        var v: [Float] = [1, 2, 3, 4]
        rope.apply(&v, heads: 1, cos: c, sin: s)
        // pair (0, 2) at frequency 1, pair (1, 3) at frequency 1/100
        #expect(abs(v[0] - (1 * Float(cos(3.0)) - 3 * Float(sin(3.0)))) < 1e-6)
        #expect(abs(v[2] - (3 * Float(cos(3.0)) + 1 * Float(sin(3.0)))) < 1e-6)
        #expect(abs(v[1] - (2 * Float(cos(0.03)) - 4 * Float(sin(0.03)))) < 1e-6)
    }
}

#if canImport(Glibc)
import Glibc
#endif

@Suite struct BidirectionalAttentionTests {
    @Test func matchesAReferenceWithSpansAndGroupedHeads() {
        let rows = 11, heads = 4, kvHeads = 2, d = 8
        var rng = TestRandom(5)
        let q = rng.floats(rows * heads * d), k = rng.floats(rows * kvHeads * d), v = rng.floats(rows * kvHeads * d)
        let spans = [AttentionSpan(0 ..< 4), AttentionSpan(queries: 4 ..< 11, keys: 4 ..< 9)]  // second: last 2 keys masked
        var out = [Float](repeating: .nan, count: rows * heads * d)
        var scratch = [Float](repeating: 0, count: 3 * Attention.bidirectionalScratchFloats(longestKeySpan: 5))
        let pool = ThreadPool(threads: 3)
        q.withUnsafeBufferPointer { qp in k.withUnsafeBufferPointer { kp in v.withUnsafeBufferPointer { vp in
            out.withUnsafeMutableBufferPointer { op in scratch.withUnsafeMutableBufferPointer { sp in
                Attention.bidirectional(queries: qp.baseAddress!, keys: kp.baseAddress!, values: vp.baseAddress!, heads: heads,
                                        kvHeads: kvHeads, headDim: d, spans: spans, output: op.baseAddress!, scratch: sp.baseAddress!,
                                        scratchPerWorker: Attention.bidirectionalScratchFloats(longestKeySpan: 5), pool: pool)
            } }
        } } }
        for span in spans {
            for r in span.queries {
                for h in 0 ..< heads {
                    let g = h / (heads / kvHeads)
                    var s = span.keys.map { j -> Double in
                        (0 ..< d).map { Double(q[r * heads * d + h * d + $0]) * Double(k[j * kvHeads * d + g * d + $0]) }.reduce(0, +) / Double(d).squareRoot()
                    }
                    let m = s.max()!
                    s = s.map { referenceExp($0 - m) }
                    let total = s.reduce(0, +)
                    for i in 0 ..< d {
                        var ref = 0.0
                        for (n, j) in span.keys.enumerated() { ref += s[n] / total * Double(v[j * kvHeads * d + g * d + i]) }
                        #expect(abs(Double(out[r * heads * d + h * d + i]) - ref) < 1e-5)
                    }
                }
            }
        }
    }
}

private func referenceExp(_ x: Double) -> Double { Glibc.exp(x) }

@Suite struct CausalAttentionTests {
    /// The F16 cache's whole-row kernels against the F32 cache's per-row path on the same (F16-rounded) keys and values.
    /// With threads, one query token: the heads are spread over the pool's workers.
    @Test(arguments: [(64, 1, 1, 1), (64, 130, 7, 1), (128, 19, 2, 1), (40, 8, 1, 1), (72, 33, 3, 1), (20, 9, 2, 1),
                      (64, 300, 7, 3), (128, 45, 12, 5)])
    func f16CacheMatchesF32Cache(d: Int, positions: Int, group: Int, threads: Int) throws {
        let kvHeads = 2, heads = kvHeads * group, tokens = threads > 1 ? 1 : min(2, positions), start = positions - tokens
        var rng = TestRandom(UInt64(d * 1000 + positions))
        let rounded = { (x: [Float]) in x.map { f16ToFloat(floatToF16($0)) } }
        let k = rounded(rng.floats(positions * kvHeads * d, scale: 2)), v = rounded(rng.floats(positions * kvHeads * d))
        let q = rng.floats(tokens * heads * d, scale: 2)
        var outputs: [[Float]] = []
        for type in [KVType.f32, .f16] {
            let cache = try KVCache(layers: 1, kvHeads: kvHeads, headDim: d, capacity: positions + 3, type: type)
            k.withUnsafeBufferPointer { kp in v.withUnsafeBufferPointer { vp in
                cache.store(layer: 0, start: 0, count: positions, keys: kp.baseAddress!, values: vp.baseAddress!)
            } }
            var out = [Float](repeating: .nan, count: tokens * heads * d)
            let pool = threads > 1 ? ThreadPool(threads: threads) : nil
            var scratch = [Float](repeating: 0, count: threads * Attention.scratchFloats(capacity: cache.capacity, headDim: d))
            q.withUnsafeBufferPointer { qp in out.withUnsafeMutableBufferPointer { op in scratch.withUnsafeMutableBufferPointer { sp in
                Attention.causal(cache: cache, layer: 0, queries: qp.baseAddress!, heads: heads, start: start, tokens: tokens,
                                 output: op.baseAddress!, scratch: sp.baseAddress!, pool: pool)
            } } }
            outputs.append(out)
        }
        for i in outputs[0].indices { #expect(abs(outputs[0][i] - outputs[1][i]) < 1e-5) }
    }
}

extension KernelTests {
    /// A batch of products of one input (a layer's q, k and v; gate and up) against each product alone: the same
    /// numbers, with matrices whose rows end in partial 16-row groups (the batch's tasks cross matrix boundaries
    /// there), with biases or not, mixed activation kinds (Q4_0 and Q8_0 share prepared rows, Q4_K needs Q8_K ones),
    /// 1 and 3 threads, and a scratch that holds only one kind, so the batch runs the products one after another.
    @Test(arguments: [1, 7])
    func batchOfProductsMatchesEachProductAlone(tokens: Int) throws {
        let cols = 512
        let specs: [(type: TensorType, rows: Int, bias: Bool)] = [(.q4_0, 70, true), (.q8_0, 16, false), (.q4_K, 45, true), (.q4_0, 33, false)]
        var rng = TestRandom(99)
        let x = try AlignedBuffer<Float>(count: tokens * cols)
        for i in 0 ..< x.count { x.pointer[i] = rng.float() }
        var matrices: [WeightMatrix] = [], stored: [AlignedBuffer<UInt8>] = [], biases: [AlignedBuffer<Float>?] = []
        for (i, spec) in specs.enumerated() {
            let w = rng.floats(spec.rows * cols), rowBytes = spec.type.byteCount(elements: cols)!
            let bytes = try AlignedBuffer<UInt8>(count: spec.rows * rowBytes)
            w.withUnsafeBufferPointer { for r in 0 ..< spec.rows { WeightQuantizer.quantize(spec.type, $0.baseAddress! + r * cols, bytes.raw + r * rowBytes, cols) } }
            stored.append(bytes)
            matrices.append(try WeightMatrix(TensorData(name: "w\(i)", type: spec.type, shape: [spec.rows, cols], data: bytes.raw, byteCount: bytes.count),
                                             pack: true))
            let bias = spec.bias ? try AlignedBuffer<Float>(count: spec.rows) : nil
            if let bias { for r in 0 ..< spec.rows { bias.pointer[r] = rng.float() } }
            biases.append(bias)
        }
        let singleScratch = matrices.map { $0.scratchBytes(tokens: tokens) }.max()!
        for threads in [1, 3] {
            let pool = threads > 1 ? ThreadPool(threads: threads) : nil
            for scratchBytes in [4 * singleScratch, singleScratch] {
                let scratch = try AlignedBuffer<UInt8>(count: scratchBytes)
                let alone = try specs.map { try AlignedBuffer<Float>(count: tokens * $0.rows) }
                let batched = try specs.map { try AlignedBuffer<Float>(count: tokens * $0.rows) }
                for i in specs.indices {
                    linear(matrices[i], input: x.pointer, tokens: tokens, output: alone[i].pointer, bias: biases[i].map { UnsafePointer($0.pointer) },
                           scratch: scratch.rawBuffer, pool: pool)
                }
                let products = specs.indices.map { LinearProduct(matrices[$0], output: batched[$0].pointer, bias: biases[$0].map { UnsafePointer($0.pointer) }) }
                products.withUnsafeBufferPointer { linear($0, input: x.pointer, tokens: tokens, scratch: scratch.rawBuffer, pool: pool) }
                for i in specs.indices {
                    let a = Array(UnsafeBufferPointer(start: alone[i].pointer, count: alone[i].count))
                    let b = Array(UnsafeBufferPointer(start: batched[i].pointer, count: batched[i].count))
                    #expect(a == b && !a.contains { $0.isNaN }, "\(specs[i].type.name) \(specs[i].rows) rows, tokens \(tokens), threads \(threads), scratch \(scratchBytes)")
                }
            }
        }
        withExtendedLifetime(stored) {}
    }
}
