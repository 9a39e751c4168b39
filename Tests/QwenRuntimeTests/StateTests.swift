import QwenFormats
import QwenModels
import QwenRuntime
import QwenTensors
import QwenTestSupport
import Testing

@Suite struct StateTests {
    @Test(arguments: [KVType.f16, .f32])
    func savedStateResumesExactly(kv: KVType) throws {
        let model = try loadFixtureModel("qwen2-q8_0.gguf")
        let a = try context(model, kv: kv)
        let p = try PromptFixture("prompt_chat")
        try a.evalChat(p.messages, addGenerationPrompt: true)
        let state = try a.saveState()
        #expect(state.count == a.stateSize)
        var rest: [Int32] = []
        try a.generate(sampling: .greedy, maxTokens: 12) { t, _ in if t >= 0 { rest.append(t) }; return false }

        let b = try context(model, kv: kv)
        try b.evalChat([ChatMessage(role: "user", content: "something else entirely")], addGenerationPrompt: true)
        try state.withUnsafeBytes { try b.loadState($0) }
        #expect(b.tokens == p.ids)
        #expect(Array(b.lastHidden!).count == model.config.hiddenSize)
        var resumed: [Int32] = []
        try b.generate(sampling: .greedy, maxTokens: 12) { t, _ in if t >= 0 { resumed.append(t) }; return false }
        #expect(resumed == rest)
        // evaluating the same conversation again reuses the whole restored cache
        let before = b.evaluatedTokenCount
        b.truncate(to: p.ids.count)
        try b.evalChat(p.messages, addGenerationPrompt: true)
        #expect(b.evaluatedTokenCount - before == 1)  // only the last prompt token, for fresh logits

        let path = TestSupport.temporaryPath("state-\(kv).bin")  // the cases run in parallel
        try a.saveState(toFile: path)
        let c = try context(model, kv: kv)
        try c.loadState(fromFile: path)
        #expect(c.tokens == a.tokens)
    }

    @Test func incompatibleOrDamagedStatesAreRefused() throws {
        let model = try loadFixtureModel("qwen2-q8_0.gguf")
        let a = try context(model, kv: .f16)
        try a.evalChat([ChatMessage(role: "user", content: "hi")], addGenerationPrompt: true)
        let state = try a.saveState()
        let other = try context(try loadFixtureModel("qwen25-q8_0.gguf"), kv: .f16)
        let e1 = #expect(throws: QwenError.self) { try state.withUnsafeBytes { try other.loadState($0) } }
        #expect(e1?.status == .invalidArgument)
        let f32 = try context(model, kv: .f32)
        #expect((#expect(throws: QwenError.self) { try state.withUnsafeBytes { try f32.loadState($0) } })?.status == .invalidArgument)
        let small = try context(model, kv: .f16, size: 8)
        #expect((#expect(throws: QwenError.self) { try state.withUnsafeBytes { try small.loadState($0) } })?.status == .contextFull)
        let b = try context(model, kv: .f16)
        for cut in [0, 3, 40, state.count - 1] {
            #expect(throws: QwenError.self) { try Array(state[..<cut]).withUnsafeBytes { try b.loadState($0) } }
        }
        var corrupt = state
        corrupt[0] ^= 0xFF
        #expect((#expect(throws: QwenError.self) { try corrupt.withUnsafeBytes { try b.loadState($0) } })?.status == .format)
        #expect(b.tokens.isEmpty)  // refused states leave the context as it was
    }

    @Test func modelInfoDescribesTheFile() throws {
        let m = try loadFixtureModel("qwen2-q4_0.gguf")
        #expect(m.config.architecture == "qwen2")
        #expect(m.weightTypeName == "Q4_0")
        #expect(try loadFixtureModel("qwen25-hf").weightTypeName == "BF16")
        #expect(m.parameterCount > 100_000 && m.weightBytes < m.parameterCount * 4)
    }
}
