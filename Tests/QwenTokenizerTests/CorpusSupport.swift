import QwenFormats
import QwenTestSupport
import QwenTokenizer
#if canImport(Glibc)
import Glibc
#endif

/// A tokenizer corpus made by scripts/fixtures/make_fixtures.py with Hugging Face `tokenizers`.
struct Corpus {
    var texts: [String] = []
    var categories: [String] = []
    var ids: [[Int32]] = []
    var idsNoSpecial: [[Int32]] = []

    init(_ path: String) throws {
        let json = try JSON.parseFile(path)
        guard let texts = json["texts"]?.array, let ids = json["ids"]?.array, let noSpecial = json["ids_no_special"]?.array,
              texts.count == ids.count, texts.count == noSpecial.count
        else { throw QwenError.format("\(path): not a corpus") }
        func idList(_ j: JSON) -> [Int32] { (j.array ?? []).map { Int32($0.int ?? -1) } }
        self.texts = texts.map { $0.string ?? "" }
        categories = json["categories"]?.array?.map { $0.string ?? "" } ?? Array(repeating: "", count: texts.count)
        self.ids = ids.map(idList)
        idsNoSpecial = noSpecial.map(idList)
    }

    static let realPath = TestSupport.fixture("tokenizer/corpus.json")
    static let tinyPath = TestSupport.fixture("tokenizer/tiny_corpus.json")
}

enum Paths {
    static var realTokenizer: String { TestSupport.realTokenizerDirectory }
    static var hasRealTokenizer: Bool { fileExists(realTokenizer + "/tokenizer.json") }
    static let tinyTokenizer = TestSupport.fixture("tiny/tokenizer")
    static let tinyGGUFs = ["qwen2-f32", "qwen2-f16", "qwen2-bf16", "qwen2-q8_0", "qwen2-q4_0", "qwen25-q8_0", "qwen25-q4_0"]
        .map { TestSupport.fixture("tiny/\($0).gguf") }
}

/// Shared, loaded once per process (loading the real tokenizer takes a while in debug builds).
enum Shared {
    static let real: Tokenizer? = try? Tokenizer.load(huggingFaceFolder: Paths.realTokenizer)
    static let realCorpus: Corpus? = try? Corpus(Corpus.realPath)
    static let tiny: Tokenizer? = try? Tokenizer.load(huggingFaceFolder: Paths.tinyTokenizer)
    static let tinyCorpus: Corpus? = try? Corpus(Corpus.tinyPath)
}

func nfcBytes(_ s: String) -> [UInt8] { s._nfcCodeUnits }

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Describes the first difference between two id lists.
func firstDifference(_ a: [Int32], _ b: [Int32]) -> String {
    let n = min(a.count, b.count)
    var i = 0
    while i < n, a[i] == b[i] { i += 1 }
    let lo = max(0, i - 3)
    return "at \(i): got \(Array(a[lo ..< min(a.count, i + 5)])) expected \(Array(b[lo ..< min(b.count, i + 5)])) (lengths \(a.count) / \(b.count))"
}

/// A small deterministic PRNG for generated inputs.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
