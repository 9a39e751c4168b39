import QwenFormats
import QwenMedia
import QwenTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Decoding, down-mixing, resampling and log-mel features against librosa.load (soxr_hq) and transformers'
/// WhisperFeatureExtractor (Tests/Fixtures/audio/refs/mel.json, made by scripts/fixtures/make_audio_fixtures.py).
@Suite struct FeatureTests {
    static let index = try! TestSupport.readJSON(TestSupport.fixture("audio/refs/mel.json"))
    static let blob = try! FloatBlob(TestSupport.fixture("audio/refs/mel.f32"))

    /// Max |difference| of resampled samples and of features, over all cases (printed for the report).
    @Test func generatedClipsMatchTheReference() throws {
        let extractor = try WhisperFeatureExtractor()
        var worstSample: Float = 0, worstMel: Float = 0, worstMean: Float = 0
        for c in Self.index["cases"]!.array! where c["tenths"] != nil {
            let name = c["name"]!.string!, tenths = c["tenths"]!.int!, rate = c["rate"]!.int!, ch = c["channels"]!.int!
            let pcm = AudioSignals.clip(tenths: tenths, rate: rate, channels: ch)
            #expect(pcm.count / ch == c["input_frames"]!.int!, "\(name)")
            #expect(pcm.reduce(0) { $0 + Int($1) } == c["input_checksum"]!.int!, "\(name): generated samples differ")
            let path = AudioSignals.writeWAV(pcm, rate: rate, channels: ch, name: name + ".wav")
            defer { unlink(path) }
            let clip = try AudioClip(path: path)
            let (ds, dm, dmean) = try compare(clip, c, extractor, name)
            worstSample = max(worstSample, ds); worstMel = max(worstMel, dm); worstMean = max(worstMean, dmean)
        }
        print("audio refs: generated clips: max |Δsample| \(worstSample), max |Δmel| \(worstMel), max |Δframe mean| \(worstMean)")
    }

    @Test func speechWAVAndFLACMatchTheReference() throws {
        let extractor = try WhisperFeatureExtractor()
        let c = Self.index["cases"]!.array!.first { $0["name"]?.string == "speech" }!
        let wav = try AudioClip(path: TestSupport.fixture("audio/inputs/speech.wav"))
        let flac = try AudioClip(path: TestSupport.fixture("audio/inputs/speech.flac"))
        #expect(wav.samples == flac.samples)
        #expect(wav.key == flac.key)
        let (ds, dm, dmean) = try compare(wav, c, extractor, "speech")
        print("audio refs: espeak-ng speech: max |Δsample| \(ds), max |Δmel| \(dm), max |Δframe mean| \(dmean)")
    }

    func compare(_ clip: AudioClip, _ c: JSON, _ extractor: WhisperFeatureExtractor, _ name: String) throws -> (Float, Float, Float) {
        let ref = c["samples16k"]!
        #expect(clip.samples.count == ref["count"]!.int!, "\(name): sample count")
        var ds: Float = 0
        for (i, v) in zip(ref["indices"]!.array!.map { $0.int! }, Self.blob.get(ref["values"])) {
            ds = max(ds, abs(clip.samples[i] - v))
        }
        let sum = clip.samples.reduce(0.0) { $0 + Double($1) }
        let sumsq = clip.samples.reduce(0.0) { $0 + Double($1) * Double($1) }
        #expect(abs(sum - ref["sum"]!.double!) <= 1e-3 + 1e-6 * Double(clip.samples.count), "\(name): sum")
        #expect(abs(sumsq - ref["sumsq"]!.double!) <= 1e-6 * max(1, ref["sumsq"]!.double!), "\(name): sum of squares")
        #expect(ds <= 1e-6, "\(name): resampled samples differ by \(ds)")

        let windows = extractor.windows(sampleCount: clip.samples.count)
        let refWindows = c["windows"]!.array!
        #expect(windows.count == refWindows.count, "\(name): windows")
        let frames = extractor.settings.windowFrames, mels = extractor.settings.melBins
        var features = [Float](repeating: 0, count: mels * frames)
        var dm: Float = 0, dmean: Float = 0
        for (w, r) in zip(windows, refWindows) {
            let valid = clip.samples.withUnsafeBufferPointer { s in
                features.withUnsafeMutableBufferPointer { extractor.extract(UnsafeBufferPointer(rebasing: s[w]), into: $0.baseAddress!) }
            }
            #expect(valid == r["valid_frames"]!.int!, "\(name): valid frames")
            let picks = r["frames"]!.array!.map { $0.int! }
            let rows = Self.blob.get(r["rows"])
            for (j, f) in picks.enumerated() {
                for m in 0 ..< mels { dm = max(dm, abs(features[m * frames + f] - rows[j * mels + m])) }
            }
            for (f, mean) in Self.blob.get(r["frame_means"]).enumerated() {
                var s: Float = 0
                for m in 0 ..< mels { s += features[m * frames + f] }
                dmean = max(dmean, abs(s / Float(mels) - mean))
            }
            if let pad = r["pad_value"]?.double {
                for f in (valid + 2) ..< frames { dm = max(dm, abs(features[f] - Float(pad))) }
            }
        }
        #expect(dm <= 1e-4, "\(name): features differ by \(dm)")
        #expect(dmean <= 1e-4, "\(name): frame means differ by \(dmean)")
        return (ds, dm, dmean)
    }
}
