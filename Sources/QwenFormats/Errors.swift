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
