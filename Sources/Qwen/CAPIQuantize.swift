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

/// The paths and checked parameters of a conversion call.
private func conversion(_ function: String, _ input: UnsafePointer<CChar>?, _ output: UnsafePointer<CChar>?,
                        _ params: UnsafePointer<qwen_quantize_params>?) throws -> (String, String, QuantizationMix, qwen_quantize_params) {
    guard let input, let output else { throw QwenError.invalidArgument("\(function): input or output is NULL") }
    let p = params?.pointee ?? qwenQuantizeDefaultParams()
    guard p.n_threads >= 0, p.n_threads <= ThreadPool.maxThreads, p.pure == 0 || p.pure == 1 else {
        throw QwenError.invalidArgument("\(function): n_threads must be in 0...\(ThreadPool.maxThreads) and pure 0 or 1")
    }
    let name = p.type.map { String(cString: $0) } ?? "Q8_0"
    guard let mix = QuantizationMix(name: name) else {
        throw QwenError.unsupported("\(function): unknown type '\(name)' (known: " + QuantizationMix.all.map(\.name).joined(separator: ", ") + ")")
    }
    return (String(cString: input), String(cString: output), mix, p)
}

@_cdecl("qwen_model_quantize")
public func qwenModelQuantize(_ input: UnsafePointer<CChar>?, _ output: UnsafePointer<CChar>?,
                              _ params: UnsafePointer<qwen_quantize_params>?) -> Int32 {
    guarded {
        let (input, output, mix, p) = try conversion("qwen_model_quantize", input, output, params)
        _ = try GGUFQuantizer.quantize(input: input, output: output, mix: mix, pure: p.pure == 1, threads: Int(p.n_threads))
        return 0
    }
}

@_cdecl("qwen_model_export_projector")
public func qwenModelExportProjector(_ input: UnsafePointer<CChar>?, _ output: UnsafePointer<CChar>?,
                                     _ params: UnsafePointer<qwen_quantize_params>?) -> Int32 {
    guarded {
        let (input, output, mix, p) = try conversion("qwen_model_export_projector", input, output, params)
        guard input != output else { throw QwenError.invalidArgument("qwen_model_export_projector: the output path equals the input path") }
        _ = try ProjectorExport.write(folder: input, output: output, mix: mix, threads: Int(p.n_threads))
        return 0
    }
}
