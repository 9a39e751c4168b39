// The audio part of the C ABI (include/qwen.h, "Audio"): clips from files or PCM, their embeddings.
import CQwen
import QwenFormats
import QwenMedia
import QwenModels
import QwenRuntime

final class AudioHandle {
    let clip: AudioClip
    init(_ clip: AudioClip) { self.clip = clip }
}

func audioClip(_ p: OpaquePointer?, _ function: String) throws -> AudioClip {
    guard let h = handles.lookup(p, as: AudioHandle.self) else {
        throw QwenError.invalidArgument("\(function): \(p == nil ? "audio is NULL" : "not a live qwen_audio handle")")
    }
    return h.clip
}

func audioLimits(_ params: UnsafePointer<qwen_audio_params>?, _ function: String) throws -> AudioLimits {
    let p = params?.pointee ?? qwenAudioDefaultParams()
    guard p.max_seconds.isFinite, p.max_seconds > 0, p.max_seconds <= AudioLimits.ceiling else {
        throw QwenError.invalidArgument("\(function): max_seconds must be in (0, \(Int(AudioLimits.ceiling))], not \(p.max_seconds)")
    }
    return AudioLimits(maxSeconds: p.max_seconds)
}

@_cdecl("qwen_audio_default_params")
public func qwenAudioDefaultParams() -> qwen_audio_params {
    qwen_audio_params(max_seconds: AudioLimits().maxSeconds)
}

@_cdecl("qwen_audio_load")
public func qwenAudioLoad(_ path: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    qwenAudioLoadEx(path, nil, out)
}

@_cdecl("qwen_audio_load_ex")
public func qwenAudioLoadEx(_ path: UnsafePointer<CChar>?, _ params: UnsafePointer<qwen_audio_params>?,
                            _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        guard let out else { throw QwenError.invalidArgument("qwen_audio_load: out is NULL") }
        out.pointee = nil
        guard let path else { throw QwenError.invalidArgument("qwen_audio_load: path is NULL") }
        let clip = try AudioClip(path: String(cString: path), limits: try audioLimits(params, "qwen_audio_load"))
        out.pointee = handles.register(AudioHandle(clip))
        return 0
    }
}

@_cdecl("qwen_audio_from_pcm_f32")
public func qwenAudioFromPCMF32(_ samples: UnsafePointer<Float>?, _ frames: Int64, _ channels: Int32, _ rate: Int32,
                                _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    qwenAudioFromPCMF32Ex(samples, frames, channels, rate, nil, out)
}

@_cdecl("qwen_audio_from_pcm_f32_ex")
public func qwenAudioFromPCMF32Ex(_ samples: UnsafePointer<Float>?, _ frames: Int64, _ channels: Int32, _ rate: Int32,
                                  _ params: UnsafePointer<qwen_audio_params>?,
                                  _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        let f = "qwen_audio_from_pcm_f32"
        guard let out else { throw QwenError.invalidArgument("\(f): out is NULL") }
        out.pointee = nil
        guard let samples else { throw QwenError.invalidArgument("\(f): samples is NULL") }
        guard frames > 0 else { throw QwenError.invalidArgument("\(f): n_frames must be positive") }
        guard channels >= 1, channels <= 256 else { throw QwenError.invalidArgument("\(f): channels must be in 1...256") }
        let limits = try audioLimits(params, f)
        // the length limit before the samples are touched (and before frames · channels can overflow)
        guard rate >= 1000, Double(frames) / Double(rate) <= limits.maxSeconds else {
            throw QwenError.invalidArgument("\(f): \(frames) frames at \(rate) Hz exceed the limit of \(limits.maxSeconds) s " +
                                            "(or the rate is below 1000 Hz)")
        }
        let clip = try AudioClip(interleaved: UnsafeBufferPointer(start: samples, count: Int(frames) * Int(channels)),
                                 channels: Int(channels), sampleRate: Int(rate), limits: limits)
        out.pointee = handles.register(AudioHandle(clip))
        return 0
    }
}

@_cdecl("qwen_audio_free")
public func qwenAudioFree(_ audio: OpaquePointer?) {
    handles.release(audio, as: AudioHandle.self)
}

@_cdecl("qwen_audio_duration")
public func qwenAudioDuration(_ audio: OpaquePointer?) -> Double {
    do { return try audioClip(audio, "qwen_audio_duration").duration } catch { return Double(fail(error)) }
}

@_cdecl("qwen_audio_n_tokens")
public func qwenAudioNTokens(_ p: OpaquePointer?, _ audio: OpaquePointer?) -> Int32 {
    guarded {
        let m = try model(p, "qwen_audio_n_tokens")
        let clip = try audioClip(audio, "qwen_audio_n_tokens")
        guard let a = m.audio else { throw QwenError.unsupported("qwen_audio_n_tokens: the model has no audio tower") }
        return Int32(clamping: a.tokenCount(clip))
    }
}

@_cdecl("qwen_audio_embed")
public func qwenAudioEmbed(_ ctx: OpaquePointer?, _ audio: OpaquePointer?, _ out: UnsafeMutablePointer<Float>?, _ capacity: Int64,
                           _ nTokens: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded {
        let f = "qwen_audio_embed"
        let c = try context(ctx, f)
        let clip = try audioClip(audio, f)
        guard capacity >= 0 else { throw QwenError.invalidArgument("\(f): negative capacity") }
        guard out != nil || capacity == 0 else { throw QwenError.invalidArgument("\(f): out is NULL") }
        let e = try c.audioEmbedding(clip)
        nTokens?.pointee = Int32(clamping: e.rows)
        guard Int64(e.values.count) <= capacity, let out else {
            throw QwenError(.bufferTooSmall, "\(f): \(e.rows) rows of \(e.values.count / e.rows) floats need \(e.values.count) floats, " +
                            "capacity is \(capacity)")
        }
        e.values.withUnsafeBufferPointer { out.update(from: $0.baseAddress!, count: e.values.count) }
        return Int32(clamping: e.rows)
    }
}
