/*
 * qwen-bench: prompt-processing and generation speed, llama-bench style.
 *
 *   qwen-bench -m MODEL [-p 512] [-n 128] [-t THREADS] [-r REPETITIONS] [-b N_BATCH] [--kv f16|f32]
 *
 * pp: one eval of P random tokens; tg: N single-token evals (greedy) after it. Reports the median of
 * the repetitions (after one warm-up) and the peak resident memory of the process.
 */
#define _POSIX_C_SOURCE 200809L
#include <qwen.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, compare_doubles);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
    const char *model_path = NULL;
    int n_prompt = 512, n_gen = 128, repetitions = 3;
    qwen_context_params cp = qwen_context_default_params();
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "-m")) model_path = v;
        else if (!strcmp(a, "-p")) n_prompt = atoi(v);
        else if (!strcmp(a, "-n")) n_gen = atoi(v);
        else if (!strcmp(a, "-t")) cp.n_threads = atoi(v);
        else if (!strcmp(a, "-r")) repetitions = atoi(v);
        else if (!strcmp(a, "-b")) cp.n_batch = atoi(v);
        else if (!strcmp(a, "--kv")) cp.kv_type = !strcmp(v, "f32") ? QWEN_KV_F32 : QWEN_KV_F16;
        else { fprintf(stderr, "unknown option %s\n", a); return 2; }
    }
    if (!model_path || n_prompt < 1 || n_gen < 0 || repetitions < 1 || repetitions > 100) {
        fprintf(stderr, "usage: %s -m MODEL [-p 512] [-n 128] [-t THREADS] [-r 3] [-b N_BATCH] [--kv f16|f32]\n", argv[0]);
        return 2;
    }
    double t0 = now_seconds();
    qwen_model *model = NULL;
    if (qwen_model_load(model_path, NULL, &model)) { fprintf(stderr, "error: %s\n", qwen_last_error()); return 1; }
    double load = now_seconds() - t0;
    cp.n_ctx = n_prompt + n_gen + 8;
    qwen_context *ctx = NULL;
    if (qwen_context_new(model, &cp, &ctx)) { fprintf(stderr, "error: %s\n", qwen_last_error()); return 1; }

    int vocab = qwen_model_n_vocab(model);
    float *logits = malloc(sizeof(float) * (size_t)vocab);
    int32_t *prompt = malloc(sizeof(int32_t) * (size_t)n_prompt);
    double *pp = malloc(sizeof(double) * (size_t)repetitions), *tg = malloc(sizeof(double) * (size_t)repetitions);
    unsigned seed = 1;
    for (int i = 0; i < n_prompt; i++) { seed = seed * 1103515245u + 12345u; prompt[i] = (int32_t)((seed >> 8) % (unsigned)(vocab < 150000 ? vocab : 150000)); }

    for (int rep = -1; rep < repetitions; rep++) { /* rep -1 = warm-up */
        qwen_context_reset(ctx);
        double a = now_seconds();
        if (qwen_context_eval_tokens(ctx, prompt, n_prompt, logits)) { fprintf(stderr, "error: %s\n", qwen_last_error()); return 1; }
        double b = now_seconds();
        for (int i = 0; i < n_gen; i++) {
            int32_t best = 0;
            for (int j = 1; j < vocab; j++) if (logits[j] > logits[best]) best = j;
            if (qwen_context_eval_tokens(ctx, &best, 1, logits)) { fprintf(stderr, "error: %s\n", qwen_last_error()); return 1; }
        }
        double c = now_seconds();
        if (rep >= 0) {
            pp[rep] = n_prompt / (b - a);
            tg[rep] = n_gen > 0 ? n_gen / (c - b) : 0;
        }
    }
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    printf("model %s | load %.2f s | threads %d | pp%d %.1f t/s | tg%d %.2f t/s | peak RSS %.0f MiB\n", model_path, load,
           cp.n_threads, n_prompt, median(pp, repetitions), n_gen, median(tg, repetitions), usage.ru_maxrss / 1024.0);
    free(pp);
    free(tg);
    free(prompt);
    free(logits);
    qwen_context_free(ctx);
    qwen_model_free(model);
    return 0;
}
