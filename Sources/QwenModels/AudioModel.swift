import QwenFormats
import QwenMedia
import QwenTensors
import QwenTokenizer

/// What a model needs to take audio: the feature extractor, the audio tower with its projector, and the prompt
/// syntax: Qwen2-Audio's `<|audio_bos|><|AUDIO|><|audio_eos|>`, where `<|AUDIO|>` stands for a clip's rows, or the
/// first-generation Qwen-Audio's `<audio></audio>`, whose whole span (the tags included) the rows replace; here it
/// is the one placeholder `[[[AUDIO:modality]]]` (the reference's audio pad), which the rows (bos, clip, eos) replace.
public final class AudioModel: @unchecked Sendable {
    public let encoder: Qwen2AudioEncoder
    public let features: WhisperFeatureExtractor
    /// The placeholder one clip's rows replace (`<|AUDIO|>`, `[[[AUDIO:modality]]]`).
    public let audioTokenID: Int32
    /// A clip in prompt text.
    public let promptSyntax: String
    /// Where the tower came from (the model folder or the mmproj file).
    public let source: String

    var isQwenAudio: Bool { encoder.config.kind == .qwenAudio }

    init(encoder: Qwen2AudioEncoder, features: WhisperFeatureExtractor, audioTokenID: Int32, tokenizer: Tokenizer,
         source: String) throws {
        guard encoder.config.inputFrames == features.settings.windowFrames, encoder.config.melBins == features.settings.melBins else {
            throw QwenError.format("the audio encoder takes \(encoder.config.melBins) × \(encoder.config.inputFrames) features, the " +
                                   "feature extractor makes \(features.settings.melBins) × \(features.settings.windowFrames)")
        }
        self.encoder = encoder
        self.features = features
        self.audioTokenID = audioTokenID
        promptSyntax = encoder.config.kind == .qwenAudio ? "[[[AUDIO:modality]]]" : "<|audio_bos|><|AUDIO|><|audio_eos|>"
        self.source = source
    }

    /// The line a chat's N-th clip takes, as the models' chat formats write it: Qwen2-Audio-Instruct's template
    /// "Audio N: <|audio_bos|>…\n", Qwen-Audio-Chat's `from_list_format` "Audio N:<audio>…</audio>\n".
    public func chatLine(_ n: Int) -> String { "Audio \(n):" + (isQwenAudio ? "" : " ") + promptSyntax + "\n" }

    /// Prompt text with the placeholders hosts write for Qwen-Audio (`<audio></audio>`) in the model's syntax.
    public func expandPlaceholders(_ text: String) -> String {
        guard isQwenAudio, text.contains("<audio></audio>") else { return text }
        return text.split(separator: "<audio></audio>", omittingEmptySubsequences: false).joined(separator: promptSyntax)
    }

    /// Mel frames of a window that belong to the clip: Qwen2-Audio's processor counts ceil(samples / hop), the
    /// original Qwen-Audio floor(samples / hop).
    func validFrames(samples: Int) -> Int {
        let s = features.settings
        return isQwenAudio ? min(s.windowFrames, min(samples, s.windowSamples) / s.hopLength) : features.validFrames(samples: samples)
    }

    /// Rows the LLM receives for a clip: the sum over its 30-second windows.
    public func tokenCount(_ clip: AudioClip) -> Int {
        features.windows(sampleCount: clip.samples.count).reduce(0) { $0 + encoder.rows(validFrames: validFrames(samples: $1.count)) }
    }

    /// The embeddings of a clip, rows × outputSize floats: the tower's projected rows of each 30-second window,
    /// concatenated (the reference keeps only the first window; see README). A last window too short for a row
    /// (under 60 ms) adds none; a clip with no row at all is an error.
    public func embed(_ clip: AudioClip, pool: ThreadPool?) throws -> (rows: Int, values: [Float]) {
        let s = features.settings
        guard clip.samples.count > 0 else { throw QwenError.invalidArgument("audio clip is empty") }
        var buffer = [Float](repeating: 0, count: s.melBins * s.windowFrames)
        var values: [Float] = [], rows = 0
        for window in features.windows(sampleCount: clip.samples.count) {
            let valid = validFrames(samples: window.count)
            let tokens = encoder.rows(validFrames: valid)
            if tokens == 0 && rows > 0 { continue }
            guard tokens > 0 else {
                throw QwenError.invalidArgument("audio clip too short: \(clip.samples.count) samples at 16 kHz give no audio token " +
                                                "(at least \(2 * s.hopLength + (isQwenAudio ? s.hopLength : 1)) are needed)")
            }
            clip.samples.withUnsafeBufferPointer { x in
                buffer.withUnsafeMutableBufferPointer {
                    _ = features.extract(UnsafeBufferPointer(rebasing: x[window]), into: $0.baseAddress!, pool: pool)
                }
            }
            let out = try buffer.withUnsafeBufferPointer { try encoder.encode(features: $0.baseAddress!, validFrames: valid, pool: pool) }
            values += out
            rows += tokens
        }
        return (rows, values)
    }

    /// The audio side of a Hugging Face Qwen2-Audio folder (model_type `qwen2_audio`): `audio_config`, the
    /// audio token id (`audio_token_index`, or transformers 5's `audio_token_id`), `preprocessor_config.json`
    /// (defaults: Qwen2-Audio's). nil for other models.
    static func huggingFace(folder: String, config: JSON, weights: WeightStore, tokenizer: Tokenizer, hidden: Int) throws -> AudioModel? {
        if config["model_type"]?.string == "qwen", let audio = config["audio"], audio.object != nil {  // Qwen-Audio
            let c = try AudioEncoderConfig(qwenAudio: audio, textHidden: hidden)
            var settings = AudioFeatureSettings()
            settings.melBins = c.melBins
            guard let id = tokenizer.tokenID("[[[AUDIO:modality]]]") else {
                throw QwenError.format("'\(folder)': the tokenizer lacks Qwen-Audio's [[[AUDIO:modality]]] token")
            }
            return try AudioModel(encoder: Qwen2AudioEncoder(config: c, weights: weights), features: WhisperFeatureExtractor(settings: settings),
                                  audioTokenID: id, tokenizer: tokenizer, source: folder)
        }
        guard config["model_type"]?.string == "qwen2_audio" else { return nil }
        let c = try AudioEncoderConfig(huggingFace: config["audio_config"], textHidden: hidden)
        var settings = AudioFeatureSettings()
        let pre = folder + "/preprocessor_config.json"
        if fileExists(pre) { settings = try AudioFeatureSettings(preprocessorConfig: JSON.parseFile(pre)) }
        guard let id = (config["audio_token_index"] ?? config["audio_token_id"])?.int ?? tokenizer.tokenID("<|AUDIO|>").map(Int.init),
              id >= 0, id < Int(Int32.max) else {
            throw QwenError.format("'\(folder)/config.json' has no audio_token_index and the tokenizer no <|AUDIO|>")
        }
        return try AudioModel(encoder: Qwen2AudioEncoder(config: c, weights: weights),
                              features: WhisperFeatureExtractor(settings: settings), audioTokenID: Int32(id),
                              tokenizer: tokenizer, source: folder)
    }

    /// Whether a GGUF file is an audio mmproj (llama.cpp's `clip.has_audio_encoder`).
    public static func isAudioProjector(_ gguf: GGUFFile) -> Bool {
        gguf["general.architecture"]?.string == "clip" && gguf["clip.has_audio_encoder"]?.bool == true
    }

    /// The audio tower of llama.cpp's audio mmproj for `model` (its text GGUF provides the tokens).
    public static func mmproj(_ gguf: GGUFFile, for model: Model) throws -> AudioModel {
        let c = try AudioEncoderConfig(mmproj: gguf)
        try model.checkProjectorWidth(c.outputSize, of: gguf)
        let placeholder = c.kind == .qwenAudio ? "[[[AUDIO:modality]]]" : "<|AUDIO|>"
        guard let id = model.tokenizer.tokenID(placeholder) else {
            throw QwenError.unsupported("the model's tokenizer has no \(placeholder) token: it is not the language model of the projector's " +
                                        (c.kind == .qwenAudio ? "Qwen-Audio" : "Qwen2-Audio"))
        }
        var settings = AudioFeatureSettings()
        settings.melBins = c.melBins
        let encoder = try model.withProjectorWeights(gguf) { try Qwen2AudioEncoder(config: c, weights: $0) }
        return try AudioModel(encoder: encoder, features: WhisperFeatureExtractor(settings: settings),
                              audioTokenID: id, tokenizer: model.tokenizer, source: gguf.file.path)
    }
}

extension Model {
    /// Loads llama.cpp's mmproj for this model: an audio mmproj (Qwen2-Audio's tower) becomes `audio`. Call before
    /// sharing the model with contexts on other threads.
    public func loadAudioProjector(path: String) throws {
        let gguf = try GGUFFile(path: path, map: options.useMmap)
        guard AudioModel.isAudioProjector(gguf) else {
            throw QwenError.unsupported("'\(path)' is not an audio projector (no clip.has_audio_encoder)")
        }
        audio = try AudioModel.mmproj(gguf, for: self)
    }
}

extension ModelConfig {
    /// Qwen2-Audio's hub config.json leaves most of `text_config` to transformers' Qwen2Config defaults; they are
    /// filled in here (hidden 4096, 32 layers, 32 heads and KV heads, ffn 22016, 32768 positions, θ 10000, eps 1e-6).
    static func withQwen2AudioTextDefaults(_ config: JSON) -> JSON {
        guard config["model_type"]?.string == "qwen2_audio", case var .object(top) = config else { return config }
        var text = config["text_config"]?.object ?? []
        let defaults: [(String, Double)] = [
            ("hidden_size", 4096), ("intermediate_size", 22016), ("num_hidden_layers", 32), ("num_attention_heads", 32),
            ("max_position_embeddings", 32768), ("rms_norm_eps", 1e-6), ("vocab_size", 151936),
        ]
        for (key, value) in defaults where !text.contains(where: { $0.key == key }) { text.append((key, .number(value))) }
        if !text.contains(where: { $0.key == "num_key_value_heads" }) {
            let heads = text.first { $0.key == "num_attention_heads" }?.value ?? .number(32)
            text.append(("num_key_value_heads", heads))
        }
        top.removeAll { $0.key == "text_config" }
        top.append(("text_config", .object(text)))
        return .object(top)
    }
}
