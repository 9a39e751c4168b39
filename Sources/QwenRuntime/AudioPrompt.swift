import QwenFormats
import QwenMedia
import QwenModels

/// A sound clip for a prompt (Qwen2-Audio): `<|AUDIO|>` in the prompt text stands for its rows.
public final class AudioInput: PromptMedia {
    public let clip: AudioClip

    public init(_ clip: AudioClip) { self.clip = clip }

    public func placeholder(in model: Model) throws -> Int32 { try Context.audioModel(model).audioTokenID }

    public func embedding(in context: Context) throws -> MediaEmbedding { try context.audioEmbedding(clip) }
}

extension Context {
    static func audioModel(_ model: Model) throws -> AudioModel {
        guard let audio = model.audio else {
            throw QwenError.unsupported("the model has no audio tower: load a Qwen2-Audio folder, or its audio mmproj " +
                                        "with qwen_model_load_projector")
        }
        return audio
    }

    /// The rows the language model receives for a clip (one `<|AUDIO|>` row each, text positions), computed on this
    /// context's threads once and then taken from its cache. Clips longer than 30 s are encoded window by window and
    /// the rows concatenated (`AudioModel.embed`).
    public func audioEmbedding(_ clip: AudioClip) throws -> MediaEmbedding {
        let audio = try Self.audioModel(model)
        var h = FNV1a()
        h.add(clip.key)
        h.add(UInt64(clip.samples.count))
        h.add(0x4155_4449_4F00_0000)  // "AUDIO": never the key of an image with the same bytes
        h.add(UInt64(UInt(bitPattern: ObjectIdentifier(audio).hashValue)))
        return try cachedMedia(key: h.value) {
            let e = try audio.embed(clip, pool: workspace.pool)
            return try MediaEmbedding(rows: e.rows, values: e.values, placeholder: audio.audioTokenID, key: h.value)
        }
    }

    /// `<audio>` markers in chat messages → the model's clip line ("Audio N: <|audio_bos|><|AUDIO|><|audio_eos|>\n",
    /// Qwen-Audio's "Audio N:<audio></audio>\n"), numbered over the whole conversation (when the model takes audio).
    /// Qwen-Audio's own `<audio></audio>` is its syntax, not a marker.
    func expandAudioMarkers(_ messages: [ChatMessage]) -> [ChatMessage] {
        guard let audio = model.audio else { return messages }
        var count = 0
        return messages.map { m in
            let content = audio.expandPlaceholders(m.content)
            guard content.contains("<audio>") else { return ChatMessage(role: m.role, content: content) }
            let parts = content.split(separator: "<audio>", omittingEmptySubsequences: false)
            var text = String(parts[0])
            for part in parts.dropFirst() {
                count += 1
                text += audio.chatLine(count) + part
            }
            return ChatMessage(role: m.role, content: text)
        }
    }
}
