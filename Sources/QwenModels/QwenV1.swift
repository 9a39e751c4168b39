import QwenFormats
import QwenTensors
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Qwen, the first generation (Qwen-1.8B/7B/14B/72B and their -Chat models): `QWenLMHeadModel` of the original
/// `modeling_qwen.py`, GGUF architecture `qwen`. The decoder of `DecoderModel` with these settings:
/// - one fused projection for queries, keys and values, with bias (`attn.c_attn`, GGUF `attn_qkv`), and an output
///   projection without bias (`attn.c_proj`); as many key/value heads as query heads; NeoX RoPE over whole heads;
/// - the MLP `c_proj(w1(x) · silu(w2(x)))`, i.e. SwiGLU with `w2` as the gate and `w1` as the up projection (GGUF
///   `ffn_gate` / `ffn_up`), each half as wide as config.json's `intermediate_size` (GGUF `feed_forward_length`
///   is that doubled number too);
/// - RMSNorm (`ln_1`, `ln_2`, `ln_f`) and a separate output head (`lm_head`).
///
/// Past the training length (config.json `seq_length`) the original code does two things, reproduced here:
/// - `use_dynamic_ntk`: the forward that evaluates a prompt (no cache in the original) rescales the RoPE base to
///   `base · α^(d/(d−2))` with `α = max(2^⌈log2(L / seq_length) + 1⌉ − 1, 1)` for the length L it ends at; the
///   forwards that decode through the cache keep that α, and cached keys keep the rotation they were computed
///   with. Here a forward of several tokens (or the first one of a context) chooses α for the position the
///   evaluation it belongs to ends at (`Workspace.evaluationEnd`: a context evaluating a prompt in batches says
///   where the prompt ends, so every batch gets the prompt's α, as the original's single forward); a
///   single-token forward later in the context keeps the α of the last choice (`Workspace.ropeAlpha`). A prompt
///   evaluated and then decoded is thus exactly the original; a later turn evaluated on top of a cached prefix
///   chooses α for its own end, while the prefix keeps the rotation it was cached with. (Cached keys moved by a
///   context's sliding window are re-rotated with the base θ, exact while α is 1.)
/// - `use_logn_attn`: the query at 0-based position p is multiplied by log(p + 1) / log(seq_length) when
///   p + 1 > seq_length (after RoPE).
/// A GGUF carries neither `seq_length` nor the two flags (llama.cpp's converter drops them and llama.cpp implements
/// neither), so a GGUF runs with plain RoPE and unscaled queries, as llama.cpp runs it.
public final class QwenV1Model: DecoderModel, @unchecked Sendable {
    public init(config: ModelConfig, weights: WeightStore) throws {
        guard config.kvHeadCount == config.headCount else {
            throw QwenError.format("Qwen (first generation) has as many KV heads as heads, not \(config.kvHeadCount) of \(config.headCount)")
        }
        var options = Options()
        options.attention.fusedQKV = true
        options.attention.qkvBias = true
        try super.init(config: config, weights: weights, options: options)
    }

    /// Dynamic NTK: the RoPE base for this forward (see above); logn attention: the query multipliers.
    override func preparePositions(start: Int, count n: Int, positions: UnsafePointer<Int32>?, _ ws: Workspace) -> UnsafePointer<Float>? {
        guard let ext = config.lengthExtrapolation else { return super.preparePositions(start: start, count: n, positions: positions, ws) }
        var alpha = 1.0
        if ext.dynamicNTK {
            if n > 1 || start == 0 || ws.ropeAlpha == 0 {
                // a prompt evaluated in several batches: the length of the whole prompt, as one forward would
                let end = ws.evaluationEnd >= start + n ? ws.evaluationEnd : start + n
                ws.ropeAlpha = Self.ntkAlpha(length: end, trainingLength: ext.trainingLength)
            }
            alpha = ws.ropeAlpha
        }
        Self.ropeAngles(theta: Self.ntkTheta(config.ropeTheta, alpha: alpha, dimension: config.headDim),
                        dimension: config.headDim, start: start, count: n,
                        cos: ws.ropeCos.pointer, sin: ws.ropeSin.pointer, stride: config.headDim / 2)
        guard ext.lognAttention, start + n > ext.trainingLength else { return nil }
        for t in 0 ..< n {
            ws.queryScale.pointer[t] = Self.lognScale(position: start + t, trainingLength: ext.trainingLength)
        }
        return UnsafePointer(ws.queryScale.pointer)
    }

    /// `get_ntk_alpha` of modeling_qwen.py: max(2^⌈log2(length / trainingLength) + 1⌉ − 1, 1).
    public static func ntkAlpha(length: Int, trainingLength: Int) -> Double {
        let contextValue = log(Double(length) / Double(trainingLength)) / log(2.0) + 1
        return max(pow(2, contextValue.rounded(.up)) - 1, 1)
    }

    /// The RoPE base for an NTK alpha: base · α^(d / (d − 2)) (RotaryEmbedding.update_rotary_pos_emb_cache).
    static func ntkTheta(_ theta: Float, alpha: Double, dimension: Int) -> Float {
        alpha == 1 ? theta : Float(Double(theta) * pow(alpha, Double(dimension) / Double(dimension - 2)))
    }

    /// logn attention: log(p + 1) / log(trainingLength) past the training length, else 1 (p 0-based).
    public static func lognScale(position p: Int, trainingLength: Int) -> Float {
        p + 1 > trainingLength ? Float(log(Double(p + 1)) / log(Double(trainingLength))) : 1
    }

    /// cos/sin of positions start..<start+count for RoPE base `theta`, `stride` floats per position; the same
    /// arithmetic as `RotaryEmbedding` (inverse frequencies 1/θ^(2i/d) in Float), without allocating.
    static func ropeAngles(theta: Float, dimension: Int, start: Int, count: Int,
                           cos c: UnsafeMutablePointer<Float>, sin s: UnsafeMutablePointer<Float>, stride: Int) {
        let half = dimension / 2
        withUnsafeTemporaryAllocation(of: Float.self, capacity: half) { inv in
            for i in 0 ..< half {
                inv[i] = 1 / Float(pow(Double(theta), Double(Float(2 * i) / Float(dimension))))
            }
            for t in 0 ..< count {
                let fp = Float(start + t)
                for i in 0 ..< half {
                    let a = Double(fp * inv[i])
                    c[t * stride + i] = Float(cos(a))
                    s[t * stride + i] = Float(sin(a))
                }
            }
        }
    }
}

/// What Qwen (first generation) does past its training length (config.json `seq_length`, `use_dynamic_ntk`,
/// `use_logn_attn`; see `QwenV1Model`).
public struct LengthExtrapolation: Sendable, Equatable {
    /// `seq_length`: the length the model was trained on.
    public var trainingLength: Int
    public var dynamicNTK: Bool
    public var lognAttention: Bool

    public init(trainingLength: Int, dynamicNTK: Bool, lognAttention: Bool) {
        self.trainingLength = trainingLength
        self.dynamicNTK = dynamicNTK
        self.lognAttention = lognAttention
    }
}

extension ModelConfig {
    /// config.json of the original release (`model_type` "qwen", `configuration_qwen.py`): `hidden_size`,
    /// `num_hidden_layers`, `num_attention_heads`, `kv_channels` (head size), `intermediate_size` (twice the
    /// SwiGLU width), `layer_norm_epsilon`, `rotary_emb_base`, `rotary_pct`, `max_position_embeddings`,
    /// `seq_length`, `use_dynamic_ntk`, `use_logn_attn` (both default true, as in `QWenConfig`), `no_bias`; the
    /// first configs' names (`n_embd`, `n_layer`, `n_head`, `ffn_hidden_size`, `n_positions`) are read too.
    init(qwenV1 config: JSON) throws {
        func value(_ keys: String...) -> JSON? {
            for k in keys { if let v = config[k], !v.isNull { return v } }
            return nil
        }
        func int(_ keys: String...) throws -> Int {
            for k in keys { if let v = config[k]?.int { return v } }
            throw QwenError.format("config.json lacks \(keys[0])")
        }
        architecture = "qwen"
        hiddenSize = try int("hidden_size", "n_embd")
        layerCount = try int("num_hidden_layers", "n_layer")
        headCount = try int("num_attention_heads", "n_head")
        kvHeadCount = headCount
        headDim = value("kv_channels")?.int ?? (headCount > 0 ? hiddenSize / headCount : 0)
        let inner = try int("intermediate_size", "ffn_hidden_size")
        feedForwardSize = inner / 2
        ropeTheta = Float(value("rotary_emb_base", "rope_theta")?.double ?? 10_000)
        rmsNormEps = Float(value("layer_norm_epsilon")?.double ?? 1e-6)
        contextLength = value("max_position_embeddings", "n_positions")?.int ?? 8192
        tiedEmbeddings = value("tie_word_embeddings")?.bool ?? false
        guard headCount * headDim == hiddenSize, inner % 2 == 0 else {
            throw QwenError.format("config.json: kv_channels × num_attention_heads must equal hidden_size and " +
                                   "intermediate_size must be even (\(headDim) × \(headCount), \(hiddenSize), \(inner))")
        }
        if let pct = value("rotary_pct")?.double, pct != 1 {
            throw QwenError.unsupported("rotary_pct \(pct) is not supported (RoPE over whole heads only)")
        }
        if value("no_bias")?.bool == false {
            throw QwenError.unsupported("no_bias: false (biases on the MLP and output projections) is not supported")
        }
        let ntk = value("use_dynamic_ntk")?.bool ?? true
        let logn = value("use_logn_attn")?.bool ?? true
        if ntk || logn {
            guard let s = value("seq_length")?.int, s > 0 else {
                throw QwenError.format("config.json sets use_dynamic_ntk / use_logn_attn but no seq_length")
            }
            lengthExtrapolation = LengthExtrapolation(trainingLength: s, dynamicNTK: ntk, lognAttention: logn)
        }
        try validate()
    }

    /// GGUF `qwen` files as llama.cpp's converter writes them: `feed_forward_length` is config.json's
    /// `intermediate_size` (llama.cpp halves it); the epsilon is `qwen.attention.layer_norm_rms_epsilon` in files
    /// of older converters and `qwen.attention.layer_norm_epsilon` in those of newer ones.
    mutating func adjustQwenV1(gguf: GGUFFile) throws {
        guard feedForwardSize % 2 == 0 else {
            throw QwenError.format("qwen.feed_forward_length \(feedForwardSize) is odd (it is twice the SwiGLU width)")
        }
        feedForwardSize /= 2
        if gguf["qwen.attention.layer_norm_rms_epsilon"] == nil, let eps = gguf["qwen.attention.layer_norm_epsilon"]?.double {
            rmsNormEps = Float(eps)
        }
        if let rot = gguf["qwen.rope.dimension_count"]?.int, rot != headDim {
            throw QwenError.unsupported("RoPE over \(rot) of \(headDim) head dimensions is not supported")
        }
    }
}

extension WeightStore {
    /// Tensor names of the original checkpoints (`transformer.wte`, `transformer.h.N.attn.c_attn`, ...) mapped to
    /// the GGUF names llama.cpp's converter gives them (`lm_head.weight` is shared with the other models).
    static func qwenV1GGUFName(huggingFace name: String) -> String? {
        guard name.hasPrefix("transformer.") else { return nil }
        let n = name.dropFirst("transformer.".count)
        if n == "wte.weight" { return "token_embd.weight" }
        if n == "ln_f.weight" { return "output_norm.weight" }
        guard n.hasPrefix("h.") else { return nil }
        let rest = n.dropFirst(2)
        guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]), layer >= 0 else { return nil }
        let suffix = rest[rest.index(after: dot)...]
        guard let mapped = qwenV1LayerNames.first(where: { $0.hf == suffix }) else { return nil }
        return "blk.\(layer).\(mapped.gguf)"
    }

    /// The original name of a tensor only Qwen (first generation) has (for messages).
    static func qwenV1HuggingFaceName(gguf name: String) -> String? {
        let parts = name.split(separator: ".", maxSplits: 2)
        guard parts.count == 3, parts[0] == "blk", let layer = Int(parts[1]), parts[2].hasPrefix("attn_qkv."),
              let mapped = qwenV1LayerNames.first(where: { $0.gguf == parts[2] }) else { return nil }
        return "transformer.h.\(layer).\(mapped.hf)"
    }

    static let qwenV1LayerNames: [(hf: Substring, gguf: Substring)] = [
        ("ln_1.weight", "attn_norm.weight"), ("ln_2.weight", "ffn_norm.weight"),
        ("attn.c_attn.weight", "attn_qkv.weight"), ("attn.c_attn.bias", "attn_qkv.bias"),
        ("attn.c_proj.weight", "attn_output.weight"),
        ("mlp.w1.weight", "ffn_up.weight"), ("mlp.w2.weight", "ffn_gate.weight"), ("mlp.c_proj.weight", "ffn_down.weight"),
    ]
}
