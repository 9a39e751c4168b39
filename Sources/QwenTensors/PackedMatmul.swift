import CQwen
import QwenFormats
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A Q8_0 or Q4_0 weight matrix repacked for the AVX-512 VNNI group kernels (see cqwen.h): rows in groups
/// of 16, per block 16 F16 scales then quants interleaved by 4-byte k-groups. Same size as the original.
public final class PackedWeights: @unchecked Sendable {
    public let type: TensorType
    public let rows: Int
    public let blocks: Int
    public let groups: Int
    public let blockBytes: Int
    let storage: AlignedBuffer<UInt8>

    var groupBytes: Int { blocks * blockBytes }

    /// Whether this CPU runs the packed kernels.
    public static let isAvailable: Bool = {
        #if arch(x86_64)
        return cq_cpu_has_avx512vnni() != 0
        #else
        return false
        #endif
    }()

    public static func canPack(_ type: TensorType) -> Bool { type == .q8_0 || type == .q4_0 }

    /// Repacks `rows` rows of `columns` elements stored at `data` (llama.cpp blocks, `rowBytes` apart).
    public init(type: TensorType, rows: Int, columns: Int, data: UnsafeRawPointer, rowBytes: Int) throws {
        precondition(Self.canPack(type))
        self.type = type
        self.rows = rows
        blocks = columns / 32
        groups = (rows + 15) / 16
        blockBytes = type == .q8_0 ? Int(CQ_PACKED_Q8_0_BLOCK) : Int(CQ_PACKED_Q4_0_BLOCK)
        storage = try AlignedBuffer(count: groups * blocks * blockBytes, what: "packed weights")
        let sourceBlock = type.blockBytes, quantBytes = sourceBlock - 2
        let dst = storage.raw
        for g in 0 ..< groups {
            for b in 0 ..< blocks {
                let out = dst + (g * blocks + b) * blockBytes
                for i in 0 ..< 16 {
                    let r = g * 16 + i
                    guard r < rows else {
                        // padding rows: zero scale (and, for Q8_0, biased-zero quants)
                        if type == .q8_0 {
                            for kg in 0 ..< 8 { (out + 32 + kg * 64 + i * 4).storeBytes(of: 0x8080_8080 as UInt32, as: UInt32.self) }
                        }
                        continue
                    }
                    let src = data + r * rowBytes + b * sourceBlock
                    out.storeBytes(of: src.loadUnaligned(as: UInt16.self), toByteOffset: i * 2, as: UInt16.self)
                    for kg in 0 ..< quantBytes / 4 {
                        var v = src.loadUnaligned(fromByteOffset: 2 + kg * 4, as: UInt32.self)
                        if type == .q8_0 { v ^= 0x8080_8080 }
                        (out + 32 + kg * 64 + i * 4).storeBytes(of: v, as: UInt32.self)
                    }
                }
            }
        }
    }

    #if arch(x86_64)
    /// y[t][r] = row r · x[t] for every row, using prepared q8 rows (`act`, `actStride` bytes apart).
    func multiply(act: UnsafePointer<UInt8>, actStride: Int, tokens: Int, output y: UnsafeMutablePointer<Float>,
                  bias: UnsafePointer<Float>?, pool: ThreadPool?) {
        let threads = pool?.threadCount ?? 1
        let work = rows * blocks * 32 * tokens
        let tasksWanted = work < 1 << 16 ? 1 : threads * 4
        let groupsPerTask = max(1, (groups + tasksWanted - 1) / tasksWanted)
        let taskCount = (groups + groupsPerTask - 1) / groupsPerTask
        let base = UnsafeRawPointer(storage.raw).assumingMemoryBound(to: UInt8.self)
        let isQ8: Int32 = type == .q8_0 ? 1 : 0
        let nb = Int32(blocks), groupBytes = self.groupBytes, rows = self.rows
        let chunkGroups = max(1, (256 << 10) / groupBytes)

        func task(_ index: Int, _: Int) {
            let g0 = index * groupsPerTask, g1 = min(groups, g0 + groupsPerTask)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 8 * 16) { tail in
                // chunks of groups that stay in L2 while every token tile passes over them
              for c0 in stride(from: g0, to: g1, by: chunkGroups) {
                for t0 in stride(from: 0, to: tokens, by: 8) {
                    let tn = min(8, tokens - t0)
                    let a = act + t0 * actStride
                    for g in c0 ..< min(g1, c0 + chunkGroups) {
                        let r0 = g * 16
                        if r0 + 16 <= rows {
                            cq_group_vnni(isQ8, nb, base + g * groupBytes, a, actStride, y + t0 * rows + r0, rows, Int32(tn))
                        } else {
                            cq_group_vnni(isQ8, nb, base + g * groupBytes, a, actStride, tail.baseAddress!, 16, Int32(tn))
                            for t in 0 ..< tn {
                                for i in 0 ..< rows - r0 { y[(t0 + t) * rows + r0 + i] = tail[t * 16 + i] }
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

        if let pool, taskCount > 1 {
            pool.parallelFor(taskCount, task)
        } else {
            for i in 0 ..< taskCount { task(i, 0) }
        }
    }
    #endif
}

/// Returns the pages of `[start, start + count)` that lie wholly inside it to the kernel (the file stays
/// mapped; a later access reads them back). Used after repacking a memory-mapped tensor.
public func releaseMappedPages(_ start: UnsafeRawPointer, _ count: Int) {
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let first = (Int(bitPattern: start) + page - 1) / page * page
    let last = (Int(bitPattern: start) + count) / page * page
    guard last > first else { return }
    madvise(UnsafeMutableRawPointer(bitPattern: first), last - first, MADV_DONTNEED)
}
