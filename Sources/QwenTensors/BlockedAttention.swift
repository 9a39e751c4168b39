import QwenFormats

extension Attention {
    /// Non-causal multi-head attention over spans, as `bidirectional` computes it (each span's queries see only its
    /// keys; rows in no span are left untouched), blocked for long spans (an audio encoder's 1500 positions, a ViT's
    /// thousands of patches): keys are transposed per head once, then 4 query rows at a time take their scores
    /// against 16 keys per step and their outputs from the values 32 dimensions at a time, with 8-lane FMAs.
    /// q is [rows][heads · headDim], k and v [rows][kvHeads · headDim], out [rows][heads · headDim].
    public static func bidirectionalBlocked(queries q: UnsafePointer<Float>, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>,
                                            rows: Int, heads: Int, kvHeads: Int, headDim d: Int, spans: [AttentionSpan],
                                            output out: UnsafeMutablePointer<Float>, pool: ThreadPool?) throws {
        guard rows > 0, !spans.isEmpty else { return }
        let group = heads / kvHeads, scale = 1 / Float(d).squareRoot()
        let qRow = heads * d, kvRow = kvHeads * d
        // keys transposed: [kv head][dim][row]
        let kt = try AlignedBuffer<Float>(count: kvHeads * d * rows, what: "transposed keys")
        let ktp = kt.pointer
        func transpose(_ g: Int, _: Int) {
            let dst = ktp + g * d * rows
            for r in 0 ..< rows {
                let src = k + r * kvRow + g * d
                for c in 0 ..< d { dst[c * rows + r] = src[c] }
            }
        }
        if let pool, kvHeads > 1 { pool.parallelFor(kvHeads, transpose) } else { for g in 0 ..< kvHeads { transpose(g, 0) } }

        let longest = spans.map(\.keys.count).max() ?? 0
        let stride = 4 * (longest + 16)
        let threads = pool?.threadCount ?? 1
        let scratch = try AlignedBuffer<Float>(count: threads * stride, what: "attention scores")
        let chunk = 32  // query rows per task
        var tasks: [(span: Int, head: Int, start: Int)] = []
        for (i, s) in spans.enumerated() where !s.keys.isEmpty {
            for h in 0 ..< heads {
                for start in Swift.stride(from: s.queries.lowerBound, to: s.queries.upperBound, by: chunk) { tasks.append((i, h, start)) }
            }
        }
        let sp = scratch.pointer
        func run(_ index: Int, _ worker: Int) {
            let task = tasks[index], span = spans[task.span], h = task.head, g = h / group
            let keys = span.keys, nk = keys.count, k0 = keys.lowerBound
            let scores = sp + worker * stride  // [4][nk + 16]
            let sRow = longest + 16
            let kth = UnsafePointer(ktp + g * d * rows)
            let end = min(task.start + chunk, span.queries.upperBound)
            var r0 = task.start
            while r0 < end {
                let m = min(4, end - r0)
                // scores[r][j] = q_r · k_j · scale
                let q0 = q + r0 * qRow + h * d
                let q1 = q + (r0 + min(1, m - 1)) * qRow + h * d
                let q2 = q + (r0 + min(2, m - 1)) * qRow + h * d
                let q3 = q + (r0 + min(3, m - 1)) * qRow + h * d
                var j = 0
                while j + 16 <= nk {
                    var a00 = SIMD8<Float>(), a01 = SIMD8<Float>(), a10 = SIMD8<Float>(), a11 = SIMD8<Float>()
                    var a20 = SIMD8<Float>(), a21 = SIMD8<Float>(), a30 = SIMD8<Float>(), a31 = SIMD8<Float>()
                    for c in 0 ..< d {
                        let base = UnsafeRawPointer(kth + c * rows + k0 + j)
                        let kv0 = base.loadUnaligned(as: SIMD8<Float>.self)
                        let kv1 = base.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
                        let b0 = SIMD8(repeating: q0[c]), b1 = SIMD8(repeating: q1[c])
                        let b2 = SIMD8(repeating: q2[c]), b3 = SIMD8(repeating: q3[c])
                        a00.addProduct(b0, kv0); a01.addProduct(b0, kv1)
                        a10.addProduct(b1, kv0); a11.addProduct(b1, kv1)
                        a20.addProduct(b2, kv0); a21.addProduct(b2, kv1)
                        a30.addProduct(b3, kv0); a31.addProduct(b3, kv1)
                    }
                    let s = UnsafeMutableRawPointer(scores + j)
                    s.storeBytes(of: a00 * scale, as: SIMD8<Float>.self); s.storeBytes(of: a01 * scale, toByteOffset: 32, as: SIMD8<Float>.self)
                    let s1 = s + sRow * 4, s2 = s + 2 * sRow * 4, s3 = s + 3 * sRow * 4
                    s1.storeBytes(of: a10 * scale, as: SIMD8<Float>.self); s1.storeBytes(of: a11 * scale, toByteOffset: 32, as: SIMD8<Float>.self)
                    s2.storeBytes(of: a20 * scale, as: SIMD8<Float>.self); s2.storeBytes(of: a21 * scale, toByteOffset: 32, as: SIMD8<Float>.self)
                    s3.storeBytes(of: a30 * scale, as: SIMD8<Float>.self); s3.storeBytes(of: a31 * scale, toByteOffset: 32, as: SIMD8<Float>.self)
                    j += 16
                }
                while j < nk {  // leftover keys
                    var a0: Float = 0, a1: Float = 0, a2: Float = 0, a3: Float = 0
                    let col = kth + k0 + j
                    for c in 0 ..< d {
                        let kc = col[c * rows]
                        a0 += q0[c] * kc; a1 += q1[c] * kc; a2 += q2[c] * kc; a3 += q3[c] * kc
                    }
                    scores[j] = a0 * scale; scores[sRow + j] = a1 * scale
                    scores[2 * sRow + j] = a2 * scale; scores[3 * sRow + j] = a3 * scale
                    j += 1
                }
                // softmax numerators and 1 / sums
                var inv = SIMD4<Float>()
                for r in 0 ..< m {
                    let s = scores + r * sRow
                    var top = -Float.infinity
                    for i in 0 ..< nk { top = max(top, s[i]) }
                    inv[r] = 1 / Ops.expShifted(s, nk, shift: top)
                }
                // out_r = Σ_j p_rj v_j, 32 dimensions at a time (8 at a time at the end, then single ones)
                let vBase = v + k0 * kvRow + g * d
                var c0 = 0
                while c0 + 32 <= d {
                    var acc = (SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(),
                               SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(),
                               SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(),
                               SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>())
                    for jj in 0 ..< nk {
                        let vr = UnsafeRawPointer(vBase + jj * kvRow + c0)
                        let v0 = vr.loadUnaligned(as: SIMD8<Float>.self)
                        let v1 = vr.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
                        let v2 = vr.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self)
                        let v3 = vr.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self)
                        let p0 = SIMD8(repeating: scores[jj]), p1 = SIMD8(repeating: scores[sRow + jj])
                        let p2 = SIMD8(repeating: scores[2 * sRow + jj]), p3 = SIMD8(repeating: scores[3 * sRow + jj])
                        acc.0.addProduct(p0, v0); acc.1.addProduct(p0, v1); acc.2.addProduct(p0, v2); acc.3.addProduct(p0, v3)
                        acc.4.addProduct(p1, v0); acc.5.addProduct(p1, v1); acc.6.addProduct(p1, v2); acc.7.addProduct(p1, v3)
                        acc.8.addProduct(p2, v0); acc.9.addProduct(p2, v1); acc.10.addProduct(p2, v2); acc.11.addProduct(p2, v3)
                        acc.12.addProduct(p3, v0); acc.13.addProduct(p3, v1); acc.14.addProduct(p3, v2); acc.15.addProduct(p3, v3)
                    }
                    let results = [(acc.0, acc.1, acc.2, acc.3), (acc.4, acc.5, acc.6, acc.7),
                                   (acc.8, acc.9, acc.10, acc.11), (acc.12, acc.13, acc.14, acc.15)]
                    for r in 0 ..< m {
                        let o = UnsafeMutableRawPointer(out + (r0 + r) * qRow + h * d + c0)
                        let w = inv[r], x = results[r]
                        o.storeBytes(of: x.0 * w, as: SIMD8<Float>.self)
                        o.storeBytes(of: x.1 * w, toByteOffset: 32, as: SIMD8<Float>.self)
                        o.storeBytes(of: x.2 * w, toByteOffset: 64, as: SIMD8<Float>.self)
                        o.storeBytes(of: x.3 * w, toByteOffset: 96, as: SIMD8<Float>.self)
                    }
                    c0 += 32
                }
                while c0 + 8 <= d {
                    var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
                    for jj in 0 ..< nk {
                        let v0 = UnsafeRawPointer(vBase + jj * kvRow + c0).loadUnaligned(as: SIMD8<Float>.self)
                        a0.addProduct(SIMD8(repeating: scores[jj]), v0)
                        a1.addProduct(SIMD8(repeating: scores[sRow + jj]), v0)
                        a2.addProduct(SIMD8(repeating: scores[2 * sRow + jj]), v0)
                        a3.addProduct(SIMD8(repeating: scores[3 * sRow + jj]), v0)
                    }
                    let results = [a0, a1, a2, a3]
                    for r in 0 ..< m {
                        UnsafeMutableRawPointer(out + (r0 + r) * qRow + h * d + c0).storeBytes(of: results[r] * inv[r], as: SIMD8<Float>.self)
                    }
                    c0 += 8
                }
                while c0 < d {
                    for r in 0 ..< m {
                        var a: Float = 0
                        for jj in 0 ..< nk { a += scores[r * sRow + jj] * vBase[jj * kvRow + c0] }
                        out[(r0 + r) * qRow + h * d + c0] = a * inv[r]
                    }
                    c0 += 1
                }
                r0 += 4
            }
        }
        if let pool, tasks.count > 1 {
            pool.parallelFor(tasks.count, run)
        } else {
            for i in 0 ..< tasks.count { run(i, 0) }
        }
    }
}
