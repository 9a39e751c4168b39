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
int cq_usable_cpu_count(void);
int cq_cpu_has_avx512vnni(void);
void cq_pause(void);

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

#endif /* AVX2 */

#endif /* CQWEN_H */
