/*
 * Times libqwen's audio encoder: qwen_audio_embed of a synthetic clip (log-mel features, audio tower, projector) on a
 * fresh context per round, so nothing comes from the context's embedding cache.
 *
 *   audio_bench -m TEXT.gguf --mmproj MMPROJ.gguf [-t THREADS] [-r ROUNDS] [-s SECONDS] [--json]
 *
 * Built by bench/audio/run.py: cc -std=c11 -O2 -Iinclude bench/audio/audio_bench.c -lqwen -lm
 */
#define _POSIX_C_SOURCE 200809L
#include <qwen.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const double PI = 3.14159265358979323846;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *mmproj = NULL;
    int threads = 2, rounds = 3, json = 0;
    double seconds = 30;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc) model_path = argv[++i];
        else if (!strcmp(argv[i], "--mmproj") && i + 1 < argc) mmproj = argv[++i];
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-s") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--json")) json = 1;
        else { fprintf(stderr, "usage: %s -m TEXT.gguf --mmproj MMPROJ.gguf [-t N] [-r N] [-s SECONDS] [--json]\n", argv[0]); return 2; }
    }
    if (!model_path || !mmproj || rounds < 1 || seconds <= 0) { fprintf(stderr, "missing -m / --mmproj\n"); return 2; }

    double t0 = now_ms();
    qwen_model_params mp = qwen_model_default_params();
    mp.n_threads = threads;
    qwen_model *model;
    if (qwen_model_load(model_path, &mp, &model) != QWEN_OK || qwen_model_load_projector(model, mmproj) != QWEN_OK) {
        fprintf(stderr, "load: %s\n", qwen_last_error());
        return 1;
    }
    double load_ms = now_ms() - t0;

    /* a chirp with a tone and noise, 16 kHz mono */
    int64_t n = (int64_t)(seconds * 16000);
    float *pcm = malloc(sizeof(float) * (size_t)n);
    uint32_t state = 1;
    for (int64_t i = 0; i < n; i++) {
        double t = (double)i / 16000.0;
        state = state * 1664525u + 1013904223u;
        pcm[i] = (float)(0.3 * sin(2 * PI * (200 * t + 60 * t * t)) + 0.2 * sin(2 * PI * 440 * t) +
                         0.05 * ((double)state / 4294967296.0 - 0.5));
    }
    qwen_audio *clip;
    if (qwen_audio_from_pcm_f32(pcm, n, 1, 16000, &clip) != QWEN_OK) { fprintf(stderr, "%s\n", qwen_last_error()); return 1; }
    int32_t tokens = qwen_audio_n_tokens(model, clip);
    int32_t n_embd = qwen_model_n_embd(model);
    float *out = malloc(sizeof(float) * (size_t)tokens * (size_t)n_embd);

    qwen_context_params cp = qwen_context_default_params();
    cp.n_ctx = 256;
    cp.n_threads = threads;
    double best = 1e30, sum = 0, sq = 0;
    for (int r = -1; r < rounds; r++) { /* round -1: warm-up */
        qwen_context *ctx;
        if (qwen_context_new(model, &cp, &ctx) != QWEN_OK) { fprintf(stderr, "%s\n", qwen_last_error()); return 1; }
        int32_t got = 0;
        double a = now_ms();
        int rc = qwen_audio_embed(ctx, clip, out, (int64_t)tokens * n_embd, &got);
        double ms = now_ms() - a;
        qwen_context_free(ctx);
        if (rc < 0 || got != tokens) { fprintf(stderr, "embed: %s\n", qwen_last_error()); return 1; }
        if (r < 0) continue;
        best = ms < best ? ms : best;
        sum += ms;
        sq += ms * ms;
    }
    double mean = sum / rounds, sd = rounds > 1 ? sqrt((sq - sum * sum / rounds) / (rounds - 1)) : 0;
    if (json) {
        printf("{\"engine\": \"libqwen\", \"seconds\": %.3f, \"threads\": %d, \"rounds\": %d, \"tokens\": %d, \"mean_ms\": %.1f, "
               "\"sd_ms\": %.1f, \"min_ms\": %.1f, \"load_ms\": %.0f}\n", seconds, threads, rounds, tokens, mean, sd, best, load_ms);
    } else {
        printf("libqwen: %.1f s of audio -> %d rows: %.1f ms ± %.1f (min %.1f) over %d rounds, %d threads; "
               "real-time factor %.3f; load %.0f ms\n", seconds, tokens, mean, sd, best, rounds, threads, mean / (seconds * 1000), load_ms);
    }
    free(out);
    free(pcm);
    qwen_audio_free(clip);
    qwen_model_free(model);
    return 0;
}
