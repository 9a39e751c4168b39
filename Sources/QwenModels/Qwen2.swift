import QwenFormats
import QwenTensors

/// Qwen2 / Qwen2.5: RMSNorm, GQA self-attention with QKV bias and NeoX RoPE, SwiGLU MLP,
/// output head tied to the embeddings unless the file has its own.
public final class Qwen2Model: LanguageModel {
    struct Block {
        let attentionNorm: RMSNorm
        let attention: SelfAttention
        let feedForwardNorm: RMSNorm
        let feedForward: SwiGLU
    }

    public let config: ModelConfig
    public let vocabularySize: Int
    let embedding: WeightMatrix
    let blocks: [Block]
    let outputNorm: RMSNorm
    let output: Linear
    let rope: RotaryEmbedding
    let weights: WeightStore

    public init(config c: ModelConfig, weights store: WeightStore) throws {
        config = c
        weights = store
        let embd = try store.require("token_embd.weight")
        guard embd.shape.count == 2, embd.shape[1] == c.hiddenSize, embd.shape[0] > 0 else {
            throw QwenError.format("token_embd.weight has shape \(embd.shape), expected [vocab, \(c.hiddenSize)]")
        }
        vocabularySize = embd.shape[0]
        let tied = c.tiedEmbeddings ?? (store.tensor("output.weight") == nil)
        // a tied embedding is also the output head: pack it for the matmul kernels
        embedding = try WeightMatrix(embd, pack: tied, pool: store.loadPool)
        blocks = try (0 ..< c.layerCount).map { i in
            let p = "blk.\(i)"
            return Block(
                attentionNorm: try RMSNorm(store, p + ".attn_norm.weight", count: c.hiddenSize, eps: c.rmsNormEps),
                attention: try SelfAttention(store, p, config: c, options: SelfAttention.Options()),
                feedForwardNorm: try RMSNorm(store, p + ".ffn_norm.weight", count: c.hiddenSize, eps: c.rmsNormEps),
                feedForward: try SwiGLU(store, p, hidden: c.hiddenSize, inner: c.feedForwardSize))
        }
        outputNorm = try RMSNorm(store, "output_norm.weight", count: c.hiddenSize, eps: c.rmsNormEps)
        switch tied {
        case true: output = Linear(weight: embedding)
        case false: output = try Linear(store, "output", inputs: c.hiddenSize, outputs: vocabularySize, bias: false)
        }
        rope = RotaryEmbedding(dimension: c.headDim, theta: c.ropeTheta)
    }

    public func forward(tokens: UnsafeBufferPointer<Int32>, start: Int, cache: KVCache, workspace ws: Workspace,
                        logits: UnsafeMutablePointer<Float>?, allLogits: Bool) throws {
        let n = tokens.count, d = config.hiddenSize
        precondition(n > 0 && n <= ws.batch && start + n <= cache.capacity)
        let x = ws.hidden.pointer, h = ws.normed.pointer
        for t in 0 ..< n {
            try embedding.dequantizeRow(Int(tokens[t]), into: x + t * d)
            rope.angles(position: start + t, cos: ws.ropeCos.pointer + t * config.headDim / 2,
                        sin: ws.ropeSin.pointer + t * config.headDim / 2)
        }
        for (layer, block) in blocks.enumerated() {
            block.attentionNorm(x, rows: n, into: h)
            block.attention(h, tokens: n, start: start, layer: layer, cache: cache, rope: rope, into: ws.projected.pointer, ws)
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
}
