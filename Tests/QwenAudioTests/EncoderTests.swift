import QwenFormats
import QwenMedia
import QwenModels
import QwenRuntime
import QwenTensors
import QwenTestSupport
import Testing

/// The audio tower and projector against transformers (Tests/Fixtures/audio/refs/model.json): the tiny random
/// Qwen2-Audio model from its Hugging Face folder (BF16 weights) and from llama.cpp's GGUF pair (F16).
@Suite struct EncoderTests {
    static let index = try! TestSupport.readJSON(TestSupport.fixture("audio/refs/model.json"))
    static let blob = try! FloatBlob(TestSupport.fixture("audio/refs/model.f32"))

    /// The inputs the references were made from.
    static func clips() throws -> [String: AudioClip] {
        [
            "clip37": try AudioClip(samples16k: AudioSignals.floats(AudioSignals.clip(tenths: 37, rate: 16000, channels: 1))),
            "speech": try AudioClip(path: TestSupport.fixture("audio/inputs/speech.wav")),
            "clip47": try {
                let pcm = AudioSignals.clip(tenths: 470, rate: 44100, channels: 2)
                return try pcm.map { Float($0) / 32768 }.withUnsafeBufferPointer {
                    try AudioClip(interleaved: $0, channels: 2, sampleRate: 44100)
                }
            }(),
        ]
    }

    static func hfModel() throws -> Model { try Model.load(path: TestSupport.fixture("audio/qwen2audio-hf")) }

    static func ggufModel() throws -> Model {
        let m = try Model.load(path: TestSupport.fixture("audio/qwen2audio-f16.gguf"))
        try m.loadAudioProjector(path: TestSupport.fixture("audio/mmproj-qwen2audio-f16.gguf"))
        return m
    }

    @Test(arguments: ["hf", "mmproj"])
    func towerMatchesTransformers(_ tag: String) throws {
        let model = tag == "hf" ? try Self.hfModel() : try Self.ggufModel()
        let audio = try #require(model.audio)
        let pool = ThreadPool(threads: 2)
        let towers = Self.index[tag]!["towers"]!
        for (name, clip) in try Self.clips() {
            let ref = towers[name]!
            let (rows, values) = try audio.embed(clip, pool: pool)
            #expect(rows == ref["rows"]!.int!, "\(tag) \(name): rows")
            #expect(audio.tokenCount(clip) == rows)
            let d = model.config.hiddenSize
            var worst: Float = 0
            if let projected = ref["projected"] {
                for (a, b) in zip(values, Self.blob.get(projected)) { worst = max(worst, abs(a - b)) }
            } else {
                let picks = ref["picked_rows"]!.array!.map { $0.int! }
                let picked = Self.blob.get(ref["picked"])
                for (j, r) in picks.enumerated() {
                    for i in 0 ..< d { worst = max(worst, abs(values[r * d + i] - picked[j * d + i])) }
                }
                for (r, mean) in Self.blob.get(ref["row_means"]).enumerated() {
                    let s = values[(r * d) ..< ((r + 1) * d)].reduce(0, +) / Float(d)
                    worst = max(worst, abs(s - mean))
                }
            }
            print("audio refs: \(tag) tower \(name): \(rows) rows, max |Δ| \(worst)")
            #expect(worst <= 1e-3, "\(tag) \(name): projected rows differ by \(worst)")
        }
    }
}
