import QwenFormats
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Owned, 64-byte aligned, zero-initialised memory for `count` elements of `T` (a trivial type).
/// Allocation failure is an error, never a crash.
public final class AlignedBuffer<T>: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<T>
    public let count: Int

    public init(count: Int, what: String = "buffer") throws {
        let (bytes, overflow) = max(count, 1).multipliedReportingOverflow(by: MemoryLayout<T>.stride)
        guard count >= 0, !overflow, let raw = aligned_alloc_bytes(bytes) else {
            throw QwenError.outOfMemory("cannot allocate \(what) (\(count) x \(MemoryLayout<T>.stride) bytes)")
        }
        memset(raw, 0, bytes)
        pointer = raw.bindMemory(to: T.self, capacity: max(count, 1))
        self.count = count
    }

    deinit { free(pointer) }

    public var raw: UnsafeMutableRawPointer { UnsafeMutableRawPointer(pointer) }
    public var buffer: UnsafeMutableBufferPointer<T> { UnsafeMutableBufferPointer(start: pointer, count: count) }
}
