// The fuzzers' small fixtures (Tests/Fuzz/fixtures) and seed corpora (Tests/Fuzz/corpus/<harness>), written by
// `QWEN_WRITE_FUZZ_SEEDS=1 swift test --filter writeFuzzSeeds` (see docs/RELIABILITY.md). Deterministic.
//
// The mini model: Qwen2 (and Qwen3) shapes at hidden 32, 2 layers, 4 heads / 2 KV heads of 8, feed-forward 64, on the
// tiny fixture tokenizer cut to its first 320 tokens (the 256 bytes and 64 merges, whose ids are those of the real Qwen
// vocabulary) plus its 26 added tokens (ids 320...345). Random weights: its output is gibberish by construction.
import QwenFormats
import QwenModels
import QwenRuntime
import QwenTensors
import QwenTokenizer
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

public enum FuzzSeeds {
    static let regular = 320, hidden = 32, layers = 2, heads = 4, kvHeads = 2, headDim = 8, ffn = 64
    static let addedOffset = 2048 - 320  // tiny tokenizer id - mini id, for added tokens

    // MARK: Mini tokenizer

    static func tinyTokenizerJSON() throws -> JSON { try JSON.parseFile(FuzzPaths.fixture("tiny/tokenizer/tokenizer.json")) }
    static func tinyTokenizerConfig() throws -> JSON { try JSON.parseFile(FuzzPaths.fixture("tiny/tokenizer/tokenizer_config.json")) }

    /// tokenizer.json of the mini vocabulary.
    static func miniTokenizer() throws -> JSON {
        let tiny = try tinyTokenizerJSON()
        guard case var .object(top) = tiny else { throw QwenError.format("tokenizer.json") }
        for (i, entry) in top.enumerated() {
            switch entry.key {
            case "model":
                guard case var .object(model) = entry.value else { continue }
                for (j, field) in model.enumerated() {
                    if field.key == "vocab", let vocab = field.value.object {
                        model[j].value = .object(vocab.filter { ($0.value.int ?? Int.max) < regular })
                    } else if field.key == "merges", let merges = field.value.array {
                        model[j].value = .array(Array(merges.prefix(regular - 256)))
                    }
                }
                top[i].value = .object(model)
            case "added_tokens":
                top[i].value = .array((entry.value.array ?? []).map { token in
                    guard case var .object(fields) = token else { return token }
                    for (k, f) in fields.enumerated() where f.key == "id" { fields[k].value = .number(Double((f.value.int ?? 0) - addedOffset)) }
                    return .object(fields)
                })
            default: break
            }
        }
        return .object(top)
    }

    /// tokenizer_config.json of the mini vocabulary (added_tokens_decoder renumbered; the Qwen2.5 template).
    static func miniTokenizerConfig() throws -> JSON {
        guard case var .object(top) = try tinyTokenizerConfig() else { throw QwenError.format("tokenizer_config.json") }
        for (i, entry) in top.enumerated() where entry.key == "added_tokens_decoder" {
            top[i].value = .object((entry.value.object ?? []).map { (key: String((Int($0.key) ?? 0) - addedOffset), value: $0.value) })
        }
        return .object(top)
    }

    static func miniConfig(dialect5: Bool = false) -> JSON {
        var pairs: [(key: String, value: JSON)] = [
            ("architectures", .array([.string("Qwen2ForCausalLM")])),
            ("bos_token_id", .number(320)), ("eos_token_id", .number(322)),
            ("hidden_act", .string("silu")), ("hidden_size", .number(Double(hidden))),
            ("intermediate_size", .number(Double(ffn))), ("max_position_embeddings", .number(4096)),
            ("model_type", .string("qwen2")), ("num_attention_heads", .number(Double(heads))),
            ("num_hidden_layers", .number(Double(layers))), ("num_key_value_heads", .number(Double(kvHeads))),
            ("rms_norm_eps", .number(1e-6)), ("tie_word_embeddings", .bool(true)),
            ("use_sliding_window", .bool(false)), ("vocab_size", .number(346)),
        ]
        if dialect5 {
            pairs += [("head_dim", .number(Double(headDim))),
                      ("rope_parameters", .object([("rope_theta", .number(10000)), ("rope_type", .string("default"))])),
                      ("dtype", .string("float32"))]
        } else {
            pairs += [("rope_theta", .number(10000)), ("rope_scaling", .null), ("torch_dtype", .string("float32"))]
        }
        return .object(pairs)
    }

    // MARK: Mini weights

    /// Deterministic values in [-scale, scale).
    static func values(_ count: Int, seed: UInt64, scale: Float) -> [Float] {
        var x = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0 ..< count).map { _ in
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            return (Float(x >> 40) / Float(1 << 24) * 2 - 1) * scale
        }
    }

    /// (GGUF name, shape, values) of the mini model; `qwen3`: q/k norms instead of q/k/v biases.
    static func miniTensors(qwen3: Bool) -> [(String, [Int], [Float])] {
        let vocab = regular + 26
        var out: [(String, [Int], [Float])] = []
        var seed: UInt64 = 1
        func add(_ name: String, _ shape: [Int], scale: Float, offset: Float = 0) {
            seed += 1
            out.append((name, shape, values(shape.reduce(1, *), seed: seed, scale: scale).map { $0 + offset }))
        }
        add("token_embd.weight", [vocab, hidden], scale: 1)
        for l in 0 ..< layers {
            let p = "blk.\(l)."
            add(p + "attn_norm.weight", [hidden], scale: 0.1, offset: 1)
            add(p + "attn_q.weight", [heads * headDim, hidden], scale: 0.3)
            add(p + "attn_k.weight", [kvHeads * headDim, hidden], scale: 0.3)
            add(p + "attn_v.weight", [kvHeads * headDim, hidden], scale: 0.3)
            if qwen3 {
                add(p + "attn_q_norm.weight", [headDim], scale: 0.1, offset: 1)
                add(p + "attn_k_norm.weight", [headDim], scale: 0.1, offset: 1)
            } else {
                add(p + "attn_q.bias", [heads * headDim], scale: 0.1)
                add(p + "attn_k.bias", [kvHeads * headDim], scale: 0.1)
                add(p + "attn_v.bias", [kvHeads * headDim], scale: 0.1)
            }
            add(p + "attn_output.weight", [hidden, heads * headDim], scale: 0.3)
            add(p + "ffn_norm.weight", [hidden], scale: 0.1, offset: 1)
            add(p + "ffn_gate.weight", [ffn, hidden], scale: 0.3)
            add(p + "ffn_up.weight", [ffn, hidden], scale: 0.3)
            add(p + "ffn_down.weight", [hidden, ffn], scale: 0.2)
        }
        add("output_norm.weight", [hidden], scale: 0.1, offset: 1)
        return out
    }

    static func floatBytes(_ v: [Float]) -> [UInt8] { v.withUnsafeBytes { Array($0) } }

    static func encode(_ v: [Float], as type: TensorType) -> [UInt8] {
        switch type {
        case .f16: return v.map { Float16($0) }.withUnsafeBytes { Array($0) }
        case .q8_0:
            var out = [UInt8](repeating: 0, count: v.count / 32 * 34)
            v.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBytes { RowKernels.quantizeQ8_0Portable(src.baseAddress!, $0.baseAddress!, v.count) }
            }
            return out
        default: return floatBytes(v)
        }
    }

    /// A mini GGUF: qwen2 or qwen3, 2-D weights of `type` (norms and biases F32).
    static func miniGGUF(qwen3: Bool, type: TensorType) throws -> GGUFWriter {
        let arch = qwen3 ? "qwen3" : "qwen2"
        var w = GGUFWriter()
        func u32(_ v: Int) -> GGUFValue { .uint(UInt64(v), .uint32) }
        w.set("general.architecture", .string(arch))
        w.set("general.name", .string("mini \(arch)"))
        w.set("general.file_type", u32(type == .q8_0 ? 7 : type == .f16 ? 1 : 0))
        w.set("\(arch).block_count", u32(layers))
        w.set("\(arch).context_length", u32(4096))
        w.set("\(arch).embedding_length", u32(hidden))
        w.set("\(arch).feed_forward_length", u32(ffn))
        w.set("\(arch).attention.head_count", u32(heads))
        w.set("\(arch).attention.head_count_kv", u32(kvHeads))
        if qwen3 {
            w.set("\(arch).attention.key_length", u32(headDim))
            w.set("\(arch).attention.value_length", u32(headDim))
        }
        w.set("\(arch).rope.freq_base", .float(qwen3 ? 1_000_000 : 10000, .float32))
        w.set("\(arch).attention.layer_norm_rms_epsilon", .float(1e-6, .float32))
        // tokenizer: the mini vocabulary as llama.cpp's converter writes it
        let tok = try miniTokenizer()
        var tokens = [String](repeating: "", count: regular + 26)
        var types = [GGUFValue](repeating: .int(1, .int32), count: regular + 26)
        for (s, id) in tok["model"]?["vocab"]?.object ?? [] { if let i = id.int { tokens[i] = s } }
        for t in tok["added_tokens"]?.array ?? [] {
            guard let i = t["id"]?.int, let content = t["content"]?.string else { continue }
            tokens[i] = content
            types[i] = .int(t["special"]?.bool == true ? 3 : 4, .int32)
        }
        let merges = (tok["model"]?["merges"]?.array ?? []).compactMap { m -> String? in
            guard let pair = m.array, pair.count == 2, let a = pair[0].string, let b = pair[1].string else { return m.string }
            return a + " " + b
        }
        w.set("tokenizer.ggml.model", .string("gpt2"))
        w.set("tokenizer.ggml.pre", .string("qwen2"))
        w.set("tokenizer.ggml.tokens", .array(.string, tokens.map { .string($0) }))
        w.set("tokenizer.ggml.token_type", .array(.int32, types))
        w.set("tokenizer.ggml.merges", .array(.string, merges.map { .string($0) }))
        w.set("tokenizer.ggml.eos_token_id", u32(322))
        w.set("tokenizer.ggml.padding_token_id", u32(320))
        w.set("tokenizer.ggml.bos_token_id", u32(320))
        w.set("tokenizer.ggml.add_bos_token", .bool(false))
        let template = qwen3 ? try qwen3Template() : (try miniTokenizerConfig())["chat_template"]?.string ?? ""
        w.set("tokenizer.chat_template", .string(template))
        for (name, shape, v) in miniTensors(qwen3: qwen3) {
            let t: TensorType = shape.count == 2 ? type : .f32
            try w.addTensor(name: name, type: t, shape: shape, bytes: encode(v, as: t))
        }
        return w
    }

    static func qwen3Template() throws -> String {
        try JSON.parseFile(FuzzPaths.fixture("family/qwen3-hf/tokenizer_config.json"))["chat_template"]?.string ?? ""
    }

    /// A safetensors file: header (8-byte aligned with spaces, as the reference writer pads it), then the data.
    public static func safetensors(_ tensors: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])],
                                   metadata: [(key: String, value: JSON)] = [("format", .string("pt"))]) -> [UInt8] {
        var entries: [(key: String, value: JSON)] = metadata.isEmpty ? [] : [("__metadata__", .object(metadata))]
        var offset = 0
        for t in tensors {
            entries.append((t.name, .object([("dtype", .string(t.dtype)), ("shape", .array(t.shape.map { .number(Double($0)) })),
                                             ("data_offsets", .array([.number(Double(offset)), .number(Double(offset + t.bytes.count))]))])))
            offset += t.bytes.count
        }
        var header = Array(JSON.object(entries).serialized.utf8)
        while (header.count + 8) % 8 != 0 { header.append(0x20) }
        var out: [UInt8] = []
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out += $0 }
        out += header
        for t in tensors { out += t.bytes }
        return out
    }

    /// The mini model as a Hugging Face folder's model.safetensors (F32, tied embeddings).
    static func miniSafetensors() -> [UInt8] {
        let names = Dictionary(uniqueKeysWithValues: [
            ("token_embd.weight", "model.embed_tokens.weight"), ("output_norm.weight", "model.norm.weight"),
            ("attn_norm.weight", "input_layernorm.weight"), ("ffn_norm.weight", "post_attention_layernorm.weight"),
            ("attn_q.weight", "self_attn.q_proj.weight"), ("attn_k.weight", "self_attn.k_proj.weight"),
            ("attn_v.weight", "self_attn.v_proj.weight"), ("attn_q.bias", "self_attn.q_proj.bias"),
            ("attn_k.bias", "self_attn.k_proj.bias"), ("attn_v.bias", "self_attn.v_proj.bias"),
            ("attn_output.weight", "self_attn.o_proj.weight"), ("ffn_gate.weight", "mlp.gate_proj.weight"),
            ("ffn_up.weight", "mlp.up_proj.weight"), ("ffn_down.weight", "mlp.down_proj.weight"),
        ])
        let tensors = miniTensors(qwen3: false).map { (name, shape, v) -> (name: String, dtype: String, shape: [Int], bytes: [UInt8]) in
            var hf = names[name] ?? name
            if name.hasPrefix("blk.") {
                let parts = name.split(separator: ".", maxSplits: 2)
                hf = "model.layers.\(parts[1])." + (names[String(parts[2])] ?? String(parts[2]))
            }
            return (hf, "F32", shape, floatBytes(v))
        }
        return safetensors(tensors)
    }

    // MARK: Writing

    /// Writes Tests/Fuzz/fixtures: mini-hf/ and the mini GGUFs.
    public static func writeFixtures() throws {
        let dir = FuzzPaths.repoRoot + "/Tests/Fuzz/fixtures"
        mkdir(dir, 0o755)
        mkdir(dir + "/mini-hf", 0o755)
        try FuzzPaths.write(Array(miniConfig().serialized.utf8), to: dir + "/mini-hf/config.json")
        try FuzzPaths.write(Array(miniTokenizer().serialized.utf8), to: dir + "/mini-hf/tokenizer.json")
        try FuzzPaths.write(Array(miniTokenizerConfig().serialized.utf8), to: dir + "/mini-hf/tokenizer_config.json")
        try FuzzPaths.write(miniSafetensors(), to: dir + "/mini-hf/model.safetensors")
        try miniGGUF(qwen3: false, type: .f32).write(to: dir + "/mini-qwen2-f32.gguf")
        try miniGGUF(qwen3: true, type: .f16).write(to: dir + "/mini-qwen3-f16.gguf")
    }

    /// Writes the seed corpora under Tests/Fuzz/corpus (after `writeFixtures`).
    public static func writeCorpus() throws {
        let root = FuzzPaths.corpus
        mkdir(root, 0o755)
        func put(_ harness: Harness, _ name: String, _ bytes: [UInt8]) throws {
            mkdir(root + "/" + harness.rawValue, 0o755)
            try FuzzPaths.write(bytes, to: root + "/" + harness.rawValue + "/" + name)
        }
        func utf8(_ s: String) -> [UInt8] { Array(s.utf8) }

        // gguf: the mini models in three flavours
        try put(.gguf, "mini-qwen2-f32.gguf", readBytes(FuzzPaths.fuzzFixture("mini-qwen2-f32.gguf")))
        try put(.gguf, "mini-qwen3-f16.gguf", readBytes(FuzzPaths.fuzzFixture("mini-qwen3-f16.gguf")))
        for (name, qwen3, type) in [("mini-qwen2-q8_0.gguf", false, TensorType.q8_0)] {
            let path = try FuzzPaths.scratchFolder() + "/" + name
            try miniGGUF(qwen3: qwen3, type: type).write(to: path)
            try put(.gguf, name, readBytes(path))
        }

        // safetensors: small files of every dtype, and the mini model's header over one-element tensors
        try put(.safetensors, "dtypes.safetensors", safetensors([
            ("a", "F32", [2, 2], floatBytes([1, 2, 3, 4])), ("b", "F16", [3], [UInt8](repeating: 0x3C, count: 6)),
            ("c", "BF16", [1, 2], [0, 0x3F, 0, 0x40]), ("d", "I64", [1], [UInt8](repeating: 1, count: 8)),
            ("e", "I32", [0], []), ("f", "F64", [], [UInt8](repeating: 0, count: 8)),
        ]))
        try put(.safetensors, "names.safetensors", safetensors(miniTensors(qwen3: false).prefix(8).map {
            ("model.layers.0." + $0.0, "BF16", [1, 1], [0, 0x3F])
        }, metadata: [("format", .string("pt")), ("total_size", .string("16"))]))
        try put(.safetensors, "empty.safetensors", safetensors([], metadata: []))

        // json: the configs and tokenizer files of the fixtures (small ones) and the mini model
        try put(.json, "config-v4.json", utf8(miniConfig().serialized))
        try put(.json, "config-v5.json", utf8(miniConfig(dialect5: true).serialized))
        for (name, fixture) in [("config-qwen3moe.json", "family/qwen3moe-hf/config.json"), ("config-qwen2moe.json", "family/qwen2moe-hf/config.json"),
                                ("config-qwen1.json", "qwen1/qwen1-hf/config.json"), ("generation_config.json", "tiny/qwen2-hf/generation_config.json"),
                                ("index.json", "tiny/qwen25-hf/model.safetensors.index.json"), ("tokenizer_config.json", "tiny/tokenizer/tokenizer_config.json")] {
            try put(.json, name, readBytes(FuzzPaths.fixture(fixture)))
        }
        try put(.json, "tokenizer.json", readBytes(FuzzPaths.fuzzFixture("mini-hf/tokenizer.json")))
        try put(.json, "values.json", utf8(#"{"a":[1,-2.5e-3,1E+300,true,false,null,"\u00e9\ud83d\ude00\n\"x\\"],"b":{"c":{}},"d":[],"e":NaN,"f":-Infinity}"#))

        // hfconfig: the two config dialects and variants the loader must refuse or accept
        try put(.hfconfig, "config-v4.json", utf8(miniConfig().serialized))
        try put(.hfconfig, "config-v5.json", utf8(miniConfig(dialect5: true).serialized))
        try put(.hfconfig, "config-qwen3.json", readBytes(FuzzPaths.fixture("family/qwen3-hf/config.json")))

        // tiktoken: the first 300 ranks of the Qwen1 fixture, and a tiny handwritten vocabulary
        let tiktoken = try readBytes(FuzzPaths.fixture("qwen1/qwen1-hf/qwen.tiktoken"))
        var lines = 0, cut = 0
        while cut < tiktoken.count, lines < 300 { if tiktoken[cut] == 0x0A { lines += 1 }; cut += 1 }
        try put(.tiktoken, "qwen1-300.tiktoken", Array(tiktoken[..<cut]))
        try put(.tiktoken, "small.tiktoken", utf8((0 ..< 256).map { b in
            "\(base64([UInt8(b)])) \(b)\n" }.joined() + "\(base64(utf8("ab"))) 256\r\n\(base64(utf8(" the"))) 257\n"))

        // tokenizer: texts
        let texts: [(String, [UInt8])] = [
            ("ascii", utf8("Hello, world! It's 2024: x**2 + y_1 = 3.14159;\n\tdef f(): return None")),
            ("chinese", utf8("你好，世界。我们今天学习分词器。")),
            ("mixed", utf8("naïve café — emoji 🐍🇫🇷 👩‍💻 and ｆｕｌｌｗｉｄｔｈ ①②")),
            ("combining", utf8("e\u{301} a\u{308}\u{323} \u{1100}\u{1161}\u{11A8} \u{212B} >\u{338} A\u{30A}")),
            ("special", utf8("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n</think>\n\n<tool_call>x</tool_call><|endoftext|>")),
            ("whitespace", utf8("   \n\n\r\n  \t\t x  \u{3000}\u{A0}end  ")),
            ("digits", utf8("1234567890 0.5 1e10 ١٢٣ 一二三")),
            ("invalid-utf8", [0x61, 0xFF, 0xC3, 0x28, 0xE2, 0x82, 0x20, 0xF0, 0x9F, 0x98, 0xED, 0xA0, 0x80, 0x62]),
            ("long-word", utf8(String(repeating: "abcdefghij", count: 20) + " " + String(repeating: "中", count: 80))),
            ("contractions", utf8("I'm you're HE'LL we'VE 's 't 'd")),
        ]
        for (name, bytes) in texts { try put(.tokenizer, name, bytes) }

        // chat: flag byte, then NUL-separated role, content, ..., [template]
        func chat(_ flags: UInt8, _ fields: [String]) -> [UInt8] { [flags] + utf8(fields.joined(separator: "\0")) }
        let qwen25 = try miniTokenizerConfig()["chat_template"]?.string ?? ""
        try put(.chat, "basic", chat(1, ["system", "You are terse.", "user", "Hello!"]))
        try put(.chat, "qwen25-template", chat(1, ["user", "Hi", "assistant", "Hello.", "user", "Bye", qwen25]))
        try put(.chat, "qwen3-template", chat(2, ["system", "S", "user", "What is 2+2?",
                                                  "assistant", "<think>\nadd\n</think>\n\nIt is 4.", "user", "And 3+3?", try qwen3Template()]))
        try put(.chat, "qwen3-tools", chat(3, ["user", "weather?", "assistant", "<think>call</think>calling",
                                               "tool", "{\"t\": 20}", "tool", "{\"t\": 21}", "user", "<tool_response>x</tool_response>",
                                               "assistant", "done", try qwen3Template()]))
        try put(.chat, "odd-roles", chat(0, ["", "", "ROLE", "<|im_end|>", "user", "\u{301}é\n"]))

        // state: states of the state harness's context after 0, 5 and 20 tokens
        let ctx = try TextHarnesses.stateContext()
        for (name, count) in [("empty", 0), ("5-tokens", 5), ("20-tokens", 20)] {
            ctx.reset()
            if count > 0 { try ctx.eval((0 ..< count).map { Int32($0 * 17 % 346) }) }
            try put(.state, name, ctx.saveState())
        }
        ctx.reset()

        try writeMediaCorpus()  // image, audio (MediaSeeds.swift)
    }

    static func base64(_ bytes: [UInt8]) -> String {
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            var v = UInt32(bytes[i]) << 16
            if n > 1 { v |= UInt32(bytes[i + 1]) << 8 }
            if n > 2 { v |= UInt32(bytes[i + 2]) }
            for k in 0 ..< 4 { out.append(k <= n ? table[Int(v >> UInt32(18 - 6 * k) & 63)] : UInt8(ascii: "=")) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
