import QwenFormats
import QwenTensors

/// The decoder every Qwen2-style model shares: token embedding; per layer RMSNorm → GQA self-attention with
/// NeoX RoPE → residual, RMSNorm → feed-forward → residual; final RMSNorm and an output head tied to the
/// embeddings unless the file has its own. The architectures differ only in options (see Qwen2.swift,
/// Qwen3.swift): QKV biases, per-head q/k RMSNorm, and a dense SwiGLU or a sparse MoE feed-forward per layer.
public class DecoderModel: LanguageModel, @unchecked Sendable {
    public struct Options: Sendable {
        public var attention = SelfAttention.Options()
        public init() {}
    }

    /// One layer's feed-forward block.
    public enum FeedForward: Sendable {
        case dense(SwiGLU)
        case sparse(MoE)

        func callAsFunction(_ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>, _ ws: Workspace) {
            switch self {
            case let .dense(mlp): mlp(x, tokens: tokens, into: y, ws)
            case let .sparse(moe): moe(x, tokens: tokens, into: y, ws)
            }
        }
    }

    struct Block {
        let attentionNorm: RMSNorm
        let attention: SelfAttention
        let feedForwardNorm: RMSNorm
        let feedForward: FeedForward
    }

    public let config: ModelConfig
    public let vocabularySize: Int
    let embedding: WeightMatrix
    let blocks: [Block]
    let outputNorm: RMSNorm
    let output: Linear
    let rope: RotaryEmbedding
    let weights: WeightStore

    /// Layers are sparse where `config.experts` says so (or, for a GGUF, where the file has a router).
    public init(config c: ModelConfig, weights store: WeightStore, options: Options) throws {
        config = c
        weights = store
        let embd = try store.require("token_embd.weight")
        guard embd.shape.count == 2, embd.shape[1] == c.hiddenSize, embd.shape[0] > 0 else {
            throw QwenError.format("token_embd.weight has shape \(embd.shape), expected [vocab, \(c.hiddenSize)]")
        }
        if store.tensor("blk.0.attn_output.bias") != nil {
            throw QwenError.unsupported("'\(store.source)': a bias on the attention output projection is not supported")
        }
        vocabularySize = embd.shape[0]
        let tied = c.tiedEmbeddings ?? (store.tensor("output.weight") == nil)
        // a tied embedding is also the output head: pack it for the matmul kernels
        embedding = try WeightMatrix(embd, pack: tied, arena: store.packingArena)
        blocks = try (0 ..< c.layerCount).map { i in
            let p = "blk.\(i)"
            let feedForward: FeedForward
            if let e = c.experts, e.sparseLayers?[i] ?? (store.tensor(p + ".ffn_gate_inp.weight") != nil) {
                feedForward = .sparse(try MoE(store, p, hidden: c.hiddenSize, settings: e))
            } else {
                feedForward = .dense(try SwiGLU(store, p, hidden: c.hiddenSize, inner: c.feedForwardSize))
            }
            return Block(
                attentionNorm: try RMSNorm(store, p + ".attn_norm.weight", count: c.hiddenSize, eps: c.rmsNormEps),
                attention: try SelfAttention(store, p, config: c, options: options.attention),
                feedForwardNorm: try RMSNorm(store, p + ".ffn_norm.weight", count: c.hiddenSize, eps: c.rmsNormEps),
                feedForward: feedForward)
        }
        outputNorm = try RMSNorm(store, "output_norm.weight", count: c.hiddenSize, eps: c.rmsNormEps)
        switch tied {
        case true: output = Linear(weight: embedding)
        case false: output = try Linear(store, "output", inputs: c.hiddenSize, outputs: vocabularySize, bias: false)
        }
        rope = RotaryEmbedding(dimension: c.headDim, theta: c.ropeTheta)
    }

    public func forward(_ input: ForwardInput, start: Int, cache: KVCache, workspace ws: Workspace,
                        logits: UnsafeMutablePointer<Float>?, allLogits: Bool) throws {
        let tokens = input.tokens, n = tokens.count, d = config.hiddenSize
        precondition(n > 0 && n <= ws.batch && start + n <= cache.capacity)
        let x = ws.hidden.pointer, h = ws.normed.pointer
        for t in 0 ..< n {
            if let rows = input.embeddingRows, let embeddings = input.embeddings, rows[t] >= 0 {
                (x + t * d).update(from: embeddings + Int(rows[t]) * d, count: d)
            } else {
                try embedding.dequantizeRow(Int(tokens[t]), into: x + t * d)
            }
        }
        let queryScales = preparePositions(start: start, count: n, positions: input.positions, ws)
        for (layer, block) in blocks.enumerated() {
            block.attentionNorm(x, rows: n, into: h)
            block.attention(h, tokens: n, start: start, layer: layer, cache: cache, rope: rope, into: ws.projected.pointer, ws,
                            queryScales: queryScales)
            Ops.add(x, ws.projected.pointer, count: n * d)
            block.feedForwardNorm(x, rows: n, into: h)
            block.feedForward(h, tokens: n, into: ws.projected.pointer, ws)
            Ops.add(x, ws.projected.pointer, count: n * d)
        }
        guard let logits else { return }
        let first = allLogits ? 0 : n - 1
        outputNorm(x + first * d, rows: n - first, into: h)
        output(h, tokens: n - first, into: logits, ws)
    }

    /// Writes the RoPE cos/sin of each token to `ws.ropeCos` / `ws.ropeSin` and returns per-token query
    /// multipliers, if any. Positions are start..<start+count unless given ([component][count]); with M-RoPE
    /// sections (`config.mropeSections`) each section of frequencies takes its own component. Overridden where
    /// positions depend on the context (Qwen1's dynamic NTK and logn attention, QwenV1.swift).
    func preparePositions(start: Int, count n: Int, positions: UnsafePointer<Int32>?, _ ws: Workspace) -> UnsafePointer<Float>? {
        let half = config.headDim / 2
        for t in 0 ..< n {
            let c = ws.ropeCos.pointer + t * half, s = ws.ropeSin.pointer + t * half
            if let sections = config.mropeSections {
                rope.angles(sections: sections, position: { component in
                    positions.map { Int($0[min(component, 2) * n + t]) } ?? start + t
                }, cos: c, sin: s)
            } else {
                rope.angles(position: positions.map { Int($0[t]) } ?? start + t, cos: c, sin: s)
            }
        }
        return nil
    }
}
