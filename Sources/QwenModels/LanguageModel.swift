import QwenFormats
import QwenTensors

/// A decoder-only language model: immutable after load, shared by any number of contexts.
public protocol LanguageModel: AnyObject, Sendable {
    var config: ModelConfig { get }
    /// Number of logits per position (rows of the output head; may exceed the tokenizer's count).
    var vocabularySize: Int { get }

    /// Evaluates `tokens` at positions start..<start+tokens.count (≤ workspace.batch), appending their keys and
    /// values to `cache`. Writes logits of the last token to `logits` (vocabularySize floats), or of every
    /// token ([count][vocabularySize]) when `allLogits`, if `logits` is non-nil; then `workspace.normed` holds
    /// the final-normed hidden rows those logits came from (row 0 = the first such position).
    func forward(_ input: ForwardInput, start: Int, cache: KVCache, workspace: Workspace,
                 logits: UnsafeMutablePointer<Float>?, allLogits: Bool) throws

    /// Re-encodes one cached key head (`headDim` floats, as stored) for a position `delta` earlier: what a
    /// context does when it drops a span of its cache and moves what follows down.
    func moveCachedKey(_ key: UnsafeMutablePointer<Float>, by delta: Int)
}

extension LanguageModel {
    /// A forward pass over token ids at positions start..<start+count.
    public func forward(tokens: UnsafeBufferPointer<Int32>, start: Int, cache: KVCache, workspace: Workspace,
                        logits: UnsafeMutablePointer<Float>?, allLogits: Bool) throws {
        try forward(ForwardInput(tokens: tokens), start: start, cache: cache, workspace: workspace, logits: logits,
                    allLogits: allLogits)
    }
}

/// What one forward pass evaluates: token ids at cache positions start..<start+count, some of which may stand
/// for rows given directly (an image's or an audio clip's embeddings), and the RoPE positions when they are
/// not the cache positions (M-RoPE after an image).
public struct ForwardInput {
    public var tokens: UnsafeBufferPointer<Int32>
    /// For each token, the row of `embeddings` (hidden-size floats) to use instead of the token's embedding;
    /// -1: the token's own.
    public var embeddingRows: UnsafePointer<Int32>?
    public var embeddings: UnsafePointer<Float>?
    /// RoPE positions, [component][count]: one component, or three (temporal, height, width) for M-RoPE.
    public var positions: UnsafePointer<Int32>?

    public init(tokens: UnsafeBufferPointer<Int32>, embeddingRows: UnsafePointer<Int32>? = nil,
                embeddings: UnsafePointer<Float>? = nil, positions: UnsafePointer<Int32>? = nil) {
        self.tokens = tokens
        self.embeddingRows = embeddingRows
        self.embeddings = embeddings
        self.positions = positions
    }
}

/// Scratch activations for one forward pass of up to `batch` tokens, plus the thread pool it runs on.
/// Owned by one context; sized once so the decode loop allocates nothing.
public final class Workspace: @unchecked Sendable {
    public let batch: Int
    public let pool: ThreadPool?
    public let hidden: AlignedBuffer<Float>
    public let normed: AlignedBuffer<Float>
    public let q: AlignedBuffer<Float>
    public let k: AlignedBuffer<Float>
    public let v: AlignedBuffer<Float>
    /// Output of a fused QKV projection.
    public let qkv: AlignedBuffer<Float>
    public let attention: AlignedBuffer<Float>
    public let projected: AlignedBuffer<Float>
    public let gate: AlignedBuffer<Float>
    public let up: AlignedBuffer<Float>
    public let scores: AlignedBuffer<Float>
    public let ropeCos: AlignedBuffer<Float>
    public let ropeSin: AlignedBuffer<Float>
    public let quantized: AlignedBuffer<UInt8>
    /// Routing and gathered rows of the sparse feed-forward (MoE models only).
    public let moe: MoEScratch?
    /// Per-token query multipliers (Qwen1's logn attention).
    public let queryScale: AlignedBuffer<Float>
    /// What a model carries from one forward pass of its context to the next: Qwen1's dynamic-NTK RoPE alpha
    /// chosen by the last prompt evaluation, kept while decoding (0: none chosen yet).
    public var ropeAlpha: Double = 0
    /// Where the evaluation now running ends, when its caller splits it into several forward passes (a context
    /// evaluating a long prompt in batches); 0: not said.
    public var evaluationEnd = 0

    public init(config c: ModelConfig, batch: Int, capacity: Int, pool: ThreadPool?) throws {
        self.batch = batch
        self.pool = pool
        let threads = pool?.threadCount ?? 1
        hidden = try AlignedBuffer(count: batch * c.hiddenSize, what: "activations")
        normed = try AlignedBuffer(count: batch * c.hiddenSize, what: "activations")
        projected = try AlignedBuffer(count: batch * c.hiddenSize, what: "activations")
        q = try AlignedBuffer(count: batch * c.headCount * c.headDim, what: "queries")
        k = try AlignedBuffer(count: batch * c.kvHeadCount * c.headDim, what: "keys")
        v = try AlignedBuffer(count: batch * c.kvHeadCount * c.headDim, what: "values")
        qkv = try AlignedBuffer(count: batch * (c.headCount + 2 * c.kvHeadCount) * c.headDim, what: "fused QKV")
        attention = try AlignedBuffer(count: batch * c.headCount * c.headDim, what: "attention output")
        // the widest SwiGLU: dense, expert or shared expert
        let inner = max(c.feedForwardSize, c.experts?.feedForwardSize ?? 0, c.experts?.sharedFeedForwardSize ?? 0)
        gate = try AlignedBuffer(count: batch * inner, what: "feed-forward activations")
        up = try AlignedBuffer(count: batch * inner, what: "feed-forward activations")
        scores = try AlignedBuffer(count: threads * Attention.scratchFloats(capacity: capacity, headDim: c.headDim), what: "attention scores")
        ropeCos = try AlignedBuffer(count: batch * c.headDim / 2, what: "rope table")
        ropeSin = try AlignedBuffer(count: batch * c.headDim / 2, what: "rope table")
        let widest = max(c.hiddenSize, inner, c.headCount * c.headDim)
        quantized = try AlignedBuffer(count: batch * ActivationFormat.largestRowBytes(columns: widest), what: "quantized activations")
        moe = try c.experts.map { try MoEScratch(experts: $0, hidden: c.hiddenSize, batch: batch) }
        queryScale = try AlignedBuffer(count: batch, what: "query scales")
    }
}
