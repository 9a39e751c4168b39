import QwenFormats

/// Quantizes F32 weight rows into llama.cpp's block formats with the algorithms of its reference quantizers
/// (`quantize_row_*_ref`, what `llama-quantize` runs without an importance matrix), operation for operation, so a
/// file we write holds the blocks llama.cpp would write. Used by the GGUF converter and by quantize-on-load.
public enum WeightQuantizer {
    /// Types this quantizer writes.
    public static let types: [TensorType] = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]

    public static func canQuantize(_ type: TensorType) -> Bool { types.contains(type) }

    /// Quantizes `n` floats (a multiple of the type's block size) into `dst` (`type.byteCount(elements: n)` bytes).
    public static func quantize(_ type: TensorType, _ x: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ n: Int) {
        precondition(canQuantize(type) && n % type.blockSize == 0)
        let blocks = n / type.blockSize, bytes = type.blockBytes, size = type.blockSize
        switch type {
        case .f32: dst.copyMemory(from: x, byteCount: n * 4)
        case .f16: for i in 0 ..< n { dst.storeBytes(of: floatToF16(x[i]), toByteOffset: 2 * i, as: UInt16.self) }
        case .bf16: for i in 0 ..< n { dst.storeBytes(of: floatToBF16(x[i]), toByteOffset: 2 * i, as: UInt16.self) }
        default:
            for b in 0 ..< blocks {
                let xb = x + b * size, yb = dst + b * bytes
                switch type {
                case .q8_0: q8_0(xb, yb)
                case .q4_0: q4_0(xb, yb)
                case .q4_1: q4_1(xb, yb)
                case .q5_0: q5_0(xb, yb)
                case .q5_1: q5_1(xb, yb)
                case .q2_K: q2_K(xb, yb)
                case .q3_K: q3_K(xb, yb)
                case .q4_K: q4_K(xb, yb)
                case .q5_K: q5_K(xb, yb)
                case .q6_K: q6_K(xb, yb)
                default: preconditionFailure()
                }
            }
        }
    }

    // MARK: C conversions, mirrored

    /// llama.cpp's `nearest_int`: round half to even through the float mantissa (exact for |x| < 2^22).
    @inline(__always) static func nearestInt(_ x: Float) -> Int32 {
        let v = x + 12_582_912
        return Int32(bitPattern: v.bitPattern & 0x007F_FFFF) - 0x0040_0000
    }

    /// C's float-to-integer conversion as x86 performs it (truncation; NaN and out-of-range give INT32_MIN).
    @inline(__always) static func truncate(_ x: Float) -> Int32 {
        x.isNaN || x >= 2_147_483_648 || x < -2_147_483_648 ? Int32.min : Int32(x)
    }

    /// `(int8_t)x` / `(uint8_t)x` of a float: truncation, then the low byte.
    @inline(__always) static func lowByte(_ x: Float) -> UInt8 { UInt8(truncatingIfNeeded: truncate(x)) }

    @inline(__always) static func storeF16(_ x: Float, _ p: UnsafeMutableRawPointer, _ offset: Int) {
        p.storeBytes(of: floatToF16(x), toByteOffset: offset, as: UInt16.self)
    }

    @inline(__always) static func f16Round(_ x: Float) -> Float { f16ToFloat(floatToF16(x)) }

    static let groupMaxEps: Float = 1e-15

    // MARK: 32-element blocks

    /// Largest |x| and the signed value that has it (the first one on ties).
    @inline(__always) static func signedMax(_ x: UnsafePointer<Float>, _ n: Int) -> (abs: Float, value: Float) {
        var amax: Float = 0, max: Float = 0
        for j in 0 ..< n where amax < abs(x[j]) {
            amax = abs(x[j])
            max = x[j]
        }
        return (amax, max)
    }

    @inline(__always) static func minMax(_ x: UnsafePointer<Float>, _ n: Int) -> (min: Float, max: Float) {
        var lo = Float.greatestFiniteMagnitude, hi = -Float.greatestFiniteMagnitude
        for j in 0 ..< n {
            if x[j] < lo { lo = x[j] }
            if x[j] > hi { hi = x[j] }
        }
        return (lo, hi)
    }

    static func q8_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        var amax: Float = 0
        for j in 0 ..< 32 { amax = Swift.max(amax, abs(x[j])) }
        let d = amax / 127
        let id: Float = d != 0 ? 1 / d : 0
        storeF16(d, y, 0)
        for j in 0 ..< 32 { y.storeBytes(of: lowByte((x[j] * id).rounded(.toNearestOrAwayFromZero)), toByteOffset: 2 + j, as: UInt8.self) }
    }

    static func q4_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        let d = signedMax(x, 32).value / -8
        let id: Float = d != 0 ? 1 / d : 0
        storeF16(d, y, 0)
        for j in 0 ..< 16 {
            let a = Swift.min(15, Int8(bitPattern: lowByte(x[j] * id + 8.5)))
            let b = Swift.min(15, Int8(bitPattern: lowByte(x[j + 16] * id + 8.5)))
            y.storeBytes(of: UInt8(bitPattern: a) | UInt8(bitPattern: b) << 4, toByteOffset: 2 + j, as: UInt8.self)
        }
    }

    static func q4_1(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        let (lo, hi) = minMax(x, 32)
        let d = (hi - lo) / 15
        let id: Float = d != 0 ? 1 / d : 0
        storeF16(d, y, 0)
        storeF16(lo, y, 2)
        for j in 0 ..< 16 {
            let a = Swift.min(15, Int8(bitPattern: lowByte((x[j] - lo) * id + 0.5)))
            let b = Swift.min(15, Int8(bitPattern: lowByte((x[j + 16] - lo) * id + 0.5)))
            y.storeBytes(of: UInt8(bitPattern: a) | UInt8(bitPattern: b) << 4, toByteOffset: 4 + j, as: UInt8.self)
        }
    }

    static func q5_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        let d = signedMax(x, 32).value / -16
        let id: Float = d != 0 ? 1 / d : 0
        storeF16(d, y, 0)
        var qh: UInt32 = 0
        for j in 0 ..< 16 {
            let a = UInt8(bitPattern: Swift.min(31, Int8(bitPattern: lowByte(x[j] * id + 16.5))))
            let b = UInt8(bitPattern: Swift.min(31, Int8(bitPattern: lowByte(x[j + 16] * id + 16.5))))
            y.storeBytes(of: (a & 0x0F) | (b & 0x0F) << 4, toByteOffset: 6 + j, as: UInt8.self)
            qh |= UInt32((a & 0x10) >> 4) << j
            qh |= UInt32((b & 0x10) >> 4) << (j + 16)
        }
        y.storeBytes(of: qh.littleEndian, toByteOffset: 2, as: UInt32.self)
    }

    static func q5_1(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        let (lo, hi) = minMax(x, 32)
        let d = (hi - lo) / 31
        let id: Float = d != 0 ? 1 / d : 0
        storeF16(d, y, 0)
        storeF16(lo, y, 2)
        var qh: UInt32 = 0
        for j in 0 ..< 16 {
            let a = lowByte((x[j] - lo) * id + 0.5)
            let b = lowByte((x[j + 16] - lo) * id + 0.5)
            y.storeBytes(of: (a & 0x0F) | (b & 0x0F) << 4, toByteOffset: 8 + j, as: UInt8.self)
            qh |= UInt32((a & 0x10) >> 4) << j
            qh |= UInt32((b & 0x10) >> 4) << (j + 16)
        }
        y.storeBytes(of: qh.littleEndian, toByteOffset: 4, as: UInt32.self)
    }

    // MARK: K-quant helpers (llama.cpp's make_qx_quants, make_q3_quants, make_qkx2_quants)

    /// Symmetric levels in [-nmax, nmax) with a least-squares scale weighted by x² (rmse_type 1), searching 18
    /// scales around nmax/max. Levels are stored + nmax.
    static func symmetricLevels(_ n: Int, _ nmax: Int32, _ x: UnsafePointer<Float>, _ levels: UnsafeMutablePointer<Int8>) -> Float {
        let (amax, max) = signedMax(x, n)
        if amax < groupMaxEps {
            for i in 0 ..< n { levels[i] = 0 }
            return 0
        }
        let fmax = Float(nmax)
        var iscale = -fmax / max
        var sumlx: Float = 0, suml2: Float = 0
        for i in 0 ..< n {
            let l = Swift.max(-nmax, Swift.min(nmax - 1, nearestInt(iscale * x[i])))
            levels[i] = Int8(truncatingIfNeeded: l + nmax)
            let w = x[i] * x[i]
            sumlx += w * x[i] * Float(l)
            suml2 += w * Float(l) * Float(l)
        }
        var scale: Float = suml2 != 0 ? sumlx / suml2 : 0
        var best = scale * sumlx
        for step in -9 ... 9 where step != 0 {
            iscale = -(fmax + 0.1 * Float(step)) / max
            sumlx = 0
            suml2 = 0
            for i in 0 ..< n {
                let l = Swift.max(-nmax, Swift.min(nmax - 1, nearestInt(iscale * x[i])))
                let w = x[i] * x[i]
                sumlx += w * x[i] * Float(l)
                suml2 += w * Float(l) * Float(l)
            }
            if suml2 > 0 && sumlx * sumlx > best * suml2 {
                for i in 0 ..< n {
                    levels[i] = Int8(truncatingIfNeeded: nmax + Swift.max(-nmax, Swift.min(nmax - 1, nearestInt(iscale * x[i]))))
                }
                scale = sumlx / suml2
                best = scale * sumlx
            }
        }
        return scale
    }

    /// Q3_K's levels in [-nmax, nmax): start from nmax/max, then move single levels while the x²-weighted fit improves.
    static func q3Levels(_ n: Int, _ nmax: Int32, _ x: UnsafePointer<Float>, _ levels: UnsafeMutablePointer<Int8>) -> Float {
        let (amax, max) = signedMax(x, n)
        if amax < groupMaxEps {
            for i in 0 ..< n { levels[i] = 0 }
            return 0
        }
        let iscale = -Float(nmax) / max
        var sumlx: Float = 0, suml2: Float = 0
        for i in 0 ..< n {
            let l = Swift.max(-nmax, Swift.min(nmax - 1, nearestInt(iscale * x[i])))
            levels[i] = Int8(truncatingIfNeeded: l)
            let w = x[i] * x[i]
            sumlx += w * x[i] * Float(l)
            suml2 += w * Float(l) * Float(l)
        }
        for _ in 0 ..< 5 {
            var changed = 0
            for i in 0 ..< n {
                let w = x[i] * x[i]
                let li = Float(levels[i])
                var slx = sumlx - w * x[i] * li
                if slx > 0 {
                    var sl2 = suml2 - w * li * li
                    let newL = Swift.max(-nmax, Swift.min(nmax - 1, nearestInt(x[i] * sl2 / slx)))
                    if newL != Int32(levels[i]) {
                        slx += w * x[i] * Float(newL)
                        sl2 += w * Float(newL) * Float(newL)
                        if sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                            levels[i] = Int8(truncatingIfNeeded: newL)
                            sumlx = slx
                            suml2 = sl2
                            changed += 1
                        }
                    }
                }
            }
            if changed == 0 { break }
        }
        for i in 0 ..< n { levels[i] = levels[i] &+ Int8(truncatingIfNeeded: nmax) }
        return suml2 > 0 ? sumlx / suml2 : 0
    }

    /// Asymmetric levels in [0, nmax] with a scale and a (non-positive) min fitted by weighted least squares over
    /// nstep+1 trial scales. Returns the scale; `theMin` gets -min.
    static func affineLevels(_ n: Int, _ nmax: Int32, _ x: UnsafePointer<Float>, _ weights: UnsafePointer<Float>,
                             _ levels: UnsafeMutablePointer<UInt8>, _ theMin: inout Float, _ aux: UnsafeMutablePointer<UInt8>,
                             _ rmin: Float, _ rdelta: Float, _ nstep: Int, _ useMAD: Bool) -> Float {
        var lo = x[0], hi = x[0]
        var sumW = weights[0]
        var sumX = sumW * x[0]
        for i in 1 ..< n {
            if x[i] < lo { lo = x[i] }
            if x[i] > hi { hi = x[i] }
            let w = weights[i]
            sumW += w
            sumX += w * x[i]
        }
        if lo > 0 { lo = 0 }
        if hi == lo {
            for i in 0 ..< n { levels[i] = 0 }
            theMin = -lo
            return 0
        }
        let fmax = Float(nmax)
        var iscale = fmax / (hi - lo)
        var scale = 1 / iscale
        var bestError: Float = 0
        for i in 0 ..< n {
            let l = nearestInt(iscale * (x[i] - lo))
            levels[i] = UInt8(truncatingIfNeeded: Swift.max(0, Swift.min(nmax, l)))
            var diff = scale * Float(levels[i]) + lo - x[i]
            diff = useMAD ? abs(diff) : diff * diff
            bestError += weights[i] * diff
        }
        if nstep < 1 {
            theMin = -lo
            return scale
        }
        for step in 0 ... nstep {
            iscale = (rmin + rdelta * Float(step) + fmax) / (hi - lo)
            var sumL: Float = 0, sumL2: Float = 0, sumXL: Float = 0
            for i in 0 ..< n {
                let l = Swift.max(0, Swift.min(nmax, nearestInt(iscale * (x[i] - lo))))
                aux[i] = UInt8(truncatingIfNeeded: l)
                let w = weights[i]
                sumL += w * Float(l)
                sumL2 += w * Float(l) * Float(l)
                sumXL += w * Float(l) * x[i]
            }
            let det = sumW * sumL2 - sumL * sumL
            if det > 0 {
                var thisScale = (sumW * sumXL - sumX * sumL) / det
                var thisMin = (sumL2 * sumX - sumL * sumXL) / det
                if thisMin > 0 {
                    thisMin = 0
                    thisScale = sumXL / sumL2
                }
                var error: Float = 0
                for i in 0 ..< n {
                    var diff = thisScale * Float(aux[i]) + thisMin - x[i]
                    diff = useMAD ? abs(diff) : diff * diff
                    error += weights[i] * diff
                }
                if error < bestError {
                    for i in 0 ..< n { levels[i] = aux[i] }
                    bestError = error
                    scale = thisScale
                    lo = thisMin
                }
            }
        }
        theMin = -lo
        return scale
    }

    // MARK: K-quants (256-element super-blocks)

    static func q2_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        // layout: scales[16] (low nibble scale, high nibble min), qs[64], d, dmin
        var levels = [UInt8](repeating: 0, count: 256), aux = [UInt8](repeating: 0, count: 16)
        var weights = [Float](repeating: 0, count: 16), mins = [Float](repeating: 0, count: 16), scales = [Float](repeating: 0, count: 16)
        let q4scale: Float = 15
        var maxScale: Float = 0, maxMin: Float = 0
        for j in 0 ..< 16 {
            for l in 0 ..< 16 { weights[l] = abs(x[16 * j + l]) }
            scales[j] = levels.withUnsafeMutableBufferPointer { L in
                affineLevels(16, 3, x + 16 * j, weights, L.baseAddress! + 16 * j, &mins[j], &aux, -0.5, 0.1, 15, true)
            }
            if scales[j] > maxScale { maxScale = scales[j] }
            if mins[j] > maxMin { maxMin = mins[j] }
        }
        let sc = y.assumingMemoryBound(to: UInt8.self)
        if maxScale > 0 {
            let iscale = q4scale / maxScale
            for j in 0 ..< 16 { sc[j] = UInt8(truncatingIfNeeded: nearestInt(iscale * scales[j])) }
            storeF16(maxScale / q4scale, y, 80)
        } else {
            for j in 0 ..< 16 { sc[j] = 0 }
            storeF16(0, y, 80)
        }
        if maxMin > 0 {
            let iscale = q4scale / maxMin
            for j in 0 ..< 16 { sc[j] |= UInt8(truncatingIfNeeded: nearestInt(iscale * mins[j]) << 4) }
            storeF16(maxMin / q4scale, y, 82)
        } else {
            storeF16(0, y, 82)
        }
        let d = loadF16(y, 80), dmin = loadF16(y, 82)
        for j in 0 ..< 16 {
            let dj = d * Float(sc[j] & 0xF)
            if dj == 0 { continue }
            let dm = dmin * Float(sc[j] >> 4)
            for i in 0 ..< 16 {
                levels[16 * j + i] = UInt8(Swift.max(0, Swift.min(3, nearestInt((x[16 * j + i] + dm) / dj))))
            }
        }
        let qs = sc + 16
        for j in stride(from: 0, to: 256, by: 128) {
            for l in 0 ..< 32 {
                qs[j / 4 + l] = levels[j + l] | levels[j + l + 32] << 2 | levels[j + l + 64] << 4 | levels[j + l + 96] << 6
            }
        }
    }

    static func q3_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        // layout: hmask[32], qs[64], scales[12], d
        var levels = [Int8](repeating: 0, count: 256), scales = [Float](repeating: 0, count: 16)
        var maxScale: Float = 0, amax: Float = 0
        levels.withUnsafeMutableBufferPointer { L in
            for j in 0 ..< 16 {
                scales[j] = q3Levels(16, 4, x + 16 * j, L.baseAddress! + 16 * j)
                if abs(scales[j]) > amax {
                    amax = abs(scales[j])
                    maxScale = scales[j]
                }
            }
        }
        let bytes = y.assumingMemoryBound(to: UInt8.self)
        let hmask = bytes, qs = bytes + 32, sc = bytes + 96
        for j in 0 ..< 12 { sc[j] = 0 }
        if maxScale != 0 {
            let iscale = -32 / maxScale
            for j in 0 ..< 16 {
                var l = Int8(truncatingIfNeeded: nearestInt(iscale * scales[j]))
                l = Swift.max(-32, Swift.min(31, l)) + 32
                if j < 8 { sc[j] = UInt8(bitPattern: l) & 0xF } else { sc[j - 8] |= (UInt8(bitPattern: l) & 0xF) << 4 }
                l >>= 4
                sc[j % 4 + 8] |= UInt8(bitPattern: l) << (2 * (j / 4))
            }
            storeF16(1 / iscale, y, 108)
        } else {
            storeF16(0, y, 108)
        }
        let d = loadF16(y, 108)
        for j in 0 ..< 16 {
            let low = j < 8 ? sc[j] & 0xF : sc[j - 8] >> 4
            let s = Int8(bitPattern: low | ((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4) - 32
            let dj = d * Float(s)
            if dj == 0 { continue }
            for i in 0 ..< 16 {
                levels[16 * j + i] = Int8(Swift.max(-4, Swift.min(3, nearestInt(x[16 * j + i] / dj))) + 4)
            }
        }
        for j in 0 ..< 32 { hmask[j] = 0 }
        var m = 0
        var hm: UInt8 = 1
        for j in 0 ..< 256 {
            if levels[j] > 3 {
                hmask[m] |= hm
                levels[j] -= 4
            }
            m += 1
            if m == 32 {
                m = 0
                hm = hm &<< 1
            }
        }
        for j in stride(from: 0, to: 256, by: 128) {
            for l in 0 ..< 32 {
                let a = UInt8(bitPattern: levels[j + l]), b = UInt8(bitPattern: levels[j + l + 32])
                let c = UInt8(bitPattern: levels[j + l + 64]), e = UInt8(bitPattern: levels[j + l + 96])
                qs[j / 4 + l] = a | b << 2 | c << 4 | e << 6
            }
        }
    }

    /// Q4_K and Q5_K: eight 32-element sub-blocks with 6-bit scales and mins.
    static func kQuantAffine(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, nmax: Int32, rmin: Float, nstep: Int,
                             levels: inout [UInt8]) {
        var aux = [UInt8](repeating: 0, count: 32), weights = [Float](repeating: 0, count: 32)
        var mins = [Float](repeating: 0, count: 8), scales = [Float](repeating: 0, count: 8)
        var maxScale: Float = 0, maxMin: Float = 0
        for j in 0 ..< 8 {
            var sumX2: Float = 0
            for l in 0 ..< 32 { sumX2 += x[32 * j + l] * x[32 * j + l] }
            let avX = (sumX2 / 32).squareRoot()
            for l in 0 ..< 32 { weights[l] = avX + abs(x[32 * j + l]) }
            scales[j] = levels.withUnsafeMutableBufferPointer { L in
                affineLevels(32, nmax, x + 32 * j, weights, L.baseAddress! + 32 * j, &mins[j], &aux, rmin, 0.1, nstep, false)
            }
            if scales[j] > maxScale { maxScale = scales[j] }
            if mins[j] > maxMin { maxMin = mins[j] }
        }
        let invScale: Float = maxScale > 0 ? 63 / maxScale : 0
        let invMin: Float = maxMin > 0 ? 63 / maxMin : 0
        let sc = y.assumingMemoryBound(to: UInt8.self) + 4
        for j in 0 ..< 12 { sc[j] = 0 }
        for j in 0 ..< 8 {
            let ls = Swift.min(63, UInt8(truncatingIfNeeded: nearestInt(invScale * scales[j])))
            let lm = Swift.min(63, UInt8(truncatingIfNeeded: nearestInt(invMin * mins[j])))
            if j < 4 {
                sc[j] = ls
                sc[j + 4] = lm
            } else {
                sc[j + 4] = (ls & 0xF) | (lm & 0xF) << 4
                sc[j - 4] |= (ls >> 4) << 6
                sc[j] |= (lm >> 4) << 6
            }
        }
        storeF16(maxScale / 63, y, 0)
        storeF16(maxMin / 63, y, 2)
        let d = loadF16(y, 0), dmin = loadF16(y, 2)
        for j in 0 ..< 8 {
            let (s, m) = kQuantScaleMin(UnsafeRawPointer(sc), j)
            let dj = d * Float(s)
            if dj == 0 { continue }
            let dm = dmin * Float(m)
            for i in 0 ..< 32 {
                levels[32 * j + i] = UInt8(Swift.max(0, Swift.min(nmax, nearestInt((x[32 * j + i] + dm) / dj))))
            }
        }
    }

    static func q4_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        // layout: d, dmin, scales[12], qs[128]
        var levels = [UInt8](repeating: 0, count: 256)
        kQuantAffine(x, y, nmax: 15, rmin: -1, nstep: 20, levels: &levels)
        let qs = y.assumingMemoryBound(to: UInt8.self) + 16
        for j in stride(from: 0, to: 256, by: 64) {
            for l in 0 ..< 32 { qs[j / 2 + l] = levels[j + l] | levels[j + l + 32] << 4 }
        }
    }

    static func q5_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        // layout: d, dmin, scales[12], qh[32], qs[128]
        var levels = [UInt8](repeating: 0, count: 256)
        kQuantAffine(x, y, nmax: 31, rmin: -0.5, nstep: 15, levels: &levels)
        let qh = y.assumingMemoryBound(to: UInt8.self) + 16, ql = qh + 32
        for j in 0 ..< 32 { qh[j] = 0 }
        var m1: UInt8 = 1, m2: UInt8 = 2
        for n in stride(from: 0, to: 256, by: 64) {
            for j in 0 ..< 32 {
                var l1 = levels[n + j], l2 = levels[n + j + 32]
                if l1 > 15 {
                    l1 -= 16
                    qh[j] |= m1
                }
                if l2 > 15 {
                    l2 -= 16
                    qh[j] |= m2
                }
                ql[n / 2 + j] = l1 | l2 << 4
            }
            m1 = m1 &<< 2
            m2 = m2 &<< 2
        }
    }

    static func q6_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        // layout: ql[128], qh[64], scales[16] (int8), d
        var levels = [Int8](repeating: 0, count: 256), scales = [Float](repeating: 0, count: 16)
        var maxScale: Float = 0, maxAbsScale: Float = 0
        levels.withUnsafeMutableBufferPointer { L in
            for j in 0 ..< 16 {
                scales[j] = symmetricLevels(16, 32, x + 16 * j, L.baseAddress! + 16 * j)
                if abs(scales[j]) > maxAbsScale {
                    maxAbsScale = abs(scales[j])
                    maxScale = scales[j]
                }
            }
        }
        let bytes = y.assumingMemoryBound(to: UInt8.self)
        if maxAbsScale < groupMaxEps {
            for i in 0 ..< 210 { bytes[i] = 0 }
            return
        }
        let iscale = -128 / maxScale
        storeF16(1 / iscale, y, 208)
        let sc = UnsafeMutableRawPointer(bytes + 192).assumingMemoryBound(to: Int8.self)
        for j in 0 ..< 16 { sc[j] = Int8(truncatingIfNeeded: Swift.min(127, nearestInt(iscale * scales[j]))) }
        let d = loadF16(y, 208)
        for j in 0 ..< 16 {
            let dj = d * Float(sc[j])
            if dj == 0 { continue }
            for i in 0 ..< 16 {
                levels[16 * j + i] = Int8(Swift.max(-32, Swift.min(31, nearestInt(x[16 * j + i] / dj))) + 32)
            }
        }
        let ql = bytes, qh = bytes + 128
        for j in stride(from: 0, to: 256, by: 128) {
            for l in 0 ..< 32 {
                let l0 = UInt8(bitPattern: levels[j + l]), l1 = UInt8(bitPattern: levels[j + l + 32])
                let l2 = UInt8(bitPattern: levels[j + l + 64]), l3 = UInt8(bitPattern: levels[j + l + 96])
                ql[j / 2 + l] = (l0 & 0xF) | (l2 & 0xF) << 4
                ql[j / 2 + l + 32] = (l1 & 0xF) | (l3 & 0xF) << 4
                qh[j / 4 + l] = (l0 >> 4) | (l1 >> 4) << 2 | (l2 >> 4) << 4 | (l3 >> 4) << 6
            }
        }
    }
}
