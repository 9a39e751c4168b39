import QwenFormats

/// Storage type of cached keys and values.
public enum KVType: Sendable {
    case f32
    case f16

    var bytes: Int { self == .f32 ? 4 : 2 }
}

/// Keys and values of every layer for up to `capacity` positions, laid out
/// [layer][kv head][position][head dim] so decode reads each head's history contiguously.
public final class KVCache: @unchecked Sendable {
    public let layers: Int
    public let kvHeads: Int
    public let headDim: Int
    public let capacity: Int
    public let type: KVType
    private let keys: AlignedBuffer<UInt8>
    private let values: AlignedBuffer<UInt8>

    public init(layers: Int, kvHeads: Int, headDim: Int, capacity: Int, type: KVType) throws {
        self.layers = layers
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.capacity = capacity
        self.type = type
        let (n, overflow) = layers.multipliedReportingOverflow(by: kvHeads * capacity * headDim * type.bytes)
        guard !overflow else { throw QwenError.outOfMemory("KV cache size overflows") }
        keys = try AlignedBuffer(count: n, what: "KV cache keys")
        values = try AlignedBuffer(count: n, what: "KV cache values")
    }

    public var byteCount: Int { keys.count + values.count }

    @inline(__always) func offset(layer: Int, head: Int, position: Int) -> Int {
        (((layer * kvHeads) + head) * capacity + position) * headDim * type.bytes
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
                let kd = key(layer: layer, head: h, position: start + t)
                let vd = value(layer: layer, head: h, position: start + t)
                switch type {
                case .f32:
                    kd.assumingMemoryBound(to: Float.self).update(from: k + src, count: headDim)
                    vd.assumingMemoryBound(to: Float.self).update(from: v + src, count: headDim)
                case .f16:
                    RowKernels.floatToF16Row(headDim, k + src, kd.assumingMemoryBound(to: UInt16.self), path: .best)
                    RowKernels.floatToF16Row(headDim, v + src, vd.assumingMemoryBound(to: UInt16.self), path: .best)
                }
            }
        }
    }
}

public enum Attention {
    /// Scratch floats per worker for `causal`: one score per attended position.
    public static func scratchFloats(capacity: Int) -> Int { capacity }

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
        let capacity = cache.capacity
        let kvType = cache.type

        func task(_ index: Int, _ worker: Int) {
            let t = index / heads, h = index % heads, g = h / group
            let length = start + t + 1
            let qv = q + t * rowFloats + h * d
            let o = out + t * rowFloats + h * d
            let scores = scratch + worker * capacity
            var m = -Float.infinity
            let k0 = cache.key(layer: layer, head: g, position: 0)
            let v0 = cache.value(layer: layer, head: g, position: 0)
            for j in 0 ..< length {
                let s: Float
                if kvType == .f32 {
                    s = RowKernels.dotF32(d, (k0 + j * d * 4).assumingMemoryBound(to: Float.self), qv) * scale
                } else {
                    s = RowKernels.dotF16(d, (k0 + j * d * 2).assumingMemoryBound(to: UInt16.self), qv, path: .best) * scale
                }
                scores[j] = s
                m = max(m, s)
            }
            let sum = Ops.expShifted(scores, length, shift: m)
            o.update(repeating: 0, count: d)
            for j in 0 ..< length {
                if kvType == .f32 {
                    RowKernels.axpyF32(d, scores[j], (v0 + j * d * 4).assumingMemoryBound(to: Float.self), o)
                } else {
                    RowKernels.axpyF16(d, scores[j], (v0 + j * d * 2).assumingMemoryBound(to: UInt16.self), o, path: .best)
                }
            }
            let inv = 1 / sum
            for i in 0 ..< d { o[i] *= inv }
        }

        if let pool, work >= 1 << 15, tasks > 1 {
            pool.parallelFor(tasks, task)
        } else {
            for i in 0 ..< tasks { task(i, 0) }
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
