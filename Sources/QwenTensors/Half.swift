/// Scalar conversions for F16 and BF16 storage.
@inline(__always) public func f16ToFloat(_ bits: UInt16) -> Float { Float(Float16(bitPattern: bits)) }
@inline(__always) public func floatToF16(_ x: Float) -> UInt16 { Float16(x).bitPattern }
@inline(__always) public func bf16ToFloat(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

/// Float to BF16 with round-to-nearest-even (NaN stays NaN), as PyTorch and the gguf package round.
@inline(__always) public func floatToBF16(_ x: Float) -> UInt16 {
    let bits = x.bitPattern
    if x.isNaN { return UInt16(truncatingIfNeeded: (bits >> 16) | 0x40) }
    let rounding = UInt32(0x7FFF) + ((bits >> 16) & 1)
    return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
}
