import CQwen

/// Raw bytes -> token id for the BPE vocabulary: open addressing over ids whose bytes live in the
/// tokenizer's piece storage. (Swift `String` keys would hash and compare through Unicode normalization,
/// which made loading several times slower.) Loading probes it ~600,000 times at random: callers that know
/// their next keys `prefetch` their slots ahead, so the cache misses overlap instead of adding up.
struct TokenIndex {
    /// tag (high 32 bits of the hash) << 32 | id; `empty` when unused.
    private var slots: [UInt64]
    private let mask: Int
    private static let empty = UInt64.max
    /// Whether an insert replaced an id of the same bytes (then only `find` knows which id a piece has).
    private(set) var hasDuplicates = false

    init(capacity: Int) {
        var size = 16
        while size < capacity + capacity / 2 { size <<= 1 }
        slots = [UInt64](repeating: Self.empty, count: size)
        mask = size - 1
    }

    @inline(__always)
    static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325 ^ UInt64(bytes.count)
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h ^ (h >> 29)
    }

    /// Starts loading the slot where a key of hash `h` is looked for.
    @inline(__always)
    func prefetch(hash h: UInt64) {
        slots.withUnsafeBufferPointer { cq_prefetch($0.baseAddress! + (Int(truncatingIfNeeded: h) & mask)) }
    }

    /// The id whose piece equals `bytes`, nil if none.
    func find(_ bytes: UnsafeBufferPointer<UInt8>, pieces: Pieces) -> Int32? {
        find(bytes, hash: Self.hash(bytes), pieces: pieces)
    }

    /// `find` with the hash of `bytes` already computed.
    func find(_ bytes: UnsafeBufferPointer<UInt8>, hash h: UInt64, pieces: Pieces) -> Int32? {
        let tag = h >> 32
        var i = Int(truncatingIfNeeded: h) & mask
        return slots.withUnsafeBufferPointer { slots in
            while true {
                let v = slots[i]
                if v == Self.empty { return nil }
                if v >> 32 == tag {
                    let id = Int32(truncatingIfNeeded: v)
                    if pieces.equals(id, bytes) { return id }
                }
                i = (i + 1) & mask
            }
        }
    }

    /// Adds `id` (whose piece is already stored in `pieces`); an existing entry with the same bytes is replaced.
    mutating func insert(_ id: Int32, pieces: Pieces) {
        insert(id, hash: pieces.withPiece(id) { Self.hash($0) }, pieces: pieces)
    }

    /// `insert` with the hash of the piece already computed.
    mutating func insert(_ id: Int32, hash h: UInt64, pieces: Pieces) {
        let tag = h >> 32
        var i = Int(truncatingIfNeeded: h) & mask
        while slots[i] != Self.empty {
            let v = slots[i]
            if v >> 32 == tag, pieces.withPiece(id, { pieces.equals(Int32(truncatingIfNeeded: v), $0) }) {
                hasDuplicates = true
                break
            }
            i = (i + 1) & mask
        }
        slots[i] = tag << 32 | UInt64(UInt32(bitPattern: id))
    }
}

/// The decoded bytes of every token id, in one buffer.
struct Pieces {
    var data: [UInt8] = []
    /// offset << 32 | length of each id's bytes in `data`.
    var spans: [UInt64]

    init(count: Int, reserve: Int) {
        spans = [UInt64](repeating: 0, count: count)
        data.reserveCapacity(reserve)
    }

    /// Sets the piece of `id` to the bytes appended to `data` since `start`.
    mutating func finish(_ id: Int32, from start: Int) {
        spans[Int(id)] = UInt64(start) << 32 | UInt64(data.count - start)
    }

    @inline(__always) func offset(_ id: Int32) -> Int { Int(truncatingIfNeeded: spans[Int(id)] >> 32) }
    @inline(__always) func length(_ id: Int32) -> Int { Int(truncatingIfNeeded: spans[Int(id)] & 0xFFFF_FFFF) }

    mutating func set(_ id: Int32, _ bytes: [UInt8]) {
        let start = data.count
        data.append(contentsOf: bytes)
        finish(id, from: start)
    }

    @inline(__always)
    func withPiece<R>(_ id: Int32, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        let s = offset(id), n = length(id)
        return data.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[s ..< s + n])) }
    }

    @inline(__always)
    func equals(_ id: Int32, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let n = length(id)
        guard n == bytes.count else { return false }
        let s = offset(id)
        return data.withUnsafeBufferPointer { d in
            for k in 0 ..< n where d[s + k] != bytes[k] { return false }
            return true
        }
    }
}
