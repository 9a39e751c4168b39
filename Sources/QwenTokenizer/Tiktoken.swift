import QwenFormats

/// The tokenizer of the first-generation Qwen models (Qwen-1.8B/7B/14B/72B and -Chat), read from `qwen.tiktoken`
/// as the original `tokenization_qwen.py` builds it on tiktoken:
/// - every line of the file is a base64 token and its rank; the rank is the token id (151,643 ranks);
/// - the special tokens follow the ranks: `<|endoftext|>`, `<|im_start|>`, `<|im_end|>`, `<|extra_0|>` …
///   `<|extra_204|>` (ids 151643 … 151850);
/// - encoding NFC-normalizes the whole text, then splits out special tokens (`parseSpecial`: tiktoken's
///   `allowed_special="all"`, the default of the original `tokenize`/`encode`; otherwise `allowed_special=set()`,
///   where they are plain text), then splits the rest with PAT_STR (the same pattern as Qwen2's pre-tokenizer) and
///   merges each piece's bytes by rank: a piece that is a token is that token, otherwise adjacent parts merge,
///   lowest rank first.
///
/// The merges are derived from the ranks the way llama.cpp's converter derives them for these files (the BPE of a
/// token's bytes over the lower ranks ends in two parts, which are its merge); with them the byte-level BPE of
/// `Tokenizer` gives tiktoken's tokens, which for this vocabulary are also Qwen2's, token for token.
extension Tokenizer {
    /// The specials of `tokenization_qwen.py`, in id order after the ranks.
    public static let qwenV1SpecialTokens: [String] =
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + (0 ..< 205).map { "<|extra_\($0)|>" }

    /// Qwen-VL's `tokenization_qwen.py` adds grounding and image tags after those (`<img>`: 151857).
    public static let qwenVLSpecialTokens: [String] =
        qwenV1SpecialTokens + ["<ref>", "</ref>", "<box>", "</box>", "<quad>", "</quad>", "<img>", "</img>", "<imgpad>"]

    /// Qwen-Audio's `tokenization_qwen.py` adds its audio specials (`AUDIO_ST`) after the 208: the audio pad, task,
    /// language and timestamp tags (`<|0.00|>` … `<|30.00|>`), MIDI pitch and velocity tags, and `<audio>` `</audio>`.
    public static let qwenAudioSpecialTokens: [String] = {
        var t = ["[[[AUDIO:modality]]]", "<|startoftranscript|>", "<|startofanalysis|>", "<|translate|>", "<|transcribe|>",
                 "<|caption|>", "<|keyword|>", "<|unknown|>"]
        t += ["en", "zh", "de", "es", "ko", "fr", "ja", "it", "zh_tr"].map { "<|\($0)|>" }
        t += ["<|notimestamps|>", "<|sil|>", "<|timestamps|>"]
        t += (0 ... 3000).map { "<|\($0 / 100).\($0 % 100 < 10 ? "0" : "")\($0 % 100)|>" }
        t += ["caption_audiocaps", "caption_clotho", "audioset_ontology", "caption_plain", "itn", "wo_itn", "startofentityvalue",
              "endofentityvalue", "startofentitytype", "endofentitytype", "named_entity_recognition", "audio_grounding",
              "startofword", "endofword", "delim", "emotion_recognition", "music_description", "note_analysis", "pitch"].map { "<|\($0)|>" }
        t += (0 ..< 128).map { "<|midi_pitch_\($0)|>" } + ["<|velocity|>"] + (0 ..< 128).map { "<|midi_velocity_\($0)|>" }
        t += ["sonic", "instrument", "speaker_meta", "song_meta", "question", "answer", "choice", "scene", "event",
              "vocal_classification", "speech_understanding", "scenario", "action", "entities", "speech_edit"].map { "<|\($0)|>" }
        return qwenV1SpecialTokens + t + ["<audio>", "</audio>"]
    }()

    /// Loads `qwen.tiktoken` from a Hugging Face folder of the original layout, with the `eos_token_id`s of
    /// `generation_config.json` when present, and Qwen-VL's or Qwen-Audio's specials when `config.json` has a
    /// `visual` or an `audio` tower.
    public static func load(tiktokenFolder path: String) throws -> Tokenizer {
        let file = try FileBytes(path: path + "/qwen.tiktoken", map: true)
        var eos: [Int32] = []
        let generationPath = path + "/generation_config.json"
        if fileExists(generationPath), let g = try? JSON.parseFile(generationPath), let e = g["eos_token_id"] {
            eos = (e.array ?? [e]).compactMap { $0.int }.compactMap { Int32(exactly: $0) }
        }
        var specials = qwenV1SpecialTokens
        if fileExists(path + "/config.json") {
            let config = try JSON.parseFile(path + "/config.json")
            if config["visual"] != nil { specials = qwenVLSpecialTokens }
            if config["audio"] != nil { specials = qwenAudioSpecialTokens }
        }
        return try Tokenizer(tiktoken: file.buffer, specials: specials, extraEndOfGenerationIDs: eos, what: path + "/qwen.tiktoken")
    }

    /// A tokenizer from the contents of a `qwen.tiktoken` file (lines `BASE64 RANK`, ranks 0..<n in any order) and the
    /// special tokens numbered after the ranks.
    public convenience init(tiktoken text: UnsafeRawBufferPointer, specials: [String] = qwenV1SpecialTokens, extraEndOfGenerationIDs: [Int32] = [],
                            what: String = "qwen.tiktoken") throws
    {
        func fail(_ m: String) -> QwenError { QwenError.format("\(what): \(m)") }
        var src = Source()
        src.what = what
        src.rawTokens.reserveCapacity(text.count * 3 / 4)
        var byRank: [Range<Int>?] = []
        var line = 0
        var i = 0
        let n = text.count
        while i < n {
            var end = i
            while end < n, text[end] != 0x0A { end += 1 }
            line += 1
            var stop = end
            while stop > i, text[stop - 1] == 0x0D || text[stop - 1] == 0x20 || text[stop - 1] == 0x09 { stop -= 1 }
            defer { i = end + 1 }
            if stop == i { continue }  // empty line
            var sep = i
            while sep < stop, text[sep] != 0x20, text[sep] != 0x09 { sep += 1 }
            var r = sep
            while r < stop, text[r] == 0x20 || text[r] == 0x09 { r += 1 }
            guard sep > i, r < stop else { throw fail("line \(line) is not 'BASE64 RANK'") }
            var rank = 0
            for k in r ..< stop {
                let d = Int(text[k]) - 0x30
                guard d >= 0, d <= 9, rank <= BPEModel.maxIDs else { throw fail("line \(line): invalid rank") }
                rank = rank * 10 + d
            }
            guard rank < Tokenizer.maxTokens - specials.count else { throw fail("line \(line): rank \(rank) too large") }
            let start = src.rawTokens.count
            guard Self.appendBase64(UnsafeRawBufferPointer(rebasing: text[i ..< sep]), to: &src.rawTokens),
                  src.rawTokens.count > start else {
                throw fail("line \(line): invalid base64 token")
            }
            if rank >= byRank.count { byRank += [Range<Int>?](repeating: nil, count: rank + 1 - byRank.count) }
            guard byRank[rank] == nil else { throw fail("rank \(rank) appears twice") }
            byRank[rank] = start ..< src.rawTokens.count
        }
        guard !byRank.isEmpty else { throw fail("no tokens") }
        src.rawVocab.reserveCapacity(byRank.count)
        for (rank, span) in byRank.enumerated() {
            guard let span else { throw fail("rank \(rank) is missing (ranks must be 0..<\(byRank.count))") }
            src.rawVocab.append((span, Int32(rank)))
        }
        src.mergesFromRanks = true
        src.ignoreMerges = true  // tiktoken: a piece that is a token is that token
        src.nfc = true
        let first = Int32(byRank.count)
        for (k, token) in specials.enumerated() {
            // normalized: matched after NFC, since the original normalizes the whole text before tiktoken sees it
            src.added.append(AddedTokenSpec(id: first + Int32(k), content: token, special: true, normalized: true))
        }
        src.count = byRank.count + specials.count
        src.eos = first          // <|endoftext|> (the models' generation_config eos_token_id)
        src.pad = first
        // the chat format stops at <|im_end|> and <|im_start|> (get_stop_words_ids("chatml"))
        src.extraEOG = extraEndOfGenerationIDs + [first + 1]
        try self.init(src)
        guard Int(tokenID("<|im_end|>") ?? -1) == byRank.count + 2 else { throw fail("special tokens collide with the ranks") }
        if let dup = duplicateRawToken(src) { throw fail("token of rank \(dup) appears twice") }
    }

    /// The rank of a token whose bytes another rank already has (nil: all distinct).
    private func duplicateRawToken(_ src: Source) -> Int32? {
        src.rawTokens.withUnsafeBufferPointer { bytes in
            for (span, id) in src.rawVocab {
                let found = index.find(UnsafeBufferPointer(rebasing: bytes[span]), pieces: pieces)
                if found != id { return id }
            }
            return nil
        }
    }

    /// Merges (left id, right id, merged id) in rank order for a vocabulary whose ids are ranks: each token of
    /// two or more bytes is the merge of the two parts its bytes end in when merged by rank over the lower ranks
    /// (what llama.cpp's converter computes, `QwenModel.bpe(..., max_rank=rank)`). A token whose bytes do not end
    /// in two parts gets a placeholder that keeps its rank and never applies.
    static func mergesFromRanks(_ ids: [Int32], pieces: Pieces, index: TokenIndex) -> [(UInt32, UInt32, UInt32)] {
        var merges: [(UInt32, UInt32, UInt32)] = []
        merges.reserveCapacity(ids.count)
        var bounds: [Int] = []   // part k is word[bounds[k] ..< bounds[k + 1]]
        var ranks: [Int32] = []  // of the pair (k, k + 1); Int32.max: no merge
        pieces.data.withUnsafeBufferPointer { data in
            for id in ids.sorted() {
                let s = pieces.offset(id), n = pieces.length(id)
                guard n >= 2 else { continue }
                let word = UnsafeBufferPointer(rebasing: data[s ..< s + n])
                func part(_ a: Int, _ b: Int) -> Int32? {
                    index.find(UnsafeBufferPointer(rebasing: word[a ..< b]), pieces: pieces)
                }
                func pairRank(_ k: Int) -> Int32 {
                    guard let r = part(bounds[k], bounds[k + 2]), r < id else { return Int32.max }
                    return r
                }
                bounds.removeAll(keepingCapacity: true)
                bounds.append(contentsOf: 0 ... n)
                ranks.removeAll(keepingCapacity: true)
                for k in 0 ..< n - 1 { ranks.append(pairRank(k)) }
                while bounds.count > 3 {
                    var best = 0
                    for k in 1 ..< ranks.count where ranks[k] < ranks[best] { best = k }
                    if ranks[best] == Int32.max { break }
                    bounds.remove(at: best + 1)
                    ranks.remove(at: best)
                    if best < ranks.count { ranks[best] = pairRank(best) }
                    if best > 0 { ranks[best - 1] = pairRank(best - 1) }
                }
                if bounds.count == 3, let l = part(0, bounds[1]), let r = part(bounds[1], n) {
                    merges.append((UInt32(l), UInt32(r), UInt32(id)))
                } else {
                    merges.append((UInt32.max, UInt32.max, 0))
                }
            }
        }
        return merges
    }

    /// Decodes standard base64 (`=` padding optional) and appends the bytes; false on invalid input.
    static func appendBase64(_ s: UnsafeRawBufferPointer, to out: inout [UInt8]) -> Bool {
        var acc: UInt32 = 0, bits = 0, padding = 0
        for c in s {
            let v: UInt32
            switch c {
            case 0x41 ... 0x5A: v = UInt32(c) - 0x41       // A-Z
            case 0x61 ... 0x7A: v = UInt32(c) - 0x61 + 26  // a-z
            case 0x30 ... 0x39: v = UInt32(c) - 0x30 + 52  // 0-9
            case 0x2B: v = 62                               // +
            case 0x2F: v = 63                               // /
            case 0x3D: padding += 1; continue               // =
            default: return false
            }
            guard padding == 0 else { return false }
            acc = acc << 6 | v
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
                acc &= (1 << UInt32(bits)) - 1
            }
        }
        return padding <= 2 && acc == 0 && bits < 6
    }
}
