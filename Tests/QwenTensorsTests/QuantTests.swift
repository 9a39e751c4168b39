import QwenFormats
import QwenTensors
import Testing

/// The weight types of Sources/QwenTensors/Quants.
let quantTypes: [TensorType] = [.q4_1, .q5_0, .q5_1, .iq4_nl, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_xs]

/// Byte offsets of the F16 scale fields in one block of `type` (everything else in a block is free bits).
func f16ScaleOffsets(_ type: TensorType) -> [Int] {
    switch type {
    case .q4_1, .q5_1, .q4_K, .q5_K: return [0, 2]
    case .q5_0, .iq4_nl, .iq4_xs, .q4_0, .q8_0: return [0]
    case .q2_K: return [80, 82]
    case .q3_K: return [108]
    case .q6_K: return [208]
    default: return []
    }
}

/// `blocks` random blocks of `type`: random quant and sub-scale bits, F16 scales of random sign and magnitude
/// around `scale` (a 256-element row of these has a dot product of order 1 with unit activations).
func randomBlocks(_ type: TensorType, _ blocks: Int, rng: inout TestRandom, scale: Float = 0.01) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: blocks * type.blockBytes)
    for i in out.indices { out[i] = UInt8(truncatingIfNeeded: rng.next() >> 32) }
    for b in 0 ..< blocks {
        for o in f16ScaleOffsets(type) {
            let v = rng.float() * scale
            let h = floatToF16(v)
            out[b * type.blockBytes + o] = UInt8(h & 0xFF)
            out[b * type.blockBytes + o + 1] = UInt8(h >> 8)
        }
    }
    return out
}

func dequantized(_ type: TensorType, _ bytes: [UInt8], _ n: Int) throws -> [Float] {
    var out = [Float](repeating: .nan, count: n)
    try bytes.withUnsafeBytes { src in
        try out.withUnsafeMutableBufferPointer { try RowKernels.dequantizeRow(type, src.baseAddress!, $0.baseAddress!, n) }
    }
    return out
}

/// Activations prepared in `format` (.q8_0 or .q8_K) on `path`.
func prepared(_ x: [Float], _ format: ActivationFormat, path: KernelPath) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: format.rowBytes(columns: x.count))
    x.withUnsafeBufferPointer { xb in out.withUnsafeMutableBytes { format.quantize(xb.baseAddress!, into: $0.baseAddress!, columns: x.count, path: path) } }
    return out
}

/// The floats a prepared activation row stands for.
func activationValues(_ bytes: [UInt8], _ format: ActivationFormat, _ n: Int) -> [Float] {
    bytes.withUnsafeBytes { p in
        (0 ..< n).map { i -> Float in
            switch format {
            case .q8_0:
                let b = i / 32
                return f16ToFloat(p.loadUnaligned(fromByteOffset: b * 34, as: UInt16.self)) * Float(p.load(fromByteOffset: b * 34 + 2 + i % 32, as: Int8.self))
            case .q8_1:
                let b = i / 32
                return f16ToFloat(p.loadUnaligned(fromByteOffset: b * 36, as: UInt16.self)) * Float(p.load(fromByteOffset: b * 36 + 4 + i % 32, as: Int8.self))
            case .q8_K:
                let b = i / 256
                return p.loadUnaligned(fromByteOffset: b * 292, as: Float.self) * Float(p.load(fromByteOffset: b * 292 + 4 + i % 256, as: Int8.self))
            case .f32:
                return .nan
            }
        }
    }
}

/// The exact (double) value a row kernel should give for weight row `w` and prepared activations `xq`, and Σ|terms|
/// (for tolerances): Σ dequantized weight · dequantized activation, except that Q8_1 activations carry their block sum
/// as an F16 s = d·Σq and the min term of Q4_1/Q5_1 is m·s, as llama.cpp computes it.
func exactDot(_ type: TensorType, _ w: [UInt8], _ xq: [UInt8], _ n: Int) throws -> (value: Double, magnitude: Double) {
    let format = WeightKernels.lookup(type, path: .portable)!.activation
    let xf = activationValues(xq, format, n)
    var value = 0.0, magnitude = 0.0
    if format != .q8_1 {
        let wf = try dequantized(type, w, n)
        for i in 0 ..< n {
            let p = Double(wf[i]) * Double(xf[i])
            value += p
            magnitude += abs(p)
        }
        return (value, magnitude)
    }
    // the quants: the same blocks with d = 1, m = 0 dequantize to them
    let bb = type.blockBytes
    var unit = w
    for b in 0 ..< n / 32 { unit[b * bb] = 0x00; unit[b * bb + 1] = 0x3C; unit[b * bb + 2] = 0; unit[b * bb + 3] = 0 }
    let q = try dequantized(type, unit, n)
    xq.withUnsafeBytes { xp in
        w.withUnsafeBytes { wp in
            for b in 0 ..< n / 32 {
                let d = Double(f16ToFloat(wp.loadUnaligned(fromByteOffset: b * bb, as: UInt16.self)))
                let m = Double(f16ToFloat(wp.loadUnaligned(fromByteOffset: b * bb + 2, as: UInt16.self)))
                let s = Double(f16ToFloat(xp.loadUnaligned(fromByteOffset: b * 36 + 2, as: UInt16.self)))
                for j in 0 ..< 32 {
                    let p = d * Double(q[b * 32 + j]) * Double(xf[b * 32 + j])
                    value += p
                    magnitude += abs(p)
                }
                value += m * s
                magnitude += abs(m * s)
            }
        }
    }
    return (value, magnitude)
}

func rowDot(_ type: TensorType, _ w: [UInt8], _ xq: [UInt8], _ n: Int, path: KernelPath) -> Float {
    let k = WeightKernels.lookup(type, path: path)!
    return w.withUnsafeBytes { wp in xq.withUnsafeBytes { k.dot(wp.baseAddress!, $0.baseAddress!, n) } }
}

@Suite struct QuantTests {
    @Test func everyTypeHasKernelsOnBothPaths() {
        for type in quantTypes {
            let expected: ActivationFormat = type == .q4_1 || type == .q5_1 ? .q8_1 : type.blockSize == 32 ? .q8_0 : .q8_K
            #expect(WeightKernels.lookup(type, path: .portable)?.activation == expected, "\(type.name)")
            #expect(WeightKernels.lookup(type, path: .simd)?.activation == expected, "\(type.name)")
            #expect(type.blockSize == (type.blockSize == 32 ? 32 : 256))
        }
    }

    /// The SIMD row dot equals the portable one (same integer sums, float rounding only), and both equal the
    /// exact dot of the dequantized weights with the dequantized activations.
    @Test(arguments: quantTypes)
    func simdDotMatchesPortableAndDequantizedDot(type: TensorType) throws {
        // odd block counts too (the 32-element kernels alternate two accumulators)
        for (n, seed) in [(32, 6), (96, 7), (288, 8), (256, 1), (768, 9), (512, 2), (1024, 3), (4864, 4), (8960, 5)]
        where n % type.blockSize == 0 {
            var rng = TestRandom(UInt64(seed) &* 7919 &+ UInt64(type.rawValue))
            let w = randomBlocks(type, n / type.blockSize, rng: &rng)
            var x = rng.floats(n, scale: 2)
            if n >= 512 { for j in 256 ..< 512 { x[j] = 0 } }  // an all-zero activation block
            if n >= 96 { for j in 64 ..< 96 { x[j] = j % 3 == 0 ? -2 : 2 } }  // quants at ±127
            let format = WeightKernels.lookup(type, path: .portable)!.activation
            let xqPortable = prepared(x, format, path: .portable), xq = prepared(x, format, path: .simd)
            #expect(xq == xqPortable, "\(type.name): activation quantization differs between paths")
            let p = rowDot(type, w, xq, n, path: .portable), s = rowDot(type, w, xq, n, path: .simd)
            let (exact, magnitude) = try exactDot(type, w, xq, n)
            let tolerance = 2e-6 * magnitude + 1e-30
            #expect(abs(Double(p) - exact) <= tolerance, "\(type.name) n=\(n): portable \(p) vs exact \(exact)")
            #expect(abs(Double(s) - exact) <= tolerance, "\(type.name) n=\(n): simd \(s) vs exact \(exact)")
            #expect(abs(s - p) <= Float(tolerance), "\(type.name) n=\(n): simd \(s) vs portable \(p)")
        }
    }

    /// Extreme blocks, where integer overflow or byte saturation would show: every quant and sub-scale at its
    /// largest or smallest value (fills 0xFF, 0x00, 0x55, 0xAA, and random bytes), small and the largest finite F16
    /// scales of both signs, against activations whose quants are all ±127 (and mixed). The SIMD dot equals the
    /// portable one and both equal the exact dot of the dequantized operands.
    @Test(arguments: quantTypes)
    func extremeBlocksGiveTheSameDotOnBothPaths(type: TensorType) throws {
        let n = 1024, blocks = n / type.blockSize
        var rng = TestRandom(31337 &+ UInt64(type.rawValue))
        let format = WeightKernels.lookup(type, path: .portable)!.activation
        let activations: [[Float]] = [
            [Float](repeating: 1, count: n),                                   // all quants -127 (Q8_K) / +127 (Q8_0)
            (0 ..< n).map { $0 % 2 == 0 ? 3 : -3 },                           // alternating ±127
            (0 ..< n).map { $0 % 7 == 0 ? -5 : 5 },
            rng.floats(n, scale: 100),
        ]
        let scalePairs: [(UInt16, UInt16)] = [(0x3C00, 0xBC00), (0xBC00, 0x3C00), (0x7BFF, 0xFBFF), (0xFBFF, 0x7BFF), (0x0001, 0x8400),
                                              (0x0000, 0x3C00)]
        for fill in [UInt8(0xFF), 0x00, 0x55, 0xAA, nil] {
            for (d, m) in scalePairs {
                var w = fill.map { [UInt8](repeating: $0, count: blocks * type.blockBytes) } ?? randomBlocks(type, blocks, rng: &rng)
                for b in 0 ..< blocks {
                    for (k, o) in f16ScaleOffsets(type).enumerated() {
                        let v = k == 0 ? d : m
                        w[b * type.blockBytes + o] = UInt8(v & 0xFF)
                        w[b * type.blockBytes + o + 1] = UInt8(v >> 8)
                    }
                }
                for x in activations {
                    let xq = prepared(x, format, path: .simd)
                    #expect(xq == prepared(x, format, path: .portable))
                    let (exact, magnitude) = try exactDot(type, w, xq, n)
                    let p = rowDot(type, w, xq, n, path: .portable), s = rowDot(type, w, xq, n, path: .simd)
                    let tolerance = 2e-6 * magnitude + 1e-30
                    let what = "\(type.name) fill \(fill.map { String($0, radix: 16) } ?? "random") d 0x\(String(d, radix: 16)) m 0x\(String(m, radix: 16))"
                    #expect(abs(Double(p) - exact) <= tolerance, "\(what): portable \(p) vs exact \(exact)")
                    #expect(abs(Double(s) - exact) <= tolerance, "\(what): simd \(s) vs exact \(exact)")
                }
            }
        }
    }

    /// Against float activations the only extra error is the activation rounding (half a step per element).
    @Test(arguments: quantTypes)
    func dotApproximatesTheFloatDot(type: TensorType) throws {
        let n = 2048
        var rng = TestRandom(4242 &+ UInt64(type.rawValue))
        let w = randomBlocks(type, n / type.blockSize, rng: &rng)
        let x = rng.floats(n)
        let format = WeightKernels.lookup(type)!.activation
        let xq = prepared(x, format, path: .best)
        let wf = try dequantized(type, w, n)
        var exact = 0.0, bound = 0.0
        let block = format == .q8_K ? 256 : 32
        for b in 0 ..< n / block {
            let amax = x[b * block ..< (b + 1) * block].map(abs).max()!
            for i in b * block ..< (b + 1) * block {
                exact += Double(wf[i]) * Double(x[i])
                bound += Double(abs(wf[i])) * Double(amax) / 127 * 0.5
            }
        }
        if format == .q8_1 {
            // plus the F16 rounding of each block's s in the min term (half an ulp of |m · s|)
            let bb = type.blockBytes
            w.withUnsafeBytes { wp in xq.withUnsafeBytes { xp in
                for b in 0 ..< n / 32 {
                    let m = f16ToFloat(wp.loadUnaligned(fromByteOffset: b * bb + 2, as: UInt16.self))
                    let s = f16ToFloat(xp.loadUnaligned(fromByteOffset: b * 36 + 2, as: UInt16.self))
                    bound += Double(abs(m * s)) * 0x1p-11
                }
            } }
        }
        let got = rowDot(type, w, xq, n, path: .best)
        #expect(abs(Double(got) - exact) <= bound * 1.01 + 1e-6, "\(type.name): \(got) vs \(exact), bound \(bound)")
    }

    @Test(arguments: [256, 512, 2048, 4864, 8960])
    func q8KQuantizationIsTheSameOnBothPathsAndMatchesTheReference(n: Int) {
        guard n % 256 == 0 else { return }
        var rng = TestRandom(UInt64(n) &+ 17)
        var x = rng.floats(n, scale: 5)
        x[3] = -7  // the element of largest magnitude is negative in block 0
        x[300 % n] = 0
        if n >= 512 {
            for j in 256 ..< 512 { x[j] = 0 }  // all-zero block
        }
        if n >= 1024 {
            x[512] = 6; x[600] = -6  // a tie in magnitude: the first one gives the sign
            for j in 768 ..< 1024 { x[j] = Float(j - 896) * 1e-3 }  // exact ties at .5 steps
        }
        let s = prepared(x, .q8_K, path: .simd), p = prepared(x, .q8_K, path: .portable)
        #expect(s == p)
        // reference formula, written out independently
        p.withUnsafeBytes { y in
            for b in 0 ..< n / 256 {
                let blk = Array(x[b * 256 ..< (b + 1) * 256])
                var amax: Float = 0, mx: Float = 0
                for v in blk where abs(v) > amax { amax = abs(v); mx = v }
                let d = y.loadUnaligned(fromByteOffset: b * 292, as: Float.self)
                if amax == 0 { #expect(d == 0); continue }
                let iscale = -127 / mx
                #expect(d == 1 / iscale)
                for j in 0 ..< 256 {
                    let q = Int8(min(127, (iscale * blk[j]).rounded(.toNearestOrEven)))
                    #expect(y.load(fromByteOffset: b * 292 + 4 + j, as: Int8.self) == q)
                }
                for g in 0 ..< 16 {
                    var sum = 0
                    for j in 0 ..< 16 { sum += Int(y.load(fromByteOffset: b * 292 + 4 + g * 16 + j, as: Int8.self)) }
                    #expect(Int(y.loadUnaligned(fromByteOffset: b * 292 + 260 + 2 * g, as: Int16.self)) == sum)
                }
            }
        }
    }

    /// NaN/Inf scales, NaN/Inf activations and extreme bytes must never trap (results may be NaN).
    @Test(arguments: quantTypes)
    func hostileBlocksDoNotTrap(type: TensorType) throws {
        let n = 512
        var rng = TestRandom(99)
        for bad: UInt16 in [0x7E00, 0x7C00, 0xFC00, 0x7BFF, 0x0001, 0x8000] {  // NaN, +Inf, -Inf, max, subnormal, -0
            var w = randomBlocks(type, n / type.blockSize, rng: &rng)
            for b in 0 ..< n / type.blockSize {
                for o in f16ScaleOffsets(type) { w[b * type.blockBytes + o] = UInt8(bad & 0xFF); w[b * type.blockBytes + o + 1] = UInt8(bad >> 8) }
            }
            _ = try dequantized(type, w, n)
            var x = rng.floats(n)
            x[1] = .nan; x[40] = .infinity; x[300] = -.infinity; x[301] = .greatestFiniteMagnitude
            let format = WeightKernels.lookup(type)!.activation
            // (RowKernels.quantizeQ8_0Portable, shared code, still traps on NaN: Q8_0 activations go through .simd)
            for path in format != .q8_0 ? [KernelPath.portable, .simd] : [.simd] {
                let xq = prepared(x, format, path: path)
                _ = rowDot(type, w, xq, n, path: .portable)
                _ = rowDot(type, w, xq, n, path: .simd)
            }
            if format != .q8_0 {
                #expect(prepared(x, format, path: .simd) == prepared(x, format, path: .portable), "\(format) quantization of NaN/Inf differs between paths")
            }
        }
        // all-0xFF and all-0x00 blocks (extreme quants, -0/NaN scale patterns)
        for fill: UInt8 in [0x00, 0xFF] {
            let w = [UInt8](repeating: fill, count: n / type.blockSize * type.blockBytes)
            _ = try dequantized(type, w, n)
            let xq = prepared(rng.floats(n), WeightKernels.lookup(type)!.activation, path: .portable)
            _ = rowDot(type, w, xq, n, path: .portable)
            _ = rowDot(type, w, xq, n, path: .simd)
        }
    }

    /// `linear` over the table entries: every path and thread count gives the reference product.
    @Test(arguments: quantTypes)
    func linearMatchesTheDequantizedProduct(type: TensorType) throws {
        let rows = 40, cols = 512, tokens = 3
        var rng = TestRandom(777 &+ UInt64(type.rawValue))
        let stored = randomBlocks(type, rows * cols / type.blockSize, rng: &rng, scale: 0.004)
        let x = rng.floats(tokens * cols), bias = rng.floats(rows)
        let rowBytes = type.byteCount(elements: cols)!
        let storage = UnsafeMutableRawPointer.allocate(byteCount: stored.count, alignment: 64)
        defer { storage.deallocate() }
        stored.withUnsafeBytes { storage.copyMemory(from: $0.baseAddress!, byteCount: stored.count) }
        let matrix = try WeightMatrix(TensorData(name: "w", type: type, shape: [rows, cols], data: storage, byteCount: stored.count))
        let format = matrix.kernels.activation
        var reference = [Float](repeating: 0, count: tokens * rows)
        for t in 0 ..< tokens {
            let xq = prepared(Array(x[t * cols ..< (t + 1) * cols]), format, path: .portable)
            for r in 0 ..< rows {
                let s = try exactDot(type, Array(stored[r * rowBytes ..< (r + 1) * rowBytes]), xq, cols).value
                reference[t * rows + r] = Float(s) + bias[r]
            }
        }
        for path in [KernelPath.portable, .simd] {
            for threads in [1, 2] {
                let pool = threads > 1 ? ThreadPool(threads: threads) : nil
                var y = [Float](repeating: .nan, count: tokens * rows)
                var scratch = [UInt8](repeating: 0, count: matrix.scratchBytes(tokens: tokens) + 64)
                x.withUnsafeBufferPointer { xp in bias.withUnsafeBufferPointer { bp in y.withUnsafeMutableBufferPointer { yp in
                    scratch.withUnsafeMutableBytes { sp in
                        linear(matrix, input: xp.baseAddress!, tokens: tokens, output: yp.baseAddress!, bias: bp.baseAddress!,
                               scratch: sp, pool: pool, path: path)
                    }
                } } }
                for i in 0 ..< tokens * rows {
                    #expect(abs(y[i] - reference[i]) <= 1e-4 * max(1, abs(reference[i])), "\(type.name) \(path) threads \(threads) [\(i)]")
                }
            }
        }
    }
}
