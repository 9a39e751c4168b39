/*
 * membw: memory read bandwidth, the bound for decode speed (every weight byte is read once per token).
 *
 *   membw [-s MiB] [-t 1,2] [-p PASSES] [--json]
 *
 * For each thread count T: one array of MiB (default 1024, far beyond any cache) split into T equal chunks,
 * each first-touched by the thread that reads it; every pass, all T threads sum their chunk of 64-bit words
 * at the same time (8 independent accumulators, vectorized by the compiler), and the pass's wall time is
 * taken from a barrier before to a barrier after. Reports the best pass (bytes / time, 1 GB = 1e9 bytes)
 * and the median pass. Build: cc -std=c11 -O3 -march=native -pthread membw.c -o membw
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const uint64_t *data;
    size_t words;
    int passes;
    pthread_barrier_t *barrier;
    uint64_t sink;
} worker;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t sum_words(const uint64_t *restrict p, size_t n) {
    uint64_t a[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) a[k] += p[i + k];
    for (; i < n; i++) a[0] += p[i];
    return a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
}

static void *work(void *arg) {
    worker *w = arg;
    memset((void *)w->data, 1, w->words * sizeof(uint64_t)); /* first touch: pages local to this thread */
    pthread_barrier_wait(w->barrier);
    for (int p = 0; p < w->passes; p++) {
        pthread_barrier_wait(w->barrier); /* start */
        w->sink += sum_words(w->data, w->words);
        pthread_barrier_wait(w->barrier); /* end */
    }
    return NULL;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Measures T threads; writes the best and median GB/s. Returns 0 on success. */
static int measure(int threads, size_t bytes, int passes, double *best, double *median) {
    size_t words = bytes / sizeof(uint64_t) / (size_t)threads;
    uint64_t *data = aligned_alloc(4096, (words * sizeof(uint64_t) * (size_t)threads + 4095) / 4096 * 4096);
    worker *w = calloc((size_t)threads, sizeof *w);
    pthread_t *tid = calloc((size_t)threads, sizeof *tid);
    double *gbps = calloc((size_t)passes, sizeof *gbps);
    if (!data || !w || !tid || !gbps) return 1;
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, (unsigned)threads + 1);
    for (int t = 0; t < threads; t++) {
        w[t] = (worker){data + (size_t)t * words, words, passes, &barrier, 0};
        if (pthread_create(&tid[t], NULL, work, &w[t])) return 1;
    }
    pthread_barrier_wait(&barrier); /* all chunks touched */
    double total = (double)(words * sizeof(uint64_t) * (size_t)threads);
    for (int p = 0; p < passes; p++) {
        double start = now_seconds();
        pthread_barrier_wait(&barrier);
        pthread_barrier_wait(&barrier);
        gbps[p] = total / (now_seconds() - start) / 1e9;
    }
    uint64_t sink = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        sink += w[t].sink;
    }
    if (sink == 42) fputc(' ', stderr); /* keeps the sums alive */
    qsort(gbps, (size_t)passes, sizeof *gbps, compare_doubles);
    *best = gbps[passes - 1];
    *median = gbps[passes / 2];
    pthread_barrier_destroy(&barrier);
    free(gbps);
    free(tid);
    free(w);
    free(data);
    return 0;
}

int main(int argc, char **argv) {
    size_t mib = 1024;
    int passes = 10, json = 0, thread_counts[16], n_counts = 0;
    char list[64] = "1,2";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "-s") && i + 1 < argc) mib = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "-p") && i + 1 < argc) passes = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) snprintf(list, sizeof list, "%s", argv[++i]);
        else {
            fprintf(stderr, "usage: %s [-s MiB (1024)] [-t 1,2] [-p PASSES (10)] [--json]\n", argv[0]);
            return 2;
        }
    }
    for (char *tok = strtok(list, ","); tok && n_counts < 16; tok = strtok(NULL, ",")) {
        int t = atoi(tok);
        if (t < 1 || t > 1024) { fprintf(stderr, "membw: bad thread count %s\n", tok); return 2; }
        thread_counts[n_counts++] = t;
    }
    if (mib < 1 || passes < 1 || n_counts == 0) { fprintf(stderr, "membw: bad arguments\n"); return 2; }

    if (json) printf("{\"size_mib\": %zu, \"passes\": %d, \"read_gbps\": {", mib, passes);
    for (int i = 0; i < n_counts; i++) {
        double best, median;
        if (measure(thread_counts[i], mib << 20, passes, &best, &median)) { fprintf(stderr, "membw: failed\n"); return 1; }
        if (json) printf("%s\"%d\": {\"best\": %.2f, \"median\": %.2f}", i ? ", " : "", thread_counts[i], best, median);
        else printf("threads %d: read %.2f GB/s best, %.2f GB/s median of %d passes over %zu MiB\n", thread_counts[i],
                    best, median, passes, mib);
    }
    if (json) printf("}}\n");
    return 0;
}
