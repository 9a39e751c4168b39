import QwenFormats
import QwenMedia
import QwenTensors
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Hyperparameters of the Qwen2-VL / Qwen2.5-VL vision tower, from a Hugging Face `vision_config` or an `mmproj` GGUF.
public struct VisionConfig: Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// LayerNorm, QuickGELU MLP, full attention in every block.
        case qwen2VL = "qwen2vl"
        /// RMSNorm, SwiGLU MLP with biases, window attention except in `fullAttentionBlocks`.
        case qwen25VL = "qwen2.5vl"
    }

    public var kind: Kind
    /// Width of the ViT (`embed_dim` for Qwen2-VL, `hidden_size` for Qwen2.5-VL).
    public var width: Int
    public var depth: Int
    public var heads: Int
    /// Inner size of each block's MLP.
    public var feedForward: Int
    /// Size of the merger's output rows: the language model's hidden size.
    public var outputSize: Int
    public var patchSize = 14
    public var mergeSize = 2
    public var temporalPatchSize = 2
    public var channels = 3
    /// Qwen2.5-VL: side of an attention window in pixels (112: 4 × 4 merged patches) and the blocks attending to
    /// the whole image.
    public var windowSize = 112
    public var fullAttentionBlocks: Set<Int> = []
    public var normEps: Float = 1e-6
    public var ropeTheta: Float = 10_000

    public var headDim: Int { width / heads }
    public var patchRowSize: Int { channels * temporalPatchSize * patchSize * patchSize }

    func validate() throws {
        let dims = [width, depth, heads, feedForward, outputSize, patchSize, mergeSize, temporalPatchSize, channels]
        guard dims.allSatisfy({ $0 > 0 && $0 <= 1 << 20 }), depth <= 1024, heads <= 4096 else {
            throw QwenError.format("invalid vision tower dimensions \(dims)")
        }
        guard width % heads == 0, headDim % 4 == 0 else {
            throw QwenError.format("vision width \(width) over \(heads) heads does not give a head size divisible by 4")
        }
        guard channels == 3 else { throw QwenError.unsupported("vision towers over \(channels) channels are not supported") }
        guard windowSize > 0, windowSize % (patchSize * mergeSize) == 0 else {
            throw QwenError.format("window size \(windowSize) is not a multiple of \(patchSize * mergeSize)")
        }
        guard normEps > 0, normEps < 1, ropeTheta > 0 else { throw QwenError.format("invalid vision norm epsilon or RoPE theta") }
    }

    /// A `vision_config` in either dialect (hub: `in_chans`, transformers 5: `in_channels`); `model_type` of the
    /// whole config says which tower.
    public init(huggingFace config: JSON) throws {
        guard let v = config["vision_config"], v.object != nil else { throw QwenError.format("config.json has no vision_config") }
        func int(_ key: String, _ fallback: Int) -> Int { v[key]?.int ?? fallback }
        switch config["model_type"]?.string {
        case "qwen2_vl":
            kind = .qwen2VL
            width = int("embed_dim", 1280)
            feedForward = Int(Double(width) * (v["mlp_ratio"]?.double ?? 4))
            outputSize = int("hidden_size", 3584)
            if let act = v["hidden_act"]?.string, act != "quick_gelu" {
                throw QwenError.unsupported("Qwen2-VL vision activation '\(act)' is not supported (quick_gelu)")
            }
        case "qwen2_5_vl":
            kind = .qwen25VL
            width = int("hidden_size", 1280)
            feedForward = int("intermediate_size", 3420)
            outputSize = int("out_hidden_size", 3584)
            windowSize = int("window_size", 112)
            fullAttentionBlocks = Set((v["fullatt_block_indexes"]?.array ?? []).compactMap(\.int))
            if let act = v["hidden_act"]?.string, act != "silu" {
                throw QwenError.unsupported("Qwen2.5-VL vision activation '\(act)' is not supported (silu)")
            }
        default:
            throw QwenError.unsupported("model_type '\(config["model_type"]?.string ?? "")' has no supported vision tower")
        }
        depth = int("depth", 32)
        heads = int("num_heads", 16)
        patchSize = int("patch_size", int("spatial_patch_size", 14))
        mergeSize = int("spatial_merge_size", 2)
        temporalPatchSize = int("temporal_patch_size", 2)
        channels = v["in_channels"]?.int ?? v["in_chans"]?.int ?? 3
        if let theta = v["rope_parameters"]?["rope_theta"]?.double ?? v["rope_theta"]?.double { ropeTheta = Float(theta) }
        try validate()
    }

    /// The keys llama.cpp's converter writes to an `mmproj` file (`clip.projector_type` qwen2vl_merger or
    /// qwen2.5vl_merger). The MLP size comes from the tensors.
    public init(gguf: GGUFFile) throws {
        guard gguf["general.architecture"]?.string == "clip", gguf["clip.has_vision_encoder"]?.bool == true else {
            throw QwenError.format("'\(gguf.file.path)' is not a vision projector (mmproj) GGUF")
        }
        func int(_ key: String) throws -> Int {
            guard let x = gguf[key]?.int else { throw QwenError.format("projector GGUF lacks \(key)") }
            return x
        }
        switch gguf["clip.projector_type"]?.string ?? gguf["clip.vision.projector_type"]?.string {
        case "qwen2vl_merger": kind = .qwen2VL
        case "qwen2.5vl_merger":
            kind = .qwen25VL
            let pattern = gguf["clip.vision.n_wa_pattern"]?.int ?? 0
            let depth = try int("clip.vision.block_count")
            fullAttentionBlocks = pattern > 0 ? Set((0 ..< depth).filter { ($0 + 1) % pattern == 0 }) : Set(0 ..< depth)
            windowSize = gguf["clip.vision.window_size"]?.int ?? 112
        case let other:
            throw QwenError.unsupported("vision projector type '\(other ?? "none")' is not supported (qwen2vl_merger, qwen2.5vl_merger)")
        }
        width = try int("clip.vision.embedding_length")
        depth = try int("clip.vision.block_count")
        heads = try int("clip.vision.attention.head_count")
        outputSize = try int("clip.vision.projection_dim")
        patchSize = gguf["clip.vision.patch_size"]?.int ?? 14
        mergeSize = gguf["clip.vision.spatial_merge_size"]?.int ?? 2
        normEps = Float(gguf["clip.vision.attention.layer_norm_epsilon"]?.double ?? 1e-6)
        guard let down = gguf.tensor("v.blk.0.ffn_down.weight"), down.shape.count == 2 else {
            throw QwenError.format("projector GGUF lacks v.blk.0.ffn_down.weight")
        }
        feedForward = down.shape[1]
        try validate()
    }
}

/// The Qwen2-VL / Qwen2.5-VL vision tower: pixels of one image (rows of channels × 2 frames × 14 × 14, from
/// `ImageProcessor`) → one row of the language model's hidden size per 2 × 2 patches. As transformers'
/// `Qwen2VisionTransformerPretrainedModel` / `Qwen2_5_VisionTransformerPretrainedModel`:
/// - patch embedding (the Conv3d as one matrix over the row), 2D rotary position embedding (head dims split
///   between the patch's row and column, NeoX rotation over the whole head) with positions in 2 × 2 merge order;
/// - blocks of norm → multi-head attention (bidirectional over the image, or Qwen2.5-VL's 112-pixel windows in
///   the blocks not listed as full-attention, with the rows reordered window by window) → residual, norm → MLP
///   (QuickGELU, or SwiGLU with biases) → residual;
/// - the merger: norm, 4 neighbouring patches concatenated, Linear → GELU (erf) → Linear; Qwen2.5-VL's window
///   order undone on the merged rows.
/// Weights by llama.cpp's `mmproj` names (`v.blk.N.attn_q`, `mm.0`, ...; Hugging Face names are mapped to them,
/// the fused `attn.qkv` split into views), any weight type `linear` multiplies.
public final class Qwen2VLVisionEncoder: ImageEncoder, @unchecked Sendable {
    public let config: VisionConfig
    /// How images are prepared for this tower.
    public let processorSettings: ImageProcessorSettings

    struct Block {
        let norm1: Norm
        let norm2: Norm
        let query: Linear, key: Linear, value: Linear, output: Linear
        let mlp: MLP
    }

    enum MLP {
        case quickGELU(up: Linear, down: Linear)
        case swiGLU(gate: Linear, up: Linear, down: Linear)
    }

    struct Norm {
        let weight: [Float]
        let bias: [Float]?  // LayerNorm (Qwen2-VL); RMSNorm without

        func callAsFunction(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, eps: Float) {
            weight.withUnsafeBufferPointer { w in
                if let bias {
                    bias.withUnsafeBufferPointer { Ops.layerNorm(x, w.baseAddress!, $0.baseAddress!, y, n: weight.count, rows: rows, eps: eps) }
                } else {
                    Ops.rmsNorm(x, w.baseAddress!, y, n: weight.count, rows: rows, eps: eps)
                }
            }
        }
    }

    let patchEmbedding: WeightMatrix
    /// The patch embedding rebuilt from a GGUF's two temporal halves (owned here).
    let patchStorage: AlignedBuffer<UInt8>?
    let blocks: [Block]
    let mergerNorm: Norm
    let merger0: Linear, merger2: Linear
    let weights: WeightStore
    let rotary: RotaryEmbedding, rotaryFrequencies: RotaryEmbedding

    /// Builds the tower from tensors named as in an `mmproj` GGUF (a Hugging Face store maps its names to these).
    public init(config c: VisionConfig, weights store: WeightStore, processorSettings: ImageProcessorSettings) throws {
        try c.validate()
        try processorSettings.validate()
        guard processorSettings.patchSize == c.patchSize, processorSettings.mergeSize == c.mergeSize,
              processorSettings.temporalPatchSize == c.temporalPatchSize else {
            throw QwenError.format("image processor patches (\(processorSettings.patchSize), merge \(processorSettings.mergeSize)) " +
                                   "do not match the vision tower's (\(c.patchSize), merge \(c.mergeSize))")
        }
        config = c
        self.processorSettings = processorSettings
        weights = store
        let e = c.width
        (patchEmbedding, patchStorage) = try Self.loadPatchEmbedding(store, c)
        blocks = try (0 ..< c.depth).map { i in
            let p = "v.blk.\(i)."
            let hasBias = c.kind == .qwen2VL
            let norm1 = Norm(weight: try loadVector(store, p + "ln1.weight", count: e),
                             bias: hasBias ? try loadVector(store, p + "ln1.bias", count: e) : nil)
            let norm2 = Norm(weight: try loadVector(store, p + "ln2.weight", count: e),
                             bias: hasBias ? try loadVector(store, p + "ln2.bias", count: e) : nil)
            let q: Linear, k: Linear, v: Linear
            if let fused = store.tensor(p + "attn_qkv.weight") {  // Hugging Face: one [3·width, width] matrix
                (q, k, v) = try Self.splitQKV(fused, bias: try loadVector(store, p + "attn_qkv.bias", count: 3 * e), width: e, arena: store.packingArena)
            } else {
                q = try Linear(store, p + "attn_q", inputs: e, outputs: e, bias: true)
                k = try Linear(store, p + "attn_k", inputs: e, outputs: e, bias: true)
                v = try Linear(store, p + "attn_v", inputs: e, outputs: e, bias: true)
            }
            let o = try Linear(store, p + "attn_out", inputs: e, outputs: e, bias: true)
            let mlp: MLP
            switch c.kind {
            case .qwen2VL:
                mlp = .quickGELU(up: try Linear(store, p + "ffn_up", inputs: e, outputs: c.feedForward, bias: true),
                                 down: try Linear(store, p + "ffn_down", inputs: c.feedForward, outputs: e, bias: true))
            case .qwen25VL:
                mlp = .swiGLU(gate: try Linear(store, p + "ffn_gate", inputs: e, outputs: c.feedForward, bias: true),
                              up: try Linear(store, p + "ffn_up", inputs: e, outputs: c.feedForward, bias: true),
                              down: try Linear(store, p + "ffn_down", inputs: c.feedForward, outputs: e, bias: true))
            }
            return Block(norm1: norm1, norm2: norm2, query: q, key: k, value: v, output: o, mlp: mlp)
        }
        mergerNorm = Norm(weight: try loadVector(store, "v.post_ln.weight", count: e),
                          bias: c.kind == .qwen2VL ? try loadVector(store, "v.post_ln.bias", count: e) : nil)
        let merged = e * c.mergeSize * c.mergeSize
        merger0 = try Linear(store, "mm.0", inputs: merged, outputs: merged, bias: true)
        merger2 = try Linear(store, "mm.2", inputs: merged, outputs: c.outputSize, bias: true)
        // 2D RoPE: head_dim/4 frequencies 1/θ^(2j/(head_dim/2)), rotated NeoX-style over the whole head
        rotaryFrequencies = RotaryEmbedding(dimension: c.headDim / 2, theta: c.ropeTheta)
        rotary = RotaryEmbedding(dimension: c.headDim, theta: c.ropeTheta)
    }

    /// Hugging Face: the Conv3d kernel [width, 3, 2, 14, 14] is already a [width, 1176] matrix in the pixel rows'
    /// order. GGUF: two [width, 3, 14, 14] kernels (frame 0 and 1), interleaved here into that order.
    static func loadPatchEmbedding(_ store: WeightStore, _ c: VisionConfig) throws -> (WeightMatrix, AlignedBuffer<UInt8>?) {
        let t0 = try store.require("v.patch_embd.weight")
        let row = c.patchRowSize, pp = c.patchSize * c.patchSize
        if t0.elementCount == c.width * row, t0.shape.first == c.width, store.tensor("v.patch_embd.weight.1") == nil {
            let view = TensorData(name: t0.name, type: t0.type, shape: [c.width, row], data: t0.data, byteCount: t0.byteCount,
                                  isFileMapped: t0.isFileMapped)
            return (try WeightMatrix(view, pack: true, arena: store.packingArena), nil)
        }
        guard c.temporalPatchSize == 2, let t1 = store.tensor("v.patch_embd.weight.1") else {
            throw QwenError.format("'\(store.source)': patch embedding has shape \(t0.shape), expected [\(c.width), \(c.channels), " +
                                   "\(c.temporalPatchSize), \(c.patchSize), \(c.patchSize)] or two frames")
        }
        let frameCount = c.width * c.channels * pp
        guard t0.elementCount == frameCount, t1.elementCount == frameCount, t0.type == t1.type,
              [.f32, .f16, .bf16].contains(t0.type) else {
            throw QwenError.format("'\(store.source)': patch embedding frames have shapes \(t0.shape) / \(t1.shape) and types " +
                                   "\(t0.type.name) / \(t1.type.name)")
        }
        // element size 4 (F32) or 2 (F16, BF16): interleave raw elements, no conversion
        let size = t0.type == .f32 ? 4 : 2
        let storage = try AlignedBuffer<UInt8>(count: c.width * row * size, what: "patch embedding")
        for e in 0 ..< c.width {
            for ch in 0 ..< c.channels {
                for (frame, t) in [t0, t1].enumerated() {
                    let src = t.data + ((e * c.channels + ch) * pp) * size
                    let dst = storage.raw + ((e * c.channels + ch) * 2 + frame) * pp * size
                    dst.copyMemory(from: src, byteCount: pp * size)
                }
            }
        }
        let view = TensorData(name: "v.patch_embd", type: t0.type, shape: [c.width, row], data: UnsafeRawPointer(storage.raw),
                              byteCount: c.width * row * size)
        return (try WeightMatrix(view, pack: true, arena: store.packingArena), storage)
    }

    /// Rows [0, w), [w, 2w), [2w, 3w) of a fused QKV matrix as three matrices (views of the same bytes).
    static func splitQKV(_ t: TensorData, bias: [Float], width e: Int, arena: PackingArena?) throws -> (Linear, Linear, Linear) {
        guard t.shape == [3 * e, e], let rowBytes = t.type.byteCount(elements: e) else {
            throw QwenError.format("'\(t.name)' has shape \(t.shape), expected [\(3 * e), \(e)]")
        }
        func part(_ i: Int) throws -> Linear {
            let view = TensorData(name: t.name + "[\(i)]", type: t.type, shape: [e, e], data: t.data + i * e * rowBytes,
                                  byteCount: e * rowBytes, isFileMapped: false)
            return Linear(weight: try WeightMatrix(view, pack: true, arena: arena), bias: Array(bias[i * e ..< (i + 1) * e]))
        }
        return (try part(0), try part(1), try part(2))
    }

    // MARK: Encoding

    /// One row per merge group.
    public func rowGrid(patches g: (t: Int, h: Int, w: Int)) -> (t: Int, h: Int, w: Int) {
        (g.t, g.h / config.mergeSize, g.w / config.mergeSize)
    }

    /// Encodes one preprocessed image: rows × `config.outputSize` floats. Attention holds keys and values in F16 (as
    /// llama.cpp does) unless `exactAttention`, which keeps them F32 (what the parity tests compare).
    public func encode(_ image: ProcessedImage, pool: ThreadPool?, exactAttention: Bool = false) throws -> [Float] {
        let c = config, m = c.mergeSize, unit = m * m
        let (t, gh, gw) = image.grid
        guard t > 0, gh > 0, gw > 0, gh % m == 0, gw % m == 0 else {
            throw QwenError.invalidArgument("image grid \(image.grid) is not made of \(m)x\(m) merge groups")
        }
        let n = t * gh * gw, e = c.width, hd = c.headDim
        guard image.pixels.count == n * c.patchRowSize else {
            throw QwenError.invalidArgument("\(image.pixels.count) pixel values do not make \(n) patches of \(c.patchRowSize)")
        }
        // rows in merge order (the processor's); Qwen2.5-VL reorders merge groups window by window
        let (order, windows) = windowOrder(grid: image.grid)
        let units = n / unit
        let pool = pool
        let x = try AlignedBuffer<Float>(count: n * e, what: "vision activations")
        let h = try AlignedBuffer<Float>(count: n * e, what: "vision activations")
        let q = try AlignedBuffer<Float>(count: n * e, what: "vision queries")
        let k = try AlignedBuffer<Float>(count: n * e, what: "vision keys")
        let v = try AlignedBuffer<Float>(count: n * e, what: "vision values")
        let chunk = min(n, 512)
        let inner = max(c.feedForward, e * unit)
        let a = try AlignedBuffer<Float>(count: chunk * inner, what: "vision MLP activations")
        let b = try AlignedBuffer<Float>(count: chunk * inner, what: "vision MLP activations")
        var scratchBytes = patchEmbedding.scratchBytes(tokens: n)
        for blk in blocks {
            scratchBytes = max(scratchBytes, blk.query.weight.scratchBytes(tokens: n), blk.output.weight.scratchBytes(tokens: n))
            switch blk.mlp {
            case let .quickGELU(up, down):
                scratchBytes = max(scratchBytes, up.weight.scratchBytes(tokens: chunk), down.weight.scratchBytes(tokens: chunk))
            case let .swiGLU(gate, up, down):
                scratchBytes = max(scratchBytes, gate.weight.scratchBytes(tokens: chunk), up.weight.scratchBytes(tokens: chunk),
                                   down.weight.scratchBytes(tokens: chunk))
            }
        }
        scratchBytes = max(scratchBytes, merger0.weight.scratchBytes(tokens: min(units, chunk)), merger2.weight.scratchBytes(tokens: min(units, chunk)))
        let scratch = try AlignedBuffer<UInt8>(count: scratchBytes, what: "vision scratch")

        func mul(_ l: Linear, _ input: UnsafePointer<Float>, _ rows: Int, _ out: UnsafeMutablePointer<Float>) {
            l(input, tokens: rows, into: out, scratch: scratch.rawBuffer, pool: pool)
        }

        var profile = Profile()
        profile.start()
        // patch embedding, then rows permuted into window order
        image.pixels.withUnsafeBufferPointer { px in
            linear(patchEmbedding, input: px.baseAddress!, tokens: n, output: h.pointer, scratch: scratch.rawBuffer, pool: pool)
        }
        for (i, u) in order.enumerated() {
            (x.pointer + i * unit * e).update(from: h.pointer + u * unit * e, count: unit * e)
        }
        // rotary angles per row: the patch's row then column position, each over head_dim/4 frequencies
        let quarter = hd / 4, half = hd / 2
        var cosines = [Float](repeating: 0, count: n * half), sines = [Float](repeating: 0, count: n * half)
        let groupsPerRow = gw / m
        for (i, u) in order.enumerated() {
            let inFrame = u % (gh * gw / unit)
            let by = inFrame / groupsPerRow, bx = inFrame % groupsPerRow
            for j in 0 ..< unit {
                let row = by * m + j / m, col = bx * m + j % m
                let r = (i * unit + j) * half
                cosines.withUnsafeMutableBufferPointer { cs in
                    sines.withUnsafeMutableBufferPointer { sn in
                        rotaryFrequencies.angles(position: row, cos: cs.baseAddress! + r, sin: sn.baseAddress! + r)
                        rotaryFrequencies.angles(position: col, cos: cs.baseAddress! + r + quarter, sin: sn.baseAddress! + r + quarter)
                    }
                }
            }
        }
        profile.mark("patches")
        let frameRows = gh * gw
        let fullSpans = (0 ..< t).map { AttentionSpan($0 * frameRows ..< ($0 + 1) * frameRows) }

        for (index, blk) in blocks.enumerated() {
            blk.norm1(x.pointer, rows: n, into: h.pointer, eps: c.normEps)
            profile.mark("norm")
            mul(blk.query, h.pointer, n, q.pointer)
            mul(blk.key, h.pointer, n, k.pointer)
            mul(blk.value, h.pointer, n, v.pointer)
            profile.mark("qkv")
            cosines.withUnsafeBufferPointer { cs in
                sines.withUnsafeBufferPointer { sn in
                    for r in 0 ..< n {
                        rotary.apply(q.pointer + r * e, heads: c.heads, cos: cs.baseAddress! + r * half, sin: sn.baseAddress! + r * half)
                        rotary.apply(k.pointer + r * e, heads: c.heads, cos: cs.baseAddress! + r * half, sin: sn.baseAddress! + r * half)
                    }
                }
            }
            profile.mark("rope")
            let full = c.kind == .qwen2VL || c.fullAttentionBlocks.contains(index)
            try Attention.bidirectionalBlocked(queries: q.pointer, keys: k.pointer, values: v.pointer, rows: n, heads: c.heads,
                                               kvHeads: c.heads, headDim: hd, spans: full ? fullSpans : windows,
                                               roundToF16: !exactAttention, output: h.pointer, pool: pool)
            profile.mark("attention")
            mul(blk.output, h.pointer, n, q.pointer)
            Ops.add(x.pointer, q.pointer, count: n * e)
            profile.mark("proj")
            blk.norm2(x.pointer, rows: n, into: h.pointer, eps: c.normEps)
            profile.mark("norm")
            for r0 in stride(from: 0, to: n, by: chunk) {
                let rows = min(chunk, n - r0), hin = h.pointer + r0 * e, out = q.pointer + r0 * e
                switch blk.mlp {
                case let .quickGELU(up, down):
                    mul(up, hin, rows, a.pointer)
                    Self.quickGELU(a.pointer, count: rows * c.feedForward)
                    mul(down, a.pointer, rows, out)
                case let .swiGLU(gate, up, down):
                    mul(gate, hin, rows, a.pointer)
                    mul(up, hin, rows, b.pointer)
                    Ops.siluMul(a.pointer, b.pointer, count: rows * c.feedForward)
                    mul(down, a.pointer, rows, out)
                }
            }
            Ops.add(x.pointer, q.pointer, count: n * e)
            profile.mark("mlp")
        }

        // merger: norm, 2x2 neighbours side by side (consecutive rows), Linear, GELU, Linear; window order undone
        mergerNorm(x.pointer, rows: n, into: h.pointer, eps: c.normEps)
        let merged = e * unit, out = c.outputSize
        var result = [Float](repeating: 0, count: units * out)
        let projected = try AlignedBuffer<Float>(count: min(units, chunk) * out, what: "vision merger output")
        for u0 in stride(from: 0, to: units, by: chunk) {
            let rows = min(chunk, units - u0)
            mul(merger0, h.pointer + u0 * merged, rows, a.pointer)
            Ops.gelu(a.pointer, count: rows * merged)
            mul(merger2, a.pointer, rows, projected.pointer)
            result.withUnsafeMutableBufferPointer { r in
                for i in 0 ..< rows {
                    (r.baseAddress! + order[u0 + i] * out).update(from: projected.pointer + i * out, count: out)
                }
            }
        }
        profile.mark("merger")
        profile.report("\(gw * c.patchSize)x\(gh * c.patchSize) (\(n) patches)")
        return result
    }

    /// The merge groups in the order the blocks see them, and the attention windows over that order (empty for
    /// Qwen2-VL). Qwen2.5-VL (transformers' get_vision_window_index): per frame, windows of w × w merge groups
    /// (w = window / patch / merge) row-major over the image, groups row-major inside each window; edge windows
    /// hold what is left.
    func windowOrder(grid: (t: Int, h: Int, w: Int)) -> ([Int], [AttentionSpan]) {
        let m = config.mergeSize, unit = m * m
        let lh = grid.h / m, lw = grid.w / m
        let total = grid.t * lh * lw
        guard config.kind == .qwen25VL else { return (Array(0 ..< total), []) }
        let size = config.windowSize / m / config.patchSize
        var order: [Int] = [], spans: [AttentionSpan] = []
        order.reserveCapacity(total)
        for f in 0 ..< grid.t {
            for wy in stride(from: 0, to: lh, by: size) {
                for wx in stride(from: 0, to: lw, by: size) {
                    let start = order.count
                    for y in wy ..< min(wy + size, lh) {
                        for x in wx ..< min(wx + size, lw) { order.append(f * lh * lw + y * lw + x) }
                    }
                    spans.append(AttentionSpan(start * unit ..< order.count * unit))
                }
            }
        }
        return (order, spans)
    }

    /// Time per phase of `encode` (QWEN_VISION_PROFILE=1 prints it to stderr): wall and process CPU seconds.
    struct Profile {
        static let enabled = getenv("QWEN_VISION_PROFILE").map { String(cString: $0) == "1" } ?? false
        var phases: [(String, Double, Double)] = []
        var wall = 0.0, cpu = 0.0

        static func clock(_ id: clockid_t) -> Double {
            var ts = timespec()
            clock_gettime(id, &ts)
            return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
        }

        mutating func start() {
            guard Self.enabled else { return }
            wall = Self.clock(CLOCK_MONOTONIC)
            cpu = Self.clock(CLOCK_PROCESS_CPUTIME_ID)
        }

        mutating func mark(_ name: String) {
            guard Self.enabled else { return }
            let w = Self.clock(CLOCK_MONOTONIC), c = Self.clock(CLOCK_PROCESS_CPUTIME_ID)
            if let i = phases.firstIndex(where: { $0.0 == name }) {
                phases[i].1 += w - wall
                phases[i].2 += c - cpu
            } else {
                phases.append((name, w - wall, c - cpu))
            }
            wall = w
            cpu = c
        }

        func report(_ what: String) {
            guard Self.enabled else { return }
            var line = "vision encode \(what):"
            for (name, w, c) in phases { line += " \(name) \(Int(w * 1000)) ms (cpu \(Int(c * 1000)))" }
            fputs(line + "\n", stderr)
        }
    }

    /// x · sigmoid(1.702 x)
    static func quickGELU(_ x: UnsafeMutablePointer<Float>, count: Int) {
        let p = UnsafeMutableRawPointer(x)
        var i = 0
        while i + 8 <= count {
            let v = p.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            p.storeBytes(of: v / (1 + Ops.exp8(-1.702 * v)), toByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        while i < count {
            x[i] = x[i] / (1 + expf(-1.702 * x[i]))
            i += 1
        }
    }

}

extension WeightStore {
    /// The `mmproj` GGUF name of a Hugging Face vision tensor (`visual.*`, transformers 5 `model.visual.*`), nil for
    /// others. The fused `attn.qkv` keeps one name (`attn_qkv`); the encoder splits it.
    static func visionGGUFName(huggingFace name: String) -> String? {
        var n = Substring(name)
        if n.hasPrefix("model.visual.") { n = n.dropFirst("model.".count) }
        guard n.hasPrefix("visual.") else { return nil }
        n = n.dropFirst("visual.".count)
        let globals: [(Substring, String)] = [
            ("patch_embed.proj.weight", "v.patch_embd.weight"),
            ("merger.ln_q.weight", "v.post_ln.weight"), ("merger.ln_q.bias", "v.post_ln.bias"),
            ("merger.mlp.0.weight", "mm.0.weight"), ("merger.mlp.0.bias", "mm.0.bias"),
            ("merger.mlp.2.weight", "mm.2.weight"), ("merger.mlp.2.bias", "mm.2.bias"),
        ]
        if let g = globals.first(where: { $0.0 == n }) { return g.1 }
        guard n.hasPrefix("blocks.") else { return nil }
        let rest = n.dropFirst("blocks.".count)
        guard let dot = rest.firstIndex(of: "."), let block = Int(rest[..<dot]) else { return nil }
        let suffix = rest[rest.index(after: dot)...]
        let parts: [(Substring, String)] = [
            ("norm1", "ln1"), ("norm2", "ln2"), ("attn.qkv", "attn_qkv"), ("attn.proj", "attn_out"),
            ("mlp.fc1", "ffn_up"), ("mlp.fc2", "ffn_down"),
            ("mlp.gate_proj", "ffn_gate"), ("mlp.up_proj", "ffn_up"), ("mlp.down_proj", "ffn_down"),
        ]
        for (hf, gguf) in parts {
            for kind in ["weight", "bias"] where suffix == hf + "." + kind {
                return "v.blk.\(block).\(gguf).\(kind)"
            }
        }
        return nil
    }
}
