#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Element-wise and per-row operations on F32 activations (Swift SIMD; no allocation).
public enum Ops {
    /// y = x / sqrt(mean(x²) + eps) · weight, for `rows` rows of `n` (in place allowed).
    public static func rmsNorm(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                               n: Int, rows: Int = 1, eps: Float) {
        for r in 0 ..< rows {
            let xr = x + r * n, yr = y + r * n
            let ss = RowKernels.dotF32(n, xr, xr)
            let scale = 1 / (ss / Float(n) + eps).squareRoot()
            for i in 0 ..< n { yr[i] = weight[i] * (xr[i] * scale) }
        }
    }

    /// y = (x - mean) / sqrt(var + eps) · weight + bias (LayerNorm over rows of `n`).
    public static func layerNorm(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                                 _ y: UnsafeMutablePointer<Float>, n: Int, rows: Int = 1, eps: Float) {
        for r in 0 ..< rows {
            let xr = x + r * n, yr = y + r * n
            var mean: Float = 0
            for i in 0 ..< n { mean += xr[i] }
            mean /= Float(n)
            var variance: Float = 0
            for i in 0 ..< n { let d = xr[i] - mean; variance += d * d }
            let scale = 1 / (variance / Float(n) + eps).squareRoot()
            for i in 0 ..< n { yr[i] = (xr[i] - mean) * scale * weight[i] + (bias?[i] ?? 0) }
        }
    }

    /// a[i] += b[i]
    public static func add(_ a: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, count: Int) {
        RowKernels.axpyF32(count, 1, b, a)
    }

    /// gate[i] = silu(gate[i]) · up[i]   (SwiGLU)
    public static func siluMul(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count: Int) {
        let g = UnsafeMutableRawPointer(gate), u = UnsafeRawPointer(up)
        var i = 0
        while i + 8 <= count {
            let x = g.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            let y = x / (1 + exp8(-x)) * u.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            g.storeBytes(of: y, toByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        while i < count {
            gate[i] = gate[i] / (1 + expf(-gate[i])) * up[i]
            i += 1
        }
    }

    /// x[i] = exp(x[i] - shift); returns Σ of the results.
    @discardableResult
    public static func expShifted(_ x: UnsafeMutablePointer<Float>, _ n: Int, shift: Float) -> Float {
        let p = UnsafeMutableRawPointer(x)
        var sum = SIMD8<Float>()
        var i = 0
        while i + 8 <= n {
            let e = exp8(p.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) - shift)
            p.storeBytes(of: e, toByteOffset: i * 4, as: SIMD8<Float>.self)
            sum += e
            i += 8
        }
        var total = sum.sum()
        while i < n {
            x[i] = expf(x[i] - shift)
            total += x[i]
            i += 1
        }
        return total
    }

    /// e^x for 8 floats: x = n·ln2 + r, e^r by a degree-6 polynomial on |r| ≤ ln2/2 (Cephes' coefficients),
    /// 2^n assembled in the exponent bits. Relative error about 1e-7; inputs are clamped to the range
    /// where the result is a normal float (below e^-87.3 gives 2^-126-ish, not 0).
    @inline(__always)
    public static func exp8(_ input: SIMD8<Float>) -> SIMD8<Float> {
        // clamped by mask selects: the stdlib's generic `clamped` is an out-of-line call per 4 lanes
        let low = SIMD8<Float>(repeating: -87.3), high = SIMD8<Float>(repeating: 88.3)
        let x = input.replacing(with: low, where: input .< low).replacing(with: high, where: input .> high)
        let shifter = SIMD8<Float>(repeating: 12_582_912)  // 1.5 · 2^23: adding it rounds to an integer
        let t = x * 1.442_695_04 + shifter
        let n = t - shifter
        let r = x - n * 0.693_359_375 + n * 2.121_944_4e-4
        var p = SIMD8<Float>(repeating: 1.987_569_15e-4)
        p = p * r + 1.398_199_95e-3
        p = p * r + 8.333_451_9e-3
        p = p * r + 4.166_579_59e-2
        p = p * r + 0.166_666_655
        p = p * r + 0.500_000_01
        p = p * (r * r) + r + 1
        let bits = (unsafeBitCast(t, to: SIMD8<UInt32>.self) &- 0x4B40_0000 &+ 127) &<< 23
        return p * unsafeBitCast(bits, to: SIMD8<Float>.self)
    }

    /// x = x/2 · (1 + erf(x/√2)) in place (PyTorch's exact GELU). erf by Abramowitz & Stegun 7.1.26
    /// (|error| < 1.5e-7) on 8 lanes.
    public static func gelu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        let raw = UnsafeMutableRawPointer(x)
        var i = 0
        while i + 8 <= count {
            let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            raw.storeBytes(of: gelu8(v), toByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        if i < count {
            var tail = SIMD8<Float>(repeating: 0)
            for j in i ..< count { tail[j - i] = x[j] }
            let r = gelu8(tail)
            for j in i ..< count { x[j] = r[j - i] }
        }
    }

    @inline(__always)
    public static func gelu8(_ v: SIMD8<Float>) -> SIMD8<Float> {
        let z = v * 0.707_106_781_186_547_5
        let negative = z .< SIMD8<Float>(repeating: 0)
        let a = z.replacing(with: -z, where: negative)
        let t = 1 / (1 + 0.327_591_1 * a)
        var p = SIMD8<Float>(repeating: 1.061_405_429)
        p = p * t - 1.453_152_027
        p = p * t + 1.421_413_741
        p = p * t - 0.284_496_736
        p = p * t + 0.254_829_592
        p = p * t
        let e = 1 - p * exp8(-(a * a))
        let erf = e.replacing(with: -e, where: negative)
        return 0.5 * v * (1 + erf)
    }

    /// The largest of `n` values (-infinity for none), 8 lanes at a time.
    public static func maximum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        let p = UnsafeRawPointer(x)
        var top = SIMD8<Float>(repeating: -.infinity)
        var i = 0
        while i + 8 <= n {
            let v = p.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            top.replace(with: v, where: v .> top)
            i += 8
        }
        var result = -Float.infinity
        for lane in 0 ..< 8 where top[lane] > result { result = top[lane] }
        while i < n {
            if x[i] > result { result = x[i] }
            i += 1
        }
        return result
    }

    /// In-place softmax over `n` values; returns nothing, leaves probabilities.
    public static func softmax(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        guard n > 0 else { return }
        let inv = 1 / expShifted(x, n, shift: maximum(x, n))
        for i in 0 ..< n { x[i] *= inv }
    }
}

/// Rotary position embedding over a head's full dimension, "NeoX" layout (pairs i and i + d/2),
/// as Hugging Face's rotate_half applies it. Angles are computed in Float like the reference.
public struct RotaryEmbedding: Sendable {
    public let dimension: Int
    public let inverseFrequencies: [Float]

    public init(dimension: Int, theta: Float) {
        self.dimension = dimension
        // 1 / theta^(2i/d), computed in Float as torch does
        inverseFrequencies = (0 ..< dimension / 2).map { i in
            1 / Float(pow(Double(theta), Double(Float(2 * i) / Float(dimension))))
        }
    }

    /// Writes cos/sin of position `p` for each of the d/2 frequencies.
    public func angles(position p: Int, cos c: UnsafeMutablePointer<Float>, sin s: UnsafeMutablePointer<Float>) {
        let fp = Float(p)
        for i in 0 ..< dimension / 2 {
            let a = Double(fp * inverseFrequencies[i])
            c[i] = Float(Glibc.cos(a))
            s[i] = Float(Glibc.sin(a))
        }
    }

    /// M-RoPE (Qwen2-VL): the d/2 frequencies fall into consecutive `sections` (temporal, height, width), each
    /// taking its angle from its own component of the position; `position(s)` gives component s.
    public func angles(sections: [Int], position: (Int) -> Int, cos c: UnsafeMutablePointer<Float>, sin s: UnsafeMutablePointer<Float>) {
        var i = 0
        for (section, width) in sections.enumerated() {
            let fp = Float(position(section))
            for _ in 0 ..< width where i < dimension / 2 {
                let a = Double(fp * inverseFrequencies[i])
                c[i] = Float(Glibc.cos(a))
                s[i] = Float(Glibc.sin(a))
                i += 1
            }
        }
        while i < dimension / 2 {  // frequencies past the sections (none in released configs): the last component
            let a = Double(Float(position(sections.count - 1)) * inverseFrequencies[i])
            c[i] = Float(Glibc.cos(a))
            s[i] = Float(Glibc.sin(a))
            i += 1
        }
    }

    /// Rotates `heads` consecutive head vectors of `dimension` floats in place.
    public func apply(_ x: UnsafeMutablePointer<Float>, heads: Int, cos c: UnsafePointer<Float>, sin s: UnsafePointer<Float>) {
        let half = dimension / 2
        for h in 0 ..< heads {
            let v = x + h * dimension
            for i in 0 ..< half {
                let x0 = v[i], x1 = v[i + half]
                v[i] = x0 * c[i] - x1 * s[i]
                v[i + half] = x1 * c[i] + x0 * s[i]
            }
        }
    }
}
