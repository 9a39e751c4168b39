import QwenFormats
import QwenTensors
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The settings of transformers' `WhisperFeatureExtractor` (a model's `preprocessor_config.json`); the defaults
/// are Qwen2-Audio's: 128 mel bins, 16 kHz, 400-point FFT, hop 160, 30-second windows.
public struct AudioFeatureSettings: Sendable, Equatable {
    public var melBins = 128
    public var sampleRate = 16_000
    public var fftSize = 400
    public var hopLength = 160
    public var chunkSeconds = 30
    public var paddingValue: Float = 0

    public init() {}

    /// Reads `feature_size`, `sampling_rate`, `n_fft`, `hop_length`, `chunk_length`, `padding_value`.
    public init(preprocessorConfig json: JSON) throws {
        if let t = json["feature_extractor_type"]?.string, t != "WhisperFeatureExtractor" {
            throw QwenError.unsupported("feature extractor '\(t)' is not supported (WhisperFeatureExtractor is)")
        }
        melBins = json["feature_size"]?.int ?? melBins
        sampleRate = json["sampling_rate"]?.int ?? sampleRate
        fftSize = json["n_fft"]?.int ?? fftSize
        hopLength = json["hop_length"]?.int ?? hopLength
        chunkSeconds = json["chunk_length"]?.int ?? chunkSeconds
        paddingValue = Float(json["padding_value"]?.double ?? 0)
        if let d = json["dither"]?.double, d != 0 {
            throw QwenError.unsupported("feature extractor dithering (dither \(d)) is not supported")
        }
        try validate()
    }

    /// Samples of one window (n_samples) and feature frames per window (nb_max_frames).
    public var windowSamples: Int { chunkSeconds * sampleRate }
    public var windowFrames: Int { windowSamples / hopLength }

    public func validate() throws {
        guard melBins > 0, melBins <= 1024, fftSize >= 8, fftSize <= 1 << 16, fftSize % 2 == 0, hopLength > 0,
              hopLength <= fftSize * 4, chunkSeconds > 0, chunkSeconds <= 600, sampleRate == AudioClip.sampleRate,
              windowSamples > fftSize, paddingValue.isFinite else {
            throw QwenError.unsupported("unsupported audio feature settings \(self) (16 kHz, even n_fft, ...)")
        }
    }
}

/// Log-mel features exactly as transformers' `WhisperFeatureExtractor` computes them for Qwen2-Audio
/// (`padding="max_length"`, `return_attention_mask=True`): the samples are padded (with `padding_value`) or cut to
/// one window; centred STFT frames every `hop_length` samples with reflect padding of n_fft/2 at both ends of the
/// window, a periodic Hann window, |X|², Slaney-style mel filters (Slaney mel scale, area normalised, 0–8000 Hz), log10 of
/// max(mel, 1e-10), floored at the window's maximum − 8, then (x + 4) / 4. The last STFT frame is dropped (3000
/// frames for 30 s). Frames `< validFrames` (ceil(samples / hop)) belong to the clip: the reference's attention mask.
///
/// Computed in double precision (the reference in float32 differs by ~1e-7 relative); frames whose samples are all
/// padding zeros are not transformed (their mel energy is 0).
public final class WhisperFeatureExtractor: @unchecked Sendable {
    public let settings: AudioFeatureSettings
    let fft: RealFFT
    let window: [Double]
    /// per mel bin: first FFT bin and the weights of its nonzero run
    let filterStart: [Int]
    let filterWeights: [[Double]]

    public init(settings s: AudioFeatureSettings = AudioFeatureSettings()) throws {
        try s.validate()
        settings = s
        fft = RealFFT(n: s.fftSize)
        let n = s.fftSize
        // torch.hann_window(n) (periodic), in float32
        window = (0 ..< n).map { Double(Float(0.5 - 0.5 * cos(2 * Double.pi * Double($0) / Double(n)))) }
        let bins = n / 2 + 1
        let dense = Self.melFilters(bins: bins, mels: s.melBins, minHz: 0, maxHz: 8000, sampleRate: s.sampleRate)
        var starts: [Int] = [], weights: [[Double]] = []
        for m in 0 ..< s.melBins {
            let column = (0 ..< bins).map { Double(Float(dense[$0 * s.melBins + m])) }  // float32, as torch uses them
            let first = column.firstIndex { $0 != 0 } ?? 0
            let last = column.lastIndex { $0 != 0 } ?? -1
            starts.append(first)
            weights.append(last >= first ? Array(column[first ... last]) : [])
        }
        filterStart = starts
        filterWeights = weights
    }

    /// Frames of one window that belong to the clip (the reference's attention mask sum) for `samples` samples.
    public func validFrames(samples: Int) -> Int {
        min(settings.windowFrames, (min(samples, settings.windowSamples) + settings.hopLength - 1) / settings.hopLength)
    }

    /// The windows a clip is cut into: consecutive `windowSamples` ranges (the last one shorter). Clips longer than
    /// one window are processed window by window (the reference keeps only the first window).
    public func windows(sampleCount: Int) -> [Range<Int>] {
        let w = settings.windowSamples
        return stride(from: 0, to: max(sampleCount, 1), by: w).map { $0 ..< min(sampleCount, $0 + w) }
    }

    /// Features of one window of samples (at most `windowSamples`; longer input is cut) into `out`,
    /// `[melBins][windowFrames]` floats. Returns the number of valid frames.
    @discardableResult
    public func extract(_ samples: UnsafeBufferPointer<Float>, into out: UnsafeMutablePointer<Float>, pool: ThreadPool? = nil) -> Int {
        let s = settings
        let frames = s.windowFrames, n = s.fftSize, hop = s.hopLength, mels = s.melBins
        let length = min(samples.count, s.windowSamples)
        let total = s.windowSamples  // the padded window
        let pad = Double(s.paddingValue)
        // log10 mel energies, [mel][frame], in double until the final scaling
        let logMel = UnsafeMutablePointer<Double>.allocate(capacity: mels * frames)
        defer { logMel.deallocate() }
        let threads = pool?.threadCount ?? 1
        let perWorker = n + fft.scratchCount + 3 * (n / 2 + 1)
        let scratch = UnsafeMutablePointer<Double>.allocate(capacity: threads * perWorker)
        defer { scratch.deallocate() }
        let base = samples.baseAddress
        @inline(__always) func sample(_ i: Int) -> Double {
            // reflect padding of n/2 at both ends of the padded window (torch.stft center=True, pad_mode="reflect")
            var j = i
            if j < 0 { j = -j }
            if j >= total { j = 2 * (total - 1) - j }
            return j < length ? Double(base![j]) : pad
        }
        let taskFrames = 64
        let tasks = (frames + taskFrames - 1) / taskFrames
        let floorLog = log10(1e-10)
        func run(_ task: Int, _ worker: Int) {
            let buf = scratch + worker * perWorker
            let frame = buf, fftScratch = buf + n
            let re = fftScratch + fft.scratchCount, im = re + (n / 2 + 1), power = im + (n / 2 + 1)
            for t in task * taskFrames ..< min(frames, (task + 1) * taskFrames) {
                var allZero = true
                let start = t * hop - n / 2
                for k in 0 ..< n {
                    let v = sample(start + k)
                    if v != 0 { allZero = false }
                    frame[k] = v * window[k]
                }
                if allZero {
                    for m in 0 ..< mels { logMel[m * frames + t] = floorLog }
                    continue
                }
                fft.transform(frame, re: re, im: im, scratch: fftScratch)
                for k in 0 ... n / 2 {
                    // |X|² of the float32 spectrum the reference computes; in double where a component is past the
                    // float range (finite samples of huge magnitude), so that the features stay finite
                    let a = Double(Float(re[k])), b = Double(Float(im[k]))
                    power[k] = a.isFinite && b.isFinite ? a * a + b * b : re[k] * re[k] + im[k] * im[k]
                }
                for m in 0 ..< mels {
                    let w = filterWeights[m], first = filterStart[m]
                    var e = 0.0
                    for (i, wi) in w.enumerated() { e += wi * power[first + i] }
                    logMel[m * frames + t] = log10(max(e, 1e-10))
                }
            }
        }
        if let pool, tasks > 1 { pool.parallelFor(tasks, run) } else { for i in 0 ..< tasks { run(i, 0) } }
        var top = -Double.infinity
        for i in 0 ..< mels * frames { top = max(top, logMel[i]) }
        let floorValue = top - 8
        for i in 0 ..< mels * frames { out[i] = Float((max(logMel[i], floorValue) + 4) / 4) }
        return validFrames(samples: length)
    }

    /// transformers' `mel_filter_bank(num_frequency_bins: bins, num_mel_filters: mels, min_frequency, max_frequency,
    /// sampling_rate, norm: "slaney", mel_scale: "slaney")`, float64, [bins][mels].
    static func melFilters(bins: Int, mels: Int, minHz: Double, maxHz: Double, sampleRate: Int) -> [Double] {
        let minLogHz = 1000.0, minLogMel = 15.0
        func hzToMel(_ f: Double) -> Double {
            f >= minLogHz ? minLogMel + log(f / minLogHz) * (27.0 / log(6.4)) : 3.0 * f / 200.0
        }
        func melToHz(_ m: Double) -> Double {
            m >= minLogMel ? minLogHz * exp((log(6.4) / 27.0) * (m - minLogMel)) : 200.0 * m / 3.0
        }
        // numpy.linspace: i·step + start, the last point exactly `stop`
        func linspace(_ a: Double, _ b: Double, _ count: Int) -> [Double] {
            let step = (b - a) / Double(count - 1)
            return (0 ..< count).map { $0 == count - 1 ? b : Double($0) * step + a }
        }
        let melPoints = linspace(hzToMel(minHz), hzToMel(maxHz), mels + 2)
        let filterFreqs = melPoints.map(melToHz)
        let fftFreqs = linspace(0, Double(sampleRate / 2), bins)
        var out = [Double](repeating: 0, count: bins * mels)
        for m in 0 ..< mels {
            let lower = filterFreqs[m + 1] - filterFreqs[m], upper = filterFreqs[m + 2] - filterFreqs[m + 1]
            let enorm = 2.0 / (filterFreqs[m + 2] - filterFreqs[m])
            for k in 0 ..< bins {
                let down = -(filterFreqs[m] - fftFreqs[k]) / lower
                let up = (filterFreqs[m + 2] - fftFreqs[k]) / upper
                out[k * mels + m] = max(0, min(down, up)) * enorm
            }
        }
        return out
    }
}
