import QwenFormats
import QwenTensors
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Saving and restoring a context: the tokens, their keys and values, and the last position's logits and
/// hidden state, so a host can resume a conversation or reuse a long system prompt. The format is private
/// to this library version; a state only loads into a context of a model with the same shape and cache type.
extension Context {
    private static let stateMagic: UInt32 = 0x5453_5751  // "QWST"
    private static let stateVersion: UInt32 = 3

    /// Numbers a state must agree on with the context it is loaded into.
    private var stateShape: [Int64] {
        let c = model.config
        return [Int64(c.layerCount), Int64(c.kvHeadCount), Int64(c.headDim), Int64(c.hiddenSize), Int64(vocabularySize),
                Int64(cache.rowBytes), Int64(kvTypeCode)]
    }

    private var kvTypeCode: Int {
        switch cache.type {
        case .f32: return 0
        case .f16: return 1
        case .q8_0: return 2
        }
    }

    /// Bytes `saveState` writes.
    public var stateSize: Int {
        let header = 4 + 4 + 8 * stateShape.count + 8 + 1 + 8
        let kv = 2 * cache.layers * cache.kvHeads * tokens.count * cache.rowBytes
        return header + tokens.count * (4 + 8 + 4) + (vocabularySize + hidden.count) * 4 + kv
    }

    /// Writes the state into `buffer` (at least `stateSize` bytes); returns the bytes written.
    public func saveState(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let size = stateSize
        guard buffer.count >= size, let base = buffer.baseAddress else {
            throw QwenError(.bufferTooSmall, "the state needs \(size) bytes, the buffer has \(buffer.count)")
        }
        var offset = 0
        func put<T>(_ value: T) {
            base.storeBytes(of: value, toByteOffset: offset, as: T.self)
            offset += MemoryLayout<T>.size
        }
        func putBytes(_ p: UnsafeRawPointer, _ n: Int) {
            (base + offset).copyMemory(from: p, byteCount: n)
            offset += n
        }
        put(Self.stateMagic)
        put(Self.stateVersion)
        for v in stateShape { put(v) }
        put(Int64(tokens.count))
        put(UInt8(hasLogits ? 1 : 0))
        put(workspace.ropeAlpha)  // a model's position-encoding state (Qwen1's frozen NTK alpha)
        tokens.withUnsafeBytes { putBytes($0.baseAddress!, $0.count) }
        mediaKeys.withUnsafeBytes { putBytes($0.baseAddress!, $0.count) }
        ropeNext.withUnsafeBytes { putBytes($0.baseAddress!, $0.count) }
        putBytes(logits.raw, vocabularySize * 4)
        putBytes(hidden.raw, hidden.count * 4)
        for layer in 0 ..< cache.layers {
            for head in 0 ..< cache.kvHeads where !tokens.isEmpty {
                putBytes(cache.key(layer: layer, head: head, position: 0), tokens.count * cache.rowBytes)
                putBytes(cache.value(layer: layer, head: head, position: 0), tokens.count * cache.rowBytes)
            }
        }
        return offset
    }

    public func saveState() throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: stateSize)
        _ = try bytes.withUnsafeMutableBytes { try saveState(into: $0) }
        return bytes
    }

    /// Replaces this context's state with a saved one. A state that does not fit (other model shape or cache
    /// type, more tokens than the cache holds, wrong size) is refused and the context is left as it was.
    public func loadState(_ bytes: UnsafeRawBufferPointer) throws {
        var r = ByteReader(bytes, what: "context state")
        guard try r.read(UInt32.self, "magic") == Self.stateMagic else { throw QwenError.format("not a libqwen context state") }
        let version = try r.read(UInt32.self, "version")
        guard version == Self.stateVersion else { throw QwenError.unsupported("context state version \(version) is not supported") }
        for (i, expected) in stateShape.enumerated() {
            let v = try r.read(Int64.self, "shape")
            guard v == expected else {
                throw QwenError.invalidArgument("the state was saved from a different model or cache type (field \(i): \(v), expected \(expected))")
            }
        }
        let count = try r.read(Int64.self, "token count")
        guard count >= 0, count <= Int64(capacity) else {
            throw QwenError(.contextFull, "the state holds \(count) tokens, this context holds at most \(capacity)")
        }
        let n = Int(count)
        let savedHasLogits = try r.read(UInt8.self, "flags") != 0
        let ropeAlpha = try r.readDouble("rope alpha")
        let rows = n * cache.rowBytes
        let expected = r.offset + n * (4 + 8 + 4) + (vocabularySize + hidden.count) * 4 + 2 * cache.layers * cache.kvHeads * rows
        guard bytes.count == expected else { throw QwenError.format("context state has \(bytes.count) bytes, expected \(expected)") }
        let tokenBytes = try r.readBytes(n * 4, "tokens")
        let saved = (0 ..< n).map { tokenBytes.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self) }
        guard saved.allSatisfy({ $0 >= 0 && Int($0) < vocabularySize }) else { throw QwenError.format("context state holds invalid tokens") }
        let keyBytes = try r.readBytes(n * 8, "media keys"), nextBytes = try r.readBytes(n * 4, "rope positions")
        let savedKeys = (0 ..< n).map { keyBytes.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self) }
        let savedNext = (0 ..< n).map { nextBytes.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self) }
        // the next position never runs ahead of the token count (media rows share positions); larger ones would
        // overflow the positions of later tokens
        guard savedNext.allSatisfy({ $0 >= 0 && Int($0) <= capacity }) else {
            throw QwenError.format("context state holds an invalid rope position")
        }
        logits.raw.copyMemory(from: try r.readBytes(vocabularySize * 4, "logits").baseAddress!, byteCount: vocabularySize * 4)
        hidden.raw.copyMemory(from: try r.readBytes(hidden.count * 4, "hidden state").baseAddress!, byteCount: hidden.count * 4)
        for layer in 0 ..< cache.layers {
            for head in 0 ..< cache.kvHeads where n > 0 {
                cache.key(layer: layer, head: head, position: 0).copyMemory(from: try r.readBytes(rows, "keys").baseAddress!, byteCount: rows)
                cache.value(layer: layer, head: head, position: 0).copyMemory(from: try r.readBytes(rows, "values").baseAddress!, byteCount: rows)
            }
        }
        replaceTokens(saved, mediaKeys: savedKeys, ropeNext: savedNext, hasLogits: savedHasLogits)
        workspace.ropeAlpha = ropeAlpha
    }

    public func saveState(toFile path: String) throws {
        let bytes = try saveState()
        guard let f = fopen(path, "wb") else { throw QwenError.io("cannot create '\(path)'") }
        let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
        guard fclose(f) == 0, written == bytes.count else { throw QwenError.io("cannot write '\(path)'") }
    }

    public func loadState(fromFile path: String) throws {
        let file = try FileBytes(path: path, map: true)
        try loadState(file.buffer)
    }

    /// The final hidden state (after the output norm) of the last evaluated position, or nil.
    public var lastHidden: UnsafeBufferPointer<Float>? {
        hasLogits ? UnsafeBufferPointer(start: hidden.pointer, count: hidden.count) : nil
    }
}
