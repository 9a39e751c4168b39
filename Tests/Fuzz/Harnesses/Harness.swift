// Fuzz harnesses of libqwen (docs/RELIABILITY.md).
//
// Each harness takes arbitrary bytes and feeds them to one reader or one text path. Errors the library throws
// (QwenError) are the expected outcome for malformed input and are swallowed; a harness throws HarnessFailure only
// when a property that must hold for every input is violated (a round trip that does not reproduce its input, a
// tensor outside its file, ...). Anything else, a trap, a sanitizer report, a hang or an allocation beyond the
// fuzzer's limits, is a bug.
//
// The same functions serve the libFuzzer driver (Tests/Fuzz/Driver, see docs/RELIABILITY.md) and the regression
// tests (Tests/Reliability/Swift), which replay every file under Tests/Fuzz/corpus and Tests/Fuzz/regressions.
import QwenFormats
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A property of a harness that an input violated.
public struct HarnessFailure: Error, CustomStringConvertible {
    public let harness: String
    public let message: String
    public init(_ harness: String, _ message: String) {
        self.harness = harness
        self.message = message
    }
    public var description: String { "\(harness): \(message)" }
}

public enum Harness: String, CaseIterable, Sendable {
    /// GGUF reader, then config, tokenizer and model construction from it, then a few evaluated tokens.
    case gguf
    /// safetensors header (length, JSON, dtype/shape/offset checks).
    case safetensors
    /// JSON reader, then the input read as config.json, tokenizer.json and tokenizer_config.json.
    case json
    /// config.json of a Hugging Face folder: a model loaded from it with fixed weights and tokenizer, then evaluated.
    case hfconfig
    /// qwen.tiktoken vocabulary reader, then encoding with the vocabulary read.
    case tiktoken
    /// Tokenize / detokenize round trips of arbitrary bytes on three fixed tokenizers (Hugging Face, GGUF, tiktoken).
    case tokenizer
    /// Chat template rendering of arbitrary roles and contents (ChatML, default system message, Qwen3), template
    /// recognition of arbitrary template text.
    case chat
    /// Context state loading (qwen_context_state_load), then evaluation and generation from the loaded state.
    case state
    /// PNG and JPEG decoding, then the Qwen2-VL image processor (smart_resize, bicubic, normalize, patches).
    case image
    /// Audio files through libsndfile and raw 16-bit / float PCM, resampled to 16 kHz, then Whisper log-mel features.
    case audio

    /// Runs the harness on one input.
    public func run(_ data: UnsafeRawBufferPointer) throws {
        switch self {
        case .gguf: try FormatHarnesses.gguf(data)
        case .safetensors: try FormatHarnesses.safetensors(data)
        case .json: try FormatHarnesses.json(data)
        case .hfconfig: try FormatHarnesses.hfconfig(data)
        case .tiktoken: try TextHarnesses.tiktoken(data)
        case .tokenizer: try TextHarnesses.tokenizer(data)
        case .chat: try TextHarnesses.chat(data)
        case .state: try TextHarnesses.state(data)
        case .image: try MediaHarnesses.image(data)
        case .audio: try MediaHarnesses.audio(data)
        }
    }

    public func run(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try run($0) }
    }

    /// Loads what the harness needs (fixture models and tokenizers) so the first input is not slower than the rest.
    public func prepare() throws {
        switch self {
        case .tokenizer: _ = try TextHarnesses.tokenizers()
        case .chat: _ = try TextHarnesses.tokenizers()
        case .state: _ = try TextHarnesses.stateContext()
        case .hfconfig: _ = try FuzzPaths.scratchFolder()
        case .audio: _ = try (FuzzPaths.scratchFolder(), MediaHarnesses.extractors())
        default: break
        }
    }
}

/// Where the fixtures are: the repository root is found from this file's location (QWEN_REPO overrides it).
public enum FuzzPaths {
    public static let repoRoot: String = {
        if let env = getenv("QWEN_REPO") { return String(cString: env) }
        var path = #filePath
        for _ in 0 ..< 4 { path = String(path[..<path.lastIndex(of: "/")!]) }  // Tests/Fuzz/Harnesses/Harness.swift
        return path
    }()

    public static func fixture(_ relative: String) -> String { repoRoot + "/Tests/Fixtures/" + relative }
    /// The small models the harnesses and seeds use (written by `FuzzSeeds.writeFixtures`).
    public static func fuzzFixture(_ relative: String) -> String { repoRoot + "/Tests/Fuzz/fixtures/" + relative }
    public static var corpus: String { repoRoot + "/Tests/Fuzz/corpus" }
    public static var regressions: String { repoRoot + "/Tests/Fuzz/regressions" }

    /// A private folder of this process on tmpfs (/dev/shm, else /tmp), created on first use and removed at exit; named
    /// `qwen-fuzz-<pid>-…` so that scripts/fuzz.sh can remove it after a crash (no exit handler runs then).
    public static func scratchFolder() throws -> String {
        try scratch.get()
    }

    private static let scratch: Result<String, Error> = Result {
        let base = isDirectory("/dev/shm") ? "/dev/shm" : "/tmp"
        var template = Array("\(base)/qwen-fuzz-\(getpid())-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw QwenError.io("cannot create a scratch folder in \(base)")
        }
        let path = String(cString: template)
        scratchFolders.append(path)
        atexit {
            for folder in FuzzPaths.scratchFolders { removeTree(folder) }
        }
        return path
    }

    nonisolated(unsafe) static var scratchFolders: [String] = []

    /// Writes bytes to a file (replacing it).
    public static func write(_ data: UnsafeRawBufferPointer, to path: String) throws {
        unlink(path)  // a new inode: a mapping of the previous contents that is still alive stays valid
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw QwenError.io("cannot create '\(path)'") }
        defer { close(fd) }
        var done = 0
        while done < data.count {
            let n = Glibc.write(fd, data.baseAddress! + done, data.count - done)
            guard n > 0 else { throw QwenError.io("cannot write '\(path)'") }
            done += n
        }
    }

    public static func write(_ bytes: [UInt8], to path: String) throws {
        try bytes.withUnsafeBytes { try write($0, to: path) }
    }

    /// Files of a folder (not recursive), sorted; [] if it does not exist.
    public static func files(in folder: String) -> [String] {
        guard let dir = opendir(folder) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if !name.hasPrefix("."), !isDirectory(folder + "/" + name) { names.append(folder + "/" + name) }
        }
        return names.sorted()
    }

    static func removeTree(_ path: String) {
        if isDirectory(path) {
            for f in files(in: path) { unlink(f) }
            if let dir = opendir(path) {
                var subfolders: [String] = []
                while let entry = readdir(dir) {
                    let name = withUnsafePointer(to: entry.pointee.d_name) {
                        $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
                    }
                    if name != ".", name != "..", isDirectory(path + "/" + name) { subfolders.append(path + "/" + name) }
                }
                closedir(dir)
                for s in subfolders { removeTree(s) }
            }
            rmdir(path)
        } else {
            unlink(path)
        }
    }
}

/// Reads a whole file into memory.
public func readBytes(_ path: String) throws -> [UInt8] {
    let file = try FileBytes(path: path, map: false)
    return Array(file.buffer)
}

/// The bytes as a file on tmpfs, for readers that take a path (one file per name and process, overwritten).
func withFile<T>(_ name: String, _ data: UnsafeRawBufferPointer, _ body: (String) throws -> T) throws -> T {
    let path = try FuzzPaths.scratchFolder() + "/" + name
    try FuzzPaths.write(data, to: path)
    return try body(path)
}

/// Runs `body`; a QwenError (the library refusing the input) is the expected outcome and gives nil.
@discardableResult
func refusable<T>(_ body: () throws -> T) throws -> T? {
    do {
        return try body()
    } catch let e as QwenError {
        // a refusal must say why
        if e.message.isEmpty { throw HarnessFailure("error", "a \(e.status) error without a message") }
        return nil
    }
}

func check(_ condition: @autoclosure () -> Bool, _ harness: Harness, _ message: @autoclosure () -> String) throws {
    if !condition() { throw HarnessFailure(harness.rawValue, message()) }
}
