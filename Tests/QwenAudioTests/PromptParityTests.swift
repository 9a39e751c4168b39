import QwenFormats
import QwenMedia
import QwenModels
import QwenRuntime
import QwenTensors
import QwenTestSupport
import Testing

/// Chat prompts with audio against transformers' Qwen2AudioForConditionalGeneration: the rendered and expanded
/// token ids, the logits of the last 8 positions (within 1e-3) and 16 greedy tokens, for the Hugging Face folder
/// and for llama.cpp's GGUF pair (whose reference ran on the same F16-rounded weights).
@Suite struct PromptParityTests {
    static let index = EncoderTests.index
    static let blob = EncoderTests.blob

    struct Case {
        let name: String
        let messages: [ChatMessage]
        let clips: [String]
    }

    static let cases = [
        Case(name: "one_clip", messages: [ChatMessage(role: "user", content: "<audio>What is this sound?")], clips: ["clip37"]),
        Case(name: "two_clips", messages: [ChatMessage(role: "system", content: "You are a helpful assistant."),
                                           ChatMessage(role: "user", content: "<audio><audio>Compare the two recordings.")],
             clips: ["speech", "clip37"]),
    ]

    /// With the default F16 KV cache, and with an F32 cache (the reference's precision).
    @Test(arguments: ["hf", "mmproj"], [KVType.f16, .f32])
    func chatMatchesTransformers(_ tag: String, _ kv: KVType) throws {
        let model = tag == "hf" ? try EncoderTests.hfModel() : try EncoderTests.ggufModel()
        let clips = try EncoderTests.clips()
        for c in Self.cases {
            let ref = Self.index[tag]!["prompts"]!.array!.first { $0["name"]!.string! == "\(tag)_\(c.name)" }!
            let refIDs = ref["input_ids"]!.array!.map { Int32($0.int!) }
            let media: [PromptMedia] = c.clips.map { AudioInput(clips[$0]!) }
            var options = ContextOptions()
            options.threads = 2
            options.kvType = kv
            let ctx = try Context(model: model, options: options)
            try ctx.evalChat(c.messages, media: media, addGenerationPrompt: true)
            #expect(ctx.tokens == refIDs, "\(tag) \(c.name): token ids")
            #expect(ctx.cachedMediaCount == c.clips.count)

            // logits of the last 8 positions, from a fresh evaluation of the same pieces
            let text = ref["rendered_text"]!.string!
            let pieces = try ctx.promptPieces(tokens: model.tokenizer.encode(text, parseSpecial: true), media: media)
            let other = try Context(model: model, options: options)
            let vocab = other.vocabularySize
            var all = [Float](repeating: 0, count: refIDs.count * vocab)
            try all.withUnsafeMutableBufferPointer { try other.eval(pieces: pieces, logits: $0.baseAddress!, allLogits: true) }
            let last = Self.blob.get(ref["last_logits"])
            let n = ref["last_positions"]!.int!
            var worst: Float = 0
            for i in 0 ..< n * vocab { worst = max(worst, abs(all[(refIDs.count - n) * vocab + i] - last[i])) }
            print("audio refs: \(tag) \(c.name) KV \(kv): \(refIDs.count) tokens, last \(n) positions' logits max |Δ| \(worst)")
            #expect(worst <= 1e-3, "\(tag) \(c.name): logits differ by \(worst)")

            var sampling = SamplingParams()
            sampling.temperature = 0
            var generated: [Int32] = []
            try ctx.generate(sampling: sampling, maxTokens: 16) { t, _ in
                if t >= 0 { generated.append(t) }
                return false
            }
            #expect(generated == ref["greedy"]!.array!.map { Int32($0.int!) }, "\(tag) \(c.name): greedy tokens")
        }
    }
}
