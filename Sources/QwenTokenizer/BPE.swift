/// Byte-level BPE over raw bytes: every vocabulary token is kept as the bytes it stands for, a word starts
/// as its single-byte tokens, and pairs merge by rank exactly as Hugging Face `tokenizers` does
/// (lowest rank first, leftmost first among equal ranks).
///
/// The merge table is an open-addressing hash with one 64-bit word per pair: left id (20 bits), right id
/// (20 bits), rank (22 bits); the merged id comes from a rank-indexed array. (Keeping each probe to one
/// word halves the cache misses that dominate BPE time.) Short words use a linear scan over adjacent pair
/// ranks; long words (a paragraph of Chinese is one pre-token) use a priority queue over a linked list of
/// symbols, O(n log n).
final class BPEModel: @unchecked Sendable {
    /// Token id of each single byte, -1 when the vocabulary lacks it.
    let byteIDs: [Int32]
    /// Id emitted for a byte without a token (Hugging Face `unk_token`), and whether runs of them fuse.
    let unknownID: Int32?
    let fuseUnknown: Bool

    static let idBits: UInt64 = 20
    static let rankBits: UInt64 = 22
    static let maxIDs = 1 << 20
    static let maxMerges = (1 << 22) - 1
    static let empty = UInt64.max
    /// "No merge" rank.
    static let none = UInt32.max
    /// Words up to this many bytes take the quadratic path.
    static let smallWord = 48

    private let slots: UnsafeMutablePointer<UInt64>
    private let results: UnsafeMutablePointer<UInt32>  // rank -> merged id
    private let mask: Int
    private let shift: UInt64
    let mergeCount: Int
    /// When merged ids increase strictly with rank (true of Qwen and most byte-level BPEs: token 256 + i
    /// is the result of merge i), the slots store the merged id as the priority and `results` is not read.
    let priorityIsID: Bool

    /// `merges` are (left id, right id, merged id) in rank order, ids < `maxIDs`, at most `maxMerges` of
    /// them; entries with left id UInt32.max only hold their rank. With `keepFirst`, a pair listed twice
    /// keeps its first rank (llama.cpp), otherwise the last (Hugging Face builds a map from the list).
    init(byteIDs: [Int32], merges: [(UInt32, UInt32, UInt32)], keepFirst: Bool,
         unknownID: Int32?, fuseUnknown: Bool)
    {
        self.byteIDs = byteIDs
        self.unknownID = unknownID
        self.fuseUnknown = fuseUnknown
        var capacity = 16
        while capacity < merges.count + merges.count / 2 { capacity <<= 1 }
        var bits: UInt64 = 0
        while (1 << bits) < capacity { bits += 1 }
        mask = capacity - 1
        shift = 64 - bits
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: Self.empty, count: capacity)
        results = .allocate(capacity: max(merges.count, 1))
        var count = 0
        let (mask, shift, slots) = (mask, shift, slots)
        let rankMask: UInt64 = (1 << Self.rankBits) - 1
        func usable(_ m: (UInt32, UInt32, UInt32)) -> Bool {
            m.0 != UInt32.max && Int(m.0) < Self.maxIDs && Int(m.1) < Self.maxIDs && Int(m.2) < Self.maxIDs
        }
        var increasing = merges.count < Self.maxMerges
        var last: Int64 = -1
        for m in merges where usable(m) {
            if Int64(m.2) <= last { increasing = false; break }
            last = Int64(m.2)
        }
        priorityIsID = increasing
        for (rank, m) in merges.enumerated() {
            results[rank] = m.2
            guard usable(m), rank < Self.maxMerges else { continue }
            let pair = UInt64(m.0) << Self.idBits | UInt64(m.1)
            var i = Self.slot(pair, shift)
            while slots[i] != Self.empty && slots[i] >> Self.rankBits != pair { i = (i + 1) & mask }
            if slots[i] != Self.empty {
                if keepFirst { continue }
            } else {
                count += 1
            }
            slots[i] = pair << Self.rankBits | (UInt64(increasing ? Int(m.2) : rank) & rankMask)
        }
        mergeCount = count
    }

    deinit {
        slots.deallocate()
        results.deallocate()
    }

    @inline(__always)
    private static func slot(_ pair: UInt64, _ shift: UInt64) -> Int {
        Int(truncatingIfNeeded: (pair &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// The priority of a pair (its rank, or its merged id when those order the same way), `none` if it
    /// does not merge.
    @inline(__always)
    func rank(_ a: UInt32, _ b: UInt32) -> UInt32 {
        let pair = UInt64(a) << Self.idBits | UInt64(b)
        var i = Self.slot(pair, shift)
        while true {
            let v = slots[i]
            if v >> Self.rankBits == pair { return UInt32(truncatingIfNeeded: v & ((1 << Self.rankBits) - 1)) }
            if v == Self.empty { return Self.none }
            i = (i + 1) & mask
        }
    }

    @inline(__always)
    func merged(_ priority: UInt32) -> UInt32 { priorityIsID ? priority : results[Int(priority)] }

    /// Appends the ids of one pre-token (raw bytes) to `out`.
    func encode(_ word: UnsafeBufferPointer<UInt8>, into out: inout [Int32], scratch: inout BPEScratch) {
        let n = word.count
        if n == 0 { return }
        if n == 1 {
            let id = byteIDs[Int(word[0])]
            if id >= 0 { out.append(id) } else if let unk = unknownID { out.append(unk) }
            return
        }
        // initial symbols: one per byte
        scratch.ids.removeAll(keepingCapacity: true)
        var lastWasUnknown = false
        for b in word {
            let id = byteIDs[Int(b)]
            if id >= 0 {
                scratch.ids.append(UInt32(id))
                lastWasUnknown = false
            } else if let unk = unknownID {
                if !(fuseUnknown && lastWasUnknown) { scratch.ids.append(UInt32(unk)) }
                lastWasUnknown = true
            }
        }
        if scratch.ids.count <= Self.smallWord {
            encodeSmall(into: &out, scratch: &scratch)
        } else {
            encodeLarge(into: &out, scratch: &scratch)
        }
    }

    /// Quadratic path: repeatedly merge the lowest-ranked adjacent pair (leftmost among equals).
    private func encodeSmall(into out: inout [Int32], scratch: inout BPEScratch) {
        var m = scratch.ids.count
        if m == 0 { return }
        scratch.ids.withUnsafeMutableBufferPointer { ids in
            withUnsafeTemporaryAllocation(of: UInt32.self, capacity: max(m, 1)) { ranks in
                for i in 0 ..< m - 1 { ranks[i] = rank(ids[i], ids[i + 1]) }
                while m > 1 {
                    var best = ranks[0]
                    var at = 0
                    var i = 1
                    while i < m - 1 {
                        if ranks[i] < best { best = ranks[i]; at = i }
                        i += 1
                    }
                    if best == Self.none { break }
                    ids[at] = merged(best)
                    // drop symbol at+1 and pair at+1 (pair `at` is recomputed below)
                    var j = at + 1
                    while j < m - 1 { ids[j] = ids[j + 1]; j += 1 }
                    j = at
                    while j < m - 2 { ranks[j] = ranks[j + 1]; j += 1 }
                    m -= 1
                    if at > 0 { ranks[at - 1] = rank(ids[at - 1], ids[at]) }
                    if at < m - 1 { ranks[at] = rank(ids[at], ids[at + 1]) }
                }
            }
            for i in 0 ..< m { out.append(Int32(bitPattern: ids[i])) }
        }
    }

    /// O(n log n) path: a min-heap of (rank, position) candidates over a doubly linked list of symbols,
    /// stale candidates skipped when popped (the same procedure as `tokenizers`' `Word::merge_all`).
    private func encodeLarge(into out: inout [Int32], scratch: inout BPEScratch) {
        let n = scratch.ids.count
        // every merge pushes at most two candidates: the heap never holds more than 3n entries
        let prev = UnsafeMutablePointer<Int32>.allocate(capacity: n)
        let next = UnsafeMutablePointer<Int32>.allocate(capacity: n)
        let heap = UnsafeMutablePointer<UInt64>.allocate(capacity: 3 * n)
        defer { prev.deallocate(); next.deallocate(); heap.deallocate() }
        for i in 0 ..< n {
            prev[i] = Int32(i - 1)
            next[i] = i + 1 < n ? Int32(i + 1) : -1
        }
        scratch.ids.withUnsafeMutableBufferPointer { ids in
            var h = MinHeap(base: heap)
            for i in 0 ..< n - 1 {
                let r = rank(ids[i], ids[i + 1])
                if r != Self.none { h.append(UInt64(r) << 32 | UInt64(i)) }
            }
            h.heapify()
            let dead = UInt32.max
            while let top = h.pop() {
                let pos = Int(truncatingIfNeeded: top & 0xFFFF_FFFF)
                let r = UInt32(truncatingIfNeeded: top >> 32)
                guard ids[pos] != dead else { continue }
                let nx = Int(next[pos])
                guard nx >= 0 else { continue }
                guard rank(ids[pos], ids[nx]) == r else { continue }
                ids[pos] = merged(r)
                ids[nx] = dead
                let after = next[nx]
                next[pos] = after
                if after >= 0 { prev[Int(after)] = Int32(pos) }
                let before = prev[pos]
                if before >= 0 {
                    let w = rank(ids[Int(before)], ids[pos])
                    if w != Self.none { h.insert(UInt64(w) << 32 | UInt64(before)) }
                }
                if after >= 0 {
                    let w = rank(ids[pos], ids[Int(after)])
                    if w != Self.none { h.insert(UInt64(w) << 32 | UInt64(pos)) }
                }
            }
            var i = 0  // symbol 0 is never merged away (a merge removes the right symbol)
            while i >= 0 {
                out.append(Int32(bitPattern: ids[i]))
                i = Int(next[i])
            }
        }
    }
}

/// Reusable buffers for one encode call.
struct BPEScratch {
    var ids: [UInt32] = []
}

/// A binary min-heap in caller-provided memory (large enough for every insertion).
struct MinHeap {
    let h: UnsafeMutablePointer<UInt64>
    var count = 0

    init(base: UnsafeMutablePointer<UInt64>) { h = base }

    /// Appends without restoring order (call `heapify` before popping).
    @inline(__always) mutating func append(_ v: UInt64) { h[count] = v; count += 1 }

    mutating func heapify() {
        var i = count / 2 - 1
        while i >= 0 { siftDown(i); i -= 1 }
    }

    mutating func insert(_ v: UInt64) {
        var i = count
        count += 1
        while i > 0 {
            let parent = (i - 1) / 2
            if h[parent] <= v { break }
            h[i] = h[parent]
            i = parent
        }
        h[i] = v
    }

    mutating func pop() -> UInt64? {
        if count == 0 { return nil }
        let top = h[0]
        count -= 1
        if count > 0 {
            h[0] = h[count]
            siftDown(0)
        }
        return top
    }

    @inline(__always)
    func siftDown(_ start: Int) {
        var i = start
        let v = h[i]
        while true {
            var c = 2 * i + 1
            if c >= count { break }
            if c + 1 < count, h[c + 1] < h[c] { c += 1 }
            if h[c] >= v { break }
            h[i] = h[c]
            i = c
        }
        h[i] = v
    }
}
