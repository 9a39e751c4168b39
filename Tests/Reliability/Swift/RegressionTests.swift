// Fuzz regressions (docs/RELIABILITY.md): every seed in Tests/Fuzz/corpus/<harness> and every input a fuzzer once
// crashed on, in Tests/Fuzz/regressions/<harness>, goes through its harness again. A malformed input must be refused
// with an error, never a crash, and the harness's properties (round trips, bounds) must hold.
import QwenFormats
import QwenFuzzHarnesses
import QwenTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct FuzzRegressionTests {
    @Test(arguments: Harness.allCases)
    func replay(_ harness: Harness) throws {
        let folders = [FuzzPaths.corpus, FuzzPaths.regressions].map { $0 + "/" + harness.rawValue }
        let files = folders.flatMap(FuzzPaths.files(in:))
        if harness != .hfconfig { #expect(!files.isEmpty, "no seeds for \(harness.rawValue)") }
        for file in files {
            do {
                try harness.run(readBytes(file))
            } catch {
                Issue.record("\(file): \(error)")
            }
        }
    }

    /// Regenerates Tests/Fuzz/fixtures and Tests/Fuzz/corpus (only with QWEN_WRITE_FUZZ_SEEDS=1).
    @Test(.enabled(if: getenv("QWEN_WRITE_FUZZ_SEEDS") != nil))
    func writeFuzzSeeds() throws {
        try FuzzSeeds.writeFixtures()
        try FuzzSeeds.writeCorpus()
    }
}
