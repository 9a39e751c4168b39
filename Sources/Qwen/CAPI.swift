// The C ABI of libqwen (include/qwen.h): thin @_cdecl wrappers over QwenRuntime.
// Every entry point validates its arguments and turns thrown errors into a status plus
// qwen_last_error(); nothing here may trap.
import CQwen
import QwenFormats
import QwenModels
import QwenRuntime
import QwenTensors
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

let libraryVersion: StaticString = "0.1.0"

// MARK: Handles

final class ModelHandle {
    let model: Model
    init(_ model: Model) { self.model = model }
}

final class ContextHandle {
    let context: Context
    init(_ context: Context) { self.context = context }
}

/// Live handles, so a NULL, stale or foreign pointer is rejected instead of dereferenced.
/// Lookups return a strong reference taken under the lock, so a concurrent free cannot pull the
/// object from under a running call.
final class HandleRegistry: @unchecked Sendable {
    private var live: Set<UInt> = []
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    func register<T: AnyObject>(_ object: T) -> OpaquePointer {
        let raw = Unmanaged.passRetained(object).toOpaque()
        pthread_mutex_lock(mutex)
        live.insert(UInt(bitPattern: raw))
        pthread_mutex_unlock(mutex)
        return OpaquePointer(raw)
    }

    func lookup<T: AnyObject>(_ pointer: OpaquePointer?, as _: T.Type) -> T? {
        guard let pointer else { return nil }
        let raw = UnsafeMutableRawPointer(pointer)
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        guard live.contains(UInt(bitPattern: raw)) else { return nil }
        return Unmanaged<AnyObject>.fromOpaque(raw).takeUnretainedValue() as? T
    }

    /// Removes and releases a handle; unknown pointers are ignored.
    func release<T: AnyObject>(_ pointer: OpaquePointer?, as _: T.Type) {
        guard let pointer else { return }
        let raw = UnsafeMutableRawPointer(pointer)
        pthread_mutex_lock(mutex)
        let removed = live.remove(UInt(bitPattern: raw)) != nil
        let object = removed ? Unmanaged<AnyObject>.fromOpaque(raw).takeUnretainedValue() as? T : nil
        if removed, object == nil { live.insert(UInt(bitPattern: raw)) }  // wrong kind of handle: keep it
        pthread_mutex_unlock(mutex)
        if object != nil { Unmanaged<AnyObject>.fromOpaque(raw).release() }
    }
}

let handles = HandleRegistry()

// MARK: Error plumbing

func fail(_ error: Error) -> Int32 {
    let e = error as? QwenError ?? QwenError(.invalidArgument, "\(error)")
    e.message.withCString { cq_set_error($0) }
    return e.status.rawValue
}

func invalid(_ message: String) -> Int32 { fail(QwenError.invalidArgument(message)) }

/// Runs `body`, mapping a thrown error to its status.
func guarded(_ body: () throws -> Int32) -> Int32 {
    do { return try body() } catch { return fail(error) }
}

func model(_ p: OpaquePointer?, _ function: String) throws -> Model {
    guard let h = handles.lookup(p, as: ModelHandle.self) else {
        throw QwenError.invalidArgument("\(function): \(p == nil ? "model is NULL" : "not a live qwen_model handle")")
    }
    return h.model
}

func context(_ p: OpaquePointer?, _ function: String) throws -> Context {
    guard let h = handles.lookup(p, as: ContextHandle.self) else {
        throw QwenError.invalidArgument("\(function): \(p == nil ? "ctx is NULL" : "not a live qwen_context handle")")
    }
    return h.context
}

/// Copies bytes to a C buffer under the size rules of qwen_detokenize.
func copyOut(_ bytes: [UInt8], _ buf: UnsafeMutablePointer<CChar>?, _ capacity: Int32, _ needed: UnsafeMutablePointer<Int32>?,
             _ function: String) throws -> Int32 {
    guard capacity >= 0 else { throw QwenError.invalidArgument("\(function): negative capacity") }
    guard buf != nil || capacity == 0 else { throw QwenError.invalidArgument("\(function): buf is NULL") }
    guard bytes.count <= Int(Int32.max) else { throw QwenError.invalidArgument("\(function): output too large") }
    needed?.pointee = Int32(bytes.count)
    guard bytes.count <= Int(capacity) else {
        throw QwenError(.bufferTooSmall, "\(function): \(bytes.count) bytes needed, capacity is \(capacity)")
    }
    if let buf {
        bytes.withUnsafeBufferPointer { src in
            UnsafeMutableRawPointer(buf).copyMemory(from: src.baseAddress!, byteCount: bytes.count)
        }
        if bytes.count < Int(capacity) { buf[bytes.count] = 0 }
    }
    return Int32(bytes.count)
}

func messages(_ p: UnsafePointer<qwen_chat_message>?, _ n: Int32, _ function: String) throws -> [ChatMessage] {
    guard n > 0 else { throw QwenError.invalidArgument("\(function): n must be positive") }
    guard let p else { throw QwenError.invalidArgument("\(function): messages is NULL") }
    return try (0 ..< Int(n)).map { i in
        guard let role = p[i].role, let content = p[i].content else {
            throw QwenError.invalidArgument("\(function): message \(i) has a NULL role or content")
        }
        let r = String(cString: role)
        guard !r.isEmpty else { throw QwenError.invalidArgument("\(function): message \(i) has an empty role") }
        return ChatMessage(role: r, content: String(cString: content))
    }
}

// MARK: Library

@_cdecl("qwen_version")
public func qwenVersion() -> UnsafePointer<CChar> {
    UnsafeRawPointer(libraryVersion.utf8Start).assumingMemoryBound(to: CChar.self)
}

@_cdecl("qwen_last_error")
public func qwenLastError() -> UnsafePointer<CChar> { cq_get_error() }

@_cdecl("qwen_status_string")
public func qwenStatusString(_ status: Int32) -> UnsafePointer<CChar> {
    let name: StaticString
    switch QwenStatus(rawValue: status) {
    case .ok: name = "QWEN_OK"
    case .invalidArgument: name = "QWEN_ERR_INVALID_ARGUMENT"
    case .io: name = "QWEN_ERR_IO"
    case .format: name = "QWEN_ERR_FORMAT"
    case .unsupported: name = "QWEN_ERR_UNSUPPORTED"
    case .outOfMemory: name = "QWEN_ERR_OUT_OF_MEMORY"
    case .contextFull: name = "QWEN_ERR_CONTEXT_FULL"
    case .cancelled: name = "QWEN_ERR_CANCELLED"
    case .bufferTooSmall: name = "QWEN_ERR_BUFFER_TOO_SMALL"
    case nil: name = "QWEN_UNKNOWN_STATUS"
    }
    return UnsafeRawPointer(name.utf8Start).assumingMemoryBound(to: CChar.self)
}

// MARK: Models

@_cdecl("qwen_model_default_params")
public func qwenModelDefaultParams() -> qwen_model_params {
    qwen_model_params(n_threads: 0, use_mmap: 1)
}

@_cdecl("qwen_model_load")
public func qwenModelLoad(_ path: UnsafePointer<CChar>?, _ params: UnsafePointer<qwen_model_params>?,
                          _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        guard let out else { throw QwenError.invalidArgument("qwen_model_load: out is NULL") }
        out.pointee = nil
        guard let path else { throw QwenError.invalidArgument("qwen_model_load: path is NULL") }
        let p = params?.pointee ?? qwenModelDefaultParams()
        guard p.n_threads >= 0, p.n_threads <= 1024 else {
            throw QwenError.invalidArgument("qwen_model_load: n_threads must be in 0...1024")
        }
        var options = ModelOptions()
        options.useMmap = p.use_mmap != 0
        options.threads = Int(p.n_threads)
        let loaded = try Model.load(path: String(cString: path), options: options)
        out.pointee = handles.register(ModelHandle(loaded))
        return 0
    }
}

@_cdecl("qwen_model_free")
public func qwenModelFree(_ model: OpaquePointer?) {
    handles.release(model, as: ModelHandle.self)
}

@_cdecl("qwen_model_n_vocab")
public func qwenModelNVocab(_ p: OpaquePointer?) -> Int32 {
    guarded { Int32(try model(p, "qwen_model_n_vocab").languageModel.vocabularySize) }
}

@_cdecl("qwen_model_n_embd")
public func qwenModelNEmbd(_ p: OpaquePointer?) -> Int32 {
    guarded { Int32(try model(p, "qwen_model_n_embd").config.hiddenSize) }
}

@_cdecl("qwen_model_n_ctx_train")
public func qwenModelNCtxTrain(_ p: OpaquePointer?) -> Int32 {
    guarded { Int32(clamping: try model(p, "qwen_model_n_ctx_train").config.contextLength) }
}

@_cdecl("qwen_token_is_eog")
public func qwenTokenIsEog(_ p: OpaquePointer?, _ token: Int32) -> Int32 {
    guarded { try model(p, "qwen_token_is_eog").tokenizer.endOfGenerationIDs.contains(token) ? 1 : 0 }
}

/// Copies a string into a fixed C char array field, NUL-terminated and truncated to fit.
func copyString<T>(_ s: String, into field: inout T) {
    withUnsafeMutableBytes(of: &field) { raw in
        let bytes = Array(s.utf8.prefix(raw.count - 1))
        raw.copyBytes(from: bytes + [0])
    }
}

@_cdecl("qwen_model_info")
public func qwenModelInfo(_ p: OpaquePointer?, _ out: UnsafeMutablePointer<qwen_model_details>?) -> Int32 {
    guarded {
        let m = try model(p, "qwen_model_info")
        guard let out else { throw QwenError.invalidArgument("qwen_model_info: out is NULL") }
        var d = qwen_model_details()
        let c = m.config, tok = m.tokenizer
        copyString(c.architecture, into: &d.architecture)
        copyString(m.weightTypeName, into: &d.weight_type)
        d.n_params = Int64(m.parameterCount)
        d.n_bytes = Int64(m.weightBytes)
        d.n_ctx_train = Int32(clamping: c.contextLength)
        d.n_vocab = Int32(m.languageModel.vocabularySize)
        d.n_embd = Int32(c.hiddenSize)
        d.n_layer = Int32(c.layerCount)
        d.n_head = Int32(c.headCount)
        d.n_head_kv = Int32(c.kvHeadCount)
        d.head_dim = Int32(c.headDim)
        d.token_bos = tok.bosID ?? -1
        d.token_eos = tok.eosID ?? -1
        d.token_eot = tok.tokenID("<|im_end|>") ?? -1
        d.token_pad = tok.padID ?? -1
        out.pointee = d
        return 0
    }
}

// MARK: Tokenizer

@_cdecl("qwen_tokenize")
public func qwenTokenize(_ p: OpaquePointer?, _ text: UnsafePointer<CChar>?, _ parseSpecial: Int32,
                         _ tokens: UnsafeMutablePointer<Int32>?, _ capacity: Int32, _ needed: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded {
        let m = try model(p, "qwen_tokenize")
        guard let text else { throw QwenError.invalidArgument("qwen_tokenize: text is NULL") }
        guard capacity >= 0 else { throw QwenError.invalidArgument("qwen_tokenize: negative capacity") }
        guard tokens != nil || capacity == 0 else { throw QwenError.invalidArgument("qwen_tokenize: tokens is NULL") }
        let ids = m.tokenizer.encode(bytes: UnsafeRawBufferPointer(start: text, count: strlen(text)), parseSpecial: parseSpecial != 0)
        guard ids.count <= Int(Int32.max) else { throw QwenError.invalidArgument("qwen_tokenize: text too long") }
        needed?.pointee = Int32(ids.count)
        guard ids.count <= Int(capacity) else {
            throw QwenError(.bufferTooSmall, "qwen_tokenize: \(ids.count) tokens, capacity is \(capacity)")
        }
        if let tokens { for (i, t) in ids.enumerated() { tokens[i] = t } }
        return Int32(ids.count)
    }
}

@_cdecl("qwen_detokenize")
public func qwenDetokenize(_ p: OpaquePointer?, _ tokens: UnsafePointer<Int32>?, _ n: Int32, _ buf: UnsafeMutablePointer<CChar>?,
                           _ capacity: Int32, _ needed: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded {
        let m = try model(p, "qwen_detokenize")
        guard n >= 0 else { throw QwenError.invalidArgument("qwen_detokenize: negative n") }
        guard tokens != nil || n == 0 else { throw QwenError.invalidArgument("qwen_detokenize: tokens is NULL") }
        let ids = n == 0 ? [] : Array(UnsafeBufferPointer(start: tokens, count: Int(n)))
        let known = m.tokenizer.count
        if let bad = ids.first(where: { $0 < 0 || Int($0) >= known }) {
            throw QwenError.invalidArgument("qwen_detokenize: unknown token id \(bad)")
        }
        return try copyOut(m.tokenizer.decode(ids), buf, capacity, needed, "qwen_detokenize")
    }
}

// MARK: Contexts

@_cdecl("qwen_context_default_params")
public func qwenContextDefaultParams() -> qwen_context_params {
    qwen_context_params(n_ctx: 0, n_threads: 0, n_batch: 512, kv_type: Int32(QWEN_KV_F16.rawValue), sliding_window: 0)
}

@_cdecl("qwen_context_new")
public func qwenContextNew(_ p: OpaquePointer?, _ params: UnsafePointer<qwen_context_params>?,
                           _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        guard let out else { throw QwenError.invalidArgument("qwen_context_new: out is NULL") }
        out.pointee = nil
        let m = try model(p, "qwen_context_new")
        let c = params?.pointee ?? qwenContextDefaultParams()
        var options = ContextOptions()
        options.contextSize = Int(c.n_ctx)
        options.threads = Int(c.n_threads)
        options.batchSize = Int(c.n_batch)
        options.slidingWindow = c.sliding_window != 0
        switch c.kv_type {
        case Int32(QWEN_KV_F16.rawValue): options.kvType = .f16
        case Int32(QWEN_KV_F32.rawValue): options.kvType = .f32
        case Int32(QWEN_KV_Q8_0.rawValue): options.kvType = .q8_0
        default: throw QwenError.invalidArgument("qwen_context_new: unknown kv_type \(c.kv_type)")
        }
        out.pointee = handles.register(ContextHandle(try Context(model: m, options: options)))
        return 0
    }
}

@_cdecl("qwen_context_free")
public func qwenContextFree(_ ctx: OpaquePointer?) {
    handles.release(ctx, as: ContextHandle.self)
}

@_cdecl("qwen_context_reset")
public func qwenContextReset(_ ctx: OpaquePointer?) -> Int32 {
    guarded {
        try context(ctx, "qwen_context_reset").reset()
        return 0
    }
}

@_cdecl("qwen_context_eval_tokens")
public func qwenContextEvalTokens(_ ctx: OpaquePointer?, _ tokens: UnsafePointer<Int32>?, _ n: Int32,
                                  _ logits: UnsafeMutablePointer<Float>?) -> Int32 {
    guarded {
        let c = try context(ctx, "qwen_context_eval_tokens")
        guard n > 0 else { throw QwenError.invalidArgument("qwen_context_eval_tokens: n must be positive") }
        guard let tokens else { throw QwenError.invalidArgument("qwen_context_eval_tokens: tokens is NULL") }
        try c.eval(Array(UnsafeBufferPointer(start: tokens, count: Int(n))), logits: logits)
        return 0
    }
}

@_cdecl("qwen_context_n_past")
public func qwenContextNPast(_ ctx: OpaquePointer?) -> Int32 {
    guarded { Int32(try context(ctx, "qwen_context_n_past").tokens.count) }
}

@_cdecl("qwen_context_n_ctx")
public func qwenContextNCtx(_ ctx: OpaquePointer?) -> Int32 {
    guarded { Int32(try context(ctx, "qwen_context_n_ctx").capacity) }
}

func copyFloats(_ values: UnsafeBufferPointer<Float>?, _ out: UnsafeMutablePointer<Float>?, _ capacity: Int32,
                _ function: String) throws -> Int32 {
    guard let values else { throw QwenError.invalidArgument("\(function): nothing has been evaluated") }
    guard let out else { throw QwenError.invalidArgument("\(function): out is NULL") }
    guard capacity >= 0 else { throw QwenError.invalidArgument("\(function): negative capacity") }
    guard Int(capacity) >= values.count else {
        throw QwenError(.bufferTooSmall, "\(function): \(values.count) floats needed, capacity is \(capacity)")
    }
    out.update(from: values.baseAddress!, count: values.count)
    return Int32(values.count)
}

@_cdecl("qwen_context_logits")
public func qwenContextLogits(_ ctx: OpaquePointer?, _ out: UnsafeMutablePointer<Float>?, _ capacity: Int32) -> Int32 {
    guarded { try copyFloats(try context(ctx, "qwen_context_logits").lastLogits, out, capacity, "qwen_context_logits") }
}

@_cdecl("qwen_context_embedding")
public func qwenContextEmbedding(_ ctx: OpaquePointer?, _ out: UnsafeMutablePointer<Float>?, _ capacity: Int32) -> Int32 {
    guarded { try copyFloats(try context(ctx, "qwen_context_embedding").lastHidden, out, capacity, "qwen_context_embedding") }
}

@_cdecl("qwen_context_state_size")
public func qwenContextStateSize(_ ctx: OpaquePointer?) -> Int64 {
    do { return Int64(try context(ctx, "qwen_context_state_size").stateSize) } catch { return Int64(fail(error)) }
}

@_cdecl("qwen_context_state_save")
public func qwenContextStateSave(_ ctx: OpaquePointer?, _ buf: UnsafeMutableRawPointer?, _ capacity: Int64) -> Int64 {
    do {
        let c = try context(ctx, "qwen_context_state_save")
        guard let buf, capacity >= 0 else { throw QwenError.invalidArgument("qwen_context_state_save: buf is NULL or capacity negative") }
        return Int64(try c.saveState(into: UnsafeMutableRawBufferPointer(start: buf, count: Int(capacity))))
    } catch { return Int64(fail(error)) }
}

@_cdecl("qwen_context_state_load")
public func qwenContextStateLoad(_ ctx: OpaquePointer?, _ buf: UnsafeRawPointer?, _ size: Int64) -> Int32 {
    guarded {
        let c = try context(ctx, "qwen_context_state_load")
        guard let buf, size >= 0 else { throw QwenError.invalidArgument("qwen_context_state_load: buf is NULL or size negative") }
        try c.loadState(UnsafeRawBufferPointer(start: buf, count: Int(size)))
        return 0
    }
}

@_cdecl("qwen_context_state_save_file")
public func qwenContextStateSaveFile(_ ctx: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> Int32 {
    guarded {
        let c = try context(ctx, "qwen_context_state_save_file")
        guard let path else { throw QwenError.invalidArgument("qwen_context_state_save_file: path is NULL") }
        try c.saveState(toFile: String(cString: path))
        return 0
    }
}

@_cdecl("qwen_context_state_load_file")
public func qwenContextStateLoadFile(_ ctx: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> Int32 {
    guarded {
        let c = try context(ctx, "qwen_context_state_load_file")
        guard let path else { throw QwenError.invalidArgument("qwen_context_state_load_file: path is NULL") }
        try c.loadState(fromFile: String(cString: path))
        return 0
    }
}

@_cdecl("qwen_context_n_evaluated")
public func qwenContextNEvaluated(_ ctx: OpaquePointer?) -> Int64 {
    do { return Int64(try context(ctx, "qwen_context_n_evaluated").evaluatedTokenCount) } catch { return Int64(fail(error)) }
}

@_cdecl("qwen_context_cancel")
public func qwenContextCancel(_ ctx: OpaquePointer?) -> Int32 {
    guarded {
        try context(ctx, "qwen_context_cancel").cancel()
        return 0
    }
}

// MARK: Generation and chat

@_cdecl("qwen_sampling_default_params")
public func qwenSamplingDefaultParams() -> qwen_sampling_params {
    let d = SamplingParams()
    return qwen_sampling_params(temperature: d.temperature, top_k: Int32(d.topK), top_p: d.topP, min_p: d.minP,
                                repeat_penalty: d.repeatPenalty, penalty_last_n: Int32(d.penaltyLastN), seed: d.seed,
                                typical_p: d.typicalP, presence_penalty: d.presencePenalty, frequency_penalty: d.frequencyPenalty)
}

@_cdecl("qwen_generate")
public func qwenGenerate(_ ctx: OpaquePointer?, _ sp: UnsafePointer<qwen_sampling_params>?, _ maxTokens: Int32,
                         _ callback: qwen_token_callback?, _ userData: UnsafeMutableRawPointer?) -> Int32 {
    qwenGenerateEx(ctx, sp, maxTokens, nil, 0, callback, userData)
}

@_cdecl("qwen_generate_ex")
public func qwenGenerateEx(_ ctx: OpaquePointer?, _ sp: UnsafePointer<qwen_sampling_params>?, _ maxTokens: Int32,
                           _ stop: UnsafePointer<UnsafePointer<CChar>?>?, _ nStop: Int32,
                           _ callback: qwen_token_callback?, _ userData: UnsafeMutableRawPointer?) -> Int32 {
    guarded {
        let c = try context(ctx, "qwen_generate")
        guard nStop >= 0, nStop <= 1024 else { throw QwenError.invalidArgument("qwen_generate_ex: n_stop must be in 0...1024") }
        guard stop != nil || nStop == 0 else { throw QwenError.invalidArgument("qwen_generate_ex: stop is NULL") }
        let stops = try (0 ..< Int(nStop)).map { i -> String in
            guard let s = stop![i] else { throw QwenError.invalidArgument("qwen_generate_ex: stop string \(i) is NULL") }
            return String(cString: s)
        }
        let s = sp?.pointee ?? qwenSamplingDefaultParams()
        var params = SamplingParams()
        params.temperature = s.temperature
        params.topK = Int(s.top_k)
        params.topP = s.top_p
        params.minP = s.min_p
        params.repeatPenalty = s.repeat_penalty
        params.penaltyLastN = Int(s.penalty_last_n)
        params.seed = s.seed
        params.typicalP = s.typical_p
        params.presencePenalty = s.presence_penalty
        params.frequencyPenalty = s.frequency_penalty
        let result = try c.generate(sampling: params, maxTokens: Int(maxTokens), stop: stops) { token, piece in
            guard let callback else { return false }
            var text = piece
            text.append(0)
            return text.withUnsafeBufferPointer { buf in
                buf.baseAddress!.withMemoryRebound(to: CChar.self, capacity: text.count) { callback(token, $0, userData) != 0 }
            }
        }
        return Int32(result.tokens)
    }
}

@_cdecl("qwen_chat_eval")
public func qwenChatEval(_ ctx: OpaquePointer?, _ list: UnsafePointer<qwen_chat_message>?, _ n: Int32,
                         _ addGenerationPrompt: Int32) -> Int32 {
    guarded {
        let c = try context(ctx, "qwen_chat_eval")
        try c.evalChat(try messages(list, n, "qwen_chat_eval"), addGenerationPrompt: addGenerationPrompt != 0)
        return 0
    }
}

@_cdecl("qwen_chat_default_options")
public func qwenChatDefaultOptions() -> qwen_chat_options {
    qwen_chat_options(enable_thinking: 1)
}

@_cdecl("qwen_chat_eval_ex")
public func qwenChatEvalEx(_ ctx: OpaquePointer?, _ list: UnsafePointer<qwen_chat_message>?, _ n: Int32,
                           _ addGenerationPrompt: Int32, _ opts: UnsafePointer<qwen_chat_options>?) -> Int32 {
    guarded {
        let c = try context(ctx, "qwen_chat_eval_ex")
        let o = opts?.pointee ?? qwenChatDefaultOptions()
        guard o.enable_thinking == 0 || o.enable_thinking == 1 else {
            throw QwenError.invalidArgument("qwen_chat_eval_ex: enable_thinking must be 0 or 1, not \(o.enable_thinking)")
        }
        try c.evalChat(try messages(list, n, "qwen_chat_eval_ex"), addGenerationPrompt: addGenerationPrompt != 0,
                       enableThinking: o.enable_thinking != 0)
        return 0
    }
}

@_cdecl("qwen_chat_apply_template")
public func qwenChatApplyTemplate(_ p: OpaquePointer?, _ list: UnsafePointer<qwen_chat_message>?, _ n: Int32,
                                  _ addGenerationPrompt: Int32, _ buf: UnsafeMutablePointer<CChar>?, _ capacity: Int32,
                                  _ needed: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded {
        let m = try model(p, "qwen_chat_apply_template")
        let text = ChatTemplate(model: m).render(try messages(list, n, "qwen_chat_apply_template"),
                                                 addGenerationPrompt: addGenerationPrompt != 0)
        return try copyOut(Array(text.utf8), buf, capacity, needed, "qwen_chat_apply_template")
    }
}
