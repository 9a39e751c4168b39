import QwenFormats

/// Hyperparameters of a decoder-only Qwen language model, whatever file they came from.
public struct ModelConfig: Sendable, Equatable {
    /// GGUF architecture name ("qwen2", ...).
    public var architecture: String
    public var hiddenSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var headDim: Int
    public var feedForwardSize: Int
    public var ropeTheta: Float
    public var rmsNormEps: Float
    /// Training context length (max_position_embeddings); the default context size is capped by it.
    public var contextLength: Int
    /// M-RoPE (Qwen2-VL / Qwen2.5-VL): how many of the head's d/2 RoPE frequencies take their angle from the
    /// temporal, height and width components of a position (`mrope_section`); nil: plain RoPE.
    public var mropeSections: [Int]? = nil
    /// Whether the output head is the embedding matrix. GGUF says so by leaving out `output.weight`
    /// (nil: decided by the file); Hugging Face configs say it with `tie_word_embeddings` (default false).
    public var tiedEmbeddings: Bool?

    // MARK: Qwen3 and mixture-of-experts fields (qwen3, qwen3moe, qwen2moe)

    /// Biases on the q/k/v projections (HF `qkv_bias` for Qwen2-MoE, `attention_bias` for Qwen3);
    /// nil: decided by the file (a GGUF has `attn_q.bias` or not). Qwen2 always has them.
    public var attentionBias: Bool? = nil
    /// Sparse feed-forward settings; nil for dense models.
    public var experts: ExpertConfig? = nil

    /// Qwen (first generation) past its training length: dynamic NTK RoPE and logn attention (see QwenV1.swift);
    /// nil when not used.
    public var lengthExtrapolation: LengthExtrapolation? = nil

    public static let supportedArchitectures: Set<String> = ["qwen", "qwen2", "qwen3", "qwen3moe", "qwen2moe", "qwen2vl"]

    func validate() throws {
        let dims = [hiddenSize, layerCount, headCount, kvHeadCount, headDim, feedForwardSize]
        guard dims.allSatisfy({ $0 > 0 && $0 <= 1 << 20 }) else {
            throw QwenError.format("invalid model dimensions \(dims)")
        }
        guard headCount % kvHeadCount == 0 else {
            throw QwenError.format("\(headCount) attention heads are not a multiple of \(kvHeadCount) KV heads")
        }
        guard headDim % 2 == 0 else { throw QwenError.format("head dimension \(headDim) is odd") }
        guard ropeTheta > 0, rmsNormEps > 0, rmsNormEps < 1 else { throw QwenError.format("invalid rope theta or norm epsilon") }
        if let e = experts {
            guard e.count > 0, e.count <= 1 << 16, e.used > 0, e.used <= e.count, e.feedForwardSize > 0,
                  e.feedForwardSize <= 1 << 20, e.sharedFeedForwardSize >= 0, e.sharedFeedForwardSize <= 1 << 20 else {
                throw QwenError.format("invalid expert settings: \(e.used) of \(e.count) experts, expert feed-forward " +
                                       "\(e.feedForwardSize), shared \(e.sharedFeedForwardSize)")
            }
        }
    }

    /// Reads the `ARCH.*` keys llama.cpp's converter writes.
    public init(gguf: GGUFFile) throws {
        guard let arch = gguf["general.architecture"]?.string else {
            throw QwenError.format("GGUF has no general.architecture")
        }
        guard Self.supportedArchitectures.contains(arch) else {
            throw QwenError.unsupported("architecture '\(arch)' is not supported (supported: \(Self.supportedArchitectures.sorted().joined(separator: ", ")))")
        }
        func int(_ key: String) throws -> Int {
            guard let v = gguf["\(arch).\(key)"]?.int else { throw QwenError.format("GGUF lacks \(arch).\(key)") }
            return v
        }
        architecture = arch
        hiddenSize = try int("embedding_length")
        layerCount = try int("block_count")
        headCount = try int("attention.head_count")
        kvHeadCount = gguf["\(arch).attention.head_count_kv"]?.int ?? headCount
        headDim = gguf["\(arch).attention.key_length"]?.int ?? (headCount > 0 ? hiddenSize / headCount : 0)
        feedForwardSize = try int("feed_forward_length")
        ropeTheta = Float(gguf["\(arch).rope.freq_base"]?.double ?? 10_000)
        rmsNormEps = Float(gguf["\(arch).attention.layer_norm_rms_epsilon"]?.double ?? 1e-6)
        contextLength = gguf["\(arch).context_length"]?.int ?? 32_768
        tiedEmbeddings = nil
        if arch == "qwen" { try adjustQwenV1(gguf: gguf) }
        if arch == "qwen2vl" { try readMRoPESections(gguf["qwen2vl.rope.dimension_sections"]?.ints) }  // Qwen2VL.swift
        if arch == "qwen3moe" || arch == "qwen2moe" {
            // as llama.cpp: Qwen3-MoE renormalizes the top-k probabilities, Qwen2-MoE does not (GGUF has no key
            // for it); every layer is sparse unless its tensors say otherwise (see DecoderModel)
            let used = try int("expert_used_count")
            guard gguf["\(arch).expert_feed_forward_length"].map({ $0.int != nil }) ?? true else {
                throw QwenError.unsupported("per-layer expert feed-forward lengths are not supported")
            }
            experts = ExpertConfig(
                count: try int("expert_count"), used: used,
                feedForwardSize: gguf["\(arch).expert_feed_forward_length"]?.int ?? feedForwardSize / max(used, 1),
                sharedFeedForwardSize: arch == "qwen2moe"
                    ? gguf["\(arch).expert_shared_feed_forward_length"]?.int ?? feedForwardSize : 0,
                normalizeTopK: arch == "qwen3moe", sparseLayers: nil)
        }
        try validate()
    }

    /// Reads a Hugging Face config.json in either dialect: the hub's (transformers 4.x: `rope_theta`,
    /// `rope_scaling` at top level) or transformers 5.x's (`rope_parameters`, text under `text_config`).
    public init(huggingFace config: JSON) throws {
        let config = Self.withQwen2AudioTextDefaults(config)  // AudioModel.swift
        let modelType = config["model_type"]?.string ?? ""
        if modelType == "qwen" {
            self = try ModelConfig(qwenV1: config)
            return
        }
        let architectureByType = ["qwen": "qwen", "qwen2": "qwen2", "qwen3": "qwen3", "qwen3_moe": "qwen3moe",
                                  "qwen2_moe": "qwen2moe", "qwen2_audio": "qwen2", "qwen2_vl": "qwen2vl", "qwen2_5_vl": "qwen2vl"]
        guard let arch = architectureByType[modelType] else {
            throw QwenError.unsupported("model_type '\(modelType)' is not supported (supported: " +
                                        "\(architectureByType.keys.sorted().joined(separator: ", ")))")
        }
        let text = config["text_config"].flatMap { $0.object == nil ? nil : $0 } ?? config
        func int(_ key: String) throws -> Int {
            guard let v = text[key]?.int ?? config[key]?.int else { throw QwenError.format("config.json lacks \(key)") }
            return v
        }
        architecture = arch
        hiddenSize = try int("hidden_size")
        layerCount = try int("num_hidden_layers")
        headCount = try int("num_attention_heads")
        kvHeadCount = (text["num_key_value_heads"] ?? config["num_key_value_heads"])?.int ?? headCount
        headDim = (text["head_dim"] ?? config["head_dim"])?.int ?? (headCount > 0 ? hiddenSize / headCount : 0)
        feedForwardSize = try int("intermediate_size")
        rmsNormEps = Float((text["rms_norm_eps"] ?? config["rms_norm_eps"])?.double ?? 1e-6)
        contextLength = (text["max_position_embeddings"] ?? config["max_position_embeddings"])?.int ?? 32_768
        tiedEmbeddings = (config["tie_word_embeddings"] ?? text["tie_word_embeddings"])?.bool ?? false
        if (text["use_sliding_window"] ?? config["use_sliding_window"])?.bool == true {
            throw QwenError.unsupported("sliding-window attention (use_sliding_window: true) is not supported yet")
        }
        // RoPE: v5 `rope_parameters`, else v4 `rope_theta` + `rope_scaling`
        let rope = text["rope_parameters"] ?? config["rope_parameters"]
        let scaling = text["rope_scaling"] ?? config["rope_scaling"]
        let theta = rope?["rope_theta"]?.double ?? (text["rope_theta"] ?? config["rope_theta"])?.double ?? 10_000
        ropeTheta = Float(theta)
        for spec in [rope, scaling] {
            guard let spec, spec.object != nil else { continue }
            let type = spec["rope_type"]?.string ?? spec["type"]?.string ?? "default"
            if let sections = spec["mrope_section"]?.array {  // Qwen2-VL: hub rope_scaling {type: mrope}, v5 rope_parameters
                try readMRoPESections(sections.compactMap(\.int))
            }
            guard type == "default" || (type == "mrope" && mropeSections != nil) else {
                throw QwenError.unsupported("RoPE scaling '\(type)' is not supported yet")
            }
        }
        try parseQwen3AndExperts(modelType: modelType, text: text, config: config)
        try validate()
    }

    /// The Hugging Face keys of Qwen3 (`attention_bias`), Qwen2-MoE (`qkv_bias`) and the MoE models
    /// (`num_experts` / v5 `num_local_experts`, `num_experts_per_tok`, `moe_intermediate_size`,
    /// `shared_expert_intermediate_size`, `norm_topk_prob`, `decoder_sparse_step`, `mlp_only_layers`).
    mutating func parseQwen3AndExperts(modelType: String, text: JSON, config: JSON) throws {
        func value(_ key: String) -> JSON? {
            guard let v = text[key] ?? config[key], !v.isNull else { return nil }
            return v
        }
        func int(_ key: String) throws -> Int {
            guard let v = value(key)?.int else { throw QwenError.format("config.json lacks \(key)") }
            return v
        }
        switch modelType {
        case "qwen3", "qwen3_moe":
            // Qwen3's attention_bias also adds a bias to o_proj, which no released model has
            if value("attention_bias")?.bool == true {
                throw QwenError.unsupported("attention_bias: true is not supported for \(modelType)")
            }
            attentionBias = false
        case "qwen2_moe":
            attentionBias = value("qkv_bias")?.bool ?? true
        default:
            break
        }
        guard modelType == "qwen3_moe" || modelType == "qwen2_moe" else { return }
        guard let count = value("num_experts")?.int ?? value("num_local_experts")?.int else {
            throw QwenError.format("config.json lacks num_experts")
        }
        let step = value("decoder_sparse_step")?.int ?? 1
        guard step > 0 else { throw QwenError.format("decoder_sparse_step must be positive") }
        let denseOnly = Set((value("mlp_only_layers")?.array ?? []).compactMap(\.int))
        experts = ExpertConfig(
            count: count, used: try int("num_experts_per_tok"), feedForwardSize: try int("moe_intermediate_size"),
            sharedFeedForwardSize: modelType == "qwen2_moe" ? try int("shared_expert_intermediate_size") : 0,
            normalizeTopK: value("norm_topk_prob")?.bool ?? false,
            sparseLayers: (0 ..< layerCount).map { !denseOnly.contains($0) && count > 0 && ($0 + 1) % step == 0 })
    }
}

/// The sparse (mixture-of-experts) feed-forward of Qwen2-MoE and Qwen3-MoE: a router picks `used` of
/// `count` experts per token from the softmax of its logits.
public struct ExpertConfig: Sendable, Equatable {
    public var count: Int
    /// Experts per token (top-k).
    public var used: Int
    /// Inner size of each expert's SwiGLU.
    public var feedForwardSize: Int
    /// Inner size of the always-on shared expert with its sigmoid gate (Qwen2-MoE); 0 = none.
    public var sharedFeedForwardSize: Int
    /// Rescale the top-k probabilities to sum to 1 (HF `norm_topk_prob`).
    public var normalizeTopK: Bool
    /// Per layer: sparse (true) or a dense MLP of `feedForwardSize` (HF `decoder_sparse_step`, `mlp_only_layers`).
    /// nil: decided by the file's tensors (a layer with `ffn_gate_inp` is sparse).
    public var sparseLayers: [Bool]?

    public init(count: Int, used: Int, feedForwardSize: Int, sharedFeedForwardSize: Int, normalizeTopK: Bool,
                sparseLayers: [Bool]?) {
        self.count = count
        self.used = used
        self.feedForwardSize = feedForwardSize
        self.sharedFeedForwardSize = sharedFeedForwardSize
        self.normalizeTopK = normalizeTopK
        self.sparseLayers = sparseLayers
    }
}
