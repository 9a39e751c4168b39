// Test of bindings/cpp/qwen.hpp on the tiny fixture models (built with -std=c++17 -Wall -Wextra -Werror).
//
//   test_qwen FIXTURES_DIR   (Tests/Fixtures)
#include "qwen.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

static int failures = 0, checks = 0;

#define CHECK(cond)                                                              \
    do {                                                                         \
        checks++;                                                                \
        if (!(cond)) {                                                           \
            failures++;                                                          \
            std::fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

// Runs f, expecting a qwen::Error with the given status.
template <class F> static void expect_error(int status, F &&f, const char *what) {
    checks++;
    try {
        f();
        failures++;
        std::fprintf(stderr, "FAIL %s: no exception, expected %s\n", what, qwen_status_string(status));
    } catch (const qwen::Error &e) {
        if (e.status() != status) {
            failures++;
            std::fprintf(stderr, "FAIL %s: %s, expected %s\n", what, e.what(), qwen_status_string(status));
        }
    }
}

static std::string fixtures;
static std::string path_of(const char *relative) { return fixtures + "/" + relative; }

static const char *chat_text =
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    "Hello! \xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c\xe3\x80\x82 Write f(x) = x**2 in Python \xf0\x9f\x90\x8d."
    "<|im_end|>\n<|im_start|>assistant\n";
static const std::vector<int32_t> chat_ids = {
    2049, 82,  612, 198, 56,  283, 525, 264, 1492, 1262, 1071, 380, 517, 13,  2050, 198, 2049, 872, 198, 39,  301, 385, 0,
    220,  160, 121, 254, 161, 98,  121, 1540, 234, 160,  116,  244, 163, 243, 234, 1773, 467, 1247, 282, 7,   87,  8,   284,
    856,  334, 17,  304, 393, 88,  339, 263, 220, 172,  253,  238, 235, 13,  2050, 198, 2049, 395, 380, 517, 198};
static const std::vector<int32_t> greedy_ids = {1403, 594, 594, 594, 338, 52, 661, 661};
static const std::vector<qwen::Message> chat = {
    {"system", "You are a helpful assistant."},
    {"user", "Hello! \xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c\xe3\x80\x82 Write f(x) = x**2 in Python \xf0\x9f\x90\x8d."},
};

static_assert(!std::is_copy_constructible_v<qwen::Model> && std::is_nothrow_move_constructible_v<qwen::Model>);
static_assert(!std::is_copy_assignable_v<qwen::Context> && std::is_nothrow_move_assignable_v<qwen::Context>);

static void test_errors() {
    CHECK(!qwen::version().empty());
    checks++;
    try {
        qwen::Model m("/nonexistent/model.gguf");
        failures++;
        std::fprintf(stderr, "FAIL missing file loaded\n");
    } catch (const qwen::Error &e) {
        CHECK(e.status() == QWEN_ERR_IO);
        CHECK(std::string(e.status_name()) == "QWEN_ERR_IO");
        CHECK(e.message().find("/nonexistent/model.gguf") != std::string::npos);
        CHECK(std::string(e.what()).rfind("QWEN_ERR_IO: ", 0) == 0);
    }
    // qwen::Error is a std::runtime_error
    checks++;
    try {
        qwen::Model m(path_of("tiny/missing.gguf"));
    } catch (const std::runtime_error &) {
    }
    expect_error(QWEN_ERR_INVALID_ARGUMENT, [] { qwen::Model m(std::string_view("a\0b", 3)); }, "NUL in path");
}

static void test_model(const qwen::Model &m) {
    CHECK(m.n_vocab() == 2112 && m.n_embd() == 64 && m.n_ctx_train() == 32768);
    qwen_model_details d = m.info();
    CHECK(std::string(d.architecture) == "qwen2" && d.n_layer == 2 && d.token_eot == 2050);
    CHECK(m.is_eog(2050) && m.is_eog(2048) && !m.is_eog(82));

    std::vector<int32_t> ids = m.tokenize(chat_text, true);
    CHECK(ids == chat_ids);
    CHECK(m.detokenize(ids) == chat_text);
    CHECK(m.tokenize("<|im_start|>", true) == std::vector<int32_t>{2049});
    CHECK(m.tokenize("<|im_start|>").size() > 1);
    CHECK(m.tokenize("").empty() && m.detokenize(std::vector<int32_t>{}).empty());
    std::string long_text(5000, 'x');
    CHECK(m.detokenize(m.tokenize(long_text)) == long_text);
    expect_error(QWEN_ERR_INVALID_ARGUMENT, [&] { m.detokenize(std::vector<int32_t>{5, 999999}); }, "bad token id");
    CHECK(m.apply_chat_template(chat) == chat_text);
}

static void test_context(const qwen::Model &m) {
    qwen::Context ctx(m, {128, 2, 0, QWEN_KV_F32, false});
    CHECK(ctx.n_ctx() == 128 && ctx.n_past() == 0);
    expect_error(QWEN_ERR_INVALID_ARGUMENT, [&] { ctx.logits(); }, "logits before evaluation");
    std::vector<float> logits = ctx.eval_tokens(chat_ids);
    CHECK(logits.size() == 2112 && ctx.n_past() == 67 && ctx.n_evaluated() == 67);
    CHECK(ctx.logits() == logits);
    std::vector<float> emb = ctx.embedding();
    double norm = 0;
    for (float x : emb) norm += static_cast<double>(x) * x;
    CHECK(emb.size() == 64 && norm > 0 && std::isfinite(norm));
    expect_error(QWEN_ERR_INVALID_ARGUMENT, [&] { ctx.eval_tokens(std::vector<int32_t>{5000}); }, "token out of range");

    // greedy generation with a lambda equals transformers' tokens, and the returned text
    std::vector<int32_t> tokens;
    std::string streamed;
    std::string text = ctx.generate(qwen::Sampling::greedy(), 8, [&](int32_t token, std::string_view piece) {
        if (token >= 0) tokens.push_back(token);
        streamed += piece;
        return true;
    });
    CHECK(tokens == greedy_ids);
    CHECK(text == streamed && text == m.detokenize(greedy_ids));
    CHECK(ctx.last_token_count() == 8 && ctx.n_past() == 75);

    // chat + generate with a piece lambda; the non-streaming overload gives the same text
    std::vector<std::string> pieces;
    std::string reply = ctx.chat(chat, qwen::Sampling::greedy(), 8, [&](std::string_view piece) {
        pieces.emplace_back(piece);
        return true;
    });
    CHECK(reply == text && !pieces.empty());
    CHECK(ctx.chat(chat, qwen::Sampling::greedy(), 8) == text);
    ctx.eval_chat(chat);
    CHECK(ctx.generate(qwen::Sampling::greedy(), 8) == text);

    // a void lambda; a lambda returning false stops generation after its piece
    int calls = 0;
    ctx.chat(chat, qwen::Sampling::greedy(), 8, [&](std::string_view) { calls++; });
    CHECK(calls >= 1);
    calls = 0;
    ctx.chat(chat, qwen::Sampling::greedy(), 100, [&](std::string_view) { return ++calls < 3; });
    CHECK(calls == 3 && ctx.last_token_count() == 3 && ctx.n_past() == 67 + 3);

    // an exception thrown by the lambda stops generation and propagates; the context stays usable
    checks++;
    try {
        ctx.chat(chat, qwen::Sampling::greedy(), 100, [](std::string_view) -> bool { throw std::logic_error("stop"); });
        failures++;
    } catch (const std::logic_error &) {
    }
    CHECK(ctx.n_past() == 68);

    // stop strings
    ctx.eval_chat(chat);
    std::string full = ctx.generate(qwen::Sampling::greedy(), 24);
    std::string stop = full.substr(full.size() / 2, 3);
    ctx.eval_chat(chat);
    std::string cut = ctx.generate(qwen::Sampling::greedy(), 24, [](std::string_view) {}, {"\x01never", stop});
    CHECK(cut == full.substr(0, full.find(stop)));

    // seeded sampling is reproducible
    qwen::Sampling s = qwen::Sampling::seeded(7);
    ctx.eval_chat(chat);
    std::string a = ctx.generate(s, 16);
    ctx.eval_chat(chat);
    CHECK(ctx.generate(s, 16) == a);
    s.typical_p = 0;
    expect_error(QWEN_ERR_INVALID_ARGUMENT, [&] { ctx.generate(s, 4); }, "typical_p 0");

    // state round trip
    ctx.eval_chat(chat);
    std::vector<float> before = ctx.logits();
    std::vector<uint8_t> state = ctx.save_state();
    qwen::Context other(m, {128, 2, 0, QWEN_KV_F32, false});
    other.chat({{"user", "unrelated"}}, qwen::Sampling::greedy(), 2);
    other.load_state(state);
    CHECK(other.n_past() == 67 && other.logits() == before);
    CHECK(other.generate(qwen::Sampling::greedy(), 8) == ctx.generate(qwen::Sampling::greedy(), 8));
    expect_error(QWEN_ERR_FORMAT, [&] { other.load_state(state.data(), state.size() - 5); }, "truncated state");
    const std::string file = "/tmp/qwen-hpp-state-" + std::to_string(reinterpret_cast<std::uintptr_t>(&file));
    ctx.save_state_file(file);
    other.reset();
    other.load_state_file(file);
    CHECK(other.n_past() == ctx.n_past());
    std::remove(file.c_str());
    expect_error(QWEN_ERR_IO, [&] { other.load_state_file("/nonexistent/state"); }, "missing state file");

    // multi-turn: only the new part is evaluated
    qwen::Context mt(m, {256});
    std::vector<qwen::Message> turns = {{"system", "You are terse."}, {"user", "Hello!"}};
    mt.eval_chat(turns);
    int64_t first = mt.n_evaluated();
    turns.push_back({"assistant", "Hi."});
    turns.push_back({"user", "What is two plus two?"});
    mt.eval_chat(turns);
    int64_t second = mt.n_evaluated() - first;
    CHECK(second > 0 && second < mt.n_past() - first + 2);
    mt.eval_chat(turns);
    CHECK(mt.n_evaluated() == first + second);

    // a full context
    qwen::Context small(m, {32});
    expect_error(QWEN_ERR_CONTEXT_FULL, [&] { small.eval_tokens(chat_ids); }, "context full");
    CHECK(small.n_past() == 0);

    // cancellation: pending for the next call, cleared by reset
    small.cancel();
    expect_error(QWEN_ERR_CANCELLED, [&] { small.eval_tokens(std::vector<int32_t>{1, 2}); }, "cancelled");
    small.eval_tokens(std::vector<int32_t>{1, 2});
    CHECK(small.n_past() == 2);
}

static void test_move_semantics() {
    qwen::Model a(path_of("tiny/qwen2-q8_0.gguf"));
    qwen_model *handle = a.get();
    qwen::Model b(std::move(a));
    CHECK(!a && b && b.get() == handle);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
    expect_error(QWEN_ERR_INVALID_ARGUMENT, [&] { a.n_vocab(); }, "moved-from model");
    qwen::Model c(path_of("tiny/qwen2-q8_0.gguf"));
    c = std::move(b);  // frees c's model, takes b's
    CHECK(c.get() == handle && !b);

    qwen::Context x(c, {64});
    x.eval_tokens(std::vector<int32_t>{1, 2, 3});
    qwen::Context y(std::move(x));
    CHECK(!x && y && y.n_past() == 3);
    expect_error(QWEN_ERR_INVALID_ARGUMENT, [&] { x.n_past(); }, "moved-from context");
    qwen::Context z(c, {64});
    z = std::move(y);
    CHECK(z.n_past() == 3 && !y);
    std::vector<qwen::Context> many;
    for (int i = 0; i < 3; i++) many.emplace_back(c, qwen::ContextParams{64});
    CHECK(many.size() == 3 && many[2].n_ctx() == 64);

    // the model may go before its contexts
    c.close();
    c.close();
    z.eval_tokens(std::vector<int32_t>{4});
    CHECK(z.n_past() == 4 && !z.generate(qwen::Sampling::seeded(1), 4).empty());
    z.close();
    CHECK(!z);
}

static void test_threads(const qwen::Model &m) {
    std::vector<std::vector<int32_t>> results(4);
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < results.size(); i++) {
        threads.emplace_back([&m, &results, i] {
            qwen::Context ctx(m, {96, 1});
            ctx.chat(chat, qwen::Sampling::greedy(), 8, [&](int32_t token, std::string_view) {
                if (token >= 0) results[i].push_back(token);
                return true;
            });
        });
    }
    for (auto &t : threads) t.join();
    for (const auto &r : results) CHECK(r == greedy_ids);
}


#if defined(QWEN_HPP_HAS_MEDIA)
static std::vector<float> read_floats(const std::string &path) {
    std::vector<float> out;
    if (FILE *f = std::fopen(path.c_str(), "rb")) {
        float x;
        while (std::fread(&x, sizeof x, 1, f) == 1) out.push_back(x);
        std::fclose(f);
    }
    return out;
}

static float max_abs_diff(const std::vector<float> &a, const std::vector<float> &b) {
    if (a.size() != b.size()) return INFINITY;
    float worst = 0;
    for (std::size_t i = 0; i < a.size(); i++) worst = std::fmax(worst, std::fabs(a[i] - b[i]));
    return worst;
}

// The generated 3.7 s clip of the audio fixtures (scripts/fixtures/make_audio_fixtures.py), 16 kHz mono, as floats.
static std::vector<float> clip37() {
    const int rate = 16000, n = 37 * rate / 10;
    const double dur = 3.7, pi = 3.14159265358979323846;
    std::vector<float> out(static_cast<std::size_t>(n));
    int64_t state = 12345;
    for (int i = 0; i < n; i++) {
        const double t = static_cast<double>(i) / rate;
        const double gate = (t >= 0.2 * dur && t < 0.25 * dur) ? 0 : 1;
        state = (state * 1103515245 + 12345) % (int64_t(1) << 31);
        const double noise = static_cast<double>(state) / static_cast<double>(int64_t(1) << 31) - 0.5;
        const double fm = 0.35 * std::sin(2.0 * pi * 220.0 * t + 3.0 * std::sin(2.0 * pi * 0.7 * t));
        const double chirp = 0.25 * std::sin(2.0 * pi * (300.0 * t + (1600.0 / dur) * t * t));
        const double q = std::fmin(32767.0, std::fmax(-32768.0, std::nearbyint((fm + chirp + 0.08 * noise) * gate * 32767.0)));
        out[static_cast<std::size_t>(i)] = static_cast<float>(q / 32768.0);
    }
    return out;
}

static void test_vision() {
    qwen::Model m(path_of("vision/qwen2vl-hf"));
    CHECK(m.has_vision());
    CHECK(!m.has_audio());
    qwen::Image img = qwen::Image::load(path_of("vision/images/rgb_333x215.png"));
    CHECK(img.width() == 333 && img.height() == 215 && img.n_tokens(m) == 96);
    qwen::Context ctx(m, {1024, 2, 0, QWEN_KV_F32, false});
    int32_t rows = 0;
    std::vector<float> emb = ctx.embed_image(img, &rows);
    std::vector<float> ref = read_floats(path_of("vision/refs/qwen2vl_embed_rgb_333x215.f32"));
    CHECK(rows == 96 && emb.size() == 96u * 32u && max_abs_diff(emb, ref) < 1e-3f);

    // the same pixels from memory: the encoded file, and raw RGB
    std::vector<uint8_t> file;
    if (FILE *f = std::fopen(path_of("vision/images/rgb_333x215.png").c_str(), "rb")) {
        int c;
        while ((c = std::fgetc(f)) != EOF) file.push_back(static_cast<uint8_t>(c));
        std::fclose(f);
    }
    qwen::Image decoded = qwen::Image::decode(file.data(), file.size());
    CHECK(max_abs_diff(ctx.embed_image(decoded), emb) < 1e-5f);
    std::vector<uint8_t> gray(28 * 28 * 3, 128);
    qwen::Image raw = qwen::Image::from_rgb8(gray.data(), 28, 28);
    CHECK(raw.n_tokens(m) == 4);

    // chat with an image: transformers' greedy tokens
    const std::vector<int32_t> greedy = {566, 566, 566, 566, 1266, 1266, 1266, 1266, 1266, 1266, 1266, 1266, 1266, 1266, 1266, 1266};
    std::vector<qwen::Image> images;
    images.push_back(std::move(img));
    std::vector<int32_t> tokens;
    std::string reply = ctx.chat({{"system", "You are a helpful assistant."}, {"user", "<image>Describe this image."}}, images, {},
                                 qwen::Sampling::greedy(), 16, [&](int32_t token, std::string_view) {
                                     if (token >= 0) tokens.push_back(token);
                                     return true;
                                 });
    CHECK(tokens == greedy && reply == m.detokenize(greedy));
    ctx.reset();
    std::vector<float> logits = ctx.eval_prompt("<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Hi<|im_end|>\n", images);
    CHECK(logits.size() == 2112 && ctx.n_past() > 96);

    // errors
    expect_error(QWEN_ERR_FORMAT, [] { qwen::Image::load(path_of("vision/images/bad_garbage.png")); }, "garbage png");
    expect_error(QWEN_ERR_IO, [] { qwen::Image::load(path_of("vision/images/missing.png")); }, "missing image");
    expect_error(QWEN_ERR_INVALID_ARGUMENT, [&] { ctx.eval_prompt("<|vision_start|><|image_pad|><|vision_end|>", {}); },
                 "placeholder without an image");
    qwen::Model text(path_of("tiny/qwen2-q8_0.gguf"));
    CHECK(!text.has_vision());
    expect_error(QWEN_ERR_UNSUPPORTED, [&] { (void)images[0].n_tokens(text); }, "text model");
}

static void test_audio() {
    qwen::Model m(path_of("audio/qwen2audio-hf"));
    qwen::Audio speech = qwen::Audio::load(path_of("audio/inputs/speech.wav"));
    CHECK(speech.duration() > 5 && speech.duration() < 5.3 && speech.n_tokens(m) == 129);
    qwen::Context ctx(m, {512, 2, 0, QWEN_KV_F32, false});
    int32_t rows = 0;
    std::vector<float> emb = ctx.embed_audio(speech, &rows);
    CHECK(rows == 129 && emb.size() == 129u * static_cast<std::size_t>(m.n_embd()));

    std::vector<float> samples = clip37();
    std::vector<qwen::Audio> clips;
    clips.push_back(std::move(speech));
    clips.push_back(qwen::Audio::from_pcm_f32(samples.data(), static_cast<int64_t>(samples.size()), 1, 16000));
    const std::vector<int32_t> greedy = {166, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48};
    std::vector<int32_t> tokens;
    ctx.chat({{"system", "You are a helpful assistant."}, {"user", "<audio><audio>Compare the two recordings."}}, {}, clips,
             qwen::Sampling::greedy(), 16, [&](int32_t token, std::string_view) {
                 if (token >= 0) tokens.push_back(token);
             });
    CHECK(tokens == greedy && ctx.n_past() == 276 + 16);

    qwen::AudioParams limits;
    limits.max_seconds = 1;
    expect_error(QWEN_ERR_INVALID_ARGUMENT, [&] { qwen::Audio::load(path_of("audio/inputs/speech.wav"), limits); }, "too long");
    expect_error(QWEN_ERR_IO, [] { qwen::Audio::load(path_of("audio/inputs/missing.wav")); }, "missing clip");
}
#endif

int main(int argc, char **argv) {
    fixtures = argc > 1 ? argv[1] : "Tests/Fixtures";
    try {
        test_errors();
        qwen::Model m(path_of("tiny/qwen2-f32.gguf"), {2, true});
        test_model(m);
        test_context(m);
        test_threads(m);
        test_move_semantics();
#if defined(QWEN_HPP_HAS_MEDIA)
        test_vision();
        test_audio();
#else
        std::printf("(built without the media API: Image/Audio not tested)\n");
#endif
    } catch (const std::exception &e) {
        std::fprintf(stderr, "FAIL unexpected exception: %s\n", e.what());
        failures++;
    }
    std::printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
