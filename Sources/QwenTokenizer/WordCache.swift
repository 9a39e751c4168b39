#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A cache of BPE results per pre-token (the same words recur constantly), shared by all threads.
///
/// Direct-mapped and fixed-size (16384 slots of 136 bytes, 2.2 MB): a word of at most 64 bytes whose result
/// has at most 16 ids is stored inline in its slot, replacing whatever was there. Slots are grouped into
/// stripes, each behind its own mutex, so concurrent encoders rarely contend; a lookup costs a hash, a lock
/// and a compare of 8 words.
final class WordCache: @unchecked Sendable {
    static let maxWordBytes = 64
    static let maxIDs = 16
    static let slotCount = 1 << 14
    static let stripeCount = 64
    /// Slot layout in UInt64 words: 8 key words (the word, zero-padded), 1 meta word (key length |
    /// id count << 8 | valid << 16), 8 words of ids (16 × UInt32).
    static let slotWords = 17

    typealias Key = (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)
    private let slots: UnsafeMutablePointer<UInt64>
    private let locks: UnsafeMutablePointer<pthread_mutex_t>
    let enabled: Bool

    init(enabled: Bool = true) {
        self.enabled = enabled
        slots = .allocate(capacity: enabled ? Self.slotCount * Self.slotWords : 1)
        slots.initialize(repeating: 0, count: enabled ? Self.slotCount * Self.slotWords : 1)
        locks = .allocate(capacity: Self.stripeCount)
        for i in 0 ..< Self.stripeCount { pthread_mutex_init(locks + i, nil) }
    }

    deinit {
        for i in 0 ..< Self.stripeCount { pthread_mutex_destroy(locks + i) }
        locks.deallocate()
        slots.deallocate()
    }

    /// The word as 8 zero-padded words.
    @inline(__always)
    private static func key(_ word: UnsafeBufferPointer<UInt8>) -> Key {
        var k: Key = (0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &k) { raw in
            raw.copyMemory(from: UnsafeRawBufferPointer(word))
        }
        return k
    }

    @inline(__always)
    private static func slotIndex(_ k: Key, _ n: Int) -> Int {
        var h = k.0 &* 0x9E37_79B9_7F4A_7C15
        h = (h ^ (h >> 29) ^ k.1) &* 0xBF58_476D_1CE4_E5B9
        h = (h ^ (h >> 31) ^ k.2 ^ (k.3 &* 31) ^ (k.4 &* 131) ^ (k.5 &* 257) ^ (k.6 &* 1031) ^ (k.7 &* 4099) ^ UInt64(n)) &* 0x94D0_49BB_1331_11EB
        return Int(truncatingIfNeeded: h >> 50) & (slotCount - 1)
    }

    /// Appends the cached ids of `word` (at most `maxWordBytes` long) to `out`; false on a miss.
    @inline(__always)
    func lookup(_ word: UnsafeBufferPointer<UInt8>, into out: inout [Int32]) -> Bool {
        guard enabled, word.count <= Self.maxWordBytes else { return false }
        let k = Self.key(word)
        let i = Self.slotIndex(k, word.count)
        let p = slots + i * Self.slotWords
        let lock = locks + (i & (Self.stripeCount - 1))
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        let meta = p[8]
        guard meta & 0x1_0000 != 0, Int(meta & 0xFF) == word.count,
              p[0] == k.0, p[1] == k.1, p[2] == k.2, p[3] == k.3,
              p[4] == k.4, p[5] == k.5, p[6] == k.6, p[7] == k.7 else { return false }
        let n = Int((meta >> 8) & 0xFF)
        for j in 0 ..< n {
            let w = p[9 + j >> 1]
            out.append(Int32(truncatingIfNeeded: j & 1 == 0 ? w : w >> 32))
        }
        return true
    }

    @inline(__always)
    func insert(_ word: UnsafeBufferPointer<UInt8>, ids: ArraySlice<Int32>) {
        guard enabled, word.count <= Self.maxWordBytes, ids.count <= Self.maxIDs else { return }
        let k = Self.key(word)
        let i = Self.slotIndex(k, word.count)
        let p = slots + i * Self.slotWords
        let lock = locks + (i & (Self.stripeCount - 1))
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        p[0] = k.0; p[1] = k.1; p[2] = k.2; p[3] = k.3; p[4] = k.4; p[5] = k.5; p[6] = k.6; p[7] = k.7
        p[8] = UInt64(word.count) | UInt64(ids.count) << 8 | 0x1_0000
        var j = 0
        for w in 9 ..< 17 { p[w] = 0 }
        for id in ids {
            p[9 + j >> 1] |= UInt64(UInt32(bitPattern: id)) << (j & 1 == 0 ? 0 : 32)
            j += 1
        }
    }
}
