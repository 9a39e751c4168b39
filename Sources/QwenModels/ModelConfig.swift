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
    /// Whether the output head is the embedding matrix. GGUF says so by leaving out `output.weight`
    /// (nil: decided by the file); Hugging Face configs say it with `tie_word_embeddings` (default false).
    public var tiedEmbeddings: Bool?

    public static let supportedArchitectures: Set<String> = ["qwen2"]

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
        try validate()
    }

    /// Reads a Hugging Face config.json in either dialect: the hub's (transformers 4.x: `rope_theta`,
    /// `rope_scaling` at top level) or transformers 5.x's (`rope_parameters`, text under `text_config`).
    public init(huggingFace config: JSON) throws {
        let modelType = config["model_type"]?.string ?? ""
        let architectureByType = ["qwen2": "qwen2"]
        guard let arch = architectureByType[modelType] else {
            throw QwenError.unsupported("model_type '\(modelType)' is not supported (supported: qwen2)")
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
            guard type == "default" else {
                throw QwenError.unsupported("RoPE scaling '\(type)' is not supported yet")
            }
        }
        try validate()
    }
}
