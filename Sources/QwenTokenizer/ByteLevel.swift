/// GPT-2's reversible byte <-> Unicode mapping (`bytes_to_unicode`): printable Latin-1 bytes map to
/// themselves, the other 68 bytes to U+0100 ... U+0143 in byte order. Token strings of byte-level BPE
/// vocabularies are written with these characters.
enum ByteLevel {
    /// Byte -> Unicode scalar value.
    static let byteToScalar: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var n: UInt32 = 0
        for b in 0 ..< 256 {
            let printable = (0x21 ... 0x7E).contains(b) || (0xA1 ... 0xAC).contains(b) || (0xAE ... 0xFF).contains(b)
            if printable {
                table[b] = UInt32(b)
            } else {
                table[b] = 256 + n
                n += 1
            }
        }
        return table
    }()

    /// Unicode scalar value (< 0x144) -> byte, -1 when the scalar is not part of the alphabet.
    static let scalarToByte: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for (b, s) in byteToScalar.enumerated() { table[Int(s)] = Int16(b) }
        return table
    }()

    /// The raw bytes a byte-level token string stands for, nil if it uses a character outside the alphabet.
    static func decode(_ token: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(token.utf8.count)
        for u in token.unicodeScalars {
            let v = Int(u.value)
            guard v < scalarToByte.count else { return nil }
            let b = scalarToByte[v]
            guard b >= 0 else { return nil }
            out.append(UInt8(b))
        }
        return out
    }

    /// Appends the raw bytes of a byte-level token string to `out`. Returns false, leaving `out` as it was,
    /// when the string uses a character outside the alphabet.
    static func append<S: StringProtocol>(_ s: S, to out: inout [UInt8]) -> Bool {
        if let ok = s.utf8.withContiguousStorageIfAvailable({ append(utf8: $0, to: &out) }) { return ok }
        return Array(s.utf8).withUnsafeBufferPointer { append(utf8: $0, to: &out) }
    }

    /// `append` for a token string given as UTF-8 bytes (invalid UTF-8 is outside the alphabet).
    static func append(utf8 u: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) -> Bool {
        let start = out.count
        let ok = scalarToByte.withUnsafeBufferPointer { appendUTF8(u, $0, &out) }
        if !ok { out.removeSubrange(start...) }
        return ok
    }

    @inline(__always)
    private static func appendUTF8(_ u: UnsafeBufferPointer<UInt8>, _ table: UnsafeBufferPointer<Int16>,
                                   _ out: inout [UInt8]) -> Bool
    {
        var i = 0
        let n = u.count
        while i < n {
            let b0 = u[i]
            let v: Int
            if b0 < 0x80 {
                v = Int(b0)
                i += 1
            } else if b0 & 0xE0 == 0xC0, b0 >= 0xC2, i + 1 < n, u[i + 1] & 0xC0 == 0x80 {
                v = Int(b0 & 0x1F) << 6 | Int(u[i + 1] & 0x3F)
                i += 2
            } else {
                return false
            }
            guard v < table.count else { return false }
            let b = table[v]
            guard b >= 0 else { return false }
            out.append(UInt8(truncatingIfNeeded: b))
        }
        return true
    }

    /// The byte-level token string for raw bytes.
    static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(Unicode.Scalar(byteToScalar[Int(b)]) ?? "?") }
        return String(s)
    }
}
