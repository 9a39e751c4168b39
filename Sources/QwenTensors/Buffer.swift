import QwenFormats
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
            let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            guard let p, p != MAP_FAILED else {
                throw QwenError.outOfMemory("cannot allocate \(what) (\(bytes) bytes)")
            }
            madvise(p, bytes, MADV_HUGEPAGE)  // fewer page faults and TLB misses for weights and caches
            raw = p
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
