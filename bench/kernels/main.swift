// kernel-bench: best-of-N timing of `linear` for one weight type and shape (a developer tool;
// whole-model speed is measured by samples/qwen-bench and bench/).
//   swift run -c release kernel-bench TYPE ROWS COLS TOKENS [THREADS] [portable|simd] [REPS] [pack|nopack] [COPIES]
// Prints the best and the mean rep. One-token runs cycle through copies of the matrix (256 MiB, as decode reads from
// DRAM); COPIES=1 keeps one matrix hot in cache instead, which measures the kernel's arithmetic throughput.
//   swift run -c release kernel-bench attention ROWS HEADS HEAD_DIM [THREADS] [REPS]   (encoder attention, one span)
//   swift run -c release kernel-bench wall TYPE ROWS COLS [THREADS] [PAIRS]
// `wall` asks whether the one-token kernel streams at the memory wall, in a way this VM's bandwidth drift cannot
// blur as much: packed copies of the matrix (512 MiB in all) are swept by the kernel (back to back, as decode runs
// its products) and, in the pass right before or after, by a plain read of the same bytes with the same split over
// threads; it prints each pair's two rates and the median of the pairs' ratios (PAIRS, default 15).
import QwenFormats
import QwenTensors
#if canImport(Glibc)
import Glibc
#endif

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// CPU time of this thread: less disturbed than wall time when other work shares the machine.
func cpuNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

let args = CommandLine.arguments
if args.count >= 5, args[1] == "attention", let rows = Int(args[2]), let heads = Int(args[3]), let d = Int(args[4]) {
    let threads = args.count > 5 ? Int(args[5]) ?? 1 : 1, reps = args.count > 6 ? Int(args[6]) ?? 5 : 5
    let n = rows * heads * d
    let q = try AlignedBuffer<Float>(count: n), k = try AlignedBuffer<Float>(count: n), v = try AlignedBuffer<Float>(count: n)
    let out = try AlignedBuffer<Float>(count: n)
    for i in 0 ..< n { q.pointer[i] = Float(i % 7) * 0.1; k.pointer[i] = Float(i % 5) * 0.1; v.pointer[i] = Float(i % 3) }
    let pool = threads > 1 ? ThreadPool(threads: threads) : nil
    var best = Double.infinity
    for _ in 0 ..< reps {
        let t0 = now()
        try Attention.bidirectionalBlocked(queries: q.pointer, keys: k.pointer, values: v.pointer, rows: rows, heads: heads,
                                           kvHeads: heads, headDim: d, spans: [AttentionSpan(0 ..< rows)], roundToF16: true,
                                           output: out.pointer, pool: pool)
        best = min(best, now() - t0)
    }
    let flops = 4 * Double(rows) * Double(rows) * Double(d) * Double(heads)
    print("attention rows \(rows) heads \(heads) d \(d) threads \(threads): \(best * 1e3) ms, \(flops / best / 1e9) GFLOP/s")
    exit(0)
}
var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
func nextRandom() -> UInt64 { seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17; return seed }

/// Random bytes made into sane weights of `type`: every F16/BF16 value 0.01, every block scale 0.001.
func fillSane(_ type: TensorType, _ weights: AlignedBuffer<UInt8>) {
    for i in 0 ..< weights.count { weights.pointer[i] = UInt8(truncatingIfNeeded: nextRandom()) }
    let p = weights.raw
    switch type {
    case .f32: for i in 0 ..< weights.count / 4 { p.storeBytes(of: Float(Int(nextRandom() % 2001) - 1000) / 1000, toByteOffset: i * 4, as: Float.self) }
    case .f16, .bf16: for i in 0 ..< weights.count / 2 { p.storeBytes(of: type == .f16 ? floatToF16(0.01) : floatToBF16(0.01), toByteOffset: i * 2, as: UInt16.self) }
    default:
        for b in 0 ..< weights.count / type.blockBytes where type.blockBytes >= 18 {
            p.storeBytes(of: floatToF16(0.001), toByteOffset: b * type.blockBytes, as: UInt16.self)
        }
    }
}

/// Sum of the 64-bit words of `bytes` bytes (a multiple of 128) at p: a read with next to no arithmetic, as bench/membw.c.
func plainRead(_ p: UnsafeRawPointer, _ bytes: Int) -> UInt64 {
    var a = SIMD8<UInt64>(), b = SIMD8<UInt64>()
    var i = 0
    while i + 128 <= bytes {
        a &+= p.loadUnaligned(fromByteOffset: i, as: SIMD8<UInt64>.self)
        b &+= p.loadUnaligned(fromByteOffset: i + 64, as: SIMD8<UInt64>.self)
        i += 128
    }
    return (a &+ b).wrappedSum()
}

if args.count >= 5, args[1] == "wall", let type = TensorType.allCases.first(where: { $0.name.lowercased() == args[2].lowercased() }),
   let rows = Int(args[3]), let cols = Int(args[4]) {
    let threads = args.count > 5 ? Int(args[5]) ?? 1 : 1, pairs = args.count > 6 ? Int(args[6]) ?? 15 : 15
    guard PackedWeights.isAvailable, PackedWeights.canPack(type), let rowBytes = type.byteCount(elements: cols) else {
        print("wall: \(type.name) is not packed on this machine"); exit(2)
    }
    // one source matrix of sane blocks, packed many times into the arena
    let source = try AlignedBuffer<UInt8>(count: rows * rowBytes)
    fillSane(type, source)
    let arena = PackingArena()
    let first = try WeightMatrix(TensorData(name: "w", type: type, shape: [rows, cols], data: source.raw, byteCount: source.count),
                                 pack: true, arena: arena)
    let packedCount = first.packed!.packedBytes.count
    let copies = max(1, (512 << 20) / packedCount)
    let matrices = try [first] + (1 ..< copies).map { _ in
        try WeightMatrix(TensorData(name: "w", type: type, shape: [rows, cols], data: source.raw, byteCount: source.count), pack: true, arena: arena)
    }
    let packed = matrices.map { $0.packed! }
    let x = try AlignedBuffer<Float>(count: cols), y = try AlignedBuffer<Float>(count: rows)
    for i in 0 ..< cols { x.pointer[i] = Float(i % 17) * 0.1 - 0.8 }
    let scratch = try AlignedBuffer<UInt8>(count: first.scratchBytes(tokens: 1) + 64)
    let pool = threads > 1 ? ThreadPool(threads: threads) : nil
    var sink: UInt64 = 0
    func read(_ p: PackedWeights) {
        let bytes = p.packedBytes, share = (bytes.count / threads) & ~127
        if let pool {
            pool.parallelFor(threads) { t, _ in
                let n = t == threads - 1 ? (bytes.count - t * share) & ~127 : share
                if plainRead(bytes.baseAddress! + t * share, n) == 42 { print("") }
            }
        } else {
            sink &+= plainRead(bytes.baseAddress!, bytes.count & ~127)
        }
    }
    /// One pass over all copies, by the kernel or by the plain read. Returns GB/s.
    func pass(kernel: Bool) -> Double {
        let t0 = now()
        for (m, p) in zip(matrices, packed) {
            if kernel {
                linear(m, input: x.pointer, tokens: 1, output: y.pointer, scratch: scratch.rawBuffer, pool: pool, path: .simd)
            } else {
                read(p)
            }
        }
        return Double(copies * packedCount) / (now() - t0) / 1e9
    }
    _ = pass(kernel: true); _ = pass(kernel: false)  // warm-up: first-use work and page faults
    var ratios: [Double] = [], kernelRates: [Double] = [], readRates: [Double] = []
    for i in 0 ..< pairs {
        // pairs alternate which pass goes first, so a steady drift does not favour one side
        let first = pass(kernel: i % 2 == 0), second = pass(kernel: i % 2 != 0)
        let (k, r) = i % 2 == 0 ? (first, second) : (second, first)
        kernelRates.append(k); readRates.append(r); ratios.append(k / r)
    }
    func median(_ v: [Double]) -> Double { let s = v.sorted(); return s[s.count / 2] }
    func f(_ v: Double) -> String { String((v * 10).rounded() / 10) }
    print("wall \(type.name) \(rows)x\(cols) threads \(threads): \(copies) copies, \((packedCount * copies) >> 20) MiB; pairs (kernel / read GB/s): "
          + zip(kernelRates, readRates).map { "\(f($0)) / \(f($1))" }.joined(separator: ", "))
    print("wall \(type.name) \(rows)x\(cols) threads \(threads): kernel \(f(median(kernelRates))) GB/s, read \(f(median(readRates))) GB/s, "
          + "median ratio \(Int((median(ratios) * 100).rounded()))% (min \(Int((ratios.min()! * 100).rounded()))%, max \(Int((ratios.max()! * 100).rounded()))%)\(sink == 42 ? " " : "")")
    exit(0)
}
guard args.count >= 5, let type = TensorType.allCases.first(where: { $0.name.lowercased() == args[1].lowercased() }),
      let rows = Int(args[2]), let cols = Int(args[3]), let tokens = Int(args[4]) else {
    print("usage: kernel-bench TYPE ROWS COLS TOKENS [THREADS] [portable|simd] [REPS] [pack|nopack] [COPIES]")
    exit(2)
}
let threads = args.count > 5 ? Int(args[5]) ?? 1 : 1
let path: KernelPath = args.count > 6 && args[6] == "portable" ? .portable : .simd
let reps = args.count > 7 ? Int(args[7]) ?? 20 : 20

// random blocks with small positive/negative scales; several copies so decode reads from DRAM
let rowBytes = type.byteCount(elements: cols)!
let matrixBytes = rows * rowBytes
let copies = args.count > 9 ? max(1, Int(args[9]) ?? 1) : max(1, min(64, (256 << 20) / max(matrixBytes, 1)))
let copiesToUse = tokens == 1 ? copies : 1
let weights = try AlignedBuffer<UInt8>(count: matrixBytes * copiesToUse)
fillSane(type, weights)
let x = try AlignedBuffer<Float>(count: tokens * cols)
for i in 0 ..< x.count { x.pointer[i] = Float(Int(nextRandom() % 2001) - 1000) / 1000 }
let y = try AlignedBuffer<Float>(count: tokens * rows)
let pack = !(args.count > 8 && args[8] == "nopack")
let packStart = cpuNow()
let arena = PackingArena()  // as a model packs: consecutive slices of huge-page mappings
let matrices = try (0 ..< copiesToUse).map {
    try WeightMatrix(TensorData(name: "w", type: type, shape: [rows, cols], data: weights.raw + $0 * matrixBytes, byteCount: matrixBytes),
                     pack: pack, arena: arena)
}
let probe = matrices[0]
if pack, matrices.allSatisfy({ $0.packed != nil }) {  // every copy packed now, not in the first timed rep that uses it
    let dt = cpuNow() - packStart
    print("packing \(copiesToUse) x \(matrixBytes >> 10) KiB: \(Int(dt * 1e3)) ms CPU, \(Int(Double(copiesToUse * matrixBytes) / dt / 1e6)) MB/s")
}
let scratch = try AlignedBuffer<UInt8>(count: probe.scratchBytes(tokens: tokens) + 64)
let pool = threads > 1 ? ThreadPool(threads: threads) : nil

var best = Double.infinity, total = 0.0
for rep in 0 ..< reps + 1 {
    let m = matrices[rep % copiesToUse]
    let t0 = now()
    linear(m, input: x.pointer, tokens: tokens, output: y.pointer, scratch: scratch.rawBuffer, pool: pool, path: path)
    let dt = now() - t0
    if rep > 0 { best = min(best, dt); total += dt }
}
let mean = total / Double(reps)
let macs = Double(rows) * Double(cols) * Double(tokens)
print("\(type.name) \(rows)x\(cols) tokens \(tokens) threads \(threads) \(path): best \(String(Int(best * 1e6))) us, "
      + "\(Int(macs / best / 1e9 * 10) / 10) GMAC/s, \(Int(Double(matrixBytes) / best / 1e9 * 10) / 10) GB/s of weights; "
      + "mean \(String(Int(mean * 1e6))) us, \(Int(Double(matrixBytes) / mean / 1e9 * 10) / 10) GB/s")
