// The C ABI of model conversion (include/qwen.h, "Converting and quantizing model files").
import CQwen
import QwenFormats
import QwenModels
import QwenTensors

@_cdecl("qwen_quantize_default_params")
public func qwenQuantizeDefaultParams() -> qwen_quantize_params {
    qwen_quantize_params(type: UnsafeRawPointer(quantizeDefaultType.utf8Start).assumingMemoryBound(to: CChar.self),
                         n_threads: 0, pure: 0)
}

private let quantizeDefaultType: StaticString = "Q8_0"

@_cdecl("qwen_model_quantize")
public func qwenModelQuantize(_ input: UnsafePointer<CChar>?, _ output: UnsafePointer<CChar>?,
                              _ params: UnsafePointer<qwen_quantize_params>?) -> Int32 {
    guarded {
        guard let input, let output else { throw QwenError.invalidArgument("qwen_model_quantize: input or output is NULL") }
        let p = params?.pointee ?? qwenQuantizeDefaultParams()
        guard p.n_threads >= 0, p.n_threads <= ThreadPool.maxThreads, p.pure == 0 || p.pure == 1 else {
            throw QwenError.invalidArgument("qwen_model_quantize: n_threads must be in 0...\(ThreadPool.maxThreads) and pure 0 or 1")
        }
        let name = p.type.map { String(cString: $0) } ?? "Q8_0"
        guard let mix = QuantizationMix(name: name) else {
            throw QwenError.unsupported("qwen_model_quantize: unknown type '\(name)' (known: " +
                                        QuantizationMix.all.map(\.name).joined(separator: ", ") + ")")
        }
        _ = try GGUFQuantizer.quantize(input: String(cString: input), output: String(cString: output), mix: mix,
                                       pure: p.pure == 1, threads: Int(p.n_threads))
        return 0
    }
}
