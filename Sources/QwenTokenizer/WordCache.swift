#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A bounded cache of BPE results per pre-token (the same words recur constantly in text), shared by
/// all threads: the key space is split over shards, each a dictionary behind its own mutex, so
/// concurrent encoders rarely contend. A full shard is cleared (cheap, and it adapts to new text).
final class WordCache: @unchecked Sendable {
    static let maxWordBytes = 64
    static let shardCount = 32
    static let shardCapacity = 2048

    private struct Shard {
        var map: [[UInt8]: [Int32]] = [:]
    }

    private let locks: UnsafeMutablePointer<pthread_mutex_t>
    private var shards: [Shard]
    let enabled: Bool

    init(enabled: Bool = true) {
        self.enabled = enabled
        locks = .allocate(capacity: Self.shardCount)
        for i in 0 ..< Self.shardCount { pthread_mutex_init(locks + i, nil) }
        shards = [Shard](repeating: Shard(), count: Self.shardCount)
    }

    deinit {
        for i in 0 ..< Self.shardCount { pthread_mutex_destroy(locks + i) }
        locks.deallocate()
    }

    @inline(__always)
    private func shardIndex(_ word: UnsafeBufferPointer<UInt8>) -> Int {
        // FNV-1a over at most the first 16 bytes and the length
        var h: UInt32 = 2_166_136_261 ^ UInt32(word.count)
        for b in word.prefix(16) { h = (h ^ UInt32(b)) &* 16_777_619 }
        return Int(h >> 16) & (Self.shardCount - 1)
    }

    /// Appends the cached ids of `word` to `out`; false on a miss.
    func lookup(_ word: UnsafeBufferPointer<UInt8>, into out: inout [Int32]) -> Bool {
        guard enabled else { return false }
        let s = shardIndex(word)
        let key = Array(word)
        pthread_mutex_lock(locks + s)
        defer { pthread_mutex_unlock(locks + s) }
        return shards.withUnsafeMutableBufferPointer { shards in
            guard let ids = shards[s].map[key] else { return false }
            out.append(contentsOf: ids)
            return true
        }
    }

    func insert(_ word: UnsafeBufferPointer<UInt8>, ids: ArraySlice<Int32>) {
        guard enabled else { return }
        let s = shardIndex(word)
        let key = Array(word)
        let value = Array(ids)
        pthread_mutex_lock(locks + s)
        defer { pthread_mutex_unlock(locks + s) }
        shards.withUnsafeMutableBufferPointer { shards in
            if shards[s].map.count >= Self.shardCapacity { shards[s].map.removeAll(keepingCapacity: true) }
            shards[s].map[key] = value
        }
    }
}
