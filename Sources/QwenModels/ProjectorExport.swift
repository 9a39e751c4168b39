import QwenFormats
import QwenTensors

/// Writes the encoder of a Hugging Face folder that llama.cpp's converter does not handle as a projector GGUF
/// ("mmproj", `general.architecture` clip) of a projector type of ours, to sit beside the text GGUF as llama.cpp's
/// projectors do:
/// - the first-generation Qwen-VL: `clip.projector_type` = `qwenvl_resampler`, the tower's tensors under the names
///   `QwenVLVisionEncoder` reads (`v.blk.N.attn_qkv` keeps the original per-head interleaving, `v.proj` the original
///   [in, out] orientation), hyperparameters under llama.cpp's `clip.vision.*` keys plus `clip.vision.n_queries`;
/// - the first-generation Qwen-Audio: `clip.projector_type` = `qwenaudio`, llama.cpp's Qwen2-Audio names (`a.*`,
///   `mm.a.fc`) plus `a.bos_eos.weight`, keys `clip.audio.*`.
/// Matrices take the mix's block type where their rows are whole blocks, else F16 (F32 for an F32 mix); norms,
/// biases, position tables, the queries, `v.proj` and the bos/eos rows stay F32.
public enum ProjectorExport {
    public static let qwenVLProjectorType = "qwenvl_resampler"
    public static let qwenAudioProjectorType = "qwenaudio"

    public static func write(folder: String, output: String, mix: QuantizationMix, threads: Int = 0) throws -> QuantizeSummary {
        guard threads >= 0, threads <= ThreadPool.maxThreads else {
            throw QwenError.invalidArgument("projector export: threads must be in 0...\(ThreadPool.maxThreads)")
        }
        let configPath = folder + "/config.json"
        guard fileExists(configPath) else { throw QwenError.io("'\(folder)' has no config.json") }
        let json = try JSON.parseFile(configPath)
        let visual = json["visual"].flatMap { $0.object == nil ? nil : $0 }, audio = json["audio"].flatMap { $0.object == nil ? nil : $0 }
        guard json["model_type"]?.string == "qwen", visual != nil || audio != nil else {
            throw QwenError.unsupported("'\(folder)' is not a first-generation Qwen-VL or Qwen-Audio folder (model_type qwen with a " +
                                        "visual or audio tower); llama.cpp's convert_hf_to_gguf.py --mmproj writes the projectors " +
                                        "of Qwen2-VL, Qwen2.5-VL and Qwen2-Audio")
        }
        let store = try WeightStore(huggingFaceFolder: folder, map: true)
        func u32(_ v: Int) -> GGUFValue { .uint(UInt64(v), .uint32) }
        var metadata: [(String, GGUFValue)] = [
            ("general.architecture", .string("clip")), ("general.type", .string("mmproj")),
            ("general.name", .string(String(folder.split(separator: "/").last ?? "model"))),
            ("general.file_type", u32(mix.fileType)), ("general.quantization_version", u32(2)),
        ]
        let prefix: String, keepF32: Set<String>
        if let visual {
            // loading the tower checks every tensor's presence and shape before anything is written
            let c = try QwenVLVisionConfig(huggingFace: visual)
            _ = try QwenVLVisionEncoder(config: c, weights: store)
            func f32s(_ v: [Double]) -> GGUFValue { .array(.float32, v.map { .float($0, .float32) }) }
            metadata += [
                ("clip.has_vision_encoder", .bool(true)), ("clip.projector_type", .string(qwenVLProjectorType)),
                ("clip.vision.embedding_length", u32(c.width)), ("clip.vision.block_count", u32(c.layers)),
                ("clip.vision.attention.head_count", u32(c.heads)), ("clip.vision.feed_forward_length", u32(c.feedForward)),
                ("clip.vision.image_size", u32(c.imageSize)), ("clip.vision.patch_size", u32(c.patchSize)),
                ("clip.vision.projection_dim", u32(c.outputSize)), ("clip.vision.n_queries", u32(c.queries)),
                ("clip.vision.attention.layer_norm_epsilon", .float(Double(c.normEps), .float32)),
                ("clip.vision.image_mean", f32s(c.processorSettings.mean)), ("clip.vision.image_std", f32s(c.processorSettings.std)),
            ]
            prefix = "v."
            keepF32 = ["v.position_embd.weight", "v.resampler.query", "v.resampler.pos_embd", "v.proj"]
        } else {
            let text = try ModelConfig(huggingFace: json)
            let c = try AudioEncoderConfig(qwenAudio: audio!, textHidden: text.hiddenSize)
            _ = try Qwen2AudioEncoder(config: c, weights: store)
            metadata += [
                ("clip.has_audio_encoder", .bool(true)), ("clip.projector_type", .string(qwenAudioProjectorType)),
                ("clip.audio.num_mel_bins", u32(c.melBins)), ("clip.audio.embedding_length", u32(c.width)),
                ("clip.audio.block_count", u32(c.layers)), ("clip.audio.attention.head_count", u32(c.heads)),
                ("clip.audio.feed_forward_length", u32(c.feedForwardSize)), ("clip.audio.projection_dim", u32(c.outputSize)),
                ("clip.audio.attention.layer_norm_epsilon", .float(Double(c.layerNormEps), .float32)),
            ]
            prefix = "a."
            keepF32 = ["a.position_embd.weight", "a.bos_eos.weight"]
        }
        var writer = GGUFWriter()
        for (key, value) in metadata { writer.set(key, value) }
        let float: TensorType = mix.defaultType == .f32 ? .f32 : mix.defaultType == .bf16 ? .bf16 : .f16
        let pool = ThreadPool(threads: threads > 0 ? threads : ThreadPool.availableCores)
        var summary = QuantizeSummary()
        for name in store.names.filter({ $0.hasPrefix(prefix) || $0.hasPrefix("mm.a.") }).sorted() {
            let t = try SourceTensor(try store.require(name))
            var type = TensorType.f32
            if !keepF32.contains(name), name.hasSuffix(".weight"), t.shape.count >= 2 {
                type = t.shape.count == 2 && mix.defaultType.byteCount(elements: t.columns) != nil ? mix.defaultType : float
            }
            try GGUFQuantizer.addTensor(t, as: type, to: &writer, pool: pool)
            summary.record(t, as: type)
        }
        try writer.write(to: output)
        return summary
    }
}

extension QwenVLVisionConfig {
    /// Our projector GGUF's keys (`ProjectorExport`).
    public init(gguf: GGUFFile) throws {
        guard gguf["clip.projector_type"]?.string == ProjectorExport.qwenVLProjectorType else {
            throw QwenError.format("'\(gguf.file.path)' is not a Qwen-VL projector")
        }
        func int(_ key: String) throws -> Int {
            guard let x = gguf[key]?.int else { throw QwenError.format("projector GGUF lacks \(key)") }
            return x
        }
        self.init()
        width = try int("clip.vision.embedding_length")
        layers = try int("clip.vision.block_count")
        heads = try int("clip.vision.attention.head_count")
        feedForward = try int("clip.vision.feed_forward_length")
        imageSize = try int("clip.vision.image_size")
        patchSize = try int("clip.vision.patch_size")
        outputSize = try int("clip.vision.projection_dim")
        queries = try int("clip.vision.n_queries")
        normEps = Float(gguf["clip.vision.attention.layer_norm_epsilon"]?.double ?? 1e-6)
        try validate()
    }
}
