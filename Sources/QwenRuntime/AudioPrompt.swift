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

    /// `<audio>` markers in chat messages → the Qwen2-Audio-Instruct template's clip line,
    /// "Audio N: <|audio_bos|><|AUDIO|><|audio_eos|>\n", numbered over the whole conversation (when the model takes audio).
    func expandAudioMarkers(_ messages: [ChatMessage]) -> [ChatMessage] {
        guard model.audio != nil else { return messages }
        var count = 0
        return messages.map { m in
            guard m.content.contains("<audio>") else { return m }
            let parts = m.content.split(separator: "<audio>", omittingEmptySubsequences: false)
            var text = String(parts[0])
            for part in parts.dropFirst() {
                count += 1
                text += "Audio \(count): <|audio_bos|><|AUDIO|><|audio_eos|>\n" + part
            }
            return ChatMessage(role: m.role, content: text)
        }
    }
}
