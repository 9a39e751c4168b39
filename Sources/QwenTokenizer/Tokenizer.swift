import QwenFormats

/// A byte-level BPE tokenizer for Qwen2 / Qwen2.5 / Qwen3 vocabularies, identical in output to Hugging Face
/// `tokenizers` (`encode(text, add_special_tokens=False)`), loaded from a Hugging Face folder or from GGUF
/// metadata.
///
/// Encoding: added tokens are split out of the raw text (leftmost-longest; special ones only when
/// `parseSpecial`), every other span is NFC-normalized, split by the Qwen2 pre-tokenizer regex, and each
/// piece is merged by BPE over its UTF-8 bytes. Decoding yields raw bytes (a prefix of a multi-byte
/// character is returned as is).
///
/// Immutable after loading; every method may be called from many threads at once.
public final class Tokenizer: @unchecked Sendable {
    /// Number of token ids (BPE tokens, added tokens and unused filler ids).
    public let count: Int
    public let eosID: Int32?
    public let bosID: Int32?
    public let padID: Int32?
    /// Whether the model expects a BOS token in front of a prompt (false for Qwen).
    public let addBOS: Bool
    /// Ids that end generation: eos, plus `<|im_end|>` and `<|endoftext|>` when the vocabulary has them
    /// (and eot / generation_config eos ids when the source lists them).
    public let endOfGenerationIDs: Set<Int32>
    /// The Jinja chat template, if the source has one.
    public let chatTemplate: String?

    enum Kind: UInt8 {
        case unused = 0   // no token (gap in the ids, GGUF [PAD] filler)
        case normal = 1   // BPE vocabulary token
        case special = 2  // added token matched only when parsing special tokens (GGUF control / unknown)
        case added = 3    // added token always matched (GGUF user-defined)
        case byte = 4     // GGUF byte token <0xXX>: decodes to that byte, never matched in text
    }

    let kinds: [Kind]
    /// Decoded bytes of every id.
    let pieces: Pieces
    /// Raw bytes -> id for the byte-level BPE vocabulary.
    let index: TokenIndex
    /// Token string -> id for added tokens, other non-BPE ids and vocabulary strings that are not byte-level.
    let named: [String: Int32]
    let bpe: BPEModel
    let ignoreMerges: Bool
    /// Added tokens matched on the raw text, and those (normalized: true) matched after normalization.
    let rawAdded: AddedTokenMatcher
    let normalizedAdded: AddedTokenMatcher
    let normalizeNFC: Bool
    let cache: WordCache

    /// How many keys ahead loading prefetches hash-table slots.
    static let probeAhead = 16

    /// Limits that keep a hostile file from making us allocate absurd amounts.
    static let maxTokens = BPEModel.maxIDs

    // MARK: - Loading

    /// What a loader collects before the common set-up.
    struct Source {
        var count = 0
        /// BPE vocabulary: (byte-level string, id).
        var vocab: [(String, Int32)] = []
        /// Merges as (left, right) token strings in rank order.
        var merges: [(Substring, Substring)] = []
        /// Or as "left right" strings in a GGUF file (llama.cpp splits at the first space after the first character).
        var ggufMerges: GGUFStrings?
        var mergesKeepFirst = false
        /// A merge whose parts or result are not in the vocabulary: error (Hugging Face) or skipped (llama.cpp).
        var strictMerges = true
        var added: [AddedTokenSpec] = []
        /// Other ids with a fixed kind and decoded bytes (GGUF unused / byte tokens), plus their strings.
        var extra: [(id: Int32, kind: Kind, bytes: [UInt8], string: String)] = []
        var nfc = true
        var unknownToken: String?
        var fuseUnknown = false
        var ignoreMerges = false
        var eos: Int32?
        var bos: Int32?
        var pad: Int32?
        var eosToken: String?
        var bosToken: String?
        var padToken: String?
        var addBOS = false
        var extraEOG: [Int32] = []
        var chatTemplate: String?
        var what = "tokenizer"
        /// BPE vocabulary given as raw bytes (tiktoken files): `rawTokens[span]` for each (span, id).
        var rawTokens: [UInt8] = []
        var rawVocab: [(span: Range<Int>, id: Int32)] = []
        /// Merges derived from the ranks (tiktoken: a token's id is its rank) instead of listed.
        var mergesFromRanks = false
    }

    init(_ src: Source) throws {
        let n = src.count
        guard n > 0, n <= Self.maxTokens else { throw QwenError.format("\(src.what): implausible vocabulary size \(n)") }
        var kinds = [Kind](repeating: .unused, count: n)
        var pieces = Pieces(count: n, reserve: src.vocab.count * 8 + src.rawTokens.count)
        var index = TokenIndex(capacity: src.vocab.count + src.rawVocab.count)
        var named: [String: Int32] = [:]
        var everyNormalIndexed = true

        for (string, id) in src.vocab {
            guard id >= 0, Int(id) < n else { throw QwenError.format("\(src.what): token id \(id) out of range") }
            kinds[Int(id)] = .normal
            let start = pieces.data.count
            if ByteLevel.append(string, to: &pieces.data) {
                pieces.finish(id, from: start)
                index.insert(id, pieces: pieces)
            } else {
                // not byte-level: unreachable by merges; decodes to its text as Hugging Face's decoder does
                pieces.data.append(contentsOf: string.utf8)
                pieces.finish(id, from: start)
                named[string] = id
                everyNormalIndexed = false
            }
        }
        for (span, id) in src.rawVocab {
            guard id >= 0, Int(id) < n, span.lowerBound >= 0, span.upperBound <= src.rawTokens.count else {
                throw QwenError.format("\(src.what): token id \(id) out of range")
            }
        }
        let rawHashes = src.rawTokens.withUnsafeBufferPointer { all in
            src.rawVocab.map { TokenIndex.hash(UnsafeBufferPointer(rebasing: all[$0.span])) }
        }
        for (k, (span, id)) in src.rawVocab.enumerated() {
            if k + Self.probeAhead < rawHashes.count { index.prefetch(hash: rawHashes[k + Self.probeAhead]) }
            kinds[Int(id)] = .normal
            let start = pieces.data.count
            pieces.data.append(contentsOf: src.rawTokens[span])
            pieces.finish(id, from: start)
            index.insert(id, hash: rawHashes[k], pieces: pieces)
        }
        // single bytes and merges resolve against the BPE vocabulary only
        var byteIDs = [Int32](repeating: -1, count: 256)
        for b in 0 ..< 256 {
            byteIDs[b] = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1) { buf in
                buf[0] = UInt8(b)
                return index.find(UnsafeBufferPointer(buf), pieces: pieces) ?? -1
            }
        }
        let mergeCount = src.merges.count + (src.ggufMerges?.count ?? 0)
        guard mergeCount <= BPEModel.maxMerges else { throw QwenError.format("\(src.what): too many merges") }
        // First the raw bytes of every merge's two parts and their hashes, then the lookups, each merge's slots
        // prefetched `probeAhead` merges before it is resolved.
        var parts = MergeParts()
        parts.reserve(mergeCount)
        for (a, b) in src.merges {
            parts.add { buf in
                guard ByteLevel.append(a, to: &buf) else { return nil }
                let split = buf.count
                return ByteLevel.append(b, to: &buf) ? split : nil
            }
        }
        if let list = src.ggufMerges {
            for i in list.indices {
                let m = list.bytes(i)
                parts.add { buf in
                    // llama.cpp splits at the first space after the first character
                    guard m.count > 1, let space = m[1...].firstIndex(of: UInt8(ascii: " ")),
                          ByteLevel.append(utf8: UnsafeBufferPointer(rebasing: m[..<space]), to: &buf) else { return nil }
                    let split = buf.count
                    return ByteLevel.append(utf8: UnsafeBufferPointer(rebasing: m[(space + 1)...]), to: &buf) ? split : nil
                }
            }
        }
        // The merged token usually follows the previous merge's (token 256 + rank): a look at its bytes saves a
        // hash probe, exact while every normal token is in the index under bytes of its own.
        var nextGuess: Int32 = -1
        let guessing = everyNormalIndexed && !index.hasDuplicates
        var merges: [(UInt32, UInt32, UInt32)] = []
        merges.reserveCapacity(mergeCount)
        for rank in 0 ..< mergeCount {
            if rank + Self.probeAhead < mergeCount {
                let (ha, hb) = parts.hashes(rank + Self.probeAhead)
                index.prefetch(hash: ha)
                index.prefetch(hash: hb)
            }
            let ids = parts.withParts(rank) { a, b, all, ha, hb -> (UInt32, UInt32, UInt32)? in
                guard let ia = index.find(a, hash: ha, pieces: pieces), let ib = index.find(b, hash: hb, pieces: pieces) else { return nil }
                let im: Int32
                if guessing, nextGuess >= 0, Int(nextGuess) < n, kinds[Int(nextGuess)] == .normal, pieces.equals(nextGuess, all) {
                    im = nextGuess
                } else if let found = index.find(all, pieces: pieces) {
                    im = found
                } else {
                    return nil
                }
                nextGuess = im + 1
                return (UInt32(ia), UInt32(ib), UInt32(im))
            }
            if let ids {
                merges.append(ids)
                continue
            }
            // Hugging Face refuses merges with unknown parts or result; llama.cpp ignores them (and keeps their
            // ranks). Merges of non-byte-level tokens are valid but can never apply.
            if src.strictMerges, rank < src.merges.count {
                let a = String(src.merges[rank].0), b = String(src.merges[rank].1)
                let known = { (s: String) in named[s] != nil || (Self.byteLevelID(s, index, pieces) != nil) }
                guard known(a), known(b), known(a + b) else {
                    throw QwenError.format("\(src.what): merge \(rank) '\(a) \(b)' uses a token that is not in the vocabulary")
                }
            }
            merges.append((UInt32.max, UInt32.max, 0))  // holds its rank, never applies
        }
        if src.mergesFromRanks { merges = Self.mergesFromRanks(src.rawVocab.map(\.id), pieces: pieces, index: index) }
        var unknownID: Int32?
        if let unk = src.unknownToken { unknownID = named[unk] ?? Self.byteLevelID(unk, index, pieces) }
        bpe = BPEModel(byteIDs: byteIDs, merges: merges, keepFirst: src.mergesKeepFirst,
                       unknownID: unknownID, fuseUnknown: src.fuseUnknown)
        ignoreMerges = src.ignoreMerges

        for e in src.extra {
            guard e.id >= 0, Int(e.id) < n else { throw QwenError.format("\(src.what): token id \(e.id) out of range") }
            kinds[Int(e.id)] = e.kind
            pieces.set(e.id, e.bytes)
            if named[e.string] == nil { named[e.string] = e.id }
        }
        var raw = AddedTokenMatcher()
        var normalized = AddedTokenMatcher()
        for t in src.added {
            guard t.id >= 0, Int(t.id) < n else { throw QwenError.format("\(src.what): added token id \(t.id) out of range") }
            kinds[Int(t.id)] = t.special ? .special : .added
            pieces.set(t.id, Array(t.content.utf8))
            named[t.content] = t.id
            if t.normalized && src.nfc {
                normalized.add(t, bytes: t.content._nfcCodeUnits)
            } else if t.normalized {
                normalized.add(t, bytes: Array(t.content.utf8))
            } else {
                raw.add(t, bytes: Array(t.content.utf8))
            }
        }
        guard pieces.data.count < Int(Int32.max) else { throw QwenError.format("\(src.what): token strings too large") }
        rawAdded = raw
        normalizedAdded = normalized
        self.pieces = pieces
        self.index = index
        self.named = named
        self.kinds = kinds
        count = n
        normalizeNFC = src.nfc
        cache = WordCache()

        func resolve(_ id: Int32?, _ token: String?) -> Int32? {
            if let id, id >= 0, Int(id) < n { return id }
            if let token { return Self.lookup(token, named, index, pieces) }
            return nil
        }
        eosID = resolve(src.eos, src.eosToken)
        bosID = resolve(src.bos, src.bosToken)
        padID = resolve(src.pad, src.padToken)
        addBOS = src.addBOS && bosID != nil
        var eog = Set<Int32>()
        if let eosID { eog.insert(eosID) }
        for t in ["<|im_end|>", "<|endoftext|>"] { if let id = named[t], kinds[Int(id)] != .normal { eog.insert(id) } }
        for id in src.extraEOG where id >= 0 && Int(id) < n { eog.insert(id) }
        endOfGenerationIDs = eog
        chatTemplate = src.chatTemplate
    }

    // MARK: - Encoding

    /// Token ids of `text`. With `parseSpecial`, special tokens written in the text (`<|im_start|>`) become
    /// their ids; without, they are tokenized as plain text. Non-special added tokens (`<think>`) always
    /// match. No BOS/EOS is added.
    public func encode(_ text: String, parseSpecial: Bool) -> [Int32] {
        var copy = text
        return copy.withUTF8 { encodeUTF8($0, parseSpecial: parseSpecial) }
    }

    /// Token ids of arbitrary bytes; invalid UTF-8 is replaced by U+FFFD as `String(decoding:as:)` does.
    public func encode(bytes: UnsafeRawBufferPointer, parseSpecial: Bool) -> [Int32] {
        encode(String(decoding: bytes, as: UTF8.self), parseSpecial: parseSpecial)
    }

    /// `text` must be valid UTF-8 (any Swift string's UTF-8 is).
    func encodeUTF8(_ text: UnsafeBufferPointer<UInt8>, parseSpecial: Bool) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(text.count / 3 + 4)
        var scratch = EncodeScratch()
        rawAdded.split(text, parseSpecial: parseSpecial, gap: { start, end in
            encodeSpan(UnsafeBufferPointer(rebasing: text[start ..< end]), parseSpecial: parseSpecial,
                       out: &out, scratch: &scratch)
        }, token: { out.append($0) })
        return out
    }

    /// Normalizes a span free of raw added tokens, splits out normalized added tokens, encodes the rest.
    private func encodeSpan(_ span: UnsafeBufferPointer<UInt8>, parseSpecial: Bool,
                            out: inout [Int32], scratch: inout EncodeScratch)
    {
        if normalizeNFC && Self.needsNFC(span) {
            let normalized = String(decoding: span, as: UTF8.self)._nfcCodeUnits
            normalized.withUnsafeBufferPointer { encodeNormalized($0, parseSpecial: parseSpecial, out: &out, scratch: &scratch) }
        } else {
            encodeNormalized(span, parseSpecial: parseSpecial, out: &out, scratch: &scratch)
        }
    }

    private func encodeNormalized(_ span: UnsafeBufferPointer<UInt8>, parseSpecial: Bool,
                                  out: inout [Int32], scratch: inout EncodeScratch)
    {
        if normalizedAdded.isEmpty {
            encodeWords(span, out: &out, scratch: &scratch)
            return
        }
        normalizedAdded.split(span, parseSpecial: parseSpecial, gap: { start, end in
            encodeWords(UnsafeBufferPointer(rebasing: span[start ..< end]), out: &out, scratch: &scratch)
        }, token: { out.append($0) })
    }

    /// Pre-tokenizes normalized text and BPE-encodes every piece.
    private func encodeWords(_ text: UnsafeBufferPointer<UInt8>, out: inout [Int32], scratch: inout EncodeScratch) {
        let n = text.count
        if n == 0 { return }
        scratch.reserve(n + 1)
        let classes = scratch.classes, scalars = scratch.scalars, offsets = scratch.offsets
        var m = 0
        PreTokenizer.bmpTable.withUnsafeBufferPointer { table in
            var i = 0
            while i < n {
                let b0 = text[i]
                var v = UInt32(b0)
                var len = 1
                if b0 >= 0x80 { (v, len) = AddedTokenMatcher.scalar(startingAt: i, in: text) }
                scalars[m] = v
                classes[m] = v < 0x10000 ? table[Int(v)] : PreTokenizer.computeClass(v)
                offsets[m] = Int32(i)
                m += 1
                i += len
            }
        }
        offsets[m] = Int32(n)
        PreTokenizer.split(cls: UnsafeBufferPointer(start: classes, count: m),
                           scalars: UnsafeBufferPointer(start: scalars, count: m)) { s, e in
            let word = UnsafeBufferPointer(rebasing: text[Int(offsets[s]) ..< Int(offsets[e])])
            encodeWord(word, out: &out, scratch: &scratch.bpe)
        }
    }

    @inline(__always)
    private func encodeWord(_ word: UnsafeBufferPointer<UInt8>, out: inout [Int32], scratch: inout BPEScratch) {
        if ignoreMerges, let id = index.find(word, pieces: pieces) {
            out.append(id)
            return
        }
        if word.count <= 2 || word.count > WordCache.maxWordBytes {
            bpe.encode(word, into: &out, scratch: &scratch)
            return
        }
        if cache.lookup(word, into: &out) { return }
        let start = out.count
        bpe.encode(word, into: &out, scratch: &scratch)
        cache.insert(word, ids: out[start...])
    }

    /// Whether NFC could change the text: false when every scalar is below U+0300 or in a range of
    /// starters that never decompose, reorder or compose (CJK punctuation and ideographs, full-width forms,
    /// emoji); those cover most text, which then skips the normalizer's copies.
    @inline(__always)
    static func needsNFC(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        let n = text.count
        while i < n {
            let b0 = text[i]
            if b0 < 0xCC { i += 1; continue }  // ASCII, U+0080–U+02FF, continuation bytes
            if b0 < 0xE0 { return true }       // U+0300–U+07FF: combining marks and more
            let (v, len) = AddedTokenMatcher.scalar(startingAt: i, in: text)
            switch v {
            case 0x3000 ... 0x3029, 0x3400 ... 0x9FFF, 0xFF01 ... 0xFF5E, 0x1F000 ... 0x1FAFF: i += len
            default: return true
            }
        }
        return false
    }

    // MARK: - Decoding and lookups

    /// The bytes of a sequence of tokens (unknown ids contribute nothing).
    public func decode(_ ids: [Int32]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(ids.count * 4)
        pieces.data.withUnsafeBufferPointer { data in
            for id in ids where id >= 0 && Int(id) < count {
                let s = pieces.offset(id)
                out.append(contentsOf: UnsafeBufferPointer(rebasing: data[s ..< s + pieces.length(id)]))
            }
        }
        return out
    }

    /// The bytes of one token (empty for unknown ids); a piece may be part of a multi-byte character.
    public func pieceBytes(_ id: Int32) -> [UInt8] {
        guard id >= 0, Int(id) < count else { return [] }
        return pieces.withPiece(id) { Array($0) }
    }

    /// The id of a token given by its exact string: an added token's content ("<|im_end|>") or a vocabulary
    /// string in byte-level form ("Ġhello").
    public func tokenID(_ text: String) -> Int32? { Self.lookup(text, named, index, pieces) }

    static func lookup(_ text: String, _ named: [String: Int32], _ index: TokenIndex, _ pieces: Pieces) -> Int32? {
        named[text] ?? byteLevelID(text, index, pieces)
    }

    static func byteLevelID(_ text: String, _ index: TokenIndex, _ pieces: Pieces) -> Int32? {
        var bytes: [UInt8] = []
        guard ByteLevel.append(text, to: &bytes) else { return nil }
        return bytes.withUnsafeBufferPointer { index.find($0, pieces: pieces) }
    }

    /// Whether an id is a special (control) token: matched in text only when parsing special tokens.
    public func isSpecial(_ id: Int32) -> Bool {
        guard id >= 0, Int(id) < count else { return false }
        return kinds[Int(id)] == .special
    }

    /// Whether an id is an added token (special or not), e.g. `<|im_end|>` or `<think>`.
    public func isAdded(_ id: Int32) -> Bool {
        guard id >= 0, Int(id) < count else { return false }
        return kinds[Int(id)] == .special || kinds[Int(id)] == .added
    }
}

/// Buffers reused while encoding one text.
struct EncodeScratch: ~Copyable {
    private(set) var capacity = 0
    private(set) var classes = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
    private(set) var scalars = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
    private(set) var offsets = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    var bpe = BPEScratch()

    /// Makes room for `n` scalars (contents are not kept).
    mutating func reserve(_ n: Int) {
        guard n > capacity else { return }
        let c = max(n, 2 * capacity, 256)
        classes.deallocate(); scalars.deallocate(); offsets.deallocate()
        classes = .allocate(capacity: c)
        scalars = .allocate(capacity: c)
        offsets = .allocate(capacity: c)
        capacity = c
    }

    deinit {
        classes.deallocate(); scalars.deallocate(); offsets.deallocate()
    }
}

/// The raw bytes of merges' two parts, in one buffer, with the parts' hashes (merges not in the byte-level alphabet
/// are marked, and resolve to nothing).
struct MergeParts {
    private var bytes: [UInt8] = []
    /// Start, split and end of each merge in `bytes`; split -1 for a merge that did not decode. (Int: a hostile file
    /// may hold more than 2 GiB of merges.)
    private var spans: [(start: Int, split: Int, end: Int)] = []
    private var partHashes: [UInt64] = []

    mutating func reserve(_ count: Int) {
        bytes.reserveCapacity(count * 8)
        spans.reserveCapacity(count)
        partHashes.reserveCapacity(count * 2)
    }

    /// Adds one merge: `decode` appends both parts and returns where the second starts, nil when they do not decode.
    mutating func add(_ decode: (inout [UInt8]) -> Int?) {
        let start = bytes.count
        guard let split = decode(&bytes) else {
            bytes.removeSubrange(start...)
            spans.append((start, -1, start))
            partHashes.append(0)
            partHashes.append(0)
            return
        }
        spans.append((start, split, bytes.count))
        bytes.withUnsafeBufferPointer { all in
            partHashes.append(TokenIndex.hash(UnsafeBufferPointer(rebasing: all[start ..< split])))
            partHashes.append(TokenIndex.hash(UnsafeBufferPointer(rebasing: all[split...])))
        }
    }

    @inline(__always)
    func hashes(_ i: Int) -> (UInt64, UInt64) { (partHashes[2 * i], partHashes[2 * i + 1]) }

    /// `body(left, right, both, left hash, right hash)` for merge `i`; nil when it did not decode.
    @inline(__always)
    func withParts<R>(_ i: Int, _ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>,
                                         UInt64, UInt64) -> R?) -> R? {
        let s = spans[i]
        guard s.split >= 0 else { return nil }
        let start = s.start, split = s.split, end = s.end
        return bytes.withUnsafeBufferPointer { all in
            body(UnsafeBufferPointer(rebasing: all[start ..< split]), UnsafeBufferPointer(rebasing: all[split ..< end]),
                 UnsafeBufferPointer(rebasing: all[start ..< end]), partHashes[2 * i], partHashes[2 * i + 1])
        }
    }
}
