import QwenMedia
import QwenModels
import QwenTensors
import QwenTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A development timing of the Qwen2-Audio-7B-shaped tower (bench/audio/make_models.py), only with
/// QWEN_AUDIO_BENCH=DIR (the folder of those files); the benchmark proper is bench/audio/run.py.
@Suite struct EncoderSpeedTests {
    @Test func encodeThirtySeconds() throws {
        guard let env = getenv("QWEN_AUDIO_BENCH") else { return }
        let dir = String(cString: env)
        let type = getenv("QWEN_AUDIO_BENCH_TYPE").map { String(cString: $0) } ?? "f16"
        let model = try Model.load(path: dir + "/qwen2audio-7b-text-f16.gguf")
        try model.loadAudioProjector(path: dir + "/mmproj-qwen2audio-7b-\(type).gguf")
        let audio = try #require(model.audio)
        let pcm = AudioSignals.floats(AudioSignals.clip(tenths: 300, rate: 16000, channels: 1))
        let clip = try AudioClip(samples16k: pcm)
        let pool = ThreadPool(threads: 2)
        func now() -> Double { var t = timespec(); clock_gettime(CLOCK_MONOTONIC, &t); return Double(t.tv_sec) * 1e3 + Double(t.tv_nsec) / 1e6 }
        for round in 0 ..< 3 {
            let t0 = now()
            let e = try audio.embed(clip, pool: pool)
            print("audio bench: \(type) round \(round): \(e.rows) rows in \(Int(now() - t0)) ms")
        }
    }
}
