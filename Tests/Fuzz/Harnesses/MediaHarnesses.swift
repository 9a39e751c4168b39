// Harnesses of the media inputs: image decoding (PNG, JPEG) and the Qwen2-VL image processor; audio decoding
// (libsndfile), raw PCM, resampling to 16 kHz (libsoxr) and Whisper log-mel features.
import QwenFormats
import QwenMedia

public enum MediaHarnesses {
    // MARK: Image

    /// Decoded images are capped at 2^18 pixels (512 x 512) so one input stays fast; the library's default is
    /// Pillow's 89 M. A header claiming more is refused before any pixel memory exists.
    static let maxDecodedPixels = 1 << 18

    /// The processor settings every decoded image goes through: Qwen2-VL's patches (14, merge 2, two frames) and
    /// Qwen3-VL-like ones (16), with small pixel bounds (at most 16 merged patches) to keep one input fast.
    static let processors: [ImageProcessorSettings] = [14, 16].map { patch in
        var s = ImageProcessorSettings()
        s.patchSize = patch
        s.minPixels = 4 * patch * patch
        s.maxPixels = 64 * patch * patch
        return s
    }

    static let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    static let jpegStart: [UInt8] = [0xFF, 0xD8, 0xFF]

    /// The input decoded as it is (PNG or JPEG by its signature), and, when it lacks them, behind a PNG signature
    /// and behind a JPEG start of image, so every input reaches both decoders. A decoded image must have the size
    /// and pixel count it claims, within the limit; decoding it without the EXIF orientation gives the same pixels
    /// permuted (same or transposed size, same byte sum); then it is preprocessed.
    static func image(_ data: UnsafeRawBufferPointer) throws {
        try decodeImage(data)
        if !data.starts(with: pngSignature) { try (pngSignature + data).withUnsafeBytes { try decodeImage($0) } }
        if !data.starts(with: jpegStart) { try (jpegStart + data).withUnsafeBytes { try decodeImage($0) } }
    }

    static func decodeImage(_ bytes: UnsafeRawBufferPointer) throws {
        var options = RGBImage.DecodeOptions()
        options.maxPixels = maxDecodedPixels
        guard let image = try refusable({ try RGBImage.decode(bytes, options: options) }) else { return }
        let (w, h) = (image.width, image.height)
        try check(w > 0 && h > 0 && w * h <= maxDecodedPixels, .image, "decoded size \(w)x\(h) outside the limit")
        try check(image.pixels.count == w * h * 3, .image, "\(image.pixels.count) bytes for \(w)x\(h) RGB")
        options.applyOrientation = false
        guard let plain = try refusable({ try RGBImage.decode(bytes, options: options) }) else {
            throw HarnessFailure("image", "decodes with its orientation applied but not without")
        }
        try check((plain.width, plain.height) == (w, h) || (plain.width, plain.height) == (h, w), .image,
                  "orientation turned \(plain.width)x\(plain.height) into \(w)x\(h)")
        try check(byteSum(plain.pixels) == byteSum(image.pixels), .image, "orientation changed the pixels, not only their order")
        for settings in processors { try preprocess(image, settings) }
    }

    /// smart_resize + bicubic + rescale/normalize + patch order: the grid is whole merge groups of the resized
    /// size smart_resize gives, the rows have channels × frames × patch² values, every value is one of the 256
    /// normalized byte values of its channel (so finite and in range).
    static func preprocess(_ image: RGBImage, _ s: ImageProcessorSettings) throws {
        guard let processed = try refusable({ try ImageProcessor.process(image, settings: s) }) else { return }
        let p = s.patchSize, m = s.mergeSize, t = s.temporalPatchSize
        let size = try ImageProcessor.smartResize(height: image.height, width: image.width, factor: p * m,
                                                  minPixels: s.minPixels, maxPixels: s.maxPixels)
        let grid = processed.grid
        try check(grid.t == 1 && grid.h * p == size.height && grid.w * p == size.width && grid.h % m == 0 && grid.w % m == 0
                  && grid.h > 0 && grid.w > 0, .image,
                  "grid \(grid) for \(image.width)x\(image.height) resized to \(size.width)x\(size.height), patch \(p)")
        try check(processed.pixels.count == grid.h * grid.w * 3 * t * p * p, .image,
                  "\(processed.pixels.count) values for a \(grid.h)x\(grid.w) grid")
        var low = [Float](repeating: .infinity, count: 3), high = [Float](repeating: -.infinity, count: 3)
        for c in 0 ..< 3 {
            let mean = Float(s.mean[c]), std = Float(s.std[c])
            for v in [0.0, 255.0] {
                let x = (Float(v * s.rescaleFactor) - mean) / std
                low[c] = min(low[c], x)
                high[c] = max(high[c], x)
            }
        }
        let block = t * p * p
        try processed.pixels.withUnsafeBufferPointer { values in
            for i in 0 ..< values.count {
                let c = i / block % 3, x = values[i]
                if !(x >= low[c] && x <= high[c]) {
                    throw HarnessFailure("image", "value \(x) of channel \(c) outside [\(low[c]), \(high[c])]")
                }
            }
        }
    }

    static func byteSum(_ bytes: [UInt8]) -> Int { bytes.reduce(0) { $0 + Int($1) } }

    // MARK: Audio

    /// Decoded clips are capped at 2 s (raw PCM input at 32 KiB) so one input stays fast.
    static let audioLimits = AudioLimits(maxSeconds: 2)
    static let maxRawBytes = 32 * 1024

    /// The feature extractors every clip goes through: Qwen2-Audio's (128 mel bins, 30 s windows) and a small one
    /// (80 bins, 1 s windows) so that clips span several windows.
    public static func extractors() throws -> [WhisperFeatureExtractor] { try extractorsResult.get() }
    private static let extractorsResult: Result<[WhisperFeatureExtractor], Error> = Result {
        var small = AudioFeatureSettings()
        small.melBins = 80
        small.chunkSeconds = 1
        return [try WhisperFeatureExtractor(), try WhisperFeatureExtractor(settings: small)]
    }

    /// The input as an audio file (libsndfile, a per-process file on tmpfs), then as raw PCM: signed 16-bit at
    /// 16 kHz mono and 44.1 kHz stereo, float at 8 kHz and 16 kHz mono. Every clip has ceil(frames · 16000 / rate)
    /// finite samples, and its log-mel features are finite with the shapes and valid frames the window gives.
    static func audio(_ data: UnsafeRawBufferPointer) throws {
        try withFile("input.audio", data) { path in
            if let clip = try refusable({ try AudioClip(path: path, limits: audioLimits) }) { try checkClip(clip) }
        }
        let raw = UnsafeRawBufferPointer(rebasing: data.prefix(maxRawBytes))
        let int16 = (0 ..< raw.count / 2).map { Float(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: Int16.self))) / 32768 }
        let float32 = (0 ..< raw.count / 4).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        for (samples, channels, rate) in [(int16, 1, 16000), (int16, 2, 44100), (float32, 1, 8000), (float32, 1, 16000)] {
            let frames = samples.count / channels
            guard frames > 0 else { continue }
            let clip = try samples.withUnsafeBufferPointer { all in
                try refusable {
                    try AudioClip(interleaved: UnsafeBufferPointer(rebasing: all[..<(frames * channels)]), channels: channels,
                                  sampleRate: rate, limits: audioLimits)
                }
            }
            guard let clip else { continue }
            try check(clip.sourceFrames == frames && clip.sourceChannels == channels && clip.sourceSampleRate == rate, .audio,
                      "clip source \(clip.sourceFrames) frames x \(clip.sourceChannels) at \(clip.sourceSampleRate) Hz, given \(frames) x \(channels) at \(rate)")
            try checkClip(clip)
        }
    }

    static func checkClip(_ clip: AudioClip) throws {
        let rate = clip.sourceSampleRate, frames = clip.sourceFrames
        try check(frames > 0 && Double(frames) <= audioLimits.maxSeconds * Double(rate), .audio,
                  "\(frames) frames at \(rate) Hz past the \(audioLimits.maxSeconds) s limit")
        let expected = (frames * AudioClip.sampleRate + rate - 1) / rate
        try check(clip.samples.count == expected, .audio, "\(clip.samples.count) samples from \(frames) frames at \(rate) Hz, expected \(expected)")
        try check(clip.samples.allSatisfy(\.isFinite), .audio, "a clip sample is not finite")
        try clip.samples.withUnsafeBufferPointer { samples in
            for extractor in try extractors() { try features(samples, extractor) }
        }
    }

    /// Log-mel features window by window: the windows tile the clip; each window gives melBins × windowFrames finite
    /// values within 2 of each other (the floor is the window's maximum − 8, then / 4) and the valid frames of its length.
    static func features(_ samples: UnsafeBufferPointer<Float>, _ extractor: WhisperFeatureExtractor) throws {
        let s = extractor.settings
        let windows = extractor.windows(sampleCount: samples.count)
        try check(windows.first?.lowerBound == 0 && windows.last?.upperBound == samples.count
                  && zip(windows, windows.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound }
                  && windows.allSatisfy { $0.count <= s.windowSamples }, .audio, "windows \(windows) do not tile \(samples.count) samples")
        let count = s.melBins * s.windowFrames
        let out = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { out.deallocate() }
        for window in windows {
            out.initialize(repeating: .nan, count: count)
            let valid = extractor.extract(UnsafeBufferPointer(rebasing: samples[window]), into: out)
            try check(valid == extractor.validFrames(samples: window.count) && valid <= s.windowFrames
                      && (window.isEmpty || valid > 0), .audio, "\(valid) valid frames for \(window.count) samples")
            var low = Float.infinity, high = -Float.infinity
            for i in 0 ..< count {
                let x = out[i]
                if !x.isFinite { throw HarnessFailure("audio", "log-mel value \(x) at \(i) (\(s.melBins) bins, \(window.count) samples)") }
                low = min(low, x)
                high = max(high, x)
            }
            try check(high - low <= 2 + 1e-5, .audio, "log-mel values span [\(low), \(high)], more than the 8 decades / 4 allowed")
        }
    }
}
