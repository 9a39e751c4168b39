import CQwen
import QwenFormats

/// Which implementation of the row kernels to run. `.simd` is the fastest one compiled for this CPU
/// (AVX2 intrinsics on x86-64, NEON on ARM64: cqwen_neon.h); `.portable` is plain Swift, the reference the SIMD
/// paths are tested against.
public enum KernelPath: Sendable {
    case portable
    case simd

    /// The path used when none is given.
    public static var best: KernelPath {
        #if arch(x86_64) || arch(arm64)
        return .simd
        #else
        return .portable
        #endif
    }
}

/// Row-level kernels: dot products of one weight row with one prepared activation row, activation
/// quantization, and conversions. Each has a portable Swift version and, where it pays, a SIMD one.
public enum RowKernels {
    // MARK: Activation quantization (Q8_0: f16 scale + 32 x int8 per block)

    /// Quantizes `n` floats (a multiple of 32) to Q8_0 the way llama.cpp's x86 path does:
    /// d = max|x| / 127 stored as F16, q = round-half-even(x · 127 / max|x|).
    @inline(__always)
    public static func quantizeQ8_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ n: Int, path: KernelPath) {
        #if arch(x86_64)
        if path == .simd {
            cq_quantize_row_q8_0_avx2(x, y.assumingMemoryBound(to: UInt8.self), Int32(n))
            return
        }
        #elseif arch(arm64)
        if path == .simd {
            cq_quantize_row_q8_0_neon(x, y.assumingMemoryBound(to: UInt8.self), Int32(n))
            return
        }
        #endif
        quantizeQ8_0Portable(x, y, n)
    }

    public static func quantizeQ8_0Portable(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ n: Int) {
        for b in 0 ..< n / 32 {
            let xb = x + b * 32
            let yb = y + b * 34
            var amax: Float = 0
            for j in 0 ..< 32 { amax = max(amax, abs(xb[j])) }
            let d = amax / 127
            yb.storeBytes(of: floatToF16(d), as: UInt16.self)
            let id: Float = amax != 0 ? 127 / amax : 0
            let q = (yb + 2).assumingMemoryBound(to: Int8.self)
            // NaN (from NaN or infinite input) becomes -128, as the AVX2 conversion makes it; never a trap
            for j in 0 ..< 32 {
                let v = (xb[j] * id).rounded(.toNearestOrEven)
                q[j] = v.isNaN ? -128 : Int8(max(-128, min(127, v)))
            }
        }
    }

    /// Quantizes `n` floats (a multiple of 256) to Q8_K blocks exactly as llama.cpp's `quantize_row_q8_K_ref`:
    /// the scale comes from the signed element of largest magnitude (the first one on ties), iscale = -127 / max,
    /// q = min(127, round-half-even(iscale · x)), d = 1 / iscale, plus the sum of every 16 quants. Both paths give
    /// the same bytes; NaN/Inf inputs give garbage quants (a NaN or out-of-range product becomes -128), never a trap.
    public static func quantizeQ8_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ n: Int, path: KernelPath) {
        #if arch(x86_64)
        if path == .simd {
            cq_quantize_row_q8_K_avx2(x, y.assumingMemoryBound(to: UInt8.self), Int32(n))
            return
        }
        #elseif arch(arm64)
        if path == .simd {
            cq_quantize_row_q8_K_neon(x, y.assumingMemoryBound(to: UInt8.self), Int32(n))
            return
        }
        #endif
        quantizeQ8_KPortable(x, y, n)
    }

    public static func quantizeQ8_KPortable(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ n: Int) {
        for b in 0 ..< n / 256 {
            let xb = x + b * 256
            let yb = y + b * 292
            var amax: Float = 0, signedMax: Float = 0
            for j in 0 ..< 256 where abs(xb[j]) > amax {
                amax = abs(xb[j])
                signedMax = xb[j]
            }
            if amax == 0 {
                yb.initializeMemory(as: UInt8.self, repeating: 0, count: 292)
                continue
            }
            let iscale = -127 / signedMax
            var sum: Int32 = 0
            for j in 0 ..< 256 {
                let r = (iscale * xb[j]).rounded(.toNearestOrEven)
                // what cvtps2dq does: NaN and out-of-range values become Int32.min
                let v: Int32 = r >= -2147483648 && r < 2147483648 ? Int32(r) : .min
                let q = Int8(clamping: min(127, v))
                yb.storeBytes(of: q, toByteOffset: 4 + j, as: Int8.self)
                sum &+= Int32(q)
                if j % 16 == 15 {
                    yb.storeBytes(of: Int16(truncatingIfNeeded: sum), toByteOffset: 260 + 2 * (j / 16), as: Int16.self)
                    sum = 0
                }
            }
            yb.storeBytes(of: 1 / iscale, as: Float.self)
        }
    }

    // MARK: Dot products with a Q8_0 activation row

    @inline(__always)
    public static func dotQ8_0(_ blocks: Int, _ w: UnsafeRawPointer, _ x: UnsafeRawPointer, path: KernelPath) -> Float {
        #if arch(x86_64)
        if path == .simd {
            return cq_dot_q8_0_q8_0_avx2(Int32(blocks), w.assumingMemoryBound(to: UInt8.self), x.assumingMemoryBound(to: UInt8.self))
        }
        #elseif arch(arm64)
        if path == .simd {
            return cq_dot_q8_0_q8_0_neon(Int32(blocks), w.assumingMemoryBound(to: UInt8.self), x.assumingMemoryBound(to: UInt8.self))
        }
        #endif
        return dotQ8_0Portable(blocks, w, x)
    }

    public static func dotQ8_0Portable(_ blocks: Int, _ w: UnsafeRawPointer, _ x: UnsafeRawPointer) -> Float {
        var sum: Float = 0
        for b in 0 ..< blocks {
            let wb = w + b * 34, xb = x + b * 34
            let wq = (wb + 2).assumingMemoryBound(to: Int8.self), xq = (xb + 2).assumingMemoryBound(to: Int8.self)
            var isum: Int32 = 0
            for j in 0 ..< 32 { isum &+= Int32(wq[j]) &* Int32(xq[j]) }
            let d = f16ToFloat(wb.loadUnaligned(as: UInt16.self)) * f16ToFloat(xb.loadUnaligned(as: UInt16.self))
            sum += Float(isum) * d
        }
        return sum
    }

    @inline(__always)
    public static func dotQ4_0(_ blocks: Int, _ w: UnsafeRawPointer, _ x: UnsafeRawPointer, path: KernelPath) -> Float {
        #if arch(x86_64)
        if path == .simd {
            return cq_dot_q4_0_q8_0_avx2(Int32(blocks), w.assumingMemoryBound(to: UInt8.self), x.assumingMemoryBound(to: UInt8.self))
        }
        #elseif arch(arm64)
        if path == .simd {
            return cq_dot_q4_0_q8_0_neon(Int32(blocks), w.assumingMemoryBound(to: UInt8.self), x.assumingMemoryBound(to: UInt8.self))
        }
        #endif
        return dotQ4_0Portable(blocks, w, x)
    }

    public static func dotQ4_0Portable(_ blocks: Int, _ w: UnsafeRawPointer, _ x: UnsafeRawPointer) -> Float {
        var sum: Float = 0
        for b in 0 ..< blocks {
            let wb = w + b * 18, xb = x + b * 34
            let wq = (wb + 2).assumingMemoryBound(to: UInt8.self), xq = (xb + 2).assumingMemoryBound(to: Int8.self)
            var isum: Int32 = 0
            for j in 0 ..< 16 {
                isum &+= (Int32(wq[j] & 0x0F) - 8) &* Int32(xq[j])
                isum &+= (Int32(wq[j] >> 4) - 8) &* Int32(xq[j + 16])
            }
            let d = f16ToFloat(wb.loadUnaligned(as: UInt16.self)) * f16ToFloat(xb.loadUnaligned(as: UInt16.self))
            sum += Float(isum) * d
        }
        return sum
    }

    // MARK: Dot products with an F32 activation row

    @inline(__always)
    public static func dotF32(_ n: Int, _ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>) -> Float {
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
        let wr = UnsafeRawPointer(w), xr = UnsafeRawPointer(x)
        var i = 0
        while i + 32 <= n {
            a0.addProduct(wr.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self), xr.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self))
            a1.addProduct(wr.loadUnaligned(fromByteOffset: i * 4 + 32, as: SIMD8<Float>.self), xr.loadUnaligned(fromByteOffset: i * 4 + 32, as: SIMD8<Float>.self))
            a2.addProduct(wr.loadUnaligned(fromByteOffset: i * 4 + 64, as: SIMD8<Float>.self), xr.loadUnaligned(fromByteOffset: i * 4 + 64, as: SIMD8<Float>.self))
            a3.addProduct(wr.loadUnaligned(fromByteOffset: i * 4 + 96, as: SIMD8<Float>.self), xr.loadUnaligned(fromByteOffset: i * 4 + 96, as: SIMD8<Float>.self))
            i += 32
        }
        while i + 8 <= n {
            a0.addProduct(wr.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self), xr.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self))
            i += 8
        }
        var sum = ((a0 + a1) + (a2 + a3)).sum()
        while i < n {
            sum += w[i] * x[i]
            i += 1
        }
        return sum
    }

    @inline(__always)
    public static func dotF16(_ n: Int, _ w: UnsafePointer<UInt16>, _ x: UnsafePointer<Float>, path: KernelPath) -> Float {
        #if arch(x86_64)
        if path == .simd { return cq_dot_f16_f32_avx2(Int32(n), w, x) }
        #elseif arch(arm64)
        if path == .simd { return cq_dot_f16_f32_neon(Int32(n), w, x) }
        #endif
        var sum: Float = 0
        for i in 0 ..< n { sum += f16ToFloat(w[i]) * x[i] }
        return sum
    }

    @inline(__always)
    public static func dotBF16(_ n: Int, _ w: UnsafePointer<UInt16>, _ x: UnsafePointer<Float>, path: KernelPath) -> Float {
        #if arch(x86_64)
        if path == .simd { return cq_dot_bf16_f32_avx2(Int32(n), w, x) }
        #elseif arch(arm64)
        if path == .simd { return cq_dot_bf16_f32_neon(Int32(n), w, x) }
        #endif
        var sum: Float = 0
        for i in 0 ..< n { sum += bf16ToFloat(w[i]) * x[i] }
        return sum
    }

    // MARK: F16 rows (KV cache)

    @inline(__always)
    public static func axpyF16(_ n: Int, _ a: Float, _ w: UnsafePointer<UInt16>, _ y: UnsafeMutablePointer<Float>, path: KernelPath) {
        #if arch(x86_64)
        if path == .simd { cq_axpy_f16_avx2(Int32(n), a, w, y); return }
        #elseif arch(arm64)
        if path == .simd { cq_axpy_f16_neon(Int32(n), a, w, y); return }
        #endif
        for i in 0 ..< n { y[i] += a * f16ToFloat(w[i]) }
    }

    @inline(__always)
    public static func axpyF32(_ n: Int, _ a: Float, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        let va = SIMD8<Float>(repeating: a)
        let wr = UnsafeRawPointer(w), yr = UnsafeMutableRawPointer(y)
        var i = 0
        while i + 8 <= n {
            var v = yr.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            v.addProduct(va, wr.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self))
            yr.storeBytes(of: v, toByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n {
            y[i] += a * w[i]
            i += 1
        }
    }

    /// y[i] += a · (Q8_0 row of n values)[i]
    public static func axpyQ8_0(_ n: Int, _ a: Float, _ w: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        for b in 0 ..< n / 32 {
            let block = w + b * 34
            let scale = a * f16ToFloat(block.loadUnaligned(as: UInt16.self))
            let q = (block + 2).assumingMemoryBound(to: Int8.self)
            let out = y + b * 32
            for j in 0 ..< 32 { out[j] += scale * Float(q[j]) }
        }
    }

    @inline(__always)
    public static func floatToF16Row(_ n: Int, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt16>, path: KernelPath) {
        #if arch(x86_64)
        if path == .simd { cq_f32_to_f16_row_avx2(Int32(n), x, y); return }
        #elseif arch(arm64)
        if path == .simd { cq_f32_to_f16_row_neon(Int32(n), x, y); return }
        #endif
        for i in 0 ..< n { y[i] = floatToF16(x[i]) }
    }

    // MARK: Dequantization

    /// Writes `n` floats of a row stored as `type` (used for embedding lookups and tests).
    public static func dequantizeRow(_ type: TensorType, _ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ n: Int) throws {
        switch type {
        case .f32:
            dst.update(from: src.assumingMemoryBound(to: Float.self), count: n)
        case .f16:
            let s = src.assumingMemoryBound(to: UInt16.self)
            #if arch(x86_64)
            cq_f16_to_f32_row_avx2(Int32(n), s, dst)
            #elseif arch(arm64)
            cq_f16_to_f32_row_neon(Int32(n), s, dst)
            #else
            for i in 0 ..< n { dst[i] = f16ToFloat(s[i]) }
            #endif
        case .bf16:
            let s = src.assumingMemoryBound(to: UInt16.self)
            #if arch(x86_64)
            cq_bf16_to_f32_row_avx2(Int32(n), s, dst)
            #elseif arch(arm64)
            cq_bf16_to_f32_row_neon(Int32(n), s, dst)
            #else
            for i in 0 ..< n { dst[i] = bf16ToFloat(s[i]) }
            #endif
        case .q8_0:
            for b in 0 ..< n / 32 {
                let block = src + b * 34
                let d = f16ToFloat(block.loadUnaligned(as: UInt16.self))
                let q = (block + 2).assumingMemoryBound(to: Int8.self)
                for j in 0 ..< 32 { dst[b * 32 + j] = d * Float(q[j]) }
            }
        case .q4_0:
            for b in 0 ..< n / 32 {
                let block = src + b * 18
                let d = f16ToFloat(block.loadUnaligned(as: UInt16.self))
                let q = (block + 2).assumingMemoryBound(to: UInt8.self)
                for j in 0 ..< 16 {
                    dst[b * 32 + j] = d * Float(Int32(q[j] & 0x0F) - 8)
                    dst[b * 32 + j + 16] = d * Float(Int32(q[j] >> 4) - 8)
                }
            }
        default:
            // Q4_1, Q5_0, Q5_1, IQ4_NL, K-quants, IQ4_XS: Quants/QuantBlocks.swift
            guard QuantBlocks.dequantize(type, src, dst, n) else {
                throw QwenError.unsupported("dequantizing \(type.name) is not supported yet")
            }
        }
    }
}
