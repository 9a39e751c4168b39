import QwenFormats
import QwenMedia
import QwenModels
import QwenRuntime
import QwenTestSupport
import Testing

/// The first-generation Qwen-VL against its original code (Tests/Fixtures/qwen-vl, scripts/fixtures/make_qwen_vl_fixtures.py):
/// preprocessing, the ViT + resampler rows, and prompts with images through the first-generation Qwen LLM.
@Suite(.serialized) struct QwenVLParityTests {
    static func fixture(_ relative: String) -> String { TestSupport.fixture("qwen-vl/" + relative) }
    static func refs(_ name: String) throws -> JSON { try TestSupport.readJSON(fixture("refs/" + name)) }

    /// The reference opens images with Pillow's convert("RGB"): no EXIF orientation, alpha dropped. We composite
    /// alpha on white (as for Qwen2-VL), so only opaque images are compared here.
    static let opaqueImages = ["rgb_333x215.png", "photo_640x427.jpg", "gray_123x77.jpg", "exif6_200x120.jpg"]

    /// Resize to 448 × 448 (Pillow bicubic, aspect not kept) and the normalized pixels, bit for bit.
    @Test func preprocessingMatchesTheReference() throws {
        let ref = try Self.refs("preprocess.json")["images"]!
        let settings = QwenVLVisionConfig().processorSettings
        for name in Self.opaqueImages {
            var options = RGBImage.DecodeOptions()
            options.applyOrientation = false
            let image = try RGBImage.load(path: visionFixture("images/" + name), options: options)
            let r = ref[name]!
            let resized = try ImageProcessor.resized(image, settings: settings)
            #expect(resized.width == 448 && resized.height == 448)
            var hash = FNV1a()
            resized.pixels.withUnsafeBytes { hash.add($0) }
            let hex = String(hash.value, radix: 16)
            #expect(String(repeating: "0", count: 16 - hex.count) + hex == r["resized_fnv1a64"]!.string!, "\(name): resized pixels")
            let processed = try ImageProcessor.process(image, settings: settings)
            #expect(processed.grid == (1, 32, 32) && processed.rowSize == 3 * 14 * 14)
            // samples of the reference's [3, 448, 448] tensor, at our patch-row positions
            let samples = r["samples"]!
            var worst: Float = 0
            for (i, v) in zip(samples["index"]!.array!, samples["value"]!.array!) {
                let flat = i.int!, c = flat / (448 * 448), y = flat / 448 % 448, x = flat % 448
                let got = processed.pixels[((y / 14) * 32 + x / 14) * 588 + c * 196 + (y % 14) * 14 + x % 14]
                worst = max(worst, abs(got - Float(v.double!)))
            }
            #expect(worst <= 1e-6, "\(name): max |Δ| \(worst)")
        }
    }

    /// The ViT (learned positions resized 16 → 32, pre-norm blocks with per-head interleaved QKV) and the resampler
    /// (256 queries, sin-cos positions, ln_post, proj) give the reference rows.
    @Test func towerMatchesTheReference() throws {
        let ref = try Self.refs("encoder.json")["images"]!
        let model = try Model.load(path: Self.fixture("qwenvl-hf"))
        let vision = try #require(model.vision)
        let ctx = try visionContext(model)
        for name in ["rgb_333x215.png", "photo_640x427.jpg"] {
            let expected = try TestSupport.readFloats(Self.fixture("refs/" + ref[name]!["file"]!.string!))
            #expect(try vision.tokenCount(width: 333, height: 215, settings: vision.settings) == 256)
            let got = try ctx.imageEmbedding(try loadImage(name))
            #expect(got.rows == 256 && got.values.count == expected.count)
            let worst = maxAbs(got.values, expected)
            print("qwen-vl tower \(name): max |Δ| \(worst)")
            #expect(worst <= 1e-3, "\(name): max |Δ| \(worst)")
        }
    }

    /// Chat prompts with one and two images (`<img></img>` placeholders) and a text-only prompt: token ids outside
    /// the image rows, logits of the stored rows, 16 greedy tokens through the KV cache.
    @Test(arguments: ["one", "two", "text"])
    func promptsMatchTheReference(_ name: String) throws {
        let ref = try Self.refs("orig_qwenvl_\(name).json")
        let model = try Model.load(path: Self.fixture("qwenvl-hf"))
        let vocab = model.languageModel.vocabularySize
        let images = ref["images"]?.array ?? []
        // the reference writes each image's path between the tags; hosts give images as objects and `<img></img>`
        var text = ref["rendered_text"]!.string!
        for image in images {
            text = text.replacingFirst("<img>" + image["path"]!.string! + "</img>", with: "<img></img>")
        }
        let media = try images.map { ImageInput(try RGBImage.load(path: TestSupport.repoRoot + "/" + $0["path"]!.string!)) }
        let refIDs = ref["input_ids"]!.array!.map { Int32($0.int!) }
        let ctx = try visionContext(model)
        let pieces = try ctx.promptPieces(tokens: model.tokenizer.encode(model.vision!.expandPlaceholders(text), parseSpecial: true),
                                          media: media)
        let plan = PromptPlan(pieces: pieces, after: 0, mrope: false)
        #expect(plan.tokens.count == refIDs.count, "\(name): \(plan.tokens.count) tokens, the reference \(refIDs.count)")
        var imageRows = Set<Int>()
        for image in images {
            let rows = image["rows"]!.array!.map { $0.int! }
            imageRows.formUnion(rows[0] ... rows[1])
        }
        let outside = (0 ..< min(plan.tokens.count, refIDs.count)).filter { !imageRows.contains($0) }
        #expect(outside.map { plan.tokens[$0] } == outside.map { refIDs[$0] }, "\(name): token ids outside the images")

        let refLogits = try TestSupport.readFloats(Self.fixture("refs/" + ref["logits_file"]!.string!))
        let rows = ref["logits_rows"]!.array!.map { $0.int! }
        var all = [Float](repeating: .nan, count: refIDs.count * vocab)
        try all.withUnsafeMutableBufferPointer { try ctx.eval(pieces: pieces, logits: $0.baseAddress!, allLogits: true) }
        var worst: Float = 0
        for (i, row) in rows.enumerated() {
            worst = max(worst, maxAbs(Array(all[row * vocab ..< (row + 1) * vocab]), Array(refLogits[i * vocab ..< (i + 1) * vocab])))
        }
        print("qwen-vl prompt \(name): \(refIDs.count) tokens, max |Δlogit| over \(rows.count) rows \(worst)")
        #expect(worst <= 1e-3, "\(name): max |Δlogit| \(worst)")
        let greedy = try greedyTokens(after: all[(refIDs.count - 1) * vocab ..< refIDs.count * vocab], count: 16) {
            try ctx.eval([$0], logits: $1)
        }
        #expect(greedy == ref["greedy"]!.array!.map { Int32($0.int!) }, "\(name): greedy")
        // the chat API with `<image>` markers numbers the pictures as the reference's from_list_format does
        guard !images.isEmpty else { return }
        var query = ref["query"]!.string!
        for (k, image) in images.enumerated() {
            query = query.replacingFirst("Picture \(k + 1): <img>" + image["path"]!.string! + "</img>", with: "<image>")
        }
        let chat = try visionContext(model)
        try chat.evalChat([ChatMessage(role: "system", content: ref["system"]!.string!), ChatMessage(role: "user", content: query)],
                          media: media, addGenerationPrompt: true)
        #expect(chat.tokens == plan.tokens, "\(name): chat tokens")
    }
}

extension QwenVLParityTests {
    /// qwen-quantize's conversion of the folder: the text GGUF (architecture qwen) and our projector GGUF
    /// (qwenvl_resampler) load as a pair and give the folder's outputs: the same at F32, close at Q8_0.
    @Test(arguments: ["F32", "Q8_0"])
    func convertedPairMatchesTheFolder(_ type: String) throws {
        let folder = Self.fixture("qwenvl-hf")
        let mix = try #require(QuantizationMix(name: type))
        let text = TestSupport.temporaryPath("qwenvl-\(type).gguf"), projector = TestSupport.temporaryPath("mmproj-qwenvl-\(type).gguf")
        _ = try GGUFQuantizer.quantize(input: folder, output: text, mix: mix)
        _ = try ProjectorExport.write(folder: folder, output: projector, mix: mix)
        let pair = try Model.load(path: text)
        #expect(pair.vision == nil)
        try pair.loadProjector(path: projector)
        let vision = try #require(pair.vision)
        #expect(vision.promptSyntax == "<img><imgpad></img>")
        let reference = try Model.load(path: folder)
        let image = try loadImage("rgb_333x215.png")
        let a = try visionContext(reference).imageEmbedding(image).values, b = try visionContext(pair).imageEmbedding(image).values
        let rows = maxAbs(a, b)
        let prompt = "<|im_start|>user\nPicture 1: <img></img>\nDescribe the image.<|im_end|>\n<|im_start|>assistant\n"
        let vocab = reference.languageModel.vocabularySize
        var x = [Float](repeating: 0, count: vocab), y = x
        try x.withUnsafeMutableBufferPointer { try visionContext(reference).evalPrompt(prompt, media: [ImageInput(image)], logits: $0.baseAddress!) }
        try y.withUnsafeMutableBufferPointer { try visionContext(pair).evalPrompt(prompt, media: [ImageInput(image)], logits: $0.baseAddress!) }
        let logits = maxAbs(x, y)
        print("qwen-vl \(type) GGUF pair vs folder: rows max |Δ| \(rows), last logits max |Δ| \(logits)")
        #expect(rows <= (type == "F32" ? 1e-5 : 0.1) && logits <= (type == "F32" ? 1e-5 : 0.1))
        #expect(argmaxOf(x[...]) == argmaxOf(y[...]))
    }
}


/// The grounding parser against the original `_fetch_all_box_with_ref` and `draw_bbox_on_latest_picture` on
/// real-looking answers (Tests/Fixtures/qwen-vl/refs/grounding.json).
@Suite struct GroundingTests {
    @Test func boxesMatchTheReference() throws {
        let ref = try QwenVLParityTests.refs("grounding.json")
        let (width, height) = (640, 427)
        for c in ref["cases"]!.array! {
            let name = c["name"]!.string!, text = c["text"]!.string!
            let got = Grounding.boxes(in: text)
            if let boxes = c["boxes"]?.array {
                #expect(got.map { [$0.x1, $0.y1, $0.x2, $0.y2] } == boxes.map { $0["box"]!.array!.map { $0.int! } }, "\(name)")
                #expect(got.map(\.ref) == boxes.map { $0["ref"]?.string }, "\(name): refs")
                for b in got {
                    if let r = b.refBytes { #expect(String(decoding: Array(text.utf8)[r], as: UTF8.self) == b.ref) }
                }
                // the boxes the reference draws, in pixels
                let drawn = (c["draw"]?.array ?? []).compactMap { $0["box"]?.array?.map { $0.int! } }
                #expect(got.map { let p = $0.pixels(width: width, height: height); return [p.x1, p.y1, p.x2, p.y2] } == drawn, "\(name): pixels")
            } else {
                // the reference raises: a box that is not four integers is skipped, an unclosed tag ends the parse
                #expect(c["error"] != nil)
                #expect(got.isEmpty, "\(name): \(got)")
            }
        }
        let partial = Grounding.boxes(in: "<ref>a</ref><box>(1,2),(3,4)</box> and <ref>b</ref><box>(5,6),(7")
        #expect(partial.map(\.ref) == ["a"])
        let mixed = Grounding.boxes(in: "<box>(1,2),(3)</box><ref>c</ref><box>(1,2),(3,4)</box>")
        #expect(mixed.map(\.ref) == ["c"])
        // 18-digit coordinates: pixels saturate instead of overflowing
        let huge = Grounding.boxes(in: "<box>(999999999999999999,-999999999999999999),(1,2)</box>")
        #expect(huge.map { $0.pixels(width: 1 << 30, height: 1 << 30).x1 } == [Int(Int32.max)])
        #expect(huge.map { $0.pixels(width: 1 << 30, height: 1 << 30).y1 } == [-Int(Int32.max)])
        // many elements: each absent tag is searched for once, not once per element
        let many = String(repeating: "<ref>a</ref><box>(1,2),(3,4)</box>", count: 20_000) + String(repeating: "x", count: 100_000)
        #expect(Grounding.boxes(in: many).count == 20_000)
    }
}
