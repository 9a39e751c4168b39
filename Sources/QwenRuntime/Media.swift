import QwenFormats
import QwenMedia
import QwenModels
import QwenTokenizer

/// An image or a sound clip placed in a prompt: the token that marks it in the model's prompt syntax, and the rows
/// that replace that token. Each kind of media is one conformance (images: `ImageInput`; audio adds its own).
public protocol PromptMedia: AnyObject {
    /// The token standing for this media in prompt text (`<|image_pad|>`, `<|AUDIO|>`); an error if the model cannot
    /// take this kind of media.
    func placeholder(in model: Model) throws -> Int32
    /// The rows for `context`'s model. Implementations cache them in the context by content (`Context.cachedMedia`),
    /// so an image or clip is encoded once per context however often prompts repeat it.
    func embedding(in context: Context) throws -> MediaEmbedding
}

/// An image for a prompt: its pixels and, optionally, its own pixel bounds for the resize (0: the model's
/// `min_pixels` / `max_pixels`).
public final class ImageInput: PromptMedia {
    public let image: RGBImage
    public let minPixels: Int
    public let maxPixels: Int

    public init(_ image: RGBImage, minPixels: Int = 0, maxPixels: Int = 0) {
        self.image = image
        self.minPixels = minPixels
        self.maxPixels = maxPixels
    }

    public func placeholder(in model: Model) throws -> Int32 { try Context.visionModel(model).imageTokenID }

    public func embedding(in context: Context) throws -> MediaEmbedding {
        try context.imageEmbedding(image, minPixels: minPixels, maxPixels: maxPixels)
    }
}

/// Embeddings a context has computed, by content key; the least recently used go first beyond 64 entries or 1 GiB.
final class MediaCache {
    private var entries: [UInt64: MediaEmbedding] = [:]
    private var recent: [UInt64] = []
    private var bytes = 0
    static let maxEntries = 64
    static let maxBytes = 1 << 30

    func get(_ key: UInt64) -> MediaEmbedding? {
        guard let e = entries[key] else { return nil }
        if let i = recent.firstIndex(of: key) { recent.remove(at: i) }
        recent.append(key)
        return e
    }

    func put(_ e: MediaEmbedding) {
        guard entries[e.key] == nil else { return }
        entries[e.key] = e
        recent.append(e.key)
        bytes += e.values.count * 4
        while entries.count > Self.maxEntries || (bytes > Self.maxBytes && entries.count > 1) {
            let old = recent.removeFirst()
            if let gone = entries.removeValue(forKey: old) { bytes -= gone.values.count * 4 }
        }
    }

    var count: Int { entries.count }
}

extension Context {
    static func visionModel(_ model: Model) throws -> VisionModel {
        guard let vision = model.vision else {
            throw QwenError.unsupported("the model has no vision tower: load a Qwen2-VL / Qwen2.5-VL folder, or its mmproj " +
                                        "with qwen_model_load_projector")
        }
        return vision
    }

    /// The embedding cached under `key`, or `make()`'s, cached (for PromptMedia implementations).
    public func cachedMedia(key: UInt64, _ make: () throws -> MediaEmbedding) throws -> MediaEmbedding {
        if let hit = mediaCache.get(key) { return hit }
        let e = try make()
        mediaCache.put(e)
        return e
    }

    /// Media embeddings this context holds.
    public var cachedMediaCount: Int { mediaCache.count }

    /// The rows the language model receives for an image (`<|image_pad|>` rows with their M-RoPE grid), computed
    /// on this context's threads once and then taken from its cache. The vision tower's attention holds keys and values
    /// at the KV cache's precision: F32 with an F32 cache (exact), else F16 (as llama.cpp; faster).
    public func imageEmbedding(_ image: RGBImage, minPixels: Int = 0, maxPixels: Int = 0) throws -> MediaEmbedding {
        guard minPixels >= 0, maxPixels >= 0 else { throw QwenError.invalidArgument("pixel bounds must not be negative") }
        let vision = try Self.visionModel(model)
        let settings = vision.settings(minPixels: minPixels, maxPixels: maxPixels)
        var h = FNV1a()
        h.add(image.key)
        h.add(UInt64(settings.minPixels))
        h.add(UInt64(settings.maxPixels))
        h.add(UInt64(UInt(bitPattern: ObjectIdentifier(vision).hashValue)))
        return try cachedMedia(key: h.value) {
            // the tower's attention keeps keys and values at the context's KV precision: F32 with an F32 cache, else F16
            let e = try vision.embed(image, settings: settings, pool: workspace.pool, exactAttention: kvCache.type == .f32)
            return try MediaEmbedding(rows: e.rows, values: e.values, placeholder: vision.imageTokenID, key: h.value, grid: e.grid)
        }
    }

    /// Splits prompt tokens at media placeholders: each placeholder token of a kind takes the next media of that kind
    /// (in the order given) and is replaced by its rows.
    public func promptPieces(tokens: [Int32], media: [PromptMedia]) throws -> [PromptPiece] {
        var queues: [Int32: [PromptMedia]] = [:]
        var order: [Int32] = []
        for m in media {
            let p = try m.placeholder(in: model)
            if queues[p] == nil { order.append(p) }
            queues[p, default: []].append(m)
        }
        // placeholders of kinds the model takes must all be matched, even when no media of that kind was given
        var kinds = Set(order)
        if let v = model.vision { kinds.insert(v.imageTokenID) }
        if let a = model.audio { kinds.insert(a.audioTokenID) }
        var pieces: [PromptPiece] = [], run: [Int32] = []
        var used: [Int32: Int] = [:]
        for t in tokens {
            guard kinds.contains(t) else { run.append(t); continue }
            let next = used[t, default: 0]
            guard let list = queues[t], next < list.count else {
                let name = model.tokenizer.pieceText(t)
                throw QwenError.invalidArgument("the prompt has more \(name) placeholders than the \(queues[t]?.count ?? 0) media given for them")
            }
            used[t] = next + 1
            if !run.isEmpty { pieces.append(.tokens(run)); run.removeAll() }
            pieces.append(.media(try list[next].embedding(in: self)))
        }
        if !run.isEmpty { pieces.append(.tokens(run)) }
        for p in order where used[p, default: 0] < queues[p]!.count {
            throw QwenError.invalidArgument("\(queues[p]!.count) media were given for \(model.tokenizer.pieceText(p)) but the prompt has " +
                                            "\(used[p, default: 0]) such placeholders")
        }
        return pieces
    }

    /// Evaluates text in the model's own prompt syntax with media placeholders (`<|image_pad|>` inside
    /// `<|vision_start|>…<|vision_end|>`, one per image, expanded to the image's rows), appended after what the
    /// context holds; like `eval(_:logits:)` otherwise.
    public func evalPrompt(_ text: String, media: [PromptMedia], logits: UnsafeMutablePointer<Float>? = nil) throws {
        var expanded = model.vision?.expandPlaceholders(text) ?? text
        expanded = model.audio?.expandPlaceholders(expanded) ?? expanded
        let tokens = model.tokenizer.encode(expanded, parseSpecial: true)
        guard !tokens.isEmpty else { throw QwenError.invalidArgument("empty prompt") }
        try eval(pieces: promptPieces(tokens: tokens, media: media), logits: logits)
    }

    /// Chat with media: user (or any) message content may hold `<image>` markers, replaced by the model's image
    /// syntax (`<|vision_start|><|image_pad|><|vision_end|>`), or that syntax itself; media are taken in order of
    /// appearance over the whole conversation. Pass the full history (with all its media) each turn: cached tokens
    /// and cached embeddings are reused. The sliding window does not apply to chats with media.
    public func evalChat(_ messages: [ChatMessage], media: [PromptMedia], addGenerationPrompt: Bool, enableThinking: Bool = true) throws {
        guard !messages.isEmpty else { throw QwenError.invalidArgument("no messages") }
        var pictures = 0
        let expanded = expandAudioMarkers(messages).map { ChatMessage(role: $0.role, content: expandMediaMarkers($0.content, pictures: &pictures)) }
        let text = chatTemplate.render(expanded, addGenerationPrompt: addGenerationPrompt, enableThinking: enableThinking)
        let tokens = model.tokenizer.encode(text, parseSpecial: true)
        try evalReusingPrefix(pieces: promptPieces(tokens: tokens, media: media))
    }

    /// `<image>` (and Qwen-VL's `<img></img>`) → the model's image syntax (when the model takes images). Qwen-VL
    /// numbers its images as the reference's `from_list_format` does: `Picture 1: <img>…</img>`, counting in `pictures`
    /// over the conversation.
    func expandMediaMarkers(_ content: String, pictures: inout Int) -> String {
        guard let vision = model.vision else { return content }
        let text = vision.expandPlaceholders(content)
        guard text.contains("<image>") else { return text }
        let parts = text.split(separator: "<image>", omittingEmptySubsequences: false)
        var out = String(parts[0])
        for part in parts.dropFirst() {
            pictures += 1
            out += (vision.numbersPictures ? "Picture \(pictures): " : "") + vision.promptSyntax + part
        }
        return out
    }
}

extension Tokenizer {
    /// A token's text for messages.
    func pieceText(_ id: Int32) -> String {
        String(decoding: decode([id]), as: UTF8.self)
    }
}
