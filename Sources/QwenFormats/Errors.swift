#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Status codes shared with the C API (`qwen_status` in include/qwen.h).
public enum QwenStatus: Int32, Sendable {
    case ok = 0
    case invalidArgument = -1
    case io = -2
    case format = -3
    case unsupported = -4
    case outOfMemory = -5
    case contextFull = -6
    case cancelled = -7
    case bufferTooSmall = -8
}

/// The one error type of libqwen: a status for the C API and a message for people.
public struct QwenError: Error, CustomStringConvertible, Sendable {
    public let status: QwenStatus
    public let message: String

    public init(_ status: QwenStatus, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { message }

    public static func invalidArgument(_ m: String) -> QwenError { QwenError(.invalidArgument, m) }
    public static func io(_ m: String) -> QwenError { QwenError(.io, m) }
    public static func format(_ m: String) -> QwenError { QwenError(.format, m) }
    public static func unsupported(_ m: String) -> QwenError { QwenError(.unsupported, m) }
    public static func outOfMemory(_ m: String) -> QwenError { QwenError(.outOfMemory, m) }
}

extension QwenError {
    /// Throws `.outOfMemory` unless `bytes` can be mapped now (it maps and unmaps them: the kernel applies the
    /// address-space limit and its overcommit policy; a malloc/free pair would be optimized away). Swift arrays
    /// abort the process when an allocation fails, so work that builds large arrays from untrusted sizes checks first.
    public static func requireMemory(_ bytes: Int, for what: String) throws {
        guard bytes >= 0 else { throw QwenError.outOfMemory("cannot allocate \(what): its size overflows") }
        let p = mmap(nil, max(bytes, 1), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let p, p != MAP_FAILED else { throw QwenError.outOfMemory("cannot allocate \(what) (\(bytes) bytes)") }
        munmap(p, max(bytes, 1))
    }
}
