#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Discrete Fourier transform of a real frame of even length `n` (any factorization; 400 = 2^4 · 5^2 for Whisper),
/// in double precision: the n/2-point complex transform of the even/odd-packed frame, mixed radix (decimation in
/// time, any radix, twiddles from one table), then the split into the n/2 + 1 non-negative frequencies.
public struct RealFFT: Sendable {
    public let n: Int
    let half: Int
    let factors: [Int]
    let maxFactor: Int
    /// exp(-2πi·j/half), j < half
    let twiddleRe: [Double], twiddleIm: [Double]
    /// exp(-2πi·k/n), k ≤ half (for the split)
    let splitRe: [Double], splitIm: [Double]

    public init(n: Int) {
        precondition(n >= 2 && n % 2 == 0, "RealFFT needs an even length")
        self.n = n
        half = n / 2
        var f: [Int] = [], m = half
        for p in [4, 2, 3, 5] {
            while m % p == 0 { f.append(p); m /= p }
        }
        var p = 7
        while m > 1 {
            while m % p == 0 { f.append(p); m /= p }
            p += 2
        }
        factors = f
        maxFactor = f.max() ?? 1
        twiddleRe = (0 ..< half).map { cos(-2 * Double.pi * Double($0) / Double(n / 2)) }
        twiddleIm = (0 ..< half).map { sin(-2 * Double.pi * Double($0) / Double(n / 2)) }
        splitRe = (0 ... half).map { cos(-2 * Double.pi * Double($0) / Double(n)) }
        splitIm = (0 ... half).map { sin(-2 * Double.pi * Double($0) / Double(n)) }
    }

    /// Doubles of scratch `transform` needs.
    public var scratchCount: Int { 4 * half + 2 * maxFactor }

    /// X[k] = Σ_t x[t]·exp(-2πi·k·t/n) for k = 0 ... n/2 into re/im (n/2 + 1 each).
    public func transform(_ x: UnsafePointer<Double>, re: UnsafeMutablePointer<Double>, im: UnsafeMutablePointer<Double>,
                          scratch: UnsafeMutablePointer<Double>) {
        let m = half
        let inRe = scratch, inIm = scratch + m, zRe = scratch + 2 * m, zIm = scratch + 3 * m
        let tmp = scratch + 4 * m
        for k in 0 ..< m {
            inRe[k] = x[2 * k]
            inIm[k] = x[2 * k + 1]
        }
        twiddleRe.withUnsafeBufferPointer { wr in
            twiddleIm.withUnsafeBufferPointer { wi in
                complexDFT(inRe, inIm, stride: 1, count: m, outRe: zRe, outIm: zIm, factor: 0, wr.baseAddress!, wi.baseAddress!, tmp)
            }
        }
        // split: X[k] = E[k] + W^k·O[k], E = (Z[k] + conj Z[m-k]) / 2, O = -i/2 · (Z[k] - conj Z[m-k])
        for k in 0 ... m {
            let a = k % m, b = (m - k) % m
            let zr = zRe[a], zi = zIm[a], cr = zRe[b], ci = -zIm[b]
            let er = 0.5 * (zr + cr), ei = 0.5 * (zi + ci)
            let dr = zr - cr, di = zi - ci
            let or = 0.5 * di, oi = -0.5 * dr  // -i/2 · d
            let wr = splitRe[k], wi = splitIm[k]
            re[k] = er + (wr * or - wi * oi)
            im[k] = ei + (wr * oi + wi * or)
        }
    }

    /// Out-of-place mixed-radix DIT: the `count`-point DFT of in[0], in[stride], ... into out[0 ..< count].
    private func complexDFT(_ inRe: UnsafePointer<Double>, _ inIm: UnsafePointer<Double>, stride: Int, count: Int,
                            outRe: UnsafeMutablePointer<Double>, outIm: UnsafeMutablePointer<Double>, factor: Int,
                            _ wRe: UnsafePointer<Double>, _ wIm: UnsafePointer<Double>, _ tmp: UnsafeMutablePointer<Double>) {
        if count == 1 {
            outRe[0] = inRe[0]
            outIm[0] = inIm[0]
            return
        }
        let p = factors[factor], m = count / p
        for r in 0 ..< p {
            complexDFT(inRe + r * stride, inIm + r * stride, stride: stride * p, count: m, outRe: outRe + r * m,
                       outIm: outIm + r * m, factor: factor + 1, wRe, wIm, tmp)
        }
        // X[k + q·m] = Σ_r W_count^{r·k} S_r[k] · W_p^{r·q}; the table holds W_half^j, W_count = W_half^(half/count)
        let step = half / count, pStep = half / p
        let tRe = tmp, tIm = tmp + p
        for k in 0 ..< m {
            for r in 0 ..< p {
                let sr = outRe[r * m + k], si = outIm[r * m + k]
                let j = r * k * step
                let cr = wRe[j], ci = wIm[j]
                tRe[r] = sr * cr - si * ci
                tIm[r] = sr * ci + si * cr
            }
            switch p {
            case 2:
                outRe[k] = tRe[0] + tRe[1]; outIm[k] = tIm[0] + tIm[1]
                outRe[k + m] = tRe[0] - tRe[1]; outIm[k + m] = tIm[0] - tIm[1]
            case 4:
                // W_4 = -i
                let ar = tRe[0] + tRe[2], ai = tIm[0] + tIm[2], br = tRe[0] - tRe[2], bi = tIm[0] - tIm[2]
                let cr = tRe[1] + tRe[3], ci = tIm[1] + tIm[3], dr = tRe[1] - tRe[3], di = tIm[1] - tIm[3]
                outRe[k] = ar + cr; outIm[k] = ai + ci
                outRe[k + m] = br + di; outIm[k + m] = bi - dr
                outRe[k + 2 * m] = ar - cr; outIm[k + 2 * m] = ai - ci
                outRe[k + 3 * m] = br - di; outIm[k + 3 * m] = bi + dr
            default:
                for q in 0 ..< p {
                    var xr = 0.0, xi = 0.0
                    for r in 0 ..< p {
                        let j = (r * q) % p * pStep
                        xr += tRe[r] * wRe[j] - tIm[r] * wIm[j]
                        xi += tRe[r] * wIm[j] + tIm[r] * wRe[j]
                    }
                    outRe[k + q * m] = xr
                    outIm[k + q * m] = xi
                }
            }
        }
    }
}
