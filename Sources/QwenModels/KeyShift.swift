import QwenTensors

extension DecoderModel {
    /// RoPE composes: rotating a key encoded at position p by the angles of -delta encodes it at p - delta.
    public func moveCachedKey(_ key: UnsafeMutablePointer<Float>, by delta: Int) {
        let half = config.headDim / 2
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * half) { table in
            let c = table.baseAddress!, s = c + half
            rope.angles(position: -delta, cos: c, sin: s)
            rope.apply(key, heads: 1, cos: c, sin: s)
        }
    }
}
