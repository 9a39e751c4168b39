import QwenFormats
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Sampling settings. Defaults follow llama.cpp's; temperature ≤ 0 means greedy (argmax).
public struct SamplingParams: Sendable {
    public var temperature: Float = 0.8
    /// Keep the k most likely tokens (0 = all).
    public var topK = 40
    /// Keep the smallest set of tokens whose probability reaches p (1 = all).
    public var topP: Float = 0.95
    /// Drop tokens less likely than min_p times the most likely one (0 = off).
    public var minP: Float = 0.05
    /// Penalty for tokens among the last `penaltyLastN` of the context (1 = off), as llama.cpp and
    /// transformers apply it: positive logits divided, negative multiplied.
    public var repeatPenalty: Float = 1.0
    /// OpenAI-style penalties over the same window: logit -= frequency · count + presence · (count > 0).
    public var presencePenalty: Float = 0
    public var frequencyPenalty: Float = 0
    public var penaltyLastN = 64
    /// Locally typical sampling: keep the tokens whose surprise is closest to the entropy until their
    /// probability reaches p (1 = off).
    public var typicalP: Float = 1
    /// RNG seed; `randomSeed` picks one from the system.
    public var seed: UInt64 = SamplingParams.randomSeed

    public static let randomSeed = UInt64.max

    public init() {}

    public static var greedy: SamplingParams {
        var p = SamplingParams()
        p.temperature = 0
        return p
    }

    func validate() throws {
        guard [temperature, topP, minP, repeatPenalty, presencePenalty, frequencyPenalty, typicalP].allSatisfy(\.isFinite) else {
            throw QwenError.invalidArgument("sampling parameters must be finite numbers")
        }
        guard topK >= 0, topP >= 0, topP <= 1, minP >= 0, minP <= 1, repeatPenalty > 0, penaltyLastN >= 0,
              typicalP > 0, typicalP <= 1 else {
            throw QwenError.invalidArgument(
                "sampling parameters out of range (top_k >= 0, 0 <= top_p <= 1, 0 <= min_p <= 1, repeat_penalty > 0, 0 < typical_p <= 1)")
        }
    }
}

/// xoshiro256** seeded through splitmix64: small, fast, reproducible across platforms.
struct RandomGenerator {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    init(seed: UInt64) {
        var x = seed
        func next() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (next(), next(), next(), next())
    }

    mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = s.3 << 45 | s.3 >> 19
        return result
    }

    /// Uniform in [0, 1).
    mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1p-53 }

    static func systemSeed() -> UInt64 {
        var seed: UInt64 = 0
        let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            _ = read(fd, &seed, 8)
            close(fd)
        }
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return seed ^ UInt64(ts.tv_nsec) ^ UInt64(ts.tv_sec) << 32
    }
}

/// Picks the next token from logits. Order as in transformers: repetition, presence and frequency
/// penalties, temperature, top-k, top-p, min-p, typical-p, then a draw. Buffers are allocated once, for
/// the vocabulary size.
final class Sampler {
    private var rng: RandomGenerator
    private let params: SamplingParams
    private var candidates: [(id: Int32, value: Float)]
    private var logits: [Float]
    /// Occurrences of each token in the penalty window (reset after use), and which entries are set.
    private var counts: [Int32]
    private var counted: [Int32] = []

    init(params: SamplingParams, vocabularySize: Int) {
        self.params = params
        rng = RandomGenerator(seed: params.seed == SamplingParams.randomSeed ? RandomGenerator.systemSeed() : params.seed)
        candidates = []
        candidates.reserveCapacity(vocabularySize)
        logits = [Float](repeating: 0, count: vocabularySize)
        counts = [Int32](repeating: 0, count: vocabularySize)
        counted.reserveCapacity(params.penaltyLastN)
    }

    func sample(_ input: UnsafePointer<Float>, count n: Int, history: ArraySlice<Int32>) -> Int32 {
        for i in 0 ..< n { logits[i] = input[i] }
        if params.repeatPenalty != 1 || params.presencePenalty != 0 || params.frequencyPenalty != 0 {
            for t in history.suffix(params.penaltyLastN) where t >= 0 && Int(t) < n {
                if counts[Int(t)] == 0 { counted.append(t) }
                counts[Int(t)] += 1
            }
            for t in counted {
                let i = Int(t)
                var v = logits[i]
                if params.repeatPenalty != 1 { v = v > 0 ? v / params.repeatPenalty : v * params.repeatPenalty }
                v -= params.frequencyPenalty * Float(counts[i]) + params.presencePenalty
                logits[i] = v
                counts[i] = 0
            }
            counted.removeAll(keepingCapacity: true)
        }
        if params.temperature <= 0 { return argmax(n) }

        collectCandidates(n)
        if candidates.isEmpty { return argmax(n) }
        // probabilities of what is left
        let top = candidates[0].value
        var sum: Double = 0
        for i in candidates.indices {
            let p = Float(exp(Double(candidates[i].value - top)))
            candidates[i].value = p
            sum += Double(p)
        }
        for i in candidates.indices { candidates[i].value = Float(Double(candidates[i].value) / sum) }
        if params.topP < 1 {
            var cumulative: Float = 0
            var keep = candidates.count
            for i in candidates.indices {
                cumulative += candidates[i].value
                if cumulative >= params.topP {
                    keep = i + 1
                    break
                }
            }
            candidates.removeLast(candidates.count - keep)
        }
        if params.minP > 0 {
            let threshold = candidates[0].value * params.minP
            var keep = candidates.count
            while keep > 1, candidates[keep - 1].value < threshold { keep -= 1 }
            candidates.removeLast(candidates.count - keep)
        }
        if params.typicalP < 1 { keepTypical() }
        var total: Double = 0
        for c in candidates { total += Double(c.value) }
        var r = rng.nextUnit() * total
        for c in candidates {
            r -= Double(c.value)
            if r < 0 { return c.id }
        }
        return candidates[candidates.count - 1].id
    }

    /// Typical sampling over the current candidates (probabilities, best first): order by |surprise - entropy|,
    /// keep the shortest such prefix whose mass reaches typical-p (at least one token), as transformers does.
    private func keepTypical() {
        var total: Double = 0
        for c in candidates { total += Double(c.value) }
        var entropy: Double = 0
        for c in candidates where c.value > 0 {
            let p = Double(c.value) / total
            entropy -= p * log(p)
        }
        candidates.sort { a, b in
            let sa = a.value > 0 ? abs(-log(Double(a.value) / total) - entropy) : .infinity
            let sb = b.value > 0 ? abs(-log(Double(b.value) / total) - entropy) : .infinity
            return sa < sb
        }
        var cumulative: Double = 0
        var keep = candidates.count
        for i in candidates.indices {
            cumulative += Double(candidates[i].value) / total
            if cumulative >= Double(params.typicalP) {
                keep = i + 1
                break
            }
        }
        candidates.removeLast(candidates.count - max(1, keep))
    }

    /// Fills `candidates` with the top-k (or all) tokens by scaled logit, best first. Top-k keeps a
    /// min-heap of k entries, so a 150k vocabulary costs one comparison per token, not a full sort.
    private func collectCandidates(_ n: Int) {
        candidates.removeAll(keepingCapacity: true)
        let inverseTemperature = 1 / params.temperature
        let k = params.topK > 0 ? min(params.topK, n) : n
        if k == n {
            for i in 0 ..< n where !logits[i].isNaN { candidates.append((Int32(i), logits[i] * inverseTemperature)) }
            candidates.sort { $0.value > $1.value }
            return
        }
        for i in 0 ..< n {
            let v = logits[i] * inverseTemperature
            if v.isNaN { continue }
            if candidates.count < k {
                candidates.append((Int32(i), v))
                siftUp(candidates.count - 1)
            } else if v > candidates[0].value {
                candidates[0] = (Int32(i), v)
                siftDown(0)
            }
        }
        candidates.sort { $0.value > $1.value }
    }

    private func siftUp(_ start: Int) {
        var i = start
        while i > 0 {
            let parent = (i - 1) / 2
            guard candidates[i].value < candidates[parent].value else { return }
            candidates.swapAt(i, parent)
            i = parent
        }
    }

    private func siftDown(_ start: Int) {
        var i = start
        let count = candidates.count
        while true {
            let l = 2 * i + 1, r = l + 1
            var smallest = i
            if l < count, candidates[l].value < candidates[smallest].value { smallest = l }
            if r < count, candidates[r].value < candidates[smallest].value { smallest = r }
            if smallest == i { return }
            candidates.swapAt(i, smallest)
            i = smallest
        }
    }

    private func argmax(_ n: Int) -> Int32 {
        var best = 0
        for i in 1 ..< n where logits[i] > logits[best] { best = i }
        return Int32(best)
    }
}
