import QwenFormats
import QwenTensors

/// Qwen3 (dense: Qwen3-0.6B … 32B). The Qwen2 decoder (see `DecoderModel`) with three differences:
/// - queries and keys are RMS-normalized per head (`attn_q_norm` / `attn_k_norm`, the model's epsilon)
///   after the projections and before RoPE;
/// - the q/k/v projections have no bias;
/// - the head size is its own hyperparameter (`head_dim`, GGUF `qwen3.attention.key_length`), so
///   heads × head_dim need not equal the hidden size (Qwen3-0.6B: 16 × 128 = 2048 over a hidden size of 1024).
/// The output head is tied (small models) or separate, as the file says. Chat uses the Qwen3 template with
/// `<think>` blocks (`ChatTemplate`).
public final class Qwen3Model: DecoderModel, @unchecked Sendable {
    public init(config: ModelConfig, weights: WeightStore) throws {
        try super.init(config: config, weights: weights, options: Self.attentionOptions(config, weights))
    }

    static func attentionOptions(_ config: ModelConfig, _ weights: WeightStore) -> Options {
        var options = Options()
        options.attention.qkvBias = config.attentionBias ?? (weights.tensor("blk.0.attn_q.bias") != nil)
        options.attention.queryKeyNorm = true
        return options
    }
}

/// Qwen3-MoE (Qwen3-30B-A3B, Qwen3-235B-A22B): Qwen3 attention with a sparse feed-forward in every layer
/// (or those `decoder_sparse_step` / `mlp_only_layers` select): each token goes to the top-k experts of the
/// router softmax, their probabilities renormalized to sum to 1 (`norm_topk_prob`; always, for a GGUF, as
/// llama.cpp does). No shared expert.
public final class Qwen3MoEModel: DecoderModel, @unchecked Sendable {
    public init(config: ModelConfig, weights: WeightStore) throws {
        guard config.experts != nil else { throw QwenError.format("Qwen3-MoE model without expert settings") }
        try super.init(config: config, weights: weights, options: Qwen3Model.attentionOptions(config, weights))
    }
}
