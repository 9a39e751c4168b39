import QwenFormats
import QwenModels
import QwenRuntime
import QwenTensors
import QwenTestSupport
import Testing

/// The first-generation Qwen against its original code (modeling_qwen.py as remote code on transformers) and
/// llama.cpp: Tests/Fixtures/qwen1, made by scripts/fixtures/make_qwen1_fixtures.py.
struct Qwen1Reference {
    let inputIDs: [Int32]
    let logits: [Float]?
    let vocab: Int
    let greedy: [Int32]
    /// Per generated token: the five largest logits [(id, logit)].
    let top5: [[(Int32, Float)]]
    let meta: JSON

    init(_ name: String) throws {
        meta = try TestSupport.readJSON(TestSupport.fixture("qwen1/refs/\(name).json"))
        inputIDs = meta["input_ids"]!.array!.map { Int32($0.int!) }
        greedy = meta["greedy"]!.array!.map { Int32($0.int!) }
        top5 = meta["greedy_top5"]!.array!.map { step in step.array!.map { (Int32($0.array![0].int!), Float($0.array![1].double!)) } }
        if let file = meta["logits_file"]?.string {
            let shape = meta["logits_shape"]!.array!.map { $0.int! }
            vocab = shape[1]
            logits = try TestSupport.readFloats(TestSupport.fixture("qwen1/refs/" + file))
            precondition(logits!.count == shape[0] * shape[1])
        } else {
            vocab = 2304
            logits = nil
        }
    }

    func row(_ t: Int) -> ArraySlice<Float> { logits![t * vocab ..< (t + 1) * vocab] }
}

func loadQwen1(_ relative: String) throws -> Model { try Model.load(path: TestSupport.fixture("qwen1/" + relative)) }

/// Greedy continuation that also returns, per step, the logits the token was chosen from.
func greedyWithLogits(_ ctx: Context, prompt: [Int32], count: Int) throws -> (tokens: [Int32], logits: [[Float]]) {
    ctx.reset()
    var last = [Float](repeating: 0, count: ctx.vocabularySize)
    try last.withUnsafeMutableBufferPointer { try ctx.eval(prompt, logits: $0.baseAddress!) }
    var tokens: [Int32] = [], rows: [[Float]] = []
    for _ in 0 ..< count {
        let next = Int32(argmax(last[...]))
        tokens.append(next)
        rows.append(last)
        try last.withUnsafeMutableBufferPointer { try ctx.eval([next], logits: $0.baseAddress!) }
    }
    return (tokens, rows)
}

/// Max |Δ| over the references' top-5 logits of every generated token.
func top5Difference(_ rows: [[Float]], _ ref: Qwen1Reference) -> Float {
    var worst: Float = 0
    for (row, top) in zip(rows, ref.top5) {
        for (id, logit) in top { worst = max(worst, abs(row[Int(id)] - logit)) }
    }
    return worst
}

@Suite(.serialized) struct Qwen1ParityTests {
    /// The chat prompt (67 tokens, inside the training length) against the original code, GGUF and HF folder,
    /// in one batch and in batches of 5; the GGUF also against llama.cpp.
    @Test(arguments: ["qwen1-hf", "qwen1-f32.gguf"])
    func logitsMatchTheOriginalAtEveryPosition(_ file: String) throws {
        let model = try loadQwen1(file)
        #expect(model.config.architecture == "qwen")
        #expect(model.config.feedForwardSize == 96)
        #expect(model.languageModel.vocabularySize == 2304)
        var references = [("orig_qwen1_chat", try Qwen1Reference("orig_qwen1_chat"))]
        if file.hasSuffix(".gguf") { references.append(("llamacpp_qwen1_chat", try Qwen1Reference("llamacpp_qwen1_chat"))) }
        for (name, ref) in references {
            for batch in [512, 5] {
                let ctx = try context(model, batch: batch)
                let got = try allLogits(ctx, ref.inputIDs)
                var worst: Float = 0
                for t in 0 ..< ref.inputIDs.count {
                    let g = got[t * ref.vocab ..< (t + 1) * ref.vocab], r = ref.row(t)
                    for (x, y) in zip(g, r) { worst = max(worst, abs(x - y)) }
                    #expect(argmax(g) == argmax(r), "argmax differs at position \(t)")
                }
                print("parity qwen1 \(file) vs \(name) batch \(batch): max |Δlogit| \(worst)")
                #expect(worst <= 1e-3, "max |Δlogit| \(worst) (batch \(batch))")
            }
        }
    }

    @Test(arguments: ["qwen1-hf", "qwen1-f32.gguf"])
    func greedyContinuationMatchesTheOriginal(_ file: String) throws {
        let ref = try Qwen1Reference("orig_qwen1_chat")
        let (tokens, rows) = try greedyWithLogits(try context(try loadQwen1(file)), prompt: ref.inputIDs, count: 32)
        #expect(tokens == ref.greedy)
        #expect(tokens == (try Qwen1Reference("llamacpp_qwen1_chat")).greedy)
        let worst = top5Difference(rows, ref)
        print("parity qwen1 \(file) greedy: identical \(tokens == ref.greedy), top-5 logits max |Δ| \(worst)")
        #expect(worst <= 1e-3)
    }

    /// seq_length 32 and a 57-token prompt: the prompt forward uses NTK alpha 3 and logn-scaled queries from
    /// position 32; decoding keeps alpha 3 past position 64 (where the length alone would give 7).
    @Test func longContextMatchesTheOriginal() throws {
        let ref = try Qwen1Reference("orig_qwen1_long")
        #expect(ref.meta["ntk_alpha_prompt"]?.array?.first?.int == 3)
        let model = try loadQwen1("qwen1-long-hf")
        #expect(model.config.lengthExtrapolation == LengthExtrapolation(trainingLength: 32, dynamicNTK: true, lognAttention: true))
        // in one batch, and in batches of 5 (each batch takes the alpha of the whole prompt, as the one forward)
        for batch in [512, 5] {
            let ctx = try context(model, batch: batch)
            let got = try allLogits(ctx, ref.inputIDs)
            var worst: Float = 0
            for t in 0 ..< ref.inputIDs.count {
                let g = got[t * ref.vocab ..< (t + 1) * ref.vocab], r = ref.row(t)
                for (x, y) in zip(g, r) { worst = max(worst, abs(x - y)) }
                #expect(argmax(g) == argmax(r), "argmax differs at position \(t)")
            }
            print("parity qwen1 long context (dynamic NTK + logn) batch \(batch): max |Δlogit| \(worst)")
            #expect(worst <= 1e-3)
            let (tokens, rows) = try greedyWithLogits(ctx, prompt: ref.inputIDs, count: 32)
            let top = top5Difference(rows, ref)
            print("parity qwen1 long context greedy batch \(batch): identical \(tokens == ref.greedy), top-5 logits max |Δ| \(top)")
            #expect(tokens == ref.greedy)
            #expect(top <= 1e-3)
        }
        // not what a recomputation at every length gives (the original's cache keeps the prompt's alpha)
        #expect(ref.meta["greedy_nocache"]!.array!.map { Int32($0.int!) } != ref.greedy)
    }

    /// The same weights in the normal folder and the GGUF have no length extrapolation (a GGUF cannot say
    /// seq_length): the long prompt runs as llama.cpp runs it.
    @Test func ggufPastTheTrainingLengthRunsAsLlamaCpp() throws {
        let ref = try Qwen1Reference("llamacpp_qwen1_long")
        let model = try loadQwen1("qwen1-f32.gguf")
        #expect(model.config.lengthExtrapolation == nil)
        #expect(try loadQwen1("qwen1-hf").config.lengthExtrapolation?.trainingLength == 2048)
        let (tokens, rows) = try greedyWithLogits(try context(model), prompt: ref.inputIDs, count: 32)
        #expect(tokens == ref.greedy)
        #expect(top5Difference(rows, ref) <= 1e-3)
    }

    /// ChatML as the original make_context builds it (default system message "You are a helpful assistant."),
    /// tokenized to the same ids, from the tiktoken folder and the GGUF.
    @Test(arguments: ["qwen1-hf", "qwen1-f32.gguf"])
    func chatPromptMatchesMakeContext(_ file: String) throws {
        let model = try loadQwen1(file)
        let template = ChatTemplate(model: model)
        #expect(template.defaultSystemMessage == "You are a helpful assistant.")
        for name in ["chat", "long"] {
            let p = try TestSupport.readJSON(TestSupport.fixture("qwen1/refs/prompt_\(name).json"))
            var messages: [ChatMessage] = []
            for turn in p["history"]!.array! {
                messages.append(ChatMessage(role: "user", content: turn.array![0].string!))
                messages.append(ChatMessage(role: "assistant", content: turn.array![1].string!))
            }
            messages.append(ChatMessage(role: "user", content: p["query"]!.string!))
            let text = template.render(messages, addGenerationPrompt: true)
            #expect(text == p["rendered_text"]!.string!)
            let ids = model.tokenizer.encode(text, parseSpecial: true)
            #expect(ids == p["input_ids"]!.array!.map { Int32($0.int!) })
            // an explicit system message replaces the default
            let custom = template.render([ChatMessage(role: "system", content: "Be brief.")] + messages, addGenerationPrompt: true)
            #expect(custom.hasPrefix("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n"))
        }
        // a context uses it
        let ctx = try context(model)
        try ctx.evalChat([ChatMessage(role: "user", content: "Hello! 你好，世界。 Write f(x) = x**2 in Python 🐍.")],
                         addGenerationPrompt: true)
        #expect(ctx.tokens == (try Qwen1Reference("orig_qwen1_chat")).inputIDs)
    }

    @Test func configAndNamesOfTheOriginalLayout() throws {
        let hf = try loadQwen1("qwen1-hf").config, gguf = try loadQwen1("qwen1-f32.gguf").config
        #expect(hf.hiddenSize == 32 && hf.headCount == 2 && hf.kvHeadCount == 2 && hf.headDim == 16 && hf.layerCount == 2)
        #expect(hf.rmsNormEps == 1e-6 && gguf.rmsNormEps == hf.rmsNormEps)
        #expect(hf.ropeTheta == 10_000 && gguf.ropeTheta == 10_000)
        #expect(gguf.feedForwardSize == hf.feedForwardSize)
        #expect(hf.contextLength == 8192 && gguf.contextLength == 8192)
        #expect(WeightStore.ggufName(huggingFace: "transformer.h.3.attn.c_attn.bias") == "blk.3.attn_qkv.bias")
        #expect(WeightStore.ggufName(huggingFace: "transformer.h.0.mlp.w1.weight") == "blk.0.ffn_up.weight")
        #expect(WeightStore.ggufName(huggingFace: "transformer.h.0.mlp.w2.weight") == "blk.0.ffn_gate.weight")
        #expect(WeightStore.ggufName(huggingFace: "transformer.h.0.mlp.c_proj.weight") == "blk.0.ffn_down.weight")
        #expect(WeightStore.ggufName(huggingFace: "transformer.wte.weight") == "token_embd.weight")
        #expect(WeightStore.ggufName(huggingFace: "transformer.ln_f.weight") == "output_norm.weight")
        #expect(WeightStore.ggufName(huggingFace: "lm_head.weight") == "output.weight")
        // get_ntk_alpha and the logn factors
        #expect(QwenV1Model.ntkAlpha(length: 32, trainingLength: 32) == 1)
        #expect(QwenV1Model.ntkAlpha(length: 33, trainingLength: 32) == 3)
        #expect(QwenV1Model.ntkAlpha(length: 64, trainingLength: 32) == 3)
        #expect(QwenV1Model.ntkAlpha(length: 65, trainingLength: 32) == 7)
        #expect(QwenV1Model.ntkAlpha(length: 8192 * 4, trainingLength: 8192) == 7)
        #expect(QwenV1Model.lognScale(position: 31, trainingLength: 32) == 1)
        #expect(QwenV1Model.lognScale(position: 63, trainingLength: 32) == Float(1.2))
    }

    @Test func unsupportedOriginalConfigsAreRefused() throws {
        let base = try TestSupport.readJSON(TestSupport.fixture("qwen1/qwen1-hf/config.json"))
        func config(_ changes: [String: JSON?] = [:]) throws -> ModelConfig {
            var pairs = base.object!
            for (key, value) in changes {
                pairs.removeAll { $0.key == key }
                if let value { pairs.append((key, value)) }
            }
            return try ModelConfig(huggingFace: .object(pairs))
        }
        #expect(try config().lengthExtrapolation?.trainingLength == 2048)
        #expect(try config(["use_dynamic_ntk": .bool(false), "use_logn_attn": .bool(false)]).lengthExtrapolation == nil)
        #expect((#expect(throws: QwenError.self) { try config(["rotary_pct": .number(0.5)]) })?.status == .unsupported)
        #expect((#expect(throws: QwenError.self) { try config(["no_bias": .bool(false)]) })?.status == .unsupported)
        #expect(throws: QwenError.self) { try config(["kv_channels": .number(8)]) }
        #expect(throws: QwenError.self) { try config(["seq_length": JSON?.none]) }
    }
}
