/// The Qwen2 pre-tokenizer: a hand-written matcher equivalent to the Oniguruma regex that Hugging Face
/// `tokenizers` runs (Split, behavior Isolated):
///
///     (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
///
/// Semantics reproduced from Oniguruma (checked against `tokenizers` for every code point):
/// - `\s` is the Unicode White_Space property (U+0009–U+000D, U+0020, U+0085, U+00A0, U+1680,
///   U+2000–U+200A, U+2028, U+2029, U+202F, U+205F, U+3000).
/// - `\p{L}` / `\p{N}` are the general categories L* / N* of Unicode 16.0 (the version of the Oniguruma
///   that `tokenizers` links). Scalars assigned in later Unicode versions count as unassigned (neither).
/// - `(?i:...)` folds case: A–Z match a–z, and U+017F LATIN SMALL LETTER LONG S matches `s`.
/// - Alternatives are tried in order at each position (first success wins, not longest); every scalar is
///   matched by some alternative, so the matches tile the text.
enum PreTokenizer {
    /// Scalar classes used by the matcher.
    static let other: UInt8 = 0      // not L, N or \s
    static let letter: UInt8 = 1     // \p{L}
    static let number: UInt8 = 2     // \p{N}
    static let space: UInt8 = 3      // U+0020
    static let newline: UInt8 = 4    // \r or \n
    static let otherSpace: UInt8 = 5 // any other \s

    /// The newest Unicode version whose assignments count (that of Oniguruma in `tokenizers`).
    static let unicodeMajor = 16

    /// The exact regex of the Qwen2 tokenizer.json pre-tokenizer (the only one supported).
    static let qwen2Pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    static func computeClass(_ v: UInt32) -> UInt8 {
        switch v {
        case 0x20: return space
        case 0x0A, 0x0D: return newline
        case 0x09, 0x0B, 0x0C, 0x85, 0xA0, 0x1680, 0x2000 ... 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return otherSpace
        default: break
        }
        guard let u = Unicode.Scalar(v) else { return other }
        let p = u.properties
        guard let age = p.age, age.major <= unicodeMajor else { return other }
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return letter
        case .decimalNumber, .letterNumber, .otherNumber: return number
        default: return other
        }
    }

    /// Classes of the Basic Multilingual Plane, computed once per process (about 5 ms).
    static let bmpTable: [UInt8] = (0 ..< 0x10000).map { computeClass(UInt32($0)) }

    @inline(__always)
    static func isSpace(_ c: UInt8) -> Bool { c >= space }

    /// `(?i:s)` etc.: the lowercase ASCII letter a scalar folds to, for the contraction letters only.
    @inline(__always)
    static func fold(_ v: UInt32) -> UInt32 {
        if v >= 0x41, v <= 0x5A { return v | 0x20 }
        if v == 0x17F { return 0x73 }  // ſ folds to s
        return v
    }

    /// Splits `count` scalars (classes in `cls`, values in `scalars`) into pre-tokens, calling
    /// `body(start, end)` with scalar index ranges in order.
    @inline(__always)
    static func split(cls: UnsafeBufferPointer<UInt8>, scalars: UnsafeBufferPointer<UInt32>,
                      _ body: (Int, Int) -> Void)
    {
        let n = cls.count
        var i = 0
        while i < n {
            let end = matchAt(i, n: n, cls: cls, scalars: scalars)
            body(i, end)
            i = end
        }
    }

    /// End of the regex match starting at scalar `i` (always > i).
    @inline(__always)
    static func matchAt(_ i: Int, n: Int, cls: UnsafeBufferPointer<UInt8>, scalars: UnsafeBufferPointer<UInt32>) -> Int {
        let c = cls[i]
        // 1. (?i:'s|'t|'re|'ve|'m|'ll|'d)
        if scalars[i] == 0x27, i + 1 < n {
            let a = fold(scalars[i + 1])
            switch a {
            case 0x73, 0x74, 0x6D, 0x64: return i + 2  // s t m d
            case 0x72, 0x76:  // r v
                if i + 2 < n, fold(scalars[i + 2]) == 0x65 { return i + 3 }
            case 0x6C:  // l
                if i + 2 < n, fold(scalars[i + 2]) == 0x6C { return i + 3 }
            default: break
            }
        }
        // 2. [^\r\n\p{L}\p{N}]?\p{L}+
        if c == letter || (c != newline && c != number && i + 1 < n && cls[i + 1] == letter) {
            var j = i + 1
            while j < n, cls[j] == letter { j += 1 }
            return j
        }
        // 3. \p{N}
        if c == number { return i + 1 }
        // 4. ' ?[^\s\p{L}\p{N}]+[\r\n]*'
        var k = i
        if c == space, i + 1 < n, cls[i + 1] == other { k = i + 1 }
        if cls[k] == other {
            var j = k + 1
            while j < n, cls[j] == other { j += 1 }
            while j < n, cls[j] == newline { j += 1 }
            return j
        }
        // Only whitespace remains (c is \s).
        var e = i + 1
        var lastNewline = c == newline ? i : -1
        while e < n, isSpace(cls[e]) {
            if cls[e] == newline { lastNewline = e }
            e += 1
        }
        // 5. \s*[\r\n]+  (up to the last line break of the whitespace run)
        if lastNewline >= 0 { return lastNewline + 1 }
        // 6. \s+(?!\S)  (the run, leaving its last scalar to the next match when a non-space follows)
        if e == n { return n }
        if e - i >= 2 { return e - 1 }
        // 7. \s+
        return e
    }
}
