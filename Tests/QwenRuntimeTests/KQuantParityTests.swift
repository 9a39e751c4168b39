import QwenFormats
import QwenModels
import QwenRuntime
import QwenTensors
import QwenTestSupport
import Testing

/// A reference case from Tests/Fixtures/kquant (scripts/fixtures/make_quant_fixtures.py `refs`): llama.cpp's logits
/// at every position of a 16-token prompt and its 32-token greedy continuation, for one GGUF quantized by llama.cpp.
struct KQuantReference {
    let name: String
    let model: String
    let inputIDs: [Int32]
    let logits: [Float]
    let vocab: Int
    let argmax: [Int]
    let greedy: [Int32]
    /// Weight type name -> tensor names, as gguf-py lists the file.
    let tensorTypes: [String: [String]]

    init(_ name: String) throws {
        self.name = name
        let meta = try TestSupport.readJSON(TestSupport.fixture("kquant/\(name).json"))
        model = meta["model"]!.string!
        inputIDs = meta["input_ids"]!.array!.map { Int32($0.int!) }
        greedy = meta["greedy"]!.array!.map { Int32($0.int!) }
        argmax = meta["argmax"]!.array!.map { $0.int! }
        let shape = meta["logits_shape"]!.array!.map { $0.int! }
        vocab = shape[1]
        logits = try TestSupport.readFloats(TestSupport.fixture("kquant/" + meta["logits_file"]!.string!))
        precondition(logits.count == shape[0] * shape[1] && shape[0] == inputIDs.count)
        var types: [String: [String]] = [:]
        for (k, v) in meta["tensor_types"]!.object! { types[k] = v.array!.map { $0.string! } }
        tensorTypes = types
    }

    func row(_ t: Int) -> ArraySlice<Float> { logits[t * vocab ..< (t + 1) * vocab] }
}

/// The quantized weight types beyond Q8_0/Q4_0 end to end: each file of Tests/Fixtures/kquant (together they hold
/// Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS) runs through the loader, embedding lookup
/// (dequantization), every linear layer and the tied output head, and must agree with llama.cpp on the same file.
@Suite(.serialized) struct KQuantParityTests {
    static let cases = ["llamacpp_kquant_q4_k_m", "llamacpp_kquant_q3_k_m", "llamacpp_kquant_mix"]

    @Test func theFilesHoldEveryQuantizedWeightType() throws {
        var seen = Set<String>()
        for c in Self.cases {
            let ref = try KQuantReference(c)
            // the file really has the types the reference lists (our GGUF reader vs gguf-py)
            let file = try GGUFFile(path: TestSupport.fixture("kquant/" + ref.model))
            var types: [String: [String]] = [:]
            for t in file.tensors { types[t.type.name, default: []].append(t.name) }
            #expect(types.mapValues { $0.sorted() } == ref.tensorTypes, "\(ref.model)")
            seen.formUnion(types.keys)
        }
        for t in ["Q4_1", "Q5_0", "Q5_1", "IQ4_NL", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_XS"] {
            #expect(seen.contains(t), "no kquant fixture holds a \(t) tensor")
        }
    }

    @Test(arguments: cases)
    func logitsMatchLlamaCppAtEveryPosition(_ name: String) throws {
        let ref = try KQuantReference(name)
        let model = try Model.load(path: TestSupport.fixture("kquant/" + ref.model))
        #expect(model.languageModel.vocabularySize == ref.vocab)
        let summary = ref.tensorTypes.keys.filter { $0 != "F32" }.sorted().joined(separator: " ")
        // the prompt in one batch on 2 threads, and in uneven batches of 5 on 1 thread
        for (batch, threads) in [(512, 2), (5, 1)] {
            let ctx = try context(model, batch: batch, threads: threads)
            let got = try allLogits(ctx, ref.inputIDs)
            var lowest = 1.0
            var worst: Float = 0
            for t in 0 ..< ref.inputIDs.count {
                let g = got[t * ref.vocab ..< (t + 1) * ref.vocab], r = ref.row(t)
                lowest = min(lowest, cosine(g, r))
                for (x, y) in zip(g, r) { worst = max(worst, abs(x - y)) }
                #expect(argmax(r) == ref.argmax[t])
                #expect(argmax(g) == ref.argmax[t], "\(ref.model): argmax differs at position \(t)")
            }
            print("kquant parity \(ref.model) [\(summary)] batch \(batch) threads \(threads): lowest per-position cosine \(lowest), max |Δlogit| \(worst)")
            #expect(lowest >= 0.9999, "\(ref.model): lowest per-position cosine \(lowest) (batch \(batch))")
        }
    }

    @Test(arguments: cases)
    func greedyContinuationMatchesLlamaCpp(_ name: String) throws {
        let ref = try KQuantReference(name)
        let ctx = try context(try Model.load(path: TestSupport.fixture("kquant/" + ref.model)))
        let got = try greedy(ctx, prompt: ref.inputIDs, count: ref.greedy.count)
        #expect(got == ref.greedy, "\(ref.model): greedy \(got) vs llama.cpp \(ref.greedy)")
    }
}
