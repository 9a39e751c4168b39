import QwenFormats
import QwenMedia
import QwenModels
import QwenRuntime
import QwenTestSupport
import QwenTokenizer
import Testing

/// The first-generation Qwen-Audio against its original code (Tests/Fixtures/qwen-audio,
/// scripts/fixtures/make_qwen_audio_fixtures.py): the audio specials, the encoder rows (bos, clip, eos) and prompts
/// through the first-generation Qwen LLM.
@Suite(.serialized) struct QwenAudioParityTests {
    static func fixture(_ relative: String) -> String { TestSupport.fixture("qwen-audio/" + relative) }
    static func refs(_ name: String) throws -> JSON { try TestSupport.readJSON(fixture("refs/" + name)) }
    static func floats(_ file: JSON) throws -> [Float] { try TestSupport.readFloats(fixture("refs/" + file["file"]!.string!)) }

    static func model() throws -> Model { try Model.load(path: fixture("qwenaudio-hf")) }

    /// The waveform the reference's ffmpeg made (int16), so the encoder is compared without the resampler.
    static func referenceClip(_ name: String) throws -> AudioClip {
        let meta = try refs("audio.json")["audios"]![name]!["waveform"]!
        let file = try FileBytes(path: fixture("refs/" + meta["file"]!.string!), map: true)
        let samples = (0 ..< file.count / 2).map { i -> Float in
            let v = Int16(littleEndian: file.base.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))
            return Float(v) / 32768
        }
        return try AudioClip(samples16k: samples)
    }

    @Test func audioSpecialsHaveTheReferenceIDs() throws {
        let t = try Self.refs("audio.json")["tokenizer"]!
        let tokenizer = try Self.model().tokenizer
        let first = Int32(t["special_first"]?.int ?? 2048) + 208
        for (i, token) in t["audio_st"]!.array!.enumerated() {
            #expect(tokenizer.tokenID(token.string!) == first + Int32(i), "\(token.string!)")
        }
    }

    /// conv1 → GELU → conv2 (stride 2) → GELU + positions, the blocks, pooling, ln_post, proj, bos/eos.
    @Test(arguments: ["speech", "short16k"])
    func encoderRowsMatchTheReference(_ name: String) throws {
        let meta = try Self.refs("audio.json")["audios"]![name]!
        let model = try Self.model()
        let audio = try #require(model.audio)
        let clip = try Self.referenceClip(name)
        #expect(audio.tokenCount(clip) == meta["audio_span"]!.int!)
        let expected = try Self.floats(meta["rows"]!)
        let got = try audio.embed(clip, pool: nil)
        #expect(got.rows == meta["audio_span"]!.int!)
        let worst = maxAbs(got.values, expected)
        print("qwen-audio encoder \(name): \(got.rows) rows, max |Δ| \(worst)")
        #expect(worst <= 1e-3, "\(name): max |Δ| \(worst)")
        guard name == "speech" else { return }
        // from the 22050 Hz file through our resampler (libsoxr's HQ recipe; the reference resamples with ffmpeg)
        let file = try audio.embed(try AudioClip(path: TestSupport.fixture("audio/inputs/speech.wav")), pool: nil)
        let resampled = maxAbs(file.values, expected)
        print("qwen-audio encoder speech.wav resampled here: max |Δ| \(resampled)")
        #expect(file.rows == got.rows && resampled <= 0.05)
    }

    /// Prompts (`<audio></audio>` placeholders; the chat API's `<audio>` markers): token ids outside the audio
    /// spans, last logits, 16 greedy tokens through the KV cache. The clips are the reference's 16 kHz waveforms.
    @Test(arguments: ["chat", "chat_short", "base"])
    func promptsMatchTheReference(_ name: String) throws {
        let ref = try Self.refs("\(name).json")
        let model = try Self.model()
        let vocab = model.languageModel.vocabularySize
        let urls = ref["audio_info"]!["audio_urls"]!.array!.map { $0.string! }
        var text = ref["rendered_text"]!.string!
        for url in urls { text = text.replacingFirst("<audio>" + url + "</audio>", with: "<audio></audio>") }
        let clipNames = urls.map { $0.hasSuffix("short16k.wav") ? "short16k" : "speech" }
        let media: [PromptMedia] = try clipNames.map { AudioInput(try Self.referenceClip($0)) }
        var options = ContextOptions()
        options.kvType = .f32
        options.contextSize = 512
        let ctx = try Context(model: model, options: options)
        let refIDs = ref["input_ids"]!.array!.map { Int32($0.int!) }
        var spans = Set<Int>()
        for s in ref["audio_spans"]!.array! { spans.formUnion(s.array![0].int! ... s.array![1].int!) }
        let pieces = try ctx.promptPieces(tokens: model.tokenizer.encode(model.audio!.expandPlaceholders(text), parseSpecial: true), media: media)
        let plan = PromptPlan(pieces: pieces, after: 0, mrope: false)
        #expect(plan.tokens.count == refIDs.count, "\(name): \(plan.tokens.count) tokens, the reference \(refIDs.count)")
        let outside = (0 ..< min(plan.tokens.count, refIDs.count)).filter { !spans.contains($0) }
        #expect(outside.map { plan.tokens[$0] } == outside.map { refIDs[$0] }, "\(name): token ids outside the audio")

        var last = [Float](repeating: 0, count: vocab)
        try last.withUnsafeMutableBufferPointer { try ctx.eval(pieces: pieces, logits: $0.baseAddress!) }
        let worst = maxAbs(last, try Self.floats(ref["last_logits"]!))
        print("qwen-audio prompt \(name): \(refIDs.count) tokens, last logits max |Δ| \(worst)")
        #expect(worst <= 1e-3, "\(name): max |Δlogit| \(worst)")
        let greedy = try greedyTokens(after: last[...], count: 16) { try ctx.eval([$0], logits: $1) }
        #expect(greedy == ref["greedy"]!.array!.map { Int32($0.int!) }, "\(name): greedy")

        // the chat API: `<audio>` markers become "Audio N:<audio></audio>\n" as from_list_format writes them
        if name != "base" {
            var query = ref["query"]!.string!
            for (k, url) in urls.enumerated() { query = query.replacingFirst("Audio \(k + 1):<audio>" + url + "</audio>\n", with: "<audio>") }
            let chat = try Context(model: model, options: options)
            try chat.evalChat([ChatMessage(role: "system", content: ref["system"]!.string!), ChatMessage(role: "user", content: query)],
                              media: media, addGenerationPrompt: true)
            #expect(chat.tokens == plan.tokens, "\(name): chat tokens")
        }
    }
}

extension QwenAudioParityTests {
    /// qwen-quantize's conversion of the folder: the text GGUF and our projector GGUF (`qwenaudio`) give the
    /// folder's rows and logits (F32), or close ones (Q8_0).
    @Test(arguments: ["F32", "Q8_0"])
    func convertedPairMatchesTheFolder(_ type: String) throws {
        let folder = Self.fixture("qwenaudio-hf")
        let mix = try #require(QuantizationMix(name: type))
        let text = TestSupport.temporaryPath("qwenaudio-\(type).gguf"), projector = TestSupport.temporaryPath("mmproj-qwenaudio-\(type).gguf")
        _ = try GGUFQuantizer.quantize(input: folder, output: text, mix: mix)
        _ = try ProjectorExport.write(folder: folder, output: projector, mix: mix)
        let pair = try Model.load(path: text)
        try pair.loadProjector(path: projector)
        let reference = try Self.model()
        let clip = try Self.referenceClip("short16k")
        let a = try reference.audio!.embed(clip, pool: nil).values, b = try #require(pair.audio).embed(clip, pool: nil).values
        let prompt = "<|im_start|>user\nAudio 1:<audio></audio>\nWhat does the speaker say?<|im_end|>\n<|im_start|>assistant\n"
        var options = ContextOptions()
        options.kvType = .f32
        let vocab = reference.languageModel.vocabularySize
        var x = [Float](repeating: 0, count: vocab), y = x
        try x.withUnsafeMutableBufferPointer { try Context(model: reference, options: options).evalPrompt(prompt, media: [AudioInput(clip)], logits: $0.baseAddress!) }
        try y.withUnsafeMutableBufferPointer { try Context(model: pair, options: options).evalPrompt(prompt, media: [AudioInput(clip)], logits: $0.baseAddress!) }
        let rows = maxAbs(a, b), logits = maxAbs(x, y)
        print("qwen-audio \(type) GGUF pair vs folder: rows max |Δ| \(rows), last logits max |Δ| \(logits)")
        // Q8_0 on rows of 32 values (this model's width): a few hundredths on logits of magnitude ~4
        #expect(rows <= (type == "F32" ? 1e-5 : 0.1) && logits <= (type == "F32" ? 1e-5 : 0.25))
        #expect(argmaxOf(x[...]) == argmaxOf(y[...]))
    }
}


/// Bad inputs to the first-generation multimodal models are errors: placeholders without media, media without
/// placeholders, a clip too short for a row, projectors for another model.
@Suite struct FirstGenerationBadInputTests {
    static func status(_ body: () throws -> Void) -> QwenStatus? {
        do { try body() } catch let e as QwenError { return e.status } catch { return nil }
        return .ok
    }

    @Test func refusedWithClearErrors() throws {
        let vl = try Model.load(path: TestSupport.fixture("qwen-vl/qwenvl-hf"))
        let au = try Model.load(path: TestSupport.fixture("qwen-audio/qwenaudio-hf"))
        let image = ImageInput(try RGBImage.load(path: TestSupport.fixture("vision/images/rgb_333x215.png")))
        let clip = AudioInput(try AudioClip(samples16k: [Float](repeating: 0.1, count: 16000)))
        let vctx = try Context(model: vl), actx = try Context(model: au)
        #expect(Self.status { try vctx.evalPrompt("Picture 1: <img></img>\n", media: []) } == .invalidArgument)
        #expect(Self.status { try vctx.evalPrompt("<img></img><img></img>", media: [image]) } == .invalidArgument)
        #expect(Self.status { try vctx.evalPrompt("no image here", media: [image]) } == .invalidArgument)
        #expect(Self.status { try vctx.evalPrompt("<audio></audio>", media: [clip]) } == .unsupported)
        #expect(Self.status { try actx.evalPrompt("Audio 1:<audio></audio>\n", media: []) } == .invalidArgument)
        #expect(Self.status { try actx.evalPrompt("<img></img>", media: [image]) } == .unsupported)
        let tooShort = AudioInput(try AudioClip(samples16k: [Float](repeating: 0.1, count: 400)))
        #expect(Self.status { try actx.evalPrompt("<audio></audio>", media: [tooShort]) } == .invalidArgument)
        // the audio tower's projector onto the Qwen-VL model (its tokenizer has no audio placeholder), and back
        let projector = TestSupport.temporaryPath("mmproj-qwenaudio-bad.gguf")
        _ = try ProjectorExport.write(folder: TestSupport.fixture("qwen-audio/qwenaudio-hf"), output: projector, mix: QuantizationMix(name: "F32")!)
        #expect(Self.status { try vl.loadProjector(path: projector) } != .ok)
        #expect(vl.audio == nil)
        #expect(Self.status { try Context(model: vl).evalPrompt("Picture 1: <img></img>\n", media: [image]) } == .ok)
    }
}
