import QwenFormats
import QwenModels
import QwenRuntime
import QwenTensors
import QwenTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Qwen3, Qwen3-MoE and Qwen2-MoE against Tests/Fixtures/family (scripts/fixtures/make_family_fixtures.py).

func loadFamilyModel(_ relative: String) throws -> Model {
    try Model.load(path: TestSupport.fixture("family/" + relative))
}

/// A case from Tests/Fixtures/family/refs: prompt ids, logits at every position, greedy continuation.
struct FamilyReference {
    let inputIDs: [Int32]
    let logits: [Float]
    let vocab: Int
    let greedy: [Int32]
    /// Per generated token: the 5 largest logits [(id, logit)] of the decode step that produced it.
    let greedyTop5: [[(id: Int, logit: Float)]]

    init(_ name: String) throws {
        let meta = try TestSupport.readJSON(TestSupport.fixture("family/refs/\(name).json"))
        inputIDs = meta["input_ids"]!.array!.map { Int32($0.int!) }
        greedy = meta["greedy"]!.array!.map { Int32($0.int!) }
        greedyTop5 = meta["greedy_top5"]!.array!.map { step in
            step.array!.map { (id: $0.array![0].int!, logit: Float($0.array![1].double!)) }
        }
        let shape = meta["logits_shape"]!.array!.map { $0.int! }
        vocab = shape[1]
        logits = try TestSupport.readFloats(TestSupport.fixture("family/refs/" + meta["logits_file"]!.string!))
        precondition(logits.count == shape[0] * shape[1])
    }

    func row(_ t: Int) -> ArraySlice<Float> { logits[t * vocab ..< (t + 1) * vocab] }
}

@Suite(.serialized) struct FamilyParityTests {
    /// Every file of each architecture against the transformers reference (F32 math on the BF16 weights).
    static let transformersCases: [ParityCase] = [
        ParityCase(model: "qwen3-hf", reference: "hf_qwen3", maxAbs: 1e-3),
        ParityCase(model: "qwen3-hf-v5", reference: "hf_qwen3", maxAbs: 1e-3),
        ParityCase(model: "qwen3-f32.gguf", reference: "hf_qwen3", maxAbs: 1e-3),
        ParityCase(model: "qwen3moe-hf", reference: "hf_qwen3moe", maxAbs: 1e-3),
        ParityCase(model: "qwen3moe-hf-v5", reference: "hf_qwen3moe", maxAbs: 1e-3),
        ParityCase(model: "qwen3moe-hf-fused", reference: "hf_qwen3moe", maxAbs: 1e-3),
        ParityCase(model: "qwen3moe-f32.gguf", reference: "hf_qwen3moe", maxAbs: 1e-3),
        ParityCase(model: "qwen2moe-hf", reference: "hf_qwen2moe", maxAbs: 1e-3),
        ParityCase(model: "qwen2moe-hf-v5", reference: "hf_qwen2moe", maxAbs: 1e-3),
        ParityCase(model: "qwen2moe-f32.gguf", reference: "hf_qwen2moe", maxAbs: 1e-3),
    ]

    @Test(arguments: transformersCases)
    func logitsMatchTransformersAtEveryPosition(_ c: ParityCase) throws {
        let ref = try FamilyReference(c.reference)
        let model = try loadFamilyModel(c.model)
        #expect(model.languageModel.vocabularySize == ref.vocab)
        // the whole prompt in one batch, and in uneven batches of 5 (batched prefill must not change results)
        for batch in [512, 5] {
            let ctx = try context(model, batch: batch)
            let got = try allLogits(ctx, ref.inputIDs)
            var worst: Float = 0
            for t in 0 ..< ref.inputIDs.count {
                let g = got[t * ref.vocab ..< (t + 1) * ref.vocab], r = ref.row(t)
                for (x, y) in zip(g, r) { worst = max(worst, abs(x - y)) }
                #expect(argmax(g) == argmax(r), "argmax differs at position \(t)")
            }
            print("parity \(c.testDescription) batch \(batch): max |Δlogit| \(worst)")
            #expect(worst <= c.maxAbs!, "max |Δlogit| \(worst) (batch \(batch))")
        }
    }

    /// 32 greedy tokens through the KV cache, and the top-5 logits of every decode step (rounded to 1e-6 in
    /// the reference) within 1e-3.
    @Test(arguments: transformersCases)
    func greedyContinuationMatchesTransformers(_ c: ParityCase) throws {
        let ref = try FamilyReference(c.reference)
        let ctx = try context(try loadFamilyModel(c.model))
        var last = [Float](repeating: 0, count: ctx.vocabularySize)
        try last.withUnsafeMutableBufferPointer { try ctx.eval(ref.inputIDs, logits: $0.baseAddress!) }
        var tokens: [Int32] = []
        var worst: Float = 0
        for step in 0 ..< 32 {
            for (id, logit) in ref.greedyTop5[step] { worst = max(worst, abs(last[id] - logit)) }
            let next = Int32(argmax(last[...]))
            tokens.append(next)
            try last.withUnsafeMutableBufferPointer { try ctx.eval([next], logits: $0.baseAddress!) }
        }
        print("parity \(c.testDescription) greedy: top-5 decode logits max |Δ| \(worst)")
        #expect(tokens == ref.greedy)
        #expect(worst <= 1e-3, "decode-step logits differ by \(worst)")
    }

    @Test func quantizedMoEMatchesLlamaCpp() throws {
        let ref = try FamilyReference("llamacpp_qwen3moe_q8_0")
        let model = try loadFamilyModel("qwen3moe-q8_0.gguf")
        for (batch, threads) in [(512, 2), (5, 1)] {
            let ctx = try context(model, batch: batch, threads: threads)
            let got = try allLogits(ctx, ref.inputIDs)
            var lowest = 1.0
            var worst: Float = 0
            for t in 0 ..< ref.inputIDs.count {
                let g = got[t * ref.vocab ..< (t + 1) * ref.vocab], r = ref.row(t)
                lowest = min(lowest, cosine(g, r))
                for (x, y) in zip(g, r) { worst = max(worst, abs(x - y)) }
                #expect(argmax(g) == argmax(r), "argmax differs at position \(t)")
            }
            print("parity qwen3moe-q8_0.gguf vs llamacpp_qwen3moe_q8_0 (batch \(batch), \(threads) threads): " +
                  "lowest per-position cosine \(lowest), max |Δlogit| \(worst)")
            // Positions 0-2 agree to 1e-15. At position 3 the attention output (equal to 3e-7) has an element on
            // a Q8_0 rounding boundary: the quantized input of attn_output differs by one step, the router
            // probabilities by 1e-4, the logits by 0.05 (cosine 0.99986) on this small, sharply initialized model.
            #expect(lowest >= 0.9995, "lowest per-position cosine \(lowest)")
            #expect(try greedy(ctx, prompt: ref.inputIDs, count: 32) == ref.greedy)
        }
    }

    @Test func oneThreadAndManyThreadsAgreeOnMoE() throws {
        let ref = try FamilyReference("hf_qwen2moe")
        let model = try loadFamilyModel("qwen2moe-hf")
        let a = try allLogits(try context(model, threads: 1), ref.inputIDs)
        let b = try allLogits(try context(model, threads: 4), ref.inputIDs)
        #expect(a == b)
    }

    /// A broken router (NaN weights) gives garbage, not a crash: however the probabilities come out, each token
    /// goes to `used` distinct experts, so the gathered rows fit the scratch.
    @Test func nanRouterDoesNotCrash() throws {
        let gguf = try GGUFFile(path: TestSupport.fixture("family/qwen3moe-f32.gguf"))
        var bytes = Array(gguf.file.buffer)
        for t in gguf.tensors where t.name.hasSuffix("ffn_gate_inp.weight") {
            let offset = t.data - gguf.file.base
            for i in 0 ..< t.elementCount {
                withUnsafeBytes(of: Float.nan.bitPattern.littleEndian) { bytes.replaceSubrange(offset + 4 * i ..< offset + 4 * i + 4, with: $0) }
            }
        }
        let path = TestSupport.temporaryPath("nan-router.gguf")
        TestSupport.writeBytes(bytes, to: path)
        defer { unlink(path) }
        let ctx = try context(try Model.load(path: path), batch: 7)
        let ids = try FamilyReference("hf_qwen3moe").inputIDs
        #expect(try allLogits(ctx, ids).count == ids.count * ctx.vocabularySize)
        #expect(try greedy(ctx, prompt: ids, count: 4).count == 4)
    }

    @Test func configurationsAndArchitectures() throws {
        for file in ["qwen3-hf", "qwen3-hf-v5", "qwen3-f32.gguf"] {
            let m = try loadFamilyModel(file)
            let c = m.config
            #expect(m.languageModel is Qwen3Model, "\(file)")
            #expect(c.architecture == "qwen3" && c.hiddenSize == 16 && c.headCount == 4 && c.kvHeadCount == 2)
            #expect(c.headDim == 16 && c.headCount * c.headDim != c.hiddenSize, "\(file): head_dim independent of hidden")
            #expect(c.experts == nil && c.attentionBias != true)
        }
        for file in ["qwen3moe-hf", "qwen3moe-hf-v5", "qwen3moe-hf-fused", "qwen3moe-f32.gguf", "qwen3moe-q8_0.gguf"] {
            let m = try loadFamilyModel(file)
            #expect(m.languageModel is Qwen3MoEModel, "\(file)")
            let e = try #require(m.config.experts)
            #expect(e.count == 8 && e.used == 2 && e.feedForwardSize == 32 && e.sharedFeedForwardSize == 0, "\(file)")
            #expect(e.normalizeTopK, "\(file): Qwen3-MoE renormalizes the top-k probabilities")
            #expect(e.sparseLayers.map { $0 == [true, true] } ?? file.hasSuffix(".gguf"), "\(file)")
        }
        for file in ["qwen2moe-hf", "qwen2moe-hf-v5", "qwen2moe-f32.gguf"] {
            let m = try loadFamilyModel(file)
            #expect(m.languageModel is Qwen2MoEModel, "\(file)")
            let e = try #require(m.config.experts)
            #expect(e.count == 4 && e.used == 2 && e.feedForwardSize == 16 && e.sharedFeedForwardSize == 32, "\(file)")
            #expect(!e.normalizeTopK, "\(file)")
            #expect(m.config.attentionBias == (file.hasSuffix(".gguf") ? nil : true), "\(file)")
        }
    }

    /// `decoder_sparse_step` and `mlp_only_layers` choose dense layers (no released Qwen MoE uses them and
    /// llama.cpp's converter cannot write such a qwen2moe GGUF, so this is checked on the parsed config and on
    /// a folder whose config asks for a dense layer its weights do not have).
    @Test func denseLayersOfMoEConfigs() throws {
        let base = try TestSupport.readJSON(TestSupport.fixture("family/qwen2moe-hf/config.json"))
        // repeated keys: the last one counts
        func config(_ extra: String) throws -> ModelConfig {
            var text = base.serialized
            text.removeLast()  // "}"
            return try ModelConfig(huggingFace: JSON.parse(text + (extra.isEmpty ? "" : ", " + extra) + "}"))
        }
        #expect(try config("\"decoder_sparse_step\": 2, \"num_hidden_layers\": 4").experts?.sparseLayers == [false, true, false, true])
        #expect(try config("\"mlp_only_layers\": [0], \"num_hidden_layers\": 3").experts?.sparseLayers == [false, true, true])
        #expect(try config("\"num_local_experts\": 4").experts?.count == 4)
        #expect(throws: QwenError.self) { try config("\"decoder_sparse_step\": 0") }
        #expect(try config("\"qkv_bias\": false").attentionBias == false)
        #expect(try config("").attentionBias == true)
        // a folder whose config makes layer 1 dense: its MLP weights are looked for (and missing here)
        let dir = TestSupport.temporaryPath("dense-layer-moe")
        mkdir(dir, 0o755)
        defer {
            for f in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"] { unlink(dir + "/" + f) }
            rmdir(dir)
        }
        var text = base.serialized
        text.removeLast()
        TestSupport.writeBytes(Array((text + ", \"mlp_only_layers\": [1]}").utf8), to: dir + "/config.json")
        for f in ["model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
            symlink(TestSupport.fixture("family/qwen2moe-hf/" + f), dir + "/" + f)
        }
        let error = #expect(throws: QwenError.self) { try Model.load(path: dir) }
        #expect(error?.message.contains("model.layers.1.mlp.gate_proj.weight") == true, "\(error?.message ?? "")")
    }

    @Test func expertTensorNames() {
        #expect(WeightStore.ggufName(huggingFace: "model.layers.3.mlp.experts.17.gate_proj.weight") == "blk.3.ffn_gate.17.weight")
        #expect(WeightStore.ggufName(huggingFace: "model.layers.0.mlp.experts.0.down_proj.weight") == "blk.0.ffn_down.0.weight")
        #expect(WeightStore.ggufName(huggingFace: "model.layers.2.mlp.experts.gate_up_proj") == "blk.2.ffn_gate_up_exps.weight")
        #expect(WeightStore.ggufName(huggingFace: "model.layers.2.mlp.experts.down_proj") == "blk.2.ffn_down_exps.weight")
        #expect(WeightStore.ggufName(huggingFace: "model.layers.1.mlp.gate.weight") == "blk.1.ffn_gate_inp.weight")
        #expect(WeightStore.ggufName(huggingFace: "model.layers.1.mlp.shared_expert_gate.weight") == "blk.1.ffn_gate_inp_shexp.weight")
        #expect(WeightStore.ggufName(huggingFace: "model.layers.1.mlp.shared_expert.up_proj.weight") == "blk.1.ffn_up_shexp.weight")
        #expect(WeightStore.ggufName(huggingFace: "model.layers.1.mlp.experts.x.up_proj.weight") == nil)
        #expect(WeightStore.huggingFaceName(gguf: "blk.3.ffn_up.5.weight") == "model.layers.3.mlp.experts.5.up_proj.weight")
        #expect(WeightStore.huggingFaceName(gguf: "blk.0.ffn_gate_inp.weight") == "model.layers.0.mlp.gate.weight")
    }
}

/// The Qwen3 chat template against transformers' apply_chat_template (family/refs/chat_qwen3.json).
@Suite struct Qwen3ChatTemplateTests {
    struct Case {
        let name: String
        let messages: [ChatMessage]
        let addGenerationPrompt: Bool
        let enableThinking: Bool?
        let rendered: String
        let ids: [Int32]
    }

    static func cases() throws -> [Case] {
        let j = try TestSupport.readJSON(TestSupport.fixture("family/refs/chat_qwen3.json"))
        return j["cases"]!.array!.map { c in
            Case(name: c["name"]!.string!,
                 messages: c["messages"]!.array!.map { ChatMessage(role: $0["role"]!.string!, content: $0["content"]!.string!) },
                 addGenerationPrompt: c["add_generation_prompt"]!.bool!, enableThinking: c["enable_thinking"]!.bool,
                 rendered: c["rendered_text"]!.string!, ids: c["input_ids"]!.array!.map { Int32($0.int!) })
        }
    }

    @Test(arguments: ["qwen3-hf", "qwen3-f32.gguf", "qwen3moe-q8_0.gguf"])
    func rendersAndTokenizesLikeTransformers(_ file: String) throws {
        let m = try loadFamilyModel(file)
        let template = ChatTemplate(modelTemplate: m.chatTemplate)
        #expect(template.style == .qwen3 && template.defaultSystemMessage == nil)
        let all = try Self.cases()
        #expect(all.count == 48)
        for c in all {
            let text = template.render(c.messages, addGenerationPrompt: c.addGenerationPrompt,
                                       enableThinking: c.enableThinking ?? true)
            #expect(text == c.rendered, "\(c.name) generation prompt \(c.addGenerationPrompt) thinking \(String(describing: c.enableThinking))")
            #expect(m.tokenizer.encode(text, parseSpecial: true) == c.ids, "\(c.name)")
        }
    }

    @Test func otherTemplatesIgnoreThinking() throws {
        // Qwen2-MoE's fixture carries the Qwen2.5 template: ChatML with its default system message
        let m = try loadFamilyModel("qwen2moe-f32.gguf")
        let template = ChatTemplate(modelTemplate: m.chatTemplate)
        #expect(template.style == .chatML && template.defaultSystemMessage != nil)
        let msgs = [ChatMessage(role: "user", content: "hi")]
        #expect(template.render(msgs, addGenerationPrompt: true, enableThinking: false) ==
                template.render(msgs, addGenerationPrompt: true))
        #expect(!ChatTemplate.isQwen3(m.chatTemplate ?? ""))
        #expect(!ChatTemplate.isQwen3(""))
    }

    @Test func evalChatWithThinkingOnAndOff() throws {
        let m = try loadFamilyModel("qwen3-f32.gguf")
        let ctx = try context(m, size: 512)
        let all = try Self.cases().filter { $0.name == "history_with_thinking" && $0.addGenerationPrompt }
        let on = try #require(all.first { $0.enableThinking == nil }), off = try #require(all.first { $0.enableThinking == false })
        try ctx.evalChat(on.messages, addGenerationPrompt: true)
        #expect(ctx.tokens == on.ids)
        let before = ctx.evaluatedTokenCount
        try ctx.evalChat(off.messages, addGenerationPrompt: true, enableThinking: false)
        #expect(ctx.tokens == off.ids)
        // only the empty think block was added
        #expect(ctx.evaluatedTokenCount - before == off.ids.count - on.ids.count)
    }
}
