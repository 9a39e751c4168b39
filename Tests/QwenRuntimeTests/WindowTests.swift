import QwenFormats
import QwenModels
import QwenRuntime
import QwenTensors
import QwenTestSupport
import Testing

@Suite struct WindowTests {
    /// Layer-0 keys depend only on the token and its position, so keys moved by `discard` must equal the keys
    /// a fresh evaluation computes at the new positions.
    @Test(arguments: [KVType.f32, .f16])
    func discardMovesKeysToTheirNewPositions(kv: KVType) throws {
        let model = try loadFixtureModel("qwen2-f32.gguf")
        let ids = Array(try Reference("hf_qwen2_f32").inputIDs.prefix(30))
        let a = try context(model, kv: kv)
        try a.eval(ids)
        try a.discard(5 ..< 17)
        #expect(a.tokens == Array(ids[..<5] + ids[17...]))
        let b = try context(model, kv: kv)
        try b.eval(Array(ids[..<5] + ids[17...]))
        let cache = a.kvCache, fresh = b.kvCache, d = cache.headDim
        var worst: Float = 0
        for head in 0 ..< cache.kvHeads {
            for p in 0 ..< a.tokens.count {
                var x = [Float](repeating: 0, count: d), y = x
                try x.withUnsafeMutableBufferPointer { try RowKernels.dequantizeRow(kv == .f32 ? .f32 : .f16, cache.key(layer: 0, head: head, position: p), $0.baseAddress!, d) }
                try y.withUnsafeMutableBufferPointer { try RowKernels.dequantizeRow(kv == .f32 ? .f32 : .f16, fresh.key(layer: 0, head: head, position: p), $0.baseAddress!, d) }
                for i in 0 ..< d { worst = max(worst, abs(x[i] - y[i])) }
            }
        }
        #expect(worst < (kv == .f32 ? 1e-5 : 5e-3), "largest key difference \(worst)")
        // the cache stays usable: generation continues
        try a.eval([ids[5]])
        #expect(a.tokens.count == 19)
        #expect(throws: QwenError.self) { try a.discard(10 ..< 40) }
    }

    func chat(_ turns: Int) -> [ChatMessage] {
        var m = [ChatMessage(role: "system", content: "You are a terse assistant who answers in one line.")]
        for i in 0 ..< turns {
            m.append(ChatMessage(role: "user", content: "Question number \(i): what is \(i) + \(i)?"))
            m.append(ChatMessage(role: "assistant", content: "The answer to question \(i) is \(2 * i)."))
        }
        m.append(ChatMessage(role: "user", content: "And the last question?"))
        return m
    }

    @Test func longChatsFailByDefault() throws {
        let ctx = try context(try loadFixtureModel("qwen2-q8_0.gguf"), size: 160)
        #expect((#expect(throws: QwenError.self) { try ctx.evalChat(chat(12), addGenerationPrompt: true) })?.status == .contextFull)
    }

    @Test func slidingWindowKeepsTheSystemPromptAndDropsOldTurns() throws {
        let model = try loadFixtureModel("qwen2-q8_0.gguf")
        var o = ContextOptions()
        o.contextSize = 160
        o.kvType = .f32
        o.slidingWindow = true
        let ctx = try Context(model: model, options: o)
        let system = model.tokenizer.encode(ctx.chatTemplate.render([chat(0)[0]], addGenerationPrompt: false), parseSpecial: true)
        var reused = 0
        for turns in [2, 4, 8, 12, 16] {
            let before = ctx.evaluatedTokenCount
            try ctx.evalChat(chat(turns), addGenerationPrompt: true)
            #expect(ctx.tokens.count < 160)
            #expect(Array(ctx.tokens.prefix(system.count)) == system)
            #expect(ctx.keepCount == system.count)
            reused += ctx.tokens.count - (ctx.evaluatedTokenCount - before)
        }
        #expect(reused > 0)
        // generation that fills the cache drops older tokens after the system prompt and goes on
        let generated = try ctx.generate(sampling: .greedy, maxTokens: 200) { _, _ in false }
        #expect(generated.tokens == 200 || generated.reason == .endOfGeneration)
        #expect(Array(ctx.tokens.prefix(system.count)) == system)
    }
}
