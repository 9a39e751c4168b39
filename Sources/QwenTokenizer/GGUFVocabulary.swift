import QwenFormats

/// A tokenizer as llama.cpp's converter stores it in a GGUF file (`tokenizer.ggml.*`), made from a Hugging Face
/// folder the way `convert_hf_to_gguf.py` makes it (`get_vocab_base` / `_set_vocab_qwen` and gguf-py's
/// `SpecialVocab`), so a file we convert loads in llama.cpp and in libqwen alike.
public struct GGUFVocabulary: Sendable {
    /// llama.cpp token types.
    public enum TokenType: Int32, Sendable { case normal = 1, control = 3, userDefined = 4, unused = 5 }

    /// Token strings by id (byte-level BPE strings, added tokens as written, "[PADi]" for ids without a token).
    public var tokens: [String] = []
    public var types: [TokenType] = []
    /// "left right" in rank order.
    public var merges: [String] = []
    /// (kind, id) in the order SpecialVocab finds them; kind is bos, eos, unk, sep, pad, cls or mask.
    public var specialIDs: [(kind: String, id: Int)] = []
    /// (kind, add) for `tokenizer.ggml.add_KIND_token`.
    public var addSpecial: [(kind: String, add: Bool)] = []
    public var chatTemplate: String?

    static let specialKinds = ["bos", "eos", "unk", "sep", "pad", "cls", "mask"]

    /// Reads the tokenizer of a Hugging Face folder: `tokenizer.json` (+ `tokenizer_config.json`, `config.json`),
    /// or the first generation's `qwen.tiktoken`. `vocabularySize` (config.json's `vocab_size`) pads the list.
    public static func read(huggingFaceFolder folder: String, vocabularySize: Int?) throws -> GGUFVocabulary {
        let config = fileExists(folder + "/config.json") ? try JSON.parseFile(folder + "/config.json") : nil
        if fileExists(folder + "/tokenizer.json") {
            return try fromTokenizerJSON(folder, config: config, vocabularySize: vocabularySize)
        }
        if fileExists(folder + "/qwen.tiktoken") {
            return try fromTiktoken(folder, config: config, vocabularySize: vocabularySize)
        }
        throw QwenError.format("'\(folder)' has neither tokenizer.json nor qwen.tiktoken")
    }

    private static func fromTokenizerJSON(_ folder: String, config: JSON?, vocabularySize: Int?) throws -> GGUFVocabulary {
        let what = folder + "/tokenizer.json"
        let json = try JSON.parseFile(what)
        guard let vocab = json["model"]?["vocab"]?.object else { throw QwenError.format("\(what): missing 'model.vocab'") }
        var byID: [Int: String] = [:]
        for (token, id) in vocab {
            guard let i = id.int, i >= 0, i < Tokenizer.maxTokens else { throw QwenError.format("\(what): invalid id of '\(token)'") }
            byID[i] = token
        }
        var added: [Int: (content: String, special: Bool)] = [:]
        for entry in json["added_tokens"]?.array ?? [] {
            guard let i = entry["id"]?.int, i >= 0, i < Tokenizer.maxTokens, let content = entry["content"]?.string else {
                throw QwenError.format("\(what): invalid added token")
            }
            added[i] = (content, entry["special"]?.bool ?? false)
            byID[i] = content
        }
        let count = vocabularySize ?? ((byID.keys.max() ?? -1) + 1)
        guard let largest = byID.keys.max(), largest < count else {
            throw QwenError.format("\(what): token ids exceed the vocabulary size \(count)")
        }
        var v = GGUFVocabulary()
        v.tokens.reserveCapacity(count)
        v.types.reserveCapacity(count)
        for i in 0 ..< count {
            guard let token = byID[i] else {
                v.tokens.append("[PAD\(i)]")
                v.types.append(.unused)
                continue
            }
            v.tokens.append(token)
            if let a = added[i] {
                v.types.append(a.special || looksSpecial(token) ? .control : .userDefined)
            } else {
                v.types.append(.normal)
            }
        }
        for (rank, m) in (json["model"]?["merges"]?.array ?? []).enumerated() {
            if let s = m.string {
                v.merges.append(s)
            } else if let pair = m.array, pair.count == 2, let a = pair[0].string, let b = pair[1].string {
                // gguf-py writes pairs as "a b", with spaces inside the parts moved to U+0120
                func escaped(_ s: String) -> String { String(s.map { $0 == " " ? "\u{0120}" : $0 }) }
                v.merges.append(escaped(a) + " " + escaped(b))
            } else {
                throw QwenError.format("\(what): merge \(rank) is neither \"a b\" nor [a, b]")
            }
        }
        // special tokens: tokenizer_config.json's token strings, then config.json's *_token_id for the rest
        let postProcessors = json["post_processor"].map { p in p["processors"]?.array ?? [p] } ?? []
        if postProcessors.contains(where: { $0["type"]?.string == "ByteLevel" }) {
            v.addSpecial = [("bos", false), ("eos", false)]
        }
        let configPath = folder + "/tokenizer_config.json"
        if fileExists(configPath) {
            let tc = try JSON.parseFile(configPath)
            if let template = tc["chat_template"]?.string {
                v.chatTemplate = template
            } else if fileExists(folder + "/chat_template.jinja") {
                v.chatTemplate = try readTextFile(folder + "/chat_template.jinja")
            } else if fileExists(folder + "/chat_template.json") {
                v.chatTemplate = try JSON.parseFile(folder + "/chat_template.json")["chat_template"]?.string
            }
            for kind in specialKinds {
                if let add = tc["add_\(kind)_token"]?.bool, !v.addSpecial.contains(where: { $0.kind == kind }) {
                    v.addSpecial.append((kind, add))
                }
                guard let content = tc["\(kind)_token"]?.string ?? tc["\(kind)_token"]?["content"]?.string,
                      let id = added.first(where: { $0.value.content == content })?.key else { continue }
                v.setSpecial(kind, id)
            }
        }
        v.setSpecialIDs(fromConfig: config)
        return v
    }

    private static func fromTiktoken(_ folder: String, config: JSON?, vocabularySize: Int?) throws -> GGUFVocabulary {
        let tokenizer = try Tokenizer.load(tiktokenFolder: folder)
        let count = vocabularySize ?? tokenizer.count
        guard tokenizer.count <= count else {
            throw QwenError.format("'\(folder)': \(tokenizer.count) tokens exceed the vocabulary size \(count)")
        }
        var v = GGUFVocabulary()
        var rankIDs: [Int32] = []
        for i in 0 ..< count {
            let id = Int32(i)
            switch i < tokenizer.count ? tokenizer.kinds[i] : .unused {
            case .normal:
                v.tokens.append(ByteLevel.encode(tokenizer.pieceBytes(id)))
                v.types.append(.normal)
                rankIDs.append(id)
            case .special, .added:
                v.tokens.append(String(decoding: tokenizer.pieceBytes(id), as: UTF8.self))
                v.types.append(.control)
            case .unused, .byte:
                v.tokens.append("[PAD\(i)]")
                v.types.append(.unused)
            }
        }
        for (left, right, _) in Tokenizer.mergesFromRanks(rankIDs, pieces: tokenizer.pieces, index: tokenizer.index) {
            guard left != UInt32.max else {
                throw QwenError.format("'\(folder)/qwen.tiktoken': a token is not the merge of two lower-ranked tokens")
            }
            v.merges.append(v.tokens[Int(left)] + " " + v.tokens[Int(right)])
        }
        v.setSpecialIDs(fromConfig: config)
        if v.specialIDs.isEmpty, let eot = tokenizer.tokenID("<|endoftext|>") {
            v.specialIDs = [("bos", Int(eot)), ("eos", Int(eot)), ("unk", Int(eot))]
        }
        return v
    }

    /// Added tokens llama.cpp treats as control tokens even when not marked special.
    static func looksSpecial(_ token: String) -> Bool {
        (token.hasPrefix("<|") && token.hasSuffix("|>")) || (token.hasPrefix("<｜") && token.hasSuffix("｜>"))
            || ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].contains(token) || (token.hasPrefix("<unused") && token.hasSuffix(">"))
    }

    mutating func setSpecial(_ kind: String, _ id: Int) {
        guard id >= 0, id < tokens.count, !specialIDs.contains(where: { $0.kind == kind }) else { return }
        specialIDs.append((kind, id))
    }

    mutating func setSpecialIDs(fromConfig config: JSON?) {
        guard let config else { return }
        for kind in Self.specialKinds {
            if let id = config["\(kind)_token_id"]?.int ?? config["text_config"]?["\(kind)_token_id"]?.int { setSpecial(kind, id) }
        }
    }

    /// The `tokenizer.*` metadata, in the converter's order.
    public var metadata: [(key: String, value: GGUFValue)] {
        var m: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.pre", .string("qwen2")),
            ("tokenizer.ggml.tokens", .array(.string, tokens.map { .string($0) })),
            ("tokenizer.ggml.token_type", .array(.int32, types.map { .int(Int64($0.rawValue), .int32) })),
        ]
        if !merges.isEmpty { m.append(("tokenizer.ggml.merges", .array(.string, merges.map { .string($0) }))) }
        let keyNames = ["pad": "padding", "unk": "unknown", "sep": "seperator"]  // llama.cpp's key spellings
        for (kind, id) in specialIDs { m.append(("tokenizer.ggml.\(keyNames[kind] ?? kind)_token_id", .uint(UInt64(id), .uint32))) }
        for (kind, add) in addSpecial { m.append(("tokenizer.ggml.add_\(kind)_token", .bool(add))) }
        if let chatTemplate { m.append(("tokenizer.chat_template", .string(chatTemplate))) }
        return m
    }
}
