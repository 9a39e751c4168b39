// Bounded resources (docs/RELIABILITY.md): hostile headers are refused with a clear error before any large allocation.
// Every file here is small and claims something huge (2^40 tensors, 2^60-byte strings, ...); the readers must check
// such claims against the bytes the file actually holds (or against fixed caps) before allocating. Each case must
// fail fast with the expected status and a message naming the problem. (The C test Tests/Reliability/test_invalid_args.c
// loads hostile files under an address-space limit, which turns an allocation that slipped through into a failure.)
import QwenFormats
import QwenFuzzHarnesses
import QwenModels
import QwenRuntime
import QwenTestSupport
import QwenTokenizer
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Raw GGUF bytes, written field by field so any field can lie.
struct RawGGUF {
    var bytes: [UInt8] = []

    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func string(_ s: String, claimedLength: UInt64? = nil) {
        u64(claimedLength ?? UInt64(s.utf8.count))
        bytes += Array(s.utf8)
    }
    /// Magic, version, counts.
    static func header(tensors: UInt64, metadata: UInt64, version: UInt32 = 3) -> RawGGUF {
        var g = RawGGUF()
        g.u32(0x4655_4747)
        g.u32(version)
        g.u64(tensors)
        g.u64(metadata)
        return g
    }
    mutating func kvString(_ key: String, _ value: String) {
        string(key)
        u32(8)
        string(value)
    }
    mutating func kvU32(_ key: String, _ value: UInt32) {
        string(key)
        u32(4)
        u32(value)
    }
    /// A tensor info: name, dimensions (innermost first, as GGUF stores them), type, offset.
    mutating func tensor(_ name: String, dims: [UInt64], type: UInt32 = 0, offset: UInt64 = 0) {
        string(name)
        u32(UInt32(dims.count))
        for d in dims { u64(d) }
        u32(type)
        u64(offset)
    }
    mutating func pad(to alignment: Int = 32, extra: Int = 0) {
        while bytes.count % alignment != 0 { bytes.append(0) }
        bytes += [UInt8](repeating: 0, count: extra)
    }
}

func temporaryFile(_ name: String, _ bytes: [UInt8]) throws -> String {
    let path = TestSupport.temporaryPath(name)
    try FuzzPaths.write(bytes, to: path)
    return path
}

/// Runs `body`, which must throw a QwenError of `status` whose message contains `words` (case-insensitive), fast.
func expectRefusal(_ status: QwenStatus, _ words: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation,
                   _ body: () throws -> Void) {
    var start = timespec(), end = timespec()
    clock_gettime(CLOCK_MONOTONIC, &start)
    do {
        try body()
        Issue.record("\(what): accepted", sourceLocation: sourceLocation)
    } catch let e as QwenError {
        #expect(e.status == status, "\(what): \(e.status) (\(e.message))", sourceLocation: sourceLocation)
        #expect(e.message.lowercased().contains(words.lowercased()), "\(what): message '\(e.message)' lacks '\(words)'",
                sourceLocation: sourceLocation)
    } catch {
        Issue.record("\(what): \(error)", sourceLocation: sourceLocation)
    }
    clock_gettime(CLOCK_MONOTONIC, &end)
    let seconds = Double(end.tv_sec - start.tv_sec) + Double(end.tv_nsec - start.tv_nsec) * 1e-9
    #expect(seconds < 5, "\(what): took \(seconds) s", sourceLocation: sourceLocation)
}

@Suite struct BoundedResourceTests {
    // MARK: GGUF

    func gguf(_ name: String, _ g: RawGGUF) throws -> String { try temporaryFile(name + ".gguf", g.bytes) }

    @Test func ggufCounts() throws {
        var g = RawGGUF.header(tensors: 1 << 40, metadata: 0)
        g.pad(extra: 64)
        let tensors = try gguf("tensors", g)
        expectRefusal(.format, "implausible tensor count", "2^40 tensors") { _ = try GGUFFile(path: tensors) }
        expectRefusal(.format, "implausible tensor count", "2^40 tensors, as a model") { _ = try Model.load(path: tensors) }
        g = RawGGUF.header(tensors: 0, metadata: 1 << 40)
        g.pad(extra: 64)
        let kvs = try gguf("kvs", g)
        expectRefusal(.format, "implausible metadata count", "2^40 metadata entries") { _ = try GGUFFile(path: kvs) }
        g = RawGGUF.header(tensors: UInt64.max, metadata: UInt64.max)
        let both = try gguf("max", g)
        expectRefusal(.format, "implausible", "UInt64.max counts") { _ = try GGUFFile(path: both) }
    }

    @Test func ggufStrings() throws {
        var g = RawGGUF.header(tensors: 0, metadata: 1)
        g.string("general.name", claimedLength: 1 << 60)
        g.pad(extra: 64)
        let key = try gguf("key", g)
        expectRefusal(.format, "claims", "a 2^60-byte key") { _ = try GGUFFile(path: key) }

        g = RawGGUF.header(tensors: 0, metadata: 1)
        g.string("general.name")
        g.u32(8)
        g.string("x", claimedLength: 1 << 60)
        let value = try gguf("value", g)
        expectRefusal(.format, "claims", "a 2^60-byte string value") { _ = try GGUFFile(path: value) }

        g = RawGGUF.header(tensors: 1, metadata: 0)
        g.string("token_embd.weight", claimedLength: UInt64.max)
        let name = try gguf("name", g)
        // the header's one tensor info cannot fit in the file: refused before the name is read
        expectRefusal(.format, "implausible tensor count", "a UInt64.max-byte tensor name") { _ = try GGUFFile(path: name) }
    }

    @Test func ggufArrays() throws {
        for (element, what) in [(UInt32(0), "uint8"), (8, "string"), (9, "array"), (12, "float64")] {
            var g = RawGGUF.header(tensors: 0, metadata: 1)
            g.string("tokenizer.ggml.tokens")
            g.u32(9)  // array
            g.u32(element)
            g.u64(1 << 60)
            g.pad(extra: 256)
            let path = try gguf("array-\(what)", g)
            expectRefusal(.format, "claims", "an array of 2^60 \(what) elements") { _ = try GGUFFile(path: path) }
        }
        // an array inside an array claiming 2^40 elements
        var g = RawGGUF.header(tensors: 0, metadata: 1)
        g.string("nested")
        g.u32(9)
        g.u32(9)
        g.u64(1)
        g.u32(4)
        g.u64(1 << 40)
        g.pad(extra: 64)
        let nested = try gguf("nested", g)
        expectRefusal(.format, "claims", "a nested array of 2^40 elements") { _ = try GGUFFile(path: nested) }
        // arrays nested deeper than any GGUF writer nests them
        g = RawGGUF.header(tensors: 0, metadata: 1)
        g.string("deep")
        g.u32(9)
        for _ in 0 ..< 40 { g.u32(9); g.u64(1) }
        g.pad(extra: 64)
        let deep = try gguf("deep", g)
        expectRefusal(.format, "nests arrays too deeply", "arrays nested 40 deep") { _ = try GGUFFile(path: deep) }
        // more elements than any reader of GGUF metadata needs, actually present in the file
        let n = GGUFFile.maxArrayElements + 1
        g = RawGGUF.header(tensors: 0, metadata: 1)
        g.string("big")
        g.u32(9)
        g.u32(0)
        g.u64(UInt64(n))
        g.bytes += [UInt8](repeating: 7, count: n)
        let big = try gguf("big", g)
        expectRefusal(.format, "elements", "an array of \(n) uint8 elements") { _ = try GGUFFile(path: big) }
    }

    @Test func ggufTensors() throws {
        func one(_ name: String, dims: [UInt64], type: UInt32 = 0, offset: UInt64 = 0, data: Int = 64,
                 kv: ((inout RawGGUF) -> Void)? = nil) throws -> String {
            var g = RawGGUF.header(tensors: 1, metadata: kv == nil ? 0 : 1)
            kv?(&g)
            g.tensor("t", dims: dims, type: type, offset: offset)
            g.pad(extra: data)
            return try gguf(name, g)
        }
        let cases: [(String, QwenStatus, String, () throws -> String)] = [
            ("dimension over Int32.max", .format, "too large", { try one("dim", dims: [1 << 40]) }),
            ("four dimensions of 2^31-1 (overflow)", .format, "does not fit", {
                try one("overflow", dims: [UInt64(Int32.max), UInt64(Int32.max), UInt64(Int32.max), UInt64(Int32.max)]) }),
            ("2^60 elements of Q8_0", .format, "outside the file", { try one("q8", dims: [1 << 30, 1 << 30], type: 8) }),
            ("2^31 x 2^31 F32 (byte count overflow)", .format, "does not fit", {
                try one("bytes", dims: [UInt64(Int32.max), UInt64(Int32.max), 4]) }),
            ("rows not a whole number of Q8_0 blocks", .format, "does not fit", { try one("blocks", dims: [33, 1], type: 8) }),
            ("data past the end of the file", .format, "outside the file", { try one("past", dims: [64], data: 128) }),
            ("offset 2^63", .format, "outside the file", { try one("offset", dims: [1], offset: 1 << 63) }),
            ("offset UInt64.max - 31", .format, "outside the file", { try one("wrap", dims: [8], offset: UInt64.max - 31) }),
            ("unaligned offset", .format, "outside the file", { try one("unaligned", dims: [1], offset: 3) }),
            ("no dimensions", .format, "dimensions", { try one("nodims", dims: []) }),
            ("five dimensions", .format, "dimensions", { try one("fivedims", dims: [1, 1, 1, 1, 1]) }),
            ("unknown type", .unsupported, "unsupported type", { try one("type", dims: [1], type: 99) }),
            ("alignment 0", .format, "alignment", { try one("align0", dims: [1]) { $0.kvU32("general.alignment", 0) } }),
            ("alignment 3", .format, "alignment", { try one("align3", dims: [1]) { $0.kvU32("general.alignment", 3) } }),
            ("alignment 2^20", .format, "alignment", { try one("alignbig", dims: [1]) { $0.kvU32("general.alignment", 1 << 20) } }),
        ]
        for (what, status, words, make) in cases {
            let path = try make()
            expectRefusal(status, words, what) { _ = try GGUFFile(path: path) }
        }
        // duplicate names
        var g = RawGGUF.header(tensors: 2, metadata: 0)
        g.tensor("t", dims: [8])
        g.tensor("t", dims: [8], offset: 32)
        g.pad(extra: 64)
        let dup = try gguf("dup", g)
        expectRefusal(.format, "duplicate", "two tensors of one name") { _ = try GGUFFile(path: dup) }
    }

    /// A well-formed GGUF whose model metadata is hostile: the model is refused, nothing large is allocated.
    @Test func ggufModelMetadata() throws {
        let mini = FuzzPaths.fuzzFixture("mini-qwen2-f32.gguf")
        let source = try GGUFFile(path: mini)
        func variant(_ name: String, _ edit: (inout GGUFWriter) -> Void) throws -> String {
            var w = GGUFWriter()
            for (k, v) in source.metadata { w.set(k, v) }
            for t in source.tensors {
                try w.addTensor(name: t.name, type: t.type, shape: t.shape,
                                bytes: Array(UnsafeRawBufferPointer(start: t.data, count: t.byteCount)))
            }
            edit(&w)
            let path = TestSupport.temporaryPath(name + ".gguf")
            try w.write(to: path)
            return path
        }
        func u64(_ v: UInt64) -> GGUFValue { .uint(v, .uint64) }
        let cases: [(String, QwenStatus, String, (inout GGUFWriter) -> Void)] = [
            ("2^20 + 1 layers", .format, "invalid model dimensions", { $0.set("qwen2.block_count", u64(1 << 20 + 1)) }),
            ("2^40 layers", .format, "invalid model dimensions", { $0.set("qwen2.block_count", u64(1 << 40)) }),
            ("1024 layers without their tensors", .format, "lacks tensor", { $0.set("qwen2.block_count", u64(1024)) }),
            ("hidden size 2^62", .format, "invalid model dimensions", { $0.set("qwen2.embedding_length", u64(1 << 62)) }),
            ("feed-forward 2^40", .format, "invalid model dimensions", { $0.set("qwen2.feed_forward_length", u64(1 << 40)) }),
            ("2^30 heads", .format, "invalid model dimensions", { $0.set("qwen2.attention.head_count", u64(1 << 30)) }),
            ("a token list of 2^20 + 1 tokens", .format, "tokens", {
                $0.set("tokenizer.ggml.tokens", .array(.string, [GGUFValue](repeating: .string("a"), count: 1 << 20 + 1))) }),
        ]
        for (what, status, words, edit) in cases {
            let path = try variant("model-" + what.filter { $0.isLetter || $0.isNumber }, edit)
            expectRefusal(status, words, what) { _ = try Model.load(path: path) }
            unlink(path)
        }
        // a training length of 2^62 positions: the default context stays at 4096, and a context asking for more
        // positions than a KV cache may have is refused before anything is allocated
        let long = try variant("long", { $0.set("qwen2.context_length", u64(1 << 62)) })
        var options = ModelOptions()
        options.threads = 1
        let model = try Model.load(path: long, options: options)
        var c = ContextOptions()
        c.threads = 1
        let ctx = try Context(model: model, options: c)
        #expect(ctx.capacity == 4096)
        c.contextSize = 1 << 30
        expectRefusal(.invalidArgument, "n_ctx", "n_ctx 2^30") { _ = try Context(model: model, options: c) }
    }

    // MARK: safetensors

    func safetensors(_ name: String, length: UInt64, header: String, data: Int = 0) throws -> String {
        var bytes: [UInt8] = []
        withUnsafeBytes(of: length.littleEndian) { bytes += $0 }
        bytes += Array(header.utf8)
        bytes += [UInt8](repeating: 0, count: data)
        return try temporaryFile(name + ".safetensors", bytes)
    }

    @Test func safetensorsHeaders() throws {
        let cases: [(String, UInt64?, String, Int, QwenStatus, String)] = [
            ("header length 2^60", 1 << 60, "{}", 0, .format, "exceeds the file"),
            ("header length UInt64.max", UInt64.max, "{}", 0, .format, "exceeds the file"),
            ("header length over the 100 MB cap", UInt64(SafetensorsFile.maxHeaderBytes + 1), "{}", 0, .format, "exceeds"),
            ("data past the end", nil, #"{"a":{"dtype":"F32","shape":[16],"data_offsets":[0,64]}}"#, 8, .format, "out of bounds"),
            ("begin after end", nil, #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}"#, 8, .format, "out of bounds"),
            ("offsets past 2^53", nil, #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[1e300,1e300]}}"#, 8, .format, "malformed"),
            ("negative offset", nil, #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}"#, 8, .format, "out of bounds"),
            ("2^40 x 2^40 elements", nil, #"{"a":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,4]}}"#, 8, .format, "invalid shape"),
            ("2^62 elements of F32", nil, #"{"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,4]}}"#, 8, .format, "invalid shape"),
            ("negative dimension", nil, #"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, 8, .format, "invalid shape"),
            ("nine dimensions", nil, #"{"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}}"#, 8, .format, "invalid shape"),
            ("size that does not match the shape", nil, #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, 8, .format, "wrong size"),
            ("not an object", nil, "[1,2,3]", 0, .format, "not an object"),
            ("unknown dtype", nil, #"{"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}"#, 8, .unsupported, "dtype"),
            ("JSON nested 10^6 deep", nil, String(repeating: "[", count: 1_000_000), 0, .format, "nesting deeper"),
        ]
        for (i, (what, length, header, data, status, words)) in cases.enumerated() {
            let path = try safetensors("st\(i)", length: length ?? UInt64(header.utf8.count), header: header, data: data)
            expectRefusal(status, words, what) { _ = try SafetensorsFile(path: path) }
            unlink(path)
        }
    }

    // MARK: JSON

    @Test func jsonNestingAndNumbers() throws {
        for (open, what) in [("[", "arrays"), ("{\"a\":", "objects"), ("[{\"a\":", "mixed")] {
            let text = String(repeating: open, count: 1_000_000)
            expectRefusal(.format, "nesting deeper than 256", "\(what) nested 10^6 deep") { _ = try JSON.parse(text) }
        }
        // exactly at the limit: 256 levels parse, 257 do not
        #expect(throws: Never.self) { try JSON.parse(String(repeating: "[", count: 256) + String(repeating: "]", count: 256)) }
        expectRefusal(.format, "nesting", "257 levels") {
            _ = try JSON.parse(String(repeating: "[", count: 257) + String(repeating: "]", count: 257))
        }
        // giant numbers are numbers (infinite or rounded), never traps; as config values they are refused
        let digits = String(repeating: "9", count: 1_000_000)
        for text in [digits, "-" + digits, "1e999999999999999999", "-1e-99999999999", "0." + digits, digits + "e" + digits] {
            #expect(throws: Never.self) { _ = try JSON.parse(text) }
        }
        for value in [digits, "1e300", "4294967296", "-1", "0.5", "9007199254740993"] {
            let config = #"{"model_type":"qwen2","hidden_size":\#(value),"num_hidden_layers":1,"num_attention_heads":1,"intermediate_size":8}"#
            expectRefusal(.format, "", "hidden_size \(value.prefix(20))") { _ = try ModelConfig(huggingFace: JSON.parse(config)) }
        }
        // a million-element array of numbers parses (bounded by the text), and a JSON file over the cap is refused
        #expect(throws: Never.self) { _ = try JSON.parse("[" + Array(repeating: "0", count: 1_000_000).joined(separator: ",") + "]") }
        let big = TestSupport.temporaryPath("big.json")
        let f = fopen(big, "wb")!
        fputs("[", f)
        let chunk = [UInt8](repeating: 0x20, count: 1 << 20)
        for _ in 0 ... (JSON.maxFileBytes >> 20) { _ = chunk.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) } }
        fputs("]", f)
        fclose(f)
        expectRefusal(.format, "larger than", "a JSON file over the cap") { _ = try JSON.parseFile(big) }
        unlink(big)
    }

    // MARK: Tokenizers

    @Test func tokenizerClaims() throws {
        // Qwen2's pre-tokenizer, so that the ids are what is refused
        let qwen2 = try JSON.parseFile(TestSupport.fixture("tiny/tokenizer/tokenizer.json"))["pre_tokenizer"]!.serialized
        for (what, json) in [
            ("a vocabulary id of 2^40", #"{"model":{"type":"BPE","vocab":{"a":1099511627776},"merges":[]},"pre_tokenizer":"# + qwen2 + "}"),
            ("an added token id of 2^31",
             #"{"model":{"type":"BPE","vocab":{"a":0},"merges":[]},"added_tokens":[{"id":2147483648,"content":"x"}],"pre_tokenizer":"# + qwen2 + "}"),
            ("ids far beyond the token count", #"{"model":{"type":"BPE","vocab":{"a":0,"b":1000000},"merges":[]},"pre_tokenizer":"# + qwen2 + "}"),
        ] {
            expectRefusal(.format, "", what) { _ = try Tokenizer(huggingFace: JSON.parse(json)) }
        }
        for (what, file) in [("a rank of 10^12", "YQ== 1000000000000\n"), ("a rank of 2^20", "YQ== 1048576\n"),
                             ("ranks with a gap", "YQ== 0\nYg== 5\n"), ("a line without a rank", "YQ==\n")] {
            var bytes = Array(file.utf8)
            expectRefusal(.format, "", what) { _ = try bytes.withUnsafeMutableBytes { try Tokenizer(tiktoken: UnsafeRawBufferPointer($0)) } }
        }
    }

    // MARK: Context states

    @Test func stateClaims() throws {
        // a context of its own (the replay of the state corpus uses the harness's context at the same time)
        let ctx = try Context(model: TextHarnesses.stateContext().model, options: TextHarnesses.stateOptions)
        try ctx.eval([1, 2, 3])
        let state = try ctx.saveState()
        ctx.reset()
        let shapeFields = 7
        let countOffset = 8 + 8 * shapeFields
        func patched(_ offset: Int, _ value: UInt64, size: Int = 8) -> [UInt8] {
            var s = state
            withUnsafeBytes(of: value.littleEndian) { for k in 0 ..< size { s[offset + k] = $0[k] } }
            return s
        }
        expectRefusal(.contextFull, "holds", "a state of 2^62 tokens") { try patched(countOffset, 1 << 62).withUnsafeBytes { try ctx.loadState($0) } }
        expectRefusal(.contextFull, "holds", "a negative token count") { try patched(countOffset, UInt64.max).withUnsafeBytes { try ctx.loadState($0) } }
        // rope positions near Int32.max would overflow the positions of the next tokens
        let ropeOffset = countOffset + 8 + 1 + 8 + 3 * 4 + 3 * 8
        for position: UInt64 in [UInt64(Int32.max), UInt64(UInt32(bitPattern: Int32.min))] {
            expectRefusal(.format, "position", "a rope position of \(Int32(truncatingIfNeeded: position))") {
                try patched(ropeOffset + 2 * 4, position, size: 4).withUnsafeBytes { try ctx.loadState($0) }
            }
        }
        #expect(ctx.tokens.isEmpty, "a refused state leaves the context as it was")
        try state.withUnsafeBytes { try ctx.loadState($0) }
        #expect(ctx.tokens == [1, 2, 3])
    }

    // MARK: Lifetimes

    /// Models, contexts and their thread pools are released when the host lets go of them: no cycle keeps them
    /// (and their worker threads) alive.
    @Test func modelsAndContextsAreReleased() throws {
        weak var weakModel: Model?
        weak var weakContext: Context?
        try {
            var m = ModelOptions()
            m.threads = 4  // a load-time pool
            let model = try Model.load(path: FuzzPaths.fuzzFixture("mini-qwen2-f32.gguf"), options: m)
            var o = TextHarnesses.stateOptions
            o.threads = 4  // a context pool
            let ctx = try Context(model: model, options: o)
            try ctx.eval([1, 2, 3])
            weakModel = model
            weakContext = ctx
        }()
        #expect(weakContext == nil, "a context outlives its last reference")
        #expect(weakModel == nil, "a model outlives its last reference")
    }
}
