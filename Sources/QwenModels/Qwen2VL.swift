import QwenFormats
import QwenTensors

/// The language model of Qwen2-VL and Qwen2.5-VL: the Qwen2 decoder (QKV biases) with M-RoPE. Each head's d/2
/// RoPE frequencies are split into temporal, height and width sections (`mrope_section`, e.g. [16, 24, 24]), each
/// rotated by its own component of a 3-D position: text takes (p, p, p); an image's rows take the temporal, row and
/// column index of their merged patch offset by the position the image starts at, and the text after it continues
/// from the largest of those plus one (transformers' get_rope_index; PromptPlan lays the positions out).
/// GGUF architecture `qwen2vl` (sections in `qwen2vl.rope.dimension_sections`); the vision tower is VisionModel's.
public final class Qwen2VLModel: DecoderModel, @unchecked Sendable {
    public init(config: ModelConfig, weights: WeightStore) throws {
        guard let sections = config.mropeSections else { throw QwenError.format("Qwen2-VL model without M-RoPE sections (mrope_section)") }
        guard sections.reduce(0, +) == config.headDim / 2 else {
            throw QwenError.format("M-RoPE sections \(sections) do not cover the \(config.headDim / 2) RoPE frequencies of a head")
        }
        var options = Options()
        options.attention.qkvBias = true
        try super.init(config: config, weights: weights, options: options)
    }
}

extension ModelConfig {
    /// Sets `mropeSections` from `mrope_section` / `qwen2vl.rope.dimension_sections` (trailing zeros dropped; the
    /// sections must cover the head's d/2 frequencies).
    mutating func readMRoPESections(_ values: [Int]?) throws {
        guard var sections = values, !sections.isEmpty else {
            throw QwenError.format("M-RoPE sections are missing")
        }
        while sections.count > 1, sections.last == 0 { sections.removeLast() }
        guard sections.allSatisfy({ $0 >= 0 && $0 <= 1 << 16 }), sections.count <= 4 else {
            throw QwenError.format("invalid M-RoPE sections \(sections)")
        }
        mropeSections = sections
    }
}
