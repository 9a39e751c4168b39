#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The bytes of a whole file: memory-mapped read-only, or read into memory when mapping is off.
/// Immutable once made, so it can be shared by threads.
public final class FileBytes: @unchecked Sendable {
    public let path: String
    public let base: UnsafeRawPointer
    public let count: Int
    /// Whether the bytes are a read-only mapping of the file (rather than a copy in memory).
    public let isMapped: Bool

    public var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    public init(path: String, map: Bool = true) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw QwenError.io("cannot open '\(path)': \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw QwenError.io("cannot stat '\(path)'") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw QwenError.io("'\(path)' is not a regular file") }
        let size = Int(st.st_size)
        if size == 0 {
            // mmap refuses empty files; an empty file is still a valid (if useless) input
            base = UnsafeRawPointer(UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 64))
            count = 0
            isMapped = false
            return
        }
        if map {
            let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
            guard let p, p != MAP_FAILED else { throw QwenError.io("cannot map '\(path)' (\(size) bytes)") }
            base = UnsafeRawPointer(p)
            isMapped = true
        } else {
            guard let p = aligned_alloc_bytes(size) else {
                throw QwenError.outOfMemory("cannot allocate \(size) bytes to read '\(path)'")
            }
            var done = 0
            while done < size {
                let n = read(fd, p + done, size - done)
                if n <= 0 {
                    free(p)
                    throw QwenError.io("read error in '\(path)'")
                }
                done += n
            }
            base = UnsafeRawPointer(p)
            isMapped = false
        }
        count = size
    }

    deinit {
        if isMapped {
            munmap(UnsafeMutableRawPointer(mutating: base), count)
        } else {
            free(UnsafeMutableRawPointer(mutating: base))
        }
    }
}

/// posix_memalign to 64 bytes, nil on failure (never traps).
public func aligned_alloc_bytes(_ size: Int) -> UnsafeMutableRawPointer? {
    var p: UnsafeMutableRawPointer?
    guard posix_memalign(&p, 64, max(size, 1)) == 0 else { return nil }
    return p
}

/// Reads a small text file (configs, templates) as UTF-8, with a size cap.
public func readTextFile(_ path: String, limit: Int = 64 << 20) throws -> String {
    let file = try FileBytes(path: path, map: true)
    guard file.count <= limit else { throw QwenError.format("'\(path)' is larger than \(limit) bytes") }
    return String(decoding: file.buffer, as: UTF8.self)
}

public func fileExists(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0
}

public func isDirectory(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
}

/// A bounds-checked little-endian cursor over bytes; every read past the end throws a format error.
public struct ByteReader {
    public let bytes: UnsafeRawBufferPointer
    public var offset: Int
    public let what: String

    public init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0, what: String) {
        self.bytes = bytes
        self.offset = offset
        self.what = what
    }

    public var remaining: Int { bytes.count - offset }

    public mutating func require(_ n: Int, _ item: @autoclosure () -> String) throws {
        guard n >= 0, n <= remaining else {
            throw QwenError.format("\(what): truncated while reading \(item()) at offset \(offset)")
        }
    }

    public mutating func read<T: FixedWidthInteger>(_: T.Type, _ item: @autoclosure () -> String) throws -> T {
        try require(MemoryLayout<T>.size, item())
        let v = bytes.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
        return T(littleEndian: v)
    }

    public mutating func readFloat(_ item: @autoclosure () -> String) throws -> Float {
        Float(bitPattern: try read(UInt32.self, item()))
    }

    public mutating func readDouble(_ item: @autoclosure () -> String) throws -> Double {
        Double(bitPattern: try read(UInt64.self, item()))
    }

    public mutating func readBytes(_ n: Int, _ item: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
        try require(n, item())
        let slice = UnsafeRawBufferPointer(rebasing: bytes[offset ..< offset + n])
        offset += n
        return slice
    }
}
