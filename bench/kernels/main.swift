// kernel-bench: best-of-N timing of `linear` for one weight type and shape (a developer tool;
// whole-model speed is measured by samples/qwen-bench and bench/).
//   swift run -c release kernel-bench TYPE ROWS COLS TOKENS [THREADS] [portable|simd] [REPS] [pack|nopack] [COPIES]
// Prints the best and the mean rep. One-token runs cycle through copies of the matrix (256 MiB, as decode reads from
// DRAM); COPIES=1 keeps one matrix hot in cache instead, which measures the kernel's arithmetic throughput.
//   swift run -c release kernel-bench attention ROWS HEADS HEAD_DIM [THREADS] [REPS]   (encoder attention, one span)
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
guard args.count >= 5, let type = TensorType.allCases.first(where: { $0.name.lowercased() == args[1].lowercased() }),
      let rows = Int(args[2]), let cols = Int(args[3]), let tokens = Int(args[4]) else {
    print("usage: kernel-bench TYPE ROWS COLS TOKENS [THREADS] [portable|simd] [REPS] [pack|nopack] [COPIES]")
    exit(2)
}
let threads = args.count > 5 ? Int(args[5]) ?? 1 : 1
let path: KernelPath = args.count > 6 && args[6] == "portable" ? .portable : .simd
let reps = args.count > 7 ? Int(args[7]) ?? 20 : 20

// random blocks with small positive/negative scales; several copies so decode reads from DRAM
var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
func nextRandom() -> UInt64 { seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17; return seed }
let rowBytes = type.byteCount(elements: cols)!
let matrixBytes = rows * rowBytes
let copies = args.count > 9 ? max(1, Int(args[9]) ?? 1) : max(1, min(64, (256 << 20) / max(matrixBytes, 1)))
let copiesToUse = tokens == 1 ? copies : 1
let weights = try AlignedBuffer<UInt8>(count: matrixBytes * copiesToUse)
for i in 0 ..< weights.count { weights.pointer[i] = UInt8(truncatingIfNeeded: nextRandom()) }
if type.blockSize > 1 || type == .f16 || type == .bf16 || type == .f32 {
    // make every scale/value a sane number
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
