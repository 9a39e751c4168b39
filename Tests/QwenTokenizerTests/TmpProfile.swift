import QwenFormats
import QwenTestSupport
import QwenTokenizer
import Testing

@Suite struct TmpProfile {
    @Test func loadOnly() throws {
        var t0 = monotonicSeconds()
        let j = try JSON.parseFile(Paths.realTokenizer + "/tokenizer.json")
        print("[tmp] json parse", monotonicSeconds() - t0)
        for _ in 0 ..< 5 {
            t0 = monotonicSeconds()
            _ = try Tokenizer(huggingFace: j)
            print("[tmp] init from json", monotonicSeconds() - t0)
        }
    }
    @Test func encodeOnly() throws {
        let tok = try Tokenizer.load(huggingFaceFolder: Paths.realTokenizer)
        let corpus = try Corpus(Corpus.realPath)
        let t0 = monotonicSeconds()
        var n = 0
        for _ in 0 ..< 60 { for t in corpus.texts { n += tok.encode(t, parseSpecial: true).count } }
        print("[tmp] encode", Double(263449 * 60) / (monotonicSeconds() - t0) / 1e6, "MB/s")
    }
}
