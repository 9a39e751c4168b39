/*
 * C ABI test of libqwen: every function of include/qwen.h, on the tiny fixture models, including the
 * error paths. Built with `cc -std=c11 -Wall -Werror` against include/ and the built libqwen.so.
 *
 *   test_capi FIXTURES_DIR   (Tests/Fixtures)
 */
#define _POSIX_C_SOURCE 200809L
#include <qwen.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int failures = 0, checks = 0;
static const char *fixtures;

#define CHECK(cond, ...)                                                            \
    do {                                                                            \
        checks++;                                                                   \
        if (!(cond)) {                                                              \
            failures++;                                                             \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);         \
            fprintf(stderr, __VA_ARGS__);                                           \
            fprintf(stderr, " (last error: %s)\n", qwen_last_error());              \
        }                                                                           \
    } while (0)

#define EXPECT_STATUS(call, status) \
    do { int rc_ = (call); CHECK(rc_ == (status), "%s returned %d (%s), expected %s", #call, rc_, qwen_status_string(rc_), #status); } while (0)

static char *path_of(const char *relative) {
    static char buf[4][1024];
    static int next = 0;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", fixtures, relative);
    return b;
}

static const char *chat_text =
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    "Hello! \xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c\xe3\x80\x82 Write f(x) = x**2 in Python \xf0\x9f\x90\x8d."
    "<|im_end|>\n<|im_start|>assistant\n";
static const int32_t chat_ids[67] = {2049, 82, 612, 198, 56, 283, 525, 264, 1492, 1262, 1071, 380, 517, 13, 2050, 198, 2049,
                                     872, 198, 39, 301, 385, 0, 220, 160, 121, 254, 161, 98, 121, 1540, 234, 160, 116, 244, 163,
                                     243, 234, 1773, 467, 1247, 282, 7, 87, 8, 284, 856, 334, 17, 304, 393, 88, 339, 263, 220,
                                     172, 253, 238, 235, 13, 2050, 198, 2049, 395, 380, 517, 198};
static const int32_t greedy_ids[8] = {1403, 594, 594, 594, 338, 52, 661, 661};
static const qwen_chat_message chat[2] = {
    {"system", "You are a helpful assistant."},
    {"user", "Hello! \xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c\xe3\x80\x82 Write f(x) = x**2 in Python \xf0\x9f\x90\x8d."},
};

/* last row of a [rows][2112] float32 reference */
static int read_last_logits(const char *file, int rows, float *out, int vocab) {
    FILE *f = fopen(file, "rb");
    if (!f) return 0;
    fseek(f, (long)(rows - 1) * vocab * 4, SEEK_SET);
    size_t n = fread(out, 4, (size_t)vocab, f);
    fclose(f);
    return n == (size_t)vocab;
}

static int copy_prefix(const char *src, const char *dst, long bytes) {
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    if (!in || !out) return 0;
    char buf[4096];
    long left = bytes;
    while (left != 0) {
        size_t want = left < 0 || left > (long)sizeof buf ? sizeof buf : (size_t)left;
        size_t n = fread(buf, 1, want, in);
        if (n == 0) break;
        fwrite(buf, 1, n, out);
        if (left > 0) left -= (long)n;
    }
    fclose(in);
    fclose(out);
    return 1;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (f) { fputs(text, f); fclose(f); }
}

typedef struct { int32_t tokens[64]; int count; char text[4096]; size_t length; int stop_after; } collected;

static int collect(int32_t token, const char *piece, void *user_data) {
    collected *c = user_data;
    if (token >= 0 && c->count < 64) c->tokens[c->count++] = token;
    size_t n = strlen(piece);
    if (c->length + n < sizeof c->text) { memcpy(c->text + c->length, piece, n + 1); c->length += n; }
    return c->stop_after > 0 && c->count >= c->stop_after;
}

static void test_library(void) {
    CHECK(qwen_version() && strcmp(qwen_version(), QWEN_VERSION) == 0, "library version equals the header's");
    CHECK(!strcmp(qwen_status_string(QWEN_ERR_CONTEXT_FULL), "QWEN_ERR_CONTEXT_FULL"), "status string");
    CHECK(!strcmp(qwen_status_string(12345), "QWEN_UNKNOWN_STATUS"), "unknown status");
    qwen_model_params mp = qwen_model_default_params();
    CHECK(mp.use_mmap == 1 && mp.n_threads == 0, "model defaults");
    qwen_context_params cp = qwen_context_default_params();
    CHECK(cp.n_ctx == 0 && cp.n_batch == 512 && cp.kv_type == QWEN_KV_F16, "context defaults");
    qwen_sampling_params sp = qwen_sampling_default_params();
    CHECK(sp.temperature > 0 && sp.seed == UINT64_MAX, "sampling defaults");
}

static void test_load_errors(void) {
    qwen_model *m = (qwen_model *)0x1;
    EXPECT_STATUS(qwen_model_load(NULL, NULL, &m), QWEN_ERR_INVALID_ARGUMENT);
    CHECK(m == NULL, "out cleared on failure");
    EXPECT_STATUS(qwen_model_load("x", NULL, NULL), QWEN_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(qwen_model_load("/nonexistent/model.gguf", NULL, &m), QWEN_ERR_IO);
    CHECK(strstr(qwen_last_error(), "/nonexistent/model.gguf") != NULL, "message names the path");
    EXPECT_STATUS(qwen_model_load("/tmp", NULL, &m), QWEN_ERR_IO); /* a folder without config.json */

    char dir[] = "/tmp/qwen-capi-XXXXXX";
    if (!mkdtemp(dir)) { CHECK(0, "mkdtemp"); return; }
    char p[1200], q[1200];
    /* truncated GGUFs, at several cut points */
    long cuts[] = {0, 3, 16, 100, 4000, 200000};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        snprintf(p, sizeof p, "%s/cut.gguf", dir);
        copy_prefix(path_of("tiny/qwen2-q8_0.gguf"), p, cuts[i]);
        EXPECT_STATUS(qwen_model_load(p, NULL, &m), QWEN_ERR_FORMAT);
    }
    /* not a GGUF at all */
    snprintf(p, sizeof p, "%s/junk.gguf", dir);
    write_text(p, "this is not a model, just some text that is long enough to be read as a header");
    EXPECT_STATUS(qwen_model_load(p, NULL, &m), QWEN_ERR_FORMAT);
    /* a GGUF of an unknown architecture: rename qwen2 -> qwenX in the metadata */
    snprintf(p, sizeof p, "%s/arch.gguf", dir);
    copy_prefix(path_of("tiny/qwen2-q8_0.gguf"), p, -1);
    FILE *f = fopen(p, "r+b");
    if (f) {
        char head[4096];
        size_t n = fread(head, 1, sizeof head, f);
        for (size_t i = 0; i + 25 < n; i++) {
            if (!memcmp(head + i, "general.architecture", 20)) {
                /* key, then u32 type (8 = string), u64 length 5, "qwen2" */
                fseek(f, (long)(i + 20 + 4 + 8 + 4), SEEK_SET);
                fputc('X', f);
                break;
            }
        }
        fclose(f);
    }
    EXPECT_STATUS(qwen_model_load(p, NULL, &m), QWEN_ERR_UNSUPPORTED);
    CHECK(strstr(qwen_last_error(), "qwenX") != NULL, "message names the architecture");
    /* Hugging Face folders: unknown model_type, truncated safetensors, corrupt JSON */
    snprintf(p, sizeof p, "%s/config.json", dir);
    write_text(p, "{\"model_type\": \"llama\", \"hidden_size\": 64}");
    snprintf(q, sizeof q, "%s/tokenizer.json", dir);
    copy_prefix(path_of("tiny/tokenizer/tokenizer.json"), q, -1);
    EXPECT_STATUS(qwen_model_load(dir, NULL, &m), QWEN_ERR_UNSUPPORTED);
    copy_prefix(path_of("tiny/qwen2-hf/config.json"), p, -1);
    snprintf(q, sizeof q, "%s/model.safetensors", dir);
    copy_prefix(path_of("tiny/qwen2-hf/model.safetensors"), q, 300000);
    EXPECT_STATUS(qwen_model_load(dir, NULL, &m), QWEN_ERR_FORMAT);
    copy_prefix(path_of("tiny/qwen2-hf/config.json"), p, 40);
    EXPECT_STATUS(qwen_model_load(dir, NULL, &m), QWEN_ERR_FORMAT);
    snprintf(q, sizeof q, "rm -rf '%s'", dir);
    if (system(q) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
}

static void test_invalid_handles(void) {
    qwen_model *bogus = (qwen_model *)(uintptr_t)0x1234;
    qwen_context *bogus_ctx = (qwen_context *)(uintptr_t)0x5678;
    int32_t t[4];
    char buf[16];
    CHECK(qwen_model_n_vocab(NULL) == QWEN_ERR_INVALID_ARGUMENT, "n_vocab(NULL)");
    CHECK(qwen_model_n_embd(bogus) == QWEN_ERR_INVALID_ARGUMENT, "n_embd(bogus)");
    CHECK(qwen_model_n_ctx_train(NULL) < 0, "n_ctx_train(NULL)");
    CHECK(qwen_token_is_eog(NULL, 0) < 0, "is_eog(NULL)");
    EXPECT_STATUS(qwen_tokenize(bogus, "hi", 0, t, 4, NULL), QWEN_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(qwen_detokenize(NULL, t, 1, buf, 16, NULL), QWEN_ERR_INVALID_ARGUMENT);
    qwen_context *c = (qwen_context *)0x1;
    EXPECT_STATUS(qwen_context_new(NULL, NULL, &c), QWEN_ERR_INVALID_ARGUMENT);
    CHECK(c == NULL, "out cleared");
    EXPECT_STATUS(qwen_context_reset(bogus_ctx), QWEN_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(qwen_context_eval_tokens(NULL, t, 1, NULL), QWEN_ERR_INVALID_ARGUMENT);
    CHECK(qwen_context_n_past(bogus_ctx) < 0, "n_past(bogus)");
    CHECK(qwen_context_n_ctx(NULL) < 0, "n_ctx(NULL)");
    EXPECT_STATUS(qwen_context_cancel(NULL), QWEN_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(qwen_generate(bogus_ctx, NULL, 4, NULL, NULL), QWEN_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(qwen_chat_eval(NULL, chat, 2, 1), QWEN_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(qwen_chat_apply_template(bogus, chat, 2, 1, buf, 16, NULL), QWEN_ERR_INVALID_ARGUMENT);
    qwen_model_free(NULL);
    qwen_model_free(bogus); /* unknown handles are ignored */
    qwen_context_free(NULL);
    qwen_context_free(bogus_ctx);
}

static void test_tokenizer(qwen_model *m) {
    int32_t ids[128], needed = -1;
    int n = qwen_tokenize(m, chat_text, 1, ids, 128, &needed);
    CHECK(n == 67 && needed == 67, "token count %d", n);
    CHECK(n == 67 && !memcmp(ids, chat_ids, sizeof chat_ids), "ids equal the transformers ids");
    EXPECT_STATUS(qwen_tokenize(m, chat_text, 1, ids, 10, &needed), QWEN_ERR_BUFFER_TOO_SMALL);
    CHECK(needed == 67, "n_needed %d", needed);
    needed = -1;
    EXPECT_STATUS(qwen_tokenize(m, chat_text, 1, NULL, 0, &needed), QWEN_ERR_BUFFER_TOO_SMALL);
    CHECK(needed == 67, "size query");
    EXPECT_STATUS(qwen_tokenize(m, chat_text, 1, NULL, 5, NULL), QWEN_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(qwen_tokenize(m, NULL, 1, ids, 5, NULL), QWEN_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(qwen_tokenize(m, "", 1, ids, 5, NULL), 0);
    /* without special parsing, the markers are ordinary text */
    n = qwen_tokenize(m, "<|im_start|>", 0, ids, 128, NULL);
    CHECK(n > 1, "<|im_start|> as text gives %d tokens", n);
    CHECK(qwen_tokenize(m, "<|im_start|>", 1, ids, 128, NULL) == 1 && ids[0] == 2049, "special token");
    CHECK(qwen_token_is_eog(m, 2050) == 1 && qwen_token_is_eog(m, 2048) == 1 && qwen_token_is_eog(m, 82) == 0, "eog");

    char text[512];
    n = qwen_detokenize(m, chat_ids, 67, text, sizeof text, &needed);
    CHECK(n == (int)strlen(chat_text) && !strcmp(text, chat_text), "detokenize round trip (%d bytes)", n);
    EXPECT_STATUS(qwen_detokenize(m, chat_ids, 67, text, 8, &needed), QWEN_ERR_BUFFER_TOO_SMALL);
    CHECK(needed == (int)strlen(chat_text), "detokenize n_needed");
    int32_t bad[2] = {5, 999999};
    EXPECT_STATUS(qwen_detokenize(m, bad, 2, text, sizeof text, NULL), QWEN_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(qwen_detokenize(m, chat_ids, -1, text, sizeof text, NULL), QWEN_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(qwen_detokenize(m, NULL, 0, text, sizeof text, NULL), 0);

    n = qwen_chat_apply_template(m, chat, 2, 1, text, sizeof text, &needed);
    CHECK(n > 0 && !strcmp(text, chat_text), "template renders the transformers text");
    qwen_chat_message no_system[1] = {chat[1]};
    n = qwen_chat_apply_template(m, no_system, 1, 1, text, sizeof text, &needed);
    CHECK(n > 0 && strstr(text, "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n") == text,
          "default system message of the Qwen2.5 template");
    qwen_chat_message broken[1] = {{NULL, "x"}};
    EXPECT_STATUS(qwen_chat_apply_template(m, broken, 1, 1, text, sizeof text, NULL), QWEN_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(qwen_chat_apply_template(m, chat, 0, 1, text, sizeof text, NULL), QWEN_ERR_INVALID_ARGUMENT);
}

static void test_eval_and_generate(qwen_model *m, const char *reference, float tolerance) {
    int vocab = qwen_model_n_vocab(m);
    CHECK(vocab == 2112 && qwen_model_n_embd(m) == 64, "dims %d", vocab);
    qwen_context_params cp = qwen_context_default_params();
    cp.n_ctx = 128;
    cp.kv_type = QWEN_KV_F32;
    cp.n_threads = 2;
    qwen_context *ctx = NULL;
    EXPECT_STATUS(qwen_context_new(m, &cp, &ctx), 0);
    if (!ctx) return;
    CHECK(qwen_context_n_ctx(ctx) == 128 && qwen_context_n_past(ctx) == 0, "fresh context");

    float *logits = malloc(sizeof(float) * (size_t)vocab), *expected = malloc(sizeof(float) * (size_t)vocab);
    EXPECT_STATUS(qwen_context_eval_tokens(ctx, chat_ids, 67, logits), 0);
    CHECK(qwen_context_n_past(ctx) == 67, "n_past");
    if (read_last_logits(path_of(reference), 67, expected, vocab)) {
        float worst = 0;
        for (int i = 0; i < vocab; i++) worst = fmaxf(worst, fabsf(logits[i] - expected[i]));
        CHECK(worst <= tolerance, "max |dlogit| %g vs %s", (double)worst, reference);
    } else {
        CHECK(0, "cannot read %s", reference);
    }
    int32_t out_of_range = 5000;
    EXPECT_STATUS(qwen_context_eval_tokens(ctx, &out_of_range, 1, NULL), QWEN_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(qwen_context_eval_tokens(ctx, chat_ids, 0, NULL), QWEN_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(qwen_context_eval_tokens(ctx, NULL, 3, NULL), QWEN_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(qwen_context_eval_tokens(ctx, chat_ids, 67, NULL), QWEN_ERR_CONTEXT_FULL); /* 134 > 128 */
    CHECK(qwen_context_n_past(ctx) == 67, "nothing evaluated when full");
    EXPECT_STATUS(qwen_context_reset(ctx), 0);
    CHECK(qwen_context_n_past(ctx) == 0, "reset empties");
    EXPECT_STATUS(qwen_generate(ctx, NULL, 4, NULL, NULL), QWEN_ERR_INVALID_ARGUMENT); /* nothing to continue */

    /* chat then greedy generation, streamed */
    EXPECT_STATUS(qwen_chat_eval(ctx, chat, 2, 1), 0);
    CHECK(qwen_context_n_past(ctx) == 67, "chat prompt is 67 tokens");
    qwen_sampling_params sp = qwen_sampling_default_params();
    sp.temperature = 0;
    collected c = {0};
    int n = qwen_generate(ctx, &sp, 8, collect, &c);
    CHECK(n == 8 && c.count == 8, "generated %d", n);
    if (!strcmp(reference, "tiny/refs/hf_qwen2_f32.logits.f32"))
        CHECK(!memcmp(c.tokens, greedy_ids, sizeof greedy_ids), "greedy tokens equal transformers'");
    char text[512];
    int bytes = qwen_detokenize(m, c.tokens, c.count, text, sizeof text, NULL);
    CHECK(bytes >= 0 && (size_t)bytes == c.length && !memcmp(text, c.text, c.length), "streamed pieces = detokenized text");
    CHECK(qwen_context_n_past(ctx) == 75, "generated tokens are in the cache (%d)", qwen_context_n_past(ctx));

    /* the callback stops generation */
    collected s = {0};
    s.stop_after = 3;
    CHECK(qwen_generate(ctx, &sp, 20, collect, &s) == 3, "callback stop");
    /* sampling is reproducible for a seed */
    collected a = {0}, b = {0};
    sp = qwen_sampling_default_params();
    sp.seed = 42;
    sp.temperature = 1.5f;
    EXPECT_STATUS(qwen_chat_eval(ctx, chat, 2, 1), 0);
    qwen_generate(ctx, &sp, 10, collect, &a);
    EXPECT_STATUS(qwen_chat_eval(ctx, chat, 2, 1), 0);
    qwen_generate(ctx, &sp, 10, collect, &b);
    CHECK(a.count == b.count && !memcmp(a.tokens, b.tokens, sizeof(int32_t) * (size_t)a.count), "same seed, same tokens");
    sp.top_p = 2;
    EXPECT_STATUS(qwen_generate(ctx, &sp, 10, NULL, NULL), QWEN_ERR_INVALID_ARGUMENT);
    sp = qwen_sampling_default_params();
    EXPECT_STATUS(qwen_generate(ctx, &sp, -1, NULL, NULL), QWEN_ERR_INVALID_ARGUMENT);

    /* cancellation */
    EXPECT_STATUS(qwen_context_cancel(ctx), 0);
    EXPECT_STATUS(qwen_generate(ctx, &sp, 10, NULL, NULL), QWEN_ERR_CANCELLED);
    CHECK(qwen_generate(ctx, &sp, 2, NULL, NULL) >= 0, "usable after cancellation");

    /* filling the context during generation */
    EXPECT_STATUS(qwen_context_reset(ctx), 0);
    EXPECT_STATUS(qwen_chat_eval(ctx, chat, 2, 1), 0);
    sp.temperature = 0;
    collected full = {0};
    EXPECT_STATUS(qwen_generate(ctx, &sp, 100, collect, &full), QWEN_ERR_CONTEXT_FULL);
    CHECK(qwen_context_n_past(ctx) == 128 && full.count == 61, "filled to n_ctx (%d, %d tokens)", qwen_context_n_past(ctx), full.count);
    EXPECT_STATUS(qwen_context_reset(ctx), 0);
    EXPECT_STATUS(qwen_context_eval_tokens(ctx, chat_ids, 10, NULL), 0);

    qwen_context_free(ctx);
    CHECK(qwen_context_n_past(ctx) < 0, "freed handle is rejected");
    free(logits);
    free(expected);
}

/* Model info, last-position logits and embedding, state save/load, stop strings, extra sampling fields. */
static void test_chat_features(qwen_model *m) {
    qwen_model_details info;
    EXPECT_STATUS(qwen_model_info(m, &info), 0);
    CHECK(!strcmp(info.architecture, "qwen2") && info.n_vocab == 2112 && info.n_embd == 64 && info.n_layer == 2 &&
          info.token_eot == 2050 && info.token_eos == 2050 && info.n_params > 100000, "model info (%s)", info.architecture);
    EXPECT_STATUS(qwen_model_info(m, NULL), QWEN_ERR_INVALID_ARGUMENT);

    qwen_context_params cp = qwen_context_default_params();
    cp.n_ctx = 160;
    qwen_context *a = NULL, *b = NULL;
    EXPECT_STATUS(qwen_context_new(m, &cp, &a), 0);
    EXPECT_STATUS(qwen_context_new(m, &cp, &b), 0);
    if (!a || !b) return;
    float logits[2112], again[2112], embedding[64];
    EXPECT_STATUS(qwen_context_logits(a, logits, 2112), QWEN_ERR_INVALID_ARGUMENT); /* nothing evaluated yet */
    EXPECT_STATUS(qwen_chat_eval(a, chat, 2, 1), 0);
    EXPECT_STATUS(qwen_context_logits(a, logits, 2112), 2112);
    EXPECT_STATUS(qwen_context_logits(a, logits, 100), QWEN_ERR_BUFFER_TOO_SMALL);
    EXPECT_STATUS(qwen_context_embedding(a, embedding, 64), 64);
    double norm = 0;
    for (int i = 0; i < 64; i++) norm += (double)embedding[i] * embedding[i];
    CHECK(norm > 0 && isfinite(norm), "embedding is a real vector");

    /* state: save from a, load into b (which holds something else), continue identically */
    int64_t size = qwen_context_state_size(a);
    CHECK(size > 0, "state size %lld", (long long)size);
    void *state = malloc((size_t)size);
    EXPECT_STATUS((int)(qwen_context_state_save(a, state, size) == size ? 0 : -99), 0);
    CHECK(qwen_context_state_save(a, state, size - 1) == QWEN_ERR_BUFFER_TOO_SMALL, "state buffer too small");
    qwen_chat_message other[1] = {{"user", "unrelated"}};
    EXPECT_STATUS(qwen_chat_eval(b, other, 1, 1), 0);
    EXPECT_STATUS(qwen_context_state_load(b, state, size), 0);
    CHECK(qwen_context_n_past(b) == 67, "restored n_past %d", qwen_context_n_past(b));
    EXPECT_STATUS(qwen_context_logits(b, again, 2112), 2112);
    CHECK(!memcmp(logits, again, sizeof logits), "restored logits");
    qwen_sampling_params sp = qwen_sampling_default_params();
    sp.temperature = 0;
    collected ca = {0}, cb = {0};
    CHECK(qwen_generate(a, &sp, 8, collect, &ca) == 8 && qwen_generate(b, &sp, 8, collect, &cb) == 8 &&
          !memcmp(ca.tokens, cb.tokens, sizeof(int32_t) * 8), "restored context continues identically");
    EXPECT_STATUS(qwen_context_state_load(b, state, size - 5), QWEN_ERR_FORMAT);
    EXPECT_STATUS(qwen_context_state_load(b, NULL, size), QWEN_ERR_INVALID_ARGUMENT);
    char path[] = "/tmp/qwen-capi-state-XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) close(fd);
    EXPECT_STATUS(qwen_context_state_save_file(a, path), 0);
    EXPECT_STATUS(qwen_context_reset(b), 0);
    EXPECT_STATUS(qwen_context_state_load_file(b, path), 0);
    CHECK(qwen_context_n_past(b) == qwen_context_n_past(a), "state file round trip");
    remove(path);
    EXPECT_STATUS(qwen_context_state_load_file(b, "/nonexistent/state"), QWEN_ERR_IO);
    free(state);

    /* stop strings: generation stops at the first occurrence, which is not delivered */
    collected full = {0}, cut = {0};
    EXPECT_STATUS(qwen_chat_eval(a, chat, 2, 1), 0);
    CHECK(qwen_generate(a, &sp, 24, collect, &full) == 24, "free run");
    if (full.length > 6) {
        char stop[4];
        memcpy(stop, full.text + full.length / 2, 3);
        stop[3] = 0;
        const char *stops[2] = {"\x01never", stop};
        EXPECT_STATUS(qwen_chat_eval(a, chat, 2, 1), 0);
        int n = qwen_generate_ex(a, &sp, 24, stops, 2, collect, &cut);
        const char *first = strstr(full.text, stop);
        CHECK(n > 0 && first && cut.length == (size_t)(first - full.text) && !memcmp(cut.text, full.text, cut.length),
              "stop string cuts the text (%d tokens, %zu bytes)", n, cut.length);
    }
    EXPECT_STATUS(qwen_generate_ex(a, &sp, 4, NULL, 1, NULL, NULL), QWEN_ERR_INVALID_ARGUMENT);
    /* the extra sampling fields are validated and used */
    sp = qwen_sampling_default_params();
    CHECK(sp.typical_p == 1 && sp.presence_penalty == 0 && sp.frequency_penalty == 0, "sampling defaults");
    sp.typical_p = 0;
    EXPECT_STATUS(qwen_generate(a, &sp, 4, NULL, NULL), QWEN_ERR_INVALID_ARGUMENT);
    sp.typical_p = 0.5f;
    sp.presence_penalty = 0.5f;
    sp.frequency_penalty = 0.5f;
    sp.seed = 3;
    CHECK(qwen_generate(a, &sp, 4, NULL, NULL) >= 0, "typical + penalties");
    qwen_context_free(a);
    qwen_context_free(b);

    /* multi-turn: each turn evaluates only what is new */
    qwen_context *mt = NULL;
    cp.n_ctx = 256;
    EXPECT_STATUS(qwen_context_new(m, &cp, &mt), 0);
    qwen_chat_message turns[5] = {{"system", "You are terse."}, {"user", "Hello!"}, {"assistant", "Hi."},
                                  {"user", "What is two plus two?"}, {"assistant", "Four."}};
    EXPECT_STATUS(qwen_chat_eval(mt, turns, 2, 1), 0);
    int64_t first = qwen_context_n_evaluated(mt);
    CHECK(first == qwen_context_n_past(mt), "first turn evaluates everything");
    EXPECT_STATUS(qwen_chat_eval(mt, turns, 4, 1), 0);
    int64_t second = qwen_context_n_evaluated(mt) - first;
    CHECK(second > 0 && second < qwen_context_n_past(mt) - first + 2, "second turn evaluates only what is new (%lld)", (long long)second);
    EXPECT_STATUS(qwen_chat_eval(mt, turns, 4, 1), 0);
    CHECK(qwen_context_n_evaluated(mt) == first + second, "an unchanged conversation costs nothing");
    CHECK(qwen_context_n_evaluated(NULL) < 0, "n_evaluated(NULL)");
    qwen_context_free(mt);

    /* a chat longer than the cache: CONTEXT_FULL by default, old turns dropped with the sliding window */
    qwen_chat_message longchat[25];
    char texts[25][64];
    longchat[0] = (qwen_chat_message){"system", "You are terse."};
    for (int i = 1; i < 25; i++) {
        snprintf(texts[i], sizeof texts[i], i % 2 ? "Question %d: what is %d + %d?" : "The answer is %d.", i, i, i);
        longchat[i] = (qwen_chat_message){i % 2 ? "user" : "assistant", texts[i]};
    }
    cp.n_ctx = 128;
    qwen_context *w = NULL;
    EXPECT_STATUS(qwen_context_new(m, &cp, &w), 0);
    EXPECT_STATUS(qwen_chat_eval(w, longchat, 25, 1), QWEN_ERR_CONTEXT_FULL);
    qwen_context_free(w);
    cp.sliding_window = 1;
    EXPECT_STATUS(qwen_context_new(m, &cp, &w), 0);
    EXPECT_STATUS(qwen_chat_eval(w, longchat, 25, 1), 0);
    CHECK(qwen_context_n_past(w) < 128, "window fits (%d)", qwen_context_n_past(w));
    sp = qwen_sampling_default_params();
    sp.temperature = 0;
    CHECK(qwen_generate(w, &sp, 150, NULL, NULL) >= 0, "generation slides instead of failing");
    qwen_context_free(w);
}

typedef struct { qwen_model *model; int32_t tokens[16]; int count; int status; } worker_job;

static void *worker(void *arg) {
    worker_job *job = arg;
    qwen_context_params cp = qwen_context_default_params();
    cp.n_ctx = 96;
    cp.n_threads = 1;
    qwen_context *ctx = NULL;
    job->status = qwen_context_new(job->model, &cp, &ctx);
    if (job->status) return NULL;
    job->status = qwen_chat_eval(ctx, chat, 2, 1);
    qwen_sampling_params sp = qwen_sampling_default_params();
    sp.temperature = 0;
    collected c = {0};
    if (!job->status) job->status = qwen_generate(ctx, &sp, 16, collect, &c) == 16 ? 0 : -100;
    memcpy(job->tokens, c.tokens, sizeof job->tokens);
    job->count = c.count;
    qwen_context_free(ctx);
    return NULL;
}

static void test_concurrent_contexts(qwen_model *m) {
    worker_job jobs[4];
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].model = m;
        pthread_create(&threads[i], NULL, worker, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) pthread_join(threads[i], NULL);
    for (int i = 0; i < 4; i++) {
        CHECK(jobs[i].status == 0 && jobs[i].count == 16, "worker %d status %d", i, jobs[i].status);
        CHECK(!memcmp(jobs[i].tokens, jobs[0].tokens, sizeof jobs[0].tokens), "worker %d tokens equal", i);
    }
    CHECK(!memcmp(jobs[0].tokens, greedy_ids, sizeof greedy_ids), "threaded greedy equals transformers'");
}

/* Qwen3 (family/qwen3-f32.gguf, which carries the real Qwen3 chat template): qwen_chat_eval_ex with thinking
 * on and off evaluates exactly the tokens of transformers' rendering (checked through n_past and the last
 * logits of the same text evaluated token by token in a fresh context). */
static int eval_text_logits(qwen_model *m, const char *text, float *logits, int32_t *n_tokens) {
    int32_t ids[256];
    int n = qwen_tokenize(m, text, 1, ids, 256, NULL);
    *n_tokens = n;
    if (n <= 0) return 0;
    qwen_context *ctx = NULL;
    qwen_context_params cp = qwen_context_default_params();
    cp.n_ctx = 256;
    cp.kv_type = QWEN_KV_F32;
    if (qwen_context_new(m, &cp, &ctx) != QWEN_OK) return 0;
    int ok = qwen_context_eval_tokens(ctx, ids, n, logits) == QWEN_OK;
    qwen_context_free(ctx);
    return ok;
}

static void test_chat_thinking(void) {
    qwen_chat_options defaults = qwen_chat_default_options();
    CHECK(defaults.enable_thinking == 1, "thinking is on by default");
    qwen_model *m = NULL;
    EXPECT_STATUS(qwen_model_load(path_of("family/qwen3-f32.gguf"), NULL, &m), 0);
    if (!m) return;
    const int32_t vocab = qwen_model_n_vocab(m);
    float *got = malloc(sizeof(float) * (size_t)vocab), *want = malloc(sizeof(float) * (size_t)vocab);
    qwen_context *ctx = NULL;
    qwen_context_params cp = qwen_context_default_params();
    cp.n_ctx = 256;
    cp.kv_type = QWEN_KV_F32;
    EXPECT_STATUS(qwen_context_new(m, &cp, &ctx), 0);
    if (!ctx || !got || !want) { free(got); free(want); qwen_model_free(m); return; }

    /* thinking on (NULL options, or enable_thinking 1): the 67-token ChatML prompt */
    EXPECT_STATUS(qwen_chat_eval_ex(ctx, chat, 2, 1, NULL), 0);
    CHECK(qwen_context_n_past(ctx) == 67, "thinking on: n_past %d", qwen_context_n_past(ctx));
    qwen_chat_options on = defaults;
    EXPECT_STATUS(qwen_chat_eval_ex(ctx, chat, 2, 1, &on), 0);
    CHECK(qwen_context_n_past(ctx) == 67, "same prompt again");

    /* thinking off: an empty think block after the assistant header; only it is evaluated */
    static const char *off_suffix = "<think>\n\n</think>\n\n";
    char text[1024];
    snprintf(text, sizeof text, "%s%s", chat_text, off_suffix);
    int32_t n_off = 0;
    CHECK(eval_text_logits(m, text, want, &n_off) && n_off == 71, "reference evaluation (%d tokens)", n_off);
    qwen_chat_options off = defaults;
    off.enable_thinking = 0;
    EXPECT_STATUS(qwen_chat_eval_ex(ctx, chat, 2, 1, &off), 0);
    CHECK(qwen_context_n_past(ctx) == n_off, "thinking off: n_past %d, expected %d", qwen_context_n_past(ctx), n_off);
    int32_t tok[8];
    int n_tok = qwen_tokenize(m, "x", 0, tok, 8, NULL);
    float *last = malloc(sizeof(float) * (size_t)vocab);
    /* the cached logits are those of the last prompt token: compare by evaluating one more token in both */
    if (last && n_tok == 1) {
        EXPECT_STATUS(qwen_context_eval_tokens(ctx, tok, 1, got), 0);
        snprintf(text, sizeof text, "%s%sx", chat_text, off_suffix);
        int32_t n_x = 0;
        CHECK(eval_text_logits(m, text, last, &n_x) && n_x == n_off + 1, "reference + x");
        float worst = 0;
        for (int32_t i = 0; i < vocab; i++) worst = fmaxf(worst, fabsf(got[i] - last[i]));
        CHECK(worst < 1e-4f, "thinking off: same logits as the transformers rendering (max |d| %g)", (double)worst);
    }
    free(last);

    /* history: an earlier assistant turn loses its <think> block (as the Qwen3 template renders it) */
    const qwen_chat_message history[4] = {
        {"system", "You are a helpful assistant."},
        {"user", "What is 2+2?"},
        {"assistant", "<think>\nThe user asks a sum.\n2+2=4.\n</think>\n\nIt is 4."},
        {"user", "And 3+3?"},
    };
    static const char *history_text =
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\nIt is 4.<|im_end|>\n<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n"
        "<think>\n\n</think>\n\n";
    int32_t ids[256];
    int n_hist = qwen_tokenize(m, history_text, 1, ids, 256, NULL);
    EXPECT_STATUS(qwen_chat_eval_ex(ctx, history, 4, 1, &off), 0);
    CHECK(n_hist > 0 && qwen_context_n_past(ctx) == n_hist, "history: n_past %d, expected %d", qwen_context_n_past(ctx), n_hist);
    char rendered[1024];
    int len = qwen_chat_apply_template(m, history, 4, 1, rendered, (int32_t)sizeof rendered, NULL);
    CHECK(len > 0 && !strncmp(rendered, history_text, (size_t)len) && (size_t)len + strlen(off_suffix) == strlen(history_text),
          "apply_template (thinking on) = the same text without the empty think block");

    /* errors */
    qwen_chat_options bad = defaults;
    bad.enable_thinking = 2;
    EXPECT_STATUS(qwen_chat_eval_ex(ctx, chat, 2, 1, &bad), QWEN_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(qwen_chat_eval_ex(NULL, chat, 2, 1, NULL), QWEN_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(qwen_chat_eval_ex(ctx, NULL, 2, 1, NULL), QWEN_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(qwen_chat_eval_ex(ctx, chat, 0, 1, &off), QWEN_ERR_INVALID_ARGUMENT);

    qwen_context_free(ctx);
    qwen_model_free(m);
    free(got);
    free(want);
}

/* qwen_model_quantize: the written file loads; bad arguments are errors and leave no file behind. */
static void test_quantize(void) {
    char out[] = "/tmp/qwen-capi-quantize-XXXXXX";
    int fd = mkstemp(out);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0) return;
    close(fd);
    qwen_quantize_params p = qwen_quantize_default_params();
    CHECK(p.type && strcmp(p.type, "Q8_0") == 0 && p.n_threads == 0 && p.pure == 0, "quantize defaults");
    p.type = "q4_k_m";
    EXPECT_STATUS(qwen_model_quantize(path_of("tiny/qwen2-f32.gguf"), out, &p), 0);
    qwen_model *m = NULL;
    EXPECT_STATUS(qwen_model_load(out, NULL, &m), 0);
    qwen_model_details d;
    if (m && qwen_model_info(m, &d) == 0) CHECK(strcmp(d.weight_type, "Q4_K_M") == 0, "weight type %s", d.weight_type);
    qwen_model_free(m);

    EXPECT_STATUS(qwen_model_quantize(NULL, out, NULL), QWEN_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(qwen_model_quantize(path_of("tiny/qwen2-f32.gguf"), NULL, NULL), QWEN_ERR_INVALID_ARGUMENT);
    p.type = "IQ9_Z";
    EXPECT_STATUS(qwen_model_quantize(path_of("tiny/qwen2-f32.gguf"), out, &p), QWEN_ERR_UNSUPPORTED);
    CHECK(strstr(qwen_last_error(), "IQ9_Z") != NULL, "message names the type");
    p = qwen_quantize_default_params();
    p.n_threads = -1;
    EXPECT_STATUS(qwen_model_quantize(path_of("tiny/qwen2-f32.gguf"), out, &p), QWEN_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(qwen_model_quantize("/nonexistent.gguf", out, NULL), QWEN_ERR_IO);
    EXPECT_STATUS(qwen_model_quantize(path_of("tiny/qwen2-f32.gguf"), "/nonexistent-dir/out.gguf", NULL), QWEN_ERR_IO);
    CHECK(access("/nonexistent-dir/out.gguf.part", F_OK) != 0, "no partial file");
    unlink(out);
}

/* ---- images (Qwen2-VL): decoding, embeddings, prompts and chats with images, the llama.cpp GGUF pair ---- */

static const char *vl_prompt =
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    "<|vision_start|><|image_pad|><|vision_end|>Describe this image.<|im_end|>\n<|im_start|>assistant\n";

static void test_vision(void) {
    qwen_image *img = NULL, *bad = NULL;
    EXPECT_STATUS(qwen_image_load(path_of("vision/images/rgb_333x215.png"), &img), 0);
    CHECK(qwen_image_width(img) == 333 && qwen_image_height(img) == 215, "image size");
    EXPECT_STATUS(qwen_image_load(path_of("vision/images/bad_truncated.png"), &bad), QWEN_ERR_FORMAT);
    EXPECT_STATUS(qwen_image_load(path_of("vision/images/bad_garbage.jpg"), &bad), QWEN_ERR_FORMAT);
    EXPECT_STATUS(qwen_image_load(path_of("vision/images/bad_huge.png"), &bad), QWEN_ERR_UNSUPPORTED);
    EXPECT_STATUS(qwen_image_load(path_of("vision/images/none.png"), &bad), QWEN_ERR_IO);
    CHECK(bad == NULL, "out cleared on failure");
    qwen_image_params ip = qwen_image_default_params();
    ip.max_pixels = 1000;
    EXPECT_STATUS(qwen_image_load_ex(path_of("vision/images/rgb_333x215.png"), &ip, &bad), QWEN_ERR_UNSUPPORTED);
    EXPECT_STATUS(qwen_image_load(NULL, &bad), QWEN_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(qwen_image_from_rgb8(NULL, 2, 2, &bad), QWEN_ERR_INVALID_ARGUMENT);
    uint8_t px[12] = {0};
    EXPECT_STATUS(qwen_image_from_rgb8(px, 0, 2, &bad), QWEN_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(qwen_image_from_rgb8(px, 2, 2, &bad), 0);
    CHECK(qwen_image_width(bad) == 2, "rgb8 image");
    qwen_image_free(bad);
    qwen_image_free(bad); /* stale: ignored */
    CHECK(qwen_image_width(bad) == QWEN_ERR_INVALID_ARGUMENT, "freed image handle rejected");
    /* from memory */
    FILE *f = fopen(path_of("vision/images/photo_640x427.jpg"), "rb");
    static unsigned char jpeg[1 << 17];
    size_t jpeg_size = f ? fread(jpeg, 1, sizeof jpeg, f) : 0;
    if (f) fclose(f);
    qwen_image *mem = NULL;
    EXPECT_STATUS(qwen_image_decode(jpeg, (int64_t)jpeg_size, NULL, &mem), 0);
    CHECK(qwen_image_width(mem) == 640 && qwen_image_height(mem) == 427, "decoded from memory");
    EXPECT_STATUS(qwen_image_decode(jpeg, 100, NULL, &bad), QWEN_ERR_FORMAT);

    /* Hugging Face folder: the tower loads with it */
    qwen_model *m = NULL;
    EXPECT_STATUS(qwen_model_load(path_of("vision/qwen2vl-hf"), NULL, &m), 0);
    if (m && img) {
        int vocab = qwen_model_n_vocab(m), n_embd = qwen_model_n_embd(m);
        CHECK(qwen_model_has_vision(m) == 1 && n_embd == 32, "vision model");
        CHECK(qwen_model_has_audio(m) == 0, "no audio tower in a vision model");
        CHECK(qwen_image_n_tokens(m, img) == 96, "96 tokens for 333x215 (%d)", qwen_image_n_tokens(m, img));
        qwen_context_params cp = qwen_context_default_params();
        cp.n_ctx = 1024;
        cp.kv_type = QWEN_KV_F32;
        qwen_context *ctx = NULL;
        EXPECT_STATUS(qwen_context_new(m, &cp, &ctx), 0);
        int32_t n_tokens = 0;
        EXPECT_STATUS(qwen_image_embed(ctx, img, NULL, 0, &n_tokens), QWEN_ERR_BUFFER_TOO_SMALL);
        CHECK(n_tokens == 96, "n_tokens reported when the buffer is short");
        static float rows[96 * 32], ref[96 * 32];
        CHECK(qwen_image_embed(ctx, img, rows, 96 * 32, &n_tokens) == 96, "embed");
        FILE *rf = fopen(path_of("vision/refs/qwen2vl_embed_rgb_333x215.f32"), "rb");
        size_t got = rf ? fread(ref, 4, 96 * 32, rf) : 0;
        if (rf) fclose(rf);
        float worst = 0;
        for (int i = 0; i < 96 * 32; i++) worst = fmaxf(worst, fabsf(rows[i] - ref[i]));
        CHECK(got == 96 * 32 && worst <= 1e-3f, "embeddings vs transformers: max |d| %g", (double)worst);
        /* one image in the model's prompt syntax */
        const qwen_image *one[1] = {img}, *two[2] = {img, img};
        float *logits = malloc(sizeof(float) * (size_t)vocab), *expect = malloc(sizeof(float) * (size_t)vocab);
        EXPECT_STATUS(qwen_context_eval_prompt(ctx, vl_prompt, one, 1, NULL, 0, logits), 0);
        CHECK(qwen_context_n_past(ctx) == 132, "prompt of 132 positions (%d)", qwen_context_n_past(ctx));
        if (read_last_logits(path_of("vision/refs/qwen2vl_one.logits.f32"), 4, expect, vocab)) {
            worst = 0;
            for (int i = 0; i < vocab; i++) worst = fmaxf(worst, fabsf(logits[i] - expect[i]));
            CHECK(worst <= 1e-3f, "logits vs transformers: max |d| %g", (double)worst);
        } else {
            CHECK(0, "cannot read the reference logits");
        }
        /* placeholders and images must match */
        qwen_context_reset(ctx);
        EXPECT_STATUS(qwen_context_eval_prompt(ctx, vl_prompt, NULL, 0, NULL, 0, NULL), QWEN_ERR_INVALID_ARGUMENT);
        EXPECT_STATUS(qwen_context_eval_prompt(ctx, vl_prompt, two, 2, NULL, 0, NULL), QWEN_ERR_INVALID_ARGUMENT);
        EXPECT_STATUS(qwen_context_eval_prompt(ctx, vl_prompt, one, 1, NULL, 1, NULL), QWEN_ERR_INVALID_ARGUMENT);
        CHECK(qwen_context_n_past(ctx) == 0, "nothing evaluated on errors");
        /* chat: <image> markers, then a second turn reusing the cached prefix and embeddings */
        qwen_chat_message turn[3] = {{"user", "<image>\nDescribe this image."}, {"assistant", "A picture."}, {"user", "And this one? <image>"}};
        EXPECT_STATUS(qwen_chat_eval_media(ctx, turn, 1, one, 1, NULL, 0, 1, NULL), 0);
        int past = qwen_context_n_past(ctx);
        CHECK(past > 96, "chat with an image (%d positions)", past);
        CHECK(qwen_generate(ctx, NULL, 4, NULL, NULL) >= 0, "generate after an image");
        int64_t before = qwen_context_n_evaluated(ctx);
        const qwen_image *both[2] = {img, mem};
        EXPECT_STATUS(qwen_chat_eval_media(ctx, turn, 3, both, 2, NULL, 0, 1, NULL), 0);
        int second = qwen_image_n_tokens(m, mem);
        CHECK(qwen_context_n_evaluated(ctx) - before < second + 40, "second turn reuses the first (%lld evaluated)",
              (long long)(qwen_context_n_evaluated(ctx) - before));
        EXPECT_STATUS(qwen_image_set_pixel_bounds(mem, 3136, 50176), 0);
        CHECK(qwen_image_n_tokens(m, mem) == 54, "bounds give 54 tokens (%d)", qwen_image_n_tokens(m, mem));
        EXPECT_STATUS(qwen_image_set_pixel_bounds(mem, 100, 10), QWEN_ERR_INVALID_ARGUMENT);
        free(logits);
        free(expect);
        qwen_context_free(ctx);
    }
    qwen_model_free(m);

    /* llama.cpp's pair: text GGUF + mmproj */
    m = NULL;
    EXPECT_STATUS(qwen_model_load(path_of("vision/qwen2vl-q8_0.gguf"), NULL, &m), 0);
    if (m && img) {
        CHECK(qwen_model_has_vision(m) == 0, "no tower before the projector");
        EXPECT_STATUS(qwen_image_n_tokens(m, img), QWEN_ERR_UNSUPPORTED);
        EXPECT_STATUS(qwen_model_load_projector(m, path_of("vision/qwen2vl-f32.gguf")), QWEN_ERR_UNSUPPORTED);
        EXPECT_STATUS(qwen_model_load_projector(m, path_of("vision/none.gguf")), QWEN_ERR_IO);
        EXPECT_STATUS(qwen_model_load_projector(m, NULL), QWEN_ERR_INVALID_ARGUMENT);
        EXPECT_STATUS(qwen_model_load_projector(m, path_of("vision/mmproj-qwen2vl-q8_0.gguf")), 0);
        CHECK(qwen_model_has_vision(m) == 1, "tower after the projector");
        qwen_context *ctx = NULL;
        EXPECT_STATUS(qwen_context_new(m, NULL, &ctx), 0);
        qwen_chat_message q[1] = {{"user", "<image>What is it?"}};
        const qwen_image *one[1] = {img};
        EXPECT_STATUS(qwen_chat_eval_media(ctx, q, 1, one, 1, NULL, 0, 1, NULL), 0);
        CHECK(qwen_generate(ctx, NULL, 4, NULL, NULL) >= 0, "generate with the GGUF pair");
        qwen_context_free(ctx);
    }
    qwen_model_free(m);
    /* a text-only model takes no images */
    m = NULL;
    EXPECT_STATUS(qwen_model_load(path_of("tiny/qwen2-q8_0.gguf"), NULL, &m), 0);
    if (m && img) {
        qwen_context *ctx = NULL;
        EXPECT_STATUS(qwen_context_new(m, NULL, &ctx), 0);
        const qwen_image *one[1] = {img};
        EXPECT_STATUS(qwen_context_eval_prompt(ctx, vl_prompt, one, 1, NULL, 0, NULL), QWEN_ERR_UNSUPPORTED);
        qwen_context_free(ctx);
    }
    qwen_model_free(m);
    qwen_image_free(mem);
    qwen_image_free(img);
}

/* The first-generation Qwen-VL and Qwen-Audio through the C API: prompts with `<img></img>` / `<audio></audio>`
 * placeholders give the original code's last logits. */
static void test_first_generation_media(void) {
    static const char *const cases[2][5] = {
        {"qwen-vl/qwenvl-hf", "vision/images/rgb_333x215.png",
         "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nPicture 1: <img></img>\nDescribe the "
         "image.<|im_end|>\n<|im_start|>assistant\n", "qwen-vl/refs/orig_qwenvl_one.logits.f32", "300 10"},
        {"qwen-audio/qwenaudio-hf", "qwen-audio/inputs/short16k.wav",
         "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nAudio 1:<audio></audio>\nWhat does the "
         "speaker say?<|im_end|>\n<|im_start|>assistant\n", "qwen-audio/refs/chat_short.last_logits.f32", "84 1"},
    };
    for (int c = 0; c < 2; c++) {
        qwen_model *m = NULL;
        EXPECT_STATUS(qwen_model_load(path_of(cases[c][0]), NULL, &m), 0);
        if (!m) continue;
        int positions = 0, rows = 0;
        sscanf(cases[c][4], "%d %d", &positions, &rows);
        qwen_image *img = NULL;
        qwen_audio *clip = NULL;
        if (c == 0) EXPECT_STATUS(qwen_image_load(path_of(cases[c][1]), &img), 0);
        else EXPECT_STATUS(qwen_audio_load(path_of(cases[c][1]), &clip), 0);
        const qwen_image *images[1] = {img};
        const qwen_audio *clips[1] = {clip};
        qwen_context_params cp = qwen_context_default_params();
        cp.n_ctx = 512;
        cp.kv_type = QWEN_KV_F32;
        qwen_context *ctx = NULL;
        EXPECT_STATUS(qwen_context_new(m, &cp, &ctx), 0);
        int vocab = qwen_model_n_vocab(m);
        float *logits = malloc(sizeof(float) * (size_t)vocab), *expect = malloc(sizeof(float) * (size_t)vocab);
        EXPECT_STATUS(qwen_context_eval_prompt(ctx, cases[c][2], c == 0 ? images : NULL, c == 0, c == 1 ? clips : NULL, c == 1, logits), 0);
        CHECK(qwen_context_n_past(ctx) == positions, "%s: %d positions (%d)", cases[c][0], positions, qwen_context_n_past(ctx));
        float worst = 1e9f;
        if (read_last_logits(path_of(cases[c][3]), rows, expect, vocab)) {
            worst = 0;
            for (int i = 0; i < vocab; i++) worst = fmaxf(worst, fabsf(logits[i] - expect[i]));
        }
        CHECK(worst <= 1e-3f, "%s: logits vs the original code: max |d| %g", cases[c][0], (double)worst);
        free(logits);
        free(expect);
        qwen_context_free(ctx);
        qwen_image_free(img);
        qwen_audio_free(clip);
        qwen_model_free(m);
    }
}

int main(int argc, char **argv) {
    fixtures = argc > 1 ? argv[1] : "Tests/Fixtures";
    test_quantize();
    test_library();
    test_load_errors();
    test_invalid_handles();

    qwen_model *m = NULL;
    EXPECT_STATUS(qwen_model_load(path_of("tiny/qwen2-f32.gguf"), NULL, &m), 0);
    if (m) {
        CHECK(qwen_model_n_ctx_train(m) == 32768, "n_ctx_train %d", qwen_model_n_ctx_train(m));
        test_tokenizer(m);
        test_eval_and_generate(m, "tiny/refs/hf_qwen2_f32.logits.f32", 1e-3f);
        test_chat_features(m);
        test_concurrent_contexts(m);
        qwen_model_free(m);
    }
    /* a Hugging Face folder (sharded BF16) without mmap, and the quantized GGUF */
    qwen_model_params mp = qwen_model_default_params();
    mp.use_mmap = 0;
    m = NULL;
    EXPECT_STATUS(qwen_model_load(path_of("tiny/qwen25-hf"), &mp, &m), 0);
    if (m) {
        test_eval_and_generate(m, "tiny/refs/hf_qwen25_f32.logits.f32", 1e-3f);
        qwen_model_free(m);
    }
    m = NULL;
    EXPECT_STATUS(qwen_model_load(path_of("tiny/qwen2-q8_0.gguf"), NULL, &m), 0);
    if (m) {
        /* the model may be freed while a context still uses it */
        qwen_context *ctx = NULL;
        EXPECT_STATUS(qwen_context_new(m, NULL, &ctx), 0);
        qwen_model_free(m);
        EXPECT_STATUS(qwen_chat_eval(ctx, chat, 2, 1), 0);
        CHECK(qwen_generate(ctx, NULL, 4, NULL, NULL) >= 0, "generate after the model handle was freed");
        qwen_context_free(ctx);
    }
    test_chat_thinking();
    test_vision();
    test_first_generation_media();
    printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
