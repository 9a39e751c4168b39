/*
 * qwen-bench: prompt-processing and generation speed of libqwen, measured the way llama.cpp's llama-bench
 * measures them, so the two can be compared on the same GGUF file.
 *
 *   qwen-bench -m MODEL [-p 512] [-n 128] [-t THREADS] [-r 5] [-b N_BATCH] [--kv f16|f32|q8_0] [--json]
 *
 * pp<P>: one qwen_context_eval_tokens call with P random token ids on an empty KV cache (split into
 *        n_batch-sized forward passes by the library, like llama-bench's -b/-ub); logits of the last token.
 * tg<N>: N calls with one random token id each, starting from an empty KV cache (positions 0..N-1),
 *        logits written every step but not sampled. This is llama-bench's tg test: it also clears the cache,
 *        feeds N single tokens (random ids, no sampling) and times the whole loop.
 * Each test runs once untimed first (pp: a full P-token eval; tg: one token, as llama-bench's warm-up does),
 * then REPS timed repetitions, each from an empty cache. Rates are tokens / wall time of one repetition;
 * reported as mean ± sample standard deviation over the repetitions (llama-bench's avg_ts / stddev_ts).
 * load_ms is qwen_model_load alone (a mapped file's pages are faulted in later, during the warm-up).
 * peak_rss_mib is the process's maximum resident set size (getrusage), mapped weights included.
 */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "common.h"

#include <math.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

typedef struct {
    double mean, sd;
} stats;

static const char program[] = "qwen-bench";

static stats summarize(const double *v, int n) {
    stats s = {0, 0};
    for (int i = 0; i < n; i++) s.mean += v[i];
    s.mean /= n;
    if (n > 1) {
        double ss = 0;
        for (int i = 0; i < n; i++) ss += (v[i] - s.mean) * (v[i] - s.mean);
        s.sd = sqrt(ss / (n - 1));
    }
    return s;
}

/* xorshift64*: reproducible token ids, independent of libc's rand(). */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static int32_t random_token(int32_t n_vocab) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (int32_t)((rng_state * 0x2545F4914F6CDD1Dull >> 33) % (uint64_t)(uint32_t)n_vocab);
}

/* One pp repetition: P tokens from an empty cache. Returns seconds, or -1 on error. */
static double run_prompt(qwen_context *ctx, int32_t *tokens, int n_prompt, int32_t n_vocab, float *logits) {
    for (int i = 0; i < n_prompt; i++) tokens[i] = random_token(n_vocab);
    if (qwen_context_reset(ctx)) return -1;
    double start = now_seconds();
    if (qwen_context_eval_tokens(ctx, tokens, n_prompt, logits)) return -1;
    return now_seconds() - start;
}

/* One tg repetition: n single-token evals from an empty cache. Returns seconds, or -1 on error. */
static double run_generation(qwen_context *ctx, int n_gen, int32_t n_vocab, float *logits) {
    if (qwen_context_reset(ctx)) return -1;
    int32_t token = random_token(n_vocab);
    double start = now_seconds();
    for (int i = 0; i < n_gen; i++) {
        if (qwen_context_eval_tokens(ctx, &token, 1, logits)) return -1;
        token = random_token(n_vocab);
    }
    return now_seconds() - start;
}

static void print_json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

static void print_json_rate(const char *key, int n, stats s, const double *samples, int reps) {
    if (n <= 0) {
        printf(",\n  \"%s_tokens_per_s\": null, \"%s_tokens_per_s_sd\": null, \"%s_samples\": []", key, key, key);
        return;
    }
    printf(",\n  \"%s_tokens_per_s\": %.3f, \"%s_tokens_per_s_sd\": %.3f, \"%s_samples\": [", key, s.mean, key, s.sd, key);
    for (int i = 0; i < reps; i++) printf("%s%.3f", i ? ", " : "", samples[i]);
    putchar(']');
}

static void usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s -m MODEL [-p 512] [-n 128] [-t THREADS] [-r 5] [-b N_BATCH] [--kv f16|f32|q8_0] [--json]\n"
            "  -p N     prompt tokens evaluated in one call (pp test; 0 = skip)\n"
            "  -n N     single-token evaluations (tg test; 0 = skip)\n"
            "  -t N     threads (default: the cores this process may use)\n"
            "  -r N     timed repetitions per test, after one warm-up (default 5)\n"
            "  -b N     tokens per forward pass while evaluating the prompt (default: the library's, 512)\n"
            "  --kv T   KV cache type: f16 (default), f32 or q8_0\n"
            "  --json   print one JSON object instead of text\n",
            argv0);
}

int main(int argc, char **argv) {
    const char *model_path = NULL;
    int n_prompt = 512, n_gen = 128, reps = 5, json = 0;
    qwen_context_params cp = qwen_context_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--json")) { json = 1; continue; }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(argv[0]); return 0; }
        if (i + 1 >= argc) { fprintf(stderr, "qwen-bench: %s needs a value\n", a); usage(argv[0]); return 2; }
        const char *v = argv[++i];
        if (!strcmp(a, "-m")) model_path = v;
        else if (!strcmp(a, "-p")) n_prompt = atoi(v);
        else if (!strcmp(a, "-n")) n_gen = atoi(v);
        else if (!strcmp(a, "-t")) cp.n_threads = atoi(v);
        else if (!strcmp(a, "-r")) reps = atoi(v);
        else if (!strcmp(a, "-b")) cp.n_batch = atoi(v);
        else if (!strcmp(a, "--kv") && !strcmp(v, "f16")) cp.kv_type = QWEN_KV_F16;
        else if (!strcmp(a, "--kv") && !strcmp(v, "f32")) cp.kv_type = QWEN_KV_F32;
        else if (!strcmp(a, "--kv") && !strcmp(v, "q8_0")) cp.kv_type = QWEN_KV_Q8_0;
        else { fprintf(stderr, "qwen-bench: bad option %s %s\n", a, v); usage(argv[0]); return 2; }
    }
    if (!model_path || n_prompt < 0 || n_gen < 0 || n_prompt + n_gen == 0 || reps < 1 || reps > 1000 ||
        cp.n_threads < 0 || cp.n_batch < 0) {
        usage(argv[0]);
        return 2;
    }
    int threads = cp.n_threads;
    if (threads == 0) { /* what the library picks: the cores this process may use */
        cpu_set_t set;
        threads = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
    }

    double t0 = now_seconds();
    qwen_model *model = NULL;
    if (qwen_model_load(model_path, NULL, &model)) return fail(program, "loading the model");
    double load_ms = (now_seconds() - t0) * 1e3;

    cp.n_ctx = n_prompt > n_gen ? n_prompt : n_gen; /* each test starts from an empty cache */
    qwen_context *ctx = NULL;
    if (qwen_context_new(model, &cp, &ctx)) return fail(program, "creating the context");

    int32_t n_vocab = qwen_model_n_vocab(model);
    float *logits = malloc(sizeof(float) * (size_t)n_vocab);
    int32_t *tokens = malloc(sizeof(int32_t) * (size_t)(n_prompt > 0 ? n_prompt : 1));
    double *pp = calloc((size_t)reps, sizeof(double)), *tg = calloc((size_t)reps, sizeof(double));
    if (!logits || !tokens || !pp || !tg) { fprintf(stderr, "qwen-bench: out of memory\n"); return 1; }

    if (n_prompt > 0) {
        if (run_prompt(ctx, tokens, n_prompt, n_vocab, logits) < 0) return fail(program, "prompt warm-up");
        for (int r = 0; r < reps; r++) {
            double s = run_prompt(ctx, tokens, n_prompt, n_vocab, logits);
            if (s < 0) return fail(program, "prompt evaluation");
            pp[r] = n_prompt / s;
        }
    }
    if (n_gen > 0) {
        if (run_generation(ctx, 1, n_vocab, logits) < 0) return fail(program, "generation warm-up");
        for (int r = 0; r < reps; r++) {
            double s = run_generation(ctx, n_gen, n_vocab, logits);
            if (s < 0) return fail(program, "generation");
            tg[r] = n_gen / s;
        }
    }
    struct rusage usage_info;
    getrusage(RUSAGE_SELF, &usage_info);
    double peak_rss_mib = (double)usage_info.ru_maxrss / 1024.0; /* ru_maxrss is in KiB on Linux */
    struct stat st;
    long long model_bytes = stat(model_path, &st) == 0 && S_ISREG(st.st_mode) ? (long long)st.st_size : -1;
    stats pps = summarize(pp, reps), tgs = summarize(tg, reps);
    const char *kv = cp.kv_type == QWEN_KV_F32 ? "f32" : cp.kv_type == QWEN_KV_Q8_0 ? "q8_0" : "f16";

    if (json) {
        printf("{\n  \"model\": ");
        print_json_string(model_path);
        printf(",\n  \"model_bytes\": %lld, \"libqwen_version\": ", model_bytes);
        print_json_string(qwen_version());
        printf(",\n  \"threads\": %d, \"n_prompt\": %d, \"n_gen\": %d, \"n_batch\": %d, \"kv_type\": \"%s\", "
               "\"repetitions\": %d",
               threads, n_prompt, n_gen, cp.n_batch, kv, reps);
        print_json_rate("pp", n_prompt, pps, pp, reps);
        print_json_rate("tg", n_gen, tgs, tg, reps);
        printf(",\n  \"load_ms\": %.3f, \"peak_rss_mib\": %.1f\n}\n", load_ms, peak_rss_mib);
    } else {
        printf("model      %s (%.1f MiB), libqwen %s\n", model_path, (double)model_bytes / 1048576.0, qwen_version());
        printf("settings   threads %d, n_batch %d, KV %s, %d repetitions after a warm-up\n", threads, cp.n_batch, kv,
               reps);
        printf("load       %.1f ms\n", load_ms);
        if (n_prompt > 0) printf("pp%-8d %.2f ± %.2f tokens/s\n", n_prompt, pps.mean, pps.sd);
        if (n_gen > 0) printf("tg%-8d %.2f ± %.2f tokens/s\n", n_gen, tgs.mean, tgs.sd);
        printf("peak RSS   %.1f MiB\n", peak_rss_mib);
    }
    free(pp);
    free(tg);
    free(tokens);
    free(logits);
    qwen_context_free(ctx);
    qwen_model_free(model);
    return 0;
}
