// Harnesses of the file readers: GGUF, safetensors, JSON (config.json, tokenizer.json, tokenizer_config.json) and a
// Hugging Face folder whose config.json is the input.
import QwenFormats
import QwenModels
import QwenRuntime
import QwenTokenizer

enum FormatHarnesses {
    /// GGUF: the reader; when it accepts the file, every tensor must lie inside it; then the config, the tokenizer
    /// and the whole model are built from it, and a model that loads evaluates a prompt and generates.
    static func gguf(_ data: UnsafeRawBufferPointer) throws {
        try withFile("input.gguf", data) { path in
            guard let file = try refusable({ try GGUFFile(path: path, map: true) }) else { return }
            let lower = UInt(bitPattern: file.file.base), upper = lower + UInt(file.file.count)
            for t in file.tensors {
                let start = UInt(bitPattern: t.data)
                try check(start >= lower && start <= upper && t.byteCount <= Int(upper - start), .gguf,
                          "tensor '\(t.name)' (\(t.byteCount) bytes) lies outside the file")
                try check(t.type.byteCount(elements: t.elementCount) == t.byteCount, .gguf, "tensor '\(t.name)' size mismatch")
            }
            for (key, _) in file.metadata { try check(file[key] != nil, .gguf, "metadata '\(key)' not found by key") }
            try refusable { _ = try ModelConfig(gguf: file) }
            if let tokenizer = try refusable({ try Tokenizer(gguf: file) }) {
                try TextHarnesses.exercise(tokenizer, .gguf)
            }
            guard let model = try refusable({ try Model.load(path: path, options: singleThreaded) }) else { return }
            try exercise(model, .gguf)
        }
    }

    static var singleThreaded: ModelOptions {
        var o = ModelOptions()
        o.threads = 1
        return o
    }

    /// A loaded model: a small context evaluates a chat prompt and generates a few tokens, greedy and sampled; the
    /// state saved from it loads back.
    static func exercise(_ model: Model, _ harness: Harness) throws {
        var options = ContextOptions()
        options.contextSize = 48
        options.batchSize = 8
        options.threads = 1
        guard let ctx = try refusable({ try Context(model: model, options: options) }) else { return }
        let chat = [ChatMessage(role: "user", content: "Hi \u{4F60}\u{597D} <think>")]
        guard try refusable({ try ctx.evalChat(chat, addGenerationPrompt: true) }) != nil else { return }
        let vocabulary = ctx.vocabularySize
        if let logits = ctx.lastLogits {
            try check(logits.count == vocabulary, harness, "logits count \(logits.count) != vocabulary \(vocabulary)")
        }
        var sampled = SamplingParams()
        sampled.seed = 7
        for params in [SamplingParams.greedy, sampled] {
            var delivered: [Int32] = []
            try refusable {
                try ctx.generate(sampling: params, maxTokens: 3) { token, _ in
                    delivered.append(token)
                    return false
                }
            }
            for t in delivered { try check(t == -1 || (t >= 0 && Int(t) < vocabulary), harness, "generated token \(t)") }
        }
        for t in ctx.tokens { try check(t >= 0 && Int(t) < vocabulary, harness, "cached token \(t) outside the vocabulary") }
        if let state = try refusable({ try ctx.saveState() }) {
            try check(state.count == ctx.stateSize, harness, "state size \(state.count) != stateSize \(ctx.stateSize)")
            let count = ctx.tokens.count
            ctx.reset()
            try state.withUnsafeBytes { try ctx.loadState($0) }
            try check(ctx.tokens.count == count, harness, "state round trip: \(ctx.tokens.count) tokens, expected \(count)")
        }
    }

    /// safetensors: the reader; every tensor it accepts lies inside the file with the size its dtype and shape give.
    static func safetensors(_ data: UnsafeRawBufferPointer) throws {
        try withFile("input.safetensors", data) { path in
            guard let file = try refusable({ try SafetensorsFile(path: path, map: true) }) else { return }
            let lower = UInt(bitPattern: file.file.base), upper = lower + UInt(file.file.count)
            for t in file.tensors {
                let start = UInt(bitPattern: t.data)
                try check(start >= lower && start <= upper && t.byteCount <= Int(upper - start), .safetensors,
                          "tensor '\(t.name)' (\(t.byteCount) bytes) lies outside the file")
                try check(elementCount(t.shape).flatMap { t.type.byteCount(elements: $0) } == t.byteCount, .safetensors,
                          "tensor '\(t.name)' size mismatch")
                try check(file.tensor(t.name) != nil, .safetensors, "tensor '\(t.name)' not found by name")
            }
        }
    }

    /// JSON: the reader; a value it accepts serializes to text that parses back to the same value (when it holds
    /// only finite numbers). The value is then read as config.json, tokenizer.json and tokenizer_config.json.
    static func json(_ data: UnsafeRawBufferPointer) throws {
        guard let value = try refusable({ try JSON.parse(data, what: "input") }) else { return }
        let text = value.serialized
        if let again = try refusable({ try JSON.parse(text, what: "serialized input") }) {
            if value.isFinite { try check(again == value, .json, "serialized value parses to another value") }
        } else if value.isFinite {
            throw HarnessFailure("json", "serialized value does not parse: \(text.prefix(200))")
        }
        try refusable { _ = try ModelConfig(huggingFace: value) }
        if let tokenizer = try refusable({ try Tokenizer(huggingFace: value, what: "input as tokenizer.json") }) {
            try TextHarnesses.exercise(tokenizer, .json)
        }
        let base = try TextHarnesses.miniTokenizerJSON()
        if let tokenizer = try refusable({ try Tokenizer(huggingFace: base, config: value, what: "input as tokenizer_config.json") }) {
            try TextHarnesses.exercise(tokenizer, .json)
            _ = ChatTemplate(modelTemplate: tokenizer.chatTemplate)
        }
    }

    /// config.json of a Hugging Face folder holding the mini model's weights and tokenizer: a config that is read
    /// must either be refused when the weights do not match it or give a model that evaluates.
    static func hfconfig(_ data: UnsafeRawBufferPointer) throws {
        let folder = try hfFolder()
        try FuzzPaths.write(data, to: folder + "/config.json")
        guard let model = try refusable({ try Model.load(path: folder, options: singleThreaded) }) else { return }
        try exercise(model, .hfconfig)
    }

    /// A scratch folder with the mini model's safetensors and tokenizer files (links), config.json left to the input.
    static func hfFolder() throws -> String {
        try hfFolderResult.get()
    }

    private static let hfFolderResult: Result<String, Error> = Result {
        let folder = try FuzzPaths.scratchFolder() + "/hf"
        mkdir(folder, 0o700)
        for name in ["model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
            let target = FuzzPaths.fuzzFixture("mini-hf/" + name)
            guard fileExists(target) else { throw QwenError.io("missing fuzz fixture '\(target)'") }
            unlink(folder + "/" + name)
            guard symlink(target, folder + "/" + name) == 0 else { throw QwenError.io("cannot link '\(target)'") }
        }
        return folder
    }
}

extension JSON {
    /// Whether every number in the value is finite (NaN and infinities do not survive serialization).
    var isFinite: Bool {
        switch self {
        case let .number(n): return n.isFinite
        case let .array(items): return items.allSatisfy(\.isFinite)
        case let .object(pairs): return pairs.allSatisfy { $0.value.isFinite }
        default: return true
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
