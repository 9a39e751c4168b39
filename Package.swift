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
let libraryLinkFlags: [LinkerSetting] = [
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
        .target(name: "QwenTokenizer", dependencies: ["QwenFormats"], swiftSettings: swiftFlags),
        // Model architectures and the loader (GGUF files and Hugging Face folders).
        .target(name: "QwenModels", dependencies: ["QwenFormats", "QwenTensors", "QwenTokenizer"],
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
    ],
    swiftLanguageModes: [.v5]
)
