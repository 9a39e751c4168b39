import QwenFormats

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
/// none (Qwen2 / Qwen2.5 Instruct) contributes that message. Unknown or missing templates fall
/// back to plain ChatML.
public struct ChatTemplate: Sendable, Equatable {
    /// System message used when the conversation does not start with one.
    public var defaultSystemMessage: String?

    public init(defaultSystemMessage: String? = nil) {
        self.defaultSystemMessage = defaultSystemMessage
    }

    /// Recognises the template text stored with a model.
    public init(modelTemplate text: String?) {
        defaultSystemMessage = text.flatMap(Self.defaultSystem(in:))
    }

    /// Finds `'<|im_start|>system\n` + literal + `<|im_end|>` inside a quoted string of the template.
    static func defaultSystem(in template: String) -> String? {
        let marker = "<|im_start|>system\\n"
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

    /// Renders messages as ChatML; `addGenerationPrompt` appends the assistant header.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool) -> String {
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
