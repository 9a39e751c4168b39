import QwenFormats
import QwenTestSupport
import QwenTokenizer
import Testing

@Suite("Tokenizer behavior")
struct BehaviorTests {
    var tok: Tokenizer { get throws { try #require(Shared.tiny) } }

    @Test func specialTokenParsing() throws {
        let tok = try tok
        let imStart = try #require(tok.tokenID("<|im_start|>"))
        let imEnd = try #require(tok.tokenID("<|im_end|>"))
        #expect(imStart == 2049 && imEnd == 2050)
        #expect(tok.isSpecial(imStart) && tok.isAdded(imStart))

        let text = "<|im_start|>user\nhi<|im_end|>"
        let parsed = tok.encode(text, parseSpecial: true)
        #expect(parsed.first == imStart && parsed.last == imEnd)
        let plain = tok.encode(text, parseSpecial: false)
        #expect(!plain.contains(imStart) && !plain.contains(imEnd))
        #expect(tok.decode(parsed) == Array(text.utf8))
        #expect(tok.decode(plain) == Array(text.utf8))

        // non-special added tokens are matched either way
        let think = try #require(tok.tokenID("<think>"))
        #expect(!tok.isSpecial(think) && tok.isAdded(think))
        for parse in [true, false] {
            let ids = tok.encode("a<think>b</think>", parseSpecial: parse)
            #expect(ids.contains(think))
            #expect(ids.contains(try #require(tok.tokenID("</think>"))))
        }
        // adjacent, repeated and unterminated look-alikes
        #expect(tok.encode("<|im_end|><|im_end|>", parseSpecial: true) == [imEnd, imEnd])
        #expect(!tok.encode("<|im_end|", parseSpecial: true).contains(imEnd))
        #expect(!tok.encode("<|IM_END|>", parseSpecial: true).contains(imEnd))
    }

    /// Added-token flags (lstrip, rstrip, single_word, normalized) and leftmost-longest matching, on the
    /// tiny tokenizer.json with extra added tokens; expected ids from Hugging Face tokenizers 0.23.3.
    @Test func addedTokenFlags() throws {
        var json = try #require(try JSON.parseFile(Paths.tinyTokenizer + "/tokenizer.json").object)
        func token(_ id: Int, _ content: String, lstrip: Bool = false, rstrip: Bool = false, singleWord: Bool = false,
                   normalized: Bool = false, special: Bool = false) -> JSON {
            .object([("id", .number(Double(id))), ("content", .string(content)), ("single_word", .bool(singleWord)),
                     ("lstrip", .bool(lstrip)), ("rstrip", .bool(rstrip)), ("normalized", .bool(normalized)),
                     ("special", .bool(special))])
        }
        let i = try #require(json.firstIndex { $0.key == "added_tokens" })
        json[i].value = .array((json[i].value.array ?? []) + [
            token(2074, "<mask>", lstrip: true, special: true),
            token(2075, "[R]", rstrip: true),
            token(2076, "zork", singleWord: true),
            token(2077, "e\u{301}x", normalized: true),
            token(2078, "<|im_end|>X"),
        ])
        let tok = try Tokenizer(huggingFace: .object(json))
        let cases: [(String, [Int32], [Int32])] = [
            ("a  <mask> b", [64, 2074, 293], [64, 220, 366, 76, 1073, 29, 293]),
            ("<mask>", [2074], [27, 76, 1073, 29]),
            ("x\u{3000}\t<mask>", [87, 2074], [87, 1277, 222, 197, 27, 76, 1073, 29]),
            ("[R]   z", [2075, 89], [2075, 89]),
            ("a[R]\n\nb", [64, 2075, 65], [64, 2075, 65]),
            ("zork zorks szork zork.", [2076, 1147, 669, 82, 274, 89, 669, 220, 2076, 13],
             [2076, 1147, 669, 82, 274, 89, 669, 220, 2076, 13]),
            ("zorky", [89, 669, 88], [89, 669, 88]),
            ("(zork)", [7, 2076, 8], [7, 2076, 8]),
            ("caf\u{E9}x e\u{301}x", [924, 69, 2077, 220, 2077], [924, 69, 2077, 220, 2077]),
            ("<|im_end|>X <|im_end|>", [2078, 220, 2050], [2078, 366, 91, 318, 62, 408, 91, 29]),
            ("  <mask>  [R]  ", [2074, 256, 2075], [220, 366, 76, 1073, 29, 256, 2075]),
        ]
        for (text, special, plain) in cases {
            #expect(tok.encode(text, parseSpecial: true) == special, "\(text)")
            #expect(tok.encode(text, parseSpecial: false) == plain, "\(text)")
        }
    }

    @Test func lookupsAndMetadata() throws {
        let tok = try tok
        #expect(tok.eosID == 2050)      // tokenizer_config eos_token <|im_end|>
        #expect(tok.padID == 2048)      // <|endoftext|>
        #expect(tok.bosID == nil)
        #expect(!tok.addBOS)
        #expect(tok.endOfGenerationIDs == [2048, 2050])
        #expect(tok.chatTemplate?.contains("<|im_start|>") == true)
        #expect(tok.tokenID("Ġ") == 220)  // vocabulary strings are in byte-level form
        #expect(tok.pieceBytes(220) == [0x20])
        #expect(tok.tokenID("no such token") == nil)
        // unknown ids never trap
        for id: Int32 in [-1, -100, Int32(tok.count), .max, .min] {
            #expect(tok.pieceBytes(id).isEmpty)
            #expect(!tok.isSpecial(id))
        }
        #expect(tok.decode([-5, 2050, 99_999_999]) == Array("<|im_end|>".utf8))
    }

    @Test func realTokenizerBasics() throws {
        guard Paths.hasRealTokenizer else { return }
        let tok = try #require(Shared.real)
        #expect(tok.encode("Hello world", parseSpecial: false) == [9707, 1879])
        #expect(tok.eosID == tok.tokenID("<|im_end|>"))
        #expect(tok.endOfGenerationIDs == [151643, 151645])
        #expect(tok.tokenID("<think>") == 151667 && !tok.isSpecial(151667))
        // a partial UTF-8 piece decodes to raw bytes
        let ids = tok.encode("😀", parseSpecial: false)
        let pieces = ids.map { tok.pieceBytes($0) }
        #expect(pieces.joined().elementsEqual("😀".utf8))
    }

    /// Pieces, contractions, whitespace handling: the regex semantics on a few hand-checked cases
    /// (expected values from Hugging Face tokenizers with the real vocabulary).
    @Test func preTokenizerCases() throws {
        guard Paths.hasRealTokenizer else { return }
        let tok = try #require(Shared.real)
        let cases: [(String, [Int32])] = [
            ("I'M ſ'S", [40, 27603, 25917, 123, 13272]),  // case-folded contractions, ſ folds to s
            ("don't 'RE 'Ve", [15007, 944, 364, 787, 364, 42612]),
            ("a  b", [64, 220, 293]),                       // \s+(?!\S) leaves one space for " b"
            ("a \n\n b", [64, 4710, 293]),                   // \s*[\r\n]+
            ("x   ", [87, 262]),
            ("12345", [16, 17, 18, 19, 20]),                // \p{N} one digit at a time
            ("a\u{A0}\u{A0}b\u{3000}c", [64, 4102, 4102, 65, 22441, 66]),
        ]
        for (text, ids) in cases {
            #expect(tok.encode(text, parseSpecial: false) == ids, "\(text)")
        }
    }

    @Test func errors() throws {
        func status(_ body: () throws -> Any) -> QwenStatus? {
            do { _ = try body(); return nil } catch let e as QwenError { return e.status } catch { return .invalidArgument }
        }
        #expect(status { try Tokenizer.load(huggingFaceFolder: "/nonexistent/dir") } == .io)

        let tiny = try readTextFile(TestSupport.fixture("tiny/tokenizer/tokenizer.json"))
        let dir = TestSupport.temporaryPath("tok")
        _ = mkdirPath(dir)
        defer { removePath(dir + "/tokenizer.json"); removePath(dir) }
        func load(_ text: String) -> QwenStatus? {
            TestSupport.writeBytes(Array(text.utf8), to: dir + "/tokenizer.json")
            return status { try Tokenizer.load(huggingFaceFolder: dir) }
        }
        #expect(load(tiny) == nil)
        // truncations at many points: always a format error, never a crash
        let bytes = Array(tiny.utf8)
        for cut in stride(from: 0, to: bytes.count, by: bytes.count / 37) {
            TestSupport.writeBytes(Array(bytes[..<cut]), to: dir + "/tokenizer.json")
            #expect(status { try Tokenizer.load(huggingFaceFolder: dir) } == .format, "cut at \(cut)")
        }
        func edited(_ edit: (inout [(key: String, value: JSON)]) -> Void) throws -> String {
            var obj = try #require(try JSON.parse(tiny).object)
            edit(&obj)
            return JSON.object(obj).serialized
        }
        func setModel(_ key: String, _ value: JSON?) -> (inout [(key: String, value: JSON)]) -> Void {
            { obj in
                guard let i = obj.firstIndex(where: { $0.key == "model" }), var model = obj[i].value.object else { return }
                model.removeAll { $0.key == key }
                if let value { model.append((key, value)) }
                obj[i].value = .object(model)
            }
        }
        #expect(load(try edited(setModel("vocab", nil))) == .format)
        #expect(load(try edited(setModel("merges", nil))) == .format)
        #expect(load(try edited(setModel("vocab", .object([("a", .string("x"))])))) == .format)
        #expect(load(try edited(setModel("vocab", .object([("a", .number(1e12))])))) == .format)
        #expect(load(try edited(setModel("merges", .array([.string("Ġ zzz")])))) == .format)
        #expect(load(try edited(setModel("merges", .array([.string("a b c")])))) == .format)
        #expect(load(try edited(setModel("merges", .array([.number(3)])))) == .format)
        #expect(load(try edited(setModel("type", .string("WordPiece")))) == .unsupported)
        #expect(load(try edited { $0.removeAll { $0.key == "pre_tokenizer" } }) == .unsupported)
        #expect(load(try edited { obj in
            if let i = obj.firstIndex(where: { $0.key == "pre_tokenizer" }) {
                obj[i].value = .object([("type", .string("ByteLevel")), ("add_prefix_space", .bool(false)), ("use_regex", .bool(true))])
            }
        }) == .unsupported)
        #expect(load(try edited { obj in
            if let i = obj.firstIndex(where: { $0.key == "normalizer" }) { obj[i].value = .object([("type", .string("NFKC"))]) }
        }) == .unsupported)
        #expect(load(try edited { obj in
            if let i = obj.firstIndex(where: { $0.key == "added_tokens" }) {
                obj[i].value = .array([.object([("id", .number(-3)), ("content", .string("<x>"))])])
            }
        }) == .format)
        #expect(load("[]") == .format)
        #expect(load("") == .format)
        // merges in the legacy "a b" form are accepted too (the fixture has [a, b] pairs)
        let pairs = try edited { obj in
            guard let i = obj.firstIndex(where: { $0.key == "model" }), var model = obj[i].value.object,
                  let j = model.firstIndex(where: { $0.key == "merges" }), let merges = model[j].value.array else { return }
            model[j].value = .array(merges.map { m in
                .string((m.array ?? []).compactMap(\.string).joined(separator: " "))
            })
            obj[i].value = .object(model)
        }
        #expect(load(pairs) == nil)
        TestSupport.writeBytes(Array(pairs.utf8), to: dir + "/tokenizer.json")
        let fromPairs = try Tokenizer.load(huggingFaceFolder: dir)
        let sample = "Hello, 世界! It's 2025."
        #expect(fromPairs.encode(sample, parseSpecial: true) == (try tok).encode(sample, parseSpecial: true))
    }

    @Test func ggufErrors() throws {
        let good = try GGUFFile(path: TestSupport.fixture("tiny/qwen2-f32.gguf"))
        func status(_ edit: (inout GGUFWriter) -> Void) -> QwenStatus? {
            var w = GGUFWriter()
            for (k, v) in good.metadata where k.hasPrefix("tokenizer.") { w.set(k, v) }
            edit(&w)
            let path = TestSupport.temporaryPath("tok.gguf")
            TestSupport.writeBytes(try! w.serialize(), to: path)
            defer { removePath(path) }
            do { _ = try Tokenizer(gguf: GGUFFile(path: path)); return nil } catch let e as QwenError { return e.status } catch { return .invalidArgument }
        }
        func remove(_ key: String) -> (inout GGUFWriter) -> Void { { w in w.metadata.removeAll { $0.key == key } } }
        #expect(status { _ in } == nil)
        #expect(status(remove("tokenizer.ggml.model")) == .format)
        #expect(status(remove("tokenizer.ggml.tokens")) == .format)
        #expect(status(remove("tokenizer.ggml.merges")) == .format)
        #expect(status(remove("tokenizer.ggml.pre")) == .unsupported)
        #expect(status { $0.set("tokenizer.ggml.model", .string("llama")) } == .unsupported)
        #expect(status { $0.set("tokenizer.ggml.pre", .string("llama3")) } == .unsupported)
        #expect(status { $0.set("tokenizer.ggml.model", .uint(3, .uint32)) } == .format)
        #expect(status { $0.set("tokenizer.ggml.tokens", .array(.uint32, [.uint(1, .uint32)])) } == .format)
        #expect(status { $0.set("tokenizer.ggml.token_type", .array(.int32, [.int(1, .int32)])) } == .format)
        #expect(status { $0.set("tokenizer.ggml.merges", .array(.uint8, [.uint(1, .uint8)])) } == .format)
        // out-of-range special ids are ignored, odd merges skipped (as llama.cpp does)
        #expect(status { $0.set("tokenizer.ggml.eos_token_id", .uint(999_999, .uint32)) } == nil)
        #expect(status { $0.set("tokenizer.ggml.merges", .array(.string, [.string("nospace"), .string("Ġ zzz"), .string("")])) } == nil)
        // a file that is not GGUF at all
        let path = TestSupport.temporaryPath("bad.gguf")
        TestSupport.writeBytes(Array("not a gguf".utf8), to: path)
        defer { removePath(path) }
        #expect(throws: QwenError.self) { _ = try Tokenizer(gguf: GGUFFile(path: path)) }
    }

    @Test func unusedFillerTokensNeverMatch() throws {
        let tok = try Tokenizer(gguf: GGUFFile(path: TestSupport.fixture("tiny/qwen2-f32.gguf")))
        for parse in [true, false] {
            let ids = tok.encode("[PAD2074][PAD2111]", parseSpecial: parse)
            #expect(ids.allSatisfy { $0 < 2048 })
            #expect(tok.decode(ids) == Array("[PAD2074][PAD2111]".utf8))
        }
        #expect(tok.decode([2074, 2111]).isEmpty)
    }

    /// Arbitrary bytes (invalid UTF-8, NULs, control characters, huge words) never trap, and decoding gives
    /// back the normalized text.
    @Test func arbitraryBytes() throws {
        let tok = try tok
        var rng = SplitMix64(seed: 42)
        func roundTrip(_ bytes: [UInt8], parseSpecial: Bool = true) {
            let ids = bytes.withUnsafeBytes { tok.encode(bytes: $0, parseSpecial: parseSpecial) }
            #expect(ids.allSatisfy { $0 >= 0 && Int($0) < tok.count })
            let text = String(decoding: bytes, as: UTF8.self)
            #expect(tok.decode(ids) == nfcBytes(text), "input of \(bytes.count) bytes")
        }
        roundTrip([])
        roundTrip([0])
        roundTrip([0, 0, 0, 0xFF, 0xFE, 0xC0, 0x80, 0xED, 0xA0, 0x80, 0xF4, 0x90, 0x80, 0x80])
        roundTrip(Array("<|im_end".utf8) + [0xE4, 0xBD] + Array("|>".utf8))
        for _ in 0 ..< 300 {
            let n = Int(rng.next() % 200)
            roundTrip((0 ..< n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, parseSpecial: rng.next() & 1 == 0)
        }
        // random scalars from all planes, including combining marks and unassigned code points
        for _ in 0 ..< 200 {
            var s = String.UnicodeScalarView()
            for _ in 0 ..< Int(rng.next() % 60) {
                let pick = rng.next() % 4
                let v: UInt32 = pick == 0 ? UInt32(rng.next() % 0x80) : pick == 1 ? 0x300 + UInt32(rng.next() % 0x70)
                    : UInt32(rng.next() % 0x110000)
                if let u = Unicode.Scalar(v) { s.append(u) }
            }
            roundTrip(Array(String(s).utf8))
        }
        // very long inputs: one 200 KB "word", long whitespace, digits, punctuation, Chinese, a big mix
        roundTrip(Array(String(repeating: "a", count: 200_000).utf8))
        roundTrip(Array(String(repeating: "的", count: 20_000).utf8))
        roundTrip(Array(String(repeating: " ", count: 100_000).utf8) + [0x78])
        roundTrip(Array(String(repeating: "\r\n \t", count: 20_000).utf8))
        roundTrip(Array(String(repeating: "!?", count: 50_000).utf8))
        roundTrip(Array(String(repeating: "9", count: 50_000).utf8))
        roundTrip(Array(String(repeating: "e\u{301}", count: 20_000).utf8))
        roundTrip((0 ..< 1_000_000).map { _ in UInt8(truncatingIfNeeded: rng.next() % 128) })
    }

    /// Encoding from many threads at once (the word cache is shared) gives the same ids as serially.
    @Test func concurrentEncoding() async throws {
        let tok = try tok
        let corpus = try #require(Shared.tinyCorpus)
        let results = await withTaskGroup(of: Int.self) { group in
            for t in 0 ..< 8 {
                group.addTask {
                    var bad = 0
                    for round in 0 ..< 3 {
                        for (i, text) in corpus.texts.enumerated() where (i + t + round) % 2 == 0 {
                            if tok.encode(text, parseSpecial: true) != corpus.ids[i] { bad += 1 }
                        }
                    }
                    return bad
                }
            }
            var total = 0
            for await bad in group { total += bad }
            return total
        }
        #expect(results == 0)
    }
}

#if canImport(Glibc)
import Glibc
#endif

@discardableResult func mkdirPath(_ path: String) -> Bool { mkdir(path, 0o755) == 0 }
func removePath(_ path: String) { remove(path) }
