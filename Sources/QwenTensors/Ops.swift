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
        for i in 0 ..< count {
            let g = gate[i]
            gate[i] = g / (1 + expf(-g)) * up[i]
        }
    }

    /// In-place softmax over `n` values; returns nothing, leaves probabilities.
    public static func softmax(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        guard n > 0 else { return }
        var m = -Float.infinity
        for i in 0 ..< n { m = max(m, x[i]) }
        var sum: Float = 0
        for i in 0 ..< n {
            let e = expf(x[i] - m)
            x[i] = e
            sum += e
        }
        let inv = 1 / sum
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
