import QwenFormats
import QwenModels
import QwenRuntime
import QwenTestSupport
import Testing

struct PromptFixture {
    let messages: [ChatMessage]
    let rendered: String
    let ids: [Int32]

    init(_ name: String) throws {
        let j = try TestSupport.readJSON(TestSupport.fixture("tiny/refs/\(name).json"))
        messages = j["messages"]!.array!.map { ChatMessage(role: $0["role"]!.string!, content: $0["content"]!.string!) }
        rendered = j["rendered_text"]!.string!
        ids = j["input_ids"]!.array!.map { Int32($0.int!) }
    }
}

@Suite struct ChatTemplateTests {
    @Test(arguments: ["qwen2-f32.gguf", "qwen2-hf", "qwen25-hf-v5"])
    func rendersAndTokenizesLikeTransformers(_ model: String) throws {
        let m = try loadFixtureModel(model)
        let template = ChatTemplate(modelTemplate: m.chatTemplate)
        #expect(template.defaultSystemMessage == "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.")
        for name in ["prompt_chat", "prompt_no_system"] {
            let p = try PromptFixture(name)
            let text = template.render(p.messages, addGenerationPrompt: true)
            #expect(text == p.rendered)
            #expect(m.tokenizer.encode(text, parseSpecial: true) == p.ids)
        }
    }

    @Test func recognisesTemplates() {
        let qwen2 = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
        #expect(ChatTemplate(modelTemplate: qwen2).defaultSystemMessage == "You are a helpful assistant.")
        let noDefault = "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
        #expect(ChatTemplate(modelTemplate: noDefault).defaultSystemMessage == nil)
        #expect(ChatTemplate(modelTemplate: nil).defaultSystemMessage == nil)
        let plain = ChatTemplate().render([ChatMessage(role: "user", content: "hi")], addGenerationPrompt: false)
        #expect(plain == "<|im_start|>user\nhi<|im_end|>\n")
    }
}

@Suite struct ContextTests {
    @Test func multiTurnChatEvaluatesOnlyWhatIsNew() throws {
        let m = try loadFixtureModel("qwen2-q8_0.gguf")
        let ctx = try context(m, size: 512)
        var history = [ChatMessage(role: "system", content: "You are terse."), ChatMessage(role: "user", content: "Hello!")]
        try ctx.evalChat(history, addGenerationPrompt: true)
        let first = ctx.evaluatedTokenCount
        #expect(first == ctx.tokens.count)
        var reply: [UInt8] = []
        try ctx.generate(sampling: .greedy, maxTokens: 12) { _, piece in reply += piece; return false }
        history.append(ChatMessage(role: "assistant", content: String(decoding: reply, as: UTF8.self)))
        history.append(ChatMessage(role: "user", content: "And now?"))
        let before = ctx.evaluatedTokenCount
        try ctx.evalChat(history, addGenerationPrompt: true)
        let full = m.tokenizer.encode(ctx.chatTemplate.render(history, addGenerationPrompt: true), parseSpecial: true)
        #expect(ctx.tokens == full)
        // the system prompt and first turn were not recomputed
        #expect(ctx.evaluatedTokenCount - before < full.count - first)
        // the same conversation again costs nothing
        let again = ctx.evaluatedTokenCount
        try ctx.evalChat(history, addGenerationPrompt: true)
        #expect(ctx.evaluatedTokenCount == again)
        // and a shorter one (edited last turn) recomputes only the differing tail
        history[history.count - 1].content = "Something else"
        try ctx.evalChat(history, addGenerationPrompt: true)
        let tail = ctx.evaluatedTokenCount - again
        #expect(tail > 0 && tail <= 16 && tail < ctx.tokens.count / 4)
    }

    @Test func reusedPrefixGivesTheSameLogitsAsAFreshContext() throws {
        let m = try loadFixtureModel("qwen2-f32.gguf")
        let a = try context(m), b = try context(m)
        let p = try PromptFixture("prompt_chat")
        try a.evalChat([ChatMessage(role: "user", content: "Something unrelated first.")], addGenerationPrompt: true)
        try a.evalChat(p.messages, addGenerationPrompt: true)
        try b.evalChat(p.messages, addGenerationPrompt: true)
        #expect(Array(a.lastLogits!) == Array(b.lastLogits!))
    }

    @Test func errorsLeaveTheContextUsable() throws {
        let m = try loadFixtureModel("qwen2-q4_0.gguf")
        let ctx = try context(m, size: 64)
        let long = [ChatMessage(role: "user", content: String(repeating: "word ", count: 100))]
        let e = #expect(throws: QwenError.self) { try ctx.evalChat(long, addGenerationPrompt: true) }
        #expect(e?.status == .contextFull)
        #expect(ctx.tokens.isEmpty)
        #expect((#expect(throws: QwenError.self) { try ctx.eval([-1]) })?.status == .invalidArgument)
        #expect((#expect(throws: QwenError.self) { try ctx.eval([Int32(m.languageModel.vocabularySize)]) })?.status == .invalidArgument)
        #expect((#expect(throws: QwenError.self) { try ctx.eval([]) })?.status == .invalidArgument)
        try ctx.evalChat([ChatMessage(role: "user", content: "hi")], addGenerationPrompt: true)
        #expect(!ctx.tokens.isEmpty)
        var options = ContextOptions()
        options.contextSize = -1
        #expect((#expect(throws: QwenError.self) { try Context(model: m, options: options) })?.status == .invalidArgument)
        options.contextSize = 1 << 22
        options.threads = 1
        // a cache this large (4M positions) either fits or is refused cleanly
        do { _ = try Context(model: m, options: options) } catch let error as QwenError { #expect(error.status == .outOfMemory) }
    }

    @Test func cancellationStopsAndClears() throws {
        let ctx = try context(try loadFixtureModel("qwen2-q8_0.gguf"))
        try ctx.evalChat([ChatMessage(role: "user", content: "hi")], addGenerationPrompt: true)
        var seen = 0
        let e = #expect(throws: QwenError.self) {
            try ctx.generate(sampling: .greedy, maxTokens: 50) { _, _ in
                seen += 1
                if seen == 3 { ctx.cancel() }
                return false
            }
        }
        #expect(e?.status == .cancelled)
        #expect(seen == 3)
        #expect(try ctx.generate(sampling: .greedy, maxTokens: 2) { _, _ in false }.tokens == 2)
    }
}

@Suite struct SamplerTests {
    func generateTokens(_ ctx: Context, _ sampling: SamplingParams, _ n: Int) throws -> [Int32] {
        try ctx.evalChat([ChatMessage(role: "user", content: "Tell me a story.")], addGenerationPrompt: true)
        var out: [Int32] = []
        try ctx.generate(sampling: sampling, maxTokens: n) { t, _ in
            if t >= 0 { out.append(t) }
            return false
        }
        return out
    }

    @Test func seedsAndLimitsBehave() throws {
        let ctx = try context(try loadFixtureModel("qwen2-q8_0.gguf"))
        var s = SamplingParams()
        s.seed = 7
        s.temperature = 1.2
        let a = try generateTokens(ctx, s, 16), b = try generateTokens(ctx, s, 16)
        #expect(a == b)
        s.seed = 8
        #expect(try generateTokens(ctx, s, 16) != a)
        // top_k = 1 is greedy whatever the temperature
        var k1 = SamplingParams()
        k1.topK = 1
        k1.temperature = 5
        #expect(try generateTokens(ctx, k1, 12) == generateTokens(ctx, .greedy, 12))
        // a huge repetition penalty forbids repeating recent tokens
        var p = SamplingParams.greedy
        p.repeatPenalty = 1e6
        p.penaltyLastN = 1 << 20
        let tokens = try generateTokens(ctx, p, 20)
        #expect(Set(tokens).count == tokens.count)
        for bad in [{ (x: inout SamplingParams) in x.topP = 1.5 }, { $0.minP = -1 }, { $0.topK = -2 }, { $0.repeatPenalty = 0 }, { $0.temperature = .nan }] {
            var q = SamplingParams()
            bad(&q)
            #expect((#expect(throws: QwenError.self) { try generateTokens(ctx, q, 1) })?.status == .invalidArgument)
        }
    }

    @Test func penaltiesAndTypicalSampling() throws {
        let ctx = try context(try loadFixtureModel("qwen2-q8_0.gguf"))
        for set in [{ (p: inout SamplingParams) in p.presencePenalty = 1e6 }, { $0.frequencyPenalty = 1e6 }] {
            var p = SamplingParams.greedy
            p.penaltyLastN = 1 << 20
            set(&p)
            let tokens = try generateTokens(ctx, p, 20)
            #expect(Set(tokens).count == tokens.count)
        }
        // a tiny typical mass leaves one candidate: the draw no longer depends on the seed
        var t = SamplingParams()
        t.temperature = 1
        t.topK = 0
        t.topP = 1
        t.minP = 0
        t.typicalP = 1e-6
        t.seed = 1
        let a = try generateTokens(ctx, t, 12)
        t.seed = 2
        #expect(try generateTokens(ctx, t, 12) == a)
        t.typicalP = 0
        #expect((#expect(throws: QwenError.self) { try generateTokens(ctx, t, 1) })?.status == .invalidArgument)
    }

    @Test func stopStringsCutTheTextEvenAcrossTokens() throws {
        let ctx = try context(try loadFixtureModel("qwen2-q8_0.gguf"))
        let prompt = [ChatMessage(role: "user", content: "Tell me a story.")]
        func run(_ stop: [String]) throws -> (text: [UInt8], pieces: [[UInt8]], reason: Context.StopReason) {
            try ctx.evalChat(prompt, addGenerationPrompt: true)
            var text: [UInt8] = [], pieces: [[UInt8]] = []
            let r = try ctx.generate(sampling: .greedy, maxTokens: 40, stop: stop) { t, piece in
                if t >= 0 { pieces.append(piece) }
                text += piece
                return false
            }
            return (text, pieces, r.reason)
        }
        let full = try run([])
        #expect(full.reason == .maxTokens)
        // a stop string made of the end of one token's text and the start of the next one
        var boundary = 0, k = 0
        while k < full.pieces.count - 2, full.pieces[k].count < 2 || full.pieces[k + 1].count < 2 {
            boundary += full.pieces[k].count
            k += 1
        }
        boundary += full.pieces[k].count
        let stopBytes = Array(full.text[(boundary - 2) ..< (boundary + 2)])
        let stop = String(decoding: stopBytes, as: UTF8.self)
        guard Array(stop.utf8) == stopBytes else { Issue.record("boundary text is not valid UTF-8: pick another"); return }
        print("stop string across tokens \(k) and \(k + 1): \(stopBytes)")
        let cut = try run([stop, "never appears \u{1F600}"])
        #expect(cut.reason == .stopString)
        let first = Context.firstMatch(of: [stopBytes], in: full.text)!
        #expect(cut.text == Array(full.text[..<first]))
        #expect(Context.longestStopPrefix([Array("abc".utf8)], endingAt: Array("xxab".utf8)) == 2)
        #expect(Context.longestStopPrefix([Array("abc".utf8)], endingAt: Array("xxac".utf8)) == 0)
    }

    @Test func utf8StreamHoldsBackPartialCharacters() {
        var s = UTF8Stream()
        let snake = Array("🐍".utf8)  // 4 bytes
        #expect(s.push([0x41] + snake[0 ..< 1]) == [0x41])
        #expect(s.push(Array(snake[1 ..< 3])) == [])
        #expect(s.push(Array(snake[3...]) + [0x42]) == snake + [0x42])
        #expect(s.push([0xE4, 0xBD]) == [])
        #expect(s.flush() == [0xE4, 0xBD])
        #expect(s.push([0xFF, 0x43]) == [0xFF, 0x43])  // invalid bytes pass through
    }
}
