import QwenFormats
import QwenModels
import QwenRuntime
import QwenTensors
import QwenTestSupport
import Testing

/// A reference case from Tests/Fixtures/tiny/refs: prompt ids, logits at every position, greedy continuation.
struct Reference {
    let name: String
    let inputIDs: [Int32]
    let logits: [Float]
    let vocab: Int
    let greedy: [Int32]

    init(_ name: String) throws {
        self.name = name
        let meta = try TestSupport.readJSON(TestSupport.fixture("tiny/refs/\(name).json"))
        inputIDs = meta["input_ids"]!.array!.map { Int32($0.int!) }
        greedy = meta["greedy"]!.array!.map { Int32($0.int!) }
        let shape = meta["logits_shape"]!.array!.map { $0.int! }
        vocab = shape[1]
        logits = try TestSupport.readFloats(TestSupport.fixture("tiny/refs/" + meta["logits_file"]!.string!))
        precondition(logits.count == shape[0] * shape[1])
    }

    func row(_ t: Int) -> ArraySlice<Float> { logits[t * vocab ..< (t + 1) * vocab] }
}

func argmax(_ x: ArraySlice<Float>) -> Int { x.indices.max(by: { x[$0] < x[$1] })! - x.startIndex }

func cosine(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Double {
    var ab = 0.0, aa = 0.0, bb = 0.0
    for (x, y) in zip(a, b) {
        ab += Double(x) * Double(y)
        aa += Double(x) * Double(x)
        bb += Double(y) * Double(y)
    }
    return ab / (aa.squareRoot() * bb.squareRoot())
}

func loadFixtureModel(_ relative: String) throws -> Model {
    try Model.load(path: TestSupport.fixture("tiny/" + relative))
}

func context(_ model: Model, kv: KVType = .f32, batch: Int = 512, threads: Int = 2, size: Int = 256) throws -> Context {
    var o = ContextOptions()
    o.kvType = kv
    o.batchSize = batch
    o.threads = threads
    o.contextSize = size
    return try Context(model: model, options: o)
}

/// All-position logits of `ids` evaluated in one call.
func allLogits(_ ctx: Context, _ ids: [Int32]) throws -> [Float] {
    var out = [Float](repeating: .nan, count: ids.count * ctx.vocabularySize)
    try out.withUnsafeMutableBufferPointer { try ctx.eval(ids, logits: $0.baseAddress!, allLogits: true) }
    return out
}

/// Greedy continuation by argmax through the KV cache (EOS not special, like the references).
func greedy(_ ctx: Context, prompt: [Int32], count: Int) throws -> [Int32] {
    ctx.reset()
    var last = [Float](repeating: 0, count: ctx.vocabularySize)
    try last.withUnsafeMutableBufferPointer { try ctx.eval(prompt, logits: $0.baseAddress!) }
    var out: [Int32] = []
    for _ in 0 ..< count {
        let next = Int32(argmax(last[...]))
        out.append(next)
        try last.withUnsafeMutableBufferPointer { try ctx.eval([next], logits: $0.baseAddress!) }
    }
    return out
}

struct ParityCase: CustomTestStringConvertible, Sendable {
    let model: String
    let reference: String
    /// Max |Δlogit| allowed (transformers references) or nil for cosine checks (llama.cpp references).
    let maxAbs: Float?
    var testDescription: String { "\(model) vs \(reference)" }
}

@Suite(.serialized) struct ParityTests {
    static let transformersCases: [ParityCase] = [
        ParityCase(model: "qwen2-hf", reference: "hf_qwen2_f32", maxAbs: 1e-3),
        ParityCase(model: "qwen2-hf-v5", reference: "hf_qwen2_f32", maxAbs: 1e-3),
        ParityCase(model: "qwen2-f32.gguf", reference: "hf_qwen2_f32", maxAbs: 1e-3),
        ParityCase(model: "qwen2-f16.gguf", reference: "hf_qwen2_f16round", maxAbs: 1e-3),
        ParityCase(model: "qwen2-bf16.gguf", reference: "hf_qwen2_bf16round", maxAbs: 1e-3),
        ParityCase(model: "qwen25-hf", reference: "hf_qwen25_f32", maxAbs: 1e-3),
        ParityCase(model: "qwen25-hf-v5", reference: "hf_qwen25_f32", maxAbs: 1e-3),
    ]

    static let llamaCppCases: [ParityCase] = [
        ParityCase(model: "qwen2-q8_0.gguf", reference: "llamacpp_qwen2_q8_0", maxAbs: nil),
        ParityCase(model: "qwen2-q4_0.gguf", reference: "llamacpp_qwen2_q4_0", maxAbs: nil),
        ParityCase(model: "qwen25-q8_0.gguf", reference: "llamacpp_qwen25_q8_0", maxAbs: nil),
        ParityCase(model: "qwen25-q4_0.gguf", reference: "llamacpp_qwen25_q4_0", maxAbs: nil),
    ]

    @Test(arguments: transformersCases)
    func logitsMatchTransformersAtEveryPosition(_ c: ParityCase) throws {
        let ref = try Reference(c.reference)
        let model = try loadFixtureModel(c.model)
        #expect(model.languageModel.vocabularySize == ref.vocab)
        // whole prompt in one batch, and in uneven batches of 5 (batched prefill must not change results)
        for batch in [512, 5] {
            let ctx = try context(model, batch: batch)
            let got = try allLogits(ctx, ref.inputIDs)
            var worst: Float = 0
            for t in 0 ..< ref.inputIDs.count {
                let g = got[t * ref.vocab ..< (t + 1) * ref.vocab], r = ref.row(t)
                for (x, y) in zip(g, r) { worst = max(worst, abs(x - y)) }
                #expect(argmax(g) == argmax(r), "argmax differs at position \(t)")
            }
            print("parity \(c.testDescription) batch \(batch): max |Δlogit| \(worst)")
            #expect(worst <= c.maxAbs!, "max |Δlogit| \(worst) (batch \(batch))")
        }
    }

    @Test(arguments: transformersCases.filter { $0.reference.hasSuffix("f32") })
    func greedyContinuationMatchesTransformers(_ c: ParityCase) throws {
        let ref = try Reference(c.reference)
        let ctx = try context(try loadFixtureModel(c.model))
        #expect(try greedy(ctx, prompt: ref.inputIDs, count: 32) == ref.greedy)
    }

    @Test(arguments: llamaCppCases)
    func quantizedLogitsMatchLlamaCpp(_ c: ParityCase) throws {
        let ref = try Reference(c.reference)
        let ctx = try context(try loadFixtureModel(c.model))
        let got = try allLogits(ctx, ref.inputIDs)
        var lowest = 1.0
        for t in 0 ..< ref.inputIDs.count {
            let g = got[t * ref.vocab ..< (t + 1) * ref.vocab], r = ref.row(t)
            lowest = min(lowest, cosine(g, r))
            #expect(argmax(g) == argmax(r), "argmax differs at position \(t)")
        }
        print("parity \(c.testDescription): lowest per-position cosine \(lowest)")
        #expect(lowest >= 0.9999, "lowest per-position cosine \(lowest)")
        #expect(try greedy(ctx, prompt: ref.inputIDs, count: 32) == ref.greedy)
    }

    @Test func f16CacheStaysCloseToF32() throws {
        let ref = try Reference("hf_qwen2_f32")
        let ctx = try context(try loadFixtureModel("qwen2-f32.gguf"), kv: .f16)
        let got = try allLogits(ctx, ref.inputIDs)
        var worst: Float = 0
        for (x, y) in zip(got, ref.logits) { worst = max(worst, abs(x - y)) }
        print("parity qwen2-f32.gguf with F16 KV cache: max |Δlogit| \(worst)")
        #expect(worst < 1e-2, "max |Δlogit| with an F16 KV cache: \(worst)")
    }

    @Test func q8CacheStaysCloseToF32() throws {
        // the K-quant fixture model has 64-dimensional heads (the tiny Qwen2 ones are too small for Q8_0 blocks)
        let model = try loadFixtureModel("../kquant/kquant-q4_k_m.gguf")
        let ids = Array(try Reference("hf_qwen2_f32").inputIDs.prefix(16))
        let exact = try allLogits(try context(model, kv: .f32), ids)
        let q8 = try allLogits(try context(model, kv: .q8_0), ids)
        var lowest = 1.0
        for t in 0 ..< ids.count {
            let v = model.languageModel.vocabularySize
            lowest = min(lowest, cosine(exact[t * v ..< (t + 1) * v], q8[t * v ..< (t + 1) * v]))
        }
        print("parity kquant-q4_k_m with Q8_0 KV cache vs F32 cache: lowest cosine \(lowest)")
        #expect(lowest > 0.999)
        let tiny = try loadFixtureModel("qwen2-q8_0.gguf")
        #expect((#expect(throws: QwenError.self) { try context(tiny, kv: .q8_0) })?.status == .unsupported)
    }

    @Test func oneThreadAndManyThreadsAgree() throws {
        let ref = try Reference("hf_qwen25_f32")
        let model = try loadFixtureModel("qwen25-hf")
        let a = try allLogits(try context(model, threads: 1), ref.inputIDs)
        let b = try allLogits(try context(model, threads: 4), ref.inputIDs)
        #expect(a == b)
    }
}
