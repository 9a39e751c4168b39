/// Raw bytes -> token id for the BPE vocabulary: open addressing over ids whose bytes live in the
/// tokenizer's piece storage. (Swift `String` keys would hash and compare through Unicode normalization,
/// which made loading several times slower.)
struct TokenIndex {
    private var slots: [Int32]   // token id, -1 when empty
    private var hashes: [UInt32]
    private let mask: Int

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [Int32](repeating: -1, count: size)
        hashes = [UInt32](repeating: 0, count: size)
        mask = size - 1
    }

    @inline(__always)
    static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325 ^ UInt64(bytes.count)
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h ^ (h >> 29)
    }

    /// The id whose piece equals `bytes`, nil if none.
    func find(_ bytes: UnsafeBufferPointer<UInt8>, pieces: Pieces) -> Int32? {
        let h = Self.hash(bytes)
        let tag = UInt32(truncatingIfNeeded: h >> 32)
        var i = Int(truncatingIfNeeded: h) & mask
        return slots.withUnsafeBufferPointer { slots in
            hashes.withUnsafeBufferPointer { hashes in
                while true {
                    let id = slots[i]
                    if id < 0 { return nil }
                    if hashes[i] == tag, pieces.equals(id, bytes) { return id }
                    i = (i + 1) & mask
                }
            }
        }
    }

    /// Adds `id` (whose piece is already stored in `pieces`); an existing entry with the same bytes is replaced.
    mutating func insert(_ id: Int32, pieces: Pieces) {
        let h = pieces.withPiece(id) { Self.hash($0) }
        let tag = UInt32(truncatingIfNeeded: h >> 32)
        var i = Int(truncatingIfNeeded: h) & mask
        while slots[i] >= 0 {
            if hashes[i] == tag, pieces.withPiece(id, { pieces.equals(slots[i], $0) }) { break }
            i = (i + 1) & mask
        }
        slots[i] = id
        hashes[i] = tag
    }
}

/// The decoded bytes of every token id, in one buffer.
struct Pieces {
    var data: [UInt8] = []
    var offset: [Int32]
    var length: [Int32]

    init(count: Int, reserve: Int) {
        offset = [Int32](repeating: 0, count: count)
        length = [Int32](repeating: 0, count: count)
        data.reserveCapacity(reserve)
    }

    /// Sets the piece of `id` to the bytes appended to `data` since `start`.
    mutating func finish(_ id: Int32, from start: Int) {
        offset[Int(id)] = Int32(start)
        length[Int(id)] = Int32(data.count - start)
    }

    mutating func set(_ id: Int32, _ bytes: [UInt8]) {
        let start = data.count
        data.append(contentsOf: bytes)
        finish(id, from: start)
    }

    @inline(__always)
    func withPiece<R>(_ id: Int32, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        let s = Int(offset[Int(id)]), n = Int(length[Int(id)])
        return data.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[s ..< s + n])) }
    }

    @inline(__always)
    func equals(_ id: Int32, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let n = Int(length[Int(id)])
        guard n == bytes.count else { return false }
        let s = Int(offset[Int(id)])
        return data.withUnsafeBufferPointer { d in
            for k in 0 ..< n where d[s + k] != bytes[k] { return false }
            return true
        }
    }
}
