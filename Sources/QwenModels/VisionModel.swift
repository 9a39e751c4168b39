import QwenFormats
import QwenMedia
import QwenTensors
import QwenTokenizer

/// A vision tower: preprocessed pixels → rows of the language model's hidden size.
public protocol ImageEncoder: AnyObject, Sendable {
    /// How images are prepared for this tower.
    var processorSettings: ImageProcessorSettings { get }
    /// The grid of rows the tower gives for a processed image of this patch grid (their M-RoPE positions).
    func rowGrid(patches: (t: Int, h: Int, w: Int)) -> (t: Int, h: Int, w: Int)
    /// Encodes one processed image. `exactAttention`: F32 keys and values in the tower's attention (else F16, as
    /// llama.cpp).
    func encode(_ image: ProcessedImage, pool: ThreadPool?, exactAttention: Bool) throws -> [Float]
}

/// What a model needs to take images: the vision tower (Qwen2VLVision.swift, QwenVLVision.swift), its image
/// processor settings and the prompt syntax (`<|vision_start|><|image_pad|><|vision_end|>` for Qwen2-VL and
/// Qwen2.5-VL, `<img><imgpad></img>` for the first-generation Qwen-VL), whose placeholder token an image's rows replace.
public final class VisionModel: @unchecked Sendable {
    public let encoder: any ImageEncoder
    /// The placeholder one image's rows replace (`<|image_pad|>`, `<imgpad>`).
    public let imageTokenID: Int32
    /// An image in the prompt text, around the placeholder.
    public let promptSyntax: String
    /// Where the tower came from (the model folder or the mmproj file).
    public let source: String

    public var settings: ImageProcessorSettings { encoder.processorSettings }
    /// The Qwen2-VL / Qwen2.5-VL tower's configuration (nil for the first-generation Qwen-VL).
    public var config: VisionConfig? { (encoder as? Qwen2VLVisionEncoder)?.config }

    init(encoder: any ImageEncoder, imageTokenID: Int32, promptSyntax: String, source: String) {
        self.encoder = encoder
        self.imageTokenID = imageTokenID
        self.promptSyntax = promptSyntax
        self.source = source
    }

    /// The image's preprocessing: the model's settings with the pixel bounds a host chose for it (0: the model's).
    public func settings(minPixels: Int = 0, maxPixels: Int = 0) -> ImageProcessorSettings {
        var s = settings
        if minPixels > 0 { s.minPixels = minPixels }
        if maxPixels > 0 { s.maxPixels = maxPixels }
        if minPixels > 0, maxPixels == 0, s.maxPixels < minPixels { s.maxPixels = minPixels }
        if maxPixels > 0, minPixels == 0, s.minPixels > maxPixels { s.minPixels = maxPixels }
        return s
    }

    /// Rows the language model receives for an image of this size.
    public func tokenCount(width: Int, height: Int, settings s: ImageProcessorSettings) throws -> Int {
        var (h, w) = (s.fixedSize, s.fixedSize)
        if s.fixedSize == 0 {
            (h, w) = try ImageProcessor.smartResize(height: height, width: width, factor: s.patchSize * s.mergeSize,
                                                    minPixels: s.minPixels, maxPixels: s.maxPixels)
        }
        let g = encoder.rowGrid(patches: (1, h / s.patchSize, w / s.patchSize))
        return g.t * g.h * g.w
    }

    /// Preprocesses and encodes an image: rows × hidden floats and the grid its rows span.
    /// `exactAttention`: F32 keys and values in the tower's attention (else F16, as llama.cpp).
    public func embed(_ image: RGBImage, settings s: ImageProcessorSettings, pool: ThreadPool?, exactAttention: Bool = false) throws
        -> (rows: Int, values: [Float], grid: (t: Int, h: Int, w: Int)) {
        let processed = try ImageProcessor.process(image, settings: s)
        let values = try encoder.encode(processed, pool: pool, exactAttention: exactAttention)
        let grid = encoder.rowGrid(patches: processed.grid)
        return (grid.t * grid.h * grid.w, values, grid)
    }

    /// Prompt text with the image placeholders hosts write (`<img></img>` for Qwen-VL) in the model's own syntax.
    public func expandPlaceholders(_ text: String) -> String {
        guard promptSyntax == Self.qwenVLSyntax, text.contains("<img></img>") else { return text }
        return text.split(separator: "<img></img>", omittingEmptySubsequences: false).joined(separator: promptSyntax)
    }

    /// Qwen-VL-Chat's prompts name each image `Picture N: ` before its tags.
    public var numbersPictures: Bool { promptSyntax == Self.qwenVLSyntax }

    static let qwen2VLSyntax = "<|vision_start|><|image_pad|><|vision_end|>"
    static let qwenVLSyntax = "<img><imgpad></img>"

    /// `preprocessor_config.json`: the hub's `min_pixels` / `max_pixels` (which win, as in the processor) or
    /// transformers 5's `size.shortest_edge` / `size.longest_edge`, patch and merge sizes, mean, std, rescale factor.
    public static func processorSettings(preprocessorConfig p: JSON) throws -> ImageProcessorSettings {
        var s = ImageProcessorSettings()
        if let size = p["size"] {
            if let v = size["shortest_edge"]?.int ?? size["min_pixels"]?.int { s.minPixels = v }
            if let v = size["longest_edge"]?.int ?? size["max_pixels"]?.int { s.maxPixels = v }
        }
        if let v = p["min_pixels"]?.int { s.minPixels = v }
        if let v = p["max_pixels"]?.int { s.maxPixels = v }
        if let v = p["patch_size"]?.int { s.patchSize = v }
        if let v = p["merge_size"]?.int { s.mergeSize = v }
        if let v = p["temporal_patch_size"]?.int { s.temporalPatchSize = v }
        if let mean = p["image_mean"]?.array?.compactMap(\.double), mean.count == 3 { s.mean = mean }
        if let std = p["image_std"]?.array?.compactMap(\.double), std.count == 3 { s.std = std }
        if let r = p["rescale_factor"]?.double { s.rescaleFactor = r }
        if p["do_resize"]?.bool == false || p["do_rescale"]?.bool == false || p["do_normalize"]?.bool == false {
            throw QwenError.unsupported("preprocessor_config.json turns off resizing, rescaling or normalization")
        }
        try s.validate()
        return s
    }

    /// The vision side of a Hugging Face Qwen2-VL / Qwen2.5-VL folder (`vision_config`, `image_token_id`,
    /// `preprocessor_config.json`). nil for models without one.
    static func huggingFace(folder: String, config: JSON, weights: WeightStore, tokenizer: Tokenizer, hidden: Int) throws -> VisionModel? {
        if let visual = config["visual"], config["model_type"]?.string == "qwen" {
            return try qwenVL(try QwenVLVisionConfig(huggingFace: visual), weights: weights, tokenizer: tokenizer, hidden: hidden,
                              source: folder)
        }
        guard ["qwen2_vl", "qwen2_5_vl"].contains(config["model_type"]?.string ?? ""), config["vision_config"] != nil else { return nil }
        let c = try VisionConfig(huggingFace: config)
        guard c.outputSize == hidden else {
            throw QwenError.format("the vision tower's merger gives \(c.outputSize) floats, the language model's hidden size is \(hidden)")
        }
        var settings = ImageProcessorSettings()
        settings.patchSize = c.patchSize
        settings.mergeSize = c.mergeSize
        settings.temporalPatchSize = c.temporalPatchSize
        let pre = folder + "/preprocessor_config.json"
        if fileExists(pre) { settings = try processorSettings(preprocessorConfig: JSON.parseFile(pre)) }
        guard let id = (config["image_token_id"] ?? config["text_config"]?["image_token_id"])?.int
            ?? tokenizer.tokenID("<|image_pad|>").map(Int.init), id >= 0, id < Int(Int32.max) else {
            throw QwenError.format("'\(folder)/config.json' has no image_token_id and the tokenizer no <|image_pad|>")
        }
        return VisionModel(encoder: try Qwen2VLVisionEncoder(config: c, weights: weights, processorSettings: settings),
                           imageTokenID: Int32(id), promptSyntax: qwen2VLSyntax, source: folder)
    }

    /// The first-generation Qwen-VL tower (config.json's `visual`, or our GGUF's keys) over `weights`.
    static func qwenVL(_ c: QwenVLVisionConfig, weights: WeightStore, tokenizer: Tokenizer, hidden: Int, source: String) throws -> VisionModel {
        guard c.outputSize == hidden else {
            throw QwenError.format("the Qwen-VL resampler gives \(c.outputSize) floats, the language model's hidden size is \(hidden)")
        }
        guard let pad = tokenizer.tokenID("<imgpad>"), tokenizer.tokenID("<img>") != nil, tokenizer.tokenID("</img>") != nil else {
            throw QwenError.format("'\(source)': the tokenizer lacks Qwen-VL's <img>, </img> and <imgpad> tokens")
        }
        return VisionModel(encoder: try QwenVLVisionEncoder(config: c, weights: weights), imageTokenID: pad,
                           promptSyntax: qwenVLSyntax, source: source)
    }

    /// Whether a GGUF file is a vision mmproj (llama.cpp's `clip.has_vision_encoder`, or ours for Qwen-VL).
    public static func isVisionProjector(_ gguf: GGUFFile) -> Bool {
        gguf["general.architecture"]?.string == "clip" && gguf["clip.has_vision_encoder"]?.bool == true
    }

    /// The vision tower of llama.cpp's mmproj for `model` (its text GGUF provides the tokens). Preprocessing: the
    /// file's mean/std and `clip.vision.image_min_pixels` / `image_max_pixels` when present, else the reference
    /// defaults.
    public static func mmproj(_ gguf: GGUFFile, for model: Model) throws -> VisionModel {
        if gguf["clip.projector_type"]?.string == ProjectorExport.qwenVLProjectorType {  // ours (ProjectorExport.swift)
            let c = try QwenVLVisionConfig(gguf: gguf)
            return try model.withProjectorWeights(gguf) {
                try qwenVL(c, weights: $0, tokenizer: model.tokenizer, hidden: model.config.hiddenSize, source: gguf.file.path)
            }
        }
        let c = try VisionConfig(gguf: gguf)
        try model.checkProjectorWidth(c.outputSize, of: gguf)
        guard let id = model.tokenizer.tokenID("<|image_pad|>") else {
            throw QwenError.unsupported("the model's tokenizer has no <|image_pad|> token: it is not a Qwen-VL language model")
        }
        var s = ImageProcessorSettings()
        s.patchSize = c.patchSize
        s.mergeSize = c.mergeSize
        if let mean = gguf["clip.vision.image_mean"]?.array?.compactMap(\.double), mean.count == 3 { s.mean = mean }
        if let std = gguf["clip.vision.image_std"]?.array?.compactMap(\.double), std.count == 3 { s.std = std }
        if let lo = gguf["clip.vision.image_min_pixels"]?.int, let hi = gguf["clip.vision.image_max_pixels"]?.int, lo > 0, hi >= lo {
            s.minPixels = lo
            s.maxPixels = hi
        }
        let encoder = try model.withProjectorWeights(gguf) { try Qwen2VLVisionEncoder(config: c, weights: $0, processorSettings: s) }
        return VisionModel(encoder: encoder, imageTokenID: id, promptSyntax: qwen2VLSyntax, source: gguf.file.path)
    }
}

extension Model {
    /// Loads llama.cpp's `mmproj` GGUF for this model: a vision projector (Qwen2-VL / Qwen2.5-VL) becomes `vision`,
    /// an audio projector `audio`. Call before sharing the model with contexts on other threads.
    public func loadProjector(path: String) throws {
        guard !path.isEmpty else { throw QwenError.invalidArgument("empty projector path") }
        let gguf = try GGUFFile(path: path, map: options.useMmap)
        guard gguf["general.architecture"]?.string == "clip" else {
            throw QwenError.unsupported("'\(path)' is not a projector (mmproj) GGUF: general.architecture is " +
                                        "'\(gguf["general.architecture"]?.string ?? "none")', not 'clip'")
        }
        let isVision = VisionModel.isVisionProjector(gguf), isAudio = AudioModel.isAudioProjector(gguf)
        guard isVision || isAudio else {
            throw QwenError.unsupported("'\(path)' has neither a vision nor an audio encoder")
        }
        // build both before attaching either, so a failure leaves the model as it was
        let newVision = isVision ? try VisionModel.mmproj(gguf, for: self) : nil
        let newAudio = isAudio ? try AudioModel.mmproj(gguf, for: self) : nil
        if let newVision { vision = newVision }
        if let newAudio { audio = newAudio }
    }
}
