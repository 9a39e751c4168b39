import QwenFormats
import QwenMedia
import QwenTensors
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Hyperparameters of Qwen2-Audio's audio tower (a Whisper-large-v3-style encoder) and its projector, or of the
/// first-generation Qwen-Audio's (Whisper-large-v2-style, 80 mel bins).
public struct AudioEncoderConfig: Sendable, Equatable {
    public enum Kind: Sendable {
        /// transformers' Qwen2AudioEncoder: the clip's mel frames are ceil(samples / hop), the first convolution sees
        /// the window's padded frames after them.
        case qwen2Audio
        /// The original Qwen-Audio `audio.py`: floor(samples / hop) mel frames, the first convolution sees zeros past
        /// the clip's 2T frames, and the rows are framed by the learned `audio_bos_eos_token` embeddings.
        case qwenAudio
    }

    public var kind = Kind.qwen2Audio
    public var melBins = 128
    public var width = 1280            // d_model
    public var layers = 32             // encoder_layers
    public var heads = 20              // encoder_attention_heads
    public var feedForwardSize = 5120  // encoder_ffn_dim
    public var maxSourcePositions = 1500
    public var layerNormEps: Float = 1e-5
    /// Width of the language model the projector writes (its hidden size).
    public var outputSize = 4096

    public init() {}

    /// `audio_config` of a Hugging Face Qwen2-Audio config.json (missing keys take Qwen2AudioEncoderConfig's defaults,
    /// as transformers does), the projector writing `text hidden size` floats.
    public init(huggingFace audio: JSON?, textHidden: Int) throws {
        let a = audio ?? .object([])
        melBins = a["num_mel_bins"]?.int ?? melBins
        width = a["d_model"]?.int ?? width
        layers = a["encoder_layers"]?.int ?? layers
        heads = a["encoder_attention_heads"]?.int ?? heads
        feedForwardSize = a["encoder_ffn_dim"]?.int ?? feedForwardSize
        maxSourcePositions = a["max_source_positions"]?.int ?? maxSourcePositions
        outputSize = textHidden
        if let act = a["activation_function"]?.string, act != "gelu" {
            throw QwenError.unsupported("audio encoder activation '\(act)' is not supported (gelu is)")
        }
        if a["scale_embedding"]?.bool == true {
            throw QwenError.unsupported("audio encoder scale_embedding: true is not supported")
        }
        try validate()
    }

    /// config.json's `audio` object of the first-generation Qwen-Audio (`n_mels`, `n_ctx`, `n_state`, `n_head`,
    /// `n_layer`, `output_dim`).
    public init(qwenAudio a: JSON, textHidden: Int) throws {
        kind = .qwenAudio
        melBins = a["n_mels"]?.int ?? 80
        width = a["n_state"]?.int ?? 1280
        layers = a["n_layer"]?.int ?? 32
        heads = a["n_head"]?.int ?? 20
        feedForwardSize = 4 * width
        maxSourcePositions = a["n_ctx"]?.int ?? 1500
        outputSize = a["output_dim"]?.int ?? textHidden
        guard outputSize == textHidden else {
            throw QwenError.format("the Qwen-Audio encoder gives \(outputSize) floats, the language model's hidden size is \(textHidden)")
        }
        guard a["avg_pool"]?.bool ?? true, a["add_audio_bos_eos_token"]?.bool ?? true else {
            throw QwenError.unsupported("Qwen-Audio encoders without average pooling or audio bos/eos embeddings are not supported")
        }
        try validate()
    }

    /// The `clip.audio.*` keys llama.cpp's converter writes into an audio mmproj (projector type "qwen2a").
    public init(mmproj gguf: GGUFFile) throws {
        guard let type = gguf["clip.projector_type"]?.string ?? gguf["clip.audio.projector_type"]?.string else {
            throw QwenError.format("'\(gguf.file.path)' has no clip.projector_type: not an mmproj file")
        }
        guard type == "qwen2a" || type == ProjectorExport.qwenAudioProjectorType else {
            throw QwenError.unsupported("audio projector type '\(type)' is not supported (qwen2a: Qwen2-Audio, qwenaudio: Qwen-Audio)")
        }
        if type == ProjectorExport.qwenAudioProjectorType { kind = .qwenAudio }
        func int(_ key: String) throws -> Int {
            guard let v = gguf["clip.audio.\(key)"]?.int else { throw QwenError.format("mmproj lacks clip.audio.\(key)") }
            return v
        }
        melBins = try int("num_mel_bins")
        width = try int("embedding_length")
        layers = try int("block_count")
        heads = try int("attention.head_count")
        feedForwardSize = try int("feed_forward_length")
        outputSize = try int("projection_dim")
        layerNormEps = Float(gguf["clip.audio.attention.layer_norm_epsilon"]?.double ?? 1e-5)
        maxSourcePositions = gguf.tensor("a.position_embd.weight")?.shape.first ?? maxSourcePositions
        try validate()
    }

    func validate() throws {
        let dims = [melBins, width, layers, heads, feedForwardSize, maxSourcePositions, outputSize]
        guard dims.allSatisfy({ $0 > 0 && $0 <= 1 << 20 }), width % heads == 0, layers <= 1024 else {
            throw QwenError.format("invalid audio encoder dimensions \(dims)")
        }
        guard layerNormEps > 0, layerNormEps < 1 else { throw QwenError.format("invalid audio encoder LayerNorm epsilon") }
    }

    /// Mel frames the encoder takes: two per position (the second convolution has stride 2).
    public var inputFrames: Int { maxSourcePositions * 2 }
}

/// Qwen2-Audio's audio tower and projector (transformers' `Qwen2AudioEncoder` + `Qwen2AudioMultiModalProjector`):
/// conv1d(mel → d, k 3, pad 1) + GELU, conv1d(d → d, k 3, stride 2, pad 1) + GELU, plus the stored position table
/// (sinusoids if a file has none); pre-norm Transformer layers (LayerNorm → attention with biased q/v/out and
/// unbiased k → residual; LayerNorm → fc1 → GELU → fc2 → residual); average pooling by 2; final LayerNorm;
/// the projector (Linear d → LLM width).
///
/// The reference runs all 1500 positions of the 30-second window and masks the keys of the positions past the clip
/// (`feature_attention_mask`), then keeps the first ((L-1)/2+1 - 2)/2 + 1 pooled rows for L valid mel frames. Only
/// the clip's positions reach those rows (masked keys get exactly zero weight; every other operation is per
/// position), so this runs the Transformer on the valid positions alone: the same result, and a short clip costs
/// proportionally less. The convolutions see the padded frames next to the clip as the reference's do.
public final class Qwen2AudioEncoder: @unchecked Sendable {
    struct Layer {
        let norm1: (weight: [Float], bias: [Float])
        let query: Linear, key: Linear, value: Linear, output: Linear
        let norm2: (weight: [Float], bias: [Float])
        let up: Linear, down: Linear
    }

    public let config: AudioEncoderConfig
    let conv1: Linear
    let conv2: Linear
    /// maxSourcePositions × width
    let positions: [Float]
    let layers: [Layer]
    let postNorm: (weight: [Float], bias: [Float])
    let projector: Linear
    /// Qwen-Audio's bos and eos rows (`audio_bos_eos_token`), 2 × outputSize.
    let boundaries: [Float]?
    /// Keeps the mapped files alive: matrices read them in place (and pack from them on first use).
    let weights: WeightStore

    /// Loads the tensors by their llama.cpp mmproj names (`a.conv1d.1.weight`, `a.blk.N.attn_q.weight`, ...,
    /// `mm.a.fc.weight`); Hugging Face names are mapped to these (`audioGGUFName`).
    public init(config c: AudioEncoderConfig, weights store: WeightStore) throws {
        config = c
        weights = store
        let d = c.width
        func vector(_ name: String, _ n: Int) throws -> [Float] { try loadVector(store, name, count: n) }
        func dense(_ prefix: String, rows: Int, columns: Int, bias: Bool = true) throws -> Linear {
            Linear(weight: try loadMatrix(store, prefix + ".weight", rows: rows, columns: columns),
                  bias: bias ? try vector(prefix + ".bias", rows) : nil)
        }
        func conv(_ prefix: String, inputs: Int) throws -> Linear {
            let t = try store.require(prefix + ".weight")
            guard t.shape == [d, inputs, 3] else {
                throw QwenError.format("'\(prefix).weight' has shape \(t.shape), expected [\(d), \(inputs), 3]")
            }
            // [out][in][k] is the matrix [out][in·3] the im2col rows below multiply
            let m = TensorData(name: t.name, type: t.type, shape: [d, inputs * 3], data: t.data, byteCount: t.byteCount,
                               isFileMapped: t.isFileMapped)
            return Linear(weight: try WeightMatrix(m, pack: true, arena: store.packingArena), bias: try vector(prefix + ".bias", d))
        }
        conv1 = try conv("a.conv1d.1", inputs: c.melBins)
        conv2 = try conv("a.conv1d.2", inputs: d)
        if let p = store.tensor("a.position_embd.weight") {
            guard p.shape == [c.maxSourcePositions, d] else {
                throw QwenError.format("'a.position_embd.weight' has shape \(p.shape), expected [\(c.maxSourcePositions), \(d)]")
            }
            var table = [Float](repeating: 0, count: c.maxSourcePositions * d)
            let rowBytes = p.type.byteCount(elements: d)!
            try table.withUnsafeMutableBufferPointer { out in
                for r in 0 ..< c.maxSourcePositions {
                    try RowKernels.dequantizeRow(p.type, p.data + r * rowBytes, out.baseAddress! + r * d, d)
                }
            }
            positions = table
        } else {
            positions = Self.sinusoids(length: c.maxSourcePositions, channels: d)
        }
        let f = try store.require("a.blk.0.ffn_up.weight").shape.first ?? c.feedForwardSize
        layers = try (0 ..< c.layers).map { i in
            let p = "a.blk.\(i)"
            return Layer(
                norm1: (try vector(p + ".ln1.weight", d), try vector(p + ".ln1.bias", d)),
                query: try dense(p + ".attn_q", rows: d, columns: d),
                key: try dense(p + ".attn_k", rows: d, columns: d, bias: false),
                value: try dense(p + ".attn_v", rows: d, columns: d),
                output: try dense(p + ".attn_out", rows: d, columns: d),
                norm2: (try vector(p + ".ln2.weight", d), try vector(p + ".ln2.bias", d)),
                up: try dense(p + ".ffn_up", rows: f, columns: d),
                down: try dense(p + ".ffn_down", rows: d, columns: f))
        }
        postNorm = (try vector("a.post_ln.weight", d), try vector("a.post_ln.bias", d))
        projector = try dense("mm.a.fc", rows: c.outputSize, columns: d)
        boundaries = c.kind == .qwenAudio ? try vector("a.bos_eos.weight", 2 * c.outputSize) : nil
    }

    /// Whisper's sinusoidal table: sin for the first half of the channels, cos for the second, timescales
    /// 1 ... 10000 log-spaced.
    static func sinusoids(length: Int, channels: Int) -> [Float] {
        let half = channels / 2
        let increment = log(10_000.0) / Double(max(half - 1, 1))
        var out = [Float](repeating: 0, count: length * channels)
        for t in 0 ..< length {
            for i in 0 ..< half {
                let a = Double(t) * exp(-increment * Double(i))
                out[t * channels + i] = Float(sin(a))
                out[t * channels + half + i] = Float(cos(a))
            }
        }
        return out
    }

    /// Positions after the convolutions for `validFrames` mel frames, and the pooled rows
    /// (transformers' `_get_feat_extract_output_lengths`, the original `get_T_after_cnn`).
    public func lengths(validFrames l: Int) -> (positions: Int, tokens: Int) {
        let positions = l > 0 ? (l - 1) / 2 + 1 : 0
        return (positions, positions >= 2 ? (positions - 2) / 2 + 1 : 0)
    }

    /// Rows the LLM receives for `validFrames` mel frames: the pooled rows, with Qwen-Audio's bos and eos around
    /// them (0 when there is no pooled row).
    public func rows(validFrames l: Int) -> Int {
        let pooled = lengths(validFrames: l).tokens
        return pooled > 0 && boundaries != nil ? pooled + 2 : pooled
    }

    /// Runs the tower on one window of features ([melBins][frames] floats, frames = `config.inputFrames`, of which
    /// the first `validFrames` belong to the clip) and returns the projected rows, `rows(validFrames:)` × outputSize
    /// floats.
    public func encode(features: UnsafePointer<Float>, validFrames: Int, pool: ThreadPool?) throws -> [Float] {
        let c = config, d = c.width, frames = c.inputFrames
        guard validFrames > 0, validFrames <= frames else {
            throw QwenError.invalidArgument("audio window has \(validFrames) valid frames (1...\(frames))")
        }
        let (n, tokens) = lengths(validFrames: validFrames)
        guard tokens > 0 else {
            throw QwenError.invalidArgument("audio too short: \(validFrames) mel frames give no audio token (at least 3 are needed)")
        }
        let f = layers.first?.up.weight.rows ?? c.feedForwardSize
        let weights = [conv1.weight, conv2.weight, projector.weight] + layers.flatMap { [$0.query.weight, $0.up.weight, $0.down.weight] }
        let scratchBytes = weights.map { $0.scratchBytes(tokens: 2 * n) }.max()!
        let scratch = try AlignedBuffer<UInt8>(count: scratchBytes, what: "audio encoder scratch")
        let cols = try AlignedBuffer<Float>(count: 2 * n * max(c.melBins, d) * 3, what: "audio encoder activations")
        let h1 = try AlignedBuffer<Float>(count: 2 * n * d, what: "audio encoder activations")
        let x = try AlignedBuffer<Float>(count: n * d, what: "audio encoder activations")
        let h = try AlignedBuffer<Float>(count: n * d, what: "audio encoder activations")
        let q = try AlignedBuffer<Float>(count: n * d, what: "audio encoder activations")
        let k = try AlignedBuffer<Float>(count: n * d, what: "audio encoder activations")
        let v = try AlignedBuffer<Float>(count: n * d, what: "audio encoder activations")
        let a = try AlignedBuffer<Float>(count: n * d, what: "audio encoder activations")
        let up = try AlignedBuffer<Float>(count: n * f, what: "audio encoder activations")

        func run(_ layer: Linear, _ input: UnsafePointer<Float>, rows: Int, _ output: UnsafeMutablePointer<Float>) {
            layer(input, tokens: rows, into: output, scratch: scratch.rawBuffer, pool: pool)
        }

        // conv1 over mel frames 0 ..< 2n (conv2 reads them), as im2col rows [t][mel·3 + k] = features[mel][t + k - 1];
        // Qwen-Audio's reference slices the mel to those frames first, so its conv1 sees zeros after them
        let t1 = min(frames, 2 * n), m = c.melBins
        let readable = c.kind == .qwenAudio ? t1 : frames
        let colsP = cols.pointer
        for t in 0 ..< t1 {
            let row = colsP + t * m * 3
            for i in 0 ..< m {
                let src = features + i * frames
                row[i * 3] = t > 0 ? src[t - 1] : 0
                row[i * 3 + 1] = src[t]
                row[i * 3 + 2] = t + 1 < readable ? src[t + 1] : 0
            }
        }
        run(conv1, colsP, rows: t1, h1.pointer)
        Ops.gelu(h1.pointer, count: t1 * d)
        // conv2, stride 2: [j][ch·3 + k] = h1[2j + k - 1][ch]
        for j in 0 ..< n {
            let row = colsP + j * d * 3
            for kk in 0 ..< 3 {
                let src = 2 * j + kk - 1
                if src < 0 || src >= t1 {
                    for ch in 0 ..< d { row[ch * 3 + kk] = 0 }
                } else {
                    let s = h1.pointer + src * d
                    for ch in 0 ..< d { row[ch * 3 + kk] = s[ch] }
                }
            }
        }
        run(conv2, colsP, rows: n, x.pointer)
        Ops.gelu(x.pointer, count: n * d)
        positions.withUnsafeBufferPointer { Ops.add(x.pointer, $0.baseAddress!, count: n * d) }

        let spans = [AttentionSpan(0 ..< n)]
        for layer in layers {
            layer.norm1.weight.withUnsafeBufferPointer { w in
                layer.norm1.bias.withUnsafeBufferPointer { b in
                    Ops.layerNorm(x.pointer, w.baseAddress!, b.baseAddress!, h.pointer, n: d, rows: n, eps: c.layerNormEps)
                }
            }
            run(layer.query, h.pointer, rows: n, q.pointer)
            run(layer.key, h.pointer, rows: n, k.pointer)
            run(layer.value, h.pointer, rows: n, v.pointer)
            try Attention.bidirectionalBlocked(queries: q.pointer, keys: k.pointer, values: v.pointer, rows: n, heads: c.heads,
                                               kvHeads: c.heads, headDim: d / c.heads, spans: spans, output: a.pointer, pool: pool)
            run(layer.output, a.pointer, rows: n, h.pointer)
            Ops.add(x.pointer, h.pointer, count: n * d)
            layer.norm2.weight.withUnsafeBufferPointer { w in
                layer.norm2.bias.withUnsafeBufferPointer { b in
                    Ops.layerNorm(x.pointer, w.baseAddress!, b.baseAddress!, h.pointer, n: d, rows: n, eps: c.layerNormEps)
                }
            }
            run(layer.up, h.pointer, rows: n, up.pointer)
            Ops.gelu(up.pointer, count: n * f)
            run(layer.down, up.pointer, rows: n, h.pointer)
            Ops.add(x.pointer, h.pointer, count: n * d)
        }
        // average pooling by 2, final LayerNorm, projector
        for r in 0 ..< tokens {
            let o = h.pointer + r * d, s0 = x.pointer + 2 * r * d, s1 = s0 + d
            for i in 0 ..< d { o[i] = (s0[i] + s1[i]) * 0.5 }
        }
        postNorm.weight.withUnsafeBufferPointer { w in
            postNorm.bias.withUnsafeBufferPointer { b in
                Ops.layerNorm(h.pointer, w.baseAddress!, b.baseAddress!, q.pointer, n: d, rows: tokens, eps: c.layerNormEps)
            }
        }
        var out = [Float](repeating: 0, count: tokens * c.outputSize)
        out.withUnsafeMutableBufferPointer { run(projector, q.pointer, rows: tokens, $0.baseAddress!) }
        guard let boundaries else { return out }
        return Array(boundaries[0 ..< c.outputSize]) + out + Array(boundaries[c.outputSize...])
    }
}

extension WeightStore {
    /// Our mmproj-style name of an original Qwen-Audio tensor (`transformer.audio.*`), nil for others.
    static func qwenAudioGGUFName(huggingFace name: String) -> String? {
        guard name.hasPrefix("transformer.audio.") else { return nil }
        let n = name.dropFirst("transformer.audio.".count)
        let globals: [(Substring, String)] = [
            ("conv1.weight", "a.conv1d.1.weight"), ("conv1.bias", "a.conv1d.1.bias"),
            ("conv2.weight", "a.conv1d.2.weight"), ("conv2.bias", "a.conv1d.2.bias"),
            ("positional_embedding", "a.position_embd.weight"), ("ln_post.weight", "a.post_ln.weight"),
            ("ln_post.bias", "a.post_ln.bias"), ("proj.weight", "mm.a.fc.weight"), ("proj.bias", "mm.a.fc.bias"),
            ("audio_bos_eos_token.weight", "a.bos_eos.weight"),
        ]
        if let g = globals.first(where: { $0.0 == n }) { return g.1 }
        guard n.hasPrefix("blocks.") else { return nil }
        let rest = n.dropFirst("blocks.".count)
        guard let dot = rest.firstIndex(of: "."), let block = Int(rest[..<dot]), block >= 0 else { return nil }
        let suffix = rest[rest.index(after: dot)...]
        let parts: [(Substring, String)] = [
            ("attn_ln", "ln1"), ("mlp_ln", "ln2"), ("attn.query", "attn_q"), ("attn.key", "attn_k"), ("attn.value", "attn_v"),
            ("attn.out", "attn_out"), ("mlp.0", "ffn_up"), ("mlp.2", "ffn_down"),
        ]
        for (hf, gguf) in parts {
            for kind in ["weight", "bias"] where suffix == hf + "." + kind {
                return "a.blk.\(block).\(gguf).\(kind)"
            }
        }
        return nil
    }

    /// The llama.cpp mmproj name of a Hugging Face Qwen2-Audio tensor (`audio_tower.*`, `multi_modal_projector.*`,
    /// with or without transformers 5's `model.` prefix), nil for other tensors.
    static func audioGGUFName(huggingFace name: String) -> String? {
        var n = Substring(name)
        if n.hasPrefix("model.") { n = n.dropFirst("model.".count) }
        if n.hasPrefix("multi_modal_projector.linear.") {
            return "mm.a.fc." + n.dropFirst("multi_modal_projector.linear.".count)
        }
        guard n.hasPrefix("audio_tower.") else { return nil }
        n = n.dropFirst("audio_tower.".count)
        let globals: [(Substring, String)] = [
            ("conv1.weight", "a.conv1d.1.weight"), ("conv1.bias", "a.conv1d.1.bias"),
            ("conv2.weight", "a.conv1d.2.weight"), ("conv2.bias", "a.conv1d.2.bias"),
            ("embed_positions.weight", "a.position_embd.weight"),
            ("layer_norm.weight", "a.post_ln.weight"), ("layer_norm.bias", "a.post_ln.bias"),
        ]
        if let g = globals.first(where: { $0.0 == n }) { return g.1 }
        guard n.hasPrefix("layers.") else { return nil }
        let rest = n.dropFirst("layers.".count)
        guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]) else { return nil }
        let suffix = rest[rest.index(after: dot)...]
        let names: [(Substring, String)] = [
            ("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"), ("self_attn.v_proj", "attn_v"),
            ("self_attn.out_proj", "attn_out"), ("self_attn_layer_norm", "ln1"), ("final_layer_norm", "ln2"),
            ("fc1", "ffn_up"), ("fc2", "ffn_down"),
        ]
        for (hf, gguf) in names where suffix.hasPrefix(hf + ".") {
            return "a.blk.\(layer).\(gguf)." + suffix.dropFirst(hf.count + 1)
        }
        return nil
    }
}
