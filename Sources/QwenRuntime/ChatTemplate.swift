import QwenFormats
import QwenModels

/// One chat message.
public struct ChatMessage: Sendable, Equatable {
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// The ChatML chat format of the Qwen models. The model's stored Jinja template is not executed;
/// it is recognised: a template that prints a default system message when the conversation has
/// none (Qwen2 / Qwen2.5 Instruct) contributes that message; the Qwen3 template (reasoning in
/// `<think>` blocks, `enable_thinking`) is rendered by its own rules. Unknown or missing templates
/// fall back to plain ChatML.
public struct ChatTemplate: Sendable, Equatable {
    public enum Style: Sendable, Equatable {
        /// `<|im_start|>role\ncontent<|im_end|>\n` per message.
        case chatML
        /// The Qwen3 template: ChatML, plus `<think>` handling (see `renderQwen3`).
        case qwen3
    }

    /// System message used when the conversation does not start with one.
    public var defaultSystemMessage: String?
    public var style: Style

    public init(defaultSystemMessage: String? = nil, style: Style = .chatML) {
        self.defaultSystemMessage = defaultSystemMessage
        self.style = style
    }

    /// Recognises the template text stored with a model.
    public init(modelTemplate text: String?) {
        style = text.map(Self.isQwen3) == true ? .qwen3 : .chatML
        defaultSystemMessage = style == .chatML ? text.flatMap(Self.defaultSystem(in:)) : nil
    }

    /// The Qwen3 (hybrid thinking) template, as in Qwen3-0.6B … Qwen3-235B-A22B's tokenizer_config.json.
    /// Not Qwen3.5's (multimodal content) nor the 2507 Instruct/Thinking ones (no `enable_thinking`).
    public static func isQwen3(_ template: String) -> Bool {
        let t = Substring(template)
        let markers = [
            "ns.last_query_index",
            "'\\n<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n'",
            "enable_thinking is defined and enable_thinking is false",
            "'<think>\\n\\n</think>\\n\\n'",
        ]
        return markers.allSatisfy { t.range(of: $0) != nil } && t.range(of: "render_content") == nil
    }

    /// The chat format of a loaded model: its stored template, recognised as above. Qwen (first generation)
    /// stores none; its `make_context` (qwen_generation_utils.py) writes ChatML that starts with the system
    /// message "You are a helpful assistant." unless it is given another.
    public init(model: Model) {
        self.init(modelTemplate: model.chatTemplate)
        if model.chatTemplate == nil, model.config.architecture == "qwen" {
            defaultSystemMessage = Self.qwenV1DefaultSystemMessage
        }
        if model.chatTemplate == nil, model.audio != nil {  // Qwen2-Audio-Instruct's template, if the files lack it
            defaultSystemMessage = "You are a helpful assistant."
        }
    }

    /// The `system` default of the first-generation Qwen `chat()`.
    public static let qwenV1DefaultSystemMessage = "You are a helpful assistant."

    /// Finds `'<|im_start|>system\n` + literal + `<|im_end|>` inside a quoted string of the template.
    static func defaultSystem(in template: String) -> String? {
        // in a quoted Jinja string ('...system\\n...'), or as template text with a real newline (Qwen2-Audio-Instruct)
        defaultSystem(in: template, marker: "<|im_start|>system\\n") ?? defaultSystem(in: template, marker: "<|im_start|>system\n")
    }

    static func defaultSystem(in template: String, marker: String) -> String? {
        var rest = Substring(template)
        while let start = rest.range(of: marker) {
            let after = rest[start.upperBound...]
            if let end = after.range(of: "<|im_end|>") {
                let literal = after[..<end.lowerBound]
                // a literal (not `' + messages[0]['content'] + '`)
                if !literal.isEmpty, !literal.contains("'"), !literal.contains("\""), !literal.contains("{") {
                    return String(literal)
                }
            }
            rest = after
        }
        return nil
    }

    /// Renders messages as ChatML; `addGenerationPrompt` appends the assistant header. `enableThinking`
    /// false asks a Qwen3 model to answer without reasoning (the template's `enable_thinking=False`: an empty
    /// think block after the header); other templates ignore it.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool, enableThinking: Bool = true) -> String {
        if style == .qwen3 {
            return renderQwen3(messages, addGenerationPrompt: addGenerationPrompt, enableThinking: enableThinking)
        }
        var out = ""
        if let system = defaultSystemMessage, messages.first?.role != "system" {
            out += "<|im_start|>system\n\(system)<|im_end|>\n"
        }
        for m in messages {
            out += "<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n"
        }
        if addGenerationPrompt { out += "<|im_start|>assistant\n" }
        return out
    }
}

// MARK: Qwen3

extension ChatTemplate {
    /// The Qwen3 template's output for system / user / assistant / tool messages (tool calls and tool
    /// definitions aside), as transformers' `apply_chat_template` renders it:
    /// - a leading system message, then each message as ChatML; later system messages are ordinary turns;
    ///   roles the template does not know print nothing;
    /// - an assistant message's `<think>…</think>` reasoning is cut from its content; it is printed back,
    ///   as `<think>\nreasoning\n</think>\n\n` before the answer, only for assistant messages after the last
    ///   user query (the current turn, e.g. between tool calls) that have reasoning, or for the final message.
    ///   Earlier turns keep only their answers;
    /// - consecutive `tool` messages share one user turn of `<tool_response>` blocks, and a user message that
    ///   is only a `<tool_response>` does not count as a query;
    /// - the generation prompt is `<|im_start|>assistant\n`, followed by an empty `<think>\n\n</think>\n\n`
    ///   when thinking is disabled.
    /// Text is handled as Unicode scalars (Python's code points), never as grapheme clusters.
    func renderQwen3(_ messages: [ChatMessage], addGenerationPrompt: Bool, enableThinking: Bool) -> String {
        typealias Text = [Unicode.Scalar]
        func text(_ s: String) -> Text { Array(s.unicodeScalars) }
        let endThink = text("</think>"), startThink = text("<think>")
        let toolOpen = text("<tool_response>"), toolClose = text("</tool_response>")
        var out = String.UnicodeScalarView()
        func emit(_ s: String) { out.append(contentsOf: s.unicodeScalars) }
        func emit(_ s: Text) { out.append(contentsOf: s) }

        let last = messages.count - 1
        if messages.first?.role == "system" { emit("<|im_start|>system\n" + messages[0].content + "<|im_end|>\n") }
        // the last user message that is a real query (not a wrapped tool response)
        var lastQuery = last
        for i in messages.indices.reversed() where messages[i].role == "user" {
            let c = text(messages[i].content)
            if !(c.starts(with: toolOpen) && c.reversed().starts(with: toolClose.reversed())) {
                lastQuery = i
                break
            }
        }
        for (i, m) in messages.enumerated() {
            switch m.role {
            case "user":
                emit("<|im_start|>user\n" + m.content + "<|im_end|>\n")
            case "system":
                if i > 0 { emit("<|im_start|>system\n" + m.content + "<|im_end|>\n") }
            case "assistant":
                var content = text(m.content), reasoning: Text = []
                if let end = Self.firstIndex(of: endThink, in: content) {
                    let head = Self.stripNewlines(content[..<end], leading: false, trailing: true)
                    reasoning = Array(Self.stripNewlines(Self.after(last: startThink, in: head), leading: true, trailing: false))
                    content = Array(Self.stripNewlines(Self.after(last: endThink, in: content[...]), leading: true, trailing: false))
                }
                emit("<|im_start|>assistant\n")
                if i > lastQuery, i == last || !reasoning.isEmpty {
                    emit("<think>\n")
                    emit(Array(Self.stripNewlines(reasoning[...], leading: true, trailing: true)))
                    emit("\n</think>\n\n")
                    emit(Array(Self.stripNewlines(content[...], leading: true, trailing: false)))
                } else {
                    emit(content)
                }
                emit("<|im_end|>\n")
            case "tool":
                if i == 0 || messages[i - 1].role != "tool" { emit("<|im_start|>user") }
                emit("\n<tool_response>\n" + m.content + "\n</tool_response>")
                if i == last || messages[i + 1].role != "tool" { emit("<|im_end|>\n") }
            default:
                break
            }
        }
        if addGenerationPrompt {
            emit("<|im_start|>assistant\n")
            if !enableThinking { emit("<think>\n\n</think>\n\n") }
        }
        return String(out)
    }

    static func firstIndex(of needle: [Unicode.Scalar], in s: [Unicode.Scalar]) -> Int? {
        guard !needle.isEmpty, s.count >= needle.count else { return nil }
        return (0 ... s.count - needle.count).first { s[$0 ..< $0 + needle.count].elementsEqual(needle) }
    }

    /// Python's `s.split(needle)[-1]`: what follows the last occurrence (all of `s` if there is none).
    static func after(last needle: [Unicode.Scalar], in s: ArraySlice<Unicode.Scalar>) -> ArraySlice<Unicode.Scalar> {
        guard s.count >= needle.count else { return s }
        var i = s.endIndex - needle.count
        while i >= s.startIndex {
            if s[i ..< i + needle.count].elementsEqual(needle) { return s[(i + needle.count)...] }
            i -= 1
        }
        return s
    }

    /// Python's `lstrip('\n')` / `rstrip('\n')` / `strip('\n')`.
    static func stripNewlines(_ s: ArraySlice<Unicode.Scalar>, leading: Bool, trailing: Bool) -> ArraySlice<Unicode.Scalar> {
        var r = s
        while leading, r.first == "\n" { r = r.dropFirst() }
        while trailing, r.last == "\n" { r = r.dropLast() }
        return r
    }
}

extension Substring {
    func range(of needle: String) -> Range<Substring.Index>? {
        guard !needle.isEmpty else { return nil }
        let n = needle.unicodeScalars
        var i = startIndex
        while i < endIndex {
            if self[i...].unicodeScalars.starts(with: n) {
                let end = unicodeScalars.index(i, offsetBy: n.count)
                return i ..< end
            }
            i = unicodeScalars.index(after: i)
        }
        return nil
    }
}
