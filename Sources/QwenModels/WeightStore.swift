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
    /// Where this model's matrices are packed for the fast kernels.
    public let packingArena = PackingArena()

    /// The quantization mix the file was made with, as llama.cpp names it ("Q4_K_M"), if the file says.
    public private(set) var fileTypeName: String?

    public init(gguf: GGUFFile) {
        source = gguf.file.path
        isHuggingFace = false
        fileTypeName = gguf["general.file_type"]?.int.flatMap { Self.llamaFileTypes[$0] }
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

    /// Elements of all tensors (the parameter count).
    public var parameterCount: Int { tensors.values.reduce(0) { $0 + $1.elementCount } }

    /// Bytes of all tensors.
    public var byteCount: Int { tensors.values.reduce(0) { $0 + $1.byteCount } }

    /// llama.cpp's `llama_ftype` names (general.file_type).
    static let llamaFileTypes: [Int: String] = [
        0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
        12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
        19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL",
        26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16",
    ]

    /// The type holding the most bytes of 2-D weights (what a file is usually called by: "Q4_K", "F16", ...).
    public var dominantWeightType: TensorType? {
        var bytes: [TensorType: Int] = [:]
        for t in tensors.values where t.shape.count >= 2 { bytes[t.type, default: 0] += t.byteCount }
        return bytes.max { $0.value < $1.value }?.key
    }

    /// Maps a Hugging Face tensor name to the GGUF name llama.cpp's converter gives it, nil for tensors we
    /// do not use. Multimodal wrappers ("model.language_model.", "language_model.model.") are stripped.
    public static func ggufName(huggingFace name: String) -> String? {
        if let v1 = qwenV1GGUFName(huggingFace: name) { return v1 }
        if let vision = visionGGUFName(huggingFace: name) { return vision }  // Qwen2-VL towers (Qwen2VLVision.swift)
        if let vision = qwenVLVisionGGUFName(huggingFace: name) { return vision }  // Qwen-VL (QwenVLVision.swift)
        if let audio = audioGGUFName(huggingFace: name) { return audio }  // Qwen2AudioEncoder.swift
        if let audio = qwenAudioGGUFName(huggingFace: name) { return audio }  // Qwen-Audio, the same file
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
        if let expert = expertName(huggingFace: suffix) { return "blk.\(layer).\(expert)" }
        guard let mapped = layerNames.first(where: { $0.hf == suffix }) else { return nil }
        return "blk.\(layer).\(mapped.gguf)"
    }

    /// The Hugging Face name of a GGUF tensor name (for messages), nil if unknown.
    public static func huggingFaceName(gguf name: String) -> String? {
        if let v1 = qwenV1HuggingFaceName(gguf: name) { return v1 }
        if let global = globalNames.first(where: { $0.gguf == name }) {
            return global.hf == "lm_head.weight" ? global.hf : "model." + global.hf
        }
        let parts = name.split(separator: ".", maxSplits: 2)
        guard parts.count == 3, parts[0] == "blk", let layer = Int(parts[1]) else { return nil }
        if let expert = expertName(gguf: parts[2]) { return "model.layers.\(layer).\(expert)" }
        guard let mapped = layerNames.first(where: { $0.gguf == parts[2] }) else { return nil }
        return "model.layers.\(layer).\(mapped.hf)"
    }

    /// One expert's matrix in the hub layout, `mlp.experts.E.gate_proj.weight`, is named `ffn_gate.E.weight`
    /// (llama.cpp's per-expert name before it stacked experts into `ffn_gate_exps`).
    static func expertName(huggingFace suffix: Substring) -> String? {
        let prefix = "mlp.experts."
        guard suffix.hasPrefix(prefix) else { return nil }
        let rest = suffix.dropFirst(prefix.count)
        guard let dot = rest.firstIndex(of: "."), let expert = Int(rest[..<dot]), expert >= 0 else { return nil }
        let tail = rest[rest.index(after: dot)...]
        guard let mapped = expertNames.first(where: { $0.hf == tail }) else { return nil }
        return "\(mapped.gguf).\(expert).weight"
    }

    static func expertName(gguf suffix: Substring) -> String? {
        let parts = suffix.split(separator: ".")
        guard parts.count == 3, parts[2] == "weight", let expert = Int(parts[1]),
              let mapped = expertNames.first(where: { $0.gguf == parts[0] }) else { return nil }
        return "mlp.experts.\(expert).\(mapped.hf)"
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
        // mixture of experts (Qwen2-MoE, Qwen3-MoE): router, stacked experts as transformers 5 holds them
        // (`save_pretrained(save_original_format: False)`: gate and up in one [experts, 2·ff, hidden] tensor),
        // Qwen2-MoE's shared expert and its gate
        ("mlp.gate.weight", "ffn_gate_inp.weight"),
        ("mlp.experts.gate_up_proj", "ffn_gate_up_exps.weight"),
        ("mlp.experts.down_proj", "ffn_down_exps.weight"),
        ("mlp.shared_expert.gate_proj.weight", "ffn_gate_shexp.weight"),
        ("mlp.shared_expert.up_proj.weight", "ffn_up_shexp.weight"),
        ("mlp.shared_expert.down_proj.weight", "ffn_down_shexp.weight"),
        ("mlp.shared_expert_gate.weight", "ffn_gate_inp_shexp.weight"),
    ]

    /// Per-expert matrices of the hub layout (`mlp.experts.E.<hf>` → `blk.N.<gguf>.E.weight`).
    private static let expertNames: [(hf: Substring, gguf: Substring)] = [
        ("gate_proj.weight", "ffn_gate"), ("up_proj.weight", "ffn_up"), ("down_proj.weight", "ffn_down"),
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
