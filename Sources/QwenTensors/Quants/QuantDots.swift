import CQwen
import QwenFormats

/// Row dot products of the types in this folder with prepared activations, as llama.cpp computes them:
/// Q5_0, IQ4_NL with Q8_0 activation blocks, Q4_1, Q5_1 with Q8_1 activation blocks (their min term uses the
/// block's stored F16 s = d·Σq, as llama.cpp's does), and Q2_K…Q6_K, IQ4_XS with Q8_K activation blocks. Each
/// block's (or super-block's) integer sum is exact; float scales apply once per block.
/// The portable versions are plain Swift with wrapping integer arithmetic (no traps on any bytes); the `.simd`
/// versions are the AVX2 intrinsics of `cqwen_quants.h` (x86-64) and the NEON ones of `cqwen_neon.h` (ARM64).
public enum QuantDots {
    /// The kernels of `type` on `path`, nil if the type is not one of this folder's.
    public static func kernels(_ type: TensorType, path: KernelPath) -> WeightKernels? {
        #if arch(x86_64)
        if path == .simd {
            switch type {
            case .q4_1: return WeightKernels(activation: .q8_1) { w, x, n in cq_dot_q4_1_q8_1_avx2(Int32(n / 32), w.u8, x.u8) }
            case .q5_0: return WeightKernels(activation: .q8_0) { w, x, n in cq_dot_q5_0_q8_0_avx2(Int32(n / 32), w.u8, x.u8) }
            case .q5_1: return WeightKernels(activation: .q8_1) { w, x, n in cq_dot_q5_1_q8_1_avx2(Int32(n / 32), w.u8, x.u8) }
            case .iq4_nl: return WeightKernels(activation: .q8_0) { w, x, n in cq_dot_iq4_nl_q8_0_avx2(Int32(n / 32), w.u8, x.u8) }
            case .q2_K: return WeightKernels(activation: .q8_K) { w, x, n in cq_dot_q2_K_q8_K_avx2(Int32(n / 256), w.u8, x.u8) }
            case .q3_K: return WeightKernels(activation: .q8_K) { w, x, n in cq_dot_q3_K_q8_K_avx2(Int32(n / 256), w.u8, x.u8) }
            case .q4_K: return WeightKernels(activation: .q8_K) { w, x, n in cq_dot_q4_K_q8_K_avx2(Int32(n / 256), w.u8, x.u8) }
            case .q5_K: return WeightKernels(activation: .q8_K) { w, x, n in cq_dot_q5_K_q8_K_avx2(Int32(n / 256), w.u8, x.u8) }
            case .q6_K: return WeightKernels(activation: .q8_K) { w, x, n in cq_dot_q6_K_q8_K_avx2(Int32(n / 256), w.u8, x.u8) }
            case .iq4_xs: return WeightKernels(activation: .q8_K) { w, x, n in cq_dot_iq4_xs_q8_K_avx2(Int32(n / 256), w.u8, x.u8) }
            default: return nil
            }
        }
        #elseif arch(arm64)
        if path == .simd {
            switch type {
            case .q4_1: return WeightKernels(activation: .q8_1) { w, x, n in cq_dot_q4_1_q8_1_neon(Int32(n / 32), w.u8, x.u8) }
            case .q5_0: return WeightKernels(activation: .q8_0) { w, x, n in cq_dot_q5_0_q8_0_neon(Int32(n / 32), w.u8, x.u8) }
            case .q5_1: return WeightKernels(activation: .q8_1) { w, x, n in cq_dot_q5_1_q8_1_neon(Int32(n / 32), w.u8, x.u8) }
            case .iq4_nl: return WeightKernels(activation: .q8_0) { w, x, n in cq_dot_iq4_nl_q8_0_neon(Int32(n / 32), w.u8, x.u8) }
            case .q2_K: return WeightKernels(activation: .q8_K) { w, x, n in cq_dot_q2_K_q8_K_neon(Int32(n / 256), w.u8, x.u8) }
            case .q3_K: return WeightKernels(activation: .q8_K) { w, x, n in cq_dot_q3_K_q8_K_neon(Int32(n / 256), w.u8, x.u8) }
            case .q4_K: return WeightKernels(activation: .q8_K) { w, x, n in cq_dot_q4_K_q8_K_neon(Int32(n / 256), w.u8, x.u8) }
            case .q5_K: return WeightKernels(activation: .q8_K) { w, x, n in cq_dot_q5_K_q8_K_neon(Int32(n / 256), w.u8, x.u8) }
            case .q6_K: return WeightKernels(activation: .q8_K) { w, x, n in cq_dot_q6_K_q8_K_neon(Int32(n / 256), w.u8, x.u8) }
            case .iq4_xs: return WeightKernels(activation: .q8_K) { w, x, n in cq_dot_iq4_xs_q8_K_neon(Int32(n / 256), w.u8, x.u8) }
            default: return nil
            }
        }
        #endif
        switch type {
        case .q4_1: return WeightKernels(activation: .q8_1) { w, x, n in q4_1(n / 32, w, x) }
        case .q5_0: return WeightKernels(activation: .q8_0) { w, x, n in q5_0(n / 32, w, x) }
        case .q5_1: return WeightKernels(activation: .q8_1) { w, x, n in q5_1(n / 32, w, x) }
        case .iq4_nl: return WeightKernels(activation: .q8_0) { w, x, n in iq4_nl(n / 32, w, x) }
        case .q2_K: return WeightKernels(activation: .q8_K) { w, x, n in q2_K(n / 256, w, x) }
        case .q3_K: return WeightKernels(activation: .q8_K) { w, x, n in q3_K(n / 256, w, x) }
        case .q4_K: return WeightKernels(activation: .q8_K) { w, x, n in q4_K(n / 256, w, x) }
        case .q5_K: return WeightKernels(activation: .q8_K) { w, x, n in q5_K(n / 256, w, x) }
        case .q6_K: return WeightKernels(activation: .q8_K) { w, x, n in q6_K(n / 256, w, x) }
        case .iq4_xs: return WeightKernels(activation: .q8_K) { w, x, n in iq4_xs(n / 256, w, x) }
        default: return nil
        }
    }

    // MARK: Q8_1 activations (f16 d, f16 s = d·Σq, 32 × int8)

    /// Quantizes `n` floats (a multiple of 32) to Q8_1 blocks as llama.cpp's x86 quantize_row_q8_1: d = max|x| / 127
    /// stored as F16, q = round-half-even(x · 127 / max|x|) (the bytes of Q8_0), s = F16(d · Σq) with d before its
    /// rounding. Both paths give the same bytes for any input (NaN elements are left out of the maximum and become
    /// -128, as the SIMD conversion makes them); never a trap.
    @inline(__always)
    public static func quantizeQ8_1(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ n: Int, path: KernelPath) {
        #if arch(x86_64)
        if path == .simd {
            cq_quantize_row_q8_1_avx2(x, y.assumingMemoryBound(to: UInt8.self), Int32(n))
            return
        }
        #elseif arch(arm64)
        if path == .simd {
            cq_quantize_row_q8_1_neon(x, y.assumingMemoryBound(to: UInt8.self), Int32(n))
            return
        }
        #endif
        quantizeQ8_1Portable(x, y, n)
    }

    public static func quantizeQ8_1Portable(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ n: Int) {
        for b in 0 ..< n / 32 {
            let xb = x + b * 32, yb = y + b * 36
            var amax: Float = 0
            for j in 0 ..< 32 where abs(xb[j]) > amax { amax = abs(xb[j]) }
            let d = amax / 127
            let id: Float = amax != 0 ? 127 / amax : 0
            var sum: Int32 = 0
            for j in 0 ..< 32 {
                let r = (xb[j] * id).rounded(.toNearestOrEven)
                // what cvtps2dq does: NaN and out-of-range values become Int32.min (then saturate to -128)
                let v: Int32 = r >= -2147483648 && r < 2147483648 ? Int32(r) : .min
                sum &+= v
                yb.storeBytes(of: Int8(clamping: v), toByteOffset: 4 + j, as: Int8.self)
            }
            yb.storeBytes(of: floatToF16(d), as: UInt16.self)
            yb.storeBytes(of: floatToF16(d * Float(sum)), toByteOffset: 2, as: UInt16.self)
        }
    }

    // MARK: Portable: 32-element blocks · Q8_0 (f16 d + 32 × int8) or Q8_1 (f16 d, f16 s + 32 × int8)

    @inline(__always) static func q8(_ x: UnsafeRawPointer, _ j: Int) -> Int32 { Int32(x.load(fromByteOffset: 2 + j, as: Int8.self)) }
    @inline(__always) static func q81(_ x: UnsafeRawPointer, _ j: Int) -> Int32 { Int32(x.load(fromByteOffset: 4 + j, as: Int8.self)) }

    public static func q4_1(_ blocks: Int, _ w: UnsafeRawPointer, _ x: UnsafeRawPointer) -> Float {
        var sum: Float = 0, mins: Float = 0
        for b in 0 ..< blocks {
            let wb = w + b * 20, xb = x + b * 36
            var dot: Int32 = 0
            for j in 0 ..< 16 {
                let q = byte(wb, 4 + j)
                dot = dot &+ Int32(q & 0xF) &* q81(xb, j) &+ Int32(q >> 4) &* q81(xb, j + 16)
            }
            sum += loadF16(wb, 0) * loadF16(xb, 0) * Float(dot)
            mins += loadF16(wb, 2) * loadF16(xb, 2)
        }
        return sum + mins
    }

    public static func q5_0(_ blocks: Int, _ w: UnsafeRawPointer, _ x: UnsafeRawPointer) -> Float {
        var sum: Float = 0
        for b in 0 ..< blocks {
            let wb = w + b * 22, xb = x + b * 34
            let qh = wb.loadUnaligned(fromByteOffset: 2, as: UInt32.self)
            var dot: Int32 = 0
            for j in 0 ..< 16 {
                let q = byte(wb, 6 + j)
                let q0 = (Int32(q & 0xF) | Int32((qh >> UInt32(j)) & 1) << 4) &- 16
                let q1 = (Int32(q >> 4) | Int32((qh >> UInt32(j + 16)) & 1) << 4) &- 16
                dot = dot &+ q0 &* q8(xb, j) &+ q1 &* q8(xb, j + 16)
            }
            sum += loadF16(wb, 0) * loadF16(xb, 0) * Float(dot)
        }
        return sum
    }

    public static func q5_1(_ blocks: Int, _ w: UnsafeRawPointer, _ x: UnsafeRawPointer) -> Float {
        var sum: Float = 0, mins: Float = 0
        for b in 0 ..< blocks {
            let wb = w + b * 24, xb = x + b * 36
            let qh = wb.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
            var dot: Int32 = 0
            for j in 0 ..< 16 {
                let q = byte(wb, 8 + j)
                let q0 = Int32(q & 0xF) | Int32((qh >> UInt32(j)) & 1) << 4
                let q1 = Int32(q >> 4) | Int32((qh >> UInt32(j + 16)) & 1) << 4
                dot = dot &+ q0 &* q81(xb, j) &+ q1 &* q81(xb, j + 16)
            }
            sum += loadF16(wb, 0) * loadF16(xb, 0) * Float(dot)
            mins += loadF16(wb, 2) * loadF16(xb, 2)
        }
        return sum + mins
    }

    public static func iq4_nl(_ blocks: Int, _ w: UnsafeRawPointer, _ x: UnsafeRawPointer) -> Float {
        var sum: Float = 0
        for b in 0 ..< blocks {
            let wb = w + b * 18, xb = x + b * 34
            var dot: Int32 = 0
            for j in 0 ..< 16 {
                let q = byte(wb, 2 + j)
                dot = dot &+ Int32(iq4nlValues[Int(q & 0xF)]) &* q8(xb, j) &+ Int32(iq4nlValues[Int(q >> 4)]) &* q8(xb, j + 16)
            }
            sum += loadF16(wb, 0) * loadF16(xb, 0) * Float(dot)
        }
        return sum
    }

    // MARK: Portable: 256-element super-blocks · Q8_K (f32 d + 256 × int8 + 16 × int16 sums of 16)

    @inline(__always) static func k8(_ x: UnsafeRawPointer, _ j: Int) -> Int32 { Int32(x.load(fromByteOffset: 4 + j, as: Int8.self)) }
    @inline(__always) static func bsum(_ x: UnsafeRawPointer, _ g: Int) -> Int32 {
        Int32(x.loadUnaligned(fromByteOffset: 260 + 2 * g, as: Int16.self))
    }
    @inline(__always) static func kScale(_ x: UnsafeRawPointer) -> Float { x.loadUnaligned(as: Float.self) }

    public static func q2_K(_ blocks: Int, _ w: UnsafeRawPointer, _ x: UnsafeRawPointer) -> Float {
        var sum: Float = 0
        for b in 0 ..< blocks {
            let wb = w + b * 84, xb = x + b * 292
            var dot: Int32 = 0, mins: Int32 = 0
            for g in 0 ..< 16 { mins = mins &+ Int32(byte(wb, g) >> 4) &* bsum(xb, g) }
            for half in 0 ..< 2 {
                for k in 0 ..< 4 {
                    for part in 0 ..< 2 {
                        var s: Int32 = 0
                        for l in 0 ..< 16 {
                            let q = Int32((byte(wb, 16 + 32 * half + 16 * part + l) >> UInt8(2 * k)) & 3)
                            s = s &+ q &* k8(xb, 128 * half + 32 * k + 16 * part + l)
                        }
                        dot = dot &+ s &* Int32(byte(wb, 8 * half + 2 * k + part) & 0xF)
                    }
                }
            }
            let dy = kScale(xb)
            sum += dy * loadF16(wb, 80) * Float(dot) - dy * loadF16(wb, 82) * Float(mins)
        }
        return sum
    }

    public static func q3_K(_ blocks: Int, _ w: UnsafeRawPointer, _ x: UnsafeRawPointer) -> Float {
        var sum: Float = 0
        for b in 0 ..< blocks {
            let wb = w + b * 110, xb = x + b * 292
            var dot: Int32 = 0
            for half in 0 ..< 2 {
                for k in 0 ..< 4 {
                    let bit = UInt8(4 * half + k)
                    for part in 0 ..< 2 {
                        var s: Int32 = 0
                        for l in 0 ..< 16 {
                            let i = 16 * part + l
                            let low = Int32((byte(wb, 32 + 32 * half + i) >> UInt8(2 * k)) & 3)
                            let q = (byte(wb, i) >> bit) & 1 != 0 ? low : low &- 4
                            s = s &+ q &* k8(xb, 128 * half + 32 * k + i)
                        }
                        dot = dot &+ s &* q3KScale(wb + 96, 8 * half + 2 * k + part)
                    }
                }
            }
            sum += loadF16(wb, 108) * kScale(xb) * Float(dot)
        }
        return sum
    }

    public static func q4_K(_ blocks: Int, _ w: UnsafeRawPointer, _ x: UnsafeRawPointer) -> Float {
        var sum: Float = 0
        for b in 0 ..< blocks {
            let wb = w + b * 144, xb = x + b * 292
            var dot: Int32 = 0, mins: Int32 = 0
            for k in 0 ..< 4 {
                let (s0, m0) = kQuantScaleMin(wb + 4, 2 * k), (s1, m1) = kQuantScaleMin(wb + 4, 2 * k + 1)
                var lo: Int32 = 0, hi: Int32 = 0
                for l in 0 ..< 32 {
                    let q = byte(wb, 16 + 32 * k + l)
                    lo = lo &+ Int32(q & 0xF) &* k8(xb, 64 * k + l)
                    hi = hi &+ Int32(q >> 4) &* k8(xb, 64 * k + 32 + l)
                }
                dot = dot &+ lo &* Int32(s0) &+ hi &* Int32(s1)
                mins = mins &+ Int32(m0) &* (bsum(xb, 4 * k) &+ bsum(xb, 4 * k + 1))
                mins = mins &+ Int32(m1) &* (bsum(xb, 4 * k + 2) &+ bsum(xb, 4 * k + 3))
            }
            let dy = kScale(xb)
            sum += loadF16(wb, 0) * dy * Float(dot) - loadF16(wb, 2) * dy * Float(mins)
        }
        return sum
    }

    public static func q5_K(_ blocks: Int, _ w: UnsafeRawPointer, _ x: UnsafeRawPointer) -> Float {
        var sum: Float = 0
        for b in 0 ..< blocks {
            let wb = w + b * 176, xb = x + b * 292
            var dot: Int32 = 0, mins: Int32 = 0
            for k in 0 ..< 4 {
                let (s0, m0) = kQuantScaleMin(wb + 4, 2 * k), (s1, m1) = kQuantScaleMin(wb + 4, 2 * k + 1)
                var lo: Int32 = 0, hi: Int32 = 0
                for l in 0 ..< 32 {
                    let q = byte(wb, 48 + 32 * k + l), h = byte(wb, 16 + l)
                    let q0 = Int32((q & 0xF) | ((h >> UInt8(2 * k)) & 1) << 4)
                    let q1 = Int32((q >> 4) | ((h >> UInt8(2 * k + 1)) & 1) << 4)
                    lo = lo &+ q0 &* k8(xb, 64 * k + l)
                    hi = hi &+ q1 &* k8(xb, 64 * k + 32 + l)
                }
                dot = dot &+ lo &* Int32(s0) &+ hi &* Int32(s1)
                mins = mins &+ Int32(m0) &* (bsum(xb, 4 * k) &+ bsum(xb, 4 * k + 1))
                mins = mins &+ Int32(m1) &* (bsum(xb, 4 * k + 2) &+ bsum(xb, 4 * k + 3))
            }
            let dy = kScale(xb)
            sum += loadF16(wb, 0) * dy * Float(dot) - loadF16(wb, 2) * dy * Float(mins)
        }
        return sum
    }

    public static func q6_K(_ blocks: Int, _ w: UnsafeRawPointer, _ x: UnsafeRawPointer) -> Float {
        var sum: Float = 0
        for b in 0 ..< blocks {
            let wb = w + b * 210, xb = x + b * 292
            var dot: Int32 = 0
            for half in 0 ..< 2 {
                let ql = 64 * half, qh = 128 + 32 * half, sc = 192 + 8 * half, y = 128 * half
                var s = SIMD8<Int32>()  // sums of the 8 sub-blocks of 16 in this half, in element order
                for l in 0 ..< 32 {
                    let a = byte(wb, ql + l), c = byte(wb, ql + l + 32), h = byte(wb, qh + l)
                    let g = l / 16
                    s[g] = s[g] &+ (Int32((a & 0xF) | (h & 3) << 4) &- 32) &* k8(xb, y + l)
                    s[g + 2] = s[g + 2] &+ (Int32((c & 0xF) | ((h >> 2) & 3) << 4) &- 32) &* k8(xb, y + l + 32)
                    s[g + 4] = s[g + 4] &+ (Int32((a >> 4) | ((h >> 4) & 3) << 4) &- 32) &* k8(xb, y + l + 64)
                    s[g + 6] = s[g + 6] &+ (Int32((c >> 4) | ((h >> 6) & 3) << 4) &- 32) &* k8(xb, y + l + 96)
                }
                for g in 0 ..< 8 { dot = dot &+ s[g] &* Int32(Int8(bitPattern: byte(wb, sc + g))) }
            }
            sum += loadF16(wb, 208) * kScale(xb) * Float(dot)
        }
        return sum
    }

    public static func iq4_xs(_ blocks: Int, _ w: UnsafeRawPointer, _ x: UnsafeRawPointer) -> Float {
        var sum: Float = 0
        for b in 0 ..< blocks {
            let wb = w + b * 136, xb = x + b * 292
            var dot: Int32 = 0
            for ib in 0 ..< 8 {
                var s: Int32 = 0
                for j in 0 ..< 16 {
                    let q = byte(wb, 8 + 16 * ib + j)
                    s = s &+ Int32(iq4nlValues[Int(q & 0xF)]) &* k8(xb, 32 * ib + j)
                    s = s &+ Int32(iq4nlValues[Int(q >> 4)]) &* k8(xb, 32 * ib + 16 + j)
                }
                dot = dot &+ s &* iq4XSScale(wb, ib)
            }
            sum += loadF16(wb, 0) * kScale(xb) * Float(dot)
        }
        return sum
    }
}

fileprivate extension UnsafeRawPointer {
    /// The same address as a byte pointer (for the C kernels).
    @inline(__always) var u8: UnsafePointer<UInt8> { assumingMemoryBound(to: UInt8.self) }
}
