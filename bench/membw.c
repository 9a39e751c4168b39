/*
 * membw: memory read bandwidth, the bound for decode speed (every weight byte is read once per token).
 *
 *   membw [-s MiB] [-t 1,2] [-p PASSES] [--json]
 *
 * For each thread count T: two arrays of MiB each (default 1024, far beyond any cache), one on 4 KiB pages
 * (MADV_NOHUGEPAGE) and one on 2 MiB transparent huge pages (2 MiB aligned, MADV_HUGEPAGE), each split into T
 * equal chunks first-touched by the thread that reads them. Passes alternate between the two arrays; every pass,
 * all T threads sum their chunk of 64-bit words at the same time (8 independent accumulators, vectorized by the
 * compiler), and the pass's wall time is taken from a barrier before to a barrier after. Huge pages read faster
 * (fewer TLB misses), and libqwen keeps its packed weights on them, so the bound is the faster of the two: for
 * each page size it reports the best pass (bytes / time, 1 GB = 1e9 bytes) and the median pass, and as "best" and
 * "median" the higher of the two page sizes. Build: cc -std=c11 -O3 -march=native -pthread membw.c -o membw
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>

typedef struct {
    const uint64_t *data[2]; /* this thread's chunk of the 4 KiB-page and of the huge-page array */
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
    for (int k = 0; k < 2; k++) /* first touch: pages local to this thread */
        memset((void *)w->data[k], 1, w->words * sizeof(uint64_t));
    pthread_barrier_wait(w->barrier);
    for (int p = 0; p < w->passes; p++) {
        pthread_barrier_wait(w->barrier); /* start */
        w->sink += sum_words(w->data[p % 2], w->words);
        pthread_barrier_wait(w->barrier); /* end */
    }
    return NULL;
}

#define HUGE_PAGE ((size_t)2 << 20)

/* An anonymous mapping of `bytes` (a multiple of 2 MiB) on the page size asked for; `*base`/`*length` to unmap. */
static uint64_t *map_array(size_t bytes, int huge, void **base, size_t *length) {
    *length = bytes + HUGE_PAGE;
    *base = mmap(NULL, *length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (*base == MAP_FAILED) return NULL;
    uint8_t *p = (uint8_t *)(((uintptr_t)*base + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    madvise(p, bytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    return (uint64_t *)p;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct { double best, median; } rate;


/* Measures T threads over each page size (0: 4 KiB, 1: huge). Returns 0 on success. */
static int measure(int threads, size_t bytes, int passes, rate out[2]) {
    size_t words = bytes / sizeof(uint64_t) / (size_t)threads;
    size_t array_bytes = (words * sizeof(uint64_t) * (size_t)threads + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    void *base[2];
    size_t length[2];
    uint64_t *data[2];
    for (int k = 0; k < 2; k++)
        if (!(data[k] = map_array(array_bytes, k, &base[k], &length[k]))) return 1;
    worker *w = calloc((size_t)threads, sizeof *w);
    pthread_t *tid = calloc((size_t)threads, sizeof *tid);
    double *gbps[2] = {calloc((size_t)passes, sizeof(double)), calloc((size_t)passes, sizeof(double))};
    if (!w || !tid || !gbps[0] || !gbps[1]) return 1;
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, (unsigned)threads + 1);
    for (int t = 0; t < threads; t++) {
        w[t] = (worker){{data[0] + (size_t)t * words, data[1] + (size_t)t * words}, words, 2 * passes, &barrier, 0};
        if (pthread_create(&tid[t], NULL, work, &w[t])) return 1;
    }
    pthread_barrier_wait(&barrier); /* all chunks touched */
    double total = (double)(words * sizeof(uint64_t) * (size_t)threads);
    for (int p = 0; p < 2 * passes; p++) {
        double start = now_seconds();
        pthread_barrier_wait(&barrier);
        pthread_barrier_wait(&barrier);
        gbps[p % 2][p / 2] = total / (now_seconds() - start) / 1e9;
    }
    uint64_t sink = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        sink += w[t].sink;
    }
    if (sink == 42) fputc(' ', stderr); /* keeps the sums alive */
    for (int k = 0; k < 2; k++) {
        qsort(gbps[k], (size_t)passes, sizeof(double), compare_doubles);
        out[k] = (rate){gbps[k][passes - 1], gbps[k][passes / 2]};
        free(gbps[k]);
        munmap(base[k], length[k]);
    }
    pthread_barrier_destroy(&barrier);
    free(tid);
    free(w);
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
        rate r[2];
        if (measure(thread_counts[i], mib << 20, passes, r)) { fprintf(stderr, "membw: failed\n"); return 1; }
        double best = r[0].best > r[1].best ? r[0].best : r[1].best;
        double median = r[0].median > r[1].median ? r[0].median : r[1].median;
        if (json)
            printf("%s\"%d\": {\"best\": %.2f, \"median\": %.2f, \"small_pages\": {\"best\": %.2f, \"median\": %.2f}, "
                   "\"huge_pages\": {\"best\": %.2f, \"median\": %.2f}}", i ? ", " : "", thread_counts[i], best, median,
                   r[0].best, r[0].median, r[1].best, r[1].median);
        else
            printf("threads %d: read %.2f GB/s best, %.2f GB/s median of %d passes over %zu MiB "
                   "(4 KiB pages %.2f / %.2f, huge pages %.2f / %.2f)\n", thread_counts[i], best, median, passes, mib,
                   r[0].best, r[0].median, r[1].best, r[1].median);
    }
    if (json) printf("}}\n");
    return 0;
}
