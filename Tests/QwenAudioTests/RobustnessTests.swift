import CSndfile
import QwenFormats
import QwenMedia
import QwenModels
import QwenRuntime
import QwenTensors
import QwenTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Corrupt, truncated, empty, silent, too short and too long audio: errors or correct results, never a crash; and the
/// other encodings libsndfile reads.
@Suite struct RobustnessTests {
    static func status(_ body: () throws -> Void) -> QwenStatus? {
        do { try body(); return nil } catch let e as QwenError { return e.status } catch { return .invalidArgument }
    }

    static func temp(_ name: String, _ bytes: [UInt8]) -> String {
        let p = TestSupport.temporaryPath(name)
        TestSupport.writeBytes(bytes, to: p)
        return p
    }

    static func fileBytes(_ path: String) throws -> [UInt8] {
        let f = try FileBytes(path: path, map: false)
        return Array(f.buffer)
    }

    @Test func missingEmptyAndGarbageFilesAreErrors() throws {
        #expect(Self.status { _ = try AudioClip(path: "/nonexistent/clip.wav") } == .io)
        #expect(Self.status { _ = try AudioClip(path: "") } == .invalidArgument)
        let empty = Self.temp("empty.wav", [])
        defer { unlink(empty) }
        #expect(Self.status { _ = try AudioClip(path: empty) } == .format)
        var g = SystemRandomNumberGenerator()
        let garbage = Self.temp("garbage.wav", (0 ..< 5000).map { _ in UInt8.random(in: 0 ... 255, using: &g) })
        defer { unlink(garbage) }
        #expect(Self.status { _ = try AudioClip(path: garbage) } != nil)
        // a WAV header announcing no frames
        let headerOnly = Self.temp("header.wav", AudioSignals.wavBytes([], rate: 16000, channels: 1))
        defer { unlink(headerOnly) }
        #expect(Self.status { _ = try AudioClip(path: headerOnly) } == .format)
        // a directory
        #expect(Self.status { _ = try AudioClip(path: "/tmp") } != nil)
    }

    @Test func truncatedAndCorruptFilesNeverCrash() throws {
        let pcm = AudioSignals.clip(tenths: 37, rate: 22050, channels: 2)
        let wav = AudioSignals.wavBytes(pcm, rate: 22050, channels: 2)
        // a WAV cut in the data: what is there is decoded (libsndfile reads the frames present)
        let cut = Self.temp("cut.wav", Array(wav[..<(44 + 4 * 10_000 + 3)]))
        defer { unlink(cut) }
        let clip = try AudioClip(path: cut)
        #expect(clip.sourceFrames == 10_000)
        // cut inside the header
        let cutHeader = Self.temp("cuthead.wav", Array(wav[..<30]))
        defer { unlink(cutHeader) }
        #expect(Self.status { _ = try AudioClip(path: cutHeader) } == .format)
        // FLAC cut in half, and with bytes overwritten in the middle
        let flac = try Self.fileBytes(TestSupport.fixture("audio/inputs/speech.flac"))
        for (name, bytes) in [("half.flac", Array(flac[..<(flac.count / 2)])),
                              ("corrupt.flac", flac.enumerated().map { $0.offset > 4000 && $0.offset < 9000 ? $0.element ^ 0x5A : $0.element })] {
            let p = Self.temp(name, bytes)
            defer { unlink(p) }
            do {
                let c = try AudioClip(path: p)
                #expect(c.samples.allSatisfy { $0.isFinite })
            } catch let e as QwenError {
                #expect(e.status == .format, "\(name): \(e.message)")
            }
        }
    }

    @Test func silenceGivesTheReferenceFloor() throws {
        let clip = try AudioClip(samples16k: [Float](repeating: 0, count: 16000))
        let extractor = try WhisperFeatureExtractor()
        var features = [Float](repeating: 1, count: 128 * 3000)
        let valid = clip.samples.withUnsafeBufferPointer { s in
            features.withUnsafeMutableBufferPointer { extractor.extract(s, into: $0.baseAddress!) }
        }
        #expect(valid == 100)
        // log10(1e-10) = -10 everywhere, so (max(-10, -10 - 8) + 4) / 4
        #expect(features.allSatisfy { $0 == -1.5 })
        let model = try EncoderTests.hfModel()
        let audio = try #require(model.audio)
        let e = try audio.embed(clip, pool: nil)
        #expect(e.rows == 25 && e.values.allSatisfy { $0.isFinite })
    }

    @Test func tooShortAndNonFiniteInputAreErrors() throws {
        let model = try EncoderTests.hfModel()
        let audio = try #require(model.audio)
        // 320 samples are 2 mel frames: no audio token; 321 are 3 frames: one
        #expect(Self.status { _ = try audio.embed(AudioClip(samples16k: [Float](repeating: 0.1, count: 320)), pool: nil) } == .invalidArgument)
        #expect(try audio.embed(AudioClip(samples16k: [Float](repeating: 0.1, count: 321)), pool: nil).rows == 1)
        #expect(Self.status { _ = try AudioClip(samples16k: []) } == nil)  // an empty clip exists ...
        #expect(Self.status { _ = try audio.embed(AudioClip(samples16k: []), pool: nil) } == .invalidArgument)  // ... but gives no rows
        #expect(Self.status { _ = try AudioClip(samples16k: [0, .nan, 0]) } == .invalidArgument)
        #expect(Self.status {
            _ = try [Float](repeating: .infinity, count: 100).withUnsafeBufferPointer { try AudioClip(interleaved: $0, channels: 1, sampleRate: 8000) }
        } == .invalidArgument)
        #expect(Self.status { _ = try [Float](repeating: 0, count: 99).withUnsafeBufferPointer { try AudioClip(interleaved: $0, channels: 2, sampleRate: 8000) } } == .invalidArgument)
        #expect(Self.status { _ = try [Float](repeating: 0, count: 100).withUnsafeBufferPointer { try AudioClip(interleaved: $0, channels: 1, sampleRate: 10) } } == .invalidArgument)
        #expect(Self.status { _ = try [Float](repeating: 0, count: 100).withUnsafeBufferPointer { try AudioClip(interleaved: $0, channels: 0, sampleRate: 8000) } } == .invalidArgument)
    }

    /// The limit is checked against the header before decoding: an 11-minute file is refused without reading it.
    @Test func overLongAudioIsRefused() throws {
        let rate = 8000, seconds = 660
        var header = AudioSignals.wavBytes([], rate: rate, channels: 1)
        let data = rate * seconds * 2
        for i in 0 ..< 4 { header[4 + i] = UInt8(((36 + data) >> (8 * i)) & 0xFF); header[40 + i] = UInt8((data >> (8 * i)) & 0xFF) }
        let path = TestSupport.temporaryPath("long.wav")
        let f = fopen(path, "wb")!
        _ = header.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        var left = data
        while left > 0 {
            let n = min(left, zeros.count)
            _ = zeros.withUnsafeBytes { fwrite($0.baseAddress, 1, n, f) }
            left -= n
        }
        fclose(f)
        defer { unlink(path) }
        var e: QwenError?
        do { _ = try AudioClip(path: path) } catch let err as QwenError { e = err }
        #expect(e?.status == .invalidArgument && e?.message.contains("longer than the limit") == true, "\(String(describing: e))")
        // a higher limit takes it
        let clip = try AudioClip(path: path, limits: AudioLimits(maxSeconds: 700))
        #expect(clip.samples.count == seconds * 16000)
        // a lower one refuses a short clip, from memory too
        let pcm = AudioSignals.floats(AudioSignals.clip(tenths: 37, rate: 16000, channels: 1))
        #expect(Self.status { _ = try pcm.withUnsafeBufferPointer { try AudioClip(interleaved: $0, channels: 1, sampleRate: 16000, limits: AudioLimits(maxSeconds: 2)) } } == .invalidArgument)
        #expect(Self.status { _ = try AudioClip(path: path, limits: AudioLimits(maxSeconds: 0)) } == .invalidArgument)
        #expect(Self.status { _ = try AudioClip(path: path, limits: AudioLimits(maxSeconds: .nan)) } == .invalidArgument)
    }

    /// PCM 8/24/32-bit, float, FLAC, AIFF, OGG/Vorbis, Opus and MP3 written by libsndfile itself decode to the clip
    /// the 16-bit PCM gives: lossless formats exactly, or within libsndfile's own rounding when it writes 8 or 16
    /// bits; lossy codecs to the same length and energy.
    @Test func otherEncodingsDecode() throws {
        let rate = 44100
        let pcm = AudioSignals.clip(tenths: 20, rate: rate, channels: 2)
        let floats = AudioSignals.floats(pcm)
        let reference = try floats.withUnsafeBufferPointer { try AudioClip(interleaved: $0, channels: 2, sampleRate: rate) }
        let formats: [(String, Int32, Float?)] = [
            ("pcm_u8.wav", Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_U8), 0.01), ("pcm24.wav", Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_24), 1e-6),
            ("pcm32.wav", Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_32), 1e-6), ("float.wav", Int32(SF_FORMAT_WAV | SF_FORMAT_FLOAT), 1e-6),
            ("flac24.flac", Int32(SF_FORMAT_FLAC | SF_FORMAT_PCM_24), 1e-6), ("aiff.aiff", Int32(SF_FORMAT_AIFF | SF_FORMAT_PCM_16), 1e-4),
            ("vorbis.ogg", Int32(SF_FORMAT_OGG | SF_FORMAT_VORBIS), nil), ("opus.opus", Int32(SF_FORMAT_OGG | SF_FORMAT_OPUS), nil),
            ("mp3.mp3", Int32(SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III), nil),
        ]
        for (name, format, tolerance) in formats {
            var info = SF_INFO()
            info.samplerate = Int32(name.hasSuffix(".opus") ? 48000 : rate)
            info.channels = 2
            info.format = format
            guard sf_format_check(&info) != 0 else {
                print("audio formats: \(name): not supported by this libsndfile")
                continue
            }
            let path = TestSupport.temporaryPath(name)
            defer { unlink(path) }
            guard let out = sf_open(path, Int32(SFM_WRITE), &info) else {
                print("audio formats: \(name): cannot write (\(String(cString: sf_strerror(nil))))")
                continue
            }
            var source = floats
            if name.hasSuffix(".opus") {  // Opus is 48 kHz only: write the 48 kHz version
                source = AudioSignals.floats(AudioSignals.clip(tenths: 20, rate: 48000, channels: 2))
            }
            _ = source.withUnsafeBufferPointer { sf_writef_float(out, $0.baseAddress, sf_count_t($0.count / 2)) }
            sf_close(out)
            let clip = try AudioClip(path: path)
            #expect(clip.sourceChannels == 2)
            let n = min(clip.samples.count, reference.samples.count)
            #expect(abs(clip.samples.count - reference.samples.count) < 2000, "\(name): \(clip.samples.count) samples")
            if let tolerance {
                var worst: Float = 0
                for i in 0 ..< n { worst = max(worst, abs(clip.samples[i] - reference.samples[i])) }
                #expect(worst <= tolerance, "\(name): differs by \(worst)")
                print("audio formats: \(name): max |Δ| \(worst) vs 16-bit PCM")
            } else {
                // lossy codecs delay and shape the signal: compare the energy only
                let e1 = clip.samples.reduce(0) { $0 + $1 * $1 } / Float(clip.samples.count)
                let e2 = reference.samples.reduce(0) { $0 + $1 * $1 } / Float(reference.samples.count)
                #expect(abs(e1 - e2) < 0.2 * e2, "\(name): energy \(e1) vs \(e2)")
                print("audio formats: \(name): \(clip.samples.count) samples, mean energy \(e1) vs \(e2)")
            }
        }
    }
}
