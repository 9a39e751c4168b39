import QwenFormats
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

    public init(gguf: GGUFFile) {
        source = gguf.file.path
        for t in gguf.tensors { tensors[t.name] = t }
        owners = [gguf]
    }

    /// Loads every safetensors shard of a Hugging Face folder (index file, single file, or all *.safetensors).
    public init(huggingFaceFolder folder: String, map: Bool) throws {
        source = folder
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
                tensors[mapped] = TensorData(name: mapped, type: t.type, shape: t.shape, data: t.data, byteCount: t.byteCount)
            }
        }
    }

    public func tensor(_ name: String) -> TensorData? { tensors[name] }

    public func require(_ name: String) throws -> TensorData {
        guard let t = tensors[name] else { throw QwenError.format("'\(source)' lacks tensor '\(name)'") }
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
        switch n {
        case "lm_head.weight": return "output.weight"
        case "embed_tokens.weight": return "token_embd.weight"
        case "norm.weight": return "output_norm.weight"
        default: break
        }
        guard n.hasPrefix("layers.") else { return nil }
        let rest = n.dropFirst("layers.".count)
        guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]) else { return nil }
        let suffixes: [Substring: String] = [
            "input_layernorm.weight": "attn_norm.weight",
            "post_attention_layernorm.weight": "ffn_norm.weight",
            "self_attn.q_proj.weight": "attn_q.weight", "self_attn.q_proj.bias": "attn_q.bias",
            "self_attn.k_proj.weight": "attn_k.weight", "self_attn.k_proj.bias": "attn_k.bias",
            "self_attn.v_proj.weight": "attn_v.weight", "self_attn.v_proj.bias": "attn_v.bias",
            "self_attn.o_proj.weight": "attn_output.weight",
            "self_attn.q_norm.weight": "attn_q_norm.weight", "self_attn.k_norm.weight": "attn_k_norm.weight",
            "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
            "mlp.down_proj.weight": "ffn_down.weight",
        ]
        guard let mapped = suffixes[rest[rest.index(after: dot)...]] else { return nil }
        return "blk.\(layer).\(mapped)"
    }
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
