import QwenFormats
import QwenTensors

/// Qwen2 / Qwen2.5: RMSNorm, GQA self-attention with QKV bias and NeoX RoPE, SwiGLU MLP,
/// output head tied to the embeddings unless the file has its own.
public final class Qwen2Model: DecoderModel, @unchecked Sendable {
    public init(config: ModelConfig, weights: WeightStore) throws {
        var options = Options()
        options.attention.qkvBias = true
        try super.init(config: config, weights: weights, options: options)
    }
}

/// Qwen2-MoE (Qwen1.5-MoE-A2.7B, Qwen2-57B-A14B): Qwen2 with a sparse feed-forward. Every layer (or, from a
/// Hugging Face config, those `decoder_sparse_step` / `mlp_only_layers` select) routes each token to the
/// top-k experts of the router softmax, weighted by their probabilities as they are (no renormalization
/// unless `norm_topk_prob`), plus a shared expert gated by a sigmoid. QKV biases as configured (`qkv_bias`,
/// default true), or as the GGUF has them.
public final class Qwen2MoEModel: DecoderModel, @unchecked Sendable {
    public init(config: ModelConfig, weights: WeightStore) throws {
        guard config.experts != nil else { throw QwenError.format("Qwen2-MoE model without expert settings") }
        var options = Options()
        options.attention.qkvBias = config.attentionBias ?? (weights.tensor("blk.0.attn_q.bias") != nil)
        try super.init(config: config, weights: weights, options: options)
    }
}
