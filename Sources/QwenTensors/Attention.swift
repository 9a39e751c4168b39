import CQwen
import QwenFormats
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Storage type of cached keys and values.
public enum KVType: Sendable {
    case f32
    case f16
    /// llama.cpp's Q8_0 blocks (32 values, 34 bytes); needs a head dimension that is a multiple of 32.
    case q8_0

    /// Bytes of one head's row of `headDim` values.
    func rowBytes(_ headDim: Int) -> Int {
        switch self {
        case .f32: return headDim * 4
        case .f16: return headDim * 2
        case .q8_0: return headDim / 32 * 34
        }
    }
}

/// Keys and values of every layer for up to `capacity` positions, laid out
/// [layer][kv head][position][head dim] so decode reads each head's history contiguously.
public final class KVCache: @unchecked Sendable {
    public let layers: Int
    public let kvHeads: Int
    public let headDim: Int
    public let capacity: Int
    public let type: KVType
    /// Bytes of one head's row at one position.
    public let rowBytes: Int
    private let keys: AlignedBuffer<UInt8>
    private let values: AlignedBuffer<UInt8>

    public init(layers: Int, kvHeads: Int, headDim: Int, capacity: Int, type: KVType) throws {
        guard type != .q8_0 || headDim % 32 == 0 else {
            throw QwenError.unsupported("a Q8_0 KV cache needs a head dimension that is a multiple of 32 (this model has \(headDim))")
        }
        self.layers = layers
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.capacity = capacity
        self.type = type
        rowBytes = type.rowBytes(headDim)
        let (n, overflow) = layers.multipliedReportingOverflow(by: kvHeads * capacity * rowBytes)
        guard !overflow else { throw QwenError.outOfMemory("KV cache size overflows") }
        keys = try AlignedBuffer(count: n, what: "KV cache keys")
        values = try AlignedBuffer(count: n, what: "KV cache values")
    }

    public var byteCount: Int { keys.count + values.count }

    @inline(__always) func offset(layer: Int, head: Int, position: Int) -> Int {
        (((layer * kvHeads) + head) * capacity + position) * rowBytes
    }

    @inline(__always) public func key(layer: Int, head: Int, position: Int) -> UnsafeMutableRawPointer {
        keys.raw + offset(layer: layer, head: head, position: position)
    }

    @inline(__always) public func value(layer: Int, head: Int, position: Int) -> UnsafeMutableRawPointer {
        values.raw + offset(layer: layer, head: head, position: position)
    }

    /// Stores rows of `kvHeads · headDim` floats for positions start..<start+count.
    public func store(layer: Int, start: Int, count: Int, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>) {
        let rowFloats = kvHeads * headDim
        for t in 0 ..< count {
            for h in 0 ..< kvHeads {
                let src = t * rowFloats + h * headDim
                write(k + src, to: key(layer: layer, head: h, position: start + t))
                write(v + src, to: value(layer: layer, head: h, position: start + t))
            }
        }
    }

    /// Drops the positions in `span` from the first `filled` cached positions; the later ones move down by
    /// `span.count`. Their keys pass through `rekey` as floats, so a position-dependent encoding (RoPE) can
    /// be moved with them; values are moved as they are.
    public func discard(_ span: Range<Int>, filled: Int, rekey: (UnsafeMutablePointer<Float>) -> Void) {
        let shift = span.count
        guard shift > 0, span.lowerBound >= 0, span.upperBound <= filled, filled <= capacity else { return }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: headDim) { row in
            let buf = row.baseAddress!
            for layer in 0 ..< layers {
                for head in 0 ..< kvHeads {
                    for p in span.upperBound ..< filled {
                        read(key(layer: layer, head: head, position: p), into: buf)
                        rekey(buf)
                        write(buf, to: key(layer: layer, head: head, position: p - shift))
                        value(layer: layer, head: head, position: p - shift)
                            .copyMemory(from: value(layer: layer, head: head, position: p), byteCount: rowBytes)
                    }
                }
            }
        }
    }

    private func read(_ row: UnsafeRawPointer, into x: UnsafeMutablePointer<Float>) {
        switch type {
        case .f32: x.update(from: row.assumingMemoryBound(to: Float.self), count: headDim)
        case .f16: try? RowKernels.dequantizeRow(.f16, row, x, headDim)
        case .q8_0: try? RowKernels.dequantizeRow(.q8_0, row, x, headDim)
        }
    }

    private func write(_ x: UnsafePointer<Float>, to row: UnsafeMutableRawPointer) {
        switch type {
        case .f32: row.assumingMemoryBound(to: Float.self).update(from: x, count: headDim)
        case .f16: RowKernels.floatToF16Row(headDim, x, row.assumingMemoryBound(to: UInt16.self), path: .best)
        case .q8_0: RowKernels.quantizeQ8_0(x, row, headDim, path: .best)
        }
    }
}

public enum Attention {
    /// Scratch floats per worker for `causal`: the scores of every attended position, plus room for a
    /// quantized query.
    public static func scratchFloats(capacity: Int, headDim: Int) -> Int { capacity + headDim / 32 * 34 / 4 + 16 }

    /// Causal grouped-query attention of `tokens` queries at positions start..<start+tokens against the cache
    /// (which already holds their own keys/values). q and out are [tokens][heads · headDim].
    public static func causal(cache: KVCache, layer: Int, queries q: UnsafePointer<Float>, heads: Int, start: Int, tokens: Int,
                              output out: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>, pool: ThreadPool?) {
        let d = cache.headDim
        let group = heads / cache.kvHeads
        let scale = 1 / Float(d).squareRoot()
        let rowFloats = heads * d
        let tasks = tokens * heads
        let work = tasks * (start + tokens) * d
        let stride = scratchFloats(capacity: cache.capacity, headDim: d)
        let kvType = cache.type, rowBytes = cache.rowBytes

        func task(_ index: Int, _ worker: Int) {
            let t = index / heads, h = index % heads, g = h / group
            let length = start + t + 1
            let qv = q + t * rowFloats + h * d
            let o = out + t * rowFloats + h * d
            let scores = scratch + worker * stride
            let k0 = UnsafeRawPointer(cache.key(layer: layer, head: g, position: 0))
            let v0 = UnsafeRawPointer(cache.value(layer: layer, head: g, position: 0))
            #if arch(x86_64)
            if kvType == .f16, d % 8 == 0 {
                // whole rows of keys and values per call: at decode the per-row calls below cost more than the math
                let k = k0.assumingMemoryBound(to: UInt8.self), v = v0.assumingMemoryBound(to: UInt8.self)
                cq_attn_scores_f16_avx2(Int32(d), Int32(length), k, rowBytes, qv, scale, scores)
                let total = Ops.expShifted(scores, length, shift: Ops.maximum(scores, length))
                cq_attn_values_f16_avx2(Int32(d), Int32(length), v, rowBytes, scores, 1 / total, o)
                return
            }
            #endif
            switch kvType {
            case .f32:
                for j in 0 ..< length { scores[j] = RowKernels.dotF32(d, (k0 + j * rowBytes).assumingMemoryBound(to: Float.self), qv) * scale }
            case .f16:
                for j in 0 ..< length {
                    scores[j] = RowKernels.dotF16(d, (k0 + j * rowBytes).assumingMemoryBound(to: UInt16.self), qv, path: .best) * scale
                }
            case .q8_0:
                // the query quantized once, as llama.cpp does for a Q8_0 cache
                let qq = UnsafeMutableRawPointer(scores + cache.capacity)
                RowKernels.quantizeQ8_0(qv, qq, d, path: .best)
                for j in 0 ..< length { scores[j] = RowKernels.dotQ8_0(d / 32, k0 + j * rowBytes, qq, path: .best) * scale }
            }
            let inv = 1 / Ops.expShifted(scores, length, shift: Ops.maximum(scores, length))
            o.update(repeating: 0, count: d)
            for j in 0 ..< length {
                let p = scores[j] * inv, row = v0 + j * rowBytes
                switch kvType {
                case .f32: RowKernels.axpyF32(d, p, row.assumingMemoryBound(to: Float.self), o)
                case .f16: RowKernels.axpyF16(d, p, row.assumingMemoryBound(to: UInt16.self), o, path: .best)
                case .q8_0: RowKernels.axpyQ8_0(d, p, row, o)
                }
            }
        }

        if let pool, work >= 1 << 15, tasks > 1 {
            pool.parallelFor(tasks, task)
        } else {
            for i in 0 ..< tasks { task(i, 0) }
        }
    }
}

/// Which rows attend to which: the queries in `queries` attend to the keys in `keys` (and to no others).
public struct AttentionSpan: Sendable, Equatable {
    public var queries: Range<Int>
    public var keys: Range<Int>

    public init(queries: Range<Int>, keys: Range<Int>) {
        self.queries = queries
        self.keys = keys
    }

    /// Rows attending to each other within `range` (one image, one window).
    public init(_ range: Range<Int>) {
        queries = range
        keys = range
    }
}

extension Attention {
    /// Scratch floats per worker for `bidirectional`: one score per key of the longest span.
    public static func bidirectionalScratchFloats(longestKeySpan: Int) -> Int { longestKeySpan + 16 }

    /// Non-causal multi-head attention, as encoders use it (a ViT over an image's patches, window attention,
    /// an audio encoder with padded frames masked): q is [rows][heads · headDim], k and v [rows][kvHeads ·
    /// headDim] (grouped heads when kvHeads < heads), out [rows][heads · headDim]; each span's queries see only
    /// its keys. Rows in no span are left untouched.
    public static func bidirectional(queries q: UnsafePointer<Float>, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>,
                                     heads: Int, kvHeads: Int, headDim d: Int, spans: [AttentionSpan],
                                     output out: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
                                     scratchPerWorker: Int, pool: ThreadPool?) {
        let group = heads / kvHeads, scale = 1 / Float(d).squareRoot()
        let qRow = heads * d, kvRow = kvHeads * d
        // tasks: (span, head, query chunk of up to 16 rows)
        var tasks: [(span: Int, head: Int, start: Int)] = []
        for (i, s) in spans.enumerated() {
            for h in 0 ..< heads {
                for start in stride(from: s.queries.lowerBound, to: s.queries.upperBound, by: 16) { tasks.append((i, h, start)) }
            }
        }
        func run(_ index: Int, _ worker: Int) {
            let task = tasks[index], span = spans[task.span], h = task.head, g = h / group
            let scores = scratch + worker * scratchPerWorker
            for row in task.start ..< min(task.start + 16, span.queries.upperBound) {
                let qv = q + row * qRow + h * d
                var m = -Float.infinity
                for (j, key) in span.keys.enumerated() {
                    let s = RowKernels.dotF32(d, k + key * kvRow + g * d, qv) * scale
                    scores[j] = s
                    m = max(m, s)
                }
                let inv = 1 / Ops.expShifted(scores, span.keys.count, shift: m)
                let o = out + row * qRow + h * d
                o.update(repeating: 0, count: d)
                for (j, key) in span.keys.enumerated() {
                    RowKernels.axpyF32(d, scores[j] * inv, v + key * kvRow + g * d, o)
                }
            }
        }
        if let pool, tasks.count > 1 {
            pool.parallelFor(tasks.count, run)
        } else {
            for i in 0 ..< tasks.count { run(i, 0) }
        }
    }
}
