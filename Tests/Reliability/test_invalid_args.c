/*
 * Reliability test of the C API (docs/RELIABILITY.md):
 *  - a table of invalid arguments: every public function of include/qwen.h called with NULL pointers, freed handles,
 *    handles of the wrong kind, forged pointers, negative or oversized counts, capacity 0 and invalid enum values
 *    returns its documented status (QWEN_ERR_INVALID_ARGUMENT unless noted) with a message, and nothing crashes.
 *    The header is read at run time: a declared function without a row fails the test.
 *    The media functions (images, audio clips, projectors, prompts and chats with media) have rows of their own, with
 *    Qwen2-VL, Qwen2-Audio and a text-only model: counts against placeholders, modalities a model does not take
 *    (QWEN_ERR_UNSUPPORTED), absurd sizes, rates and limits, files that are missing or not media;
 *  - a full context returns QWEN_ERR_CONTEXT_FULL, evaluates nothing, and works again after qwen_context_reset;
 *  - under an address-space limit (a child process; skipped under sanitizers and valgrind, which reserve far more
 *    address space): a KV cache that cannot be allocated gives QWEN_ERR_OUT_OF_MEMORY and the model stays usable,
 *    and hostile files (huge counts, lengths, dimensions, offsets; JSON nested 10^6 deep) are refused with their
 *    error instead of allocating; a 100000 x 100000 PNG with max_pixels INT64_MAX, and an image resized to 2^34 pixels
 *    (min_pixels 2^34), give QWEN_ERR_OUT_OF_MEMORY (or are refused) instead of aborting;
 *  - JSON nested 10^6 deep is refused on a thread with a 256 KiB stack (hosts run us on small stacks).
 *
 *   test_invalid_args FIXTURES_DIR HEADER      (Tests/Fixtures include/qwen.h)
 *
 * Strict C11 (plus POSIX); build: cc -std=c11 -Wall -Wextra -Werror -Iinclude ... -lqwen -pthread
 */
#define _GNU_SOURCE
#include <qwen.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || __has_feature(address_sanitizer) || \
    __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define UNDER_SANITIZER 1
#else
#define UNDER_SANITIZER 0
#endif

static int failures = 0, checks = 0;
static const char *fixtures;
static char scratch[256];

#define CHECK(cond, ...)                                                                      \
    do {                                                                                      \
        checks++;                                                                             \
        if (!(cond)) {                                                                        \
            failures++;                                                                       \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                   \
            fprintf(stderr, __VA_ARGS__);                                                     \
            fprintf(stderr, " (last error: %s)\n", qwen_last_error());                        \
        }                                                                                     \
    } while (0)

static char *path_of(const char *relative) {
    static char buf[4][1024];
    static int next = 0;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", fixtures, relative);
    return b;
}

static char *scratch_path(const char *name) {
    static char buf[4][512];
    static int next = 0;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", scratch, name);
    return b;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- The table ---- */

/* Functions that got at least one row (checked against the header at the end). */
static char tested[256][64];
static int n_tested = 0;

static void mark_tested(const char *function) {
    for (int i = 0; i < n_tested; i++)
        if (!strcmp(tested[i], function)) return;
    if (n_tested < 256) snprintf(tested[n_tested++], sizeof tested[0], "%s", function);
}

/* A known message set before each row, so a row's error must be its own. */
static const char *sentinel(void) {
    qwen_context_reset(NULL);
    return "qwen_context_reset: ctx is NULL";
}

static int rows = 0;

/* One row: `got` is what the call returned; a failure status must come with a message of its own. */
static void row(const char *function, const char *what, int64_t expected, int64_t got) {
    rows++;
    mark_tested(function);
    checks++;
    if (got != expected) {
        failures++;
        fprintf(stderr, "FAIL %s (%s): returned %lld (%s), expected %lld (%s); last error: %s\n", function, what,
                (long long)got, qwen_status_string((int)got), (long long)expected, qwen_status_string((int)expected),
                qwen_last_error());
        return;
    }
    if (expected < 0) {
        const char *message = qwen_last_error();
        checks++;
        if (!message || !*message || (strcmp(function, "qwen_context_reset") && !strcmp(message, "qwen_context_reset: ctx is NULL"))) {
            failures++;
            fprintf(stderr, "FAIL %s (%s): no message of its own (\"%s\")\n", function, what, message ? message : "(null)");
        }
    }
}

#define ROW(function, what, expected, call) (sentinel(), row(#function, what, (int64_t)(expected), (int64_t)(call)))
/* A row for a function without a status (void, or a value that cannot be an error): `ok` must hold afterwards. */
#define ROW_OK(function, what, ok) (row(#function, what, 1, (int64_t)((ok) ? 1 : 0)))

static int ignore_token(int32_t token, const char *piece, void *user_data) {
    (void)token, (void)piece, (void)user_data;
    return 0;
}

static void test_table(void) {
    const int INVALID = QWEN_ERR_INVALID_ARGUMENT;
    qwen_model_params mp = qwen_model_default_params();
    mp.n_threads = 1;
    qwen_model *model = NULL, *tmp_model = (qwen_model *)(uintptr_t)0x1;
    qwen_context *ctx = NULL, *tmp_ctx = (qwen_context *)(uintptr_t)0x1;
    if (qwen_model_load(path_of("tiny/qwen2-f32.gguf"), &mp, &model) != QWEN_OK) {
        CHECK(0, "load the tiny model");
        return;
    }
    qwen_context_params cp = qwen_context_default_params();
    cp.n_ctx = 64;
    cp.n_threads = 1;
    cp.kv_type = QWEN_KV_F32;
    if (qwen_context_new(model, &cp, &ctx) != QWEN_OK) {
        CHECK(0, "make a context");
        qwen_model_free(model);
        return;
    }
    /* freed handles (made after the live ones; nothing else registers a handle while the rows run) */
    qwen_model *freed_model = NULL;
    qwen_context *freed_ctx = NULL;
    qwen_model_load(path_of("tiny/qwen2-q8_0.gguf"), &mp, &freed_model);
    qwen_context_new(model, &cp, &freed_ctx);
    qwen_context_free(freed_ctx);
    qwen_model_free(freed_model);
    CHECK(freed_model && freed_ctx, "freed handles made");
    qwen_model *const bad_models[4] = {NULL, freed_model, (qwen_model *)ctx, (qwen_model *)(uintptr_t)0x1000};
    qwen_context *const bad_ctxs[4] = {NULL, freed_ctx, (qwen_context *)model, (qwen_context *)(uintptr_t)0x2000};
    const char *const bad_what[4] = {"NULL handle", "freed handle", "handle of the other kind", "forged pointer"};

    int32_t tokens[8] = {1, 2, 3, 4, 5, 6, 7, 8}, out_tokens[8], needed = 0;
    char buf[256];
    float floats[4096];
    qwen_model_details details;
    qwen_sampling_params sp = qwen_sampling_default_params();
    const qwen_chat_message chat[1] = {{"user", "Hello"}};
    qwen_chat_options opts = qwen_chat_default_options();
    const char *stops[1] = {"x"};

    /* library */
    ROW_OK(qwen_version, "no arguments", qwen_version() && !strcmp(qwen_version(), QWEN_VERSION));
    ROW_OK(qwen_last_error, "after a failure", (qwen_context_reset(NULL), strlen(qwen_last_error()) > 0));
    ROW_OK(qwen_status_string, "unknown status 12345", !strcmp(qwen_status_string(12345), "QWEN_UNKNOWN_STATUS"));
    ROW_OK(qwen_status_string, "INT32_MIN", !strcmp(qwen_status_string(INT32_MIN), "QWEN_UNKNOWN_STATUS"));
    ROW_OK(qwen_status_string, "QWEN_ERR_BUFFER_TOO_SMALL", !strcmp(qwen_status_string(-8), "QWEN_ERR_BUFFER_TOO_SMALL"));
    ROW_OK(qwen_model_default_params, "defaults", qwen_model_default_params().use_mmap == 1);
    ROW_OK(qwen_context_default_params, "defaults", qwen_context_default_params().n_batch == 512);
    ROW_OK(qwen_sampling_default_params, "defaults", qwen_sampling_default_params().seed == UINT64_MAX);
    ROW_OK(qwen_chat_default_options, "defaults", qwen_chat_default_options().enable_thinking == 1);
    ROW_OK(qwen_quantize_default_params, "defaults", qwen_quantize_default_params().type != NULL);

    /* models */
    ROW(qwen_model_load, "path NULL", INVALID, qwen_model_load(NULL, &mp, &tmp_model));
    ROW_OK(qwen_model_load, "out cleared on failure", tmp_model == NULL);
    ROW(qwen_model_load, "out NULL", INVALID, qwen_model_load(path_of("tiny/qwen2-f32.gguf"), &mp, NULL));
    ROW(qwen_model_load, "empty path", INVALID, qwen_model_load("", &mp, &tmp_model));
    ROW(qwen_model_load, "missing file", QWEN_ERR_IO, qwen_model_load("/nonexistent/x.gguf", &mp, &tmp_model));
    ROW(qwen_model_load, "a directory without config.json", QWEN_ERR_IO, qwen_model_load(scratch, &mp, &tmp_model));
    ROW(qwen_model_load, "/dev/zero (not a regular file)", QWEN_ERR_IO, qwen_model_load("/dev/zero", &mp, &tmp_model));
    qwen_model_params bad_mp = mp;
    bad_mp.n_threads = -1;
    ROW(qwen_model_load, "n_threads -1", INVALID, qwen_model_load(path_of("tiny/qwen2-f32.gguf"), &bad_mp, &tmp_model));
    bad_mp.n_threads = 1 << 20;
    ROW(qwen_model_load, "n_threads 2^20", INVALID, qwen_model_load(path_of("tiny/qwen2-f32.gguf"), &bad_mp, &tmp_model));
    for (int i = 0; i < 4; i++) {
        const char *w = bad_what[i];
        qwen_model *bm = bad_models[i];
        ROW(qwen_model_n_vocab, w, INVALID, qwen_model_n_vocab(bm));
        ROW(qwen_model_n_embd, w, INVALID, qwen_model_n_embd(bm));
        ROW(qwen_model_n_ctx_train, w, INVALID, qwen_model_n_ctx_train(bm));
        ROW(qwen_token_is_eog, w, INVALID, qwen_token_is_eog(bm, 0));
        ROW(qwen_model_info, w, INVALID, qwen_model_info(bm, &details));
        ROW(qwen_tokenize, w, INVALID, qwen_tokenize(bm, "hi", 0, out_tokens, 8, NULL));
        ROW(qwen_detokenize, w, INVALID, qwen_detokenize(bm, tokens, 2, buf, sizeof buf, NULL));
        ROW(qwen_context_new, w, INVALID, qwen_context_new(bm, &cp, &tmp_ctx));
        ROW_OK(qwen_context_new, "out cleared on failure", tmp_ctx == NULL);
        ROW(qwen_chat_apply_template, w, INVALID, qwen_chat_apply_template(bm, chat, 1, 1, buf, sizeof buf, NULL));
        qwen_model_free(bm); /* ignored: the live context and model stay usable (checked below) */
        ROW_OK(qwen_model_free, w, qwen_context_n_past(ctx) == 0 && qwen_model_n_vocab(model) == 2112);
    }
    ROW(qwen_token_is_eog, "token -1", 0, qwen_token_is_eog(model, -1));
    ROW(qwen_token_is_eog, "token INT32_MAX", 0, qwen_token_is_eog(model, INT32_MAX));
    ROW(qwen_model_info, "out NULL", INVALID, qwen_model_info(model, NULL));

    /* tokenizer */
    ROW(qwen_tokenize, "text NULL", INVALID, qwen_tokenize(model, NULL, 0, out_tokens, 8, NULL));
    ROW(qwen_tokenize, "tokens NULL, capacity 8", INVALID, qwen_tokenize(model, "hi", 0, NULL, 8, NULL));
    ROW(qwen_tokenize, "capacity -1", INVALID, qwen_tokenize(model, "hi", 0, out_tokens, -1, NULL));
    ROW(qwen_tokenize, "capacity INT32_MIN", INVALID, qwen_tokenize(model, "hi", 0, out_tokens, INT32_MIN, NULL));
    ROW(qwen_tokenize, "capacity 0 (size query)", QWEN_ERR_BUFFER_TOO_SMALL, qwen_tokenize(model, "hello world", 0, NULL, 0, &needed));
    ROW_OK(qwen_tokenize, "size query sets n_needed", needed > 0 && needed == qwen_tokenize(model, "hello world", 0, out_tokens, 8, NULL));
    ROW(qwen_tokenize, "capacity 1 of 2", QWEN_ERR_BUFFER_TOO_SMALL, qwen_tokenize(model, "hello world", 0, out_tokens, 1, &needed));
    ROW(qwen_tokenize, "empty text, capacity 0", 0, qwen_tokenize(model, "", 1, NULL, 0, NULL));
    ROW(qwen_detokenize, "n -1", INVALID, qwen_detokenize(model, tokens, -1, buf, sizeof buf, NULL));
    ROW(qwen_detokenize, "n INT32_MIN", INVALID, qwen_detokenize(model, tokens, INT32_MIN, buf, sizeof buf, NULL));
    ROW(qwen_detokenize, "tokens NULL, n 2", INVALID, qwen_detokenize(model, NULL, 2, buf, sizeof buf, NULL));
    int32_t bad_ids[3][1] = {{-1}, {2112}, {INT32_MAX}};
    for (int i = 0; i < 3; i++) {
        char what[64];
        snprintf(what, sizeof what, "token id %d", bad_ids[i][0]);
        ROW(qwen_detokenize, what, INVALID, qwen_detokenize(model, bad_ids[i], 1, buf, sizeof buf, NULL));
    }
    ROW(qwen_detokenize, "buf NULL, capacity 10", INVALID, qwen_detokenize(model, tokens, 2, NULL, 10, NULL));
    ROW(qwen_detokenize, "capacity -1", INVALID, qwen_detokenize(model, tokens, 2, buf, -1, NULL));
    ROW(qwen_detokenize, "capacity 0 (size query)", QWEN_ERR_BUFFER_TOO_SMALL, qwen_detokenize(model, tokens, 2, NULL, 0, &needed));
    ROW(qwen_detokenize, "n 0", 0, qwen_detokenize(model, NULL, 0, buf, sizeof buf, NULL));

    /* contexts */
    qwen_context_params bad_cp;
    struct { const char *what; int field; int32_t value; int expected; } params[] = {
        {"n_ctx -1", 0, -1, INVALID}, {"n_ctx INT32_MIN", 0, INT32_MIN, INVALID}, {"n_ctx 2^23 (over 2^22)", 0, 1 << 23, INVALID},
        {"n_ctx INT32_MAX", 0, INT32_MAX, INVALID}, {"n_threads -1", 1, -1, INVALID}, {"n_threads 2^20", 1, 1 << 20, INVALID},
        {"n_batch -1", 2, -1, INVALID}, {"n_batch 2^20", 2, 1 << 20, INVALID}, {"kv_type 3", 3, 3, INVALID},
        {"kv_type -1", 3, -1, INVALID}, {"kv_type Q8_0 with head size 16", 3, QWEN_KV_Q8_0, QWEN_ERR_UNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        bad_cp = cp;
        int32_t *fields[4] = {&bad_cp.n_ctx, &bad_cp.n_threads, &bad_cp.n_batch, &bad_cp.kv_type};
        *fields[params[i].field] = params[i].value;
        ROW(qwen_context_new, params[i].what, params[i].expected, qwen_context_new(model, &bad_cp, &tmp_ctx));
    }
    ROW(qwen_context_new, "out NULL", INVALID, qwen_context_new(model, &cp, NULL));
    for (int i = 0; i < 4; i++) {
        const char *w = bad_what[i];
        qwen_context *bc = bad_ctxs[i];
        ROW(qwen_context_reset, w, INVALID, qwen_context_reset(bc));
        ROW(qwen_context_eval_tokens, w, INVALID, qwen_context_eval_tokens(bc, tokens, 1, NULL));
        ROW(qwen_context_n_past, w, INVALID, qwen_context_n_past(bc));
        ROW(qwen_context_n_ctx, w, INVALID, qwen_context_n_ctx(bc));
        ROW(qwen_context_n_evaluated, w, INVALID, qwen_context_n_evaluated(bc));
        ROW(qwen_context_logits, w, INVALID, qwen_context_logits(bc, floats, 4096));
        ROW(qwen_context_embedding, w, INVALID, qwen_context_embedding(bc, floats, 4096));
        ROW(qwen_context_state_size, w, INVALID, qwen_context_state_size(bc));
        ROW(qwen_context_state_save, w, INVALID, qwen_context_state_save(bc, buf, sizeof buf));
        ROW(qwen_context_state_load, w, INVALID, qwen_context_state_load(bc, buf, sizeof buf));
        ROW(qwen_context_state_save_file, w, INVALID, qwen_context_state_save_file(bc, scratch_path("state")));
        ROW(qwen_context_state_load_file, w, INVALID, qwen_context_state_load_file(bc, scratch_path("state")));
        ROW(qwen_context_cancel, w, INVALID, qwen_context_cancel(bc));
        ROW(qwen_generate, w, INVALID, qwen_generate(bc, NULL, 4, NULL, NULL));
        ROW(qwen_generate_ex, w, INVALID, qwen_generate_ex(bc, NULL, 4, stops, 1, NULL, NULL));
        ROW(qwen_chat_eval, w, INVALID, qwen_chat_eval(bc, chat, 1, 1));
        ROW(qwen_chat_eval_ex, w, INVALID, qwen_chat_eval_ex(bc, chat, 1, 1, &opts));
        qwen_context_free(bc); /* ignored */
        ROW_OK(qwen_context_free, w, qwen_context_n_past(ctx) == 0 && qwen_model_n_vocab(model) == 2112);
    }
    /* before anything was evaluated */
    ROW(qwen_context_logits, "nothing evaluated", INVALID, qwen_context_logits(ctx, floats, 4096));
    ROW(qwen_context_embedding, "nothing evaluated", INVALID, qwen_context_embedding(ctx, floats, 4096));
    ROW(qwen_generate, "nothing evaluated", INVALID, qwen_generate(ctx, NULL, 4, NULL, NULL));
    ROW(qwen_context_eval_tokens, "tokens NULL", INVALID, qwen_context_eval_tokens(ctx, NULL, 1, NULL));
    ROW(qwen_context_eval_tokens, "n 0", INVALID, qwen_context_eval_tokens(ctx, tokens, 0, NULL));
    ROW(qwen_context_eval_tokens, "n -1", INVALID, qwen_context_eval_tokens(ctx, tokens, -1, NULL));
    int32_t outside[2] = {5, 2112}, negative[2] = {5, -1};
    ROW(qwen_context_eval_tokens, "token 2112 (= n_vocab)", INVALID, qwen_context_eval_tokens(ctx, outside, 2, NULL));
    ROW(qwen_context_eval_tokens, "token -1", INVALID, qwen_context_eval_tokens(ctx, negative, 2, NULL));
    ROW_OK(qwen_context_eval_tokens, "nothing evaluated by a refused call", qwen_context_n_past(ctx) == 0);
    ROW(qwen_context_eval_tokens, "valid", 0, qwen_context_eval_tokens(ctx, tokens, 4, NULL));
    ROW(qwen_context_logits, "out NULL", INVALID, qwen_context_logits(ctx, NULL, 4096));
    ROW(qwen_context_logits, "capacity -1", INVALID, qwen_context_logits(ctx, floats, -1));
    ROW(qwen_context_logits, "capacity 0", QWEN_ERR_BUFFER_TOO_SMALL, qwen_context_logits(ctx, floats, 0));
    ROW(qwen_context_logits, "capacity n_vocab - 1", QWEN_ERR_BUFFER_TOO_SMALL, qwen_context_logits(ctx, floats, 2111));
    ROW(qwen_context_embedding, "out NULL", INVALID, qwen_context_embedding(ctx, NULL, 64));
    ROW(qwen_context_embedding, "capacity -1", INVALID, qwen_context_embedding(ctx, floats, -1));
    ROW(qwen_context_embedding, "capacity 63", QWEN_ERR_BUFFER_TOO_SMALL, qwen_context_embedding(ctx, floats, 63));
    /* states */
    int64_t state_size = qwen_context_state_size(ctx);
    ROW_OK(qwen_context_state_size, "valid", state_size > 0);
    ROW(qwen_context_state_save, "buf NULL", INVALID, qwen_context_state_save(ctx, NULL, state_size));
    ROW(qwen_context_state_save, "capacity -1", INVALID, qwen_context_state_save(ctx, buf, -1));
    ROW(qwen_context_state_save, "capacity 0", QWEN_ERR_BUFFER_TOO_SMALL, qwen_context_state_save(ctx, buf, 0));
    ROW(qwen_context_state_load, "buf NULL", INVALID, qwen_context_state_load(ctx, NULL, 16));
    ROW(qwen_context_state_load, "size -1", INVALID, qwen_context_state_load(ctx, buf, -1));
    ROW(qwen_context_state_load, "size 0", QWEN_ERR_FORMAT, qwen_context_state_load(ctx, buf, 0));
    memset(buf, 0x5A, sizeof buf);
    ROW(qwen_context_state_load, "garbage", QWEN_ERR_FORMAT, qwen_context_state_load(ctx, buf, sizeof buf));
    ROW_OK(qwen_context_state_load, "a refused state leaves the context as it was", qwen_context_n_past(ctx) == 4);
    ROW(qwen_context_state_save_file, "path NULL", INVALID, qwen_context_state_save_file(ctx, NULL));
    ROW(qwen_context_state_save_file, "unwritable path", QWEN_ERR_IO, qwen_context_state_save_file(ctx, "/nonexistent/dir/state"));
    ROW(qwen_context_state_load_file, "path NULL", INVALID, qwen_context_state_load_file(ctx, NULL));
    ROW(qwen_context_state_load_file, "missing file", QWEN_ERR_IO, qwen_context_state_load_file(ctx, "/nonexistent/state"));
    ROW(qwen_context_state_load_file, "a directory", QWEN_ERR_IO, qwen_context_state_load_file(ctx, scratch));
    ROW(qwen_context_state_load_file, "an empty file", QWEN_ERR_FORMAT,
        (fclose(fopen(scratch_path("empty"), "wb")), qwen_context_state_load_file(ctx, scratch_path("empty"))));
    /* generation */
    struct { const char *what; int field; float value; } sampling[] = {
        {"temperature NaN", 0, NAN}, {"temperature inf", 0, INFINITY}, {"top_p 2", 1, 2}, {"top_p -1", 1, -1},
        {"min_p -0.5", 2, -0.5f}, {"min_p 1.5", 2, 1.5f}, {"repeat_penalty 0", 3, 0}, {"repeat_penalty -1", 3, -1},
        {"typical_p 0", 4, 0}, {"typical_p 1.5", 4, 1.5f}, {"presence_penalty NaN", 5, NAN}, {"frequency_penalty -inf", 6, -INFINITY},
    };
    for (size_t i = 0; i < sizeof sampling / sizeof sampling[0]; i++) {
        qwen_sampling_params bad = qwen_sampling_default_params();
        float *fields[7] = {&bad.temperature, &bad.top_p, &bad.min_p, &bad.repeat_penalty, &bad.typical_p, &bad.presence_penalty,
                            &bad.frequency_penalty};
        *fields[sampling[i].field] = sampling[i].value;
        ROW(qwen_generate, sampling[i].what, INVALID, qwen_generate(ctx, &bad, 2, ignore_token, NULL));
    }
    sp = qwen_sampling_default_params();
    sp.top_k = -1;
    ROW(qwen_generate, "top_k -1", INVALID, qwen_generate(ctx, &sp, 2, NULL, NULL));
    sp = qwen_sampling_default_params();
    sp.penalty_last_n = -1;
    ROW(qwen_generate, "penalty_last_n -1", INVALID, qwen_generate(ctx, &sp, 2, NULL, NULL));
    ROW(qwen_generate, "max_tokens -1", INVALID, qwen_generate(ctx, NULL, -1, NULL, NULL));
    ROW(qwen_generate, "max_tokens INT32_MIN", INVALID, qwen_generate(ctx, NULL, INT32_MIN, NULL, NULL));
    ROW(qwen_generate, "max_tokens 0", 0, qwen_generate(ctx, NULL, 0, NULL, NULL));
    ROW(qwen_generate_ex, "stop NULL, n_stop 1", INVALID, qwen_generate_ex(ctx, NULL, 2, NULL, 1, NULL, NULL));
    ROW(qwen_generate_ex, "n_stop -1", INVALID, qwen_generate_ex(ctx, NULL, 2, stops, -1, NULL, NULL));
    ROW(qwen_generate_ex, "n_stop 2^20", INVALID, qwen_generate_ex(ctx, NULL, 2, stops, 1 << 20, NULL, NULL));
    const char *null_stop[2] = {"x", NULL};
    ROW(qwen_generate_ex, "stop[1] NULL", INVALID, qwen_generate_ex(ctx, NULL, 2, null_stop, 2, NULL, NULL));
    ROW(qwen_generate_ex, "stop NULL, n_stop 0", 0, qwen_generate_ex(ctx, NULL, 0, NULL, 0, NULL, NULL));
    ROW_OK(qwen_generate, "refused calls generate nothing", qwen_context_n_past(ctx) == 4);
    /* chat */
    const qwen_chat_message null_role[1] = {{NULL, "x"}}, null_content[1] = {{"user", NULL}}, empty_role[1] = {{"", "x"}};
    const struct { const char *what; const qwen_chat_message *list; int32_t n; } chats[] = {
        {"messages NULL", NULL, 1}, {"n 0", chat, 0}, {"n -1", chat, -1}, {"n INT32_MIN", chat, INT32_MIN},
        {"role NULL", null_role, 1}, {"content NULL", null_content, 1}, {"empty role", empty_role, 1},
    };
    for (size_t i = 0; i < sizeof chats / sizeof chats[0]; i++) {
        ROW(qwen_chat_eval, chats[i].what, INVALID, qwen_chat_eval(ctx, chats[i].list, chats[i].n, 1));
        ROW(qwen_chat_eval_ex, chats[i].what, INVALID, qwen_chat_eval_ex(ctx, chats[i].list, chats[i].n, 1, NULL));
        ROW(qwen_chat_apply_template, chats[i].what, INVALID, qwen_chat_apply_template(model, chats[i].list, chats[i].n, 1, buf, sizeof buf, NULL));
    }
    qwen_chat_options bad_opts = opts;
    bad_opts.enable_thinking = 2;
    ROW(qwen_chat_eval_ex, "enable_thinking 2", INVALID, qwen_chat_eval_ex(ctx, chat, 1, 1, &bad_opts));
    bad_opts.enable_thinking = -1;
    ROW(qwen_chat_eval_ex, "enable_thinking -1", INVALID, qwen_chat_eval_ex(ctx, chat, 1, 1, &bad_opts));
    ROW(qwen_chat_apply_template, "buf NULL, capacity 10", INVALID, qwen_chat_apply_template(model, chat, 1, 1, NULL, 10, NULL));
    ROW(qwen_chat_apply_template, "capacity -1", INVALID, qwen_chat_apply_template(model, chat, 1, 1, buf, -1, NULL));
    ROW(qwen_chat_apply_template, "capacity 0 (size query)", QWEN_ERR_BUFFER_TOO_SMALL,
        qwen_chat_apply_template(model, chat, 1, 1, NULL, 0, &needed));
    ROW_OK(qwen_chat_apply_template, "size query sets n_needed", needed > 0);
    ROW(qwen_context_cancel, "valid (then the next call is cancelled)", 0, qwen_context_cancel(ctx));
    ROW(qwen_generate, "after cancel", QWEN_ERR_CANCELLED, qwen_generate(ctx, NULL, 2, NULL, NULL));
    ROW(qwen_context_reset, "valid", 0, qwen_context_reset(ctx));
    /* quantization */
    qwen_quantize_params qp = qwen_quantize_default_params();
    ROW(qwen_model_quantize, "input NULL", INVALID, qwen_model_quantize(NULL, scratch_path("q.gguf"), &qp));
    ROW(qwen_model_quantize, "output NULL", INVALID, qwen_model_quantize(path_of("tiny/qwen2-f32.gguf"), NULL, &qp));
    ROW(qwen_model_quantize, "missing input", QWEN_ERR_IO, qwen_model_quantize("/nonexistent/x.gguf", scratch_path("q.gguf"), &qp));
    qwen_quantize_params bad_qp = qp;
    bad_qp.type = "Q9_9";
    ROW(qwen_model_quantize, "unknown type", QWEN_ERR_UNSUPPORTED, qwen_model_quantize(path_of("tiny/qwen2-f32.gguf"), scratch_path("q.gguf"), &bad_qp));
    bad_qp = qp;
    bad_qp.n_threads = -1;
    ROW(qwen_model_quantize, "n_threads -1", INVALID, qwen_model_quantize(path_of("tiny/qwen2-f32.gguf"), scratch_path("q.gguf"), &bad_qp));
    bad_qp.n_threads = 1 << 30;
    double t0 = now();
    ROW(qwen_model_quantize, "n_threads 2^30", INVALID, qwen_model_quantize(path_of("tiny/qwen2-f32.gguf"), scratch_path("q.gguf"), &bad_qp));
    CHECK(now() - t0 < 5, "n_threads 2^30 refused at once (%.1f s)", now() - t0);
    bad_qp = qp;
    bad_qp.pure = 2;
    ROW(qwen_model_quantize, "pure 2", INVALID, qwen_model_quantize(path_of("tiny/qwen2-f32.gguf"), scratch_path("q.gguf"), &bad_qp));
    ROW(qwen_model_quantize, "output in a missing folder", QWEN_ERR_IO,
        qwen_model_quantize(path_of("tiny/qwen2-f32.gguf"), "/nonexistent/dir/q.gguf", &qp));
    ROW(qwen_model_export_projector, "input NULL", INVALID, qwen_model_export_projector(NULL, scratch_path("p.gguf"), &qp));
    ROW(qwen_model_export_projector, "output NULL", INVALID, qwen_model_export_projector(path_of("qwen-vl/qwenvl-hf"), NULL, &qp));
    ROW(qwen_model_export_projector, "missing folder", QWEN_ERR_IO, qwen_model_export_projector("/nonexistent", scratch_path("p.gguf"), &qp));
    ROW(qwen_model_export_projector, "a GGUF file, not a folder", QWEN_ERR_IO,
        qwen_model_export_projector(path_of("tiny/qwen2-f32.gguf"), scratch_path("p.gguf"), &qp));
    ROW(qwen_model_export_projector, "a Qwen2-VL folder (llama.cpp's converter writes its projector)", QWEN_ERR_UNSUPPORTED,
        qwen_model_export_projector(path_of("vision/qwen2vl-hf"), scratch_path("p.gguf"), &qp));
    bad_qp = qp;
    bad_qp.type = "Q9_9";
    ROW(qwen_model_export_projector, "unknown type", QWEN_ERR_UNSUPPORTED,
        qwen_model_export_projector(path_of("qwen-vl/qwenvl-hf"), scratch_path("p.gguf"), &bad_qp));
    ROW(qwen_model_export_projector, "output in a missing folder", QWEN_ERR_IO,
        qwen_model_export_projector(path_of("qwen-vl/qwenvl-hf"), "/nonexistent/dir/p.gguf", &qp));

    qwen_context_free(ctx);
    qwen_model_free(model);
}

/* ---- The table, media part: images, audio clips, projectors, prompts and chats with media ---- */

static qwen_model *media_model(const char *relative) {
    qwen_model_params mp = qwen_model_default_params();
    mp.n_threads = 1;
    qwen_model *m = NULL;
    if (qwen_model_load(path_of(relative), &mp, &m) != QWEN_OK) CHECK(0, "load %s", relative);
    return m;
}

static qwen_context *media_context(qwen_model *m, int32_t n_ctx) {
    qwen_context_params cp = qwen_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = 1;
    cp.kv_type = QWEN_KV_F32; /* the fixtures' head size (16) does not take Q8_0 */
    qwen_context *c = NULL;
    if (!m || qwen_context_new(m, &cp, &c) != QWEN_OK) CHECK(0, "a context of %d positions", n_ctx);
    return c;
}

/* The bytes of a file (malloc'd; NULL if unreadable). */
static unsigned char *file_bytes(const char *path, int64_t *size) {
    FILE *f = fopen(path, "rb");
    unsigned char *data = NULL;
    *size = 0;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n > 0 && fseek(f, 0, SEEK_SET) == 0 && (data = malloc((size_t)n)) && fread(data, 1, (size_t)n, f) == (size_t)n)
            *size = n;
    }
    fclose(f);
    return data;
}

#define IMAGE_PROMPT "<|vision_start|><|image_pad|><|vision_end|>What is this?"
#define AUDIO_PROMPT "<|audio_bos|><|AUDIO|><|audio_eos|>What is this?"

static void test_media_table(void) {
    const int INVALID = QWEN_ERR_INVALID_ARGUMENT, UNSUPPORTED = QWEN_ERR_UNSUPPORTED;
    /* live handles: a text-only model, Qwen2-VL (folder with its vision tower), Qwen2-Audio (folder with its audio
     * tower), Qwen2-VL's text GGUF (its projector is attached by a row), an image and clips */
    qwen_model *text = media_model("tiny/qwen2-f32.gguf"), *vlm = media_model("vision/qwen2vl-hf");
    qwen_model *aum = media_model("audio/qwen2audio-hf"), *vlt = media_model("vision/qwen2vl-f32.gguf");
    qwen_context *tctx = media_context(text, 64), *vctx = media_context(vlm, 256), *actx = media_context(aum, 256);
    qwen_context *vsmall = media_context(vlm, 4), *vlt_ctx = media_context(vlt, 64);
    static float pcm[16000], floats[4096];
    for (int i = 0; i < 16000; i++) pcm[i] = 0.5f * sinf(2 * 3.14159265f * 440 * (float)i / 16000);
    static uint8_t rgb[56 * 28 * 3];
    for (size_t i = 0; i < sizeof rgb; i++) rgb[i] = (uint8_t)(i * 7);
    qwen_image *img = NULL, *wide = NULL;
    qwen_audio *clip = NULL, *short_clip = NULL;
    qwen_image_load(path_of("vision/images/gray_28x28.png"), &img); /* 4 rows for Qwen2-VL (resized to 56x56) */
    qwen_image_from_rgb8(rgb, 402, 2, &wide);                      /* aspect ratio 201: more than the processor takes */
    qwen_audio_from_pcm_f32(pcm, 8000, 1, 16000, &clip);            /* 0.5 s */
    qwen_audio_from_pcm_f32(pcm, 100, 1, 16000, &short_clip);       /* 6.25 ms: no row */
    if (!text || !vlm || !aum || !vlt || !tctx || !vctx || !actx || !vsmall || !vlt_ctx || !img || !wide || !clip || !short_clip) {
        CHECK(0, "the media table's models, contexts, image and clips");
        return;
    }
    /* freed handles, made after the live ones (no handle is registered until the bad-handle rows have run) */
    qwen_model *freed_model = media_model("tiny/qwen2-q8_0.gguf");
    qwen_context *freed_ctx = media_context(text, 16);
    qwen_image *freed_img = NULL;
    qwen_audio *freed_audio = NULL;
    qwen_image_from_rgb8(rgb, 28, 28, &freed_img);
    qwen_audio_from_pcm_f32(pcm, 1600, 1, 16000, &freed_audio);
    CHECK(freed_model && freed_ctx && freed_img && freed_audio, "freed media handles made");
    qwen_context_free(freed_ctx);
    qwen_model_free(freed_model);
    qwen_image_free(freed_img);
    qwen_audio_free(freed_audio);

    int32_t n = 0, n_img = -1, n_clip = -1;
    char what[160];
    char mmproj[1024]; /* path_of's buffers are reused */
    snprintf(mmproj, sizeof mmproj, "%s", path_of("vision/mmproj-qwen2vl-f32.gguf"));
    const qwen_chat_message chat[1] = {{"user", "Hello"}}, chat_img[1] = {{"user", "<image>What is this?"}},
                            chat_aud[1] = {{"user", "<audio>What is this?"}}, chat_img2[1] = {{"user", "<image><image>Compare."}};
    const qwen_image *one_img[1] = {img}, *two_imgs[2] = {img, img};
    const qwen_audio *one_clip[1] = {clip}, *two_clips[2] = {clip, clip};
    /* the live handles stay usable after every refused call and ignored free */
#define MEDIA_LIVE                                                                                                             \
    (qwen_image_width(img) == 28 && qwen_audio_duration(clip) == 0.5 && qwen_model_has_vision(vlm) == 1 &&                     \
     qwen_model_has_audio(aum) == 1 && qwen_context_n_past(vctx) == 0 && qwen_context_n_past(actx) == 0)

    /* defaults */
    ROW_OK(qwen_image_default_params, "defaults",
           qwen_image_default_params().max_pixels == 0 && qwen_image_default_params().apply_orientation == 1);
    ROW_OK(qwen_audio_default_params, "defaults", qwen_audio_default_params().max_seconds == 600);

    /* bad models */
    qwen_model *const bad_models[5] = {NULL, freed_model, (qwen_model *)vctx, (qwen_model *)img, (qwen_model *)(uintptr_t)0x1000};
    const char *const bad_model_what[5] = {"model NULL", "freed model", "a qwen_context as model", "a qwen_image as model",
                                           "forged model pointer"};
    for (int i = 0; i < 5; i++) {
        const char *w = bad_model_what[i];
        qwen_model *bm = bad_models[i];
        ROW(qwen_model_has_vision, w, INVALID, qwen_model_has_vision(bm));
        ROW(qwen_model_has_audio, w, INVALID, qwen_model_has_audio(bm));
        ROW(qwen_model_load_projector, w, INVALID, qwen_model_load_projector(bm, mmproj));
        ROW(qwen_image_n_tokens, w, INVALID, qwen_image_n_tokens(bm, img));
        ROW(qwen_audio_n_tokens, w, INVALID, qwen_audio_n_tokens(bm, clip));
        qwen_model_free(bm); /* ignored */
        ROW_OK(qwen_model_free, w, MEDIA_LIVE);
    }
    /* bad contexts */
    qwen_context *const bad_ctxs[5] = {NULL, freed_ctx, (qwen_context *)vlm, (qwen_context *)clip, (qwen_context *)(uintptr_t)0x2000};
    const char *const bad_ctx_what[5] = {"ctx NULL", "freed context", "a qwen_model as context", "a qwen_audio as context",
                                         "forged context pointer"};
    for (int i = 0; i < 5; i++) {
        const char *w = bad_ctx_what[i];
        qwen_context *bc = bad_ctxs[i];
        ROW(qwen_image_embed, w, INVALID, qwen_image_embed(bc, img, floats, 4096, &n));
        ROW(qwen_audio_embed, w, INVALID, qwen_audio_embed(bc, clip, floats, 4096, &n));
        ROW(qwen_context_eval_prompt, w, INVALID, qwen_context_eval_prompt(bc, IMAGE_PROMPT, one_img, 1, NULL, 0, NULL));
        ROW(qwen_chat_eval_media, w, INVALID, qwen_chat_eval_media(bc, chat_img, 1, one_img, 1, NULL, 0, 1, NULL));
        qwen_context_free(bc); /* ignored */
        ROW_OK(qwen_context_free, w, MEDIA_LIVE);
    }
    /* bad images, alone and in a prompt's image list */
    qwen_image *const bad_imgs[5] = {NULL, freed_img, (qwen_image *)clip, (qwen_image *)vlm, (qwen_image *)(uintptr_t)0x3000};
    const char *const bad_img_what[5] = {"img NULL", "freed image", "a qwen_audio as image", "a qwen_model as image",
                                         "forged image pointer"};
    for (int i = 0; i < 5; i++) {
        const char *w = bad_img_what[i];
        qwen_image *bi = bad_imgs[i];
        const qwen_image *list[2] = {img, bi};
        ROW(qwen_image_width, w, INVALID, qwen_image_width(bi));
        ROW(qwen_image_height, w, INVALID, qwen_image_height(bi));
        ROW(qwen_image_copy_rgb8, w, INVALID, qwen_image_copy_rgb8(bi, (uint8_t *)floats, sizeof floats));
        ROW(qwen_image_set_pixel_bounds, w, INVALID, qwen_image_set_pixel_bounds(bi, 0, 0));
        ROW(qwen_image_n_tokens, w, INVALID, qwen_image_n_tokens(vlm, bi));
        ROW(qwen_image_embed, w, INVALID, qwen_image_embed(vctx, bi, floats, 4096, &n));
        snprintf(what, sizeof what, "images[1]: %s", w);
        ROW(qwen_context_eval_prompt, what, INVALID,
            qwen_context_eval_prompt(vctx, IMAGE_PROMPT IMAGE_PROMPT, list, 2, NULL, 0, NULL));
        ROW(qwen_chat_eval_media, what, INVALID, qwen_chat_eval_media(vctx, chat_img2, 1, list, 2, NULL, 0, 1, NULL));
        qwen_image_free(bi); /* ignored */
        ROW_OK(qwen_image_free, w, MEDIA_LIVE);
    }
    /* bad clips, alone and in a prompt's clip list */
    qwen_audio *const bad_audios[5] = {NULL, freed_audio, (qwen_audio *)img, (qwen_audio *)actx, (qwen_audio *)(uintptr_t)0x4000};
    const char *const bad_audio_what[5] = {"audio NULL", "freed clip", "a qwen_image as clip", "a qwen_context as clip",
                                           "forged clip pointer"};
    for (int i = 0; i < 5; i++) {
        const char *w = bad_audio_what[i];
        qwen_audio *ba = bad_audios[i];
        const qwen_audio *list[1] = {ba};
        ROW(qwen_audio_duration, w, INVALID, qwen_audio_duration(ba));
        ROW(qwen_audio_n_tokens, w, INVALID, qwen_audio_n_tokens(aum, ba));
        ROW(qwen_audio_embed, w, INVALID, qwen_audio_embed(actx, ba, floats, 4096, &n));
        snprintf(what, sizeof what, "audios[0]: %s", w);
        ROW(qwen_context_eval_prompt, what, INVALID, qwen_context_eval_prompt(actx, AUDIO_PROMPT, NULL, 0, list, 1, NULL));
        ROW(qwen_chat_eval_media, what, INVALID, qwen_chat_eval_media(actx, chat_aud, 1, NULL, 0, list, 1, 1, NULL));
        qwen_audio_free(ba); /* ignored */
        ROW_OK(qwen_audio_free, w, MEDIA_LIVE);
    }

    /* which models take media */
    ROW(qwen_model_has_vision, "text-only model", 0, qwen_model_has_vision(text));
    ROW(qwen_model_has_audio, "text-only model", 0, qwen_model_has_audio(text));
    ROW(qwen_model_has_vision, "Qwen2-Audio", 0, qwen_model_has_vision(aum));
    ROW(qwen_model_has_audio, "Qwen2-VL", 0, qwen_model_has_audio(vlm));
    ROW(qwen_model_has_vision, "Qwen2-VL text GGUF without its projector", 0, qwen_model_has_vision(vlt));

    /* projectors (onto Qwen2-VL's text GGUF, then the text-only model); a refused projector changes nothing */
    ROW(qwen_model_load_projector, "path NULL", INVALID, qwen_model_load_projector(vlt, NULL));
    ROW(qwen_model_load_projector, "empty path", INVALID, qwen_model_load_projector(vlt, ""));
    ROW(qwen_model_load_projector, "missing file", QWEN_ERR_IO, qwen_model_load_projector(vlt, "/nonexistent/mmproj.gguf"));
    ROW(qwen_model_load_projector, "a directory", QWEN_ERR_IO, qwen_model_load_projector(vlt, scratch));
    ROW(qwen_model_load_projector, "a PNG file", QWEN_ERR_FORMAT, qwen_model_load_projector(vlt, path_of("vision/images/gray_28x28.png")));
    ROW(qwen_model_load_projector, "a language model GGUF (not a projector)", UNSUPPORTED,
        qwen_model_load_projector(vlt, path_of("tiny/qwen2-f32.gguf")));
    ROW(qwen_model_load_projector, "audio projector of another hidden size (64 vs 32)", INVALID,
        qwen_model_load_projector(vlt, path_of("audio/mmproj-qwen2audio-f16.gguf")));
    ROW(qwen_model_load_projector, "vision projector of another hidden size (32 vs 64)", INVALID,
        qwen_model_load_projector(text, mmproj));
    ROW(qwen_model_load_projector, "audio projector onto a tokenizer without <|AUDIO|>", UNSUPPORTED,
        qwen_model_load_projector(text, path_of("audio/mmproj-qwen2audio-f16.gguf")));
    ROW_OK(qwen_model_load_projector, "refused projectors leave the models as they were",
           qwen_model_has_vision(vlt) == 0 && qwen_model_has_audio(vlt) == 0 && qwen_model_has_vision(text) == 0 &&
               qwen_model_has_audio(text) == 0);
    ROW(qwen_image_n_tokens, "Qwen2-VL text GGUF before its projector", UNSUPPORTED, qwen_image_n_tokens(vlt, img));

    /* images from files */
    qwen_image *tmp_img = (qwen_image *)(uintptr_t)0x1;
    ROW(qwen_image_load, "path NULL", INVALID, qwen_image_load(NULL, &tmp_img));
    ROW_OK(qwen_image_load, "out cleared on failure", tmp_img == NULL);
    ROW(qwen_image_load, "out NULL", INVALID, qwen_image_load(path_of("vision/images/gray_28x28.png"), NULL));
    ROW(qwen_image_load, "empty path", INVALID, qwen_image_load("", &tmp_img));
    ROW(qwen_image_load, "missing file", QWEN_ERR_IO, qwen_image_load("/nonexistent/x.png", &tmp_img));
    ROW(qwen_image_load, "a directory", QWEN_ERR_IO, qwen_image_load(scratch, &tmp_img));
    ROW(qwen_image_load, "/dev/zero (not a regular file)", QWEN_ERR_IO, qwen_image_load("/dev/zero", &tmp_img));
    ROW(qwen_image_load, "a WAV file", QWEN_ERR_FORMAT, qwen_image_load(path_of("audio/inputs/speech.wav"), &tmp_img));
    const struct { const char *file; int expected; } bad_files[] = {
        {"bad_empty.png", QWEN_ERR_FORMAT},     {"bad_garbage.png", QWEN_ERR_FORMAT}, {"bad_garbage.jpg", QWEN_ERR_FORMAT},
        {"bad_truncated.png", QWEN_ERR_FORMAT}, {"bad_truncated.jpg", QWEN_ERR_FORMAT},
        {"bad_huge.png", UNSUPPORTED}, /* 100000 x 100000: over the pixel limit, refused before allocating */
    };
    for (size_t i = 0; i < sizeof bad_files / sizeof bad_files[0]; i++) {
        char relative[128];
        snprintf(relative, sizeof relative, "vision/images/%s", bad_files[i].file);
        ROW(qwen_image_load, bad_files[i].file, bad_files[i].expected, qwen_image_load(path_of(relative), &tmp_img));
    }
    const struct { const char *what; int64_t max_pixels; int32_t apply_orientation; int expected; } image_params[] = {
        {"max_pixels -1", -1, 1, INVALID},
        {"max_pixels INT64_MIN", INT64_MIN, 1, INVALID},
        {"apply_orientation 2", 0, 2, INVALID},
        {"apply_orientation -1", 0, -1, INVALID},
        {"max_pixels 783 (image of 784)", 783, 1, UNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof image_params / sizeof image_params[0]; i++) {
        qwen_image_params ip = qwen_image_default_params();
        ip.max_pixels = image_params[i].max_pixels;
        ip.apply_orientation = image_params[i].apply_orientation;
        ROW(qwen_image_load_ex, image_params[i].what, image_params[i].expected,
            qwen_image_load_ex(path_of("vision/images/gray_28x28.png"), &ip, &tmp_img));
    }
    tmp_img = (qwen_image *)(uintptr_t)0x1;
    ROW(qwen_image_load_ex, "path NULL", INVALID, qwen_image_load_ex(NULL, NULL, &tmp_img));
    ROW_OK(qwen_image_load_ex, "out cleared on failure", tmp_img == NULL);
    ROW(qwen_image_load_ex, "out NULL", INVALID, qwen_image_load_ex(path_of("vision/images/gray_28x28.png"), NULL, NULL));
    ROW(qwen_image_load_ex, "empty path", INVALID, qwen_image_load_ex("", NULL, &tmp_img));
    ROW(qwen_image_load_ex, "missing file", QWEN_ERR_IO, qwen_image_load_ex("/nonexistent/x.png", NULL, &tmp_img));

    /* images from memory */
    int64_t png_size = 0;
    unsigned char *png = file_bytes(path_of("vision/images/gray_28x28.png"), &png_size);
    CHECK(png && png_size > 8, "read gray_28x28.png");
    unsigned char garbage[256];
    memset(garbage, 0x5A, sizeof garbage);
    if (png) {
        tmp_img = (qwen_image *)(uintptr_t)0x1;
        ROW(qwen_image_decode, "data NULL, size 100", INVALID, qwen_image_decode(NULL, 100, NULL, &tmp_img));
        ROW_OK(qwen_image_decode, "out cleared on failure", tmp_img == NULL);
        ROW(qwen_image_decode, "out NULL", INVALID, qwen_image_decode(png, png_size, NULL, NULL));
        ROW(qwen_image_decode, "size 0", INVALID, qwen_image_decode(png, 0, NULL, &tmp_img));
        ROW(qwen_image_decode, "size -1", INVALID, qwen_image_decode(png, -1, NULL, &tmp_img));
        ROW(qwen_image_decode, "size INT64_MIN", INVALID, qwen_image_decode(png, INT64_MIN, NULL, &tmp_img));
        ROW(qwen_image_decode, "garbage", QWEN_ERR_FORMAT, qwen_image_decode(garbage, sizeof garbage, NULL, &tmp_img));
        ROW(qwen_image_decode, "PNG signature only", QWEN_ERR_FORMAT, qwen_image_decode(png, 8, NULL, &tmp_img));
        ROW(qwen_image_decode, "truncated PNG", QWEN_ERR_FORMAT, qwen_image_decode(png, png_size / 2, NULL, &tmp_img));
        for (size_t i = 0; i < sizeof image_params / sizeof image_params[0]; i++) {
            qwen_image_params ip = qwen_image_default_params();
            ip.max_pixels = image_params[i].max_pixels;
            ip.apply_orientation = image_params[i].apply_orientation;
            ROW(qwen_image_decode, image_params[i].what, image_params[i].expected, qwen_image_decode(png, png_size, &ip, &tmp_img));
        }
    }
    /* images from pixels */
    tmp_img = (qwen_image *)(uintptr_t)0x1;
    ROW(qwen_image_from_rgb8, "rgb NULL", INVALID, qwen_image_from_rgb8(NULL, 28, 28, &tmp_img));
    ROW_OK(qwen_image_from_rgb8, "out cleared on failure", tmp_img == NULL);
    ROW(qwen_image_from_rgb8, "out NULL", INVALID, qwen_image_from_rgb8(rgb, 28, 28, NULL));
    const struct { const char *what; int32_t width, height; } sizes[] = {
        {"width 0", 0, 28},           {"height 0", 28, 0},        {"width -1", -1, 28},           {"height -1", 28, -1},
        {"width INT32_MIN", INT32_MIN, 28}, {"-28 x -28", -28, -28}, {"INT32_MAX x INT32_MAX", INT32_MAX, INT32_MAX},
        {"100000 x 100000 (over the pixel limit)", 100000, 100000}, {"INT32_MAX x 1 (over the pixel limit)", INT32_MAX, 1},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        ROW(qwen_image_from_rgb8, sizes[i].what, INVALID, qwen_image_from_rgb8(rgb, sizes[i].width, sizes[i].height, &tmp_img));

    /* pixel bounds and token counts */
    const struct { const char *what; int64_t min, max; } bounds[] = {
        {"min_pixels -1", -1, 0}, {"max_pixels -1", 0, -1}, {"min_pixels INT64_MIN", INT64_MIN, 0},
        {"max_pixels INT64_MIN", 0, INT64_MIN}, {"min > max (5000 > 4000)", 5000, 4000}, {"min > max (2 > 1)", 2, 1},
        {"INT64_MAX, INT64_MAX", INT64_MAX, INT64_MAX}, {"max_pixels INT64_MAX", 0, INT64_MAX}, {"min_pixels INT64_MAX", INT64_MAX, 0},
    };
    for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++)
        ROW(qwen_image_set_pixel_bounds, bounds[i].what, INVALID, qwen_image_set_pixel_bounds(img, bounds[i].min, bounds[i].max));
    ROW(qwen_image_n_tokens, "refused bounds leave the image as it was", 4, qwen_image_n_tokens(vlm, img));
    ROW(qwen_image_set_pixel_bounds, "max_pixels 784 (valid)", 0, qwen_image_set_pixel_bounds(img, 0, 784));
    ROW(qwen_image_n_tokens, "bounds set: 28x28 stays, one row", 1, qwen_image_n_tokens(vlm, img));
    ROW(qwen_image_set_pixel_bounds, "0, 0 (the model's, valid)", 0, qwen_image_set_pixel_bounds(img, 0, 0));
    ROW(qwen_image_n_tokens, "the model's bounds again", 4, qwen_image_n_tokens(vlm, img));
    ROW(qwen_image_n_tokens, "text-only model", UNSUPPORTED, qwen_image_n_tokens(text, img));
    ROW(qwen_image_n_tokens, "Qwen2-Audio", UNSUPPORTED, qwen_image_n_tokens(aum, img));
    ROW(qwen_image_n_tokens, "aspect ratio 201", INVALID, qwen_image_n_tokens(vlm, wide));
    ROW(qwen_image_width, "valid", 28, qwen_image_width(img));
    ROW(qwen_image_height, "valid", 28, qwen_image_height(img));
    ROW(qwen_image_copy_rgb8, "valid", 28 * 28 * 3, qwen_image_copy_rgb8(img, (uint8_t *)floats, sizeof floats));
    ROW(qwen_image_copy_rgb8, "capacity 0 (size query)", QWEN_ERR_BUFFER_TOO_SMALL, qwen_image_copy_rgb8(img, NULL, 0));
    ROW(qwen_image_copy_rgb8, "capacity one byte short", QWEN_ERR_BUFFER_TOO_SMALL,
        qwen_image_copy_rgb8(img, (uint8_t *)floats, 28 * 28 * 3 - 1));
    ROW(qwen_image_copy_rgb8, "out NULL, capacity 10", INVALID, qwen_image_copy_rgb8(img, NULL, 10));
    ROW(qwen_image_copy_rgb8, "capacity -1", INVALID, qwen_image_copy_rgb8(img, (uint8_t *)floats, -1));

    /* grounding boxes */
    {
        const char *answer = "<ref>a</ref><box>(0,0),(500,500)</box><box>(1,2),(3,4)</box>";
        qwen_box boxes[4];
        ROW(qwen_grounding_boxes, "text NULL", INVALID, qwen_grounding_boxes(NULL, 0, 0, boxes, 4));
        ROW(qwen_grounding_boxes, "boxes NULL, capacity 4", INVALID, qwen_grounding_boxes(answer, 0, 0, NULL, 4));
        ROW(qwen_grounding_boxes, "capacity -1", INVALID, qwen_grounding_boxes(answer, 0, 0, boxes, -1));
        ROW(qwen_grounding_boxes, "width 0, height 10", INVALID, qwen_grounding_boxes(answer, 0, 10, boxes, 4));
        ROW(qwen_grounding_boxes, "size -1 x -1", INVALID, qwen_grounding_boxes(answer, -1, -1, boxes, 4));
        ROW(qwen_grounding_boxes, "count (capacity 0)", 2, qwen_grounding_boxes(answer, 640, 427, NULL, 0));
        ROW(qwen_grounding_boxes, "capacity 1 of 2", 2, qwen_grounding_boxes(answer, 640, 427, boxes, 1));
        ROW_OK(qwen_grounding_boxes, "the box in pixels with its ref",
               boxes[0].x1 == 0 && boxes[0].x2 == 320 && boxes[0].y2 == 213 && boxes[0].ref_offset == 5 && boxes[0].ref_length == 1);
        ROW(qwen_grounding_boxes, "0 x 0: normalized", 2, qwen_grounding_boxes(answer, 0, 0, boxes, 4));
        ROW_OK(qwen_grounding_boxes, "second box normalized, no ref", boxes[1].x2 == 3 && boxes[1].y2 == 4 && boxes[1].ref_offset == -1);
        ROW(qwen_grounding_boxes, "no boxes", 0, qwen_grounding_boxes("plain text", 0, 0, NULL, 0));
    }

    /* image embeddings */
    ROW(qwen_image_embed, "out NULL, capacity 10", INVALID, qwen_image_embed(vctx, img, NULL, 10, &n));
    ROW(qwen_image_embed, "capacity -1", INVALID, qwen_image_embed(vctx, img, floats, -1, &n));
    ROW(qwen_image_embed, "capacity INT64_MIN", INVALID, qwen_image_embed(vctx, img, floats, INT64_MIN, &n));
    ROW(qwen_image_embed, "text-only model's context", UNSUPPORTED, qwen_image_embed(tctx, img, floats, 4096, &n));
    ROW(qwen_image_embed, "Qwen2-Audio's context", UNSUPPORTED, qwen_image_embed(actx, img, floats, 4096, &n));
    ROW(qwen_image_embed, "aspect ratio 201", INVALID, qwen_image_embed(vctx, wide, floats, 4096, &n));
    ROW(qwen_image_embed, "capacity 0 (size query)", QWEN_ERR_BUFFER_TOO_SMALL, qwen_image_embed(vctx, img, NULL, 0, &n_img));
    ROW_OK(qwen_image_embed, "size query sets n_tokens", n_img == 4);
    ROW(qwen_image_embed, "capacity 0, n_tokens NULL", QWEN_ERR_BUFFER_TOO_SMALL, qwen_image_embed(vctx, img, NULL, 0, NULL));
    ROW(qwen_image_embed, "capacity n_tokens x n_embd - 1", QWEN_ERR_BUFFER_TOO_SMALL,
        qwen_image_embed(vctx, img, floats, (int64_t)n_img * qwen_model_n_embd(vlm) - 1, &n));
    ROW(qwen_image_embed, "valid", 4, qwen_image_embed(vctx, img, floats, 4096, &n));

    /* clips from files */
    qwen_audio *tmp_audio = (qwen_audio *)(uintptr_t)0x1;
    ROW(qwen_audio_load, "path NULL", INVALID, qwen_audio_load(NULL, &tmp_audio));
    ROW_OK(qwen_audio_load, "out cleared on failure", tmp_audio == NULL);
    ROW(qwen_audio_load, "out NULL", INVALID, qwen_audio_load(path_of("audio/inputs/speech.wav"), NULL));
    ROW(qwen_audio_load, "empty path", INVALID, qwen_audio_load("", &tmp_audio));
    ROW(qwen_audio_load, "missing file", QWEN_ERR_IO, qwen_audio_load("/nonexistent/x.wav", &tmp_audio));
    ROW(qwen_audio_load, "a directory", QWEN_ERR_IO, qwen_audio_load(scratch, &tmp_audio));
    ROW(qwen_audio_load, "a PNG file", QWEN_ERR_FORMAT, qwen_audio_load(path_of("vision/images/gray_28x28.png"), &tmp_audio));
    ROW(qwen_audio_load, "an empty file", QWEN_ERR_FORMAT, qwen_audio_load(path_of("vision/images/bad_empty.png"), &tmp_audio));
    const struct { const char *what; double max_seconds; } audio_params[] = {
        {"max_seconds 0", 0},        {"max_seconds -1", -1},           {"max_seconds NaN", NAN},
        {"max_seconds inf", INFINITY}, {"max_seconds -inf", -INFINITY}, {"max_seconds 86401 (over 86400)", 86401},
        {"max_seconds 1e300", 1e300},
    };
    for (size_t i = 0; i < sizeof audio_params / sizeof audio_params[0]; i++) {
        qwen_audio_params ap = qwen_audio_default_params();
        ap.max_seconds = audio_params[i].max_seconds;
        ROW(qwen_audio_load_ex, audio_params[i].what, INVALID, qwen_audio_load_ex(path_of("audio/inputs/speech.wav"), &ap, &tmp_audio));
        ROW(qwen_audio_from_pcm_f32_ex, audio_params[i].what, INVALID, qwen_audio_from_pcm_f32_ex(pcm, 8000, 1, 16000, &ap, &tmp_audio));
    }
    qwen_audio_params short_limit = qwen_audio_default_params();
    short_limit.max_seconds = 1;
    ROW(qwen_audio_load_ex, "5.2 s file, max_seconds 1", INVALID,
        qwen_audio_load_ex(path_of("audio/inputs/speech.wav"), &short_limit, &tmp_audio));
    tmp_audio = (qwen_audio *)(uintptr_t)0x1;
    ROW(qwen_audio_load_ex, "path NULL", INVALID, qwen_audio_load_ex(NULL, NULL, &tmp_audio));
    ROW_OK(qwen_audio_load_ex, "out cleared on failure", tmp_audio == NULL);
    ROW(qwen_audio_load_ex, "out NULL", INVALID, qwen_audio_load_ex(path_of("audio/inputs/speech.wav"), NULL, NULL));
    ROW(qwen_audio_load_ex, "missing file", QWEN_ERR_IO, qwen_audio_load_ex("/nonexistent/x.wav", NULL, &tmp_audio));

    /* clips from samples */
    tmp_audio = (qwen_audio *)(uintptr_t)0x1;
    ROW(qwen_audio_from_pcm_f32, "samples NULL", INVALID, qwen_audio_from_pcm_f32(NULL, 8000, 1, 16000, &tmp_audio));
    ROW_OK(qwen_audio_from_pcm_f32, "out cleared on failure", tmp_audio == NULL);
    ROW(qwen_audio_from_pcm_f32, "out NULL", INVALID, qwen_audio_from_pcm_f32(pcm, 8000, 1, 16000, NULL));
    tmp_audio = (qwen_audio *)(uintptr_t)0x1;
    ROW(qwen_audio_from_pcm_f32_ex, "samples NULL", INVALID, qwen_audio_from_pcm_f32_ex(NULL, 8000, 1, 16000, NULL, &tmp_audio));
    ROW_OK(qwen_audio_from_pcm_f32_ex, "out cleared on failure", tmp_audio == NULL);
    ROW(qwen_audio_from_pcm_f32_ex, "out NULL", INVALID, qwen_audio_from_pcm_f32_ex(pcm, 8000, 1, 16000, NULL, NULL));
    /* counts the library must refuse before reading a sample (pcm holds 16000) */
    const struct { const char *what; int64_t frames; int32_t channels, rate; } pcm_args[] = {
        {"n_frames 0", 0, 1, 16000},          {"n_frames -1", -1, 1, 16000},       {"n_frames INT64_MIN", INT64_MIN, 1, 16000},
        {"n_frames INT64_MAX (over max_seconds)", INT64_MAX, 1, 16000},
        {"n_frames 2^40 at 1.536 MHz (over max_seconds)", 1ll << 40, 1, 1536000},
        {"n_frames 2^62, 256 channels", 1ll << 62, 256, 16000},
        {"channels 0", 8000, 0, 16000},       {"channels -1", 8000, -1, 16000},    {"channels 257", 8000, 257, 16000},
        {"channels INT32_MIN", 8000, INT32_MIN, 16000}, {"channels INT32_MAX", 8000, INT32_MAX, 16000},
        {"sample_rate 0", 8000, 1, 0},        {"sample_rate -1", 8000, 1, -1},     {"sample_rate -16000", 8000, 1, -16000},
        {"sample_rate 999", 8000, 1, 999},    {"sample_rate 1536001", 8000, 1, 1536001},
        {"sample_rate INT32_MIN", 8000, 1, INT32_MIN}, {"sample_rate INT32_MAX", 8000, 1, INT32_MAX},
    };
    for (size_t i = 0; i < sizeof pcm_args / sizeof pcm_args[0]; i++) {
        ROW(qwen_audio_from_pcm_f32, pcm_args[i].what, INVALID,
            qwen_audio_from_pcm_f32(pcm, pcm_args[i].frames, pcm_args[i].channels, pcm_args[i].rate, &tmp_audio));
        ROW(qwen_audio_from_pcm_f32_ex, pcm_args[i].what, INVALID,
            qwen_audio_from_pcm_f32_ex(pcm, pcm_args[i].frames, pcm_args[i].channels, pcm_args[i].rate, NULL, &tmp_audio));
    }
    static float bad_pcm[2][8000];
    bad_pcm[0][4000] = NAN;
    bad_pcm[1][7999] = INFINITY;
    ROW(qwen_audio_from_pcm_f32, "a NaN sample", INVALID, qwen_audio_from_pcm_f32(bad_pcm[0], 8000, 1, 16000, &tmp_audio));
    ROW(qwen_audio_from_pcm_f32, "an infinite sample", INVALID, qwen_audio_from_pcm_f32(bad_pcm[1], 8000, 1, 16000, &tmp_audio));
    ROW(qwen_audio_from_pcm_f32, "a NaN sample, 44.1 kHz (resampled)", INVALID,
        qwen_audio_from_pcm_f32(bad_pcm[0], 8000, 1, 44100, &tmp_audio));
    short_limit.max_seconds = 0.25;
    ROW(qwen_audio_from_pcm_f32_ex, "0.5 s, max_seconds 0.25", INVALID,
        qwen_audio_from_pcm_f32_ex(pcm, 8000, 1, 16000, &short_limit, &tmp_audio));
    ROW_OK(qwen_audio_duration, "0.5 s clip", qwen_audio_duration(clip) == 0.5);

    /* clip token counts and embeddings */
    ROW(qwen_audio_n_tokens, "text-only model", UNSUPPORTED, qwen_audio_n_tokens(text, clip));
    ROW(qwen_audio_n_tokens, "Qwen2-VL", UNSUPPORTED, qwen_audio_n_tokens(vlm, clip));
    ROW(qwen_audio_n_tokens, "a clip under 20 ms: no row", 0, qwen_audio_n_tokens(aum, short_clip));
    int32_t clip_tokens = qwen_audio_n_tokens(aum, clip);
    ROW_OK(qwen_audio_n_tokens, "0.5 s clip", clip_tokens > 0);
    ROW(qwen_audio_embed, "out NULL, capacity 10", INVALID, qwen_audio_embed(actx, clip, NULL, 10, &n));
    ROW(qwen_audio_embed, "capacity -1", INVALID, qwen_audio_embed(actx, clip, floats, -1, &n));
    ROW(qwen_audio_embed, "capacity INT64_MIN", INVALID, qwen_audio_embed(actx, clip, floats, INT64_MIN, &n));
    ROW(qwen_audio_embed, "text-only model's context", UNSUPPORTED, qwen_audio_embed(tctx, clip, floats, 4096, &n));
    ROW(qwen_audio_embed, "Qwen2-VL's context", UNSUPPORTED, qwen_audio_embed(vctx, clip, floats, 4096, &n));
    ROW(qwen_audio_embed, "a clip under 20 ms", INVALID, qwen_audio_embed(actx, short_clip, floats, 4096, &n));
    ROW(qwen_audio_embed, "a clip under 20 ms, capacity 0", INVALID, qwen_audio_embed(actx, short_clip, NULL, 0, &n));
    ROW(qwen_audio_embed, "capacity 0 (size query)", QWEN_ERR_BUFFER_TOO_SMALL, qwen_audio_embed(actx, clip, NULL, 0, &n_clip));
    ROW_OK(qwen_audio_embed, "size query sets n_tokens", n_clip == clip_tokens);
    ROW(qwen_audio_embed, "capacity 0, n_tokens NULL", QWEN_ERR_BUFFER_TOO_SMALL, qwen_audio_embed(actx, clip, NULL, 0, NULL));
    ROW(qwen_audio_embed, "capacity n_tokens x n_embd - 1", QWEN_ERR_BUFFER_TOO_SMALL,
        qwen_audio_embed(actx, clip, floats, (int64_t)clip_tokens * qwen_model_n_embd(aum) - 1, &n));
    ROW(qwen_audio_embed, "valid", clip_tokens, qwen_audio_embed(actx, clip, floats, 4096, &n));

    /* prompts with media: list arguments, counts against placeholders, modalities */
    const qwen_image *wide_list[1] = {wide}, **many = malloc(sizeof *many << 16);
    for (int i = 0; many && i < 1 << 16; i++) many[i] = img;
    const struct {
        const char *what;
        qwen_context *ctx;
        const char *text;
        const qwen_image *const *images;
        int32_t n_images;
        const qwen_audio *const *audios;
        int32_t n_audios;
        int expected;
    } prompts[] = {
        {"text NULL", vctx, NULL, one_img, 1, NULL, 0, INVALID},
        {"empty text", vctx, "", NULL, 0, NULL, 0, INVALID},
        {"images NULL, n_images 1", vctx, IMAGE_PROMPT, NULL, 1, NULL, 0, INVALID},
        {"n_images -1", vctx, IMAGE_PROMPT, one_img, -1, NULL, 0, INVALID},
        {"n_images INT32_MIN", vctx, IMAGE_PROMPT, one_img, INT32_MIN, NULL, 0, INVALID},
        {"audios NULL, n_audios 1", actx, AUDIO_PROMPT, NULL, 0, NULL, 1, INVALID},
        {"n_audios -1", actx, AUDIO_PROMPT, NULL, 0, one_clip, -1, INVALID},
        {"n_audios INT32_MIN", actx, AUDIO_PROMPT, NULL, 0, one_clip, INT32_MIN, INVALID},
        {"an image placeholder, no image", vctx, IMAGE_PROMPT, NULL, 0, NULL, 0, INVALID},
        {"an image placeholder, 2 images", vctx, IMAGE_PROMPT, two_imgs, 2, NULL, 0, INVALID},
        {"2 image placeholders, 1 image", vctx, IMAGE_PROMPT IMAGE_PROMPT, one_img, 1, NULL, 0, INVALID},
        {"no placeholder, 1 image", vctx, "What is this?", one_img, 1, NULL, 0, INVALID},
        {"an image placeholder, 65536 images", vctx, IMAGE_PROMPT, many, many ? 1 << 16 : 0, NULL, 0, INVALID},
        {"an audio placeholder, no clip", actx, AUDIO_PROMPT, NULL, 0, NULL, 0, INVALID},
        {"an audio placeholder, 2 clips", actx, AUDIO_PROMPT, NULL, 0, two_clips, 2, INVALID},
        {"no placeholder, 1 clip", actx, "What is this?", NULL, 0, one_clip, 1, INVALID},
        {"an image to a text-only model", tctx, IMAGE_PROMPT, one_img, 1, NULL, 0, UNSUPPORTED},
        {"a clip to a text-only model", tctx, AUDIO_PROMPT, NULL, 0, one_clip, 1, UNSUPPORTED},
        {"a clip to Qwen2-VL", vctx, IMAGE_PROMPT AUDIO_PROMPT, one_img, 1, one_clip, 1, UNSUPPORTED},
        {"an image to Qwen2-Audio", actx, IMAGE_PROMPT AUDIO_PROMPT, one_img, 1, one_clip, 1, UNSUPPORTED},
        {"an image to Qwen2-VL's text GGUF before its projector", vlt_ctx, IMAGE_PROMPT, one_img, 1, NULL, 0, UNSUPPORTED},
        {"an image of aspect ratio 201", vctx, IMAGE_PROMPT, wide_list, 1, NULL, 0, INVALID},
        {"a prompt longer than the context (n_ctx 4)", vsmall, IMAGE_PROMPT, one_img, 1, NULL, 0, QWEN_ERR_CONTEXT_FULL},
    };
    for (size_t i = 0; i < sizeof prompts / sizeof prompts[0]; i++)
        ROW(qwen_context_eval_prompt, prompts[i].what, prompts[i].expected,
            qwen_context_eval_prompt(prompts[i].ctx, prompts[i].text, prompts[i].images, prompts[i].n_images, prompts[i].audios,
                                     prompts[i].n_audios, floats));
    ROW_OK(qwen_context_eval_prompt, "refused prompts evaluate nothing",
           qwen_context_n_past(vctx) == 0 && qwen_context_n_past(actx) == 0 && qwen_context_n_past(tctx) == 0 &&
               qwen_context_n_past(vsmall) == 0 && qwen_context_n_past(vlt_ctx) == 0);

    /* chats with media */
    const qwen_chat_message null_role[1] = {{NULL, "<image>x"}}, null_content[1] = {{"user", NULL}}, empty_role[1] = {{"", "<image>x"}};
    qwen_chat_options bad_opts = qwen_chat_default_options();
    bad_opts.enable_thinking = 2;
    const struct {
        const char *what;
        qwen_context *ctx;
        const qwen_chat_message *messages;
        int32_t n;
        const qwen_image *const *images;
        int32_t n_images;
        const qwen_audio *const *audios;
        int32_t n_audios;
        const qwen_chat_options *opts;
        int expected;
    } chats[] = {
        {"messages NULL", vctx, NULL, 1, one_img, 1, NULL, 0, NULL, INVALID},
        {"n 0", vctx, chat_img, 0, one_img, 1, NULL, 0, NULL, INVALID},
        {"n -1", vctx, chat_img, -1, one_img, 1, NULL, 0, NULL, INVALID},
        {"n INT32_MIN", vctx, chat_img, INT32_MIN, one_img, 1, NULL, 0, NULL, INVALID},
        {"role NULL", vctx, null_role, 1, one_img, 1, NULL, 0, NULL, INVALID},
        {"content NULL", vctx, null_content, 1, NULL, 0, NULL, 0, NULL, INVALID},
        {"empty role", vctx, empty_role, 1, one_img, 1, NULL, 0, NULL, INVALID},
        {"enable_thinking 2", vctx, chat_img, 1, one_img, 1, NULL, 0, &bad_opts, INVALID},
        {"images NULL, n_images 1", vctx, chat_img, 1, NULL, 1, NULL, 0, NULL, INVALID},
        {"n_images -1", vctx, chat_img, 1, one_img, -1, NULL, 0, NULL, INVALID},
        {"n_images INT32_MIN", vctx, chat_img, 1, one_img, INT32_MIN, NULL, 0, NULL, INVALID},
        {"audios NULL, n_audios 1", actx, chat_aud, 1, NULL, 0, NULL, 1, NULL, INVALID},
        {"n_audios -1", actx, chat_aud, 1, NULL, 0, one_clip, -1, NULL, INVALID},
        {"an <image> marker, no image", vctx, chat_img, 1, NULL, 0, NULL, 0, NULL, INVALID},
        {"an <image> marker, 2 images", vctx, chat_img, 1, two_imgs, 2, NULL, 0, NULL, INVALID},
        {"2 <image> markers, 1 image", vctx, chat_img2, 1, one_img, 1, NULL, 0, NULL, INVALID},
        {"no marker, 1 image", vctx, chat, 1, one_img, 1, NULL, 0, NULL, INVALID},
        {"an <image> marker, 65536 images", vctx, chat_img, 1, many, many ? 1 << 16 : 0, NULL, 0, NULL, INVALID},
        {"an <audio> marker, no clip", actx, chat_aud, 1, NULL, 0, NULL, 0, NULL, INVALID},
        {"an <audio> marker, 2 clips", actx, chat_aud, 1, NULL, 0, two_clips, 2, NULL, INVALID},
        {"no marker, 1 clip", actx, chat, 1, NULL, 0, one_clip, 1, NULL, INVALID},
        {"an image to a text-only model", tctx, chat_img, 1, one_img, 1, NULL, 0, NULL, UNSUPPORTED},
        {"a clip to a text-only model", tctx, chat_aud, 1, NULL, 0, one_clip, 1, NULL, UNSUPPORTED},
        {"a clip to Qwen2-VL", vctx, chat_img, 1, one_img, 1, one_clip, 1, NULL, UNSUPPORTED},
        {"an image to Qwen2-Audio", actx, chat_aud, 1, one_img, 1, one_clip, 1, NULL, UNSUPPORTED},
        {"an image to Qwen2-VL's text GGUF before its projector", vlt_ctx, chat_img, 1, one_img, 1, NULL, 0, NULL, UNSUPPORTED},
        {"a chat too long for a context of 4", vsmall, chat_img, 1, one_img, 1, NULL, 0, NULL, QWEN_ERR_CONTEXT_FULL},
    };
    for (size_t i = 0; i < sizeof chats / sizeof chats[0]; i++) {
        ROW(qwen_chat_eval_media, chats[i].what, chats[i].expected,
            qwen_chat_eval_media(chats[i].ctx, chats[i].messages, chats[i].n, chats[i].images, chats[i].n_images, chats[i].audios,
                                 chats[i].n_audios, 1, chats[i].opts));
    }
    ROW_OK(qwen_chat_eval_media, "refused chats evaluate nothing",
           qwen_context_n_past(vctx) == 0 && qwen_context_n_past(actx) == 0 && qwen_context_n_past(tctx) == 0 &&
               qwen_context_n_past(vsmall) == 0 && qwen_context_n_past(vlt_ctx) == 0);
    free(many);

    /* valid calls after all the refusals */
    ROW(qwen_context_eval_prompt, "valid image prompt", 0, qwen_context_eval_prompt(vctx, IMAGE_PROMPT, one_img, 1, NULL, 0, floats));
    ROW(qwen_context_eval_prompt, "valid audio prompt", 0, qwen_context_eval_prompt(actx, AUDIO_PROMPT, NULL, 0, one_clip, 1, floats));
    ROW(qwen_context_eval_prompt, "text without media", 0, qwen_context_eval_prompt(tctx, "Hello", NULL, 0, NULL, 0, NULL));
    qwen_context_reset(vctx);
    qwen_context_reset(actx);
    ROW(qwen_chat_eval_media, "valid chat with an image", 0, qwen_chat_eval_media(vctx, chat_img, 1, one_img, 1, NULL, 0, 1, NULL));
    ROW(qwen_chat_eval_media, "valid chat with a clip", 0, qwen_chat_eval_media(actx, chat_aud, 1, NULL, 0, one_clip, 1, 1, NULL));
    /* a projector made Qwen2-VL's text GGUF take images (before its contexts are made) */
    qwen_context_free(vlt_ctx);
    ROW(qwen_model_load_projector, "valid", 0, qwen_model_load_projector(vlt, mmproj));
    ROW(qwen_model_has_vision, "Qwen2-VL text GGUF with its projector", 1, qwen_model_has_vision(vlt));
    ROW(qwen_image_n_tokens, "Qwen2-VL text GGUF with its projector", 4, qwen_image_n_tokens(vlt, img));
    /* loaders succeed on valid input (handles freed at once) */
    qwen_image *ok_img = NULL;
    qwen_audio *ok_audio = NULL;
    ROW(qwen_image_load_ex, "valid, params NULL", 0, qwen_image_load_ex(path_of("vision/images/gray_28x28.png"), NULL, &ok_img));
    qwen_image_free(ok_img);
    ok_img = NULL;
    if (png) ROW(qwen_image_decode, "valid", 0, qwen_image_decode(png, png_size, NULL, &ok_img));
    qwen_image_free(ok_img);
    ok_img = NULL;
    ROW(qwen_image_from_rgb8, "valid 56 x 28", 0, qwen_image_from_rgb8(rgb, 56, 28, &ok_img));
    ROW_OK(qwen_image_from_rgb8, "its size", qwen_image_width(ok_img) == 56 && qwen_image_height(ok_img) == 28);
    qwen_image_free(ok_img);
    ROW(qwen_audio_load, "valid", 0, qwen_audio_load(path_of("audio/inputs/speech.wav"), &ok_audio));
    ROW_OK(qwen_audio_duration, "speech.wav (5.17 s)", fabs(qwen_audio_duration(ok_audio) - 5.1734) < 0.01);
    qwen_audio_free(ok_audio);
    ok_audio = NULL;
    ROW(qwen_audio_from_pcm_f32_ex, "valid, 2 channels at 44.1 kHz", 0,
        qwen_audio_from_pcm_f32_ex(pcm, 8000, 2, 44100, NULL, &ok_audio));
    qwen_audio_free(ok_audio);
    free(png);
#undef MEDIA_LIVE

    qwen_image_free(img);
    qwen_image_free(wide);
    qwen_audio_free(clip);
    qwen_audio_free(short_clip);
    qwen_context_free(tctx);
    qwen_context_free(vctx);
    qwen_context_free(actx);
    qwen_context_free(vsmall);
    qwen_model_free(text);
    qwen_model_free(vlm);
    qwen_model_free(aum);
    qwen_model_free(vlt);
}

/* Every function the header declares has a row. */
static void check_header_coverage(const char *header) {
    FILE *f = fopen(header, "r");
    if (!f) {
        CHECK(0, "cannot read %s", header);
        return;
    }
    char line[1024];
    int declared = 0, missing = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == ' ' || line[0] == '*' || line[0] == '/' || line[0] == '#' || !strncmp(line, "typedef", 7)) continue;
        char *open = strchr(line, '(');
        if (!open) continue;
        char *start = open;
        while (start > line && (start[-1] == '_' || (start[-1] >= 'a' && start[-1] <= 'z') || (start[-1] >= '0' && start[-1] <= '9'))) start--;
        if (strncmp(start, "qwen_", 5)) continue;
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(open - start), start);
        declared++;
        int found = 0;
        for (int i = 0; i < n_tested; i++) found |= !strcmp(tested[i], name);
        if (!found) {
            missing++;
            fprintf(stderr, "FAIL %s is declared in %s but has no row in the invalid-argument table\n", name, header);
        }
    }
    fclose(f);
    checks++;
    if (missing) failures++;
    printf("invalid-argument table: %d rows over %d functions (%d declared in the header, %d without a row)\n", rows, n_tested,
           declared, missing);
}

/* ---- A full context ---- */

static void test_context_full(void) {
    qwen_model_params mp = qwen_model_default_params();
    mp.n_threads = 1;
    qwen_model *m = NULL;
    if (qwen_model_load(path_of("tiny/qwen2-f32.gguf"), &mp, &m) != QWEN_OK) {
        CHECK(0, "load");
        return;
    }
    qwen_context_params cp = qwen_context_default_params();
    cp.n_ctx = 16;
    cp.n_threads = 1;
    cp.kv_type = QWEN_KV_F32;
    qwen_context *ctx = NULL, *fresh = NULL;
    qwen_context_new(m, &cp, &ctx);
    qwen_context_new(m, &cp, &fresh);
    if (!ctx || !fresh) {
        CHECK(0, "contexts");
        return;
    }
    int32_t ids[20];
    for (int i = 0; i < 20; i++) ids[i] = 100 + 37 * i;
    CHECK(qwen_context_eval_tokens(ctx, ids, 17, NULL) == QWEN_ERR_CONTEXT_FULL, "17 tokens into 16 positions");
    CHECK(qwen_context_n_past(ctx) == 0, "nothing evaluated (%d)", qwen_context_n_past(ctx));
    CHECK(qwen_context_eval_tokens(ctx, ids, 12, NULL) == QWEN_OK, "12 tokens");
    CHECK(qwen_context_eval_tokens(ctx, ids + 12, 5, NULL) == QWEN_ERR_CONTEXT_FULL, "12 + 5 > 16");
    CHECK(qwen_context_n_past(ctx) == 12, "still 12 (%d)", qwen_context_n_past(ctx));
    CHECK(qwen_context_eval_tokens(ctx, ids + 12, 4, NULL) == QWEN_OK, "exactly full");
    CHECK(qwen_context_eval_tokens(ctx, ids, 1, NULL) == QWEN_ERR_CONTEXT_FULL, "one more");
    qwen_sampling_params sp = qwen_sampling_default_params();
    sp.temperature = 0;
    CHECK(qwen_generate(ctx, &sp, 4, NULL, NULL) == QWEN_ERR_CONTEXT_FULL, "generate in a full context");
    const qwen_chat_message chat[1] = {{"user", "a message far too long for sixteen positions of context, surely"}};
    CHECK(qwen_chat_eval(ctx, chat, 1, 1) == QWEN_ERR_CONTEXT_FULL, "chat too long");
    CHECK(strstr(qwen_last_error(), "n_ctx") != NULL, "message names n_ctx");
    CHECK(qwen_context_n_past(ctx) == 16, "the full cache is kept (%d)", qwen_context_n_past(ctx));
    /* after a reset: evaluates again, with the same logits as a fresh context */
    CHECK(qwen_context_reset(ctx) == QWEN_OK && qwen_context_n_past(ctx) == 0, "reset");
    static float a[2112], b[2112];
    CHECK(qwen_context_eval_tokens(ctx, ids, 16, a) == QWEN_OK, "16 tokens after reset");
    CHECK(qwen_context_eval_tokens(fresh, ids, 16, b) == QWEN_OK, "16 tokens in a fresh context");
    CHECK(!memcmp(a, b, sizeof a), "same logits as a fresh context");
    CHECK(qwen_context_reset(ctx) == QWEN_OK && qwen_context_eval_tokens(ctx, ids, 8, NULL) == QWEN_OK, "reset again");
    CHECK(qwen_generate(ctx, &sp, 100, NULL, NULL) == QWEN_ERR_CONTEXT_FULL && qwen_context_n_past(ctx) == 16,
          "generation fills the context");
    qwen_context_free(ctx);
    qwen_context_free(fresh);
    qwen_model_free(m);
}

/* ---- Hostile files ---- */

static void put_u32(FILE *f, uint32_t v) { fwrite(&v, 4, 1, f); }
static void put_u64(FILE *f, uint64_t v) { fwrite(&v, 8, 1, f); }
static void put_str(FILE *f, const char *s, uint64_t claimed) {
    put_u64(f, claimed ? claimed : strlen(s));
    fputs(s, f);
}
static void pad(FILE *f, int n) {
    for (int i = 0; i < n; i++) fputc(0, f);
}

/* GGUF headers that claim what the file does not hold. Returns the number written. */
static int write_hostile_ggufs(char names[][64]) {
    int n = 0;
    FILE *f;
#define OPEN(name) (snprintf(names[n], 64, "%s", name), f = fopen(scratch_path(names[n++]), "wb"))
    OPEN("tensors-2e40.gguf");
    put_u32(f, 0x46554747), put_u32(f, 3), put_u64(f, 1ull << 40), put_u64(f, 0), pad(f, 64), fclose(f);
    OPEN("metadata-2e40.gguf");
    put_u32(f, 0x46554747), put_u32(f, 3), put_u64(f, 0), put_u64(f, 1ull << 40), pad(f, 64), fclose(f);
    OPEN("key-2e60.gguf");
    put_u32(f, 0x46554747), put_u32(f, 3), put_u64(f, 0), put_u64(f, 1), put_str(f, "general.name", 1ull << 60), pad(f, 64), fclose(f);
    OPEN("string-2e60.gguf");
    put_u32(f, 0x46554747), put_u32(f, 3), put_u64(f, 0), put_u64(f, 1), put_str(f, "general.name", 0), put_u32(f, 8);
    put_str(f, "x", 1ull << 60), pad(f, 64), fclose(f);
    OPEN("array-2e60.gguf");
    put_u32(f, 0x46554747), put_u32(f, 3), put_u64(f, 0), put_u64(f, 1), put_str(f, "tokenizer.ggml.tokens", 0), put_u32(f, 9);
    put_u32(f, 8), put_u64(f, 1ull << 60), pad(f, 64), fclose(f);
    OPEN("dims-huge.gguf");
    put_u32(f, 0x46554747), put_u32(f, 3), put_u64(f, 1), put_u64(f, 0), put_str(f, "token_embd.weight", 0), put_u32(f, 4);
    for (int i = 0; i < 4; i++) put_u64(f, 0x7fffffff);
    put_u32(f, 0), put_u64(f, 0), pad(f, 64), fclose(f);
    OPEN("data-past-end.gguf");
    put_u32(f, 0x46554747), put_u32(f, 3), put_u64(f, 1), put_u64(f, 0), put_str(f, "token_embd.weight", 0), put_u32(f, 2);
    put_u64(f, 1u << 20), put_u64(f, 1u << 20), put_u32(f, 0), put_u64(f, 0), pad(f, 64), fclose(f);
    OPEN("offset-2e63.gguf");
    put_u32(f, 0x46554747), put_u32(f, 3), put_u64(f, 1), put_u64(f, 0), put_str(f, "token_embd.weight", 0), put_u32(f, 1);
    put_u64(f, 8), put_u32(f, 0), put_u64(f, 1ull << 63), pad(f, 64), fclose(f);
#undef OPEN
    return n;
}

/* A Hugging Face folder with the tiny tokenizer and a config.json made of `repeat` copies of `unit`. */
static const char *hostile_folder(const char *name, const char *unit, int repeat) {
    char *dir = scratch_path(name);
    mkdir(dir, 0700);
    char p[600], target[1200];
    snprintf(p, sizeof p, "%s/config.json", dir);
    FILE *f = fopen(p, "wb");
    for (int i = 0; i < repeat; i++) fputs(unit, f);
    fclose(f);
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    snprintf(target, sizeof target, "%s", path_of("tiny/tokenizer/tokenizer.json"));
    if (target[0] != '/') {
        char cwd[512];
        if (getcwd(cwd, sizeof cwd)) snprintf(target, sizeof target, "%s/%s", cwd, path_of("tiny/tokenizer/tokenizer.json"));
    }
    unlink(p);
    if (symlink(target, p) != 0) fprintf(stderr, "warning: symlink %s: %s\n", p, strerror(errno));
    return dir;
}

static void test_hostile_files(void) {
    char names[16][64];
    int n = write_hostile_ggufs(names);
    qwen_model *m = (qwen_model *)(uintptr_t)0x1;
    for (int i = 0; i < n; i++) {
        double t0 = now();
        int rc = qwen_model_load(scratch_path(names[i]), NULL, &m);
        CHECK(rc == QWEN_ERR_FORMAT && m == NULL, "%s: %s", names[i], qwen_status_string(rc));
        CHECK(now() - t0 < 2, "%s refused at once", names[i]);
    }
    /* safetensors header length 2^60, in a folder with a valid config */
    const char *dir = hostile_folder("st-header", "{\"model_type\":\"qwen2\",\"hidden_size\":64,\"num_hidden_layers\":1,"
                                                  "\"num_attention_heads\":4,\"intermediate_size\":128}", 1);
    char p[600];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    FILE *f = fopen(p, "wb");
    put_u64(f, 1ull << 60), fputs("{}", f), fclose(f);
    CHECK(qwen_model_load(dir, NULL, &m) == QWEN_ERR_FORMAT, "safetensors header length 2^60");
    /* config.json nested 10^6 deep */
    dir = hostile_folder("deep", "[", 1000000);
    CHECK(qwen_model_load(dir, NULL, &m) == QWEN_ERR_FORMAT && strstr(qwen_last_error(), "nesting"), "config.json nested 10^6 deep");
    dir = hostile_folder("deep-objects", "{\"a\":", 1000000);
    CHECK(qwen_model_load(dir, NULL, &m) == QWEN_ERR_FORMAT, "config.json of objects nested 10^6 deep");
    /* a giant number as a dimension */
    dir = hostile_folder("giant-number", "{\"model_type\":\"qwen2\",\"num_hidden_layers\":1,\"hidden_size\":1", 1);
    snprintf(p, sizeof p, "%s/config.json", dir);
    f = fopen(p, "ab");
    for (int i = 0; i < 100000; i++) fputc('0', f);
    fputs(",\"num_attention_heads\":4,\"intermediate_size\":128}", f);
    fclose(f);
    CHECK(qwen_model_load(dir, NULL, &m) == QWEN_ERR_FORMAT, "a 100001-digit hidden_size");
}

typedef struct { const char *dir; int status; double seconds; } deep_job;

static void *deep_on_small_stack(void *arg) {
    deep_job *job = arg;
    qwen_model *m = NULL;
    double t0 = now();
    job->status = qwen_model_load(job->dir, NULL, &m);
    job->seconds = now() - t0;
    return NULL;
}

/* Deeply nested JSON on a 256 KiB stack: refused, not a stack overflow. */
static void test_small_stack(void) {
    deep_job job = {hostile_folder("deep-small-stack", "[", 1000000), 0, 0};
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 << 10);
    pthread_t t;
    if (pthread_create(&t, &attr, deep_on_small_stack, &job) != 0) {
        CHECK(0, "pthread_create");
        return;
    }
    pthread_join(t, NULL);
    pthread_attr_destroy(&attr);
    CHECK(job.status == QWEN_ERR_FORMAT, "deep JSON on a 256 KiB stack: %s", qwen_status_string(job.status));
}

/* ---- Under an address-space limit (child process) ---- */

static long vm_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0;
    if (f) {
        if (fscanf(f, "%ld", &pages) != 1) pages = 0;
        fclose(f);
    }
    return pages * sysconf(_SC_PAGESIZE);
}

static int child_limited(void) {
    /* room for the tiny models, contexts and the library's threads, not for a 2 GiB KV cache */
    long limit = vm_bytes() + (768l << 20);
    struct rlimit rl = {(rlim_t)limit, (rlim_t)limit};
    if (setrlimit(RLIMIT_AS, &rl) != 0) {
        fprintf(stderr, "setrlimit: %s\n", strerror(errno));
        return 1;
    }
    qwen_model_params mp = qwen_model_default_params();
    mp.n_threads = 1;
    qwen_model *m = NULL;
    CHECK(qwen_model_load(path_of("tiny/qwen2-f32.gguf"), &mp, &m) == QWEN_OK, "load under the limit");
    if (!m) return 1;
    qwen_context_params cp = qwen_context_default_params();
    cp.n_ctx = 1 << 22; /* F32 cache: 2 x 1 GiB */
    cp.kv_type = QWEN_KV_F32;
    cp.n_threads = 1;
    qwen_context *ctx = (qwen_context *)(uintptr_t)0x1;
    int rc = qwen_context_new(m, &cp, &ctx);
    CHECK(rc == QWEN_ERR_OUT_OF_MEMORY && ctx == NULL, "a KV cache over the limit: %s", qwen_status_string(rc));
    CHECK(strstr(qwen_last_error(), "KV cache") != NULL, "message names the KV cache");
    /* the model stays usable */
    cp.n_ctx = 128;
    ctx = NULL;
    CHECK(qwen_context_new(m, &cp, &ctx) == QWEN_OK, "a small context after the failure");
    const qwen_chat_message chat[1] = {{"user", "Hello"}};
    qwen_sampling_params sp = qwen_sampling_default_params();
    sp.temperature = 0;
    CHECK(ctx && qwen_chat_eval(ctx, chat, 1, 1) == QWEN_OK && qwen_generate(ctx, &sp, 4, NULL, NULL) >= 0,
          "the model evaluates after the failure");
    qwen_context_free(ctx);
    qwen_model_free(m);
    /* hostile files under the limit: refused, nothing allocated */
    test_hostile_files();
    printf("address-space limit %ld MiB: %d checks, %d failures\n", limit >> 20, checks, failures);
    return failures ? 1 : 0;
}

/* The call a crash of the media child happened in (printed by the signal handler). */
static const char *volatile current_call = "";

static void say(const char *text) {
    ssize_t written = write(2, text, strlen(text));
    (void)written;
}

static void on_crash(int sig) {
    say("FAIL crashed (signal) in: ");
    say(current_call);
    say("\n");
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Absurd image sizes under an address-space limit: refused, or OUT_OF_MEMORY with the model still usable; no abort. */
static int child_limited_media(void) {
    long limit = vm_bytes() + (768l << 20);
    struct rlimit rl = {(rlim_t)limit, (rlim_t)limit};
    if (setrlimit(RLIMIT_AS, &rl) != 0) {
        fprintf(stderr, "setrlimit: %s\n", strerror(errno));
        return 1;
    }
    const int crash_signals[] = {SIGABRT, SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGFPE};
    for (size_t i = 0; i < sizeof crash_signals / sizeof crash_signals[0]; i++) signal(crash_signals[i], on_crash);
    /* a 100000 x 100000 PNG with max_pixels INT64_MAX: its 30 GB of pixels cannot be allocated */
    qwen_image_params ip = qwen_image_default_params();
    ip.max_pixels = INT64_MAX;
    qwen_image *huge = NULL;
    current_call = "qwen_image_load_ex(\"vision/images/bad_huge.png\", {max_pixels = INT64_MAX}, &img)";
    int rc = qwen_image_load_ex(path_of("vision/images/bad_huge.png"), &ip, &huge);
    CHECK(rc == QWEN_ERR_OUT_OF_MEMORY || rc == QWEN_ERR_INVALID_ARGUMENT, "%s: %s", current_call, qwen_status_string(rc));
    qwen_image_free(huge);
    /* min_pixels 2^34 (the largest bound qwen_image_set_pixel_bounds takes): a 28x28 image resized to 2^34 pixels */
    qwen_model_params mp = qwen_model_default_params();
    mp.n_threads = 1;
    qwen_model *m = NULL;
    qwen_context *ctx = NULL;
    qwen_image *img = NULL;
    qwen_context_params cp = qwen_context_default_params();
    cp.n_ctx = 64;
    cp.n_threads = 1;
    cp.kv_type = QWEN_KV_F32;
    if (qwen_model_load(path_of("vision/qwen2vl-hf"), &mp, &m) != QWEN_OK || qwen_context_new(m, &cp, &ctx) != QWEN_OK ||
        qwen_image_load(path_of("vision/images/gray_28x28.png"), &img) != QWEN_OK) {
        CHECK(0, "Qwen2-VL, a context and an image under the limit");
        return 1;
    }
    float out[128];
    int32_t n = 0;
    current_call = "qwen_image_set_pixel_bounds(img, 1 << 34, 0)";
    int bounds = qwen_image_set_pixel_bounds(img, 1ll << 34, 0);
    CHECK(bounds == QWEN_OK || bounds == QWEN_ERR_INVALID_ARGUMENT, "%s: %s", current_call, qwen_status_string(bounds));
    if (bounds == QWEN_OK) {
        current_call = "qwen_image_embed(ctx, img, NULL, 0, &n_tokens) after qwen_image_set_pixel_bounds(img, 1 << 34, 0)";
        rc = qwen_image_embed(ctx, img, NULL, 0, &n);
        CHECK(rc == QWEN_ERR_OUT_OF_MEMORY, "%s: %s", current_call, qwen_status_string(rc));
        current_call = "qwen_context_eval_prompt with that image";
        const qwen_image *list[1] = {img};
        rc = qwen_context_eval_prompt(ctx, "<|vision_start|><|image_pad|><|vision_end|>", list, 1, NULL, 0, NULL);
        CHECK(rc == QWEN_ERR_OUT_OF_MEMORY && qwen_context_n_past(ctx) == 0, "%s: %s", current_call, qwen_status_string(rc));
    }
    /* the model, context and image stay usable */
    current_call = "qwen_image_embed after the failure";
    CHECK(qwen_image_set_pixel_bounds(img, 0, 0) == QWEN_OK && qwen_image_embed(ctx, img, out, 128, &n) == 4,
          "the image embeds after the failure: %s", qwen_last_error());
    current_call = "";
    qwen_image_free(img);
    qwen_context_free(ctx);
    qwen_model_free(m);
    printf("address-space limit %ld MiB, media: %d checks, %d failures\n", limit >> 20, checks, failures);
    return failures ? 1 : 0;
}

/* Runs this program again in `mode` (a fresh process: no library threads or locks inherited); its wait status. */
static int run_child(const char *self, const char *header, const char *mode) {
    pid_t pid = fork();
    if (pid == 0) {
        execl(self, self, fixtures, header, mode, scratch, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

static void test_limited(const char *self, const char *header) {
    if (UNDER_SANITIZER || getenv("QWEN_TEST_NO_RLIMIT")) {
        printf("skipped the address-space-limit checks (sanitizer or QWEN_TEST_NO_RLIMIT)\n");
        return;
    }
    int status = run_child(self, header, "--limited");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the address-space-limit checks (status %d)", status);
    status = run_child(self, header, "--limited-media");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the address-space-limit checks of absurd image sizes (status %d%s)",
          status, WIFSIGNALED(status) ? ", a crash: see its call above" : "");
}

static void remove_scratch(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", scratch);
}

int main(int argc, char **argv) {
    fixtures = argc > 1 ? argv[1] : "Tests/Fixtures";
    const char *header = argc > 2 ? argv[2] : "include/qwen.h";
    if (argc > 4 && (!strcmp(argv[3], "--limited") || !strcmp(argv[3], "--limited-media"))) {
        snprintf(scratch, sizeof scratch, "%s", argv[4]);
        return strcmp(argv[3], "--limited") ? child_limited_media() : child_limited();
    }
    snprintf(scratch, sizeof scratch, "/tmp/qwen-invalid-XXXXXX");
    if (!mkdtemp(scratch)) {
        perror("mkdtemp");
        return 1;
    }
    test_table();
    test_media_table();
    check_header_coverage(header);
    test_context_full();
    test_hostile_files();
    test_small_stack();
    test_limited("/proc/self/exe", header);
    remove_scratch();
    printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
