import QwenFormats
import QwenTensors
import QwenTokenizer

/// A Hugging Face folder as llama.cpp's `convert_hf_to_gguf.py` writes it to GGUF: the same metadata keys and
/// tokenizer arrays, the same tensor names and shapes (per-expert matrices stacked into `ffn_*_exps`,
/// transformers 5's fused `gate_up_proj` split), the same F32 tensors. Text models only (the language model of a
/// multimodal folder).
struct HuggingFaceExport: ConversionSource {
    let store: WeightStore
    let metadata: [(key: String, value: GGUFValue)]
    let tensors: [SourceTensor]
    let hyperparameters: (architecture: String, layers: Int, heads: Int, kvHeads: Int, experts: Int)
    let mix: QuantizationMix
    var isHuggingFace: Bool { true }

    init(folder: String, mix: QuantizationMix) throws {
        self.mix = mix
        let json = try JSON.parseFile(folder + "/config.json")
        let config = try ModelConfig(huggingFace: json)
        store = try WeightStore(huggingFaceFolder: folder, map: true)
        let text = json["text_config"].flatMap { $0.object == nil ? nil : $0 } ?? json
        let vocabularySize = text["vocab_size"]?.int ?? json["vocab_size"]?.int
        let vocabulary = try GGUFVocabulary.read(huggingFaceFolder: folder, vocabularySize: vocabularySize)
        metadata = try Self.metadata(config, json: json, folder: folder) + vocabulary.metadata
        tensors = try Self.tensors(store, config)
        hyperparameters = (config.architecture, config.layerCount, config.headCount, config.kvHeadCount, config.experts?.count ?? 0)
    }

    /// Norms, biases, 1-D tensors and expert routers stay F32, as the converter keeps them.
    func convertedType(_ t: SourceTensor) -> TensorType {
        let keepF32 = t.shape.count <= 1 || t.name.hasSuffix("_norm.weight") || !t.name.hasSuffix(".weight")
            || t.name.contains("ffn_gate_inp.weight") || t.name.contains("ffn_gate_inp_shexp.weight")
        return keepF32 || mix.isQuantized ? .f32 : mix.defaultType
    }

    static func metadata(_ c: ModelConfig, json: JSON, folder: String) throws -> [(key: String, value: GGUFValue)] {
        let arch = c.architecture
        func u32(_ v: Int) -> GGUFValue { .uint(UInt64(v), .uint32) }
        func f32(_ v: Float) -> GGUFValue { .float(Double(v), .float32) }
        var m: [(key: String, value: GGUFValue)] = [("general.architecture", .string(arch)), ("general.type", .string("model"))]
        let generation = folder + "/generation_config.json"
        if fileExists(generation), let g = try? JSON.parseFile(generation) {
            if let k = g["top_k"]?.int { m.append(("general.sampling.top_k", .int(Int64(k), .int32))) }
            for (key, name) in [("top_p", "top_p"), ("temperature", "temp"), ("repetition_penalty", "penalty_repeat")] {
                if let v = g[key]?.double { m.append(("general.sampling.\(name)", f32(Float(v)))) }
            }
        }
        m.append(("general.name", .string(String(folder.split(separator: "/").last ?? "model"))))
        let isV1 = arch == "qwen"
        m += [
            ("\(arch).block_count", u32(c.layerCount)),
            ("\(arch).context_length", u32(c.contextLength)),
            ("\(arch).embedding_length", u32(c.hiddenSize)),
            // the first generation's GGUF keeps the config's intermediate_size, twice the SwiGLU width
            ("\(arch).feed_forward_length", u32(isV1 ? 2 * c.feedForwardSize : c.feedForwardSize)),
            ("\(arch).attention.head_count", u32(c.headCount)),
        ]
        if !isV1 { m.append(("\(arch).attention.head_count_kv", u32(c.kvHeadCount))) }
        m.append(("\(arch).rope.freq_base", f32(c.ropeTheta)))
        m.append((isV1 ? "qwen.attention.layer_norm_epsilon" : "\(arch).attention.layer_norm_rms_epsilon", f32(c.rmsNormEps)))
        if let e = c.experts {
            m += [("\(arch).expert_count", u32(e.count)), ("\(arch).expert_used_count", u32(e.used))]
        }
        let text = json["text_config"].flatMap { $0.object == nil ? nil : $0 } ?? json
        if text["head_dim"]?.int != nil || json["head_dim"]?.int != nil {
            m += [("\(arch).attention.key_length", u32(c.headDim)), ("\(arch).attention.value_length", u32(c.headDim))]
        }
        if let sections = c.mropeSections {
            let padded = (sections + [0, 0, 0, 0]).prefix(4)
            m.append(("\(arch).rope.dimension_sections", .array(.int32, padded.map { .int(Int64($0), .int32) })))
        }
        if let e = c.experts {
            m.append(("\(arch).expert_feed_forward_length", u32(e.feedForwardSize)))
            if e.sharedFeedForwardSize > 0 { m.append(("\(arch).expert_shared_feed_forward_length", u32(e.sharedFeedForwardSize))) }
            if let sparse = e.sparseLayers, sparse.contains(false) {
                throw QwenError.unsupported("converting models with dense layers between the sparse ones is not supported")
            }
        }
        return m
    }

    /// The text model's tensors under llama.cpp's names and shapes.
    static func tensors(_ store: WeightStore, _ c: ModelConfig) throws -> [SourceTensor] {
        var out: [SourceTensor] = []
        var perExpert: [String: [Int: TensorData]] = [:]  // "blk.N.ffn_gate" -> expert -> matrix
        for name in store.names.sorted() {
            guard name.hasPrefix("blk.") || ["token_embd.weight", "output.weight", "output_norm.weight"].contains(name),
                  let t = store.tensor(name) else { continue }  // vision and audio towers are not part of the text model
            if name == "output.weight" && c.tiedEmbeddings == true { continue }
            let parts = name.split(separator: ".")
            if parts.count == 5, let expert = Int(parts[3]), ["ffn_gate", "ffn_up", "ffn_down"].contains(parts[2]) {
                perExpert["\(parts[0]).\(parts[1]).\(parts[2])", default: [:]][expert] = t
            } else if parts.count == 4, parts[2] == "ffn_gate_up_exps" {
                out += try splitGateUp(t, prefix: "\(parts[0]).\(parts[1])")
            } else {
                out.append(try SourceTensor(t))
            }
        }
        for (prefix, experts) in perExpert {
            out.append(try stacked(prefix + "_exps.weight", (0 ..< experts.count).map { e in
                guard let t = experts[e] else { throw QwenError.format("'\(store.source)' lacks expert \(e) of '\(prefix)'") }
                return t
            }))
        }
        return out
    }

    /// [experts][rows][columns] from one 2-D matrix per expert.
    static func stacked(_ name: String, _ parts: [TensorData]) throws -> SourceTensor {
        let first = parts[0]
        guard first.shape.count == 2, parts.allSatisfy({ $0.shape == first.shape && $0.type == first.type }),
              let rowBytes = first.type.byteCount(elements: first.shape[1]) else {
            throw QwenError.format("the experts of '\(name)' differ in shape or type")
        }
        let rows = first.shape[0]
        return try SourceTensor(name: name, shape: [parts.count] + first.shape, type: first.type) { r in
            parts[r / rows].data + (r % rows) * rowBytes
        }
    }

    /// transformers 5's `ffn_gate_up_exps` ([experts][2·ff][hidden], gate rows first) as llama.cpp's two tensors.
    static func splitGateUp(_ t: TensorData, prefix: String) throws -> [SourceTensor] {
        guard t.shape.count == 3, t.shape[1] % 2 == 0, let rowBytes = t.type.byteCount(elements: t.shape[2]) else {
            throw QwenError.format("'\(t.name)' has shape \(t.shape), expected [experts, 2·ff, hidden]")
        }
        let ff = t.shape[1] / 2
        return try [("gate", 0), ("up", ff)].map { kind, first in
            try SourceTensor(name: "\(prefix).ffn_\(kind)_exps.weight", shape: [t.shape[0], ff, t.shape[2]], type: t.type) { r in
                t.data + ((r / ff) * 2 * ff + first + r % ff) * rowBytes
            }
        }
    }
}
