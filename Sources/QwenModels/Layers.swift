import QwenFormats
import QwenTensors

/// Loads a 1-D tensor (norm gain, bias) of `count` elements as floats, whatever its storage type.
func loadVector(_ store: WeightStore, _ name: String, count: Int) throws -> [Float] {
    let t = try store.require(name)
    guard t.elementCount == count else {
        throw QwenError.format("'\(name)' has \(t.elementCount) elements, expected \(count)")
    }
    guard [.f32, .f16, .bf16].contains(t.type) else {
        throw QwenError.unsupported("'\(name)' is stored as \(t.type.name); vectors must be F32, F16 or BF16")
    }
    var out = [Float](repeating: 0, count: count)
    try out.withUnsafeMutableBufferPointer { try RowKernels.dequantizeRow(t.type, t.data, $0.baseAddress!, count) }
    return out
}

/// Loads a weight matrix and checks its shape ([rows, columns] = [out features, in features]).
func loadMatrix(_ store: WeightStore, _ name: String, rows: Int, columns: Int) throws -> WeightMatrix {
    let t = try store.require(name)
    guard t.shape == [rows, columns] else {
        throw QwenError.format("'\(name)' has shape \(t.shape), expected [\(rows), \(columns)]")
    }
    return try WeightMatrix(t, pack: true, arena: store.packingArena)
}

/// A dense layer y = W·x (+ b).
public struct Linear: Sendable {
    public let weight: WeightMatrix
    public let bias: [Float]?

    public init(_ store: WeightStore, _ prefix: String, inputs: Int, outputs: Int, bias hasBias: Bool) throws {
        weight = try loadMatrix(store, prefix + ".weight", rows: outputs, columns: inputs)
        bias = hasBias ? try loadVector(store, prefix + ".bias", count: outputs) : nil
    }

    public init(weight: WeightMatrix, bias: [Float]? = nil) {
        self.weight = weight
        self.bias = bias
    }

    public func callAsFunction(_ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>, _ ws: Workspace) {
        self(x, tokens: tokens, into: y, scratch: ws.quantized.rawBuffer, pool: ws.pool)
    }

    /// With the caller's scratch (the encoders size one for all their layers).
    public func callAsFunction(_ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>,
                               scratch: UnsafeMutableRawBufferPointer, pool: ThreadPool?) {
        if let bias {
            bias.withUnsafeBufferPointer {
                linear(weight, input: x, tokens: tokens, output: y, bias: $0.baseAddress, scratch: scratch, pool: pool)
            }
        } else {
            linear(weight, input: x, tokens: tokens, output: y, scratch: scratch, pool: pool)
        }
    }

    func withBias<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        if let bias { bias.withUnsafeBufferPointer { body($0.baseAddress) } } else { body(nil) }
    }

    /// Two or three layers of the same input, each into its output, run as one batch of products (one job for the
    /// pool; see `linear(_:input:tokens:scratch:pool:path:)`).
    static func batch(_ x: UnsafePointer<Float>, tokens: Int, _ ws: Workspace, _ first: (Linear, UnsafeMutablePointer<Float>),
                      _ second: (Linear, UnsafeMutablePointer<Float>), _ third: (Linear, UnsafeMutablePointer<Float>)? = nil) {
        let count = third == nil ? 2 : 3
        first.0.withBias { b0 in
            second.0.withBias { b1 in
                (third?.0 ?? second.0).withBias { b2 in
                    withUnsafeTemporaryAllocation(of: LinearProduct.self, capacity: 3) { products in
                        products.initializeElement(at: 0, to: LinearProduct(first.0.weight, output: first.1, bias: b0))
                        products.initializeElement(at: 1, to: LinearProduct(second.0.weight, output: second.1, bias: b1))
                        if let third { products.initializeElement(at: 2, to: LinearProduct(third.0.weight, output: third.1, bias: b2)) }
                        defer { products.baseAddress!.deinitialize(count: count) }
                        linear(UnsafeBufferPointer(rebasing: products[..<count]), input: x, tokens: tokens,
                               scratch: ws.quantized.rawBuffer, pool: ws.pool)
                    }
                }
            }
        }
    }
}

/// RMSNorm with a learned gain.
public struct RMSNorm: Sendable {
    public let weight: [Float]
    public let eps: Float

    public init(_ store: WeightStore, _ name: String, count: Int, eps: Float) throws {
        weight = try loadVector(store, name, count: count)
        self.eps = eps
    }

    public func callAsFunction(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        weight.withUnsafeBufferPointer { Ops.rmsNorm(x, $0.baseAddress!, y, n: weight.count, rows: rows, eps: eps) }
    }
}

/// The SwiGLU feed-forward block: down(silu(gate(x)) · up(x)).
public struct SwiGLU: Sendable {
    public let gate: Linear
    public let up: Linear
    public let down: Linear

    public init(_ store: WeightStore, _ prefix: String, hidden: Int, inner: Int) throws {
        gate = try Linear(store, prefix + ".ffn_gate", inputs: hidden, outputs: inner, bias: false)
        up = try Linear(store, prefix + ".ffn_up", inputs: hidden, outputs: inner, bias: false)
        down = try Linear(store, prefix + ".ffn_down", inputs: inner, outputs: hidden, bias: false)
    }

    public func callAsFunction(_ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>, _ ws: Workspace) {
        let inner = gate.weight.rows
        Linear.batch(x, tokens: tokens, ws, (gate, ws.gate.pointer), (up, ws.up.pointer))
        Ops.siluMul(ws.gate.pointer, ws.up.pointer, count: tokens * inner)
        down(ws.gate.pointer, tokens: tokens, into: y, ws)
    }
}

/// Causal self-attention with grouped KV heads, RoPE on queries and keys, and a KV cache. Variants:
/// separate or fused QKV projections (Qwen1's `c_attn`), with or without QKV bias, and optional
/// per-head RMSNorm of queries and keys before RoPE (Qwen3).
public struct SelfAttention: Sendable {
    public struct Options: Sendable {
        public var qkvBias = true
        /// One `attn_qkv` matrix instead of `attn_q`, `attn_k`, `attn_v`.
        public var fusedQKV = false
        /// `attn_q_norm` / `attn_k_norm` RMSNorm over each head (epsilon of the model's norms).
        public var queryKeyNorm = false
        public init() {}
    }

    enum Projection: Sendable {
        case separate(query: Linear, key: Linear, value: Linear)
        case fused(Linear)
    }

    let projection: Projection
    public let output: Linear
    public let queryNorm: RMSNorm?
    public let keyNorm: RMSNorm?
    public let heads: Int
    public let kvHeads: Int
    public let headDim: Int

    public init(_ store: WeightStore, _ prefix: String, config c: ModelConfig, options o: Options) throws {
        heads = c.headCount
        kvHeads = c.kvHeadCount
        headDim = c.headDim
        let qRows = heads * headDim, kvRows = kvHeads * headDim
        if o.fusedQKV {
            projection = .fused(try Linear(store, prefix + ".attn_qkv", inputs: c.hiddenSize, outputs: qRows + 2 * kvRows, bias: o.qkvBias))
        } else {
            projection = .separate(
                query: try Linear(store, prefix + ".attn_q", inputs: c.hiddenSize, outputs: qRows, bias: o.qkvBias),
                key: try Linear(store, prefix + ".attn_k", inputs: c.hiddenSize, outputs: kvRows, bias: o.qkvBias),
                value: try Linear(store, prefix + ".attn_v", inputs: c.hiddenSize, outputs: kvRows, bias: o.qkvBias))
        }
        output = try Linear(store, prefix + ".attn_output", inputs: qRows, outputs: c.hiddenSize, bias: false)
        queryNorm = o.queryKeyNorm ? try RMSNorm(store, prefix + ".attn_q_norm.weight", count: headDim, eps: c.rmsNormEps) : nil
        keyNorm = o.queryKeyNorm ? try RMSNorm(store, prefix + ".attn_k_norm.weight", count: headDim, eps: c.rmsNormEps) : nil
    }

    /// x: [tokens][hidden] at positions start..<start+tokens → y: [tokens][hidden]. `ws.ropeCos/ropeSin` hold the angles.
    /// `queryScales` (one per token, optional) multiply the queries after RoPE (Qwen1's logn attention).
    public func callAsFunction(_ x: UnsafePointer<Float>, tokens: Int, start: Int, layer: Int, cache: KVCache,
                               rope: RotaryEmbedding, into y: UnsafeMutablePointer<Float>, _ ws: Workspace,
                               queryScales: UnsafePointer<Float>? = nil) {
        let qRow = heads * headDim, kvRow = kvHeads * headDim
        switch projection {
        case let .separate(query, key, value):
            Linear.batch(x, tokens: tokens, ws, (query, ws.q.pointer), (key, ws.k.pointer), (value, ws.v.pointer))
        case let .fused(qkv):
            qkv(x, tokens: tokens, into: ws.qkv.pointer, ws)
            let row = qRow + 2 * kvRow
            for t in 0 ..< tokens {
                let src = ws.qkv.pointer + t * row
                (ws.q.pointer + t * qRow).update(from: src, count: qRow)
                (ws.k.pointer + t * kvRow).update(from: src + qRow, count: kvRow)
                (ws.v.pointer + t * kvRow).update(from: src + qRow + kvRow, count: kvRow)
            }
        }
        if let queryNorm, let keyNorm {
            queryNorm(ws.q.pointer, rows: tokens * heads, into: ws.q.pointer)
            keyNorm(ws.k.pointer, rows: tokens * kvHeads, into: ws.k.pointer)
        }
        let half = headDim / 2
        for t in 0 ..< tokens {
            let c = ws.ropeCos.pointer + t * half, s = ws.ropeSin.pointer + t * half
            rope.apply(ws.q.pointer + t * qRow, heads: heads, cos: c, sin: s)
            rope.apply(ws.k.pointer + t * kvRow, heads: kvHeads, cos: c, sin: s)
        }
        if let queryScales {
            for t in 0 ..< tokens where queryScales[t] != 1 {
                let q = ws.q.pointer + t * qRow
                for i in 0 ..< qRow { q[i] *= queryScales[t] }
            }
        }
        cache.store(layer: layer, start: start, count: tokens, keys: ws.k.pointer, values: ws.v.pointer)
        Attention.causal(cache: cache, layer: layer, queries: ws.q.pointer, heads: heads, start: start, tokens: tokens,
                         output: ws.attention.pointer, scratch: ws.scores.pointer, pool: ws.pool)
        output(ws.attention.pointer, tokens: tokens, into: y, ws)
    }
}
