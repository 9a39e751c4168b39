/// GGUF metadata value types.
public enum GGUFValueType: UInt32, Sendable {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7
    case string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64: return 8
        case .string, .array: return nil
        }
    }
}

/// A GGUF metadata value. Integers keep their declared type so a file can be written back unchanged.
/// (Not `indirect`: arrays already live on the heap, and boxing every element would cost an allocation per
/// element of a token list.) A file read from disk gives its arrays of strings as `stringArray`, which reads them
/// in place; `array` gives every array as values.
public enum GGUFValue: Sendable, Equatable {
    case int(Int64, GGUFValueType)
    case uint(UInt64, GGUFValueType)
    case float(Double, GGUFValueType)
    case bool(Bool)
    case string(String)
    case array(GGUFValueType, [GGUFValue])
    case stringArray(GGUFStrings)

    public var type: GGUFValueType {
        switch self {
        case let .int(_, t), let .uint(_, t), let .float(_, t): return t
        case .bool: return .bool
        case .string: return .string
        case .array, .stringArray: return .array
        }
    }

    /// Equal values, however an array of strings is held.
    public static func == (a: GGUFValue, b: GGUFValue) -> Bool {
        switch (a, b) {
        case let (.int(x, s), .int(y, t)): return x == y && s == t
        case let (.uint(x, s), .uint(y, t)): return x == y && s == t
        case let (.float(x, s), .float(y, t)): return x == y && s == t
        case let (.bool(x), .bool(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(s, x), .array(t, y)): return s == t && x == y
        case let (.stringArray(x), .stringArray(y)): return Array(x) == Array(y)
        case let (.stringArray(x), .array(t, y)), let (.array(t, y), .stringArray(x)):
            return t == .string && Array(x) == y.map { $0.string }
        default: return false
        }
    }

    public var int: Int? {
        switch self {
        case let .int(v, _): return Int(exactly: v)
        case let .uint(v, _): return Int(exactly: v)
        case let .bool(b): return b ? 1 : 0
        default: return nil
        }
    }

    public var double: Double? {
        switch self {
        case let .float(v, _): return v
        case let .int(v, _): return Double(v)
        case let .uint(v, _): return Double(v)
        default: return nil
        }
    }

    public var bool: Bool? {
        switch self {
        case let .bool(b): return b
        case let .int(v, _): return v != 0
        case let .uint(v, _): return v != 0
        default: return nil
        }
    }

    public var string: String? { if case let .string(s) = self { return s }; return nil }
    public var array: [GGUFValue]? {
        switch self {
        case let .array(_, a): return a
        case let .stringArray(list): return list.map { .string($0) }
        default: return nil
        }
    }
    /// An array of strings in place in the file, nil for any other value.
    public var stringList: GGUFStrings? { if case let .stringArray(list) = self { return list }; return nil }
    public var strings: [String]? { stringList.map(Array.init) ?? array?.compactMap(\.string) }
    public var ints: [Int]? { array?.compactMap(\.int) }
}

/// A parsed GGUF file (v2 or v3): metadata in file order and tensors pointing into the mapped bytes.
public final class GGUFFile: @unchecked Sendable {
    public let file: FileBytes
    public let version: UInt32
    public let metadata: [(key: String, value: GGUFValue)]
    public let tensors: [TensorData]
    public let alignment: Int
    private let metadataIndex: [String: Int]
    private let tensorIndex: [String: Int]

    /// Hard caps that keep a hostile header from making us allocate: counts are also checked
    /// against the bytes actually left in the file.
    public static let maxTensorCount = 1 << 20
    public static let maxMetadataCount = 1 << 20
    public static let maxStringBytes = 1 << 26
    /// Elements of one metadata array (a token list has at most 2^20, a merge list at most 2^22).
    public static let maxArrayElements = 1 << 23

    public convenience init(path: String, map: Bool = true) throws {
        try self.init(file: FileBytes(path: path, map: map))
    }

    public init(file: FileBytes) throws {
        self.file = file
        var r = ByteReader(file.buffer, what: "GGUF '\(file.path)'")
        let magic = try r.read(UInt32.self, "magic")
        guard magic == 0x4655_4747 else { throw QwenError.format("'\(file.path)' is not a GGUF file (bad magic)") }
        version = try r.read(UInt32.self, "version")
        guard version == 2 || version == 3 else {
            throw QwenError.unsupported("'\(file.path)': GGUF version \(version) is not supported (2 and 3 are)")
        }
        let tensorCount = try r.read(UInt64.self, "tensor count")
        let kvCount = try r.read(UInt64.self, "metadata count")
        // every metadata entry takes at least 8+4+1 bytes, every tensor info at least 8+4+8+4+8
        guard tensorCount <= UInt64(Self.maxTensorCount), tensorCount <= UInt64(r.remaining / 32) else {
            throw QwenError.format("'\(file.path)': implausible tensor count \(tensorCount)")
        }
        guard kvCount <= UInt64(Self.maxMetadataCount), kvCount <= UInt64(r.remaining / 13) else {
            throw QwenError.format("'\(file.path)': implausible metadata count \(kvCount)")
        }
        var metadata: [(key: String, value: GGUFValue)] = []
        metadata.reserveCapacity(Int(kvCount))
        var metadataIndex: [String: Int] = [:]
        for _ in 0 ..< Int(kvCount) {
            let key = try Self.readString(&r, "metadata key")
            let rawType = try r.read(UInt32.self, "type of '\(key)'")
            guard let type = GGUFValueType(rawValue: rawType) else {
                throw QwenError.format("'\(file.path)': metadata '\(key)' has unknown type \(rawType)")
            }
            let value = try Self.readValue(&r, in: file, type: type, key: key, depth: 0)
            metadataIndex[key] = metadata.count
            metadata.append((key, value))
        }
        var alignment = 32
        if let i = metadataIndex["general.alignment"] {
            guard let a = metadata[i].value.int, a > 0, a <= 1 << 16, a & (a - 1) == 0 else {
                throw QwenError.format("'\(file.path)': invalid general.alignment")
            }
            alignment = a
        }
        struct Info { var name: String; var type: TensorType; var shape: [Int]; var offset: UInt64 }
        var infos: [Info] = []
        infos.reserveCapacity(Int(tensorCount))
        for _ in 0 ..< Int(tensorCount) {
            let name = try Self.readString(&r, "tensor name")
            let nDims = try r.read(UInt32.self, "dimension count of '\(name)'")
            guard nDims >= 1, nDims <= 4 else {
                throw QwenError.format("'\(file.path)': tensor '\(name)' has \(nDims) dimensions")
            }
            var ne: [Int] = []
            for _ in 0 ..< nDims {
                let d = try r.read(UInt64.self, "dimension of '\(name)'")
                guard d <= UInt64(Int32.max) else { throw QwenError.format("'\(file.path)': tensor '\(name)' dimension \(d) too large") }
                ne.append(Int(d))
            }
            let rawType = try r.read(UInt32.self, "type of '\(name)'")
            guard let type = TensorType(rawValue: rawType) else {
                throw QwenError.unsupported("'\(file.path)': tensor '\(name)' has unsupported type \(rawType)")
            }
            let offset = try r.read(UInt64.self, "offset of '\(name)'")
            // GGUF lists dimensions innermost first; we keep PyTorch order (outermost first)
            infos.append(Info(name: name, type: type, shape: ne.reversed(), offset: offset))
        }
        let dataStart = (r.offset + alignment - 1) / alignment * alignment
        var tensors: [TensorData] = []
        var tensorIndex: [String: Int] = [:]
        tensors.reserveCapacity(infos.count)
        for info in infos {
            guard let n = elementCount(info.shape), let bytes = info.type.byteCount(elements: n),
                  info.shape.last.map({ $0 % info.type.blockSize == 0 }) ?? true
            else {
                throw QwenError.format("'\(file.path)': tensor '\(info.name)' shape \(info.shape) does not fit type \(info.type.name)")
            }
            guard info.offset % UInt64(alignment) == 0,
                  info.offset <= UInt64(file.count),
                  UInt64(dataStart) + info.offset + UInt64(bytes) <= UInt64(file.count)
            else {
                throw QwenError.format("'\(file.path)': data of tensor '\(info.name)' lies outside the file (truncated?)")
            }
            guard tensorIndex[info.name] == nil else {
                throw QwenError.format("'\(file.path)': duplicate tensor '\(info.name)'")
            }
            tensorIndex[info.name] = tensors.count
            tensors.append(TensorData(name: info.name, type: info.type, shape: info.shape,
                                      data: file.base + dataStart + Int(info.offset), byteCount: bytes, isFileMapped: file.isMapped))
        }
        self.metadata = metadata
        self.metadataIndex = metadataIndex
        self.tensors = tensors
        self.tensorIndex = tensorIndex
        self.alignment = alignment
    }

    public subscript(key: String) -> GGUFValue? {
        metadataIndex[key].map { metadata[$0].value }
    }

    public func tensor(_ name: String) -> TensorData? {
        tensorIndex[name].map { tensors[$0] }
    }

    static func readString(_ r: inout ByteReader, _ item: @autoclosure () -> String) throws -> String {
        let n = try r.read(UInt64.self, item())
        guard n <= UInt64(maxStringBytes), n <= UInt64(r.remaining) else {
            throw QwenError.format("\(r.what): \(item()) claims \(n) bytes, more than the file holds")
        }
        return String(decoding: try r.readBytes(Int(n), item()), as: UTF8.self)
    }

    /// The value at `r` (a reader over all of `file`'s bytes).
    static func readValue(_ r: inout ByteReader, in file: FileBytes, type: GGUFValueType, key: String, depth: Int) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint(UInt64(try r.read(UInt8.self, key)), type)
        case .int8: return .int(Int64(try r.read(Int8.self, key)), type)
        case .uint16: return .uint(UInt64(try r.read(UInt16.self, key)), type)
        case .int16: return .int(Int64(try r.read(Int16.self, key)), type)
        case .uint32: return .uint(UInt64(try r.read(UInt32.self, key)), type)
        case .int32: return .int(Int64(try r.read(Int32.self, key)), type)
        case .uint64: return .uint(try r.read(UInt64.self, key), type)
        case .int64: return .int(try r.read(Int64.self, key), type)
        case .float32: return .float(Double(try r.readFloat(key)), type)
        case .float64: return .float(try r.readDouble(key), type)
        case .bool:
            let b = try r.read(UInt8.self, key)
            guard b <= 1 else { throw QwenError.format("\(r.what): '\(key)' has an invalid bool \(b)") }
            return .bool(b == 1)
        case .string: return .string(try readString(&r, "'\(key)'"))
        case .array:
            guard depth < 4 else { throw QwenError.format("\(r.what): '\(key)' nests arrays too deeply") }
            let rawType = try r.read(UInt32.self, key)
            guard let elementType = GGUFValueType(rawValue: rawType) else {
                throw QwenError.format("\(r.what): array '\(key)' has unknown element type \(rawType)")
            }
            let count = try r.read(UInt64.self, key)
            let minSize = UInt64(elementType.fixedSize ?? (elementType == .string ? 8 : 12))
            guard count <= UInt64(r.remaining) / minSize else {
                throw QwenError.format("\(r.what): array '\(key)' claims \(count) elements, more than the file holds")
            }
            guard count <= UInt64(maxArrayElements) else {
                throw QwenError.format("\(r.what): array '\(key)' has \(count) elements, more than \(maxArrayElements)")
            }
            if elementType == .string { return .stringArray(try GGUFStrings(&r, in: file, count: Int(count), key: key)) }
            var items: [GGUFValue] = []
            items.reserveCapacity(Int(count))
            for _ in 0 ..< Int(count) {
                items.append(try readValue(&r, in: file, type: elementType, key: key, depth: depth + 1))
            }
            return .array(elementType, items)
        }
    }
}

/// An array of strings read in place from a GGUF file: where each string's bytes lie, checked when the file is read.
/// (A token list and a merge list hold 10^5 strings each; making a `String` of each cost tens of milliseconds per
/// load, and the tokenizer wants their bytes anyway.)
public struct GGUFStrings: RandomAccessCollection, Sendable {
    let file: FileBytes
    /// Offset of each string's bytes in the file; its length is the 8 bytes before them.
    let offsets: [Int]

    init(_ r: inout ByteReader, in file: FileBytes, count: Int, key: String) throws {
        assert(r.bytes.baseAddress == file.buffer.baseAddress, "a reader over the whole file")
        self.file = file
        var offsets: [Int] = []
        offsets.reserveCapacity(count)
        for _ in 0 ..< count {
            let n = try r.read(UInt64.self, "'\(key)'")
            guard n <= UInt64(GGUFFile.maxStringBytes), n <= UInt64(r.remaining) else {
                throw QwenError.format("\(r.what): '\(key)' claims \(n) bytes, more than the file holds")
            }
            offsets.append(r.offset)
            r.offset += Int(n)
        }
        self.offsets = offsets
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { offsets.count }

    /// The bytes of string `i` (UTF-8 as the file has them, not checked).
    @inline(__always)
    public func bytes(_ i: Int) -> UnsafeBufferPointer<UInt8> {
        let o = offsets[i]
        let n = Int(truncatingIfNeeded: UInt64(littleEndian: file.base.loadUnaligned(fromByteOffset: o - 8, as: UInt64.self)))
        return UnsafeBufferPointer(start: (file.base + o).assumingMemoryBound(to: UInt8.self), count: n)
    }

    /// String `i`, invalid UTF-8 repaired as `String(decoding:as:)` does.
    public subscript(i: Int) -> String { String(decoding: bytes(i), as: UTF8.self) }
}
