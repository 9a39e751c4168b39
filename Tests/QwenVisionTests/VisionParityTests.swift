import QwenFormats
import QwenMedia
import QwenModels
import QwenRuntime
import QwenTensors
import QwenTestSupport
import Testing

/// A reference case from Tests/Fixtures/vision/refs/MODEL.json (transformers 5.23, float32, eager).
struct VisionReference {
    let meta: JSON
    let name: String

    init(_ name: String) throws {
        self.name = name
        meta = try TestSupport.readJSON(TestSupport.fixture("vision/refs/\(name).json"))
    }

    func embedding(_ image: String) throws -> (values: [Float], grid: [Int], shape: [Int]) {
        let e = meta["embeddings"]![image]!
        return (try TestSupport.readFloats(TestSupport.fixture("vision/refs/" + e["file"]!.string!)),
                e["grid_thw"]!.array!.map { $0.int! }, e["shape"]!.array!.map { $0.int! })
    }

    func promptCase(_ c: String) -> JSON { meta["cases"]![c]! }
}

func visionFixture(_ relative: String) -> String { TestSupport.fixture("vision/" + relative) }

func loadImage(_ name: String) throws -> RGBImage { try RGBImage.load(path: visionFixture("images/" + name)) }

func visionContext(_ model: Model, threads: Int = 2, size: Int = 1024, batch: Int = 512) throws -> Context {
    var o = ContextOptions()
    o.kvType = .f32
    o.threads = threads
    o.contextSize = size
    o.batchSize = batch
    return try Context(model: model, options: o)
}

/// The tiny models' preprocessor bounds (their preprocessor_config.json; GGUF projectors carry none).
let modelMinPixels = 3136, modelMaxPixels = 401_408

@Suite(.serialized) struct VisionParityTests {
    static let images = ["rgb_333x215.png", "rgba_250x190.png", "photo_640x427.jpg", "gray_28x28.png"]

    /// The vision tower (patch embedding, 2D RoPE, attention over the image or Qwen2.5-VL's windows, merger) gives
    /// the reference's rows, Hugging Face folders in both config dialects (BF16 weights).
    @Test(arguments: ["qwen2vl", "qwen25vl"])
    func towerMatchesTransformers(_ name: String) throws {
        let ref = try VisionReference(name)
        let model = try Model.load(path: visionFixture("\(name)-hf"))
        let vision = try #require(model.vision)
        #expect(vision.settings.minPixels == modelMinPixels && vision.settings.maxPixels == modelMaxPixels)
        let ctx = try visionContext(model)
        for image in Self.images {
            let (values, grid, shape) = try ref.embedding(image)
            let got = try ctx.imageEmbedding(try loadImage(image))
            #expect([got.grid!.t, got.grid!.h * 2, got.grid!.w * 2] == grid)
            #expect([got.rows, got.values.count / got.rows] == shape)
            let worst = maxAbs(got.values, values)
            print("vision \(name) \(image): \(got.rows) rows, max |Δ| \(worst)")
            #expect(worst <= 1e-3, "\(name) \(image): max |Δ| \(worst)")
        }
    }

    /// Token ids, M-RoPE positions (get_rope_index), logits of the last prompt positions and the greedy continuation
    /// for prompts with one and with two images.
    @Test(arguments: ["qwen2vl", "qwen25vl"])
    func promptsWithImagesMatchTransformers(_ name: String) throws {
        let ref = try VisionReference(name)
        let model = try Model.load(path: visionFixture("\(name)-hf"))
        try checkPrompts(model, ref, label: "\(name)-hf")
    }

    /// llama.cpp's converted pair (text GGUF + mmproj, F32) loads and gives the Hugging Face folder's embeddings and
    /// the reference logits.
    @Test func llamaCppPairMatchesTheFolder() throws {
        let folder = try Model.load(path: visionFixture("qwen2vl-hf"))
        let pair = try Model.load(path: visionFixture("qwen2vl-f32.gguf"))
        #expect(pair.vision == nil)
        try pair.loadProjector(path: visionFixture("mmproj-qwen2vl-f32.gguf"))
        let vision = try #require(pair.vision)
        #expect(vision.config == folder.vision!.config)
        #expect(vision.settings.minPixels == 3136 && vision.settings.maxPixels == 1_003_520)  // no bounds in the mmproj
        let a = try visionContext(folder), b = try visionContext(pair)
        for image in Self.images {
            let img = try loadImage(image)
            let x = try a.imageEmbedding(img), y = try b.imageEmbedding(img, minPixels: modelMinPixels, maxPixels: modelMaxPixels)
            let worst = maxAbs(x.values, y.values)
            print("vision qwen2vl GGUF pair vs folder \(image): max |Δ| \(worst)")
            #expect(worst <= 1e-5)
        }
        try checkPrompts(pair, try VisionReference("qwen2vl"), label: "qwen2vl GGUF pair", bounds: (modelMinPixels, modelMaxPixels))
    }

    /// Qwen2.5-VL's mmproj (window attention from clip.vision.n_wa_pattern) gives the folder's tower.
    @Test func qwen25ProjectorMatchesTheFolder() throws {
        let model = try Model.load(path: visionFixture("qwen25vl-hf"))
        let folderRows = try visionContext(model).imageEmbedding(try loadImage("rgba_250x190.png")).values
        try model.loadProjector(path: visionFixture("mmproj-qwen25vl-f32.gguf"))
        #expect(model.vision!.config?.fullAttentionBlocks == [1, 3])
        let rows = try visionContext(model).imageEmbedding(try loadImage("rgba_250x190.png"), minPixels: modelMinPixels,
                                                           maxPixels: modelMaxPixels).values
        #expect(maxAbs(rows, folderRows) <= 1e-5)
    }

    /// The same tower in llama.cpp (libmtmd) on an image that needs no resize: llama.cpp's float arithmetic only.
    @Test(arguments: ["qwen2vl", "qwen25vl"])
    func towerMatchesLlamaCppOnAlignedImage(_ name: String) throws {
        let meta = try TestSupport.readJSON(visionFixture("refs/llamacpp.json"))[name]!
        let llama = try TestSupport.readFloats(visionFixture("refs/" + meta["file"]!.string!))
        let hf = try TestSupport.readFloats(visionFixture("refs/" + meta["hf_file"]!.string!))
        let folder = try Model.load(path: visionFixture("\(name)-hf"))
        try folder.loadProjector(path: visionFixture("mmproj-\(name)-f32.gguf"))
        let got = try visionContext(folder).imageEmbedding(try loadImage("aligned_336x224.png"), minPixels: modelMinPixels,
                                                           maxPixels: modelMaxPixels).values
        let vsLlama = maxAbs(got, llama), vsHF = maxAbs(got, hf)
        print("vision \(name) aligned 336x224: max |Δ| vs llama.cpp \(vsLlama), vs transformers \(vsHF) (llama.cpp vs transformers \(meta["max_abs_vs_hf"]!.double!))")
        #expect(vsHF <= 1e-3)
        #expect(vsLlama <= 5e-3)
    }

    /// Quantized pair (Q8_0 text + Q8_0 projector): close to the reference, same greedy argmax at the last position.
    @Test func quantizedPairStaysClose() throws {
        let model = try Model.load(path: visionFixture("qwen2vl-q8_0.gguf"))
        try model.loadProjector(path: visionFixture("mmproj-qwen2vl-q8_0.gguf"))
        let ref = try VisionReference("qwen2vl")
        let (values, _, _) = try ref.embedding("rgb_333x215.png")
        let got = try visionContext(model).imageEmbedding(try loadImage("rgb_333x215.png"), minPixels: modelMinPixels,
                                                          maxPixels: modelMaxPixels).values
        var dot = 0.0, aa = 0.0, bb = 0.0
        for (x, y) in zip(got, values) { dot += Double(x * y); aa += Double(x * x); bb += Double(y * y) }
        let cos = dot / (aa * bb).squareRoot()
        print("vision qwen2vl Q8_0 projector: cosine to the F32 reference \(cos)")
        #expect(cos > 0.999)
    }

    func checkPrompts(_ model: Model, _ ref: VisionReference, label: String, bounds: (Int, Int) = (0, 0)) throws {
        let vocab = model.languageModel.vocabularySize
        for c in ["one", "two"] {
            let pc = ref.promptCase(c)
            let prompt = pc["prompt"]!.string!
            let media = try pc["images"]!.array!.map { ImageInput(try loadImage($0.string!), minPixels: bounds.0, maxPixels: bounds.1) }
            let refIDs = pc["input_ids"]!.array!.map { Int32($0.int!) }
            let ctx = try visionContext(model)
            // tokens and M-RoPE positions as laid out for the reference
            let pieces = try ctx.promptPieces(tokens: model.tokenizer.encode(prompt, parseSpecial: true), media: media)
            let plan = PromptPlan(pieces: pieces, after: 0, mrope: true)
            #expect(plan.tokens == refIDs, "\(label) \(c): token ids")
            let positions = pc["position_ids"]!.array!.map { $0.array!.map { Int32($0.int!) } }
            #expect(plan.positions == positions, "\(label) \(c): M-RoPE positions")
            #expect(Int(plan.ropeNext.last!) - refIDs.count == pc["rope_delta"]!.int!)
            // logits of the last rows
            let rows = pc["logits_rows"]!.int!
            let refLogits = try TestSupport.readFloats(visionFixture("refs/" + pc["logits_file"]!.string!))
            var all = [Float](repeating: .nan, count: refIDs.count * vocab)
            try all.withUnsafeMutableBufferPointer { try ctx.eval(pieces: pieces, logits: $0.baseAddress!, allLogits: true) }
            let got = Array(all[(refIDs.count - rows) * vocab ..< refIDs.count * vocab])
            let worst = maxAbs(got, refLogits)
            print("vision \(label) \(c): \(refIDs.count) tokens, max |Δlogit| over the last \(rows) positions \(worst)")
            #expect(worst <= 1e-3, "\(label) \(c): max |Δlogit| \(worst)")
            // greedy continuation through the KV cache (positions after the images continue from rope_delta)
            let greedy = try greedyTokens(after: all[(refIDs.count - 1) * vocab ..< refIDs.count * vocab], count: 16) {
                try ctx.eval([$0], logits: $1)
            }
            #expect(greedy == pc["greedy"]!.array!.map { Int32($0.int!) }, "\(label) \(c): greedy")
            // the same prompt in two calls (split after the first image): the second continues the M-RoPE positions
            if c == "two" {
                let parts = prompt.split(separator: "Picture 2: ", maxSplits: 1, omittingEmptySubsequences: false)
                let split = try visionContext(model)
                try split.evalPrompt(parts[0] + "Picture 2: ", media: [media[0]])
                var tail = [Float](repeating: 0, count: vocab)
                try tail.withUnsafeMutableBufferPointer { try split.evalPrompt(String(parts[1]), media: [media[1]], logits: $0.baseAddress!) }
                #expect(maxAbs(tail, Array(got[(rows - 1) * vocab ..< rows * vocab])) <= 1e-4)
                #expect(split.tokens == refIDs)
            }
        }
    }
}
