// libFuzzer driver of the harnesses in Tests/Fuzz/Harnesses (docs/RELIABILITY.md). Built only for fuzzing:
//   QWEN_FUZZ=1 swift build -c release --sanitize=fuzzer --sanitize=address -Xswiftc -O --product qwen-fuzz
// (compiled with -parse-as-library: libFuzzer supplies main). The harness is chosen by QWEN_FUZZ_HARNESS.
//
// Besides the Swift harness, the tokenizer and chat inputs also go through the C API (the @_cdecl functions of
// Sources/Qwen/CAPI.swift, called directly): qwen_tokenize / qwen_detokenize and qwen_chat_apply_template, with their
// buffer-size rules, on the mini models; the image inputs through qwen_image_decode.
import CQwen
import Qwen
import QwenFormats
import QwenFuzzHarnesses
import QwenMedia
import QwenModels
import QwenRuntime
#if canImport(Glibc)
import Glibc
#endif

nonisolated(unsafe) var harness = Harness.gguf
nonisolated(unsafe) var apiModels: [(handle: OpaquePointer, model: Model)] = []

func die(_ message: String) -> Never {
    fputs("qwen-fuzz: \(message)\n", stderr)
    abort()
}

@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(_ argc: UnsafeMutablePointer<Int32>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> Int32 {
    guard let name = getenv("QWEN_FUZZ_HARNESS").map({ String(cString: $0) }), let h = Harness(rawValue: name) else {
        die("set QWEN_FUZZ_HARNESS to one of \(Harness.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    harness = h
    do {
        try h.prepare()
        if h == .tokenizer || h == .chat {
            for file in ["mini-qwen2-f32.gguf", "mini-qwen3-f16.gguf"] {
                let path = FuzzPaths.fuzzFixture(file)
                var params = qwenModelDefaultParams()
                params.n_threads = 1
                var handle: OpaquePointer?
                guard qwenModelLoad(path, &params, &handle) == 0, let handle else { die("cannot load \(path)") }
                var options = ModelOptions()
                options.threads = 1
                apiModels.append((handle, try Model.load(path: path, options: options)))
            }
        }
    } catch {
        die("\(h.rawValue): \(error)")
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    do {
        try harness.run(input)
        switch harness {
        case .tokenizer: try capiTokenize(input)
        case .chat: try capiChat(input)
        case .image: try capiImage(input)
        default: break
        }
    } catch {
        die("\(error)")
    }
    return 0
}

/// qwen_image_decode (the same decoder behind the C API's handles): it accepts exactly what RGBImage.decode accepts,
/// with the same size.
func capiImage(_ input: UnsafeRawBufferPointer) throws {
    guard input.count > 0 else { return }
    var params = qwenImageDefaultParams()
    params.max_pixels = 1 << 18
    var handle: OpaquePointer?
    let status = qwenImageDecode(input.baseAddress, Int64(input.count), &params, &handle)
    defer { qwenImageFree(handle) }
    var options = RGBImage.DecodeOptions()
    options.maxPixels = 1 << 18
    let image = try? RGBImage.decode(input, options: options)
    guard (status == 0) == (image != nil), status != 0 || (handle != nil && qwenImageWidth(handle) == Int32(image!.width)
                                                            && qwenImageHeight(handle) == Int32(image!.height)) else {
        throw HarnessFailure("capi", "qwen_image_decode returned \(status), RGBImage.decode \(image.map { "\($0.width)x\($0.height)" } ?? "an error")")
    }
}

/// qwen_tokenize / qwen_detokenize on the text up to the first NUL: the size query, the exact-capacity call, and
/// detokenizing equals the Swift tokenizer's decoding of the same ids.
func capiTokenize(_ input: UnsafeRawBufferPointer) throws {
    let end = input.firstIndex(of: 0) ?? input.count
    var text = Array(input[..<end]).map { CChar(bitPattern: $0) }
    text.append(0)
    for (handle, model) in apiModels {
        for special: Int32 in [0, 1] {
            var needed: Int32 = -1
            let query = qwenTokenize(handle, text, special, nil, 0, &needed)
            guard query == 0 || query == QwenStatus.bufferTooSmall.rawValue, needed >= 0 else {
                throw HarnessFailure("capi", "qwen_tokenize size query returned \(query), n_needed \(needed)")
            }
            var ids = [Int32](repeating: -1, count: Int(needed))
            let n = qwenTokenize(handle, text, special, &ids, needed, nil)
            guard n == needed else { throw HarnessFailure("capi", "qwen_tokenize returned \(n), needed \(needed)") }
            guard n == 0 || qwenTokenize(handle, text, special, &ids, needed - 1, nil) == QwenStatus.bufferTooSmall.rawValue else {
                throw HarnessFailure("capi", "qwen_tokenize with a short buffer did not say BUFFER_TOO_SMALL")
            }
            let expected = model.tokenizer.decode(ids)
            var bytesNeeded: Int32 = -1
            let q = qwenDetokenize(handle, ids, n, nil, 0, &bytesNeeded)
            guard bytesNeeded == Int32(expected.count), q == (expected.isEmpty ? 0 : QwenStatus.bufferTooSmall.rawValue) else {
                throw HarnessFailure("capi", "qwen_detokenize size query returned \(q), n_needed \(bytesNeeded), expected \(expected.count)")
            }
            var buf = [CChar](repeating: 0x55, count: expected.count + 1)
            let written = qwenDetokenize(handle, ids, n, &buf, Int32(buf.count), nil)
            guard written == Int32(expected.count), buf[expected.count] == 0,
                  buf.prefix(expected.count).map({ UInt8(bitPattern: $0) }) == expected else {
                throw HarnessFailure("capi", "qwen_detokenize gave other bytes than the tokenizer")
            }
        }
    }
}

/// qwen_chat_apply_template: the size query, exact capacity (no NUL), capacity + 1 (NUL), and the text equals the
/// Swift ChatTemplate of the same model.
func capiChat(_ input: UnsafeRawBufferPointer) throws {
    let (messages, _, generation, _) = TextHarnesses.parseChat(input)
    guard !messages.isEmpty else { return }
    let roles = messages.map { strdup($0.role)! }, contents = messages.map { strdup($0.content)! }
    defer { (roles + contents).forEach { free($0) } }
    let list = (0 ..< messages.count).map { qwen_chat_message(role: roles[$0], content: contents[$0]) }
    for (handle, model) in apiModels {
        let expected = Array(ChatTemplate(model: model).render(messages, addGenerationPrompt: generation).utf8)
        var needed: Int32 = -1
        let status = qwenChatApplyTemplate(handle, list, Int32(list.count), generation ? 1 : 0, nil, 0, &needed)
        if messages.contains(where: { $0.role.isEmpty }) {
            guard status == QwenStatus.invalidArgument.rawValue else {
                throw HarnessFailure("capi", "an empty role gave \(status), not INVALID_ARGUMENT")
            }
            continue
        }
        // a conversation may render to nothing (a template dropping roles it does not know): 0 bytes fit capacity 0
        let sizeQuery = expected.isEmpty ? 0 : QwenStatus.bufferTooSmall.rawValue
        guard status == sizeQuery, needed == Int32(expected.count) else {
            throw HarnessFailure("capi", "qwen_chat_apply_template size query returned \(status), n_needed \(needed), expected \(expected.count)")
        }
        var buf = [CChar](repeating: 0x55, count: expected.count + 1)
        guard qwenChatApplyTemplate(handle, list, Int32(list.count), generation ? 1 : 0, &buf, needed, nil) == needed,
              buf[expected.count] == 0x55 else {
            throw HarnessFailure("capi", "qwen_chat_apply_template with the exact capacity")
        }
        guard qwenChatApplyTemplate(handle, list, Int32(list.count), generation ? 1 : 0, &buf, needed + 1, nil) == needed,
              buf[expected.count] == 0, buf.prefix(expected.count).map({ UInt8(bitPattern: $0) }) == expected else {
            throw HarnessFailure("capi", "qwen_chat_apply_template text differs from ChatTemplate's")
        }
    }
}
