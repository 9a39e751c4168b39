import QwenFormats
import QwenModels
import QwenTokenizer
import QwenTensors
import QwenTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The GGUF quantizer against llama.cpp's: the fixtures' quantized files were written by `llama_model_quantize`
/// from the F32 files next to them, so quantizing those F32 files must give the same files, byte for byte.
@Suite struct QuantizeTests {
    func quantized(_ input: String, _ mix: String, pure: Bool = false) throws -> (path: String, summary: QuantizeSummary) {
        let path = TestSupport.temporaryPath("quantized-\(mix)-\(UInt32.random(in: 0 ... .max)).gguf")
        let mix = try #require(QuantizationMix(name: mix))
        let summary = try GGUFQuantizer.quantize(input: TestSupport.fixture(input), output: path, mix: mix, pure: pure, threads: 2)
        return (path, summary)
    }

    func fileBytes(_ path: String) throws -> [UInt8] {
        let f = try FileBytes(path: path, map: true)
        return Array(UnsafeRawBufferPointer(start: f.base, count: f.count))
    }

    @Test(arguments: [("tiny/qwen2-f32.gguf", "Q8_0", "tiny/qwen2-q8_0.gguf"), ("tiny/qwen2-f32.gguf", "Q4_0", "tiny/qwen2-q4_0.gguf"),
                      ("family/qwen3moe-f32.gguf", "Q8_0", "family/qwen3moe-q8_0.gguf")])
    func filesEqualLlamaQuantize(input: String, mix: String, reference: String) throws {
        let (path, _) = try quantized(input, mix)
        defer { unlink(path) }
        let ours = try fileBytes(path), theirs = try fileBytes(TestSupport.fixture(reference))
        #expect(ours.count == theirs.count)
        let firstDifference = zip(ours, theirs).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        #expect(firstDifference == nil, "\(mix) of \(input) differs from \(reference) at byte \(firstDifference ?? -1)")
    }

    /// The kquant fixture model (every row 256 long, so every K-quant applies) dequantized to an F32 GGUF.
    func kquantF32() throws -> String {
        let reference = try GGUFFile(path: TestSupport.fixture("kquant/kquant-q4_k_m.gguf"))
        var writer = GGUFWriter()
        for (k, v) in reference.metadata { writer.set(k, v) }
        writer.set("general.file_type", .uint(0, .uint32))
        for t in reference.tensors {
            var floats = [Float](repeating: 0, count: t.elementCount)
            let columns = t.shape.last!
            let rowBytes = try #require(t.type.byteCount(elements: columns))
            for r in 0 ..< t.elementCount / columns {
                try floats.withUnsafeMutableBufferPointer { try RowKernels.dequantizeRow(t.type, t.data + r * rowBytes, $0.baseAddress! + r * columns, columns) }
            }
            try writer.addTensor(name: t.name, type: .f32, shape: t.shape, bytes: floats.withUnsafeBytes { Array($0) })
        }
        let path = TestSupport.temporaryPath("kquant-f32-\(UInt32.random(in: 0 ... .max)).gguf")
        try writer.write(to: path)
        return path
    }

    /// K-quant mixes pick per-tensor types by layer; the kquant fixture was made by llama-quantize Q4_K_M from an
    /// F32 file of the same model (not committed), so requantizing its dequantized tensors must pick the same types.
    @Test func mixTypesEqualLlamaQuantize() throws {
        let f32 = try kquantF32()
        defer { unlink(f32) }
        let out = TestSupport.temporaryPath("kquant-q4km-\(UInt32.random(in: 0 ... .max)).gguf")
        _ = try GGUFQuantizer.quantize(input: f32, output: out, mix: try #require(QuantizationMix(name: "Q4_K_M")))
        defer { unlink(out) }
        let reference = try GGUFFile(path: TestSupport.fixture("kquant/kquant-q4_k_m.gguf")), ours = try GGUFFile(path: out)
        for t in reference.tensors {
            #expect(ours.tensor(t.name)?.type == t.type, "\(t.name): \(ours.tensor(t.name)?.type.name ?? "missing") vs \(t.type.name)")
        }
        #expect(ours["general.file_type"]?.int == 15)
    }

    /// Every mix loads and stays close to the F32 model it was made from (the tiny model's random weights are
    /// harder to quantize than trained ones, so the bounds are loose; the blocks themselves are checked exactly in
    /// WeightQuantizerTests).
    @Test func everyMixLoadsAndStaysCloseToItsSource() throws {
        let f32 = try kquantF32()
        defer { unlink(f32) }
        let ids = try TestSupport.readJSON(TestSupport.fixture("kquant/llamacpp_kquant_q4_k_m.json"))["input_ids"]!.array!.map { Int32($0.int!) }
        let exact = try allLogits(try context(try Model.load(path: f32)), ids)
        // measured: F16 1-2e-7, BF16 1-1e-5, Q8_0 and Q6_K > 0.999, Q5_* 0.994-0.999, Q4_* 0.980-0.9998 (Q4_K_M is what the
        // source was made from), Q3_K_* 0.929-0.972, Q2_K 0.847
        let bounds: [String: Double] = ["F16": 0.99999, "BF16": 0.9999, "Q8_0": 0.999, "Q6_K": 0.998, "Q5_K_M": 0.995, "Q5_K_S": 0.995,
                                        "Q5_0": 0.99, "Q5_1": 0.99, "Q4_K_M": 0.995, "Q4_K_S": 0.99, "Q4_0": 0.97, "Q4_1": 0.98,
                                        "Q3_K_L": 0.95, "Q3_K_M": 0.95, "Q3_K_S": 0.9, "Q2_K": 0.8]
        #expect(Set(bounds.keys) == Set(QuantizationMix.all.map(\.name)).subtracting(["F32"]))
        for (mix, bound) in bounds.sorted(by: { $0.key < $1.key }) {
            let out = TestSupport.temporaryPath("kquant-\(mix)-\(UInt32.random(in: 0 ... .max)).gguf")
            let summary = try GGUFQuantizer.quantize(input: f32, output: out, mix: try #require(QuantizationMix(name: mix)), threads: 2)
            defer { unlink(out) }
            #expect(summary.tensors > 0 && summary.outputBytes < summary.inputBytes)
            let logits = try allLogits(try context(try Model.load(path: out)), ids)
            let c = cosine(exact[...], logits[...])
            print("quantize \(mix): \(summary.outputBytes) bytes, logits cosine \(c)")
            #expect(c > bound, "\(mix): cosine \(c)")
        }
    }

    /// Hugging Face folders converted as llama.cpp's convert_hf_to_gguf.py converted them for the fixtures (F32,
    /// F16, BF16), and in one step to llama-quantize's Q8_0 / Q4_0 of those conversions: the same tensors (names,
    /// types, shapes, bytes) and the same metadata apart from the model name.
    @Test(arguments: [("tiny/qwen2-hf", "F32", "tiny/qwen2-f32.gguf"), ("tiny/qwen2-hf", "F16", "tiny/qwen2-f16.gguf"),
                      ("tiny/qwen2-hf", "BF16", "tiny/qwen2-bf16.gguf"), ("tiny/qwen2-hf-v5", "F32", "tiny/qwen2-f32.gguf"),
                      ("tiny/qwen2-hf", "Q8_0", "tiny/qwen2-q8_0.gguf"), ("tiny/qwen2-hf", "Q4_0", "tiny/qwen2-q4_0.gguf"),
                      ("family/qwen3-hf", "F32", "family/qwen3-f32.gguf"), ("family/qwen2moe-hf", "F32", "family/qwen2moe-f32.gguf"),
                      ("family/qwen3moe-hf", "F32", "family/qwen3moe-f32.gguf"), ("family/qwen3moe-hf-v5", "F32", "family/qwen3moe-f32.gguf"),
                      ("family/qwen3moe-hf", "Q8_0", "family/qwen3moe-q8_0.gguf"), ("qwen1/qwen1-hf", "F32", "qwen1/qwen1-f32.gguf")])
    func huggingFaceFoldersConvertAsLlamaCpp(folder: String, mix: String, reference: String) throws {
        let (path, _) = try quantized(folder, mix)
        defer { unlink(path) }
        let ours = try GGUFFile(path: path), theirs = try GGUFFile(path: TestSupport.fixture(reference))
        #expect(Set(ours.tensors.map(\.name)) == Set(theirs.tensors.map(\.name)))
        for t in theirs.tensors {
            guard let o = ours.tensor(t.name) else { continue }
            #expect(o.type == t.type && o.shape == t.shape, "\(t.name): \(o.type.name) \(o.shape) vs \(t.type.name) \(t.shape)")
            let same = o.byteCount == t.byteCount && memcmp(o.data, t.data, t.byteCount) == 0
            #expect(same, "\(t.name): data differs")
        }
        var ignored: Set<String> = ["general.name", "general.size_label", "general.quantization_version"]
        if folder.hasSuffix("-v5") {
            // the reference was converted from the v4 folder: the v5 config states head_dim (the converter then writes
            // key/value_length) and transformers 5 writes no sampling defaults into generation_config.json
            let arch = theirs["general.architecture"]?.string ?? ""
            ignored.formUnion(["\(arch).attention.key_length", "\(arch).attention.value_length", "general.sampling.top_k",
                               "general.sampling.top_p", "general.sampling.temp", "general.sampling.penalty_repeat"])
        }
        for (key, value) in theirs.metadata where !ignored.contains(key) {
            #expect(ours[key] == value, "\(key): \(String(describing: ours[key]).prefix(80)) vs \(String(describing: value).prefix(80))")
        }
        let extra = Set(ours.metadata.map(\.key)).subtracting(theirs.metadata.map(\.key)).subtracting(ignored)
        #expect(extra.isEmpty, "keys llama.cpp does not write: \(extra)")
    }

    /// A converted folder gives the model the folder gives and tokenizes alike. The folder's BF16 weights become exact
    /// F32 values; only the kernels differ (BF16 vs F32 rows, other summation order), so logits agree to rounding.
    @Test func convertedFolderEqualsTheFolder() throws {
        let (path, _) = try quantized("tiny/qwen25-hf", "F32")
        defer { unlink(path) }
        let ref = try Reference("hf_qwen25_f32")
        let a = try allLogits(try context(try Model.load(path: path)), ref.inputIDs)
        let b = try allLogits(try context(try Model.load(path: TestSupport.fixture("tiny/qwen25-hf"))), ref.inputIDs)
        let maxDiff = zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
        print("converted qwen25-hf vs folder: max |Δlogit| \(maxDiff)")
        #expect(a.count == b.count && maxDiff < 1e-4)
        let ta = try Model.load(path: path).tokenizer, tb = try Model.load(path: TestSupport.fixture("tiny/qwen25-hf")).tokenizer
        for text in ["Hello, world! <|im_start|>user\n你好 123", "  spaces\tand\nnewlines ", "<think>x</think>"] {
            #expect(ta.encode(text, parseSpecial: true) == tb.encode(text, parseSpecial: true))
        }
    }

    @Test func badRequestsAreErrors() throws {
        #expect(QuantizationMix(name: "Q4_K_M")?.fileType == 15 && QuantizationMix(name: "q8_0") != nil)
        #expect(QuantizationMix(name: "IQ2_XXS") == nil)
        let mix = try #require(QuantizationMix(name: "Q8_0"))
        let missing = #expect(throws: QwenError.self) {
            try GGUFQuantizer.quantize(input: "/nonexistent.gguf", output: TestSupport.temporaryPath("x.gguf"), mix: mix)
        }
        #expect(missing?.status == .io)
        let same = TestSupport.fixture("tiny/qwen2-f32.gguf")
        #expect((#expect(throws: QwenError.self) { try GGUFQuantizer.quantize(input: same, output: same, mix: mix) })?.status == .invalidArgument)
        let unwritable = #expect(throws: QwenError.self) {
            try GGUFQuantizer.quantize(input: same, output: "/nonexistent-dir/out.gguf", mix: mix)
        }
        #expect(unwritable?.status == .io)
    }
}
