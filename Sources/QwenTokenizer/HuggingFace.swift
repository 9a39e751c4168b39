import QwenFormats

extension Tokenizer {
    /// Loads `tokenizer.json` from a Hugging Face model folder, with `tokenizer_config.json` (eos / bos / pad
    /// token strings, `add_bos_token`, extra `added_tokens_decoder` entries, `chat_template`),
    /// `chat_template.jinja` and `generation_config.json` (extra eos ids) when present.
    public static func load(huggingFaceFolder path: String) throws -> Tokenizer {
        let tokenizerJSON = try JSON.parseFile(path + "/tokenizer.json")
        let configPath = path + "/tokenizer_config.json"
        let config = fileExists(configPath) ? try JSON.parseFile(configPath) : nil
        var template: String?
        let templatePath = path + "/chat_template.jinja"
        if fileExists(templatePath) { template = try readTextFile(templatePath) }
        var eos: [Int32] = []
        let generationPath = path + "/generation_config.json"
        if fileExists(generationPath), let g = try? JSON.parseFile(generationPath), let e = g["eos_token_id"] {
            eos = (e.array ?? [e]).compactMap { $0.int }.compactMap { Int32(exactly: $0) }
        }
        return try Tokenizer(huggingFace: tokenizerJSON, config: config, chatTemplate: template,
                             extraEndOfGenerationIDs: eos, what: path + "/tokenizer.json")
    }

    /// A tokenizer from parsed `tokenizer.json` (and optionally `tokenizer_config.json`) contents.
    ///
    /// Accepted: model BPE (byte-level vocabulary, merges as "a b" strings or [a, b] pairs, optional
    /// `unk_token`/`fuse_unk`/`ignore_merges`; a continuing-subword prefix or end-of-word suffix is
    /// unsupported), normalizer NFC or none, pre-tokenizer Sequence[Split(Qwen2 regex, Isolated),
    /// ByteLevel(use_regex false, add_prefix_space false)] or the Split alone. The post-processor and
    /// decoder are not consulted: nothing is added around encoded text and decoding is byte-level.
    public convenience init(huggingFace json: JSON, config: JSON? = nil, chatTemplate: String? = nil,
                            extraEndOfGenerationIDs: [Int32] = [], what: String = "tokenizer.json") throws
    {
        var src = Source()
        src.what = what
        func fail(_ m: String) -> QwenError { QwenError.format("\(what): \(m)") }
        func flag(_ obj: JSON, _ key: String, _ fallback: Bool) throws -> Bool {
            guard let v = obj[key], !v.isNull else { return fallback }
            guard let b = v.bool else { throw fail("'\(key)' is not a boolean") }
            return b
        }
        func id(_ v: JSON?, _ item: String) throws -> Int32 {
            guard let i = v?.int, i >= 0, i < Tokenizer.maxTokens else { throw fail("\(item) has no valid id") }
            return Int32(i)
        }

        guard json.object != nil else { throw fail("not a JSON object") }
        guard let model = json["model"], model.object != nil else { throw fail("missing 'model'") }
        if let type = model["type"], !type.isNull {
            guard type.string == "BPE" else {
                throw QwenError.unsupported("\(what): tokenizer model '\(type.string ?? "?")' is not supported (BPE is)")
            }
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let v = model[key], let s = v.string, !s.isEmpty {
                throw QwenError.unsupported("\(what): BPE '\(key)' is not supported")
            }
        }
        guard let vocab = model["vocab"]?.object else { throw fail("missing 'model.vocab'") }
        var maxID: Int32 = -1
        src.vocab.reserveCapacity(vocab.count)
        for (token, value) in vocab {
            let i = try id(value, "vocabulary token '\(token)'")
            src.vocab.append((token, i))
            maxID = max(maxID, i)
        }
        guard let merges = model["merges"]?.array else { throw fail("missing 'model.merges'") }
        src.merges.reserveCapacity(merges.count)
        for (rank, m) in merges.enumerated() {
            if let s = m.string {
                let parts = s.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw fail("merge \(rank) '\(s)' is not two tokens") }
                src.merges.append((parts[0], parts[1]))
            } else if let pair = m.array, pair.count == 2, let a = pair[0].string, let b = pair[1].string {
                src.merges.append((Substring(a), Substring(b)))
            } else {
                throw fail("merge \(rank) is neither \"a b\" nor [a, b]")
            }
        }
        if let unk = model["unk_token"], !unk.isNull {
            guard let s = unk.string else { throw fail("'unk_token' is not a string") }
            src.unknownToken = s
        }
        src.fuseUnknown = try flag(model, "fuse_unk", false)
        src.ignoreMerges = try flag(model, "ignore_merges", false)

        src.nfc = try Self.parseNormalizer(json["normalizer"], what: what)
        try Self.checkPreTokenizer(json["pre_tokenizer"], what: what)

        if let added = json["added_tokens"], !added.isNull {
            guard let list = added.array else { throw fail("'added_tokens' is not an array") }
            for (k, t) in list.enumerated() {
                guard let content = t["content"]?.string else { throw fail("added token \(k) has no content") }
                let special = try flag(t, "special", false)
                let spec = AddedTokenSpec(
                    id: try id(t["id"], "added token '\(content)'"), content: content, special: special,
                    lstrip: try flag(t, "lstrip", false), rstrip: try flag(t, "rstrip", false),
                    singleWord: try flag(t, "single_word", false), normalized: try flag(t, "normalized", !special))
                src.added.append(spec)
                maxID = max(maxID, spec.id)
            }
        }

        if let config {
            // added tokens the config declares for ids tokenizer.json leaves empty (transformers adds them)
            if let decoder = config["added_tokens_decoder"]?.object {
                let known = Set(src.vocab.map { $0.1 }).union(src.added.map(\.id))
                for (key, t) in decoder {
                    guard let i = Int32(key), i >= 0, Int(i) < Tokenizer.maxTokens, !known.contains(i),
                          let content = t["content"]?.string else { continue }
                    let special = (try? flag(t, "special", true)) ?? true
                    src.added.append(AddedTokenSpec(
                        id: i, content: content, special: special,
                        lstrip: (try? flag(t, "lstrip", false)) ?? false, rstrip: (try? flag(t, "rstrip", false)) ?? false,
                        singleWord: (try? flag(t, "single_word", false)) ?? false,
                        normalized: (try? flag(t, "normalized", !special)) ?? !special))
                    maxID = max(maxID, i)
                }
            }
            func tokenString(_ key: String) -> String? {
                guard let v = config[key] else { return nil }
                return v.string ?? v["content"]?.string
            }
            src.eosToken = tokenString("eos_token")
            src.bosToken = tokenString("bos_token")
            src.padToken = tokenString("pad_token")
            src.addBOS = config["add_bos_token"]?.bool ?? false
            if chatTemplate == nil, let t = config["chat_template"] {
                if let s = t.string {
                    src.chatTemplate = s
                } else if let list = t.array {
                    // [{"name": "default", "template": "..."}, {"name": "tool_use", ...}]
                    let named = list.first { $0["name"]?.string == "default" } ?? list.first
                    src.chatTemplate = named?["template"]?.string
                }
            }
        }
        if let chatTemplate { src.chatTemplate = chatTemplate }
        src.extraEOG = extraEndOfGenerationIDs
        src.count = Int(maxID) + 1
        guard src.count <= 2 * (src.vocab.count + src.added.count) + 1024 else {
            throw fail("token ids up to \(maxID) for only \(src.vocab.count + src.added.count) tokens")
        }
        try self.init(src)
    }

    /// NFC (possibly inside a Sequence) or no normalizer; anything else is unsupported.
    static func parseNormalizer(_ n: JSON?, what: String) throws -> Bool {
        guard let n, !n.isNull else { return false }
        switch n["type"]?.string {
        case "NFC": return true
        case "Sequence":
            guard let list = n["normalizers"]?.array else { throw QwenError.format("\(what): normalizer Sequence without list") }
            var nfc = false
            for item in list {
                guard try parseNormalizer(item, what: what) else {
                    throw QwenError.unsupported("\(what): normalizer '\(item["type"]?.string ?? "?")' is not supported (NFC is)")
                }
                nfc = true
            }
            return nfc
        default:
            throw QwenError.unsupported("\(what): normalizer '\(n["type"]?.string ?? "?")' is not supported (NFC is)")
        }
    }

    /// The Qwen2 pre-tokenizer: Split(Qwen2 regex, Isolated) followed by ByteLevel without its own regex.
    static func checkPreTokenizer(_ p: JSON?, what: String) throws {
        func unsupported(_ m: String) -> QwenError { QwenError.unsupported("\(what): pre-tokenizer \(m) is not supported (Qwen2's Split + ByteLevel is)") }
        guard let p, !p.isNull else { throw unsupported("none") }
        var steps: [JSON] = [p]
        if p["type"]?.string == "Sequence" {
            guard let list = p["pretokenizers"]?.array else { throw QwenError.format("\(what): pre-tokenizer Sequence without list") }
            steps = list
        }
        var sawSplit = false
        for step in steps {
            switch step["type"]?.string {
            case "Split":
                guard !sawSplit, step["pattern"]?["Regex"]?.string == PreTokenizer.qwen2Pattern else {
                    throw unsupported("Split with pattern \(step["pattern"]?.serialized ?? "?")")
                }
                guard step["behavior"]?.string == "Isolated", step["invert"]?.bool != true else {
                    throw unsupported("Split with behavior \(step["behavior"]?.string ?? "?")")
                }
                sawSplit = true
            case "ByteLevel":
                guard sawSplit, step["use_regex"]?.bool == false, step["add_prefix_space"]?.bool != true else {
                    throw unsupported("ByteLevel with its own regex or prefix space")
                }
            default:
                throw unsupported("'\(step["type"]?.string ?? "?")'")
            }
        }
        guard sawSplit else { throw unsupported("without the Qwen2 Split") }
    }
}
