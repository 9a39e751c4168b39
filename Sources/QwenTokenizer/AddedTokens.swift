/// An added token ("<|im_end|>", "<think>", ...) as Hugging Face describes it.
struct AddedTokenSpec {
    var id: Int32
    var content: String
    var special: Bool
    var lstrip = false
    var rstrip = false
    var singleWord = false
    var normalized = false
}

/// Finds added tokens in text the way `tokenizers`' AddedVocabulary does: a leftmost-longest scan
/// (Aho-Corasick `LeftmostLongest`), then per token: special tokens are skipped unless special parsing is
/// on (the skipped span stays plain text and the scan resumes after it), `single_word` tokens are skipped
/// when glued to a word character, `lstrip`/`rstrip` absorb the adjacent whitespace.
struct AddedTokenMatcher {
    struct Entry {
        var id: Int32
        var bytes: [UInt8]
        var special: Bool
        var lstrip: Bool
        var rstrip: Bool
        var singleWord: Bool
    }

    private(set) var entries: [Entry] = []
    /// Trie: edge (node << 8 | byte) -> child node; node 0 is the root.
    private var edges: [UInt64: Int32] = [:]
    /// Entry index of the token ending at each node, -1 for none.
    private var terminal: [Int32] = [-1]
    /// Bytes that start some token.
    private var startsToken = [Bool](repeating: false, count: 256)

    var isEmpty: Bool { entries.isEmpty }

    mutating func add(_ spec: AddedTokenSpec, bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        var node: Int32 = 0
        for b in bytes {
            let key = UInt64(UInt32(node)) << 8 | UInt64(b)
            if let child = edges[key] {
                node = child
            } else {
                let child = Int32(terminal.count)
                terminal.append(-1)
                edges[key] = child
                node = child
            }
        }
        let index = Int32(entries.count)
        entries.append(Entry(id: spec.id, bytes: bytes, special: spec.special, lstrip: spec.lstrip,
                             rstrip: spec.rstrip, singleWord: spec.singleWord))
        terminal[Int(node)] = index  // the same content twice: the later token wins
        startsToken[Int(bytes[0])] = true
    }

    /// Longest token starting at `i`: (entry index, end offset).
    @inline(__always)
    private func longest(at i: Int, in text: UnsafeBufferPointer<UInt8>) -> (Int, Int)? {
        var node: Int32 = 0
        var best: (Int, Int)?
        var j = i
        while j < text.count, let child = edges[UInt64(UInt32(node)) << 8 | UInt64(text[j])] {
            node = child
            j += 1
            let t = terminal[Int(node)]
            if t >= 0 { best = (Int(t), j) }
        }
        return best
    }

    /// Calls `gap(start, end)` for plain-text spans and `token(id)` for matched tokens, in order,
    /// covering all of `text`.
    func split(_ text: UnsafeBufferPointer<UInt8>, parseSpecial: Bool,
               gap: (Int, Int) -> Void, token: (Int32) -> Void)
    {
        let n = text.count
        var done = 0  // end of the last emitted token
        var i = 0
        if !entries.isEmpty {
            while i < n {
                guard startsToken[Int(text[i])], let (index, end) = longest(at: i, in: text) else {
                    i += 1
                    continue
                }
                let e = entries[index]
                if e.special && !parseSpecial { i = end; continue }
                if e.singleWord {
                    let before = i == 0 || !Self.isWordScalar(Self.scalar(endingAt: i, in: text))
                    let after = end == n || !Self.isWordScalar(Self.scalar(startingAt: end, in: text))
                    if !before || !after { i = end; continue }
                }
                var start = i
                var stop = end
                if e.lstrip {
                    var s = i
                    while s > 0 {
                        let (v, len) = Self.scalar(endingAt: s, in: text)
                        guard Self.isWhiteSpace(v) else { break }
                        s -= len
                    }
                    start = max(s, done)
                }
                if e.rstrip {
                    while stop < n {
                        let (v, len) = Self.scalar(startingAt: stop, in: text)
                        guard Self.isWhiteSpace(v) else { break }
                        stop += len
                    }
                }
                start = max(start, done)
                if done < start { gap(done, start) }
                token(e.id)
                done = max(stop, done)
                i = end
            }
        }
        if done < n { gap(done, n) }
    }

    // MARK: UTF-8 helpers (input is valid UTF-8; malformed bytes decode as U+FFFD without trapping)

    static func scalar(startingAt i: Int, in t: UnsafeBufferPointer<UInt8>) -> (UInt32, Int) {
        let b0 = UInt32(t[i])
        if b0 < 0x80 { return (b0, 1) }
        let len = b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC0 ? 2 : 1
        guard len > 1, i + len <= t.count else { return (0xFFFD, 1) }
        var v = b0 & (0x7F >> UInt32(len))
        for k in 1 ..< len { v = v << 6 | UInt32(t[i + k] & 0x3F) }
        return (v, len)
    }

    static func scalar(endingAt i: Int, in t: UnsafeBufferPointer<UInt8>) -> (UInt32, Int) {
        var s = i - 1
        while s > 0, i - s < 4, t[s] & 0xC0 == 0x80 { s -= 1 }
        let (v, len) = scalar(startingAt: s, in: t)
        return s + len == i ? (v, len) : (0xFFFD, 1)
    }

    /// Rust regex `\s` (Unicode White_Space).
    static func isWhiteSpace(_ v: UInt32) -> Bool {
        switch v {
        case 0x09 ... 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000 ... 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default: return false
        }
    }

    /// Rust regex `\w` (Unicode): Alphabetic, marks, decimal numbers, connector punctuation, Join_Control.
    static func isWordScalar(_ sv: (UInt32, Int)) -> Bool {
        guard let u = Unicode.Scalar(sv.0) else { return false }
        let p = u.properties
        if p.isAlphabetic || p.isJoinControl { return true }
        switch p.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }
}
