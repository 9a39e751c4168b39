import QwenFormats

// Block layouts of llama.cpp's quantized types (ggml-common.h), all little-endian, packed, no padding:
//
//   Q4_1   20 B / 32:  f16 d, f16 m, 16 B nibbles (low nibble = element j, high = j + 16);  x = d·q + m
//   Q5_0   22 B / 32:  f16 d, u32 qh (bit j = 5th bit of element j), 16 B nibbles;          x = d·(q - 16)
//   Q5_1   24 B / 32:  f16 d, f16 m, u32 qh, 16 B nibbles;                                  x = d·q + m
//   IQ4_NL 18 B / 32:  f16 d, 16 B nibbles indexing `iq4nlValues`;                          x = d·v[q]
//   Q2_K   84 B / 256: 16 B scales (low nibble scale, high nibble min, per 16), 64 B 2-bit quants, f16 d, f16 dmin
//                      x = d·sc·q - dmin·m
//   Q3_K  110 B / 256: 32 B high-bit mask, 64 B 2-bit quants, 12 B 6-bit scales (per 16), f16 d
//                      x = d·(sc - 32)·(q - (high bit set ? 0 : 4))
//   Q4_K  144 B / 256: f16 d, f16 dmin, 12 B 6-bit scales and mins (per 32), 128 B nibbles;  x = d·sc·q - dmin·m
//   Q5_K  176 B / 256: f16 d, f16 dmin, 12 B scales/mins, 32 B high bits, 128 B nibbles;   x = d·sc·q - dmin·m
//   Q6_K  210 B / 256: 128 B low nibbles, 64 B high 2-bit pairs, 16 int8 scales (per 16), f16 d;  x = d·sc·(q - 32)
//   IQ4_XS 136 B / 256: f16 d, u16 scale high bits, 4 B scale low nibbles, 128 B nibbles (per 32: as IQ4_NL)
//                      x = d·(ls - 32)·v[q]
//
// Within a K-type super-block, 2-bit quants are laid out as 2 × 128 elements: byte l of a 32-byte group holds
// element l of 4 consecutive 32-element runs (shifts 0, 2, 4, 6). Q4_K/Q5_K nibbles: 4 × 64 elements, byte l of a
// 32-byte group holds element l (low nibble) and l + 32 (high nibble). Q6_K: 2 × 128 elements; ql byte l holds
// elements l (low) and l + 64 (high), ql byte l + 32 holds l + 32 and l + 96; qh byte l holds the high bits of
// l, l + 32, l + 64, l + 96 (shifts 0, 2, 4, 6).
//
// The dequantizers reproduce the reference arithmetic operation for operation (scale products first, then one
// multiply and one subtract/add, no fused multiply-add), so the floats are bit-identical to gguf-py's numpy
// `gguf.quants.dequantize` and to llama.cpp's dequantize_row_* built without FMA contraction.

/// The IQ4_NL / IQ4_XS non-linear 4-bit values (llama.cpp's kvalues_iq4nl).
public let iq4nlValues: SIMD16<Int8> = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]

@inline(__always) func loadF16(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
    f16ToFloat(p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
}

@inline(__always) func byte(_ p: UnsafeRawPointer, _ offset: Int) -> UInt8 { p.load(fromByteOffset: offset, as: UInt8.self) }

/// Scale and min of sub-block `j` (0..<8) of a Q4_K/Q5_K block, from the 12 packed bytes at `s`.
@inline(__always) func kQuantScaleMin(_ s: UnsafeRawPointer, _ j: Int) -> (scale: UInt8, min: UInt8) {
    if j < 4 { return (byte(s, j) & 63, byte(s, j + 4) & 63) }
    return ((byte(s, j + 4) & 0xF) | ((byte(s, j - 4) >> 6) << 4), (byte(s, j + 4) >> 4) | ((byte(s, j) >> 6) << 4))
}

/// Scale of sub-block `j` (0..<16) of a Q3_K block (6 bits, minus 32), from the 12 packed bytes at `s`.
@inline(__always) func q3KScale(_ s: UnsafeRawPointer, _ j: Int) -> Int32 {
    let low = j < 8 ? byte(s, j) & 0xF : byte(s, j - 8) >> 4
    let high = (byte(s, 8 + j % 4) >> UInt8(2 * (j / 4))) & 3
    return Int32(low | high << 4) - 32
}

/// Scale of sub-block `ib` (0..<8) of an IQ4_XS block (6 bits, minus 32).
@inline(__always) func iq4XSScale(_ block: UnsafeRawPointer, _ ib: Int) -> Int32 {
    let high = block.loadUnaligned(fromByteOffset: 2, as: UInt16.self)
    let low = (byte(block, 4 + ib / 2) >> UInt8(4 * (ib % 2))) & 0xF
    return Int32(low | UInt8(truncatingIfNeeded: (high >> UInt16(2 * ib)) & 3) << 4) - 32
}

/// Dequantization of the types in this folder (portable Swift; the reference for the SIMD kernels' tests).
public enum QuantBlocks {
    /// Writes `n` floats (a whole number of blocks) of a row stored as `type`; false if `type` is not one of
    /// Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS.
    public static func dequantize(_ type: TensorType, _ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ n: Int) -> Bool {
        let blocks = n / type.blockSize
        switch type {
        case .q4_1: for b in 0 ..< blocks { q4_1(src + b * 20, dst + b * 32) }
        case .q5_0: for b in 0 ..< blocks { q5_0(src + b * 22, dst + b * 32) }
        case .q5_1: for b in 0 ..< blocks { q5_1(src + b * 24, dst + b * 32) }
        case .iq4_nl: for b in 0 ..< blocks { iq4_nl(src + b * 18, dst + b * 32) }
        case .q2_K: for b in 0 ..< blocks { q2_K(src + b * 84, dst + b * 256) }
        case .q3_K: for b in 0 ..< blocks { q3_K(src + b * 110, dst + b * 256) }
        case .q4_K: for b in 0 ..< blocks { q4_K(src + b * 144, dst + b * 256) }
        case .q5_K: for b in 0 ..< blocks { q5_K(src + b * 176, dst + b * 256) }
        case .q6_K: for b in 0 ..< blocks { q6_K(src + b * 210, dst + b * 256) }
        case .iq4_xs: for b in 0 ..< blocks { iq4_xs(src + b * 136, dst + b * 256) }
        default: return false
        }
        return true
    }

    @inline(__always) static func q4_1(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = loadF16(x, 0), m = loadF16(x, 2)
        for j in 0 ..< 16 {
            let q = byte(x, 4 + j)
            y[j] = d * Float(q & 0xF) + m
            y[j + 16] = d * Float(q >> 4) + m
        }
    }

    @inline(__always) static func q5_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = loadF16(x, 0)
        let qh = x.loadUnaligned(fromByteOffset: 2, as: UInt32.self)
        for j in 0 ..< 16 {
            let q = byte(x, 6 + j)
            let q0 = Int32(q & 0xF) | Int32((qh >> UInt32(j)) & 1) << 4
            let q1 = Int32(q >> 4) | Int32((qh >> UInt32(j + 16)) & 1) << 4
            y[j] = d * Float(q0 - 16)
            y[j + 16] = d * Float(q1 - 16)
        }
    }

    @inline(__always) static func q5_1(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = loadF16(x, 0), m = loadF16(x, 2)
        let qh = x.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
        for j in 0 ..< 16 {
            let q = byte(x, 8 + j)
            let q0 = UInt32(q & 0xF) | ((qh >> UInt32(j)) & 1) << 4
            let q1 = UInt32(q >> 4) | ((qh >> UInt32(j + 16)) & 1) << 4
            y[j] = d * Float(q0) + m
            y[j + 16] = d * Float(q1) + m
        }
    }

    @inline(__always) static func iq4_nl(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = loadF16(x, 0)
        for j in 0 ..< 16 {
            let q = byte(x, 2 + j)
            y[j] = d * Float(iq4nlValues[Int(q & 0xF)])
            y[j + 16] = d * Float(iq4nlValues[Int(q >> 4)])
        }
    }

    @inline(__always) static func q2_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = loadF16(x, 80), dmin = loadF16(x, 82)
        for half in 0 ..< 2 {
            for k in 0 ..< 4 {
                for part in 0 ..< 2 {
                    let sub = 8 * half + 2 * k + part
                    let sc = byte(x, sub)
                    let dl = d * Float(sc & 0xF), ml = dmin * Float(sc >> 4)
                    let out = y + 128 * half + 32 * k + 16 * part
                    for l in 0 ..< 16 {
                        let q = (byte(x, 16 + 32 * half + 16 * part + l) >> UInt8(2 * k)) & 3
                        out[l] = dl * Float(q) - ml
                    }
                }
            }
        }
    }

    @inline(__always) static func q3_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = loadF16(x, 108)
        let scales = x + 96
        for half in 0 ..< 2 {
            for k in 0 ..< 4 {
                let bit = UInt8(4 * half + k)
                for part in 0 ..< 2 {
                    let dl = d * Float(q3KScale(scales, 8 * half + 2 * k + part))
                    let out = y + 128 * half + 32 * k + 16 * part
                    for l in 0 ..< 16 {
                        let i = 16 * part + l
                        let low = Int32((byte(x, 32 + 32 * half + i) >> UInt8(2 * k)) & 3)
                        let high: Int32 = (byte(x, i) >> bit) & 1 != 0 ? 0 : 4
                        out[l] = dl * Float(low - high)
                    }
                }
            }
        }
    }

    @inline(__always) static func q4_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = loadF16(x, 0), dmin = loadF16(x, 2)
        for k in 0 ..< 4 {
            let (s0, m0) = kQuantScaleMin(x + 4, 2 * k), (s1, m1) = kQuantScaleMin(x + 4, 2 * k + 1)
            let d0 = d * Float(s0), n0 = dmin * Float(m0), d1 = d * Float(s1), n1 = dmin * Float(m1)
            let out = y + 64 * k
            for l in 0 ..< 32 {
                let q = byte(x, 16 + 32 * k + l)
                out[l] = d0 * Float(q & 0xF) - n0
                out[l + 32] = d1 * Float(q >> 4) - n1
            }
        }
    }

    @inline(__always) static func q5_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = loadF16(x, 0), dmin = loadF16(x, 2)
        for k in 0 ..< 4 {
            let (s0, m0) = kQuantScaleMin(x + 4, 2 * k), (s1, m1) = kQuantScaleMin(x + 4, 2 * k + 1)
            let d0 = d * Float(s0), n0 = dmin * Float(m0), d1 = d * Float(s1), n1 = dmin * Float(m1)
            let out = y + 64 * k
            for l in 0 ..< 32 {
                let q = byte(x, 48 + 32 * k + l), h = byte(x, 16 + l)
                let lo = (q & 0xF) | ((h >> UInt8(2 * k)) & 1) << 4
                let hi = (q >> 4) | ((h >> UInt8(2 * k + 1)) & 1) << 4
                out[l] = d0 * Float(lo) - n0
                out[l + 32] = d1 * Float(hi) - n1
            }
        }
    }

    @inline(__always) static func q6_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = loadF16(x, 208)
        for half in 0 ..< 2 {
            let ql = 64 * half, qh = 128 + 32 * half, sc = 192 + 8 * half
            let out = y + 128 * half
            for l in 0 ..< 32 {
                let a = byte(x, ql + l), b = byte(x, ql + l + 32), h = byte(x, qh + l)
                let q0 = Int32((a & 0xF) | (h & 3) << 4) - 32
                let q1 = Int32((b & 0xF) | ((h >> 2) & 3) << 4) - 32
                let q2 = Int32((a >> 4) | ((h >> 4) & 3) << 4) - 32
                let q3 = Int32((b >> 4) | ((h >> 6) & 3) << 4) - 32
                let s = sc + l / 16
                out[l] = d * Float(Int8(bitPattern: byte(x, s))) * Float(q0)
                out[l + 32] = d * Float(Int8(bitPattern: byte(x, s + 2))) * Float(q1)
                out[l + 64] = d * Float(Int8(bitPattern: byte(x, s + 4))) * Float(q2)
                out[l + 96] = d * Float(Int8(bitPattern: byte(x, s + 6))) * Float(q3)
            }
        }
    }

    @inline(__always) static func iq4_xs(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = loadF16(x, 0)
        for ib in 0 ..< 8 {
            let dl = d * Float(iq4XSScale(x, ib))
            let out = y + 32 * ib
            for j in 0 ..< 16 {
                let q = byte(x, 8 + 16 * ib + j)
                out[j] = dl * Float(iq4nlValues[Int(q & 0xF)])
                out[j + 16] = dl * Float(iq4nlValues[Int(q >> 4)])
            }
        }
    }
}
