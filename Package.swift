// swift-tools-version: 6.1
import PackageDescription

// Swift code is compiled for a portable baseline that still has FMA/F16C (without them `addProduct`
// and Float16 conversion become libcalls). Faster ISA paths (AVX-512/VNNI) are chosen at run time.
// QWEN_TARGET_CPU overrides the baseline -march (e.g. "native" for local experiments).
#if arch(x86_64)
let defaultCPU = "x86-64-v3"
#else
let defaultCPU = "armv8.2-a+fp16+dotprod"
#endif
let targetCPU = Context.environment["QWEN_TARGET_CPU"] ?? defaultCPU
let swiftFlags: [SwiftSetting] = [
    .unsafeFlags(["-Xcc", "-march=\(targetCPU)"]),
    .unsafeFlags(["-Ounchecked"], .when(configuration: .release)),
]
let cFlags: [CSetting] = [.unsafeFlags(["-march=\(targetCPU)", "-O3"])]

// libqwen.so is self-contained for embedding: it carries the Swift runtime statically (NEEDED is only
// libc/libm/libstdc++/libgcc_s), has a versioned SONAME and exports nothing but the qwen_* C API.
// Reliability builds (docs/RELIABILITY.md: sanitizers, the fuzzer) set QWEN_SANITIZE=1 or QWEN_FUZZ=1 and get a plain
// shared library instead: the sanitizer runtimes want the shared Swift runtime and their own exported symbols.
let sanitizing = Context.environment["QWEN_SANITIZE"] != nil || Context.environment["QWEN_FUZZ"] != nil
let libraryLinkFlags: [LinkerSetting] = sanitizing ? [] : [
    .unsafeFlags(["-static-stdlib", "-use-ld=lld",
                  "-Xlinker", "-soname=libqwen.so.0",
                  "-Xlinker", "--version-script=\(Context.packageDirectory)/Sources/Qwen/exports.map"]),
]

let package = Package(
    name: "qwen",
    products: [
        .library(name: "qwen", type: .dynamic, targets: ["Qwen"]),
    ],
    targets: [
        // Tiny C target: SIMD intrinsics Swift cannot express, futex, thread-local error text.
        .target(name: "CQwen", cSettings: cFlags),
        // File formats: errors, memory-mapped files, JSON, GGUF, safetensors.
        .target(name: "QwenFormats", dependencies: ["CQwen"], swiftSettings: swiftFlags),
        // Tensors, weight types, kernels and the thread pool shared by every model.
        .target(name: "QwenTensors", dependencies: ["CQwen", "QwenFormats"], swiftSettings: swiftFlags),
        // Byte-level BPE tokenizer (Qwen vocabularies) and chat templates.
        .target(name: "QwenTokenizer", dependencies: ["CQwen", "QwenFormats"], swiftSettings: swiftFlags),
        // System libraries for audio: libsndfile decodes, libsoxr resamples (Debian libsndfile1-dev, libsoxr-dev).
        .systemLibrary(name: "CSndfile", path: "Sources/CSndfile", pkgConfig: "sndfile", providers: [.apt(["libsndfile1-dev"])]),
        .systemLibrary(name: "CSoxr", path: "Sources/CSoxr", pkgConfig: "soxr", providers: [.apt(["libsoxr-dev"])]),
        // System libraries for images: libpng and libjpeg-turbo (Debian libpng-dev, libjpeg62-turbo-dev), behind a
        // small C target that turns their longjmp error handling into return codes.
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", path: "Sources/CJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg62-turbo-dev"])]),
        .target(name: "CQwenMedia", dependencies: ["CPNG", "CJPEG"], cSettings: cFlags,
                linkerSettings: [.linkedLibrary("png16"), .linkedLibrary("jpeg")]),
        // Media input: audio decoding, resampling and log-mel features; image decoding and preprocessing.
        .target(name: "QwenMedia", dependencies: ["QwenFormats", "QwenTensors", "CSndfile", "CSoxr", "CQwenMedia"],
                swiftSettings: swiftFlags),
        // Model architectures and the loader (GGUF files and Hugging Face folders).
        .target(name: "QwenModels", dependencies: ["QwenFormats", "QwenTensors", "QwenTokenizer", "QwenMedia"],
                swiftSettings: swiftFlags),
        // Sessions: contexts with KV cache, sampling, generation, chat.
        .target(name: "QwenRuntime", dependencies: ["QwenModels"], swiftSettings: swiftFlags),
        // The C ABI (include/qwen.h): thin @_cdecl functions over QwenRuntime.
        .target(name: "Qwen", dependencies: ["QwenRuntime", "CQwen"], exclude: ["exports.map"], swiftSettings: swiftFlags,
                linkerSettings: libraryLinkFlags),
        // Developer tool: best-of-N timing of one matrix product (bench/kernels).
        .executableTarget(name: "kernel-bench", dependencies: ["QwenTensors"], path: "bench/kernels", swiftSettings: swiftFlags),
        .target(name: "QwenTestSupport", dependencies: ["QwenFormats"], path: "Tests/Support", swiftSettings: swiftFlags),
        .testTarget(name: "QwenFormatsTests", dependencies: ["QwenFormats", "QwenTestSupport"], swiftSettings: swiftFlags),
        .testTarget(name: "QwenTensorsTests", dependencies: ["CQwen", "QwenTensors", "QwenTestSupport"], swiftSettings: swiftFlags),
        .testTarget(name: "QwenTokenizerTests", dependencies: ["QwenTokenizer", "QwenTestSupport"], swiftSettings: swiftFlags),
        .testTarget(name: "QwenRuntimeTests", dependencies: ["QwenRuntime", "QwenTestSupport"], swiftSettings: swiftFlags),
        .testTarget(name: "QwenVisionTests", dependencies: ["QwenRuntime", "QwenMedia", "QwenTestSupport"], swiftSettings: swiftFlags),
        .testTarget(name: "QwenAudioTests", dependencies: ["QwenRuntime", "QwenMedia", "QwenTestSupport"], swiftSettings: swiftFlags),
    ],
    swiftLanguageModes: [.v5]
)

// Reliability (docs/RELIABILITY.md): the fuzz harnesses, as a library that the regression and bounded-resource
// tests replay inputs through; QWEN_FUZZ=1 adds the libFuzzer driver (built with --sanitize=fuzzer, docs/RELIABILITY.md).
package.targets += [
    .target(name: "QwenFuzzHarnesses", dependencies: ["QwenRuntime", "QwenMedia", "CJPEG", "CSndfile"], path: "Tests/Fuzz/Harnesses", swiftSettings: swiftFlags),
    .testTarget(name: "QwenReliabilityTests", dependencies: ["QwenFuzzHarnesses", "QwenTestSupport"], path: "Tests/Reliability/Swift",
                swiftSettings: swiftFlags),
]
if Context.environment["QWEN_FUZZ"] != nil {
    package.targets.append(.executableTarget(name: "qwen-fuzz", dependencies: ["QwenFuzzHarnesses", "Qwen", "CQwen"], path: "Tests/Fuzz/Driver",
                                             swiftSettings: swiftFlags + [.unsafeFlags(["-parse-as-library"])]))
}
