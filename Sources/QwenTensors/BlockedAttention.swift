import QwenFormats

extension Attention {
    /// Non-causal multi-head attention over spans, as `bidirectional` computes it (each span's queries see only its
    /// keys; rows in no span are left untouched), blocked for long spans (an audio encoder's 1500 positions, a ViT's
    /// thousands of patches). Each span's keys and values are first packed per head into contiguous memory (keys
    /// transposed in blocks of 16, values row by row), so the inner loops stream through L1 instead of striding by a
    /// whole row, which on 4 KiB-multiple rows maps every access to the same cache set. Then 6 query rows at a time
    /// take their scores against 16 keys per step and their outputs 16 dimensions per step (12 independent 8-lane
    /// FMA chains each). `roundToF16` rounds keys and values to F16 precision while packing, as llama.cpp's encoders
    /// keep them. q is [rows][heads · headDim] and k, v [rows][kvHeads · headDim] unless their layouts say otherwise (a
    /// fused projection's output read in place); out is [rows][heads · headDim].
    public static func bidirectionalBlocked(queries q: UnsafePointer<Float>, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>,
                                            rows: Int, heads: Int, kvHeads: Int, headDim d: Int, spans: [AttentionSpan],
                                            queryLayout: AttentionLayout? = nil, keyValueLayout: AttentionLayout? = nil,
                                            roundToF16: Bool = false, output out: UnsafeMutablePointer<Float>, pool: ThreadPool?) throws {
        let spans = spans.filter { !$0.keys.isEmpty && !$0.queries.isEmpty }
        guard rows > 0, !spans.isEmpty else { return }
        let group = heads / kvHeads, scale = 1 / Float(d).squareRoot()
        let qRow = heads * d
        let ql = queryLayout ?? AttentionLayout(rowStride: qRow, headStride: d)
        let kvl = keyValueLayout ?? AttentionLayout(rowStride: kvHeads * d, headStride: d)

        // packed[span][kv head]: keys as blocks of [d][16] (zero padded), then values as [key][d]
        var offsets: [Int] = [], total = 0
        for s in spans {
            offsets.append(total)
            total += kvHeads * (paddedKeys(s.keys.count) + s.keys.count) * d
        }
        let packed = try AlignedBuffer<Float>(count: total, what: "packed keys and values")
        let pp = packed.pointer
        func slot(_ span: Int, _ g: Int) -> (keys: UnsafeMutablePointer<Float>, values: UnsafeMutablePointer<Float>) {
            let nk = spans[span].keys.count, padded = paddedKeys(nk)
            let keys = pp + offsets[span] + g * (padded + nk) * d
            return (keys, keys + padded * d)
        }
        func pack(_ index: Int, _: Int) {
            let span = index / kvHeads, g = index % kvHeads, keyRange = spans[span].keys
            let (kb, vb) = slot(span, g)
            let nk = keyRange.count
            for j in 0 ..< nk {
                let at = (keyRange.lowerBound + j) * kvl.rowStride + g * kvl.headStride
                let srcK = k + at, srcV = v + at
                let blockK = kb + (j / 16) * 16 * d + j % 16, dstV = vb + j * d
                for c in 0 ..< d {
                    blockK[c * 16] = roundToF16 ? Float(Float16(srcK[c])) : srcK[c]
                    dstV[c] = roundToF16 ? Float(Float16(srcV[c])) : srcV[c]
                }
            }
            for j in nk ..< paddedKeys(nk) {
                let blockK = kb + (j / 16) * 16 * d + j % 16
                for c in 0 ..< d { blockK[c * 16] = 0 }
            }
        }
        if let pool, spans.count * kvHeads > 1 {
            pool.parallelFor(spans.count * kvHeads, pack)
        } else {
            for i in 0 ..< spans.count * kvHeads { pack(i, 0) }
        }

        let sRow = spans.map { paddedKeys($0.keys.count) }.max()! + 16  // +16: score rows not 4 KiB apart (cache-set aliasing)
        let threads = pool?.threadCount ?? 1
        let scratch = try AlignedBuffer<Float>(count: threads * rowBlock * sRow, what: "attention scores")
        let sp = scratch.pointer
        let chunk = 8 * rowBlock  // query rows per task
        var tasks: [(span: Int, head: Int, start: Int)] = []
        for (i, s) in spans.enumerated() {
            for h in 0 ..< heads {
                for start in stride(from: s.queries.lowerBound, to: s.queries.upperBound, by: chunk) { tasks.append((i, h, start)) }
            }
        }
        func run(_ index: Int, _ worker: Int) {
            let task = tasks[index], span = spans[task.span], h = task.head
            let nk = span.keys.count
            let (kb, vb) = slot(task.span, h / group)
            let scores = sp + worker * rowBlock * sRow
            let end = min(task.start + chunk, span.queries.upperBound)
            for r0 in stride(from: task.start, to: end, by: rowBlock) {
                let m = min(rowBlock, end - r0)
                // rows past the span's end repeat its last row; their results are not stored
                let qr = (0 ..< rowBlock).map { q + (r0 + min($0, m - 1)) * ql.rowStride + h * ql.headStride }
                let sr = (0 ..< rowBlock).map { scores + $0 * sRow }
                keyScores(qr[0], qr[1], qr[2], qr[3], qr[4], qr[5], keyBlocks: kb, keys: nk, headDim: d, scale: scale,
                          into: sr[0], sr[1], sr[2], sr[3], sr[4], sr[5])
                var inv = [Float](repeating: 0, count: rowBlock)
                for r in 0 ..< m { inv[r] = 1 / Ops.expShifted(sr[r], nk, shift: Ops.maximum(sr[r], nk)) }
                let or = (0 ..< rowBlock).map { r in r < m ? out + (r0 + r) * qRow + h * d : nil }
                weightedValues(sr[0], sr[1], sr[2], sr[3], sr[4], sr[5], values: vb, keys: nk, headDim: d, scales: inv, into: or)
            }
        }
        if let pool, tasks.count > 1 {
            pool.parallelFor(tasks.count, run)
        } else {
            for i in 0 ..< tasks.count { run(i, 0) }
        }
    }

    private static let rowBlock = 6

    private static func paddedKeys(_ n: Int) -> Int { (n + 15) / 16 * 16 }

    /// s_r[j] = q_r · k_j · scale for 6 query rows and every key (padding keys included), 16 keys per step.
    @inline(__always)
    private static func keyScores(_ q0: UnsafePointer<Float>, _ q1: UnsafePointer<Float>, _ q2: UnsafePointer<Float>,
                                  _ q3: UnsafePointer<Float>, _ q4: UnsafePointer<Float>, _ q5: UnsafePointer<Float>,
                                  keyBlocks kb: UnsafePointer<Float>, keys nk: Int, headDim d: Int, scale: Float,
                                  into s0: UnsafeMutablePointer<Float>, _ s1: UnsafeMutablePointer<Float>, _ s2: UnsafeMutablePointer<Float>,
                                  _ s3: UnsafeMutablePointer<Float>, _ s4: UnsafeMutablePointer<Float>, _ s5: UnsafeMutablePointer<Float>) {
        for j in stride(from: 0, to: nk, by: 16) {
            let block = UnsafeRawPointer(kb + j * d)
            var a00 = SIMD8<Float>(), a01 = SIMD8<Float>(), a10 = SIMD8<Float>(), a11 = SIMD8<Float>()
            var a20 = SIMD8<Float>(), a21 = SIMD8<Float>(), a30 = SIMD8<Float>(), a31 = SIMD8<Float>()
            var a40 = SIMD8<Float>(), a41 = SIMD8<Float>(), a50 = SIMD8<Float>(), a51 = SIMD8<Float>()
            for c in 0 ..< d {
                let k0 = block.loadUnaligned(fromByteOffset: c * 64, as: SIMD8<Float>.self)
                let k1 = block.loadUnaligned(fromByteOffset: c * 64 + 32, as: SIMD8<Float>.self)
                var b = SIMD8(repeating: q0[c]); a00.addProduct(b, k0); a01.addProduct(b, k1)
                b = SIMD8(repeating: q1[c]); a10.addProduct(b, k0); a11.addProduct(b, k1)
                b = SIMD8(repeating: q2[c]); a20.addProduct(b, k0); a21.addProduct(b, k1)
                b = SIMD8(repeating: q3[c]); a30.addProduct(b, k0); a31.addProduct(b, k1)
                b = SIMD8(repeating: q4[c]); a40.addProduct(b, k0); a41.addProduct(b, k1)
                b = SIMD8(repeating: q5[c]); a50.addProduct(b, k0); a51.addProduct(b, k1)
            }
            store(a00 * scale, a01 * scale, to: s0 + j); store(a10 * scale, a11 * scale, to: s1 + j)
            store(a20 * scale, a21 * scale, to: s2 + j); store(a30 * scale, a31 * scale, to: s3 + j)
            store(a40 * scale, a41 * scale, to: s4 + j); store(a50 * scale, a51 * scale, to: s5 + j)
        }
    }

    /// out_r = scales[r] · Σ_j p_r[j] v_j for 6 rows of softmax numerators, 16 dimensions per step (then 8, then
    /// single ones); rows whose output is nil are computed and dropped.
    @inline(__always)
    private static func weightedValues(_ p0: UnsafePointer<Float>, _ p1: UnsafePointer<Float>, _ p2: UnsafePointer<Float>,
                                       _ p3: UnsafePointer<Float>, _ p4: UnsafePointer<Float>, _ p5: UnsafePointer<Float>,
                                       values vb: UnsafePointer<Float>, keys nk: Int, headDim d: Int, scales: [Float],
                                       into outputs: [UnsafeMutablePointer<Float>?]) {
        let p = [p0, p1, p2, p3, p4, p5]
        var c0 = 0
        while c0 + 16 <= d {
            var a00 = SIMD8<Float>(), a01 = SIMD8<Float>(), a10 = SIMD8<Float>(), a11 = SIMD8<Float>()
            var a20 = SIMD8<Float>(), a21 = SIMD8<Float>(), a30 = SIMD8<Float>(), a31 = SIMD8<Float>()
            var a40 = SIMD8<Float>(), a41 = SIMD8<Float>(), a50 = SIMD8<Float>(), a51 = SIMD8<Float>()
            let column = UnsafeRawPointer(vb + c0)
            for j in 0 ..< nk {
                let v0 = column.loadUnaligned(fromByteOffset: j * d * 4, as: SIMD8<Float>.self)
                let v1 = column.loadUnaligned(fromByteOffset: j * d * 4 + 32, as: SIMD8<Float>.self)
                var b = SIMD8(repeating: p0[j]); a00.addProduct(b, v0); a01.addProduct(b, v1)
                b = SIMD8(repeating: p1[j]); a10.addProduct(b, v0); a11.addProduct(b, v1)
                b = SIMD8(repeating: p2[j]); a20.addProduct(b, v0); a21.addProduct(b, v1)
                b = SIMD8(repeating: p3[j]); a30.addProduct(b, v0); a31.addProduct(b, v1)
                b = SIMD8(repeating: p4[j]); a40.addProduct(b, v0); a41.addProduct(b, v1)
                b = SIMD8(repeating: p5[j]); a50.addProduct(b, v0); a51.addProduct(b, v1)
            }
            if let o = outputs[0] { store(a00 * scales[0], a01 * scales[0], to: o + c0) }
            if let o = outputs[1] { store(a10 * scales[1], a11 * scales[1], to: o + c0) }
            if let o = outputs[2] { store(a20 * scales[2], a21 * scales[2], to: o + c0) }
            if let o = outputs[3] { store(a30 * scales[3], a31 * scales[3], to: o + c0) }
            if let o = outputs[4] { store(a40 * scales[4], a41 * scales[4], to: o + c0) }
            if let o = outputs[5] { store(a50 * scales[5], a51 * scales[5], to: o + c0) }
            c0 += 16
        }
        for r in 0 ..< rowBlock {
            guard let o = outputs[r] else { continue }
            var c = c0
            while c + 8 <= d {
                var a = SIMD8<Float>()
                for j in 0 ..< nk { a.addProduct(SIMD8(repeating: p[r][j]), UnsafeRawPointer(vb + j * d + c).loadUnaligned(as: SIMD8<Float>.self)) }
                UnsafeMutableRawPointer(o + c).storeBytes(of: a * scales[r], as: SIMD8<Float>.self)
                c += 8
            }
            while c < d {
                var a: Float = 0
                for j in 0 ..< nk { a += p[r][j] * vb[j * d + c] }
                o[c] = a * scales[r]
                c += 1
            }
        }
    }

    @inline(__always)
    private static func store(_ a: SIMD8<Float>, _ b: SIMD8<Float>, to p: UnsafeMutablePointer<Float>) {
        let raw = UnsafeMutableRawPointer(p)
        raw.storeBytes(of: a, as: SIMD8<Float>.self)
        raw.storeBytes(of: b, toByteOffset: 32, as: SIMD8<Float>.self)
    }
}

/// Where heads and rows lie in a matrix of per-head vectors: row r's head h starts at r · rowStride + h · headStride.
public struct AttentionLayout: Sendable {
    public var rowStride: Int
    public var headStride: Int

    public init(rowStride: Int, headStride: Int) {
        self.rowStride = rowStride
        self.headStride = headStride
    }
}
