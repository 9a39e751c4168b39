import CQwen
import QwenFormats
import QwenModels
import QwenTensors
import QwenTokenizer

/// Options for a context.
public struct ContextOptions: Sendable {
    /// Positions the KV cache holds (0 = min(4096, the model's training length)).
    public var contextSize = 0
    /// Worker threads including the caller (0 = the model's default, else the cores this process may use).
    public var threads = 0
    /// Tokens evaluated per forward pass during prompt processing.
    public var batchSize = 512
    public var kvType: KVType = .f16
    /// Opt-in sliding window for long chats: when a conversation outgrows the cache, its oldest turns are
    /// dropped (the system prompt stays) and the kept keys are moved to their new positions instead of being
    /// recomputed; generation that fills the cache drops the older half of what follows the system prompt.
    /// Off (the default): `.contextFull`.
    public var slidingWindow = false

    public init() {}
}

/// One conversation's state: the KV cache and the tokens it holds, scratch memory and a thread pool.
/// Used by one thread at a time; many contexts may share one model.
public final class Context: @unchecked Sendable {
    public let model: Model
    public let capacity: Int
    public let batchSize: Int
    public let threads: Int
    public let slidingWindow: Bool
    /// Leading tokens a sliding window never drops: the system prompt of the last chat evaluated.
    public private(set) var keepCount = 0
    /// Tokens whose keys and values are in the cache, in order (a placeholder token where media rows were
    /// given instead), with, per position, what media row it holds (0: none; see `PromptPiece`) and the RoPE
    /// position the token after it gets (M-RoPE positions run behind the cache positions after an image).
    public private(set) var tokens: [Int32] = []
    public private(set) var mediaKeys: [UInt64] = []
    public private(set) var ropeNext: [Int32] = []
    /// Tokens run through the model since creation (prompt reuse makes this smaller than the prompts' total).
    public private(set) var evaluatedTokenCount = 0

    let cache: KVCache
    /// The KV cache, for inspection.
    public var kvCache: KVCache { cache }
    let workspace: Workspace
    let logits: AlignedBuffer<Float>
    /// Final hidden state (after the output norm) of the last evaluated position.
    let hidden: AlignedBuffer<Float>
    var hasLogits = false
    private let cancelFlag: UnsafeMutablePointer<UInt32>
    /// Embeddings of the images and clips this context has seen, by content (Media.swift).
    let mediaCache = MediaCache()

    public var vocabularySize: Int { model.languageModel.vocabularySize }
    public var chatTemplate: ChatTemplate

    public init(model: Model, options: ContextOptions = ContextOptions()) throws {
        guard options.contextSize >= 0, options.threads >= 0, options.batchSize >= 0 else {
            throw QwenError.invalidArgument("context options must not be negative")
        }
        guard options.contextSize <= 1 << 22, options.threads <= 1024, options.batchSize <= 1 << 16 else {
            throw QwenError.invalidArgument("context options too large (n_ctx <= 4194304, n_threads <= 1024, n_batch <= 65536)")
        }
        self.model = model
        let config = model.config
        capacity = options.contextSize > 0 ? options.contextSize : min(4096, max(config.contextLength, 1))
        batchSize = max(1, min(options.batchSize > 0 ? options.batchSize : 512, capacity))
        slidingWindow = options.slidingWindow
        let requested = options.threads > 0 ? options.threads : model.options.threads
        threads = requested > 0 ? requested : ThreadPool.availableCores
        cache = try KVCache(layers: config.layerCount, kvHeads: config.kvHeadCount, headDim: config.headDim,
                            capacity: capacity, type: options.kvType)
        let pool = threads > 1 ? ThreadPool(threads: threads) : nil
        workspace = try Workspace(config: config, batch: batchSize, capacity: capacity, pool: pool)
        logits = try AlignedBuffer(count: model.languageModel.vocabularySize, what: "logits")
        hidden = try AlignedBuffer(count: config.hiddenSize, what: "hidden state")
        cancelFlag = .allocate(capacity: 1)
        cancelFlag.initialize(to: 0)
        chatTemplate = ChatTemplate(model: model)
    }

    deinit { cancelFlag.deallocate() }

    /// Empties the KV cache.
    public func reset() {
        tokens.removeAll(keepingCapacity: true)
        mediaKeys.removeAll(keepingCapacity: true)
        ropeNext.removeAll(keepingCapacity: true)
        hasLogits = false
        cq_store_release_u32(cancelFlag, 0)
    }

    /// Sets the cached tokens after their keys and values were restored (state loading).
    func replaceTokens(_ newTokens: [Int32], mediaKeys keys: [UInt64], ropeNext next: [Int32], hasLogits: Bool) {
        tokens = newTokens
        mediaKeys = keys
        ropeNext = next
        self.hasLogits = hasLogits && !newTokens.isEmpty
    }

    /// Drops the cached tokens in `span`; the tokens after it move down, their keys re-encoded for their new
    /// positions. The last logits no longer describe the cache (unless `keepingLogits`, for generation,
    /// which samples from them once more as llama.cpp's context shift does).
    public func discard(_ span: Range<Int>, keepingLogits: Bool = false) throws {
        guard span.lowerBound >= 0, span.upperBound <= tokens.count else {
            throw QwenError.invalidArgument("discard \(span) is outside the \(tokens.count) cached tokens")
        }
        guard !span.isEmpty else { return }
        let lm = model.languageModel
        cache.discard(span, filled: tokens.count) { lm.moveCachedKey($0, by: span.count) }
        tokens.removeSubrange(span)
        mediaKeys.removeSubrange(span)
        ropeNext.removeSubrange(span)
        for i in span.lowerBound ..< ropeNext.count { ropeNext[i] -= Int32(span.count) }  // keys moved by span.count
        if !keepingLogits { hasLogits = false }
        keepCount = min(keepCount, span.lowerBound)
    }

    /// Keeps the first `count` cached tokens and forgets the rest.
    public func truncate(to count: Int) {
        guard count < tokens.count else { return }
        tokens.removeLast(tokens.count - max(0, count))
        mediaKeys.removeLast(mediaKeys.count - max(0, count))
        ropeNext.removeLast(ropeNext.count - max(0, count))
        hasLogits = false
    }

    /// Makes the running call (or, if none runs, the next one) stop with `.cancelled`. Any thread may call it.
    public func cancel() { cq_store_release_u32(cancelFlag, 1) }

    func takeCancellation() -> Bool {
        guard cq_load_acquire_u32(cancelFlag) != 0 else { return false }
        cq_store_release_u32(cancelFlag, 0)
        return true
    }

    /// The logits after the last evaluated token (vocabularySize floats), if any.
    public var lastLogits: UnsafeBufferPointer<Float>? {
        hasLogits ? UnsafeBufferPointer(start: logits.pointer, count: vocabularySize) : nil
    }

    /// Appends `newTokens` at the next positions. Optionally copies the last token's logits out, or every
    /// token's logits (`[count][vocabularySize]`) with `allLogits`. Nothing is evaluated if the tokens do not fit.
    public func eval(_ newTokens: [Int32], logits out: UnsafeMutablePointer<Float>? = nil, allLogits: Bool = false) throws {
        try eval(PromptPlan(pieces: [.tokens(newTokens)], after: ropeNext.last ?? 0, mrope: usesMRoPE), logits: out, allLogits: allLogits)
    }

    /// Appends prompt pieces (token runs, media rows) at the next positions; as `eval(_:logits:allLogits:)`.
    public func eval(pieces: [PromptPiece], logits out: UnsafeMutablePointer<Float>? = nil, allLogits: Bool = false) throws {
        try eval(PromptPlan(pieces: pieces, after: ropeNext.last ?? 0, mrope: usesMRoPE), logits: out, allLogits: allLogits)
    }

    var usesMRoPE: Bool { model.config.mropeSections != nil }

    func eval(_ plan: PromptPlan, logits out: UnsafeMutablePointer<Float>?, allLogits: Bool) throws {
        let count = plan.tokens.count
        guard count > 0 else { throw QwenError.invalidArgument("no tokens to evaluate") }
        let vocab = vocabularySize
        for (t, row) in zip(plan.tokens, plan.rows) where row < 0 && (t < 0 || Int(t) >= vocab) {
            throw QwenError.invalidArgument("token id \(t) is outside the vocabulary (0..<\(vocab))")
        }
        guard tokens.count + count <= capacity else {
            throw QwenError(.contextFull, "context full: \(tokens.count) + \(count) tokens exceed n_ctx \(capacity)")
        }
        let lm = model.languageModel
        let allLogits = allLogits && out != nil
        let d = model.config.hiddenSize
        let components = model.config.mropeSections == nil ? 1 : 3
        let hasMedia = plan.rows.contains { $0 >= 0 }
        // explicit positions only where they differ from the cache positions
        let explicitPositions = components == 3 || plan.positions[0].first.map { Int($0) != tokens.count } ?? false
        var done = 0
        workspace.evaluationEnd = tokens.count + count  // the chunks below end there
        try plan.tokens.withUnsafeBufferPointer { all in
            try plan.rows.withUnsafeBufferPointer { rows in
                try plan.embeddings.withUnsafeBufferPointer { embeddings in
                    try withUnsafeTemporaryAllocation(of: Int32.self, capacity: components * min(batchSize, count)) { positions in
                        while done < count {
                            if takeCancellation() { throw QwenError(.cancelled, "evaluation cancelled") }
                            let n = min(batchSize, count - done)
                            for c in 0 ..< components {
                                for t in 0 ..< n { positions[c * n + t] = plan.positions[min(c, plan.positions.count - 1)][done + t] }
                            }
                            let input = ForwardInput(
                                tokens: UnsafeBufferPointer(rebasing: all[done ..< done + n]),
                                embeddingRows: hasMedia ? rows.baseAddress! + done : nil,
                                embeddings: hasMedia ? embeddings.baseAddress : nil,
                                positions: explicitPositions ? UnsafePointer(positions.baseAddress!) : nil)
                            let isLast = done + n == count
                            let target: UnsafeMutablePointer<Float>? = allLogits ? out.map { $0 + done * vocab } : (isLast ? logits.pointer : nil)
                            hasLogits = false
                            try lm.forward(input, start: tokens.count, cache: cache, workspace: workspace, logits: target, allLogits: allLogits)
                            tokens.append(contentsOf: all[done ..< done + n])
                            mediaKeys.append(contentsOf: plan.mediaKeys[done ..< done + n])
                            ropeNext.append(contentsOf: plan.ropeNext[done ..< done + n])
                            evaluatedTokenCount += n
                            if isLast {  // the model leaves the normed rows it computed logits for in workspace.normed
                                hidden.pointer.update(from: workspace.normed.pointer + (allLogits ? (n - 1) * d : 0), count: d)
                            }
                            done += n
                        }
                    }
                }
            }
        }
        if allLogits, let out {
            logits.pointer.update(from: out + (count - 1) * vocab, count: vocab)
        } else if let out {
            out.update(from: logits.pointer, count: vocab)
        }
        hasLogits = true
    }

    /// Evaluates `prompt` so the cache holds exactly it, reusing the longest cached prefix.
    public func evalReusingPrefix(_ prompt: [Int32]) throws {
        try evalReusingPrefix(pieces: [.tokens(prompt)])
    }

    /// Evaluates prompt pieces so the cache holds exactly them, reusing the longest cached prefix (media
    /// match by content, through their keys).
    public func evalReusingPrefix(pieces: [PromptPiece]) throws {
        let plan = PromptPlan(pieces: pieces, after: 0, mrope: usesMRoPE)
        let prompt = plan.tokens, keys = plan.mediaKeys
        guard !prompt.isEmpty else { throw QwenError.invalidArgument("empty prompt") }
        guard prompt.count <= capacity else {
            throw QwenError(.contextFull, "prompt of \(prompt.count) tokens exceeds n_ctx \(capacity)")
        }
        if prompt == tokens, keys == mediaKeys, hasLogits { return }
        func commonPrefix() -> Int {
            var n = 0
            while n < min(prompt.count, tokens.count), prompt[n] == tokens[n], keys[n] == mediaKeys[n] { n += 1 }
            return n
        }
        var common = commonPrefix()
        // with the sliding window, turns dropped from the conversation are dropped from the cache and what
        // follows is moved, not recomputed (an approximation: those keys and values were computed while
        // attending to the dropped turns; without the window, results always equal a fresh evaluation)
        if slidingWindow, common < prompt.count - 1, let resume = resumePoint(of: prompt[common...], keys: keys[common...], after: common) {
            try discard(common ..< resume)
            common = commonPrefix()
        }
        // the last prompt token is always evaluated, so its logits are fresh
        truncate(to: min(common, prompt.count - 1))
        try eval(plan.suffix(from: tokens.count), logits: nil, allLogits: false)
    }

    /// Where in the cache (after `start`) `rest` continues for long enough to be worth keeping: 16 tokens,
    /// or everything that remains of the cache.
    private func resumePoint(of rest: ArraySlice<Int32>, keys: ArraySlice<UInt64>, after start: Int) -> Int? {
        guard let first = rest.first else { return nil }
        for j in (start + 1) ..< max(start + 1, tokens.count) where tokens[j] == first {
            var n = 0
            while n < rest.count - 1, j + n < tokens.count, tokens[j + n] == rest[rest.startIndex + n],
                  mediaKeys[j + n] == keys[keys.startIndex + n] { n += 1 }
            if n >= 16 || j + n == tokens.count || n == rest.count - 1 { return j }
        }
        return nil
    }

    /// With the sliding window, drops the oldest turns after the system prompt until the rendered chat fits
    /// the cache (whole user/assistant exchanges where possible; the last message always stays), and
    /// records how many leading tokens are the system prompt.
    func fitToWindow(_ messages: [ChatMessage], render: ([ChatMessage]) -> [Int32]) throws -> [Int32] {
        var kept = messages
        var ids = render(kept)
        let systemCount = kept.first?.role == "system" ? 1 : 0
        while slidingWindow, ids.count >= capacity, kept.count - systemCount > 1 {
            let drop = kept.count - systemCount > 2 && kept[systemCount].role == "user" && kept[systemCount + 1].role == "assistant" ? 2 : 1
            kept.removeSubrange(systemCount ..< systemCount + drop)
            ids = render(kept)
        }
        if slidingWindow {
            let system = Array(kept.prefix(systemCount))
            keepCount = system.isEmpty && chatTemplate.defaultSystemMessage == nil ? 0
                : model.tokenizer.encode(chatTemplate.render(system, addGenerationPrompt: false), parseSpecial: true).count
        }
        return ids
    }

    /// Renders messages with the chat template, tokenizes them and evaluates what is not cached yet.
    /// `enableThinking` false asks a Qwen3 model to answer without reasoning (`ChatTemplate.render`).
    public func evalChat(_ messages: [ChatMessage], addGenerationPrompt: Bool, enableThinking: Bool = true) throws {
        guard !messages.isEmpty else { throw QwenError.invalidArgument("no messages") }
        let ids = try fitToWindow(messages) {
            model.tokenizer.encode(chatTemplate.render($0, addGenerationPrompt: addGenerationPrompt, enableThinking: enableThinking),
                                   parseSpecial: true)
        }
        try evalReusingPrefix(ids)
    }

    /// Why generation ended.
    public enum StopReason: Sendable, Equatable {
        case endOfGeneration, maxTokens, stopString, callback
    }

    /// Samples up to `maxTokens` tokens, evaluating each. `onToken` gets every token with the bytes now
    /// complete as UTF-8 (partial characters and possible beginnings of a stop string are held back; token
    /// -1 delivers what is left at the end); returning true stops. Ends before an end-of-generation token
    /// (not evaluated, not reported), or when the text reaches one of `stop` (the stop string and what follows
    /// it are not delivered; the token completing it is not evaluated).
    @discardableResult
    public func generate(sampling: SamplingParams = SamplingParams(), maxTokens: Int, stop: [String] = [],
                         onToken: (Int32, [UInt8]) -> Bool) throws -> (tokens: Int, reason: StopReason) {
        try sampling.validate()
        guard maxTokens >= 0 else { throw QwenError.invalidArgument("max_tokens must not be negative") }
        guard hasLogits else { throw QwenError.invalidArgument("nothing to continue from: evaluate a prompt first") }
        let stops = stop.map { Array($0.utf8) }.filter { !$0.isEmpty }
        let tokenizer = model.tokenizer
        let sampler = Sampler(params: sampling, vocabularySize: vocabularySize)
        var stream = UTF8Stream()
        var held: [UInt8] = []  // complete text not delivered yet: it may begin a stop string
        var generated = 0
        var reason = StopReason.maxTokens
        // whatever ends generation (an error included), what is held back is delivered, unless cut by a stop string
        defer {
            if reason != .stopString {
                let rest = held + stream.flush()
                if !rest.isEmpty { _ = onToken(-1, rest) }
            }
        }
        while generated < maxTokens {
            if takeCancellation() { throw QwenError(.cancelled, "generation cancelled") }
            if tokens.count >= capacity, slidingWindow, tokens.count - keepCount >= 2 {
                let keep = keepCount
                try discard(keep ..< keep + (tokens.count - keep) / 2, keepingLogits: true)
            }
            guard tokens.count < capacity else {
                throw QwenError(.contextFull, "context full after \(generated) generated tokens (n_ctx \(capacity))")
            }
            let token = sampler.sample(logits.pointer, count: vocabularySize, history: tokens[...])
            if tokenizer.endOfGenerationIDs.contains(token) {
                reason = .endOfGeneration
                break
            }
            generated += 1
            held += stream.push(tokenizer.pieceBytes(token))
            if let match = Self.firstMatch(of: stops, in: held) {
                let piece = Array(held[..<match])
                held.removeAll()
                reason = .stopString
                _ = onToken(token, piece)
                break
            }
            let keep = Self.longestStopPrefix(stops, endingAt: held)
            let piece = Array(held[..<(held.count - keep)])
            held.removeFirst(held.count - keep)
            let stopRequested = onToken(token, piece)
            try eval([token])
            if stopRequested {
                reason = .callback
                break
            }
        }
        return (generated, reason)
    }

    /// Start of the earliest occurrence of any stop string in `text`.
    public static func firstMatch(of stops: [[UInt8]], in text: [UInt8]) -> Int? {
        guard !stops.isEmpty else { return nil }
        var best: Int?
        for s in stops where s.count <= text.count {
            for start in 0 ... text.count - s.count where text[start ..< start + s.count].elementsEqual(s) {
                if best.map({ start < $0 }) ?? true { best = start }
                break
            }
        }
        return best
    }

    /// Length of the longest tail of `text` that is a proper beginning of some stop string.
    public static func longestStopPrefix(_ stops: [[UInt8]], endingAt text: [UInt8]) -> Int {
        var longest = 0
        for s in stops {
            for n in stride(from: min(s.count - 1, text.count), to: longest, by: -1)
            where text[(text.count - n)...].elementsEqual(s[..<n]) {
                longest = n
                break
            }
        }
        return longest
    }
}

/// Splits a byte stream at UTF-8 character boundaries, holding back an incomplete trailing character.
public struct UTF8Stream {
    private var pending: [UInt8] = []

    public init() {}

    public mutating func push(_ bytes: [UInt8]) -> [UInt8] {
        pending.append(contentsOf: bytes)
        let cut = Self.completePrefixLength(pending)
        let out = Array(pending[..<cut])
        pending.removeFirst(cut)
        return out
    }

    /// Whatever is left (an incomplete or invalid tail).
    public mutating func flush() -> [UInt8] {
        defer { pending.removeAll() }
        return pending
    }

    /// Length of the prefix that does not end inside a multi-byte character that may still be completed.
    static func completePrefixLength(_ b: [UInt8]) -> Int {
        let n = b.count
        // look back at most 3 bytes for the start of the last character
        var i = n - 1
        while i >= 0, i >= n - 4 {
            let c = b[i]
            if c & 0xC0 == 0x80 { i -= 1; continue }  // continuation byte
            let need: Int
            if c & 0x80 == 0 { need = 1 } else if c & 0xE0 == 0xC0 { need = 2 } else if c & 0xF0 == 0xE0 { need = 3 } else if c & 0xF8 == 0xF0 { need = 4 } else { return n }
            return n - i < need ? i : n
        }
        return n
    }
}
