// Small C helpers for libqwen's Swift core: what Swift cannot express or call directly.
// Everything hot is `static inline` so it inlines into the Swift callers.
#ifndef CQWEN_H
#define CQWEN_H

#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

// The public C API's types, so the Swift @_cdecl layer can take and return them.
#include "../../../include/qwen.h"

// ---- Thread-local error text (cqwen.c) ----
void cq_set_error(const char *message);
const char *cq_get_error(void);

// ---- Futex and CPU queries (cqwen.c) ----
void cq_futex_wait(uint32_t *address, uint32_t expected);
void cq_futex_wake_all(uint32_t *address);
/// Sleeps while *address == expected, counted in *sleepers; cq_futex_wake_counted (after a store to *address) makes
/// the wake system call only when a thread is counted, so a job handed to spinning threads costs no system call.
void cq_futex_wait_counted(uint32_t *address, uint32_t expected, uint32_t *sleepers);
void cq_futex_wake_counted(uint32_t *address, uint32_t *sleepers);
int cq_usable_cpu_count(void);
int cq_cpu_has_avx512vnni(void);
void cq_pause(void);

/// Starts loading the cache line of `p` (hash-table probes issued ahead of their use).
static inline void cq_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

// ---- Atomics on plain memory (the pool shares these words with the futex) ----
static inline uint32_t cq_load_acquire_u32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void cq_store_release_u32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline uint32_t cq_fetch_add_u32(uint32_t *p, uint32_t v) { return __atomic_fetch_add(p, v, __ATOMIC_ACQ_REL); }
static inline int64_t cq_fetch_add_i64(int64_t *p, int64_t v) { return __atomic_fetch_add(p, v, __ATOMIC_ACQ_REL); }
static inline int64_t cq_load_acquire_i64(const int64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void cq_store_release_i64(int64_t *p, int64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline _Bool cq_compare_exchange_i64(int64_t *p, int64_t *expected, int64_t desired) {
    return __atomic_compare_exchange_n(p, expected, desired, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

// ---- Block layouts (llama.cpp / GGUF) ----
#define CQ_QK8_0 32
#define CQ_QK4_0 32
#define CQ_Q8_0_BYTES 34 /* f16 scale + 32 x int8 */
#define CQ_Q4_0_BYTES 18 /* f16 scale + 16 bytes of nibbles: low = elements 0..15, high = 16..31 */

static inline float cq_f16_to_f32(uint16_t h) {
#if defined(__F16C__)
    return _cvtsh_ss(h);
#elif defined(__aarch64__)
    __fp16 v; memcpy(&v, &h, 2); return (float)v;
#else
    // portable IEEE half -> float
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) bits = sign;
        else { exp = 127 - 15 + 1; while (!(mant & 0x400)) { mant <<= 1; exp--; } mant &= 0x3ff; bits = sign | (exp << 23) | (mant << 13); }
    } else if (exp == 31) bits = sign | 0x7f800000u | (mant << 13);
    else bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    float f; memcpy(&f, &bits, 4); return f;
#endif
}

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define CQ_HAVE_AVX2 1

static inline float cq_hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Σ over 32 int8 pairs, as 8 int32 lanes (llama.cpp's sign trick: |w| * sign(x, w) fits maddubs).
static inline __m256i cq_dot32_i8(__m256i w, __m256i x) {
    __m256i aw = _mm256_sign_epi8(w, w);
    __m256i sx = _mm256_sign_epi8(x, w);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sx), _mm256_set1_epi16(1));
}

/// Dot product of `nblocks` Q8_0 blocks of a weight row with `nblocks` Q8_0 blocks of an activation row.
static inline float cq_dot_q8_0_q8_0_avx2(int nblocks, const uint8_t *w, const uint8_t *x) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 1 < nblocks; i += 2) {
        const uint8_t *wb = w + (size_t)i * CQ_Q8_0_BYTES, *xb = x + (size_t)i * CQ_Q8_0_BYTES;
        uint16_t dw0, dx0, dw1, dx1;
        memcpy(&dw0, wb, 2); memcpy(&dx0, xb, 2);
        memcpy(&dw1, wb + CQ_Q8_0_BYTES, 2); memcpy(&dx1, xb + CQ_Q8_0_BYTES, 2);
        __m256i p0 = cq_dot32_i8(_mm256_loadu_si256((const __m256i *)(wb + 2)), _mm256_loadu_si256((const __m256i *)(xb + 2)));
        __m256i p1 = cq_dot32_i8(_mm256_loadu_si256((const __m256i *)(wb + 36)), _mm256_loadu_si256((const __m256i *)(xb + 36)));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(cq_f16_to_f32(dw0) * cq_f16_to_f32(dx0)), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(cq_f16_to_f32(dw1) * cq_f16_to_f32(dx1)), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; i < nblocks; i++) {
        const uint8_t *wb = w + (size_t)i * CQ_Q8_0_BYTES, *xb = x + (size_t)i * CQ_Q8_0_BYTES;
        uint16_t dw, dx; memcpy(&dw, wb, 2); memcpy(&dx, xb, 2);
        __m256i p = cq_dot32_i8(_mm256_loadu_si256((const __m256i *)(wb + 2)), _mm256_loadu_si256((const __m256i *)(xb + 2)));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(cq_f16_to_f32(dw) * cq_f16_to_f32(dx)), _mm256_cvtepi32_ps(p), acc0);
    }
    return cq_hsum256(_mm256_add_ps(acc0, acc1));
}

/// Dot product of `nblocks` Q4_0 blocks of a weight row with Q8_0 activation blocks.
static inline float cq_dot_q4_0_q8_0_avx2(int nblocks, const uint8_t *w, const uint8_t *x) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    const __m256i low = _mm256_set1_epi8(0x0f), eight = _mm256_set1_epi8(8);
    for (int i = 0; i < nblocks; i++) {
        const uint8_t *wb = w + (size_t)i * CQ_Q4_0_BYTES, *xb = x + (size_t)i * CQ_Q8_0_BYTES;
        uint16_t dw, dx; memcpy(&dw, wb, 2); memcpy(&dx, xb, 2);
        __m128i packed = _mm_loadu_si128((const __m128i *)(wb + 2));
        __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), low);
        q = _mm256_sub_epi8(q, eight);
        __m256i p = cq_dot32_i8(q, _mm256_loadu_si256((const __m256i *)(xb + 2)));
        __m256 d = _mm256_set1_ps(cq_f16_to_f32(dw) * cq_f16_to_f32(dx));
        if (i & 1) acc1 = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc1);
        else acc0 = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc0);
    }
    return cq_hsum256(_mm256_add_ps(acc0, acc1));
}

/// Quantizes `n` floats (a multiple of 32) to Q8_0 blocks: d = max|x| / 127, q = round-to-nearest-even(x / d).
static inline void cq_quantize_row_q8_0_avx2(const float *x, uint8_t *y, int n) {
    const __m256 signBit = _mm256_set1_ps(-0.0f);
    for (int b = 0; b < n / CQ_QK8_0; b++, x += 32, y += CQ_Q8_0_BYTES) {
        __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8), v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        __m256 m = _mm256_andnot_ps(signBit, v0);
        m = _mm256_max_ps(m, _mm256_andnot_ps(signBit, v1));
        m = _mm256_max_ps(m, _mm256_andnot_ps(signBit, v2));
        m = _mm256_max_ps(m, _mm256_andnot_ps(signBit, v3));
        __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const float d = amax / 127.0f;
        uint16_t dh = (uint16_t)_cvtss_sh(d, 0);
        memcpy(y, &dh, 2);
        const __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
        __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        // packs interleave 128-bit lanes; the final permute restores element order
        __m256i p01 = _mm256_packs_epi32(i0, i1), p23 = _mm256_packs_epi32(i2, i3);
        __m256i p = _mm256_packs_epi16(p01, p23);
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(y + 2), p);
    }
}

/// Σ w[i]·x[i] with F16 weights and F32 activations.
static inline float cq_dot_f16_f32_avx2(int n, const uint16_t *w, const float *x) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i))), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + 8))), _mm256_loadu_ps(x + i + 8), a1);
    }
    float s = cq_hsum256(_mm256_add_ps(a0, a1));
    for (; i < n; i++) s += cq_f16_to_f32(w[i]) * x[i];
    return s;
}

static inline __m256 cq_bf16x8_to_f32(const uint16_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

/// Σ w[i]·x[i] with BF16 weights and F32 activations.
static inline float cq_dot_bf16_f32_avx2(int n, const uint16_t *w, const float *x) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(cq_bf16x8_to_f32(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(cq_bf16x8_to_f32(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
    }
    float s = cq_hsum256(_mm256_add_ps(a0, a1));
    for (; i < n; i++) { uint32_t b = (uint32_t)w[i] << 16; float f; memcpy(&f, &b, 4); s += f * x[i]; }
    return s;
}

/// y[i] += a · w[i] with F16 w (the attention's V accumulation over an F16 cache).
static inline void cq_axpy_f16_avx2(int n, float a, const uint16_t *w, float *y) {
    const __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i))), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * cq_f16_to_f32(w[i]);
}

/// Attention scores against an F16 cache for one query: scores[j] = scale · (q · key j) for n keys `stride` bytes
/// apart, d a multiple of 8. Eight keys at a time, reduced together by one add tree instead of eight horizontal sums.
static inline void cq_attn_scores_f16_avx2(int d, int n, const uint8_t *keys, size_t stride, const float *q, float scale, float *scores) {
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 a[8];
        for (int r = 0; r < 8; r++) a[r] = _mm256_setzero_ps();
        for (int i = 0; i < d; i += 8) {
            const __m256 qv = _mm256_loadu_ps(q + i);
            for (int r = 0; r < 8; r++) {
                const uint16_t *k = (const uint16_t *)(keys + (size_t)(j + r) * stride) + i;
                a[r] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)k)), qv, a[r]);
            }
        }
        // lanes: hadd pairs, then pairs of pairs; the two 128-bit halves hold elements 0-3 and 4-7 of each sum
        const __m256 s03 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
        const __m256 s47 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
        const __m256 sums = _mm256_add_ps(_mm256_permute2f128_ps(s03, s47, 0x20), _mm256_permute2f128_ps(s03, s47, 0x31));
        _mm256_storeu_ps(scores + j, _mm256_mul_ps(sums, _mm256_set1_ps(scale)));
    }
    for (; j < n; j++) scores[j] = cq_dot_f16_f32_avx2(d, (const uint16_t *)(keys + (size_t)j * stride), q) * scale;
}

/// out = scale · Σ_j p[j] · value j for n F16 value rows `stride` bytes apart, d a multiple of 8; 64 columns at a
/// time stay in registers over all rows (no load-add-store per row).
static inline void cq_attn_values_f16_avx2(int d, int n, const uint8_t *values, size_t stride, const float *p, float scale, float *out) {
    int c = 0;
    for (; c + 64 <= d; c += 64) {
        __m256 acc[8];
        for (int i = 0; i < 8; i++) acc[i] = _mm256_setzero_ps();
        for (int j = 0; j < n; j++) {
            const __m256 pj = _mm256_set1_ps(p[j]);
            const uint16_t *v = (const uint16_t *)(values + (size_t)j * stride) + c;
            for (int i = 0; i < 8; i++) acc[i] = _mm256_fmadd_ps(pj, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i * 8))), acc[i]);
        }
        for (int i = 0; i < 8; i++) _mm256_storeu_ps(out + c + i * 8, _mm256_mul_ps(acc[i], _mm256_set1_ps(scale)));
    }
    for (; c < d; c += 8) {
        __m256 acc = _mm256_setzero_ps();
        for (int j = 0; j < n; j++)
            acc = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)(values + (size_t)j * stride) + c))), acc);
        _mm256_storeu_ps(out + c, _mm256_mul_ps(acc, _mm256_set1_ps(scale)));
    }
}

/// Converts n floats to F16 (round to nearest even).
static inline void cq_f32_to_f16_row_avx2(int n, const float *x, uint16_t *y) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) y[i] = (uint16_t)_cvtss_sh(x[i], 0);
}

/// Converts n F16 values to floats.
static inline void cq_f16_to_f32_row_avx2(int n, const uint16_t *x, float *y) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    for (; i < n; i++) y[i] = cq_f16_to_f32(x[i]);
}

/// Converts n BF16 values to floats.
static inline void cq_bf16_to_f32_row_avx2(int n, const uint16_t *x, float *y) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, cq_bf16x8_to_f32(x + i));
    for (; i < n; i++) { uint32_t b = (uint32_t)x[i] << 16; memcpy(y + i, &b, 4); }
}


// ---- Tiles for prompt processing: 4 weight rows x 4 tokens over a whole row ----
//
// Activations are prepared once per token row ("q8 rows"): nb x 32 int8 quants, then nb f32 scales, then
// nb int32 sums of the quants of each block (layout below). Weight blocks are used as the file stores them.
// Each (row, token, block) costs one integer dot of 32 pairs, a convert and an FMA; the bias corrections
// that make the unsigned operand of vpdpbusd / vpmaddubsw work are folded into the accumulator seed.
#define CQ_Q8ROW_BYTES(nb) ((size_t)(nb) * 40)
static inline const int8_t *cq_q8row_quants(const uint8_t *row) { return (const int8_t *)row; }
static inline const float *cq_q8row_scales(const uint8_t *row, int nb) { return (const float *)(row + (size_t)nb * 32); }
static inline const int32_t *cq_q8row_sums(const uint8_t *row, int nb) { return (const int32_t *)(row + (size_t)nb * 36); }

/// Prepares one activation row of n floats (n a multiple of 32) as a q8 row, with the rounding of Q8_0.
static inline void cq_prepare_q8row_avx2(const float *x, uint8_t *row, int n) {
    const int nb = n / 32;
    uint8_t block[CQ_Q8_0_BYTES];
    int8_t *q = (int8_t *)row;
    float *d = (float *)(row + (size_t)nb * 32);
    int32_t *sums = (int32_t *)(row + (size_t)nb * 36);
    for (int b = 0; b < nb; b++) {
        cq_quantize_row_q8_0_avx2(x + b * 32, block, 32);
        uint16_t dh; memcpy(&dh, block, 2);
        d[b] = cq_f16_to_f32(dh);
        __m256i v = _mm256_loadu_si256((const __m256i *)(block + 2));
        _mm256_storeu_si256((__m256i *)(q + b * 32), v);
        __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), v);
        __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
        sums[b] = _mm_cvtsi128_si32(s);
    }
}

static inline __m256i cq_seed(int32_t v) { return _mm256_setr_epi32(v, 0, 0, 0, 0, 0, 0, 0); }

static inline __m256i cq_q4_0_nibbles(const uint8_t *qs) {
    __m128i packed = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0f));
}

/// out[t * ldo + r] = W[r] · x[t] for r, t in 0..<4 (Q8_0 weights, AVX2: sign trick + maddubs).
static inline void cq_tile_q8_0_avx2(int nb, const uint8_t *w, size_t ws, const uint8_t *act, size_t as, float *out, size_t ldo) {
    __m256 acc[4][4];
    for (int r = 0; r < 4; r++) for (int t = 0; t < 4; t++) acc[r][t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m256i wq[4], wabs[4];
        __m256 dw[4];
        for (int r = 0; r < 4; r++) {
            const uint8_t *blk = w + r * ws + (size_t)b * CQ_Q8_0_BYTES;
            uint16_t h; memcpy(&h, blk, 2);
            dw[r] = _mm256_set1_ps(cq_f16_to_f32(h));
            wq[r] = _mm256_loadu_si256((const __m256i *)(blk + 2));
            wabs[r] = _mm256_sign_epi8(wq[r], wq[r]);
        }
        for (int t = 0; t < 4; t++) {
            const uint8_t *a = act + t * as;
            __m256i x = _mm256_loadu_si256((const __m256i *)(a + (size_t)b * 32));
            __m256 dx = _mm256_set1_ps(cq_q8row_scales(a, nb)[b]);
            for (int r = 0; r < 4; r++) {
                __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(wabs[r], _mm256_sign_epi8(x, wq[r])), _mm256_set1_epi16(1));
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dw[r], dx), acc[r][t]);
            }
        }
    }
    for (int r = 0; r < 4; r++) for (int t = 0; t < 4; t++) out[t * ldo + r] = cq_hsum256(acc[r][t]);
}

/// The same for Q4_0 weights: nibbles are the unsigned operand, the -8 offset is seeded as -8·Σx.
static inline void cq_tile_q4_0_avx2(int nb, const uint8_t *w, size_t ws, const uint8_t *act, size_t as, float *out, size_t ldo) {
    __m256 acc[4][4];
    for (int r = 0; r < 4; r++) for (int t = 0; t < 4; t++) acc[r][t] = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    for (int b = 0; b < nb; b++) {
        __m256i wq[4];
        __m256 dw[4];
        for (int r = 0; r < 4; r++) {
            const uint8_t *blk = w + r * ws + (size_t)b * CQ_Q4_0_BYTES;
            uint16_t h; memcpy(&h, blk, 2);
            dw[r] = _mm256_set1_ps(cq_f16_to_f32(h));
            wq[r] = cq_q4_0_nibbles(blk + 2);
        }
        for (int t = 0; t < 4; t++) {
            const uint8_t *a = act + t * as;
            __m256i x = _mm256_loadu_si256((const __m256i *)(a + (size_t)b * 32));
            __m256 dx = _mm256_set1_ps(cq_q8row_scales(a, nb)[b]);
            __m256i seed = cq_seed(-8 * cq_q8row_sums(a, nb)[b]);
            for (int r = 0; r < 4; r++) {
                __m256i p = _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(wq[r], x), ones), seed);
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dw[r], dx), acc[r][t]);
            }
        }
    }
    for (int r = 0; r < 4; r++) for (int t = 0; t < 4; t++) out[t * ldo + r] = cq_hsum256(acc[r][t]);
}

#define CQ_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

/// Q8_0 tile with AVX-512 VNNI: weights biased to unsigned (+128) once per block, seed -128·Σx.
CQ_VNNI static inline void cq_tile_q8_0_vnni(int nb, const uint8_t *w, size_t ws, const uint8_t *act, size_t as, float *out, size_t ldo) {
    __m256 acc[4][4];
    for (int r = 0; r < 4; r++) for (int t = 0; t < 4; t++) acc[r][t] = _mm256_setzero_ps();
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    for (int b = 0; b < nb; b++) {
        __m256i wu[4];
        __m256 dw[4];
        for (int r = 0; r < 4; r++) {
            const uint8_t *blk = w + r * ws + (size_t)b * CQ_Q8_0_BYTES;
            uint16_t h; memcpy(&h, blk, 2);
            dw[r] = _mm256_set1_ps(cq_f16_to_f32(h));
            wu[r] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(blk + 2)), bias);
        }
        for (int t = 0; t < 4; t++) {
            const uint8_t *a = act + t * as;
            __m256i x = _mm256_loadu_si256((const __m256i *)(a + (size_t)b * 32));
            __m256 dx = _mm256_set1_ps(cq_q8row_scales(a, nb)[b]);
            __m256i seed = cq_seed(-128 * cq_q8row_sums(a, nb)[b]);
            for (int r = 0; r < 4; r++) {
                __m256i p = _mm256_dpbusd_epi32(seed, wu[r], x);
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dw[r], dx), acc[r][t]);
            }
        }
    }
    for (int r = 0; r < 4; r++) for (int t = 0; t < 4; t++) out[t * ldo + r] = cq_hsum256(acc[r][t]);
}

/// Q4_0 tile with AVX-512 VNNI.
CQ_VNNI static inline void cq_tile_q4_0_vnni(int nb, const uint8_t *w, size_t ws, const uint8_t *act, size_t as, float *out, size_t ldo) {
    __m256 acc[4][4];
    for (int r = 0; r < 4; r++) for (int t = 0; t < 4; t++) acc[r][t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m256i wq[4];
        __m256 dw[4];
        for (int r = 0; r < 4; r++) {
            const uint8_t *blk = w + r * ws + (size_t)b * CQ_Q4_0_BYTES;
            uint16_t h; memcpy(&h, blk, 2);
            dw[r] = _mm256_set1_ps(cq_f16_to_f32(h));
            wq[r] = cq_q4_0_nibbles(blk + 2);
        }
        for (int t = 0; t < 4; t++) {
            const uint8_t *a = act + t * as;
            __m256i x = _mm256_loadu_si256((const __m256i *)(a + (size_t)b * 32));
            __m256 dx = _mm256_set1_ps(cq_q8row_scales(a, nb)[b]);
            __m256i seed = cq_seed(-8 * cq_q8row_sums(a, nb)[b]);
            for (int r = 0; r < 4; r++) {
                __m256i p = _mm256_dpbusd_epi32(seed, wq[r], x);
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dw[r], dx), acc[r][t]);
            }
        }
    }
    for (int r = 0; r < 4; r++) for (int t = 0; t < 4; t++) out[t * ldo + r] = cq_hsum256(acc[r][t]);
}


// ---- Packed 16-row groups (AVX-512 VNNI) ----
//
// Weights repacked at load: rows in groups of 16, and per group and 32-element block: 16 F16 scales
// (32 bytes), then the quants interleaved by 4-byte k-groups, [k-group][row][4 bytes], so that one
// 64-byte load feeds vpdpbusd with one k-group of all 16 rows (one lane per row) and the activations
// come in as a broadcast 32-bit operand. Q8_0 quants are stored biased to unsigned (q + 128); Q4_0
// nibbles stay as they are (byte j: element j low, element j+16 high). Bias corrections are seeded into
// the integer accumulators from the activation block sums. No horizontal reductions anywhere.
#define CQ_UNROLL _Pragma("clang loop unroll(full)")
static inline int32_t cq_bcast_x4(const uint8_t *p) { int32_t v; memcpy(&v, p, 4); return v; }
#define CQ_PACKED_Q8_0_BLOCK 544 /* 32 + 16 x 32 */
#define CQ_PACKED_Q4_0_BLOCK 288 /* 32 + 16 x 16 */

CQ_VNNI static inline __attribute__((always_inline)) void cq_group_q8_0_vnni_t(
    int nb, const uint8_t *group, const uint8_t *act, size_t as, float *out, size_t ldo, const int T) {
    __m512 acc[8];
    CQ_UNROLL for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *blk = group + (size_t)b * CQ_PACKED_Q8_0_BLOCK;
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
        __m512i isum[8];
        CQ_UNROLL for (int t = 0; t < T; t++) {
            const uint8_t *a = act + t * as;
            isum[t] = _mm512_set1_epi32(-128 * cq_q8row_sums(a, nb)[b]);
        }
        CQ_UNROLL for (int g = 0; g < 8; g++) {
            const __m512i wv = _mm512_loadu_si512((const void *)(blk + 32 + g * 64));
            CQ_UNROLL for (int t = 0; t < T; t++) {
                int32_t x4;
                memcpy(&x4, act + t * as + (size_t)b * 32 + g * 4, 4);
                isum[t] = _mm512_dpbusd_epi32(isum[t], wv, _mm512_set1_epi32(x4));
            }
        }
        CQ_UNROLL for (int t = 0; t < T; t++) {
            const __m512 s = _mm512_mul_ps(dw, _mm512_set1_ps(cq_q8row_scales(act + t * as, nb)[b]));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), s, acc[t]);
        }
    }
    CQ_UNROLL for (int t = 0; t < T; t++) _mm512_storeu_ps(out + t * ldo, acc[t]);
}

CQ_VNNI static inline __attribute__((always_inline)) void cq_group_q4_0_vnni_t(
    int nb, const uint8_t *group, const uint8_t *act, size_t as, float *out, size_t ldo, const int T) {
    __m512 acc[8];
    CQ_UNROLL for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    const __m512i low = _mm512_set1_epi8(0x0f), high = _mm512_set1_epi8((char)0xf0);
    for (int b = 0; b < nb; b++) {
        const uint8_t *blk = group + (size_t)b * CQ_PACKED_Q4_0_BLOCK;
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
        // high nibbles are multiplied in place (16x their value, no shift per load) into isum16, divided once per block
        __m512i isum[8], isum16[8];
        CQ_UNROLL for (int t = 0; t < T; t++) {
            const uint8_t *a = act + t * as;
            isum[t] = _mm512_set1_epi32(-8 * cq_q8row_sums(a, nb)[b]);
            isum16[t] = _mm512_setzero_si512();
        }
        CQ_UNROLL for (int g = 0; g < 4; g++) {
            const __m512i packed = _mm512_loadu_si512((const void *)(blk + 32 + g * 64));
            const __m512i lo = _mm512_and_si512(packed, low);
            const __m512i hi16 = _mm512_and_si512(packed, high);
            CQ_UNROLL for (int t = 0; t < T; t++) {
                int32_t xl, xh;
                const uint8_t *xb = act + t * as + (size_t)b * 32;
                memcpy(&xl, xb + g * 4, 4);
                memcpy(&xh, xb + 16 + g * 4, 4);
                isum[t] = _mm512_dpbusd_epi32(isum[t], lo, _mm512_set1_epi32(xl));
                isum16[t] = _mm512_dpbusd_epi32(isum16[t], hi16, _mm512_set1_epi32(xh));
            }
        }
        CQ_UNROLL for (int t = 0; t < T; t++) {
            isum[t] = _mm512_add_epi32(isum[t], _mm512_srai_epi32(isum16[t], 4));
            const __m512 s = _mm512_mul_ps(dw, _mm512_set1_ps(cq_q8row_scales(act + t * as, nb)[b]));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), s, acc[t]);
        }
    }
    CQ_UNROLL for (int t = 0; t < T; t++) _mm512_storeu_ps(out + t * ldo, acc[t]);
}

/// Repacks rows [16g, 16g+16) of a Q8_0 (is_q8) or Q4_0 matrix into packed group g (rows past `rows` are
/// padding: zero scale). Plain C: it runs once per weight at load.
static inline void cq_pack_group(int is_q8, const uint8_t *src, size_t row_bytes, int rows, int g, int nb, uint8_t *dst) {
    const int src_block = is_q8 ? CQ_Q8_0_BYTES : CQ_Q4_0_BYTES;
    const int packed_block = is_q8 ? CQ_PACKED_Q8_0_BLOCK : CQ_PACKED_Q4_0_BLOCK;
    const int kgroups = is_q8 ? 8 : 4;
    const uint32_t flip = is_q8 ? 0x80808080u : 0;
    const int live = rows - g * 16 < 16 ? rows - g * 16 : 16;
    // block by block, so each output block (one scale line, 4 or 8 quant lines) is written whole
    for (int b = 0; b < nb; b++) {
        uint8_t *out = dst + (size_t)b * packed_block;
        for (int i = 0; i < 16; i++) {
            if (i >= live) {
                memset(out + i * 2, 0, 2);
                for (int kg = 0; kg < kgroups; kg++) memcpy(out + 32 + kg * 64 + i * 4, &flip, 4);
                continue;
            }
            const uint8_t *blk = src + (size_t)(g * 16 + i) * row_bytes + (size_t)b * src_block;
            memcpy(out + i * 2, blk, 2);
            for (int kg = 0; kg < kgroups; kg++) {
                uint32_t v;
                memcpy(&v, blk + 2 + kg * 4, 4);
                v ^= flip;
                memcpy(out + 32 + kg * 64 + i * 4, &v, 4);
            }
        }
    }
}

// ---- Packed Q5_0 (q8 rows) ----
#define CQ_PACKED_Q5_0_BLOCK 352 /* d[16] (f16), qh[16] (u32), nibbles [4 byte-groups][16 rows][4] */
#define CQ_Q5_0_BYTES 22

/// Repacks rows [16g, 16g+16) of a Q5_0 matrix into packed group g.
static inline void cq_pack_group_q5_0(const uint8_t *src, size_t row_bytes, int rows, int g, int nb, uint8_t *dst) {
    const int live = rows - g * 16 < 16 ? rows - g * 16 : 16;
    for (int b = 0; b < nb; b++) {
        uint8_t *out = dst + (size_t)b * CQ_PACKED_Q5_0_BLOCK;
        memset(out, 0, CQ_PACKED_Q5_0_BLOCK);
        for (int i = 0; i < live; i++) {
            const uint8_t *blk = src + (size_t)(g * 16 + i) * row_bytes + (size_t)b * CQ_Q5_0_BYTES;
            memcpy(out + i * 2, blk, 2);
            memcpy(out + 32 + i * 4, blk + 2, 4);
            for (int bg = 0; bg < 4; bg++) memcpy(out + 96 + (bg * 16 + i) * 4, blk + 6 + bg * 4, 4);
        }
    }
}

/// Bits 0-3 of each 32-bit lane to bit 4 of bytes 0-3 (the fifth bit of four Q5 quants): one multiply
/// puts bit b at 8b + 4, and no two partial products share a bit, so nothing carries.
CQ_VNNI static inline __m512i cq_q5_high_bits(__m512i nibble4) {
    return _mm512_and_si512(_mm512_mullo_epi32(nibble4, _mm512_set1_epi32(0x00204081 << 4)), _mm512_set1_epi32(0x10101010));
}

CQ_VNNI static inline __attribute__((always_inline)) void cq_group_q5_0_vnni_t(
    int nb, const uint8_t *group, const uint8_t *act, size_t as, float *out, size_t ldo, const int T) {
    __m512 acc[8];
    CQ_UNROLL for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    const __m512i low = _mm512_set1_epi8(0x0f), nib = _mm512_set1_epi32(0x0f);
    for (int b = 0; b < nb; b++) {
        const uint8_t *blk = group + (size_t)b * CQ_PACKED_Q5_0_BLOCK;
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
        const __m512i qh = _mm512_loadu_si512((const void *)(blk + 32));
        __m512i isum[8];
        CQ_UNROLL for (int t = 0; t < T; t++) isum[t] = _mm512_set1_epi32(-16 * cq_q8row_sums(act + t * as, nb)[b]);
        CQ_UNROLL for (int g = 0; g < 4; g++) {
            const __m512i packed = _mm512_loadu_si512((const void *)(blk + 96 + g * 64));
            const __m512i hl = cq_q5_high_bits(_mm512_and_si512(_mm512_srli_epi32(qh, 4 * g), nib));
            const __m512i hh = cq_q5_high_bits(_mm512_and_si512(_mm512_srli_epi32(qh, 16 + 4 * g), nib));
            const __m512i lo = _mm512_or_si512(_mm512_and_si512(packed, low), hl);
            const __m512i hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(packed, 4), low), hh);
            CQ_UNROLL for (int t = 0; t < T; t++) {
                const uint8_t *xb = act + t * as + (size_t)b * 32;
                isum[t] = _mm512_dpbusd_epi32(isum[t], lo, _mm512_set1_epi32(cq_bcast_x4(xb + g * 4)));
                isum[t] = _mm512_dpbusd_epi32(isum[t], hi, _mm512_set1_epi32(cq_bcast_x4(xb + 16 + g * 4)));
            }
        }
        CQ_UNROLL for (int t = 0; t < T; t++) {
            const __m512 sc = _mm512_mul_ps(dw, _mm512_set1_ps(cq_q8row_scales(act + t * as, nb)[b]));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), sc, acc[t]);
        }
    }
    CQ_UNROLL for (int t = 0; t < T; t++) _mm512_storeu_ps(out + t * ldo, acc[t]);
}

// ---- Packed F16 / BF16 (F32 activations, FMA) ----
// Per 16-row group: [k][16 rows] halves, so one 32-byte load is column k of 16 rows; activations stay
// F32 and come in as broadcasts. `nb` counts columns here.

/// Repacks rows [16g, 16g+16) of an F16 or BF16 matrix (`columns` wide) into packed group g.
static inline void cq_pack_group_half(const uint8_t *src, size_t row_bytes, int rows, int g, int columns, uint8_t *dst) {
    const int live = rows - g * 16 < 16 ? rows - g * 16 : 16;
    uint16_t *out = (uint16_t *)dst;
    for (int i = 0; i < 16; i++) {
        if (i >= live) { for (int k = 0; k < columns; k++) out[(size_t)k * 16 + i] = 0; continue; }
        const uint8_t *row = src + (size_t)(g * 16 + i) * row_bytes;
        for (int k = 0; k < columns; k++) memcpy(out + (size_t)k * 16 + i, row + (size_t)k * 2, 2);
    }
}

CQ_VNNI static inline __m512 cq_load16_half(const uint16_t *p, int is_bf16) {
    const __m256i h = _mm256_loadu_si256((const __m256i *)p);
    return is_bf16 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)) : _mm512_cvtph_ps(h);
}

CQ_VNNI static inline __attribute__((always_inline)) void cq_group_half_t(
    int columns, const uint8_t *group, const uint8_t *act, size_t as, float *out, size_t ldo, const int T, const int is_bf16) {
    __m512 acc[8][2];
    CQ_UNROLL for (int t = 0; t < T; t++) { acc[t][0] = _mm512_setzero_ps(); acc[t][1] = _mm512_setzero_ps(); }
    const uint16_t *w = (const uint16_t *)group;
    int k = 0;
    for (; k + 2 <= columns; k += 2) {  // two k per step: two independent FMA chains per token
        const __m512 w0 = cq_load16_half(w + (size_t)k * 16, is_bf16);
        const __m512 w1 = cq_load16_half(w + (size_t)(k + 1) * 16, is_bf16);
        CQ_UNROLL for (int t = 0; t < T; t++) {
            const float *x = (const float *)(act + t * as);
            acc[t][0] = _mm512_fmadd_ps(w0, _mm512_set1_ps(x[k]), acc[t][0]);
            acc[t][1] = _mm512_fmadd_ps(w1, _mm512_set1_ps(x[k + 1]), acc[t][1]);
        }
    }
    for (; k < columns; k++) {
        const __m512 w0 = cq_load16_half(w + (size_t)k * 16, is_bf16);
        CQ_UNROLL for (int t = 0; t < T; t++) acc[t][0] = _mm512_fmadd_ps(w0, _mm512_set1_ps(((const float *)(act + t * as))[k]), acc[t][0]);
    }
    CQ_UNROLL for (int t = 0; t < T; t++) _mm512_storeu_ps(out + t * ldo, _mm512_add_ps(acc[t][0], acc[t][1]));
}

CQ_VNNI static inline __attribute__((always_inline)) void cq_group_f16_t(int c, const uint8_t *g, const uint8_t *a, size_t as, float *o, size_t ldo, const int T) {
    cq_group_half_t(c, g, a, as, o, ldo, T, 0);
}
CQ_VNNI static inline __attribute__((always_inline)) void cq_group_bf16_t(int c, const uint8_t *g, const uint8_t *a, size_t as, float *o, size_t ldo, const int T) {
    cq_group_half_t(c, g, a, as, o, ldo, T, 1);
}

// ---- Packed K-quants (Q4_K, Q6_K) with Q8_K activations ----
// Q8_K activation block: f32 scale, 256 int8 quants, 16 int16 sums of 16 (292 bytes).
#define CQ_Q8_K_BYTES 292
#define CQ_PACKED_Q4_K_BLOCK 2368 /* d[16], dmin[16] (f16), scales[8][16], mins[4 pairs][16 rows][2] (u8), quants [4 pairs][8 k][16 rows][4] */
#define CQ_PACKED_Q6_K_BLOCK 3360 /* d[16] (f16), scales[16][16] (i8), then per half h and k-group k: lines A, B, C of [16 rows][4] (see cq_pack_group_q6_K) */
#define CQ_Q4_K_BYTES 144
#define CQ_Q6_K_BYTES 210

static inline void cq_q4k_scale_min(const uint8_t *q, int j, uint8_t *d, uint8_t *m) {
    if (j < 4) { *d = q[j] & 63; *m = q[j + 4] & 63; }
    else { *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4); *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4); }
}

/// Repacks rows [16g, 16g+16) of a Q4_K matrix (nsb super-blocks per row) into packed group g.
static inline void cq_pack_group_q4_K(const uint8_t *src, size_t row_bytes, int rows, int g, int nsb, uint8_t *dst) {
    const int live = rows - g * 16 < 16 ? rows - g * 16 : 16;
    for (int sb = 0; sb < nsb; sb++) {
        uint8_t *out = dst + (size_t)sb * CQ_PACKED_Q4_K_BLOCK;
        memset(out, 0, CQ_PACKED_Q4_K_BLOCK);
        for (int i = 0; i < live; i++) {
            const uint8_t *blk = src + (size_t)(g * 16 + i) * row_bytes + (size_t)sb * CQ_Q4_K_BYTES;
            memcpy(out + i * 2, blk, 2);
            memcpy(out + 32 + i * 2, blk + 2, 2);
            for (int s = 0; s < 8; s++) cq_q4k_scale_min(blk + 4, s, out + 64 + s * 16 + i, out + 192 + (s / 2) * 32 + i * 2 + s % 2);
            for (int j = 0; j < 4; j++)
                for (int k = 0; k < 8; k++) memcpy(out + 320 + ((j * 8 + k) * 16 + i) * 4, blk + 16 + j * 32 + k * 4, 4);
        }
    }
}

/// Repacks rows [16g, 16g+16) of a Q6_K matrix into packed group g. Each 6-bit value of sets 0-2 (elements l, l+32,
/// l+64 of a 128-element half) fills the low six bits of its byte in lines A, B, C; the value of set 3 (element l+96)
/// is spread over the top two bits of the three bytes (bits 0-1 in A, 2-3 in B, 4-5 in C). The kernel gets sets 0-2
/// with one mask each and set 3 with three shifts, two bit-selects and a mask (llama.cpp's layout needs ~17 ops).
static inline void cq_pack_group_q6_K(const uint8_t *src, size_t row_bytes, int rows, int g, int nsb, uint8_t *dst) {
    const int live = rows - g * 16 < 16 ? rows - g * 16 : 16;
    for (int sb = 0; sb < nsb; sb++) {
        uint8_t *out = dst + (size_t)sb * CQ_PACKED_Q6_K_BLOCK;
        memset(out, 0, CQ_PACKED_Q6_K_BLOCK);
        for (int i = 0; i < live; i++) {
            const uint8_t *blk = src + (size_t)(g * 16 + i) * row_bytes + (size_t)sb * CQ_Q6_K_BYTES;
            const uint8_t *ql = blk, *qh = blk + 128, *sc = blk + 192;
            memcpy(out + i * 2, blk + 208, 2);
            for (int s = 0; s < 16; s++) out[32 + s * 16 + i] = sc[s];
            for (int h = 0; h < 2; h++)
                for (int k = 0; k < 8; k++) {
                    uint8_t *line = out + 288 + (h * 8 + k) * 3 * 64 + i * 4;  // read in this order by the kernel
                    for (int b = 0; b < 4; b++) {
                        const int l = k * 4 + b;
                        const uint8_t lo = ql[h * 64 + l], hi = ql[h * 64 + 32 + l], bits = qh[h * 32 + l];
                        const uint8_t q0 = (uint8_t)((lo & 0xF) | (bits & 3) << 4), q1 = (uint8_t)((hi & 0xF) | (bits >> 2 & 3) << 4);
                        const uint8_t q2 = (uint8_t)((lo >> 4) | (bits >> 4 & 3) << 4), q3 = (uint8_t)((hi >> 4) | (bits >> 6) << 4);
                        line[b] = (uint8_t)(q0 | (q3 & 3) << 6);
                        line[64 + b] = (uint8_t)(q1 | (q3 >> 2 & 3) << 6);
                        line[128 + b] = (uint8_t)(q2 | (q3 >> 4) << 6);
                    }
                }
        }
    }
}


CQ_VNNI static inline __attribute__((always_inline)) void cq_group_q4_K_vnni_t(
    int nsb, const uint8_t *group, const uint8_t *act, size_t as, float *out, size_t ldo, const int T) {
    __m512 acc[4];  // T <= 4: two integer sums per token stay in registers
    CQ_UNROLL for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    const __m512i low = _mm512_set1_epi8(0x0f), high = _mm512_set1_epi8((char)0xf0);
    for (int sb = 0; sb < nsb; sb++) {
        const uint8_t *blk = group + (size_t)sb * CQ_PACKED_Q4_K_BLOCK;
        // high nibbles are multiplied in place (16x their value, no shift per load) and summed apart in tot16,
        // divided by 16 once per super-block (exact: every term is a multiple of 16; |tot16| < 2^28)
        __m512i tot[4], tot16[4];
        CQ_UNROLL for (int t = 0; t < T; t++) tot[t] = tot16[t] = _mm512_setzero_si512();
        for (int j = 0; j < 4; j++) {
            // each 64-byte line loaded once for both of its sub-blocks (low nibbles: 2j, high: 2j+1)
            __m512i isum[4], isum16[4];
            CQ_UNROLL for (int t = 0; t < T; t++) isum[t] = isum16[t] = _mm512_setzero_si512();
            CQ_UNROLL for (int k = 0; k < 8; k++) {
                const __m512i v = _mm512_loadu_si512((const void *)(blk + 320 + (j * 8 + k) * 64));
                const __m512i lo = _mm512_and_si512(v, low), hi = _mm512_and_si512(v, high);
                CQ_UNROLL for (int t = 0; t < T; t++) {
                    const uint8_t *x = act + t * as + (size_t)sb * CQ_Q8_K_BYTES + 4 + j * 64 + k * 4;
                    isum[t] = _mm512_dpbusd_epi32(isum[t], lo, _mm512_set1_epi32(cq_bcast_x4(x)));
                    isum16[t] = _mm512_dpbusd_epi32(isum16[t], hi, _mm512_set1_epi32(cq_bcast_x4(x + 32)));
                }
            }
            const __m512i scale = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(blk + 64 + 2 * j * 16)));
            const __m512i scale16 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(blk + 64 + (2 * j + 1) * 16)));
            CQ_UNROLL for (int t = 0; t < T; t++) {
                tot[t] = _mm512_add_epi32(tot[t], _mm512_mullo_epi32(isum[t], scale));
                tot16[t] = _mm512_add_epi32(tot16[t], _mm512_mullo_epi32(isum16[t], scale16));
            }
        }
        CQ_UNROLL for (int t = 0; t < T; t++) tot[t] = _mm512_add_epi32(tot[t], _mm512_srai_epi32(tot16[t], 4));
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
        const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(blk + 32)));
        __m512i mins[4];  // per pair of sub-blocks, each row's two mins as int16 (lanes 2i, 2i+1)
        CQ_UNROLL for (int p = 0; p < 4; p++) mins[p] = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(blk + 192 + p * 32)));
        CQ_UNROLL for (int t = 0; t < T; t++) {
            const uint8_t *xb = act + t * as + (size_t)sb * CQ_Q8_K_BYTES;
            float dx; memcpy(&dx, xb, 4);
            const int16_t *bsums = (const int16_t *)(xb + 260);
            // Σ_s min[s] · (sum of the activation's sub-block s): one int16 pair dot per two sub-blocks
            __m512i msum = _mm512_setzero_si512();
            CQ_UNROLL for (int p = 0; p < 4; p++) {
                const uint32_t lo = (uint16_t)(bsums[4 * p] + bsums[4 * p + 1]), hi = (uint16_t)(bsums[4 * p + 2] + bsums[4 * p + 3]);
                msum = _mm512_dpwssd_epi32(msum, mins[p], _mm512_set1_epi32((int32_t)(lo | hi << 16)));
            }
            const __m512 vdx = _mm512_set1_ps(dx);
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(tot[t]), _mm512_mul_ps(d, vdx), acc[t]);
            acc[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(msum), _mm512_mul_ps(dmin, vdx), acc[t]);
        }
    }
    CQ_UNROLL for (int t = 0; t < T; t++) _mm512_storeu_ps(out + t * ldo, acc[t]);
}

CQ_VNNI static inline __attribute__((always_inline)) void cq_group_q6_K_vnni_t(
    int nsb, const uint8_t *group, const uint8_t *act, size_t as, float *out, size_t ldo, const int T) {
    // T <= 4: four integer sums (one per 32-element set) per token stay in registers
    __m512 acc[4];
    CQ_UNROLL for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    const __m512i six = _mm512_set1_epi8(0x3f), m03 = _mm512_set1_epi8(0x03), m0f = _mm512_set1_epi8(0x0f);
    for (int sb = 0; sb < nsb; sb++) {
        const uint8_t *blk = group + (size_t)sb * CQ_PACKED_Q6_K_BLOCK;
        __m512i tot[4];
        CQ_UNROLL for (int t = 0; t < T; t++) tot[t] = _mm512_setzero_si512();
        for (int h = 0; h < 2; h++) {
            CQ_UNROLL for (int kh = 0; kh < 2; kh++) {  // l in 0..15 or 16..31: one 16-element sub-block per set
                __m512i isum[4][4];
                CQ_UNROLL for (int t = 0; t < T; t++) {
                    const int16_t *bsums = (const int16_t *)(act + t * as + (size_t)sb * CQ_Q8_K_BYTES + 260);
                    CQ_UNROLL for (int set = 0; set < 4; set++) isum[t][set] = _mm512_set1_epi32(-32 * bsums[h * 8 + set * 2 + kh]);
                }
                CQ_UNROLL for (int k = kh * 4; k < kh * 4 + 4; k++) {
                    const uint8_t *line = blk + 288 + (h * 8 + k) * 3 * 64;
                    const __m512i a = _mm512_loadu_si512((const void *)line);
                    const __m512i b = _mm512_loadu_si512((const void *)(line + 64));
                    const __m512i c = _mm512_loadu_si512((const void *)(line + 128));
                    __m512i q[4];
                    q[0] = _mm512_and_si512(a, six);
                    q[1] = _mm512_and_si512(b, six);
                    q[2] = _mm512_and_si512(c, six);
                    // set 3: bits 6-7 of a, b, c to bits 0-1, 2-3, 4-5 (16-bit shifts; what they pull in from the
                    // neighbouring byte lands in bits the selects and the final mask drop). 0xCA: mask ? x : y
                    const __m512i ab = _mm512_ternarylogic_epi32(m03, _mm512_srli_epi16(a, 6), _mm512_srli_epi16(b, 4), 0xCA);
                    q[3] = _mm512_and_si512(_mm512_ternarylogic_epi32(m0f, ab, _mm512_srli_epi16(c, 2), 0xCA), six);
                    CQ_UNROLL for (int t = 0; t < T; t++) {
                        const uint8_t *x = act + t * as + (size_t)sb * CQ_Q8_K_BYTES + 4 + h * 128 + k * 4;
                        CQ_UNROLL for (int set = 0; set < 4; set++)
                            isum[t][set] = _mm512_dpbusd_epi32(isum[t][set], q[set], _mm512_set1_epi32(cq_bcast_x4(x + set * 32)));
                    }
                }
                CQ_UNROLL for (int set = 0; set < 4; set++) {
                    const __m512i scale = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 32 + (h * 8 + set * 2 + kh) * 16)));
                    CQ_UNROLL for (int t = 0; t < T; t++) tot[t] = _mm512_add_epi32(tot[t], _mm512_mullo_epi32(isum[t][set], scale));
                }
            }
        }
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
        CQ_UNROLL for (int t = 0; t < T; t++) {
            float dx; memcpy(&dx, act + t * as + (size_t)sb * CQ_Q8_K_BYTES, 4);
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(tot[t]), _mm512_mul_ps(d, _mm512_set1_ps(dx)), acc[t]);
        }
    }
    CQ_UNROLL for (int t = 0; t < T; t++) _mm512_storeu_ps(out + t * ldo, acc[t]);
}

// One function per (type, token count), so each instance is unrolled and register-allocated on its own.
#define CQ_GROUP_FN(name, body, n) \
    CQ_VNNI __attribute__((noinline)) static void name##_##n(int nb, const uint8_t *g, const uint8_t *a, size_t as, float *o, size_t ldo) { \
        body(nb, g, a, as, o, ldo, n); }
#define CQ_GROUP_FNS(name, body) CQ_GROUP_FN(name, body, 1) CQ_GROUP_FN(name, body, 2) CQ_GROUP_FN(name, body, 3) \
    CQ_GROUP_FN(name, body, 4) CQ_GROUP_FN(name, body, 5) CQ_GROUP_FN(name, body, 6) CQ_GROUP_FN(name, body, 7) \
    CQ_GROUP_FN(name, body, 8)
CQ_GROUP_FNS(cq_gq8_0, cq_group_q8_0_vnni_t)
CQ_GROUP_FNS(cq_gq4_0, cq_group_q4_0_vnni_t)
CQ_GROUP_FN(cq_gq4_K, cq_group_q4_K_vnni_t, 1) CQ_GROUP_FN(cq_gq4_K, cq_group_q4_K_vnni_t, 2)
CQ_GROUP_FN(cq_gq4_K, cq_group_q4_K_vnni_t, 3) CQ_GROUP_FN(cq_gq4_K, cq_group_q4_K_vnni_t, 4)
CQ_GROUP_FNS(cq_gq5_0, cq_group_q5_0_vnni_t)
CQ_GROUP_FNS(cq_gf16, cq_group_f16_t)
CQ_GROUP_FNS(cq_gbf16, cq_group_bf16_t)
CQ_GROUP_FN(cq_gq6_K, cq_group_q6_K_vnni_t, 1) CQ_GROUP_FN(cq_gq6_K, cq_group_q6_K_vnni_t, 2)
CQ_GROUP_FN(cq_gq6_K, cq_group_q6_K_vnni_t, 3) CQ_GROUP_FN(cq_gq6_K, cq_group_q6_K_vnni_t, 4)
#undef CQ_GROUP_FN
#undef CQ_GROUP_FNS

typedef void (*cq_group_fn)(int, const uint8_t *, const uint8_t *, size_t, float *, size_t);

/// Largest token tile of each packed type's kernel.
static inline int cq_group_max_tokens(int type) { return type == 2 || type == 3 ? 4 : 8; }

/// The packed kernel for `type` (0 Q8_0, 1 Q4_0, 2 Q4_K, 3 Q6_K, 4 Q5_0, 5 F16, 6 BF16) and T tokens (1...max): out[t * ldo + i] =
/// row i of a packed 16-row group · activation row t (q8 rows for Q8_0/Q4_0/Q5_0, Q8_K rows for the K types, F32 rows for F16/BF16).
/// Writes all 16 outputs per token (padding rows of the last group included).
static inline cq_group_fn cq_group_kernel(int type, int T) {
    static const cq_group_fn table[7][8] = {
        {cq_gq8_0_1, cq_gq8_0_2, cq_gq8_0_3, cq_gq8_0_4, cq_gq8_0_5, cq_gq8_0_6, cq_gq8_0_7, cq_gq8_0_8},
        {cq_gq4_0_1, cq_gq4_0_2, cq_gq4_0_3, cq_gq4_0_4, cq_gq4_0_5, cq_gq4_0_6, cq_gq4_0_7, cq_gq4_0_8},
        {cq_gq4_K_1, cq_gq4_K_2, cq_gq4_K_3, cq_gq4_K_4, NULL, NULL, NULL, NULL},
        {cq_gq6_K_1, cq_gq6_K_2, cq_gq6_K_3, cq_gq6_K_4, NULL, NULL, NULL, NULL},
        {cq_gq5_0_1, cq_gq5_0_2, cq_gq5_0_3, cq_gq5_0_4, cq_gq5_0_5, cq_gq5_0_6, cq_gq5_0_7, cq_gq5_0_8},
        {cq_gf16_1, cq_gf16_2, cq_gf16_3, cq_gf16_4, cq_gf16_5, cq_gf16_6, cq_gf16_7, cq_gf16_8},
        {cq_gbf16_1, cq_gbf16_2, cq_gbf16_3, cq_gbf16_4, cq_gbf16_5, cq_gbf16_6, cq_gbf16_7, cq_gbf16_8},
    };
    return table[type][T - 1];
}

#endif /* AVX2 */

// ARM64: the NEON (dot-product) twins of the row kernels, named with a `_neon` suffix.
#if defined(__aarch64__)
#include "cqwen_neon.h"
#endif

#endif /* CQWEN_H */
