import QwenFormats
import QwenModels
import QwenRuntime
import QwenTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A temporary copy of a fixture HF folder whose config.json is edited.
func editedFolder(_ fixture: String, _ edit: (inout [(key: String, value: JSON)]) -> Void) throws -> String {
    let dir = TestSupport.temporaryPath("hf-\(fixture)-\(UInt32.random(in: 0 ... .max))")
    mkdir(dir, 0o755)
    let src = TestSupport.fixture("tiny/\(fixture)")
    for name in ["model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
        symlink(src + "/" + name, dir + "/" + name)
    }
    var config = try TestSupport.readJSON(src + "/config.json").object!
    edit(&config)
    TestSupport.writeBytes(Array(JSON.object(config).serialized.utf8), to: dir + "/config.json")
    return dir
}

func set(_ pairs: inout [(key: String, value: JSON)], _ key: String, _ value: JSON) {
    pairs.removeAll { $0.key == key }
    pairs.append((key, value))
}

/// Rewrites a GGUF fixture with our writer, letting `transform` drop or change tensors.
func rewrittenGGUF(_ fixture: String, _ transform: (TensorData) -> (TensorType, [Int], [UInt8])?) throws -> String {
    let g = try GGUFFile(path: TestSupport.fixture("tiny/\(fixture)"))
    var w = GGUFWriter()
    for (k, v) in g.metadata { w.set(k, v) }
    for t in g.tensors {
        guard let (type, shape, bytes) = transform(t) else { continue }
        try w.addTensor(name: t.name, type: type, shape: shape, bytes: bytes)
    }
    let path = TestSupport.temporaryPath("rewritten-\(UInt32.random(in: 0 ... .max)).gguf")
    try w.write(to: path)
    return path
}

func bytes(_ t: TensorData) -> [UInt8] { Array(UnsafeRawBufferPointer(start: t.data, count: t.byteCount)) }

@Suite struct LoaderTests {
    @Test func writerRoundTripGivesIdenticalLogits() throws {
        let path = try rewrittenGGUF("qwen2-q8_0.gguf") { ($0.type, $0.shape, bytes($0)) }
        let ref = try Reference("llamacpp_qwen2_q8_0")
        let a = try allLogits(try context(try Model.load(path: path)), ref.inputIDs)
        let b = try allLogits(try context(try loadFixtureModel("qwen2-q8_0.gguf")), ref.inputIDs)
        #expect(a == b)
    }

    @Test func missingWrongOrUnsupportedTensorsAreReported() throws {
        let missing = try rewrittenGGUF("qwen2-f32.gguf") { $0.name == "blk.1.ffn_up.weight" ? nil : ($0.type, $0.shape, bytes($0)) }
        let e1 = #expect(throws: QwenError.self) { try Model.load(path: missing) }
        #expect(e1?.status == .format && e1?.message.contains("blk.1.ffn_up.weight") == true)

        let reshaped = try rewrittenGGUF("qwen2-f32.gguf") { t in
            t.name == "blk.0.attn_k.weight" ? (t.type, [t.shape[1], t.shape[0]], bytes(t)) : (t.type, t.shape, bytes(t))
        }
        #expect((#expect(throws: QwenError.self) { try Model.load(path: reshaped) })?.status == .format)

        // a weight type the kernels do not multiply yet (Q8_1 bytes of the right size)
        let q81 = try rewrittenGGUF("qwen2-f32.gguf") { t in
            t.name == "blk.0.ffn_down.weight"
                ? (.q8_1, t.shape, [UInt8](repeating: 0, count: t.shape[0] * t.shape[1] / 32 * 36)) : (t.type, t.shape, bytes(t))
        }
        let e3 = #expect(throws: QwenError.self) { try Model.load(path: q81) }
        #expect(e3?.status == .unsupported && e3?.message.contains("Q8_1") == true)
    }

    @Test func untiedConfigWithoutLmHeadIsAFormatError() throws {
        let dir = try editedFolder("qwen2-hf") { set(&$0, "tie_word_embeddings", .bool(false)) }
        let e = #expect(throws: QwenError.self) { try Model.load(path: dir) }
        #expect(e?.status == .format && e?.message.contains("lm_head.weight") == true)
        // the hub default when the key is absent is "not tied"
        let absent = try editedFolder("qwen2-hf") { $0.removeAll { $0.key == "tie_word_embeddings" } }
        #expect((#expect(throws: QwenError.self) { try Model.load(path: absent) })?.status == .format)
    }

    @Test(arguments: [
        ("model_type", JSON.string("llama"), QwenStatus.unsupported),
        ("use_sliding_window", .bool(true), .unsupported),
        ("rope_scaling", .object([("type", .string("yarn")), ("factor", .number(4))]), .unsupported),
        ("num_attention_heads", .number(3), .format),
        ("hidden_size", .string("64"), .format),
    ])
    func configProblemsAreReported(key: String, value: JSON, status: QwenStatus) throws {
        let dir = try editedFolder("qwen2-hf") { set(&$0, key, value) }
        #expect((#expect(throws: QwenError.self) { try Model.load(path: dir) })?.status == status)
    }

    @Test func nameMappingCoversBothDirections() {
        #expect(WeightStore.ggufName(huggingFace: "model.layers.3.self_attn.q_proj.bias") == "blk.3.attn_q.bias")
        #expect(WeightStore.ggufName(huggingFace: "model.language_model.layers.0.mlp.down_proj.weight") == "blk.0.ffn_down.weight")
        #expect(WeightStore.ggufName(huggingFace: "lm_head.weight") == "output.weight")
        #expect(WeightStore.ggufName(huggingFace: "model.rotary_emb.inv_freq") == nil)
        #expect(WeightStore.huggingFaceName(gguf: "blk.7.ffn_gate.weight") == "model.layers.7.mlp.gate_proj.weight")
        #expect(WeightStore.huggingFaceName(gguf: "token_embd.weight") == "model.embed_tokens.weight")
    }

    @Test func mappedAndReadWeightsAgree() throws {
        var o = ModelOptions()
        o.useMmap = false
        let ref = try Reference("hf_qwen2_f32")
        let a = try allLogits(try context(try Model.load(path: TestSupport.fixture("tiny/qwen2-f32.gguf"), options: o)), ref.inputIDs)
        let b = try allLogits(try context(try loadFixtureModel("qwen2-f32.gguf")), ref.inputIDs)
        #expect(a == b)
    }
}
