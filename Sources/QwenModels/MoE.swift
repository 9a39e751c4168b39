import QwenFormats
import QwenTensors
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The sparse mixture-of-experts feed-forward of Qwen2-MoE and Qwen3-MoE.
///
/// A router (`ffn_gate_inp`, [experts][hidden]) scores every expert; the softmax of the scores gives
/// probabilities, each token goes to its `used` most probable experts (optionally rescaled to sum to 1),
/// and the output is the probability-weighted sum of those experts' SwiGLU outputs. Qwen2-MoE adds a
/// shared expert that sees every token, scaled by sigmoid(`ffn_gate_inp_shexp` · x).
///
/// Each expert runs once per batch, on the rows routed to it only: the rows are gathered into a
/// contiguous block, multiplied with the ordinary `linear` kernels, and added back weighted.
/// All scratch lives in `Workspace.moe`; nothing is allocated per call.
public struct MoE: Sendable {
    public let router: Linear
    public let experts: [SwiGLU]
    public let shared: SwiGLU?
    /// The shared expert's gate vector ([hidden]).
    public let sharedGate: [Float]?
    public let used: Int
    public let normalizeTopK: Bool
    public let hidden: Int

    /// Loads layer `prefix` ("blk.N"). Expert matrices come from the stacked 3-D tensors of a GGUF
    /// (`ffn_{gate,up,down}_exps`, [experts][rows][columns]) or transformers' fused `ffn_gate_up_exps`
    /// ([experts][2·ff][hidden], gate rows first), each expert a view of its slab; or from one 2-D tensor
    /// per expert (`ffn_gate.E.weight`, the hub layout).
    public init(_ store: WeightStore, _ prefix: String, hidden: Int, settings e: ExpertConfig) throws {
        self.hidden = hidden
        used = e.used
        normalizeTopK = e.normalizeTopK
        router = try Linear(store, prefix + ".ffn_gate_inp", inputs: hidden, outputs: e.count, bias: false)
        let ff = e.feedForwardSize
        let gates = try Self.expertMatrices(store, prefix, "gate", experts: e.count, rows: ff, columns: hidden)
        let ups = try Self.expertMatrices(store, prefix, "up", experts: e.count, rows: ff, columns: hidden)
        let downs = try Self.expertMatrices(store, prefix, "down", experts: e.count, rows: hidden, columns: ff)
        experts = (0 ..< e.count).map {
            SwiGLU(gate: Linear(weight: gates[$0]), up: Linear(weight: ups[$0]), down: Linear(weight: downs[$0]))
        }
        if e.sharedFeedForwardSize > 0 {
            let s = e.sharedFeedForwardSize
            shared = SwiGLU(
                gate: try Linear(store, prefix + ".ffn_gate_shexp", inputs: hidden, outputs: s, bias: false),
                up: try Linear(store, prefix + ".ffn_up_shexp", inputs: hidden, outputs: s, bias: false),
                down: try Linear(store, prefix + ".ffn_down_shexp", inputs: s, outputs: hidden, bias: false))
            sharedGate = try loadVector(store, prefix + ".ffn_gate_inp_shexp.weight", count: hidden)
        } else {
            shared = nil
            sharedGate = nil
        }
    }

    /// The `experts` matrices of one kind ("gate", "up", "down"), each [rows][columns].
    static func expertMatrices(_ store: WeightStore, _ prefix: String, _ kind: String, experts: Int, rows: Int,
                               columns: Int) throws -> [WeightMatrix] {
        // stacked: every expert's rows back to back; `first` skips rows inside each expert's slab
        func slices(_ t: TensorData, slabRows: Int, first: Int) throws -> [WeightMatrix] {
            guard t.shape == [experts, slabRows, columns], let rowBytes = t.type.byteCount(elements: columns) else {
                throw QwenError.format("'\(t.name)' has shape \(t.shape), expected [\(experts), \(slabRows), \(columns)]")
            }
            return try (0 ..< experts).map { x in
                let view = TensorData(name: "\(t.name)[\(x)]", type: t.type, shape: [rows, columns],
                                      data: t.data + (x * slabRows + first) * rowBytes, byteCount: rows * rowBytes,
                                      isFileMapped: t.isFileMapped)
                return try WeightMatrix(view, pack: true, arena: store.packingArena)
            }
        }
        if let t = store.tensor("\(prefix).ffn_\(kind)_exps.weight") {
            return try slices(t, slabRows: rows, first: 0)
        }
        if kind != "down", let t = store.tensor("\(prefix).ffn_gate_up_exps.weight") {
            return try slices(t, slabRows: 2 * rows, first: kind == "up" ? rows : 0)
        }
        if store.tensor("\(prefix).ffn_\(kind).0.weight") == nil {
            throw QwenError.format("'\(store.source)' lacks the \(kind) experts of layer \(prefix) " +
                                   "('\(prefix).ffn_\(kind)_exps.weight' or per-expert matrices)")
        }
        return try (0 ..< experts).map {
            try loadMatrix(store, "\(prefix).ffn_\(kind).\($0).weight", rows: rows, columns: columns)
        }
    }

    /// x: [tokens][hidden] → y: [tokens][hidden].
    public func callAsFunction(_ x: UnsafePointer<Float>, tokens n: Int, into y: UnsafeMutablePointer<Float>, _ ws: Workspace) {
        guard let s = ws.moe else { preconditionFailure("MoE: the workspace has no expert scratch") }
        let count = experts.count, k = used, d = hidden
        let probs = s.routerLogits.pointer, chosen = s.chosen.pointer, weights = s.weights.pointer
        let start = s.start.pointer, cursor = s.cursor.pointer, order = s.order.pointer

        // 1. routing: softmax over the experts, top-k (ties: the lower expert index), optional renormalization
        router(x, tokens: n, into: probs, ws)
        for e in 0 ... count { start[e] = 0 }
        for t in 0 ..< n {
            let p = probs + t * count
            Ops.softmax(p, count)
            var sum: Float = 0
            for j in 0 ..< k {
                // an expert is picked once per token even if the probabilities are NaN (a token's rows must
                // fit the [batch] scratch); picked ones are marked -inf, which no probability is
                var best = -1
                for e in 0 ..< count where p[e] != -.infinity && (best < 0 || p[e] > p[best]) { best = e }
                chosen[t * k + j] = Int32(best)
                weights[t * k + j] = p[best]
                sum += p[best]
                p[best] = -.infinity
                start[best + 1] += 1
            }
            if normalizeTopK {
                for j in 0 ..< k { weights[t * k + j] /= sum }
            }
        }
        // 2. group the (token, slot) pairs by expert, tokens in order (a counting sort)
        for e in 0 ..< count {
            start[e + 1] += start[e]
            cursor[e] = start[e]
        }
        for slot in 0 ..< n * k {
            let e = Int(chosen[slot])
            order[Int(cursor[e])] = Int32(slot)
            cursor[e] += 1
        }
        // 3. each expert on its rows: gather, SwiGLU, add back weighted (in expert order, as transformers sums)
        y.update(repeating: 0, count: n * d)
        let gathered = s.input.pointer, out = s.output.pointer
        for e in 0 ..< count {
            let lo = Int(start[e]), m = Int(start[e + 1]) - lo
            guard m > 0 else { continue }
            for i in 0 ..< m {
                let t = Int(order[lo + i]) / k
                (gathered + i * d).update(from: x + t * d, count: d)
            }
            experts[e](gathered, tokens: m, into: out, ws)
            for i in 0 ..< m {
                let slot = Int(order[lo + i])
                RowKernels.axpyF32(d, weights[slot], out + i * d, y + (slot / k) * d)
            }
        }
        // 4. the shared expert, gated per token by sigmoid(g · x)
        if let shared, let sharedGate {
            shared(x, tokens: n, into: out, ws)
            sharedGate.withUnsafeBufferPointer { g in
                for t in 0 ..< n {
                    let logit = RowKernels.dotF32(d, g.baseAddress!, x + t * d)
                    RowKernels.axpyF32(d, 1 / (1 + expf(-logit)), out + t * d, y + t * d)
                }
            }
        }
    }
}

/// Scratch of the sparse feed-forward for up to `batch` tokens (part of a `Workspace`).
public final class MoEScratch: @unchecked Sendable {
    /// Router logits, then probabilities: [batch][experts].
    let routerLogits: AlignedBuffer<Float>
    /// Chosen experts and their weights: [batch][used].
    let chosen: AlignedBuffer<Int32>
    let weights: AlignedBuffer<Float>
    /// start[e] ..< start[e + 1]: expert e's entries in `order` (the slots t·used + j routed to it).
    let start: AlignedBuffer<Int32>
    let cursor: AlignedBuffer<Int32>
    let order: AlignedBuffer<Int32>
    /// One expert's gathered input rows and its output rows: [batch][hidden] each.
    let input: AlignedBuffer<Float>
    let output: AlignedBuffer<Float>

    public init(experts e: ExpertConfig, hidden: Int, batch: Int) throws {
        routerLogits = try AlignedBuffer(count: batch * e.count, what: "router logits")
        chosen = try AlignedBuffer(count: batch * e.used, what: "expert choices")
        weights = try AlignedBuffer(count: batch * e.used, what: "expert weights")
        start = try AlignedBuffer(count: e.count + 1, what: "expert offsets")
        cursor = try AlignedBuffer(count: e.count, what: "expert offsets")
        order = try AlignedBuffer(count: batch * e.used, what: "expert routing")
        input = try AlignedBuffer(count: batch * hidden, what: "expert inputs")
        output = try AlignedBuffer(count: batch * hidden, what: "expert outputs")
    }
}

extension SwiGLU {
    /// A SwiGLU over given projections (an expert: views of stacked tensors; a shared expert).
    init(gate: Linear, up: Linear, down: Linear) {
        self.gate = gate
        self.up = up
        self.down = down
    }
}
