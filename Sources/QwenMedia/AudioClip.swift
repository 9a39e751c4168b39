import CSndfile
import CSoxr
import QwenFormats
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Limits applied while audio is decoded or taken from a host.
public struct AudioLimits: Sendable, Equatable {
    /// Longest clip accepted, in seconds of source audio. Checked against the length a file announces before
    /// decoding it (and again while decoding, for formats whose header does not say). Default 600 s.
    public var maxSeconds: Double = 600
    public init() {}
    public init(maxSeconds: Double) { self.maxSeconds = maxSeconds }

    /// The largest `maxSeconds` allowed (a day).
    public static let ceiling: Double = 86_400

    func validate() throws {
        guard maxSeconds.isFinite, maxSeconds > 0, maxSeconds <= Self.ceiling else {
            throw QwenError.invalidArgument("audio length limit must be in (0, \(Int(Self.ceiling))] seconds, not \(maxSeconds)")
        }
    }
}

/// A sound clip as the Qwen audio models take it: mono, 16 kHz, float samples (nominally in [-1, 1]).
///
/// What `librosa.load(path, sr=16000)` gives, which is how Qwen2-Audio's examples read audio: libsndfile decodes
/// (integer PCM scaled to [-1, 1) as libsndfile's float reads do), channels are averaged, and libsoxr resamples
/// with its "HQ" recipe (librosa's default `soxr_hq`); the result has ceil(frames · 16000 / rate) samples.
/// libsoxr rather than libsamplerate because it is the reference's resampler: the same library with the same
/// settings gives the same samples (bit for bit with python-soxr's bundled libsoxr on this machine; the tests allow
/// 1e-6), where another resampler would add its own passband ripple and phase.
public final class AudioClip: @unchecked Sendable {
    public static let sampleRate = 16_000

    /// Mono samples at 16 kHz.
    public let samples: [Float]
    /// The source's sample rate, channel count and frame count (before conversion).
    public let sourceSampleRate: Int
    public let sourceChannels: Int
    public let sourceFrames: Int
    /// Identifies the content (64-bit FNV-1a over the samples' bits): equal clips have equal keys.
    public let key: UInt64

    public var duration: Double { Double(samples.count) / Double(Self.sampleRate) }

    /// A clip from 16 kHz mono samples as they are.
    public init(samples16k: [Float]) throws {
        try Self.checkFinite(samples16k)
        samples = samples16k
        sourceSampleRate = Self.sampleRate
        sourceChannels = 1
        sourceFrames = samples16k.count
        key = Self.contentKey(samples16k)
    }

    /// A clip from interleaved float samples (`frames` × `channels`) at `sampleRate` Hz.
    public convenience init(interleaved: UnsafeBufferPointer<Float>, channels: Int, sampleRate: Int,
                            limits: AudioLimits = AudioLimits()) throws {
        try limits.validate()
        try Self.checkFormat(channels: channels, sampleRate: sampleRate)
        guard interleaved.count % channels == 0 else {
            throw QwenError.invalidArgument("\(interleaved.count) samples are not whole frames of \(channels) channels")
        }
        let frames = interleaved.count / channels
        try Self.checkLength(frames: frames, sampleRate: sampleRate, limits: limits)
        guard frames > 0 else { throw QwenError.invalidArgument("audio has no samples") }
        let converter = try Converter(sampleRate: sampleRate, channels: channels)
        let block = 8192
        var start = 0
        while start < frames {
            let n = min(block, frames - start)
            try converter.push(UnsafeBufferPointer(rebasing: interleaved[(start * channels) ..< ((start + n) * channels)]))
            start += n
        }
        try self.init(converted: converter.finish(), sampleRate: sampleRate, channels: channels, frames: frames)
    }

    /// Decodes an audio file with libsndfile: WAV (PCM 8/16/24/32 bit, float), FLAC, OGG/Vorbis, Opus, MP3 and
    /// the other formats the installed libsndfile reads, at any sample rate and channel count.
    public convenience init(path: String, limits: AudioLimits = AudioLimits()) throws {
        try limits.validate()
        guard !path.isEmpty else { throw QwenError.invalidArgument("empty audio path") }
        guard fileExists(path) else { throw QwenError.io("'\(path)' does not exist") }
        guard !isDirectory(path) else { throw QwenError.io("'\(path)' is a directory") }
        var info = SF_INFO()
        guard let file = sf_open(path, Int32(SFM_READ), &info) else {
            let reason = String(cString: sf_strerror(nil))
            if access(path, R_OK) != 0 { throw QwenError.io("cannot read '\(path)': \(reason)") }
            throw QwenError.format("'\(path)' is not audio libsndfile can decode: \(reason)")
        }
        defer { sf_close(file) }
        let channels = Int(info.channels), rate = Int(info.samplerate)
        do {
            try Self.checkFormat(channels: channels, sampleRate: rate)
        } catch let e as QwenError {
            throw QwenError.format("'\(path)': \(e.message)")
        }
        // the announced length, before anything is decoded (some formats announce none: checked while decoding)
        let announced = info.frames
        if announced > 0, announced < Int64(Int32.max) * 1024 {
            try Self.checkLength(frames: Int(announced), sampleRate: rate, limits: limits, what: "'\(path)'")
        }
        let maxFrames = Int(limits.maxSeconds * Double(rate))
        let converter = try Converter(sampleRate: rate, channels: channels)
        let block = 8192
        var buffer = [Float](repeating: 0, count: block * channels)
        var frames = 0
        while true {
            let got = buffer.withUnsafeMutableBufferPointer { sf_readf_float(file, $0.baseAddress, sf_count_t(block)) }
            if got <= 0 { break }
            frames += Int(got)
            if frames > maxFrames {
                throw QwenError.invalidArgument("'\(path)' is longer than the limit of \(limits.maxSeconds) s")
            }
            try buffer.withUnsafeBufferPointer {
                try converter.push(UnsafeBufferPointer(rebasing: $0[..<(Int(got) * channels)]))
            }
        }
        let status = sf_error(file)
        if status != 0 {
            throw QwenError.format("'\(path)': decoding failed after \(frames) frames: \(String(cString: sf_strerror(file)))")
        }
        guard frames > 0 else { throw QwenError.format("'\(path)' contains no audio frames") }
        try self.init(converted: converter.finish(), sampleRate: rate, channels: channels, frames: frames)
    }

    private init(converted: [Float], sampleRate: Int, channels: Int, frames: Int) throws {
        try Self.checkFinite(converted)
        samples = converted
        sourceSampleRate = sampleRate
        sourceChannels = channels
        sourceFrames = frames
        key = Self.contentKey(converted)
    }

    static func checkFormat(channels: Int, sampleRate: Int) throws {
        guard channels >= 1, channels <= 256 else { throw QwenError.invalidArgument("audio channel count \(channels) is not in 1...256") }
        guard sampleRate >= 1000, sampleRate <= 1_536_000 else {
            throw QwenError.invalidArgument("audio sample rate \(sampleRate) Hz is not in 1000...1536000")
        }
    }

    static func checkLength(frames: Int, sampleRate: Int, limits: AudioLimits, what: String = "audio") throws {
        let seconds = Double(frames) / Double(sampleRate)
        guard seconds <= limits.maxSeconds else {
            throw QwenError.invalidArgument("\(what) lasts \(seconds) s, longer than the limit of \(limits.maxSeconds) s")
        }
    }

    static func checkFinite(_ x: [Float]) throws {
        if let i = x.firstIndex(where: { !$0.isFinite }) {
            throw QwenError.invalidArgument("audio sample \(i) is not a finite number")
        }
    }

    static func contentKey(_ x: [Float]) -> UInt64 {
        var h = FNV1a()
        x.withUnsafeBytes { h.add($0) }
        h.add(UInt64(x.count))
        return h.value
    }
}

/// Down-mix (channel mean, as `librosa.to_mono`) and resampling to 16 kHz (libsoxr HQ, streaming), block by block.
final class Converter {
    let sampleRate: Int
    let channels: Int
    private var resampler: soxr_t?
    private var mono: [Float] = []
    private(set) var output: [Float] = []
    private var inputFrames = 0

    init(sampleRate: Int, channels: Int) throws {
        self.sampleRate = sampleRate
        self.channels = channels
        if sampleRate != AudioClip.sampleRate {
            var io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I)
            var quality = soxr_quality_spec(UInt(SOXR_HQ), 0)
            var runtime = soxr_runtime_spec(1)
            var error: soxr_error_t?
            resampler = soxr_create(Double(sampleRate), Double(AudioClip.sampleRate), 1, &error, &io, &quality, &runtime)
            if let error { throw QwenError.unsupported("libsoxr: \(String(cString: error))") }
            guard resampler != nil else { throw QwenError.outOfMemory("libsoxr: cannot create a resampler") }
        }
    }

    deinit { if let resampler { soxr_delete(resampler) } }

    /// Takes interleaved frames.
    func push(_ interleaved: UnsafeBufferPointer<Float>) throws {
        let frames = interleaved.count / channels
        inputFrames += frames
        if mono.count < frames { mono = [Float](repeating: 0, count: frames) }
        mono.withUnsafeMutableBufferPointer { m in
            if channels == 1 {
                m.baseAddress!.update(from: interleaved.baseAddress!, count: frames)
            } else {
                let scale = Float(channels)
                for f in 0 ..< frames {
                    var sum: Float = 0
                    for c in 0 ..< channels { sum += interleaved[f * channels + c] }  // numpy's order for < 8 channels
                    m[f] = sum / scale
                }
            }
        }
        try feed(count: frames, last: false)
    }

    private func feed(count: Int, last: Bool) throws {
        guard let resampler else {
            output.append(contentsOf: mono[..<count])
            return
        }
        var consumed = 0
        repeat {
            let room = max(4096, Int(Double(count - consumed) * Double(AudioClip.sampleRate) / Double(sampleRate)) + 256)
            let start = output.count
            output.append(contentsOf: repeatElement(0, count: room))
            var done = 0, produced = 0
            let error: soxr_error_t? = mono.withUnsafeBufferPointer { m in
                output.withUnsafeMutableBufferPointer { o in
                    last && consumed == count
                        ? soxr_process(resampler, nil, 0, &done, o.baseAddress! + start, room, &produced)
                        : soxr_process(resampler, m.baseAddress! + consumed, count - consumed, &done, o.baseAddress! + start, room, &produced)
                }
            }
            if let error { throw QwenError.format("libsoxr: \(String(cString: error))") }
            output.removeLast(room - produced)
            consumed += done
            if last && consumed == count && produced == 0 { break }
            if !last && consumed == count && produced < room { break }
        } while true
    }

    /// Flushes the resampler; returns ceil(frames · 16000 / rate) samples, as librosa fixes the length.
    func finish() throws -> [Float] {
        if resampler != nil {
            try feed(count: 0, last: true)
            let ratio = Double(AudioClip.sampleRate) / Double(sampleRate)
            let wanted = Int((Double(inputFrames) * ratio).rounded(.up))
            if output.count > wanted {
                output.removeLast(output.count - wanted)
            } else if output.count < wanted {
                output.append(contentsOf: repeatElement(0, count: wanted - output.count))
            }
        }
        return output
    }
}
