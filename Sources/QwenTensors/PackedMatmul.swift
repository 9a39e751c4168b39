import CQwen
import QwenFormats
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A weight matrix repacked for the AVX-512 VNNI group kernels (see cqwen.h): rows in groups of 16, and
/// per block the 16 rows' scales, then their quants interleaved by 4-byte k-groups so one vector load
/// feeds one k-group of 16 rows. Q8_0, Q4_0 and Q5_0 multiply prepared "q8 rows", Q4_K and Q6_K Q8_K rows,
/// F16 and BF16 (packed as [column][16 rows]) the F32 input itself.
/// The packed form has the same size as the original.
public final class PackedWeights: @unchecked Sendable {
    public let type: TensorType
    public let rows: Int
    public let columns: Int
    public let groups: Int
    /// Blocks (32 or 256 elements) per row, and bytes of one packed 16-row block.
    let blocks: Int
    let blockBytes: Int
    /// Column panels. A wide matrix is stored as panels of columns, [panel][group][block], so that one
    /// group's pass over a panel (16-24 KiB) stays within L1 with the activations it reads: over a whole row of a wide
    /// matrix (the MLP's down projection: 40-150 KiB per group) the activations fall out of L1 between visits, and
    /// the one-token kernels stream 10-20% slower. Narrow matrices have a single panel.
    let panels: [Panel]
    /// The packed groups, and what owns their memory (an arena slice or a buffer of their own).
    let storage: UnsafeMutableRawPointer
    private let owner: AnyObject

    struct Panel {
        /// Byte offset of the panel in the packed storage, its first block within a row, and its width in blocks
        /// (the last panel may be narrower).
        let offset: Int, first: Int, blocks: Int
    }

    /// The packed groups as stored (what a one-token product reads).
    public var packedBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: storage, count: groups * blocks * blockBytes) }

    /// Whether this CPU runs the packed kernels.
    /// QWEN_DISABLE_PACKING=1 turns packing off (to compare paths or measure the unpacked kernels).
    public static let isAvailable: Bool = {
        #if arch(x86_64)
        if let flag = getenv("QWEN_DISABLE_PACKING"), String(cString: flag) == "1" { return false }
        return cq_cpu_has_avx512vnni() != 0
        #else
        return false
        #endif
    }()

    public static func canPack(_ type: TensorType) -> Bool { [.q8_0, .q4_0, .q5_0, .q4_K, .q6_K, .f16, .bf16].contains(type) }

    var usesQ8K: Bool { type == .q4_K || type == .q6_K }
    var usesF32: Bool { type == .f16 || type == .bf16 }

    /// Repacks `rows` rows of `columns` elements stored at `data` (llama.cpp blocks, `rowBytes` apart). With
    /// `releasingSource` (a memory-mapped original), each task returns the source pages it has packed, so the
    /// original and its packed copy are not both resident (the peak would hold the largest matrix twice).
    /// With `arena`, the packed form takes a slice of it instead of memory of its own.
    public init(type: TensorType, rows: Int, columns: Int, data: UnsafeRawPointer, rowBytes: Int, pool: ThreadPool? = nil,
                releasingSource: Bool = false, arena: PackingArena? = nil) throws {
        precondition(Self.canPack(type))
        self.type = type
        self.rows = rows
        self.columns = columns
        blocks = columns / type.blockSize
        groups = (rows + 15) / 16
        switch type {
        case .q8_0: blockBytes = Int(CQ_PACKED_Q8_0_BLOCK)
        case .q4_0: blockBytes = Int(CQ_PACKED_Q4_0_BLOCK)
        case .q5_0: blockBytes = Int(CQ_PACKED_Q5_0_BLOCK)
        case .f16, .bf16: blockBytes = 32  // one column of 16 rows
        case .q4_K: blockBytes = Int(CQ_PACKED_Q4_K_BLOCK)
        default: blockBytes = Int(CQ_PACKED_Q6_K_BLOCK)
        }
        let (blocks, groups, blockBytes) = (blocks, groups, blockBytes)
        // a row over 32 KiB is cut into equal panels of at most 24 KiB: narrower ones (16 KiB) and a short last panel
        // measured 4-7% slower on the MLP's down projection
        let panelCount = blocks * blockBytes > 32 << 10 ? (blocks * blockBytes + (24 << 10) - 1) / (24 << 10) : 1
        let panelBlocks = max(1, (blocks + panelCount - 1) / panelCount)
        panels = stride(from: 0, to: blocks, by: panelBlocks).map {
            Panel(offset: $0 * groups * blockBytes, first: $0, blocks: min(panelBlocks, blocks - $0))
        }
        let bytes = groups * blocks * blockBytes
        if let arena {
            storage = try arena.allocate(bytes, what: "packed weights")
            owner = arena
        } else {
            let buffer = try AlignedBuffer<UInt8>(count: bytes, what: "packed weights")
            storage = buffer.raw
            owner = buffer
        }
        let src = data.assumingMemoryBound(to: UInt8.self), dst = storage.assumingMemoryBound(to: UInt8.self)
        let r = Int32(rows), sourceBlockBytes = type.blockBytes
        let perTask = max(1, groups / max(1, (pool?.threadCount ?? 1) * 4))
        let type = self.type
        let panels = self.panels
        func pack(_ task: Int, _: Int) {
            for g in task * perTask ..< min(groups, (task + 1) * perTask) {
                for panel in panels {
                    // the panel's columns of every row start `first` source blocks in
                    let out = dst + panel.offset + g * panel.blocks * blockBytes, n = Int32(panel.blocks)
                    let src = src + panel.first * sourceBlockBytes
                    switch type {
                    case .q8_0: cq_pack_group(1, src, rowBytes, r, Int32(g), n, out)
                    case .q4_0: cq_pack_group(0, src, rowBytes, r, Int32(g), n, out)
                    case .q5_0: cq_pack_group_q5_0(src, rowBytes, r, Int32(g), n, out)
                    case .f16, .bf16: cq_pack_group_half(src, rowBytes, r, Int32(g), n, out)
                    case .q4_K: cq_pack_group_q4_K(src, rowBytes, r, Int32(g), n, out)
                    default: cq_pack_group_q6_K(src, rowBytes, r, Int32(g), n, out)
                    }
                }
            }
            if releasingSource {
                let first = min(rows, task * perTask * 16), end = min(rows, (task + 1) * perTask * 16)
                releaseMappedPages(src + first * rowBytes, (end - first) * rowBytes)
            }
        }
        let tasks = (groups + perTask - 1) / perTask
        if let pool { pool.parallelFor(tasks, pack) } else { for t in 0 ..< tasks { pack(t, 0) } }
    }

    /// Bytes of one prepared activation row.
    var activationRowBytes: Int { Self.activationRowBytes(type, columns: columns) }

    /// Bytes of one activation row prepared for a packed matrix of this type and width (F16/BF16 use the input as is).
    static func activationRowBytes(_ type: TensorType, columns: Int) -> Int {
        switch type {
        case .f16, .bf16: 0
        case .q4_K, .q6_K: columns / type.blockSize * Int(CQ_Q8_K_BYTES)
        default: TiledMatmul.scratchBytes(columns: columns, tokens: 1)
        }
    }

    /// Scratch bytes `multiply` needs for `tokens` rows.
    public func scratchBytes(tokens: Int) -> Int { tokens * activationRowBytes }

    #if arch(x86_64)
    /// Activation bytes per block: q8 rows are prepared per panel (their scales and sums follow the panel's quants).
    private var activationBlockBytes: Int { usesF32 ? 4 : usesQ8K ? Int(CQ_Q8_K_BYTES) : 40 }
    private var activationStride: Int { usesF32 ? columns * 4 : activationRowBytes }

    /// Whether `other` reads activations prepared exactly as this matrix's: same width, kind and panels.
    func sharesActivations(with other: PackedWeights) -> Bool {
        guard columns == other.columns, usesF32 == other.usesF32, usesQ8K == other.usesQ8K, panels.count == other.panels.count else {
            return false
        }
        for (a, b) in zip(panels, other.panels) where a.first != b.first { return false }
        return true
    }

    /// Prepares `tokens` input rows as the kernels read them into `scratch` (F16/BF16 read the input as it is).
    private func prepare(_ x: UnsafePointer<Float>, tokens: Int, scratch: UnsafeMutableRawPointer) -> UnsafeMutablePointer<UInt8> {
        if usesF32 { return UnsafeMutableRawPointer(mutating: x).assumingMemoryBound(to: UInt8.self) }
        let act = scratch.assumingMemoryBound(to: UInt8.self), stride = activationStride, blockBytes = activationBlockBytes
        for t in 0 ..< tokens {
            if usesQ8K {
                cq_quantize_row_q8_K_avx2(x + t * columns, act + t * stride, Int32(columns))
            } else {
                for panel in panels {
                    cq_prepare_q8row_avx2(x + t * columns + panel.first * 32, act + t * stride + panel.first * blockBytes,
                                          Int32(panel.blocks * 32))
                }
            }
        }
        return act
    }

    /// y[t][r] = row r · x[t] (+ bias[r]) for every row and token.
    func multiply(input x: UnsafePointer<Float>, tokens: Int, output y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?,
                  scratch: UnsafeMutableRawPointer, pool: ThreadPool?) {
        withUnsafeTemporaryAllocation(of: Product.self, capacity: 1) { products in
            products.initialize(repeating: Product(weights: self, output: y, bias: bias))
            defer { products.baseAddress!.deinitialize(count: 1) }
            _ = Self.multiply(UnsafeBufferPointer(products), input: x, tokens: tokens, scratch: scratch, scratchBytes: .max, pool: pool)
        }
    }

    /// One matrix of a batch of products of the same input.
    struct Product {
        let weights: PackedWeights
        let output: UnsafeMutablePointer<Float>
        let bias: UnsafePointer<Float>?
    }

    /// The products of one input with several matrices of the same width, scheduled as one stacked matrix: the pool
    /// hands out tasks over all their row groups at once, so the batch costs one hand-out and one wait instead of one
    /// per matrix. Activations are prepared once per kind. Returns false, having done nothing, when `scratchBytes`
    /// cannot hold the activations of every kind the batch needs.
    static func multiply(_ products: UnsafeBufferPointer<Product>, input x: UnsafePointer<Float>, tokens: Int,
                         scratch: UnsafeMutableRawPointer, scratchBytes: Int, pool: ThreadPool?) -> Bool {
        var needed = 0
        for (i, p) in products.enumerated() where i == 0 || !p.weights.sharesActivations(with: products[i - 1].weights) {
            needed += p.weights.usesF32 ? 0 : tokens * p.weights.activationRowBytes
        }
        guard needed <= scratchBytes else { return false }
        return withUnsafeTemporaryAllocation(of: UnsafePointer<UInt8>.self, capacity: products.count) { acts in
            var offset = 0, groups = 0, work = 0
            for (i, p) in products.enumerated() {
                if i > 0, p.weights.sharesActivations(with: products[i - 1].weights) {
                    acts[i] = acts[i - 1]
                } else {
                    acts[i] = UnsafePointer(p.weights.prepare(x, tokens: tokens, scratch: scratch + offset))
                    offset += p.weights.usesF32 ? 0 : tokens * p.weights.activationRowBytes
                }
                groups += p.weights.groups
                work += p.weights.rows * p.weights.columns * tokens
            }
            let threads = pool?.threadCount ?? 1
            let tasksWanted = work < 1 << 16 ? 1 : threads * 4
            let groupsPerTask = max(1, (groups + tasksWanted - 1) / tasksWanted)
            let taskCount = (groups + groupsPerTask - 1) / groupsPerTask
            // a task's groups [g0, g1) of the stacked matrix, run piece by piece in the matrices they fall in
            func task(_ index: Int, _: Int) {
                let g0 = index * groupsPerTask, g1 = min(groups, g0 + groupsPerTask)
                var first = 0
                for (i, p) in products.enumerated() {
                    let last = first + p.weights.groups
                    if g0 < last, g1 > first {
                        p.weights.run(groups: max(g0, first) - first, min(g1, last) - first, activations: acts[i], tokens: tokens,
                                      output: p.output, bias: p.bias)
                    }
                    first = last
                }
            }
            if let pool, taskCount > 1 {
                pool.parallelFor(taskCount, task)
            } else {
                for i in 0 ..< taskCount { task(i, 0) }
            }
            return true
        }
    }

    /// y[t][r] (+ bias[r]) for the rows of groups [g0, g1) and every token, from prepared activations.
    private func run(groups g0: Int, _ g1: Int, activations act: UnsafePointer<UInt8>, tokens: Int,
                     output y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?) {
        let base = UnsafeRawPointer(storage).assumingMemoryBound(to: UInt8.self)
        let kind: Int32
        switch type {
        case .q8_0: kind = 0
        case .q4_0: kind = 1
        case .q4_K: kind = 2
        case .q5_0: kind = 4
        case .f16: kind = 5
        case .bf16: kind = 6
        default: kind = 3
        }
        let rows = self.rows, blockBytes = self.blockBytes, actStride = activationStride, actBlockBytes = activationBlockBytes
        let tile = Int(cq_group_max_tokens(kind))
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 8 * 16) { tail in
            for (p, panel) in panels.enumerated() {
                let nb = Int32(panel.blocks), groupBytes = panel.blocks * blockBytes
                let panelBase = base + panel.offset, panelAct = act + panel.first * actBlockBytes
                // chunks of groups that stay in L2 while every token tile passes over them
                let chunkGroups = max(1, (256 << 10) / groupBytes)
                for c0 in stride(from: g0, to: g1, by: chunkGroups) {
                    for t0 in stride(from: 0, to: tokens, by: tile) {
                        let tn = min(tile, tokens - t0)
                        let a = panelAct + t0 * actStride, run = cq_group_kernel(kind, Int32(tn))!
                        for g in c0 ..< min(g1, c0 + chunkGroups) {
                            let r0 = g * 16, group = panelBase + g * groupBytes
                            if p == 0, r0 + 16 <= rows {
                                run(nb, group, a, actStride, y + t0 * rows + r0, rows)
                                continue
                            }
                            // later panels add to the first one's sums; a last partial group writes only its rows
                            run(nb, group, a, actStride, tail.baseAddress!, 16)
                            for t in 0 ..< tn {
                                let out = y + (t0 + t) * rows + r0
                                for i in 0 ..< min(16, rows - r0) { out[i] = p == 0 ? tail[t * 16 + i] : out[i] + tail[t * 16 + i] }
                            }
                        }
                    }
                }
            }
        }
        if let bias {
            let r0 = g0 * 16, r1 = min(rows, g1 * 16)
            for t in 0 ..< tokens {
                for r in r0 ..< r1 { y[t * rows + r] += bias[r] }
            }
        }
    }
    #endif
}

/// Returns the pages of a read-only file mapping that lie wholly inside `[start, start + count)` (with `touching`: every
/// page that holds a byte of it) to the kernel; the file stays mapped and a later access reads them back. Used after
/// repacking a memory-mapped tensor, whose original is then only read by embedding lookups.
public func releaseMappedPages(_ start: UnsafeRawPointer, _ count: Int, touching: Bool = false) {
    let first = touching ? Int(bitPattern: start) / pageSize * pageSize : (Int(bitPattern: start) + pageSize - 1) / pageSize * pageSize
    let end = Int(bitPattern: start) + count
    let last = touching ? (end + pageSize - 1) / pageSize * pageSize : end / pageSize * pageSize
    guard last > first else { return }
    madvise(UnsafeMutableRawPointer(bitPattern: first), last - first, MADV_DONTNEED)
}

let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
