/// A parsed `.safetensors` file: an 8-byte header length, a JSON header, then raw tensor bytes.
public final class SafetensorsFile: @unchecked Sendable {
    public let file: FileBytes
    public let tensors: [TensorData]
    public let metadata: [(key: String, value: JSON)]
    private let index: [String: Int]

    public static let maxHeaderBytes = 100 << 20

    public convenience init(path: String, map: Bool = true) throws {
        try self.init(file: FileBytes(path: path, map: map))
    }

    public init(file: FileBytes) throws {
        self.file = file
        var r = ByteReader(file.buffer, what: "safetensors '\(file.path)'")
        let headerLength = try r.read(UInt64.self, "header length")
        guard headerLength <= UInt64(Self.maxHeaderBytes), headerLength <= UInt64(r.remaining) else {
            throw QwenError.format("'\(file.path)': safetensors header of \(headerLength) bytes exceeds the file")
        }
        let header = try JSON.parse(try r.readBytes(Int(headerLength), "header"), what: "safetensors header of '\(file.path)'")
        guard let entries = header.object else { throw QwenError.format("'\(file.path)': safetensors header is not an object") }
        let dataStart = r.offset
        let dataBytes = file.count - dataStart
        var tensors: [TensorData] = []
        var index: [String: Int] = [:]
        var metadata: [(key: String, value: JSON)] = []
        for (name, entry) in entries {
            if name == "__metadata__" {
                metadata = entry.object ?? []
                continue
            }
            guard let dtype = entry["dtype"]?.string,
                  let shapeJSON = entry["shape"]?.array,
                  let offsets = entry["data_offsets"]?.array, offsets.count == 2,
                  let begin = offsets[0].int, let end = offsets[1].int
            else { throw QwenError.format("'\(file.path)': malformed header entry for '\(name)'") }
            let shape = shapeJSON.compactMap(\.int)
            guard shape.count == shapeJSON.count, shape.count <= 8, let n = elementCount(shape) else {
                throw QwenError.format("'\(file.path)': invalid shape for '\(name)'")
            }
            guard let type = Self.tensorType(dtype) else {
                throw QwenError.unsupported("'\(file.path)': tensor '\(name)' has unsupported dtype \(dtype)")
            }
            guard begin >= 0, begin <= end, end <= dataBytes, let bytes = type.byteCount(elements: n), bytes == end - begin else {
                throw QwenError.format("'\(file.path)': data of tensor '\(name)' is out of bounds or has the wrong size (truncated?)")
            }
            guard index[name] == nil else { throw QwenError.format("'\(file.path)': duplicate tensor '\(name)'") }
            index[name] = tensors.count
            tensors.append(TensorData(name: name, type: type, shape: shape, data: file.base + dataStart + begin, byteCount: bytes,
                                      isFileMapped: file.isMapped))
        }
        self.tensors = tensors
        self.index = index
        self.metadata = metadata
    }

    public func tensor(_ name: String) -> TensorData? { index[name].map { tensors[$0] } }

    static func tensorType(_ dtype: String) -> TensorType? {
        switch dtype {
        case "F32": return .f32
        case "F16": return .f16
        case "BF16": return .bf16
        case "F64": return .f64
        case "I8": return .i8
        case "I16": return .i16
        case "I32": return .i32
        case "I64": return .i64
        default: return nil
        }
    }
}
