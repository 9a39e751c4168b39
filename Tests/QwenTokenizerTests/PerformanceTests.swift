import QwenFormats
import QwenTestSupport
import QwenTokenizer
import Testing

/// Prints load time and encode throughput (no assertions on time). Meaningful in a release build:
///     swift test -c release --scratch-path .build-tok --filter QwenTokenizerTests.PerformanceTests
@Suite("Tokenizer performance (printed)")
struct PerformanceTests {
    #if DEBUG
    static let repeats = 1
    #else
    static let repeats = 3
    #endif

    @Test(.enabled(if: Paths.hasRealTokenizer)) func loadAndThroughput() throws {
        var t0 = monotonicSeconds()
        let tok = try Tokenizer.load(huggingFaceFolder: Paths.realTokenizer)
        let load = monotonicSeconds() - t0
        let corpus = try Corpus(Corpus.realPath)

        func measure(_ label: String, _ texts: [String], parseSpecial: Bool = true) {
            let bytes = texts.reduce(0) { $0 + $1.utf8.count }
            guard bytes > 0 else { return }
            var tokens = 0
            var best = Double.infinity
            for _ in 0 ..< Self.repeats {
                t0 = monotonicSeconds()
                tokens = 0
                for t in texts { tokens += tok.encode(t, parseSpecial: parseSpecial).count }
                best = min(best, monotonicSeconds() - t0)
            }
            print("[perf] encode \(label): \(bytes) bytes, \(tokens) tokens, \(fmt(Double(bytes) / best / 1e6)) MB/s, \(fmt(Double(tokens) / best / 1e6)) Mtok/s")
        }
        func fmt(_ x: Double) -> String { let v = Int((x * 10).rounded()); return "\(v / 10).\(v % 10)" }

        print("[perf] load real tokenizer.json: \(fmt(load * 1000)) ms (\(tok.count) tokens)")
        measure("corpus (2,100 texts)", corpus.texts)
        let joined = corpus.texts.joined(separator: "\n")
        measure("corpus joined into one text", [joined])
        let english = corpus.texts.enumerated().filter { ["en_license", "en_zen", "en"].contains(corpus.categories[$0.offset]) }.map(\.element)
        measure("English", [String(repeating: english.joined(separator: "\n"), count: 20)])
        let chinese = corpus.texts.enumerated().filter { corpus.categories[$0.offset].hasPrefix("zh") }.map(\.element)
        measure("Chinese", [String(repeating: chinese.joined(separator: "\n"), count: 5)])
        let code = corpus.texts.enumerated().filter { corpus.categories[$0.offset].hasPrefix("code") }.map(\.element)
        measure("code", [String(repeating: code.joined(separator: "\n"), count: 5)])
        measure("5 KB word", [String(repeating: "abcdefghij", count: 500)])

        t0 = monotonicSeconds()
        var n = 0
        for ids in corpus.ids { n += tok.decode(ids).count }
        print("[perf] decode corpus: \(fmt(Double(n) / (monotonicSeconds() - t0) / 1e6)) MB/s")

        t0 = monotonicSeconds()
        let gguf = try GGUFFile(path: TestSupport.fixture("tiny/qwen2-f32.gguf"))
        _ = try Tokenizer(gguf: gguf)
        print("[perf] load tiny GGUF tokenizer: \(fmt((monotonicSeconds() - t0) * 1000)) ms")
    }
}
