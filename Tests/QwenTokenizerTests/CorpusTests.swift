import QwenFormats
import QwenTestSupport
import QwenTokenizer
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Tokenizer corpora (ids identical to Hugging Face tokenizers)")
struct CorpusTests {
    /// Compares every entry, both with and without special-token parsing, and the decoded bytes.
    /// `skipNoSpecial` excludes entries from the no-special comparison (documented GGUF deviation).
    static func check(_ tok: Tokenizer, _ corpus: Corpus, label: String,
                      skipNoSpecial: (String) -> Bool = { _ in false }) -> (special: Int, noSpecial: Int, decode: Int, skipped: Int)
    {
        var bad = (special: 0, noSpecial: 0, decode: 0, skipped: 0)
        var reported = 0
        func report(_ s: String) {
            if reported < 8 { print("[\(label)] \(s)") }
            reported += 1
        }
        for (i, text) in corpus.texts.enumerated() {
            let got = tok.encode(text, parseSpecial: true)
            if got != corpus.ids[i] {
                bad.special += 1
                report("entry \(i) (\(corpus.categories[i])) special: \(firstDifference(got, corpus.ids[i]))")
            }
            if skipNoSpecial(text) {
                // no reference ids (they match llama.cpp's, checked by hand): special ids never appear and
                // the text survives the round trip
                bad.skipped += 1
                let got2 = tok.encode(text, parseSpecial: false)
                if got2.contains(where: { tok.isSpecial($0) }) || tok.decode(got2) != nfcBytes(text) {
                    bad.noSpecial += 1
                    report("entry \(i) (\(corpus.categories[i])) no-special: special id or bad round trip")
                }
            } else {
                let got2 = tok.encode(text, parseSpecial: false)
                if got2 != corpus.idsNoSpecial[i] {
                    bad.noSpecial += 1
                    report("entry \(i) (\(corpus.categories[i])) no-special: \(firstDifference(got2, corpus.idsNoSpecial[i]))")
                }
            }
            if tok.decode(corpus.ids[i]) != nfcBytes(text) {
                bad.decode += 1
                report("entry \(i) (\(corpus.categories[i])) decode differs from NFC(text)")
            }
        }
        print("[\(label)] \(corpus.texts.count) entries: mismatches special \(bad.special), no-special \(bad.noSpecial), decode \(bad.decode); no-special skipped \(bad.skipped)")
        return bad
    }

    @Test(.enabled(if: Paths.hasRealTokenizer, "real tokenizer not fetched (scripts/fixtures/fetch_tokenizers.sh)"))
    func realTokenizerCorpus() throws {
        let tok = try #require(Shared.real)
        let corpus = try #require(Shared.realCorpus)
        #expect(corpus.texts.count >= 2000)
        #expect(tok.count == 151_669)
        let bad = Self.check(tok, corpus, label: "real")
        #expect(bad.special == 0)
        #expect(bad.noSpecial == 0)
        #expect(bad.decode == 0)
    }

    /// The real vocabulary written to GGUF as llama.cpp's converter writes it and read back (token and merge lists
    /// taken from the file's bytes in place): the same ids, and the same bytes for every token.
    @Test(.enabled(if: Paths.hasRealTokenizer, "real tokenizer not fetched (scripts/fixtures/fetch_tokenizers.sh)"))
    func realGGUFCorpus() throws {
        let hf = try #require(Shared.real)
        let corpus = try #require(Shared.realCorpus)
        let path = TestSupport.temporaryPath("real-vocab.gguf")
        var w = GGUFWriter()
        w.set("general.architecture", .string("qwen2"))
        for (key, value) in try GGUFVocabulary.read(huggingFaceFolder: Paths.realTokenizer, vocabularySize: 151_936).metadata {
            w.set(key, value)
        }
        try w.write(to: path)
        defer { unlink(path) }
        let tok = try Tokenizer(gguf: GGUFFile(path: path))
        #expect(tok.count == 151_936)
        let bad = Self.check(tok, corpus, label: "real GGUF",
                             skipNoSpecial: { text in Self.controlInGGUFOnly.contains { text.contains($0) } })
        #expect(bad.special == 0)
        #expect(bad.noSpecial == 0)
        #expect(bad.decode == 0)
        var differ = 0
        for id in Int32(0) ..< Int32(hf.count) where tok.pieceBytes(id) != hf.pieceBytes(id) { differ += 1 }
        #expect(differ == 0)
    }

    @Test func tinyTokenizerJSONCorpus() throws {
        let tok = try #require(Shared.tiny)
        let corpus = try #require(Shared.tinyCorpus)
        #expect(tok.count == 2074)
        let bad = Self.check(tok, corpus, label: "tiny tokenizer.json")
        #expect(bad.special == 0)
        #expect(bad.noSpecial == 0)
        #expect(bad.decode == 0)
    }

    /// llama.cpp's converter stores the `special: false` tokens that look like `<|...|>` (FIM, repo_name,
    /// file_sep) as CONTROL, so from a GGUF they are matched only when parsing special tokens, unlike HF.
    static let controlInGGUFOnly = ["<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
                                    "<|repo_name|>", "<|file_sep|>"]

    @Test(arguments: Paths.tinyGGUFs)
    func tinyGGUFCorpus(path: String) throws {
        let gguf = try GGUFFile(path: path)
        let tok = try Tokenizer(gguf: gguf)
        let corpus = try #require(Shared.tinyCorpus)
        #expect(tok.count == 2112)
        let bad = Self.check(tok, corpus, label: path.split(separator: "/").last.map(String.init) ?? path,
                             skipNoSpecial: { text in Self.controlInGGUFOnly.contains { text.contains($0) } })
        #expect(bad.special == 0)
        #expect(bad.noSpecial == 0)
        #expect(bad.decode == 0)
        #expect(bad.skipped < corpus.texts.count / 4)
    }

    /// The GGUF tokenizer and the tokenizer.json one agree token for token on every id they share.
    @Test func tinyGGUFMatchesTokenizerJSON() throws {
        let hf = try #require(Shared.tiny)
        let tok = try Tokenizer(gguf: GGUFFile(path: TestSupport.fixture("tiny/qwen2-f32.gguf")))
        for id in Int32(0) ..< Int32(hf.count) {
            #expect(tok.pieceBytes(id) == hf.pieceBytes(id), "id \(id)")
        }
        for id in Int32(hf.count) ..< Int32(tok.count) {
            #expect(tok.pieceBytes(id).isEmpty)  // [PAD] fillers decode to nothing
            #expect(!tok.isAdded(id))
        }
        // special flags: HF special, or CONTROL in the GGUF (the <|...|> look-alikes)
        let flags = (2048 ..< 2074).map { tok.isSpecial(Int32($0)) }
        let expected = (2048 ..< 2074).map { id in
            hf.isSpecial(Int32(id)) || Self.controlInGGUFOnly.contains(String(decoding: hf.pieceBytes(Int32(id)), as: UTF8.self))
        }
        #expect(flags == expected)
        #expect(tok.eosID == 2050)
        #expect(tok.bosID == 2048)
        #expect(tok.padID == 2048)
        #expect(!tok.addBOS)
        #expect(tok.endOfGenerationIDs == [2050, 2048])
        #expect(tok.chatTemplate != nil && tok.chatTemplate == hf.chatTemplate)
    }
}
