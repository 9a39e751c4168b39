import QwenFormats
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// QWEN_MATMUL_PROFILE=1 times every one-token `linear` (a decode step's products) and prints, at exit, per weight
/// type and shape: the calls, the mean time per call and the rate the weights streamed at. A developer tool for decode
/// speed: per-product times compared within one run are far less disturbed by this VM's bandwidth drift than tokens/s.
enum MatmulProfile {
    static let enabled = getenv("QWEN_MATMUL_PROFILE").map { String(cString: $0) == "1" } ?? false

    private struct Entry { var nanoseconds = 0, bytes = 0, calls = 0 }
    private static let table = Mutex<[String: Entry]>([:])

    static func now() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return ts.tv_sec * 1_000_000_000 + ts.tv_nsec
    }

    /// Records one product, or one batch of products run as one job (keyed by all their shapes).
    static func record(_ matrices: [WeightMatrix], since start: Int) {
        let elapsed = now() - start
        let key = matrices.map { "\($0.type.name) \($0.rows)x\($0.columns)" }.joined(separator: " + ")
        table.withLock { table in
            if table.isEmpty { atexit { MatmulProfile.report() } }
            table[key, default: Entry()].nanoseconds += elapsed
            table[key]!.bytes += matrices.reduce(0) { $0 + $1.rows * $1.rowBytes }
            table[key]!.calls += 1
        }
    }

    static func report() {
        let entries = table.withLock { $0 }.sorted { $0.value.nanoseconds > $1.value.nanoseconds }
        var total = Entry()
        func line(_ name: String, _ e: Entry) -> String {
            let ms = Double(e.nanoseconds) / 1e6, us = Double(e.nanoseconds) / Double(max(1, e.calls)) / 1e3
            let gbps = Double(e.bytes) / Double(max(1, e.nanoseconds))
            return "matmul-profile \(name): \(e.calls) calls, \(ms.rounded()) ms, \((us * 10).rounded() / 10) us/call, \((gbps * 10).rounded() / 10) GB/s\n"
        }
        var text = ""
        for (name, e) in entries {
            text += line(name, e)
            total.nanoseconds += e.nanoseconds
            total.bytes += e.bytes
            total.calls += e.calls
        }
        text += line("all", total)
        fputs(text, stderr)
    }
}
