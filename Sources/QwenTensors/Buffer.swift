import QwenFormats
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Owned, 64-byte aligned, zero-initialised memory for `count` elements of `T` (a trivial type).
/// Large buffers are anonymous mappings, zeroed lazily by the kernel, so untouched parts (say, the
/// unused tail of a KV cache) cost no memory. Allocation failure is an error, never a crash.
public final class AlignedBuffer<T>: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<T>
    public let count: Int
    private let mappedBytes: Int

    static var mappingThreshold: Int { 1 << 20 }

    public init(count: Int, what: String = "buffer") throws {
        let (bytes, overflow) = max(count, 1).multipliedReportingOverflow(by: MemoryLayout<T>.stride)
        guard count >= 0, !overflow else {
            throw QwenError.outOfMemory("cannot allocate \(what) (\(count) x \(MemoryLayout<T>.stride) bytes)")
        }
        let raw: UnsafeMutableRawPointer
        if bytes >= Self.mappingThreshold {
            raw = try mapHugePageMemory(bytes, what: what)
            mappedBytes = bytes
        } else {
            guard let p = aligned_alloc_bytes(bytes) else {
                throw QwenError.outOfMemory("cannot allocate \(what) (\(bytes) bytes)")
            }
            memset(p, 0, bytes)
            raw = p
            mappedBytes = 0
        }
        pointer = raw.bindMemory(to: T.self, capacity: max(count, 1))
        self.count = count
    }

    deinit {
        if mappedBytes > 0 { munmap(pointer, mappedBytes) } else { free(pointer) }
    }

    public var raw: UnsafeMutableRawPointer { UnsafeMutableRawPointer(pointer) }
    public var rawBuffer: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: raw, count: count * MemoryLayout<T>.stride) }
    public var buffer: UnsafeMutableBufferPointer<T> { UnsafeMutableBufferPointer(start: pointer, count: count) }
}

private let hugePageSize = 2 << 20

/// Maps `bytes` of zeroed anonymous memory starting on a 2 MiB boundary and asks for transparent huge pages, so
/// that every whole 2 MiB of it can be one huge page: a stream over weights then reads 5-14% faster on this class
/// of machine than over 4 KiB pages (fewer TLB misses). Unmap with `munmap(p, bytes)`.
func mapHugePageMemory(_ bytes: Int, what: String) throws -> UnsafeMutableRawPointer {
    let (padded, overflow) = bytes.addingReportingOverflow(hugePageSize)
    let p = overflow ? nil : mmap(nil, padded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    guard let p, p != MAP_FAILED else { throw QwenError.outOfMemory("cannot allocate \(what) (\(bytes) bytes)") }
    let address = Int(bitPattern: p), start = (address + hugePageSize - 1) / hugePageSize * hugePageSize
    // return the unaligned head and the unused tail
    if start > address { munmap(p, start - address) }
    let tail = start + bytes, end = address + padded
    let tailStart = (tail + pageSize - 1) / pageSize * pageSize
    if end > tailStart { munmap(UnsafeMutableRawPointer(bitPattern: tailStart), end - tailStart) }
    let aligned = UnsafeMutableRawPointer(bitPattern: start)!
    madvise(aligned, bytes, MADV_HUGEPAGE)
    return aligned
}

/// Memory for the packed weights of one model. Matrices are packed on first use, in the order a forward pass
/// reads them, and take consecutive slices of large huge-page mappings here: a decode step then streams its
/// weights as a few long runs over 2 MiB pages, instead of ~170 separate small mappings over 4 KiB pages.
/// Slices are never freed one by one; the mappings go when the model and every matrix packed in them are gone.
public final class PackingArena: @unchecked Sendable {
    private struct Region { let base: UnsafeMutableRawPointer; let bytes: Int; var used: Int }
    private let regions = Mutex<[Region]>([])
    /// Bytes reserved per mapping (address space only until written).
    static let regionBytes = 64 << 20

    public init() {}

    deinit {
        for r in regions.withLock({ $0 }) { munmap(r.base, r.bytes) }
    }

    /// A zeroed, 64-byte aligned slice of `bytes`, valid while this arena lives.
    func allocate(_ bytes: Int, what: String) throws -> UnsafeMutableRawPointer {
        let size = (max(bytes, 1) + 63) / 64 * 64
        return try regions.withLock { regions in
            if let last = regions.indices.last, regions[last].bytes - regions[last].used >= size {
                let p = regions[last].base + regions[last].used
                regions[last].used += size
                return p
            }
            let bytes = max(size, Self.regionBytes)
            let base = try mapHugePageMemory(bytes, what: what)
            // a slice larger than a region gets a mapping of its own; the current region keeps its free tail
            if size >= Self.regionBytes, !regions.isEmpty {
                regions.insert(Region(base: base, bytes: bytes, used: size), at: regions.count - 1)
            } else {
                regions.append(Region(base: base, bytes: bytes, used: size))
            }
            return base
        }
    }
}
