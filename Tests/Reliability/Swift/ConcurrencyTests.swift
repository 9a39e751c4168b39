// Concurrency (docs/RELIABILITY.md), run under ThreadSanitizer by `scripts/sanitize.sh thread`: one model shared by
// four contexts generating at once on four threads of their own gives each the tokens it gives alone (text, image and
// audio prompts: the towers' lazily packed weights are first used from four threads at once), and a generation is
// cancelled from another thread. Plain pthreads, not Swift tasks: a host's threads are what the C
// API is called from, and four tasks may share the cooperative pool's two threads here.
import QwenFormats
import QwenMedia
import QwenModels
import QwenRuntime
import QwenTestSupport
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Runs each body on a thread of its own, all at once, and waits for them.
func onThreads(_ bodies: [() -> Void]) {
    final class Body { let run: () -> Void; init(_ run: @escaping () -> Void) { self.run = run } }
    var threads: [pthread_t] = []
    for body in bodies {
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { arg in
            Unmanaged<Body>.fromOpaque(arg!).takeRetainedValue().run()
            return nil
        }, Unmanaged.passRetained(Body(body)).toOpaque())
        precondition(rc == 0, "pthread_create failed")
        threads.append(thread)
    }
    for t in threads { pthread_join(t, nil) }
}

@Suite struct ConcurrencyTests {
    static let chat = [ChatMessage(role: "system", content: "You are a helpful assistant."),
                       ChatMessage(role: "user", content: "Hello! Write f(x) = x**2 in Python.")]

    static func model() throws -> Model {
        var options = ModelOptions()
        options.threads = 2
        return try Model.load(path: TestSupport.fixture("tiny/qwen2-f32.gguf"), options: options)
    }

    /// 16 tokens of `sampling` after `prompt` has been evaluated on a fresh context of `model` with its own two worker
    /// threads.
    static func generate(_ model: Model, _ sampling: SamplingParams, prompt: (Context) throws -> Void) throws -> [Int32] {
        var options = ContextOptions()
        options.contextSize = 512
        options.threads = 2
        let ctx = try Context(model: model, options: options)
        try prompt(ctx)
        var tokens: [Int32] = []
        try ctx.generate(sampling: sampling, maxTokens: 16) { token, _ in
            if token >= 0 { tokens.append(token) }
            return false
        }
        return tokens
    }

    /// Four contexts of `model` (greedy and seeded sampling, twice each) generate at once on four threads; each gives
    /// the tokens it gives alone. The threaded round goes first, so that lazily built shared state (packed weights) is
    /// built while four threads race for it.
    static func checkSharedModel(_ model: Model, prompt: @escaping (Context) throws -> Void) throws {
        var sampled = SamplingParams()
        sampled.seed = 11
        let settings = [SamplingParams.greedy, sampled, .greedy, sampled]
        final class Outcome: @unchecked Sendable { var tokens: [Int32] = []; var error: Error? }  // one per thread
        let outcomes = settings.map { _ in Outcome() }
        onThreads(zip(settings, outcomes).map { params, outcome in
            {
                do { outcome.tokens = try generate(model, params, prompt: prompt) } catch { outcome.error = error }
            }
        })
        let alone = try settings.map { try generate(model, $0, prompt: prompt) }
        #expect(alone.allSatisfy { !$0.isEmpty })
        for (i, outcome) in outcomes.enumerated() {
            #expect(outcome.error == nil, "thread \(i): \(String(describing: outcome.error))")
            #expect(outcome.tokens == alone[i], "thread \(i) generated other tokens than alone")
        }
    }

    @Test func sharedModelFourThreads() throws {
        try Self.checkSharedModel(try Self.model()) { try $0.evalChat(Self.chat, addGenerationPrompt: true) }
    }

    @Test func sharedVisionModelFourThreads() throws {
        let model = try Model.load(path: TestSupport.fixture("vision/qwen2vl-hf"))
        let image = ImageInput(try RGBImage.load(path: TestSupport.fixture("vision/images/rgb_333x215.png")))
        try Self.checkSharedModel(model) {
            try $0.evalChat([ChatMessage(role: "user", content: "<image>What is in the picture?")], media: [image],
                            addGenerationPrompt: true)
        }
    }

    @Test func sharedAudioModelFourThreads() throws {
        let model = try Model.load(path: TestSupport.fixture("audio/qwen2audio-f16.gguf"))
        try model.loadAudioProjector(path: TestSupport.fixture("audio/mmproj-qwen2audio-f16.gguf"))
        let clip = AudioInput(try AudioClip(path: TestSupport.fixture("audio/inputs/speech.wav")))
        try Self.checkSharedModel(model) {
            try $0.evalChat([ChatMessage(role: "user", content: "<audio>What is said?")], media: [clip], addGenerationPrompt: true)
        }
    }

    @Test func cancelFromAnotherThread() throws {
        let model = try Self.model()
        var options = ContextOptions()
        options.contextSize = 256
        options.threads = 2
        let ctx = try Context(model: model, options: options)
        try ctx.evalChat(Self.chat, addGenerationPrompt: true)
        final class Flags: Sendable { let started = Atomic<Int>(0), cancelled = Atomic<Int>(0) }
        let flags = Flags()
        final class Outcome: @unchecked Sendable { var generated = 0; var error: Error? }
        let outcome = Outcome()
        onThreads([
            {
                do {
                    try ctx.generate(sampling: .greedy, maxTokens: 200) { token, _ in
                        if token >= 0 { outcome.generated += 1 }
                        flags.started.store(1, ordering: .releasing)
                        // hold the first token until the other thread has cancelled: the next step must see it
                        while flags.cancelled.load(ordering: .acquiring) == 0 { sched_yield() }
                        return false
                    }
                } catch {
                    outcome.error = error
                }
            },
            {
                while flags.started.load(ordering: .acquiring) == 0 { sched_yield() }
                ctx.cancel()
                flags.cancelled.store(1, ordering: .releasing)
            },
        ])
        #expect((outcome.error as? QwenError)?.status == .cancelled, "generation ended with \(String(describing: outcome.error))")
        #expect(outcome.generated == 1)
        // the context stays usable
        var more = 0
        try ctx.generate(sampling: .greedy, maxTokens: 2) { token, _ in
            if token >= 0 { more += 1 }
            return false
        }
        #expect(more > 0)
    }
}
