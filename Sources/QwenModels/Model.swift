import QwenFormats
import QwenTensors
import QwenTokenizer

/// Options for loading a model.
public struct ModelOptions: Sendable {
    /// Memory-map weight files (otherwise they are read into memory).
    public var useMmap = true
    /// Default thread count for contexts that do not set one (0 = the cores this process may use).
    public var threads = 0

    public init() {}
}

/// A loaded model: the language model, its tokenizer and chat template. Immutable, shareable across threads.
public final class Model: @unchecked Sendable {
    public let languageModel: any LanguageModel
    public let tokenizer: Tokenizer
    public let options: ModelOptions
    /// Where it was loaded from.
    public let path: String
    /// The chat template text stored with the model, if any.
    public var chatTemplate: String? { tokenizer.chatTemplate }
    public var config: ModelConfig { languageModel.config }
    /// The audio tower and its settings (Qwen2-Audio), from the model folder or an audio mmproj; nil if none.
    public internal(set) var audio: AudioModel?
    /// The vision tower and its image processor (Qwen2-VL, Qwen2.5-VL), from the model folder or a vision mmproj
    /// (`loadProjector`, VisionModel.swift); nil if none.
    public internal(set) var vision: VisionModel?

    /// Parameters (elements of every tensor) and bytes of every tensor.
    public let parameterCount: Int
    public let weightBytes: Int
    /// What the weights are stored as: the file's quantization mix when it names one ("Q4_K_M"),
    /// else the type holding the most weight bytes ("BF16").
    public let weightTypeName: String

    init(languageModel: any LanguageModel, tokenizer: Tokenizer, options: ModelOptions, path: String, weights: WeightStore) {
        self.languageModel = languageModel
        self.tokenizer = tokenizer
        self.options = options
        self.path = path
        parameterCount = weights.parameterCount
        weightBytes = weights.byteCount
        weightTypeName = weights.fileTypeName ?? weights.dominantWeightType?.name ?? ""
    }

    /// Loads a GGUF file or a Hugging Face folder (config.json + safetensors + tokenizer.json).
    public static func load(path: String, options: ModelOptions = ModelOptions()) throws -> Model {
        guard !path.isEmpty else { throw QwenError.invalidArgument("empty model path") }
        guard options.threads >= 0, options.threads <= ThreadPool.maxThreads else {
            throw QwenError.invalidArgument("threads must be in 0...\(ThreadPool.maxThreads)")
        }
        if isDirectory(path) {
            return try loadHuggingFace(folder: path, options: options)
        }
        guard fileExists(path) else { throw QwenError.io("'\(path)' does not exist") }
        return try loadGGUF(path: path, options: options)
    }

    static func loadGGUF(path: String, options: ModelOptions) throws -> Model {
        let gguf = try GGUFFile(path: path, map: options.useMmap)
        let config = try ModelConfig(gguf: gguf)
        let tokenizer = try Tokenizer(gguf: gguf)
        let weights = WeightStore(gguf: gguf)
        weights.loadPool = loadPool(options)
        defer { weights.loadPool = nil }  // its threads end with loading
        let lm = try makeLanguageModel(config: config, weights: weights)
        return Model(languageModel: lm, tokenizer: tokenizer, options: options, path: path, weights: weights)
    }

    static func loadHuggingFace(folder: String, options: ModelOptions) throws -> Model {
        let configPath = folder + "/config.json"
        guard fileExists(configPath) else { throw QwenError.io("'\(folder)' has no config.json") }
        let config = try ModelConfig(huggingFace: JSON.parseFile(configPath))
        let tokenizer: Tokenizer
        if fileExists(folder + "/tokenizer.json") {
            tokenizer = try Tokenizer.load(huggingFaceFolder: folder)
        } else if fileExists(folder + "/qwen.tiktoken") {  // Qwen (first generation)
            tokenizer = try Tokenizer.load(tiktokenFolder: folder)
        } else {
            throw QwenError.io("'\(folder)' has no tokenizer.json (nor qwen.tiktoken)")
        }
        let weights = try WeightStore(huggingFaceFolder: folder, map: options.useMmap)
        weights.loadPool = loadPool(options)
        defer { weights.loadPool = nil }  // its threads end with loading
        let lm = try makeLanguageModel(config: config, weights: weights)
        let model = Model(languageModel: lm, tokenizer: tokenizer, options: options, path: folder, weights: weights)
        model.audio = try AudioModel.huggingFace(folder: folder, config: JSON.parseFile(configPath), weights: weights,
                                                 tokenizer: tokenizer, hidden: config.hiddenSize)
        model.vision = try VisionModel.huggingFace(folder: folder, config: JSON.parseFile(configPath), weights: weights,
                                                   tokenizer: tokenizer, hidden: config.hiddenSize)
        return model
    }

    /// A pool for load-time work (repacking weights), released when loading ends.
    static func loadPool(_ options: ModelOptions) -> ThreadPool? {
        let threads = options.threads > 0 ? options.threads : ThreadPool.availableCores
        return threads > 1 ? ThreadPool(threads: threads, spinIterations: 1000) : nil
    }

    /// `body` on the weights of an mmproj file for this model, with a load pool while it runs.
    func withProjectorWeights<R>(_ gguf: GGUFFile, _ body: (WeightStore) throws -> R) rethrows -> R {
        let store = WeightStore(gguf: gguf)
        store.loadPool = Self.loadPool(options)
        defer { store.loadPool = nil }  // its threads end with loading
        return try body(store)
    }

    /// Refuses a projector whose output is not this model's hidden size.
    func checkProjectorWidth(_ outputSize: Int, of gguf: GGUFFile) throws {
        guard outputSize == config.hiddenSize else {
            throw QwenError.invalidArgument("'\(gguf.file.path)' projects to \(outputSize) floats, the model's hidden size is " +
                                            "\(config.hiddenSize)")
        }
    }

    static func makeLanguageModel(config: ModelConfig, weights: WeightStore) throws -> any LanguageModel {
        switch config.architecture {
        case "qwen": return try QwenV1Model(config: config, weights: weights)
        case "qwen2": return try Qwen2Model(config: config, weights: weights)
        case "qwen2vl": return try Qwen2VLModel(config: config, weights: weights)
        case "qwen3": return try Qwen3Model(config: config, weights: weights)
        case "qwen3moe": return try Qwen3MoEModel(config: config, weights: weights)
        case "qwen2moe": return try Qwen2MoEModel(config: config, weights: weights)
        default: throw QwenError.unsupported("architecture '\(config.architecture)' is not supported")
        }
    }
}
