#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Writes GGUF v3 files: metadata in insertion order, then tensor infos and aligned tensor data. Tensor data is
/// either given as bytes or produced while writing (`addTensor(name:type:shape:produce:)`), so a converter never
/// holds more than one tensor in memory.
public struct GGUFWriter {
    public var metadata: [(key: String, value: GGUFValue)] = []
    /// Fills the tensor's bytes (exactly `type.byteCount(elements:)` of them) into the buffer it is given.
    public typealias Producer = (UnsafeMutableRawBufferPointer) throws -> Void
    private var tensors: [(name: String, type: TensorType, shape: [Int], byteCount: Int, produce: Producer)] = []
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

    public mutating func remove(_ key: String) { metadata.removeAll { $0.key == key } }

    /// Adds a tensor; `shape` is outermost first and `bytes` must hold exactly its data.
    public mutating func addTensor(name: String, type: TensorType, shape: [Int], bytes: [UInt8]) throws {
        try addTensor(name: name, type: type, shape: shape) { out in
            bytes.withUnsafeBytes { out.copyMemory(from: $0) }
        }
        guard tensors.last!.byteCount == bytes.count else {
            tensors.removeLast()
            throw QwenError.invalidArgument("tensor '\(name)': \(bytes.count) bytes do not match \(type.name) \(shape)")
        }
    }

    /// Adds a tensor whose bytes `produce` writes when the file is written.
    public mutating func addTensor(name: String, type: TensorType, shape: [Int], produce: @escaping Producer) throws {
        guard let n = elementCount(shape), let bytes = type.byteCount(elements: n) else {
            throw QwenError.invalidArgument("tensor '\(name)': \(shape) is not a whole number of \(type.name) blocks")
        }
        tensors.append((name, type, shape, bytes, produce))
    }

    /// Header, metadata and tensor infos, padded to the alignment.
    private func header() -> [UInt8] {
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
            case let .stringArray(list):
                put(GGUFValueType.string.rawValue)
                put(UInt64(list.count))
                for i in list.indices {
                    let bytes = list.bytes(i)
                    put(UInt64(bytes.count))
                    out.append(contentsOf: bytes)
                }
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
        for t in tensors {
            putString(t.name)
            put(UInt32(t.shape.count))
            for d in t.shape.reversed() { put(UInt64(d)) }
            put(t.type.rawValue)
            put(UInt64(offset))
            offset = padded(offset + t.byteCount)
        }
        out.append(contentsOf: [UInt8](repeating: 0, count: padded(out.count) - out.count))
        return out
    }

    private func padded(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }

    /// Writes the file piece by piece through `sink`, producing one tensor at a time into a reused buffer.
    private func emit(_ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        try header().withUnsafeBytes { try sink($0) }
        let largest = tensors.map { padded($0.byteCount) }.max() ?? 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(largest, 1), alignment: 64)
        defer { buffer.deallocate() }
        for t in tensors {
            let size = padded(t.byteCount)
            buffer.baseAddress!.initializeMemory(as: UInt8.self, repeating: 0, count: size)
            try t.produce(UnsafeMutableRawBufferPointer(rebasing: buffer[0 ..< t.byteCount]))
            try sink(UnsafeRawBufferPointer(rebasing: buffer[0 ..< size]))
        }
    }

    public func serialize() throws -> [UInt8] {
        var out: [UInt8] = []
        try emit { out.append(contentsOf: $0) }
        return out
    }

    /// Writes to `path` (through a temporary file renamed into place, so a failed write leaves no partial file).
    public func write(to path: String) throws {
        let temporary = path + ".part"
        guard let f = fopen(temporary, "wb") else { throw QwenError.io("cannot create '\(temporary)'") }
        do {
            try emit { chunk in
                guard fwrite(chunk.baseAddress, 1, chunk.count, f) == chunk.count else {
                    throw QwenError.io("cannot write '\(temporary)' (disk full?)")
                }
            }
        } catch {
            fclose(f)
            unlink(temporary)
            throw error
        }
        guard fclose(f) == 0 else {
            unlink(temporary)
            throw QwenError.io("cannot write '\(temporary)'")
        }
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw QwenError.io("cannot rename '\(temporary)' to '\(path)'")
        }
    }
}
