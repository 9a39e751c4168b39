import QwenFormats
import QwenTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The generated test clips of scripts/fixtures/make_audio_fixtures.py (`clip_samples`), sample for sample, and
/// a minimal WAV writer, so the tests need no committed audio for them.
enum AudioSignals {
    /// Interleaved int16 frames: tenths/10 seconds at `rate` Hz, `channels` channels.
    static func clip(tenths: Int, rate: Int, channels: Int) -> [Int16] {
        let n = tenths * rate / 10
        let dur = Double(tenths) / 10.0
        var out = [Int16](repeating: 0, count: n * channels)
        var state: Int64 = 12345
        for i in 0 ..< n {
            let t = Double(i) / Double(rate)
            let gate: Double = (t >= 0.2 * dur && t < 0.25 * dur) ? 0 : 1
            for ch in 0 ..< channels {
                state = (state &* 1_103_515_245 &+ 12345) % (1 << 31)
                let noise = Double(state) / Double(1 << 31) - 0.5
                let fm = 0.35 * sin(2.0 * Double.pi * (220.0 * Double(ch + 1)) * t + 3.0 * sin(2.0 * Double.pi * 0.7 * t))
                let chirp = 0.25 * sin(2.0 * Double.pi * (300.0 * t + (1600.0 / dur) * t * t))
                let x = (fm + chirp + 0.08 * noise) * gate
                let q = min(32767, max(-32768, (x * 32767.0).rounded(.toNearestOrEven)))
                out[i * channels + ch] = Int16(q)
            }
        }
        return out
    }

    /// Floats as libsndfile reads PCM_16 (x / 32768).
    static func floats(_ pcm: [Int16]) -> [Float] { pcm.map { Float($0) / 32768 } }

    /// A canonical 44-byte-header PCM WAV file.
    static func wavBytes(_ pcm: [Int16], rate: Int, channels: Int) -> [UInt8] {
        var b: [UInt8] = []
        func u32(_ v: Int) { for i in 0 ..< 4 { b.append(UInt8((v >> (8 * i)) & 0xFF)) } }
        func u16(_ v: Int) { for i in 0 ..< 2 { b.append(UInt8((v >> (8 * i)) & 0xFF)) } }
        let data = pcm.count * 2
        b += Array("RIFF".utf8); u32(36 + data); b += Array("WAVE".utf8)
        b += Array("fmt ".utf8); u32(16); u16(1); u16(channels); u32(rate); u32(rate * channels * 2); u16(channels * 2); u16(16)
        b += Array("data".utf8); u32(data)
        b.reserveCapacity(b.count + data)
        for s in pcm { u16(Int(UInt16(bitPattern: s))) }
        return b
    }

    static func writeWAV(_ pcm: [Int16], rate: Int, channels: Int, name: String) -> String {
        let path = TestSupport.temporaryPath(name)
        TestSupport.writeBytes(wavBytes(pcm, rate: rate, channels: channels), to: path)
        return path
    }
}

/// Floats of a reference blob (refs/*.f32) described by {offset, count} entries of its JSON index.
struct FloatBlob {
    let values: [Float]
    init(_ path: String) throws { values = try TestSupport.readFloats(path) }
    func get(_ entry: JSON?) -> [Float] {
        guard let e = entry, let off = e["offset"]?.int, let n = e["count"]?.int else { return [] }
        return Array(values[off ..< off + n])
    }
}
