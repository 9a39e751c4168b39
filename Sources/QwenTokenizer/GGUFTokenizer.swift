import QwenFormats

extension Tokenizer {
    /// GGUF token types (llama.cpp `llama_token_type`).
    enum GGUFTokenType: Int {
        case undefined = 0, normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    /// A tokenizer from the metadata llama.cpp's converter writes: `tokenizer.ggml.model` "gpt2" with
    /// `tokenizer.ggml.pre` "qwen2" (others are unsupported), `tokens` (byte-level strings for normal tokens,
    /// literal text for added ones), `token_type`, `merges`, special token ids, `add_bos_token`,
    /// `tokenizer.chat_template`.
    ///
    /// Token types: normal (1, and 0) = BPE vocabulary; control (3) and unknown (2) = special tokens, matched
    /// only with `parseSpecial`; user-defined (4) = always matched; unused (5, the `[PAD…]` filler) = never
    /// matched and decoded as nothing; byte (6, `<0xXX>`) = never matched, decoded as that byte.
    /// Text is NFC-normalized as the Hugging Face tokenizer does (llama.cpp itself does not normalize).
    public convenience init(gguf: GGUFFile) throws {
        let what = "GGUF '\(gguf.file.path)'"
        func fail(_ m: String) -> QwenError { QwenError.format("\(what): \(m)") }
        guard let model = gguf["tokenizer.ggml.model"] else { throw fail("no tokenizer (tokenizer.ggml.model missing)") }
        guard let modelName = model.string else { throw fail("tokenizer.ggml.model is not a string") }
        guard modelName == "gpt2" else {
            throw QwenError.unsupported("\(what): tokenizer model '\(modelName)' is not supported (gpt2 byte-level BPE is)")
        }
        // Qwen (first generation, architecture `qwen`): the original tokenizer is tiktoken over the same vocabulary
        // (see Tiktoken.swift): specials are matched after NFC, the chat format also stops at <|im_start|>, and
        // files from converters that did not write a pre-tokenizer still use Qwen's pattern
        let isQwenV1 = gguf["general.architecture"]?.string == "qwen"
        let pre = gguf["tokenizer.ggml.pre"]?.string ?? (isQwenV1 ? "qwen2" : "default")
        guard pre == "qwen2" else {
            throw QwenError.unsupported("\(what): pre-tokenizer '\(pre)' is not supported (qwen2 is)")
        }
        guard let tokenValue = gguf["tokenizer.ggml.tokens"] else { throw fail("tokenizer.ggml.tokens missing") }
        guard let tokens = tokenValue.stringList, !tokens.isEmpty, tokens.count <= Tokenizer.maxTokens else {
            throw fail("tokenizer.ggml.tokens is not a list of strings")
        }
        var types = [Int](repeating: GGUFTokenType.normal.rawValue, count: tokens.count)
        if let typeValue = gguf["tokenizer.ggml.token_type"] {
            guard let values = typeValue.array else { throw fail("tokenizer.ggml.token_type is not an array") }
            let ints = values.compactMap(\.int)
            guard ints.count == values.count, ints.count == tokens.count else {
                throw fail("tokenizer.ggml.token_type has \(values.count) entries for \(tokens.count) tokens")
            }
            types = ints
        }
        guard let mergeValue = gguf["tokenizer.ggml.merges"] else { throw fail("tokenizer.ggml.merges missing") }
        guard let merges = mergeValue.stringList else { throw fail("tokenizer.ggml.merges is not a list of strings") }

        var src = Source()
        src.what = what
        src.count = tokens.count
        src.mergesKeepFirst = true  // llama.cpp keeps the first rank of a repeated pair
        src.strictMerges = false    // and ignores merges it cannot resolve
        src.rawTokens.reserveCapacity(tokens.count * 8)
        src.rawVocab.reserveCapacity(tokens.count)
        var imStart: Int32?
        for i in tokens.indices {
            let id = Int32(i)
            switch GGUFTokenType(rawValue: types[i]) {
            case .normal?, .undefined?:
                // byte-level strings straight from the file's bytes into the raw vocabulary
                let start = src.rawTokens.count
                if ByteLevel.append(utf8: tokens.bytes(i), to: &src.rawTokens) {
                    src.rawVocab.append((start ..< src.rawTokens.count, id))
                } else {
                    src.vocab.append((tokens[i], id))
                }
            case .control?, .unknown?:
                let token = tokens[i]
                if token == "<|im_start|>", types[i] == GGUFTokenType.control.rawValue, imStart == nil { imStart = id }
                src.added.append(AddedTokenSpec(id: id, content: token, special: true, normalized: isQwenV1))
            case .userDefined?:
                src.added.append(AddedTokenSpec(id: id, content: tokens[i], special: false))
            case .byte?:
                let token = tokens[i]
                src.extra.append((id, .byte, Self.byteTokenValue(token).map { [$0] } ?? [], token))
            case .unused?, nil:
                src.extra.append((id, .unused, [], tokens[i]))
            }
        }
        src.ggufMerges = merges
        func tokenID(_ key: String) -> Int32? {
            guard let v = gguf[key]?.int, v >= 0, v < tokens.count else { return nil }
            return Int32(v)
        }
        src.eos = tokenID("tokenizer.ggml.eos_token_id")
        src.bos = tokenID("tokenizer.ggml.bos_token_id")
        src.pad = tokenID("tokenizer.ggml.padding_token_id")
        src.addBOS = gguf["tokenizer.ggml.add_bos_token"]?.bool ?? false
        src.extraEOG = ["tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"].compactMap(tokenID)
        if isQwenV1 {
            src.ignoreMerges = true  // tiktoken: a piece that is a token is that token
            if let imStart { src.extraEOG.append(imStart) }
        }
        src.chatTemplate = gguf["tokenizer.chat_template"]?.string
        src.nfc = true
        try self.init(src)
    }

    /// The byte of a "<0xXX>" token.
    static func byteTokenValue(_ s: String) -> UInt8? {
        let u = Array(s.utf8)
        guard u.count == 6, u[0] == UInt8(ascii: "<"), u[1] == UInt8(ascii: "0"), u[2] == UInt8(ascii: "x"),
              u[5] == UInt8(ascii: ">") else { return nil }
        return UInt8(String(decoding: u[3 ..< 5], as: UTF8.self), radix: 16)
    }
}
