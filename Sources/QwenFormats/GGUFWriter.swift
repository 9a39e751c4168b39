#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Writes GGUF v3 files: metadata in insertion order, then tensor infos and aligned tensor data.
public struct GGUFWriter {
    public var metadata: [(key: String, value: GGUFValue)] = []
    private var tensors: [(name: String, type: TensorType, shape: [Int], bytes: [UInt8])] = []
    public var alignment = 32

    public init() {}

    public mutating func set(_ key: String, _ value: GGUFValue) {
        if let i = metadata.firstIndex(where: { $0.key == key }) {
            metadata[i].value = value
        } else {
            metadata.append((key, value))
        }
        if key == "general.alignment", let a = value.int { alignment = a }
    }

    /// Adds a tensor; `shape` is outermost first and `bytes` must hold exactly its data.
    public mutating func addTensor(name: String, type: TensorType, shape: [Int], bytes: [UInt8]) throws {
        guard let n = elementCount(shape), type.byteCount(elements: n) == bytes.count else {
            throw QwenError.invalidArgument("tensor '\(name)': \(bytes.count) bytes do not match \(type.name) \(shape)")
        }
        tensors.append((name, type, shape, bytes))
    }

    public func serialize() -> [UInt8] {
        var out: [UInt8] = []
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func putString(_ s: String) { put(UInt64(s.utf8.count)); out.append(contentsOf: s.utf8) }
        func putValue(_ v: GGUFValue) {
            switch v {
            case let .int(x, t):
                switch t {
                case .int8: put(Int8(truncatingIfNeeded: x))
                case .int16: put(Int16(truncatingIfNeeded: x))
                case .int32: put(Int32(truncatingIfNeeded: x))
                default: put(x)
                }
            case let .uint(x, t):
                switch t {
                case .uint8: put(UInt8(truncatingIfNeeded: x))
                case .uint16: put(UInt16(truncatingIfNeeded: x))
                case .uint32: put(UInt32(truncatingIfNeeded: x))
                default: put(x)
                }
            case let .float(x, t):
                if t == .float32 { put(Float(x).bitPattern) } else { put(x.bitPattern) }
            case let .bool(b): put(UInt8(b ? 1 : 0))
            case let .string(s): putString(s)
            case let .array(t, items):
                put(t.rawValue)
                put(UInt64(items.count))
                for item in items { putValue(item) }
            }
        }
        put(UInt32(0x4655_4747))
        put(UInt32(3))
        put(UInt64(tensors.count))
        put(UInt64(metadata.count))
        for (key, value) in metadata {
            putString(key)
            put(value.type.rawValue)
            putValue(value)
        }
        var offset = 0
        var offsets: [Int] = []
        for t in tensors {
            putString(t.name)
            put(UInt32(t.shape.count))
            for d in t.shape.reversed() { put(UInt64(d)) }
            put(t.type.rawValue)
            put(UInt64(offset))
            offsets.append(offset)
            offset = (offset + t.bytes.count + alignment - 1) / alignment * alignment
        }
        while out.count % alignment != 0 { out.append(0) }
        let dataStart = out.count
        for (t, o) in zip(tensors, offsets) {
            while out.count < dataStart + o { out.append(0) }
            out.append(contentsOf: t.bytes)
        }
        return out
    }

    public func write(to path: String) throws {
        let bytes = serialize()
        guard let f = fopen(path, "wb") else { throw QwenError.io("cannot create '\(path)'") }
        let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
        let closed = fclose(f)
        guard written == bytes.count, closed == 0 else { throw QwenError.io("cannot write '\(path)'") }
    }
}
