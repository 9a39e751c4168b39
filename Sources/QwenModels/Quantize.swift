import QwenFormats
import QwenTensors

/// A GGUF file type (`general.file_type`, llama.cpp's `llama_ftype`): a default weight type and the per-tensor
/// exceptions `llama-quantize` makes for it ("Q4_K_M" keeps attn_v and ffn_down of some layers in Q6_K, ...).
public struct QuantizationMix: Sendable, Equatable {
    public let fileType: Int
    public let name: String
    let defaultType: TensorType

    public static let all: [QuantizationMix] = [
        .init(0, "F32", .f32), .init(1, "F16", .f16), .init(32, "BF16", .bf16), .init(7, "Q8_0", .q8_0),
        .init(2, "Q4_0", .q4_0), .init(3, "Q4_1", .q4_1), .init(8, "Q5_0", .q5_0), .init(9, "Q5_1", .q5_1),
        .init(10, "Q2_K", .q2_K), .init(11, "Q3_K_S", .q3_K), .init(12, "Q3_K_M", .q3_K), .init(13, "Q3_K_L", .q3_K),
        .init(14, "Q4_K_S", .q4_K), .init(15, "Q4_K_M", .q4_K), .init(16, "Q5_K_S", .q5_K), .init(17, "Q5_K_M", .q5_K),
        .init(18, "Q6_K", .q6_K),
    ]

    private init(_ fileType: Int, _ name: String, _ defaultType: TensorType) {
        self.fileType = fileType
        self.name = name
        self.defaultType = defaultType
    }

    /// By name, ignoring case ("q4_k_m").
    public init?(name: String) {
        guard let m = Self.all.first(where: { $0.name.lowercased() == name.lowercased() }) else { return nil }
        self = m
    }

    var isQuantized: Bool { ![.f32, .f16, .bf16].contains(defaultType) }
}

/// Chooses each tensor's type the way llama.cpp's quantizer does for the mixes above (llama-quant.cpp:
/// `tensor_allows_quantization`, `llama_tensor_get_type`, `tensor_type_fallback`), so files we write hold the
/// same types as files made by `llama-quantize` from the same input. Tensors must be visited in `visitOrder`.
struct TensorTypePlanner {
    enum Category { case output, tokenEmbedding, attentionV, attentionK, attentionQ, attentionOutput, ffnDown, ffnGate, ffnUp, other }

    let mix: QuantizationMix
    let pure: Bool
    let layers: Int
    let headsPerKVHead: Int
    let experts: Int
    let isLarge70B: Bool
    let tiedEmbeddings: Bool
    let attentionVCount: Int
    private var attentionVIndex = 0
    private var ffnDownIndex = 0

    init(mix: QuantizationMix, pure: Bool, tensorNames: [String], layers: Int, heads: Int, kvHeads: Int, experts: Int,
         architecture: String) {
        self.mix = mix
        self.pure = pure
        self.layers = layers
        headsPerKVHead = kvHeads > 0 ? heads / kvHeads : 1
        self.experts = max(1, experts)
        isLarge70B = architecture == "qwen2" && layers == 80  // llama.cpp's LLM_TYPE_70B for qwen2
        tiedEmbeddings = !tensorNames.contains("output.weight")
        attentionVCount = tensorNames.filter { Self.category($0) == .attentionV }.count
    }

    /// llama.cpp's tensor order: tensors outside blocks first, then block by block, by name within each.
    static func visitOrder(_ a: String, _ b: String) -> Bool {
        let la = layer(a) ?? -1, lb = layer(b) ?? -1
        return la != lb ? la < lb : a.utf8.lexicographicallyPrecedes(b.utf8)
    }

    static func layer(_ name: String) -> Int? {
        guard name.hasPrefix("blk.") else { return nil }
        return Int(name.dropFirst(4).prefix { $0.isNumber })
    }

    static func category(_ name: String) -> Category {
        if name == "output.weight" { return .output }
        if name == "token_embd.weight" { return .tokenEmbedding }
        if name.contains("attn_qkv.weight") || name.contains("attn_kv_b.weight") || name.contains("attn_v.weight") { return .attentionV }
        if name.contains("attn_k.weight") { return .attentionK }
        if name.contains("attn_q.weight") { return .attentionQ }
        if name.contains("attn_output.weight") { return .attentionOutput }
        if name.contains("ffn_up") { return .ffnUp }
        if name.contains("ffn_gate") { return .ffnGate }
        if name.contains("ffn_down") { return .ffnDown }
        return .other
    }

    static func allowsQuantization(_ name: String, dimensions: Int) -> Bool {
        dimensions >= 2 && name.hasSuffix("weight") && !name.contains("_norm.weight") && !name.contains("ffn_gate_inp.weight")
            && !name.contains("position_embd") && !name.contains(".patch_embd") && !name.contains(".patch_merger")
    }

    private func moreBits(_ i: Int, _ n: Int) -> Bool { i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2 }

    mutating func type(for name: String, shape: [Int], current: TensorType) -> TensorType {
        guard Self.allowsQuantization(name, dimensions: shape.count) else { return current }
        var type = mix.defaultType
        guard mix.isQuantized else { return type }
        let columns = shape.last!
        if !pure { type = mixed(name, columns: columns, type: type) }
        return fallback(type, columns: columns)
    }

    private mutating func mixed(_ name: String, columns: Int, type start: TensorType) -> TensorType {
        var type = start
        let m = mix.name
        switch Self.category(name) {
        case .output,  // and the embedding when it doubles as the output
             .tokenEmbedding where tiedEmbeddings:
            if columns % type.blockSize != 0 { type = .q8_0 } else if type != .q8_0 { type = .q6_K }
        case .attentionV:
            let i = attentionVIndex, n = attentionVCount
            if m == "Q2_K" { type = headsPerKVHead >= 4 ? .q4_K : .q3_K }
            else if m == "Q3_K_M" { type = i < 2 ? .q5_K : .q4_K }
            else if m == "Q3_K_L" { type = .q5_K }
            else if (m == "Q4_K_M" || m == "Q5_K_M") && moreBits(i, n) { type = .q6_K }
            else if m == "Q4_K_S" && i < 4 { type = .q5_K }
            if isLarge70B && (type == .q3_K || type == .q4_K) { type = .q5_K }
            if experts == 8 { type = .q8_0 }
            attentionVIndex += 1
        case .attentionK:
            if experts == 8 { type = .q8_0 }
        case .ffnDown:
            let i = experts > 1 ? (Self.layer(name) ?? ffnDownIndex) : ffnDownIndex, n = layers
            if m == "Q2_K" { type = .q3_K }
            else if m == "Q3_K_M" { type = i < n / 16 ? .q5_K : .q4_K }
            else if m == "Q3_K_L" { type = .q5_K }
            else if m == "Q4_K_M" { if moreBits(i, n) { type = .q6_K } }
            else if m == "Q5_K_M" && moreBits(i, n) { type = .q6_K }
            else if m == "Q4_K_S" && i < n / 8 { type = .q5_K }
            ffnDownIndex += 1
        case .attentionOutput:
            if experts == 8 {
                if ["Q2_K", "Q3_K_S", "Q3_K_M", "Q4_K_S", "Q4_K_M"].contains(m) { type = .q5_K }
            } else if m == "Q2_K" { type = .q3_K }
            else if m == "Q3_K_M" { type = .q4_K }
            else if m == "Q3_K_L" { type = .q5_K }
        default:
            break
        }
        return type
    }

    /// Rows whose length is not a multiple of the type's block fall back to a type with smaller blocks.
    private func fallback(_ type: TensorType, columns: Int) -> TensorType {
        guard columns % type.blockSize != 0 else { return type }
        var result: TensorType
        switch type {
        case .q2_K, .q3_K: result = .q4_0
        case .q4_K: result = .q5_0
        case .q5_K: result = .q5_1
        case .q6_K: result = .q8_0
        default: result = type
        }
        if columns % result.blockSize != 0 { result = .f16 }
        return result
    }
}

/// What a conversion wrote.
public struct QuantizeSummary: Sendable {
    public var tensors = 0
    /// Tensors converted to another type (the rest were copied).
    public var converted = 0
    public var inputBytes = 0
    public var outputBytes = 0
    /// Tensor count per written type.
    public var types: [TensorType: Int] = [:]

    mutating func record(_ t: SourceTensor, as type: TensorType) {
        tensors += 1
        converted += type == t.type ? 0 : 1
        inputBytes += t.byteCount
        outputBytes += type.byteCount(elements: t.rows * t.columns) ?? 0
        types[type, default: 0] += 1
    }
}

/// A tensor to write, row by row: from a GGUF tensor, or assembled from Hugging Face tensors (stacked experts,
/// halves of fused ones). All rows have one type.
struct SourceTensor {
    let name: String
    let shape: [Int]
    let type: TensorType
    let rows: Int
    let columns: Int
    let row: (Int) -> UnsafeRawPointer

    var byteCount: Int { rows * (type.byteCount(elements: columns) ?? 0) }

    init(name: String, shape: [Int], type: TensorType, row: @escaping (Int) -> UnsafeRawPointer) throws {
        guard let columns = shape.last, columns > 0, let n = elementCount(shape), type.byteCount(elements: columns) != nil else {
            throw QwenError.format("tensor '\(name)': rows of \(shape.last ?? 0) are not whole \(type.name) blocks")
        }
        self.name = name
        self.shape = shape
        self.type = type
        self.columns = columns
        rows = n / columns
        self.row = row
    }

    init(_ t: TensorData) throws {
        let rowBytes = t.type.byteCount(elements: t.shape.last ?? 1) ?? 0
        try self.init(name: t.name, shape: t.shape, type: t.type) { t.data + $0 * rowBytes }
    }
}

public enum GGUFQuantizer {
    /// Writes `input` (a GGUF file, or a Hugging Face folder converted as llama.cpp's `convert_hf_to_gguf.py`
    /// converts it) as the GGUF file `output` with the tensor types of `mix`: llama-quantize's choices, or with
    /// `pure` the mix's default type for every quantizable tensor. A GGUF file's metadata is copied, with
    /// `general.file_type` and `general.quantization_version` set. Tensors of another type are converted
    /// through F32 (exact from F16/BF16; already quantized ones lose precision).
    public static func quantize(input: String, output: String, mix: QuantizationMix, pure: Bool = false,
                                threads: Int = 0) throws -> QuantizeSummary {
        guard input != output else { throw QwenError.invalidArgument("the output path equals the input path") }
        guard threads >= 0, threads <= ThreadPool.maxThreads else {
            throw QwenError.invalidArgument("quantize: threads must be in 0...\(ThreadPool.maxThreads)")
        }
        let source: any ConversionSource = isDirectory(input) ? try HuggingFaceExport(folder: input, mix: mix) : try GGUFSource(path: input, mix: mix)
        var writer = GGUFWriter()
        for (key, value) in source.metadata { writer.set(key, value) }
        // appended at the end, as llama.cpp's gguf_set_val_* does with keys that exist
        for (key, value) in [("general.quantization_version", 2), ("general.file_type", mix.fileType)] {
            writer.remove(key)
            writer.set(key, .uint(UInt64(value), .uint32))
        }
        let tensors = source.tensors.sorted { TensorTypePlanner.visitOrder($0.name, $1.name) }
        let h = source.hyperparameters
        var planner = TensorTypePlanner(mix: mix, pure: pure, tensorNames: tensors.map(\.name), layers: h.layers, heads: h.heads,
                                        kvHeads: h.kvHeads, experts: h.experts, architecture: h.architecture)
        let pool = ThreadPool(threads: threads > 0 ? threads : ThreadPool.availableCores)
        var summary = QuantizeSummary()
        for t in tensors {
            let current = source.convertedType(t)
            let type = mix.isQuantized || !source.isHuggingFace ? planner.type(for: t.name, shape: t.shape, current: current) : current
            try addTensor(t, as: type, to: &writer, pool: pool)
            summary.record(t, as: type)
        }
        try writer.write(to: output)
        return summary
    }

    /// Adds `t` to `writer` as `type`: rows copied when the type is unchanged, else each row dequantized to F32 and
    /// quantized, rows spread over the pool.
    static func addTensor(_ t: SourceTensor, as type: TensorType, to writer: inout GGUFWriter, pool: ThreadPool) throws {
        let columns = t.columns, rows = t.rows
        guard let targetRow = type.byteCount(elements: columns) else {
            throw QwenError.format("tensor '\(t.name)': rows of \(columns) are not whole \(type.name) blocks")
        }
        guard type != t.type else {
            try writer.addTensor(name: t.name, type: type, shape: t.shape) { out in
                for r in 0 ..< rows { (out.baseAddress! + r * targetRow).copyMemory(from: t.row(r), byteCount: targetRow) }
            }
            return
        }
        try writer.addTensor(name: t.name, type: type, shape: t.shape) { out in
            let scratch = try AlignedBuffer<Float>(count: columns * pool.threadCount, what: "a row of '\(t.name)'")
            var failure: Error?
            let chunk = max(1, min(64, rows / (pool.threadCount * 4)))
            pool.parallelFor((rows + chunk - 1) / chunk) { task, worker in
                let row = scratch.pointer + worker * columns
                for r in task * chunk ..< min(rows, (task + 1) * chunk) {
                    do {
                        try RowKernels.dequantizeRow(t.type, t.row(r), row, columns)
                    } catch {
                        failure = error
                        return
                    }
                    WeightQuantizer.quantize(type, row, out.baseAddress! + r * targetRow, columns)
                }
            }
            if let failure { throw failure }
        }
    }
}

/// What a conversion reads: metadata, tensors, and the hyperparameters the type rules look at.
protocol ConversionSource {
    var metadata: [(key: String, value: GGUFValue)] { get }
    var tensors: [SourceTensor] { get }
    var hyperparameters: (architecture: String, layers: Int, heads: Int, kvHeads: Int, experts: Int) { get }
    var isHuggingFace: Bool { get }
    /// The type a tensor has before the mix's rules apply (a Hugging Face folder's tensors are first converted as
    /// llama.cpp's converter would: norms, biases and routers to F32, the rest to the mix's float type or F32).
    func convertedType(_ t: SourceTensor) -> TensorType
}

struct GGUFSource: ConversionSource {
    let file: GGUFFile
    let metadata: [(key: String, value: GGUFValue)]
    let tensors: [SourceTensor]
    let hyperparameters: (architecture: String, layers: Int, heads: Int, kvHeads: Int, experts: Int)
    var isHuggingFace: Bool { false }

    init(path: String, mix: QuantizationMix) throws {
        let file = try GGUFFile(path: path)
        self.file = file
        metadata = file.metadata.filter { !$0.key.hasPrefix("split.") }
        tensors = try file.tensors.map(SourceTensor.init)
        let arch = file["general.architecture"]?.string ?? ""
        func hyper(_ key: String) -> Int { file["\(arch).\(key)"]?.int ?? 0 }
        hyperparameters = (arch, hyper("block_count"), hyper("attention.head_count"), hyper("attention.head_count_kv"),
                           hyper("expert_count"))
    }

    func convertedType(_ t: SourceTensor) -> TensorType { t.type }
}
