import QwenFormats
import QwenMedia
import QwenTensors
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Hyperparameters of the first-generation Qwen-VL vision tower (config.json's `visual`, or our GGUF's
/// `qwenvl.vision.*` keys).
public struct QwenVLVisionConfig: Sendable, Equatable {
    public var width = 1664
    public var layers = 48
    public var heads = 16
    /// Inner size of each block's MLP (`int(width · mlp_ratio)`).
    public var feedForward = 8192
    /// The square the image is resized to, and the patch side: (448 / 14)² = 1024 patches.
    public var imageSize = 448
    public var patchSize = 14
    /// The resampler's learned queries: the rows one image gives the language model.
    public var queries = 256
    /// The language model's hidden size (the resampler works at this width).
    public var outputSize = 4096
    public var normEps: Float = 1e-6

    public var headDim: Int { width / heads }
    /// The reference's `Resampler(num_heads=output_dim // 128)`.
    public var resamplerHeads: Int { outputSize / 128 }
    public var grid: Int { imageSize / patchSize }
    public var patches: Int { grid * grid }
    public var patchRowSize: Int { 3 * patchSize * patchSize }

    public init() {}

    /// config.json's `visual` object: `width`, `layers`, `heads`, `mlp_ratio`, `image_size`, `patch_size`,
    /// `n_queries`, `output_dim`.
    public init(huggingFace v: JSON) throws {
        func int(_ key: String, _ fallback: Int) -> Int { v[key]?.int ?? fallback }
        width = int("width", width)
        layers = int("layers", layers)
        heads = int("heads", heads)
        feedForward = Int(Double(width) * (v["mlp_ratio"]?.double ?? 4.9231))
        imageSize = int("image_size", imageSize)
        patchSize = int("patch_size", patchSize)
        queries = int("n_queries", queries)
        outputSize = int("output_dim", outputSize)
        try validate()
    }

    func validate() throws {
        let dims = [width, layers, heads, feedForward, imageSize, patchSize, queries, outputSize]
        guard dims.allSatisfy({ $0 > 0 && $0 <= 1 << 20 }), layers <= 1024 else {
            throw QwenError.format("invalid Qwen-VL vision dimensions \(dims)")
        }
        guard width % heads == 0, headDim % 4 == 0, resamplerHeads > 0, outputSize % resamplerHeads == 0,
              (outputSize / resamplerHeads) % 4 == 0 else {
            throw QwenError.format("Qwen-VL vision width \(width) / \(heads) heads or output \(outputSize) / \(resamplerHeads) heads " +
                                   "do not give head sizes divisible by 4")
        }
        guard imageSize % patchSize == 0, imageSize <= 4096 else {
            throw QwenError.format("Qwen-VL image size \(imageSize) is not a multiple of the patch size \(patchSize)")
        }
        let side = Int(Double(queries).squareRoot())
        guard side * side == queries else { throw QwenError.format("Qwen-VL resampler queries \(queries) are not a square grid") }
    }

    /// How images are prepared: a plain resize to the square (no aspect kept), CLIP mean/std, one frame of 14 × 14
    /// patches in row order.
    public var processorSettings: ImageProcessorSettings {
        var s = ImageProcessorSettings()
        s.patchSize = patchSize
        s.mergeSize = 1
        s.temporalPatchSize = 1
        s.fixedSize = imageSize
        return s
    }
}

/// The first-generation Qwen-VL vision tower (the original `visual.py`): a 448 × 448 image → `queries` rows of the
/// language model's width.
/// - patch embedding (a bias-free 14 × 14 convolution, as one matrix over each patch's pixels) plus learned absolute
///   positions (a 16 × 16 table resized bicubically to the 32 × 32 patches), `ln_pre`;
/// - pre-norm blocks: LayerNorm → attention (one fused in-projection whose output holds each head's query, key and
///   value side by side) → residual, LayerNorm → MLP (exact GELU) → residual;
/// - the resampler: 256 learned queries attend once to the patches (keys and values: `kv_proj` then `ln_kv`), with a
///   fixed 2D sin-cos position table added to the queries and, bicubically resized to the patch grid, to the keys;
///   then `ln_post` and the projection.
/// Weights by our GGUF names (`v.blk.N.attn_qkv`, `v.resampler.*`; Hugging Face names are mapped to them).
public final class QwenVLVisionEncoder: ImageEncoder, @unchecked Sendable {
    public let config: QwenVLVisionConfig
    public var processorSettings: ImageProcessorSettings { config.processorSettings }

    /// The resampler's rows as a square grid.
    public func rowGrid(patches _: (t: Int, h: Int, w: Int)) -> (t: Int, h: Int, w: Int) {
        let side = Int(Double(config.queries).squareRoot())
        return (1, side, side)
    }

    struct Block {
        let norm1: LayerNorm, norm2: LayerNorm
        /// [3 · width, width], rows per head: its query, key and value rows.
        let qkv: Linear
        let output: Linear
        let up: Linear, down: Linear
    }

    struct LayerNorm {
        let weight: [Float], bias: [Float]

        init(_ store: WeightStore, _ prefix: String, count: Int) throws {
            weight = try loadVector(store, prefix + ".weight", count: count)
            bias = try loadVector(store, prefix + ".bias", count: count)
        }

        func callAsFunction(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, eps: Float) {
            weight.withUnsafeBufferPointer { w in
                bias.withUnsafeBufferPointer { Ops.layerNorm(x, w.baseAddress!, $0.baseAddress!, y, n: weight.count, rows: rows, eps: eps) }
            }
        }
    }

    let weights: WeightStore
    let patchEmbedding: WeightMatrix
    let positions: [Float]
    let preNorm: LayerNorm
    let blocks: [Block]
    /// nil when the tower's width is the output width (the reference has no `kv_proj` then).
    let kvProjection: Linear?
    let kvNorm: LayerNorm
    /// The resampler's queries after `ln_q`, the position table and the query projection: the same for every image.
    let projectedQueries: [Float]
    /// The sin-cos table resized to the patch grid, added to the keys' input.
    let keyPositions: [Float]
    let resamplerKey: Linear, resamplerValue: Linear, resamplerOutput: Linear
    let postNorm: LayerNorm
    /// `x @ proj` as a matrix of output rows (the transpose of the reference's `proj`).
    let projection: WeightMatrix
    /// The transposed projection when it was built from a Hugging Face `proj` (owned here).
    let projectionStorage: AlignedBuffer<UInt8>?

    public init(config c: QwenVLVisionConfig, weights store: WeightStore) throws {
        try c.validate()
        config = c
        weights = store
        let e = c.width, d = c.outputSize
        let patch = try store.require("v.patch_embd.weight")
        guard patch.elementCount == e * c.patchRowSize, patch.shape.first == e else {
            throw QwenError.format("'\(store.source)': patch embedding has shape \(patch.shape), expected [\(e), 3, \(c.patchSize), \(c.patchSize)]")
        }
        patchEmbedding = try WeightMatrix(TensorData(name: patch.name, type: patch.type, shape: [e, c.patchRowSize], data: patch.data,
                                                     byteCount: patch.byteCount, isFileMapped: patch.isFileMapped),
                                          pack: true, arena: store.packingArena)
        // learned positions on a square grid (16 × 16 in the releases), resized to the patch grid as get_abs_pos does
        let table = try store.require("v.position_embd.weight")
        let side = Int(Double(table.elementCount / e).squareRoot())
        guard side > 0, side * side * e == table.elementCount else {
            throw QwenError.format("'\(store.source)': position embedding has shape \(table.shape), expected a square grid of \(e) values")
        }
        positions = Self.resizeBicubic(try loadVector(store, "v.position_embd.weight", count: side * side * e), side: side, to: c.grid, channels: e)
        preNorm = try LayerNorm(store, "v.pre_ln", count: e)
        blocks = try (0 ..< c.layers).map { i in
            let p = "v.blk.\(i)."
            guard let up = store.tensor(p + "ffn_up.weight"), up.shape.count == 2, up.shape[1] == e else {
                throw QwenError.format("'\(store.source)' lacks \(p)ffn_up.weight of \(e) columns")
            }
            let ff = up.shape[0]
            return Block(norm1: try LayerNorm(store, p + "ln1", count: e), norm2: try LayerNorm(store, p + "ln2", count: e),
                         qkv: try Linear(store, p + "attn_qkv", inputs: e, outputs: 3 * e, bias: true),
                         output: try Linear(store, p + "attn_out", inputs: e, outputs: e, bias: true),
                         up: try Linear(store, p + "ffn_up", inputs: e, outputs: ff, bias: true),
                         down: try Linear(store, p + "ffn_down", inputs: ff, outputs: e, bias: true))
        }
        kvProjection = e == d ? nil : try Linear(store, "v.resampler.kv_proj", inputs: e, outputs: d, bias: false)
        kvNorm = try LayerNorm(store, "v.resampler.ln_kv", count: d)
        let fused = try store.require("v.resampler.attn_qkv.weight")
        let (q, k, v) = try Qwen2VLVisionEncoder.splitQKV(fused, bias: try loadVector(store, "v.resampler.attn_qkv.bias", count: 3 * d),
                                                         width: d, arena: store.packingArena)
        resamplerKey = k
        resamplerValue = v
        resamplerOutput = try Linear(store, "v.resampler.attn_out", inputs: d, outputs: d, bias: true)
        postNorm = try LayerNorm(store, "v.post_ln", count: d)
        let sinCos = try loadVector(store, "v.resampler.pos_embd", count: c.queries * d)
        keyPositions = Self.resizeBicubic(sinCos, side: Int(Double(c.queries).squareRoot()), to: c.grid, channels: d)
        // the queries do not depend on the image: ln_q(query) + positions, projected once here
        let queryNorm = try LayerNorm(store, "v.resampler.ln_q", count: d)
        let rawQueries = try loadVector(store, "v.resampler.query", count: c.queries * d)
        var normed = [Float](repeating: 0, count: c.queries * d)
        rawQueries.withUnsafeBufferPointer { queryNorm($0.baseAddress!, rows: c.queries, into: &normed, eps: c.normEps) }
        for i in 0 ..< normed.count { normed[i] += sinCos[i] }
        var projected = [Float](repeating: 0, count: c.queries * d)
        let scratch = try AlignedBuffer<UInt8>(count: q.weight.scratchBytes(tokens: c.queries), what: "resampler scratch")
        q.bias!.withUnsafeBufferPointer { bias in
            linear(q.weight, input: normed, tokens: c.queries, output: &projected, bias: bias.baseAddress, scratch: scratch.rawBuffer,
                   pool: store.loadPool)
        }
        projectedQueries = projected
        (projection, projectionStorage) = try Self.loadProjection(store, size: d)
    }

    /// `proj` ([in, out], used as x @ proj) from a Hugging Face folder is transposed into rows of outputs (F32, F16,
    /// BF16); our GGUF stores it transposed already (`mm.proj.weight`, any type).
    static func loadProjection(_ store: WeightStore, size d: Int) throws -> (WeightMatrix, AlignedBuffer<UInt8>?) {
        if store.tensor("mm.proj.weight") != nil { return (try loadMatrix(store, "mm.proj.weight", rows: d, columns: d), nil) }
        let t = try store.require("v.proj")
        guard t.shape == [d, d], [.f32, .f16, .bf16].contains(t.type) else {
            throw QwenError.format("'\(t.name)' has shape \(t.shape) and type \(t.type.name), expected [\(d), \(d)] of F32, F16 or BF16")
        }
        let size = t.type == .f32 ? 4 : 2
        let storage = try AlignedBuffer<UInt8>(count: d * d * size, what: "the transposed vision projection")
        for i in 0 ..< d {
            for j in 0 ..< d {
                (storage.raw + (j * d + i) * size).copyMemory(from: t.data + (i * d + j) * size, byteCount: size)
            }
        }
        let view = TensorData(name: "mm.proj.weight", type: t.type, shape: [d, d], data: UnsafeRawPointer(storage.raw), byteCount: d * d * size)
        return (try WeightMatrix(view, pack: true, arena: store.packingArena), storage)
    }

    /// torch's `F.interpolate(mode="bicubic", align_corners=False)` of a side × side grid of `channels` values to
    /// `target` × `target` (the reference's get_abs_pos): cubic convolution with a = −0.75, edge samples repeated.
    static func resizeBicubic(_ table: [Float], side: Int, to target: Int, channels: Int) -> [Float] {
        guard side != target else { return table }
        func taps(_ dst: Int) -> (index: [Int], weight: [Double]) {
            let a = -0.75, scale = Double(side) / Double(target)
            let src = (Double(dst) + 0.5) * scale - 0.5
            let i0 = Int(src.rounded(.down)), t = src - Double(i0)
            func near(_ x: Double) -> Double { ((a + 2) * x - (a + 3)) * x * x + 1 }
            func far(_ x: Double) -> Double { ((a * x - 5 * a) * x + 8 * a) * x - 4 * a }
            let w = [far(t + 1), near(t), near(1 - t), far(2 - t)]
            return ((-1 ... 2).map { min(max(i0 + $0, 0), side - 1) }, w)
        }
        let rows = (0 ..< target).map(taps)
        var out = [Float](repeating: 0, count: target * target * channels)
        for y in 0 ..< target {
            for x in 0 ..< target {
                let (ry, wy) = rows[y], (rx, wx) = rows[x]
                for ch in 0 ..< channels {
                    var sum = 0.0
                    for i in 0 ..< 4 {
                        var line = 0.0
                        for j in 0 ..< 4 { line += wx[j] * Double(table[(ry[i] * side + rx[j]) * channels + ch]) }
                        sum += wy[i] * line
                    }
                    out[(y * target + x) * channels + ch] = Float(sum)
                }
            }
        }
        return out
    }

    /// Encodes one preprocessed image (`config.processorSettings`): `queries` × `outputSize` floats. Attention holds
    /// keys and values in F16 unless `exactAttention`.
    public func encode(_ image: ProcessedImage, pool: ThreadPool?, exactAttention: Bool = false) throws -> [Float] {
        let c = config, n = c.patches, e = c.width, d = c.outputSize, nq = c.queries
        guard image.grid.t == 1, image.grid.h == c.grid, image.grid.w == c.grid, image.pixels.count == n * c.patchRowSize else {
            throw QwenError.invalidArgument("the image has \(image.grid.h)x\(image.grid.w) patches, the Qwen-VL tower takes \(c.grid)x\(c.grid)")
        }
        let ff = blocks.map { $0.up.weight.rows }.max() ?? e
        let chunk = min(n, 256)
        let x = try AlignedBuffer<Float>(count: n * max(e, d), what: "vision activations")
        let h = try AlignedBuffer<Float>(count: n * max(e, d), what: "vision activations")
        let fused = try AlignedBuffer<Float>(count: n * 3 * max(e, d), what: "vision queries, keys and values")
        let a = try AlignedBuffer<Float>(count: chunk * ff, what: "vision MLP activations")
        var scratchBytes = max(patchEmbedding.scratchBytes(tokens: n), kvProjection?.weight.scratchBytes(tokens: n) ?? 0,
                               resamplerKey.weight.scratchBytes(tokens: n), resamplerOutput.weight.scratchBytes(tokens: nq),
                               projection.scratchBytes(tokens: nq))
        for blk in blocks {
            scratchBytes = max(scratchBytes, blk.qkv.weight.scratchBytes(tokens: n), blk.output.weight.scratchBytes(tokens: n),
                               blk.up.weight.scratchBytes(tokens: chunk), blk.down.weight.scratchBytes(tokens: chunk))
        }
        let scratch = try AlignedBuffer<UInt8>(count: scratchBytes, what: "vision scratch")
        func mul(_ l: Linear, _ input: UnsafePointer<Float>, _ rows: Int, _ out: UnsafeMutablePointer<Float>) {
            l(input, tokens: rows, into: out, scratch: scratch.rawBuffer, pool: pool)
        }

        // patches + positions, ln_pre
        image.pixels.withUnsafeBufferPointer { px in
            linear(patchEmbedding, input: px.baseAddress!, tokens: n, output: h.pointer, scratch: scratch.rawBuffer, pool: pool)
        }
        positions.withUnsafeBufferPointer { Ops.add(h.pointer, $0.baseAddress!, count: n * e) }
        preNorm(h.pointer, rows: n, into: x.pointer, eps: c.normEps)

        let whole = [AttentionSpan(0 ..< n)]
        let hd = c.headDim
        let interleaved = AttentionLayout(rowStride: 3 * e, headStride: 3 * hd)
        for blk in blocks {
            blk.norm1(x.pointer, rows: n, into: h.pointer, eps: c.normEps)
            mul(blk.qkv, h.pointer, n, fused.pointer)
            try Attention.bidirectionalBlocked(queries: fused.pointer, keys: fused.pointer + hd, values: fused.pointer + 2 * hd, rows: n,
                                               heads: c.heads, kvHeads: c.heads, headDim: hd, spans: whole,
                                               queryLayout: interleaved, keyValueLayout: interleaved,
                                               roundToF16: !exactAttention, output: h.pointer, pool: pool)
            mul(blk.output, h.pointer, n, fused.pointer)
            Ops.add(x.pointer, fused.pointer, count: n * e)
            blk.norm2(x.pointer, rows: n, into: h.pointer, eps: c.normEps)
            for r0 in stride(from: 0, to: n, by: chunk) {
                let rows = min(chunk, n - r0)
                mul(blk.up, h.pointer + r0 * e, rows, a.pointer)
                Ops.gelu(a.pointer, count: rows * blk.up.weight.rows)
                mul(blk.down, a.pointer, rows, fused.pointer + r0 * e)
            }
            Ops.add(x.pointer, fused.pointer, count: n * e)
        }

        // resampler: keys from ln_kv(kv_proj(x)) + positions, values from ln_kv(kv_proj(x))
        var kvInput = UnsafePointer(x.pointer)
        if let kvProjection {
            mul(kvProjection, x.pointer, n, fused.pointer)
            kvInput = UnsafePointer(fused.pointer)
        }
        kvNorm(kvInput, rows: n, into: h.pointer, eps: c.normEps)
        fused.pointer.update(from: h.pointer, count: n * d)
        keyPositions.withUnsafeBufferPointer { Ops.add(fused.pointer, $0.baseAddress!, count: n * d) }
        let keys = x.pointer, values = fused.pointer + n * d
        mul(resamplerKey, fused.pointer, n, keys)
        mul(resamplerValue, h.pointer, n, values)
        let rd = d / c.resamplerHeads
        try projectedQueries.withUnsafeBufferPointer { q in
            try Attention.bidirectionalBlocked(queries: q.baseAddress!, keys: keys, values: values, rows: n, heads: c.resamplerHeads,
                                               kvHeads: c.resamplerHeads, headDim: rd, spans: [AttentionSpan(queries: 0 ..< nq, keys: 0 ..< n)],
                                               roundToF16: !exactAttention, output: h.pointer, pool: pool)
        }
        mul(resamplerOutput, h.pointer, nq, fused.pointer)
        postNorm(fused.pointer, rows: nq, into: h.pointer, eps: c.normEps)
        var result = [Float](repeating: 0, count: nq * d)
        result.withUnsafeMutableBufferPointer { r in
            linear(projection, input: h.pointer, tokens: nq, output: r.baseAddress!, scratch: scratch.rawBuffer, pool: pool)
        }
        return result
    }
}

extension WeightStore {
    /// Our GGUF name of an original Qwen-VL vision tensor (`transformer.visual.*`), nil for others. The blocks'
    /// fused `in_proj` keeps its per-head interleaving; `proj` keeps the reference's [in, out] orientation (`v.proj`).
    static func qwenVLVisionGGUFName(huggingFace name: String) -> String? {
        guard name.hasPrefix("transformer.visual.") else { return nil }
        let n = name.dropFirst("transformer.visual.".count)
        let globals: [(Substring, String)] = [
            ("conv1.weight", "v.patch_embd.weight"), ("positional_embedding", "v.position_embd.weight"),
            ("ln_pre.weight", "v.pre_ln.weight"), ("ln_pre.bias", "v.pre_ln.bias"),
            ("ln_post.weight", "v.post_ln.weight"), ("ln_post.bias", "v.post_ln.bias"), ("proj", "v.proj"),
            ("attn_pool.query", "v.resampler.query"), ("attn_pool.pos_embed", "v.resampler.pos_embd"),
            ("attn_pool.kv_proj.weight", "v.resampler.kv_proj.weight"),
            ("attn_pool.attn.in_proj_weight", "v.resampler.attn_qkv.weight"), ("attn_pool.attn.in_proj_bias", "v.resampler.attn_qkv.bias"),
            ("attn_pool.attn.out_proj.weight", "v.resampler.attn_out.weight"), ("attn_pool.attn.out_proj.bias", "v.resampler.attn_out.bias"),
            ("attn_pool.ln_q.weight", "v.resampler.ln_q.weight"), ("attn_pool.ln_q.bias", "v.resampler.ln_q.bias"),
            ("attn_pool.ln_kv.weight", "v.resampler.ln_kv.weight"), ("attn_pool.ln_kv.bias", "v.resampler.ln_kv.bias"),
        ]
        if let g = globals.first(where: { $0.0 == n }) { return g.1 }
        guard n.hasPrefix("transformer.resblocks.") else { return nil }
        let rest = n.dropFirst("transformer.resblocks.".count)
        guard let dot = rest.firstIndex(of: "."), let block = Int(rest[..<dot]), block >= 0 else { return nil }
        let suffix = rest[rest.index(after: dot)...]
        let parts: [(Substring, String)] = [
            ("ln_1", "ln1"), ("ln_2", "ln2"), ("attn.in_proj", "attn_qkv"), ("attn.out_proj", "attn_out"),
            ("mlp.c_fc", "ffn_up"), ("mlp.c_proj", "ffn_down"),
        ]
        for (hf, gguf) in parts {
            for kind in ["weight", "bias"] where suffix == hf + "." + kind {
                return "v.blk.\(block).\(gguf).\(kind)"
            }
        }
        return nil
    }
}
