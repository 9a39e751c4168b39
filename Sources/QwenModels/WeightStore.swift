import QwenFormats
import QwenTensors
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The tensors of a model by GGUF name ("blk.0.attn_q.weight"), from a GGUF file or from
/// Hugging Face safetensors (whose names are mapped to GGUF names). Keeps the files mapped.
public final class WeightStore: @unchecked Sendable {
    private var tensors: [String: TensorData] = [:]
    private var owners: [AnyObject] = []
    public let source: String
    private let isHuggingFace: Bool
    /// Threads that repack weights while the model loads (nil: the loading thread alone).
    public var loadPool: ThreadPool?

    public init(gguf: GGUFFile) {
        source = gguf.file.path
        isHuggingFace = false
        for t in gguf.tensors { tensors[t.name] = t }
        owners = [gguf]
    }

    /// Loads every safetensors shard of a Hugging Face folder (index file, single file, or all *.safetensors).
    public init(huggingFaceFolder folder: String, map: Bool) throws {
        source = folder
        isHuggingFace = true
        var files: [String] = []
        let indexPath = folder + "/model.safetensors.index.json"
        if fileExists(indexPath) {
            let index = try JSON.parseFile(indexPath)
            guard let weightMap = index["weight_map"]?.object else {
                throw QwenError.format("'\(indexPath)' has no weight_map")
            }
            for (_, file) in weightMap {
                guard let name = file.string, !name.contains("/") else {
                    throw QwenError.format("'\(indexPath)' names an invalid shard")
                }
                if !files.contains(name) { files.append(name) }
            }
        } else if fileExists(folder + "/model.safetensors") {
            files = ["model.safetensors"]
        } else {
            files = listDirectory(folder).filter { $0.hasSuffix(".safetensors") }.sorted()
        }
        guard !files.isEmpty else { throw QwenError.format("'\(folder)' contains no .safetensors weights") }
        for name in files {
            let shard = try SafetensorsFile(path: folder + "/" + name, map: map)
            owners.append(shard)
            for t in shard.tensors {
                guard let mapped = Self.ggufName(huggingFace: t.name) else { continue }
                var data = t.data
                var isFileMapped = t.isFileMapped
                // safetensors does not promise aligned data; kernels may read elements in place
                if Int(bitPattern: data) % t.type.blockBytes != 0 {
                    isFileMapped = false
                    let copy = try AlignedBuffer<UInt8>(count: t.byteCount, what: "a copy of '\(t.name)'")
                    copy.raw.copyMemory(from: data, byteCount: t.byteCount)
                    owners.append(copy)
                    data = UnsafeRawPointer(copy.raw)
                }
                tensors[mapped] = TensorData(name: mapped, type: t.type, shape: t.shape, data: data, byteCount: t.byteCount,
                                             isFileMapped: isFileMapped)
            }
        }
    }

    public func tensor(_ name: String) -> TensorData? { tensors[name] }

    public func require(_ name: String) throws -> TensorData {
        guard let t = tensors[name] else {
            let hf = isHuggingFace ? Self.huggingFaceName(gguf: name).map { " (\($0))" } ?? "" : ""
            throw QwenError.format("'\(source)' lacks tensor '\(name)'\(hf)")
        }
        return t
    }

    public var names: [String] { Array(tensors.keys) }

    /// Maps a Hugging Face tensor name to the GGUF name llama.cpp's converter gives it, nil for tensors we
    /// do not use. Multimodal wrappers ("model.language_model.", "language_model.model.") are stripped.
    public static func ggufName(huggingFace name: String) -> String? {
        var n = Substring(name)
        for prefix in ["model.language_model.", "language_model.model.", "language_model.", "model."] where n.hasPrefix(prefix) {
            n = n.dropFirst(prefix.count)
            break
        }
        if let global = globalNames.first(where: { $0.hf == n }) { return global.gguf }
        guard n.hasPrefix("layers.") else { return nil }
        let rest = n.dropFirst("layers.".count)
        guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]) else { return nil }
        let suffix = rest[rest.index(after: dot)...]
        guard let mapped = layerNames.first(where: { $0.hf == suffix }) else { return nil }
        return "blk.\(layer).\(mapped.gguf)"
    }

    /// The Hugging Face name of a GGUF tensor name (for messages), nil if unknown.
    public static func huggingFaceName(gguf name: String) -> String? {
        if let global = globalNames.first(where: { $0.gguf == name }) {
            return global.hf == "lm_head.weight" ? global.hf : "model." + global.hf
        }
        let parts = name.split(separator: ".", maxSplits: 2)
        guard parts.count == 3, parts[0] == "blk", let layer = Int(parts[1]),
              let mapped = layerNames.first(where: { $0.gguf == parts[2] }) else { return nil }
        return "model.layers.\(layer).\(mapped.hf)"
    }

    private static let globalNames: [(hf: String, gguf: String)] = [
        ("lm_head.weight", "output.weight"),
        ("embed_tokens.weight", "token_embd.weight"),
        ("norm.weight", "output_norm.weight"),
    ]

    private static let layerNames: [(hf: String, gguf: String)] = [
        ("input_layernorm.weight", "attn_norm.weight"),
        ("post_attention_layernorm.weight", "ffn_norm.weight"),
        ("self_attn.q_proj.weight", "attn_q.weight"), ("self_attn.q_proj.bias", "attn_q.bias"),
        ("self_attn.k_proj.weight", "attn_k.weight"), ("self_attn.k_proj.bias", "attn_k.bias"),
        ("self_attn.v_proj.weight", "attn_v.weight"), ("self_attn.v_proj.bias", "attn_v.bias"),
        ("self_attn.o_proj.weight", "attn_output.weight"),
        ("self_attn.q_norm.weight", "attn_q_norm.weight"), ("self_attn.k_norm.weight", "attn_k_norm.weight"),
        ("mlp.gate_proj.weight", "ffn_gate.weight"), ("mlp.up_proj.weight", "ffn_up.weight"),
        ("mlp.down_proj.weight", "ffn_down.weight"),
    ]
}

func listDirectory(_ path: String) -> [String] {
    guard let dir = opendir(path) else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafePointer(to: entry.pointee.d_name) {
            $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}
