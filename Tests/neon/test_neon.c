// Tests of the row kernels of Sources/CQwen against plain-C scalar references written here (transliterations of
// the portable Swift versions in Sources/QwenTensors: RowKernels.swift, Quants/QuantDots.swift).
//
// Built for aarch64 it tests the `_neon` kernels (cqwen_neon.h), with or without the dot-product extension; built
// for x86-64 with AVX2 it runs the same checks on the `_avx2` kernels, which cross-checks the references against
// the kernels the Swift test suite already holds to the portable path. See run.sh.
//
// Quantizers: byte-exact. Dots: within float rounding, |kernel - exact| <= 2e-6 · Σ|terms| (the Swift tests' bound).
// Hostile inputs (NaN/Inf scales and activations, extreme bytes) must not crash; quantizers stay byte-exact on them
// except Q8_0 on x86, whose AVX2 version differs from the portable one in blocks holding a NaN (documented there).
#include "cqwen.h"
#include "cqwen_quants.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__aarch64__)
#define K(name) name##_neon
#if defined(__ARM_FEATURE_DOTPROD)
#define ARCH "aarch64 NEON with dotprod (sdot)"
#else
#define ARCH "aarch64 NEON without dotprod (smull/sadalp fallback)"
#endif
#define IS_NEON 1
#elif defined(CQ_HAVE_AVX2)
#define K(name) name##_avx2
#define ARCH "x86-64 AVX2 (cross-check of the references)"
#define IS_NEON 0
#else
#error "build for aarch64, or x86-64 with -mavx2 -mfma -mf16c"
#endif

static long checks, failures;
#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        checks++;                                                              \
        if (!(cond)) {                                                         \
            if (++failures <= 40) {                                            \
                printf("FAIL %s:%d: ", __func__, __LINE__);                    \
                printf(__VA_ARGS__);                                           \
                printf("\n");                                                  \
            }                                                                  \
        }                                                                      \
    } while (0)

// ---- Random numbers (xorshift64) ----
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static float rndf(void) { return (float)((double)(rnd() >> 11) * 0x1p-53) * 2.0f - 1.0f; }  // [-1, 1)

// ---- Reference scalar conversions (bit manipulation, no hardware conversion) ----
static float ref_f16(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF, bits;
    if (exp == 0) {
        if (mant == 0) bits = sign;
        else {
            int e = 113;  // 127 - 15 + 1
            while (!(mant & 0x400)) { mant <<= 1; e--; }
            bits = sign | ((uint32_t)e << 23) | ((mant & 0x3FF) << 13);
        }
    } else if (exp == 31) bits = sign | 0x7F800000u | (mant << 13);
    else bits = sign | ((exp + 112) << 23) | (mant << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/// Float to F16 bits, round to nearest even; NaN keeps its sign and top payload bits and is quieted.
static uint16_t ref_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    const uint32_t sign = (u >> 16) & 0x8000, exp = (u >> 23) & 0xFF;
    uint32_t mant = u & 0x7FFFFF;
    if (exp == 0xFF) return (uint16_t)(sign | 0x7C00 | (mant ? 0x200 | (mant >> 13) : 0));
    const int e = (int)exp - 112;
    if (e >= 31) return (uint16_t)(sign | 0x7C00);
    if (e <= 0) {
        if (e < -10) return (uint16_t)sign;
        mant |= 0x800000;
        const int shift = 14 - e;
        uint32_t h = mant >> shift;
        const uint32_t rem = mant & ((1u << shift) - 1), halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)e << 10) | (mant >> 13);
    const uint32_t rem = mant & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

static float ref_bf16(uint16_t b) {
    const uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static float ld16(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return ref_f16(h); }
static float ld32(const uint8_t *p) { float f; memcpy(&f, p, 4); return f; }
static int16_t ldi16(const uint8_t *p) { int16_t v; memcpy(&v, p, 2); return v; }
static int32_t s8(const uint8_t *p, int j) { return (int8_t)p[j]; }

// ---- Reference quantizers (RowKernels.quantizeQ8_0Portable, quantizeQ8_KPortable, QuantDots.quantizeQ8_1Portable) ----

/// round-half-even as Swift's .rounded(.toNearestOrEven) (rintf in the default rounding mode).
static float rne(float v) { return rintf(v); }

/// What x86's cvtps2dq gives for an already rounded value: NaN and out-of-range values become INT32_MIN.
static int32_t cvt_x86(float r) { return (r >= -2147483648.0f && r < 2147483648.0f) ? (int32_t)r : INT32_MIN; }

static int8_t clamp8(int32_t v) { return (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v); }

static void ref_quantize_q8_0(const float *x, uint8_t *y, int n) {
    for (int b = 0; b < n / 32; b++) {
        const float *xb = x + b * 32;
        uint8_t *yb = y + b * 34;
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) if (fabsf(xb[j]) > amax) amax = fabsf(xb[j]);
        const uint16_t dh = ref_to_f16(amax / 127.0f);
        memcpy(yb, &dh, 2);
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        for (int j = 0; j < 32; j++) {
            const float v = rne(xb[j] * id);
            yb[2 + j] = (uint8_t)(isnan(v) ? -128 : (int8_t)(v < -128.0f ? -128 : v > 127.0f ? 127 : (int)v));
        }
    }
}

static void ref_quantize_q8_1(const float *x, uint8_t *y, int n) {
    for (int b = 0; b < n / 32; b++) {
        const float *xb = x + b * 32;
        uint8_t *yb = y + b * 36;
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) if (fabsf(xb[j]) > amax) amax = fabsf(xb[j]);
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        uint32_t sum = 0;  // wrapping
        for (int j = 0; j < 32; j++) {
            const int32_t v = cvt_x86(rne(xb[j] * id));
            sum += (uint32_t)v;
            yb[4 + j] = (uint8_t)clamp8(v);
        }
        const uint16_t dh = ref_to_f16(d), sh = ref_to_f16(d * (float)(int32_t)sum);
        memcpy(yb, &dh, 2);
        memcpy(yb + 2, &sh, 2);
    }
}

static void ref_quantize_q8_K(const float *x, uint8_t *y, int n) {
    for (int b = 0; b < n / 256; b++) {
        const float *xb = x + b * 256;
        uint8_t *yb = y + b * 292;
        float amax = 0.0f, smax = 0.0f;
        for (int j = 0; j < 256; j++)
            if (fabsf(xb[j]) > amax) { amax = fabsf(xb[j]); smax = xb[j]; }
        if (amax == 0.0f) { memset(yb, 0, 292); continue; }
        const float iscale = -127.0f / smax;
        int32_t sum = 0;
        for (int j = 0; j < 256; j++) {
            int32_t v = cvt_x86(rne(iscale * xb[j]));
            if (v > 127) v = 127;
            const int8_t q = clamp8(v);
            yb[4 + j] = (uint8_t)q;
            sum += q;
            if (j % 16 == 15) {
                const int16_t s = (int16_t)sum;
                memcpy(yb + 260 + 2 * (j / 16), &s, 2);
                sum = 0;
            }
        }
        const float d = 1.0f / iscale;
        memcpy(yb, &d, 4);
    }
}

// ---- Reference dots (QuantDots / RowKernels portable versions; exact value and Σ|terms| in double) ----

typedef struct { double v, mag; } ref_t;
static void acc(ref_t *r, double scale, int64_t isum, int64_t iabs) { r->v += scale * (double)isum; r->mag += fabs(scale) * (double)iabs; }

static ref_t ref_q8_0(int nb, const uint8_t *w, const uint8_t *x) {
    ref_t r = {0, 0};
    for (int b = 0; b < nb; b++) {
        const uint8_t *wb = w + b * 34, *xb = x + b * 34;
        int64_t s = 0, a = 0;
        for (int j = 0; j < 32; j++) { const int64_t p = (int64_t)s8(wb + 2, j) * s8(xb + 2, j); s += p; a += llabs(p); }
        acc(&r, (double)ld16(wb) * ld16(xb), s, a);
    }
    return r;
}

static ref_t ref_q4_0(int nb, const uint8_t *w, const uint8_t *x) {
    ref_t r = {0, 0};
    for (int b = 0; b < nb; b++) {
        const uint8_t *wb = w + b * 18, *xb = x + b * 34;
        int64_t s = 0, a = 0;
        for (int j = 0; j < 16; j++) {
            const int64_t p0 = (int64_t)((wb[2 + j] & 0xF) - 8) * s8(xb + 2, j), p1 = (int64_t)((wb[2 + j] >> 4) - 8) * s8(xb + 2, j + 16);
            s += p0 + p1; a += llabs(p0) + llabs(p1);
        }
        acc(&r, (double)ld16(wb) * ld16(xb), s, a);
    }
    return r;
}

static ref_t ref_q4_1(int nb, const uint8_t *w, const uint8_t *x) {
    ref_t r = {0, 0};
    for (int b = 0; b < nb; b++) {
        const uint8_t *wb = w + b * 20, *xb = x + b * 36;
        int64_t s = 0, a = 0;
        for (int j = 0; j < 16; j++) {
            const int64_t p0 = (int64_t)(wb[4 + j] & 0xF) * s8(xb + 4, j), p1 = (int64_t)(wb[4 + j] >> 4) * s8(xb + 4, j + 16);
            s += p0 + p1; a += llabs(p0) + llabs(p1);
        }
        acc(&r, (double)ld16(wb) * ld16(xb), s, a);
        acc(&r, (double)ld16(wb + 2) * ld16(xb + 2), 1, 1);
    }
    return r;
}

static ref_t ref_q5_0(int nb, const uint8_t *w, const uint8_t *x) {
    ref_t r = {0, 0};
    for (int b = 0; b < nb; b++) {
        const uint8_t *wb = w + b * 22, *xb = x + b * 34;
        uint32_t qh; memcpy(&qh, wb + 2, 4);
        int64_t s = 0, a = 0;
        for (int j = 0; j < 16; j++) {
            const int q0 = ((wb[6 + j] & 0xF) | (((qh >> j) & 1) << 4)) - 16, q1 = ((wb[6 + j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16;
            const int64_t p0 = (int64_t)q0 * s8(xb + 2, j), p1 = (int64_t)q1 * s8(xb + 2, j + 16);
            s += p0 + p1; a += llabs(p0) + llabs(p1);
        }
        acc(&r, (double)ld16(wb) * ld16(xb), s, a);
    }
    return r;
}

static ref_t ref_q5_1(int nb, const uint8_t *w, const uint8_t *x) {
    ref_t r = {0, 0};
    for (int b = 0; b < nb; b++) {
        const uint8_t *wb = w + b * 24, *xb = x + b * 36;
        uint32_t qh; memcpy(&qh, wb + 4, 4);
        int64_t s = 0, a = 0;
        for (int j = 0; j < 16; j++) {
            const int q0 = (wb[8 + j] & 0xF) | (((qh >> j) & 1) << 4), q1 = (wb[8 + j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
            const int64_t p0 = (int64_t)q0 * s8(xb + 4, j), p1 = (int64_t)q1 * s8(xb + 4, j + 16);
            s += p0 + p1; a += llabs(p0) + llabs(p1);
        }
        acc(&r, (double)ld16(wb) * ld16(xb), s, a);
        acc(&r, (double)ld16(wb + 2) * ld16(xb + 2), 1, 1);
    }
    return r;
}

static const int iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

static ref_t ref_iq4_nl(int nb, const uint8_t *w, const uint8_t *x) {
    ref_t r = {0, 0};
    for (int b = 0; b < nb; b++) {
        const uint8_t *wb = w + b * 18, *xb = x + b * 34;
        int64_t s = 0, a = 0;
        for (int j = 0; j < 16; j++) {
            const int64_t p0 = (int64_t)iq4nl[wb[2 + j] & 0xF] * s8(xb + 2, j), p1 = (int64_t)iq4nl[wb[2 + j] >> 4] * s8(xb + 2, j + 16);
            s += p0 + p1; a += llabs(p0) + llabs(p1);
        }
        acc(&r, (double)ld16(wb) * ld16(xb), s, a);
    }
    return r;
}

static int k8(const uint8_t *xb, int j) { return (int8_t)xb[4 + j]; }
static int bsum(const uint8_t *xb, int g) { return ldi16(xb + 260 + 2 * g); }

static void k4_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) { *sc = s[j] & 63; *m = s[j + 4] & 63; return; }
    *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
}

static int q3k_scale(const uint8_t *s, int j) {
    const int low = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
    const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (low | (high << 4)) - 32;
}

static ref_t ref_q2_K(int nb, const uint8_t *w, const uint8_t *x) {
    ref_t r = {0, 0};
    for (int b = 0; b < nb; b++) {
        const uint8_t *wb = w + b * 84, *xb = x + b * 292;
        int64_t dot = 0, dabs = 0, mins = 0, mabs = 0;
        for (int g = 0; g < 16; g++) { const int64_t p = (int64_t)(wb[g] >> 4) * bsum(xb, g); mins += p; mabs += llabs(p); }
        for (int half = 0; half < 2; half++)
            for (int k = 0; k < 4; k++)
                for (int part = 0; part < 2; part++) {
                    int64_t s = 0, a = 0;
                    for (int l = 0; l < 16; l++) {
                        const int q = (wb[16 + 32 * half + 16 * part + l] >> (2 * k)) & 3;
                        const int64_t p = (int64_t)q * k8(xb, 128 * half + 32 * k + 16 * part + l);
                        s += p; a += llabs(p);
                    }
                    const int sc = wb[8 * half + 2 * k + part] & 0xF;
                    dot += s * sc; dabs += a * sc;
                }
        const double dy = ld32(xb);
        acc(&r, dy * ld16(wb + 80), dot, dabs);
        acc(&r, -dy * ld16(wb + 82), mins, mabs);
    }
    return r;
}

static ref_t ref_q3_K(int nb, const uint8_t *w, const uint8_t *x) {
    ref_t r = {0, 0};
    for (int b = 0; b < nb; b++) {
        const uint8_t *wb = w + b * 110, *xb = x + b * 292;
        int64_t dot = 0, dabs = 0;
        for (int half = 0; half < 2; half++)
            for (int k = 0; k < 4; k++)
                for (int part = 0; part < 2; part++) {
                    int64_t s = 0, a = 0;
                    for (int l = 0; l < 16; l++) {
                        const int i = 16 * part + l;
                        const int low = (wb[32 + 32 * half + i] >> (2 * k)) & 3;
                        const int q = (wb[i] >> (4 * half + k)) & 1 ? low : low - 4;
                        const int64_t p = (int64_t)q * k8(xb, 128 * half + 32 * k + i);
                        s += p; a += llabs(p);
                    }
                    const int sc = q3k_scale(wb + 96, 8 * half + 2 * k + part);
                    dot += s * sc; dabs += a * abs(sc);
                }
        acc(&r, (double)ld16(wb + 108) * ld32(xb), dot, dabs);
    }
    return r;
}

static ref_t ref_q45_K(int nb, const uint8_t *w, const uint8_t *x, int five) {
    ref_t r = {0, 0};
    const int bytes = five ? 176 : 144, qs = five ? 48 : 16;
    for (int b = 0; b < nb; b++) {
        const uint8_t *wb = w + b * bytes, *xb = x + b * 292;
        int64_t dot = 0, dabs = 0, mins = 0, mabs = 0;
        for (int k = 0; k < 4; k++) {
            int s0, m0, s1, m1;
            k4_scale_min(wb + 4, 2 * k, &s0, &m0);
            k4_scale_min(wb + 4, 2 * k + 1, &s1, &m1);
            int64_t lo = 0, hi = 0, alo = 0, ahi = 0;
            for (int l = 0; l < 32; l++) {
                const uint8_t q = wb[qs + 32 * k + l];
                int q0 = q & 0xF, q1 = q >> 4;
                if (five) {
                    const uint8_t h = wb[16 + l];
                    q0 |= ((h >> (2 * k)) & 1) << 4;
                    q1 |= ((h >> (2 * k + 1)) & 1) << 4;
                }
                const int64_t p0 = (int64_t)q0 * k8(xb, 64 * k + l), p1 = (int64_t)q1 * k8(xb, 64 * k + 32 + l);
                lo += p0; hi += p1; alo += llabs(p0); ahi += llabs(p1);
            }
            dot += lo * s0 + hi * s1; dabs += alo * s0 + ahi * s1;
            const int64_t mp0 = (int64_t)m0 * (bsum(xb, 4 * k) + bsum(xb, 4 * k + 1));
            const int64_t mp1 = (int64_t)m1 * (bsum(xb, 4 * k + 2) + bsum(xb, 4 * k + 3));
            mins += mp0 + mp1; mabs += llabs(mp0) + llabs(mp1);
        }
        const double dy = ld32(xb);
        acc(&r, dy * ld16(wb), dot, dabs);
        acc(&r, -dy * ld16(wb + 2), mins, mabs);
    }
    return r;
}
static ref_t ref_q4_K(int nb, const uint8_t *w, const uint8_t *x) { return ref_q45_K(nb, w, x, 0); }
static ref_t ref_q5_K(int nb, const uint8_t *w, const uint8_t *x) { return ref_q45_K(nb, w, x, 1); }

static ref_t ref_q6_K(int nb, const uint8_t *w, const uint8_t *x) {
    ref_t r = {0, 0};
    for (int b = 0; b < nb; b++) {
        const uint8_t *wb = w + b * 210, *xb = x + b * 292;
        int64_t dot = 0, dabs = 0;
        for (int half = 0; half < 2; half++) {
            const int ql = 64 * half, qh = 128 + 32 * half, sc = 192 + 8 * half, y = 128 * half;
            int64_t s[8] = {0}, a[8] = {0};
            for (int l = 0; l < 32; l++) {
                const int A = wb[ql + l], C = wb[ql + l + 32], H = wb[qh + l], g = l / 16;
                const int q[4] = {((A & 0xF) | (H & 3) << 4) - 32, ((C & 0xF) | ((H >> 2) & 3) << 4) - 32,
                                  ((A >> 4) | ((H >> 4) & 3) << 4) - 32, ((C >> 4) | ((H >> 6) & 3) << 4) - 32};
                for (int t = 0; t < 4; t++) {
                    const int64_t p = (int64_t)q[t] * k8(xb, y + l + 32 * t);
                    s[g + 2 * t] += p; a[g + 2 * t] += llabs(p);
                }
            }
            for (int g = 0; g < 8; g++) { const int scale = (int8_t)wb[sc + g]; dot += s[g] * scale; dabs += a[g] * abs(scale); }
        }
        acc(&r, (double)ld16(wb + 208) * ld32(xb), dot, dabs);
    }
    return r;
}

static ref_t ref_iq4_xs(int nb, const uint8_t *w, const uint8_t *x) {
    ref_t r = {0, 0};
    for (int b = 0; b < nb; b++) {
        const uint8_t *wb = w + b * 136, *xb = x + b * 292;
        uint16_t h; memcpy(&h, wb + 2, 2);
        int64_t dot = 0, dabs = 0;
        for (int ib = 0; ib < 8; ib++) {
            int64_t s = 0, a = 0;
            for (int j = 0; j < 16; j++) {
                const uint8_t q = wb[8 + 16 * ib + j];
                const int64_t p0 = (int64_t)iq4nl[q & 0xF] * k8(xb, 32 * ib + j), p1 = (int64_t)iq4nl[q >> 4] * k8(xb, 32 * ib + 16 + j);
                s += p0 + p1; a += llabs(p0) + llabs(p1);
            }
            const int sc = (((wb[4 + ib / 2] >> (4 * (ib % 2))) & 0xF) | (((h >> (2 * ib)) & 3) << 4)) - 32;
            dot += s * sc; dabs += a * abs(sc);
        }
        acc(&r, (double)ld16(wb) * ld32(xb), dot, dabs);
    }
    return r;
}

// ---- The table of quantized weight types ----

typedef float (*kernel_fn)(int, const uint8_t *, const uint8_t *);
typedef ref_t (*ref_fn)(int, const uint8_t *, const uint8_t *);
enum act { ACT_Q8_0, ACT_Q8_1, ACT_Q8_K };
typedef struct {
    const char *name;
    int block_elems, block_bytes;
    enum act act;
    int scale_offsets[2], nscales;  // F16 scale fields of a block
    kernel_fn kernel;
    ref_fn ref;
} wtype;

static const wtype types[] = {
    {"Q8_0", 32, 34, ACT_Q8_0, {0}, 1, K(cq_dot_q8_0_q8_0), ref_q8_0},
    {"Q4_0", 32, 18, ACT_Q8_0, {0}, 1, K(cq_dot_q4_0_q8_0), ref_q4_0},
    {"Q4_1", 32, 20, ACT_Q8_1, {0, 2}, 2, K(cq_dot_q4_1_q8_1), ref_q4_1},
    {"Q5_0", 32, 22, ACT_Q8_0, {0}, 1, K(cq_dot_q5_0_q8_0), ref_q5_0},
    {"Q5_1", 32, 24, ACT_Q8_1, {0, 2}, 2, K(cq_dot_q5_1_q8_1), ref_q5_1},
    {"IQ4_NL", 32, 18, ACT_Q8_0, {0}, 1, K(cq_dot_iq4_nl_q8_0), ref_iq4_nl},
    {"Q2_K", 256, 84, ACT_Q8_K, {80, 82}, 2, K(cq_dot_q2_K_q8_K), ref_q2_K},
    {"Q3_K", 256, 110, ACT_Q8_K, {108}, 1, K(cq_dot_q3_K_q8_K), ref_q3_K},
    {"Q4_K", 256, 144, ACT_Q8_K, {0, 2}, 2, K(cq_dot_q4_K_q8_K), ref_q4_K},
    {"Q5_K", 256, 176, ACT_Q8_K, {0, 2}, 2, K(cq_dot_q5_K_q8_K), ref_q5_K},
    {"Q6_K", 256, 210, ACT_Q8_K, {208}, 1, K(cq_dot_q6_K_q8_K), ref_q6_K},
    {"IQ4_XS", 256, 136, ACT_Q8_K, {0}, 1, K(cq_dot_iq4_xs_q8_K), ref_iq4_xs},
};
#define NTYPES ((int)(sizeof(types) / sizeof(types[0])))

static size_t act_bytes(enum act a, int n) {
    const size_t u = (unsigned)n;
    return a == ACT_Q8_0 ? u / 32 * 34 : a == ACT_Q8_1 ? u / 32 * 36 : u / 256 * 292;
}
static void ref_quantize(enum act a, const float *x, uint8_t *y, int n) {
    if (a == ACT_Q8_0) ref_quantize_q8_0(x, y, n);
    else if (a == ACT_Q8_1) ref_quantize_q8_1(x, y, n);
    else ref_quantize_q8_K(x, y, n);
}
static void kernel_quantize(enum act a, const float *x, uint8_t *y, int n) {
    if (a == ACT_Q8_0) K(cq_quantize_row_q8_0)(x, y, n);
    else if (a == ACT_Q8_1) K(cq_quantize_row_q8_1)(x, y, n);
    else K(cq_quantize_row_q8_K)(x, y, n);
}
static const char *act_name(enum act a) { return a == ACT_Q8_0 ? "Q8_0" : a == ACT_Q8_1 ? "Q8_1" : "Q8_K"; }

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

static void random_blocks(const wtype *t, int nblocks, uint8_t *w, float scale) {
    for (int i = 0; i < nblocks * t->block_bytes; i++) w[i] = (uint8_t)(rnd() >> 32);
    for (int b = 0; b < nblocks; b++)
        for (int k = 0; k < t->nscales; k++) put16(w + b * t->block_bytes + t->scale_offsets[k], ref_to_f16(rndf() * scale));
}

static int close_enough(float got, ref_t r) {
    if (!isfinite(r.v) || !isfinite(r.mag)) return 1;  // overflowing extremes: only "no crash" is asked
    return fabs((double)got - r.v) <= 2e-6 * r.mag + 1e-30;
}

// ---- Tests ----

static int first_diff(const uint8_t *a, const uint8_t *b, size_t n) {
    for (size_t i = 0; i < n; i++) if (a[i] != b[i]) return (int)i;
    return -1;
}

/// Whether a Q8_0 block is one where the AVX2 quantizer is known to differ from the portable Swift one: it holds
/// a NaN, or its max|x| is so small (< ~3.7e-37) that 127 / max|x| overflows to Inf, where AVX2 turns x·Inf = +Inf
/// into -128 and the portable version (and NEON) into +127.
static int avx2_q8_0_diverges(const float *xb) {
    float amax = 0.0f;
    int has_nan = 0;
    for (int j = 0; j < 32; j++) {
        has_nan |= isnan(xb[j]);
        if (fabsf(xb[j]) > amax) amax = fabsf(xb[j]);
    }
    return has_nan || (amax != 0.0f && isinf(127.0f / amax));
}

/// Compares kernel and reference Q8_0 bytes block by block, skipping on x86 the blocks of avx2_q8_0_diverges.
static int q8_0_first_diff(const float *x, const uint8_t *r, const uint8_t *k, int n, int *skipped) {
    for (int b = 0; b < n / 32; b++) {
        if (!IS_NEON && avx2_q8_0_diverges(x + b * 32)) { (*skipped)++; continue; }
        for (int j = 0; j < 34; j++) if (r[b * 34 + j] != k[b * 34 + j]) return b * 34 + j;
    }
    return -1;
}

static int skipped_avx2_blocks;

static void test_quantizers(void) {
    const int sizes[] = {256, 512, 1024, 4864, 8960};
    for (int a = ACT_Q8_0; a <= ACT_Q8_K; a++) {
        for (int si = 0; si < 5; si++) {
            const int n = sizes[si];
            float *x = malloc(sizeof(float) * n);
            for (int i = 0; i < n; i++) x[i] = rndf() * 5.0f;
            x[3] = -7.0f;                                      // largest magnitude negative
            for (int j = 256; j < 512 && j < n; j++) x[j] = 0;  // an all-zero block
            x[5] = 1e-30f;
            if (n >= 1024) {
                x[512] = 6; x[600] = -6;                                           // a tie in magnitude
                for (int j = 768; j < 1024; j++) x[j] = (float)(j - 896) * 1e-3f;  // exact .5 ties
            }
            if (n >= 4864) {
                for (int j = 1024; j < 1056; j++) x[j] = (j % 2 ? -1 : 1) * (float)(j - 1024) * 0.5f;  // q at ±127 and .5 steps
                for (int j = 1280; j < 1536; j++) x[j] = rndf() * 1e-40f;                             // subnormals
                x[1290] = 1.4e-45f;
                for (int j = 2048; j < 2304; j++) x[j] = rndf() * 3e38f;                              // huge
            }
            const size_t bytes = act_bytes((enum act)a, n);
            uint8_t *r = malloc(bytes), *k = malloc(bytes);
            memset(r, 0xCD, bytes); memset(k, 0x5A, bytes);
            ref_quantize((enum act)a, x, r, n);
            kernel_quantize((enum act)a, x, k, n);
            const int d = a == ACT_Q8_0 ? q8_0_first_diff(x, r, k, n, &skipped_avx2_blocks) : first_diff(r, k, bytes);
            CHECK(d < 0, "%s quantization n=%d: byte %d differs (ref %02x, kernel %02x)", act_name((enum act)a), n, d, d < 0 ? 0 : r[d], d < 0 ? 0 : k[d]);
            free(x); free(r); free(k);
        }
    }
}

static void test_quantizers_hostile(void) {
    const float nan = NAN, inf = INFINITY;
    const int n = 512;
    float x[512];
    for (int round = 0; round < 6; round++) {
        for (int i = 0; i < n; i++) x[i] = rndf();
        switch (round) {
        case 0: x[1] = nan; x[40] = inf; x[300] = -inf; x[301] = 3.4028235e38f; break;
        case 1: for (int i = 0; i < n; i++) x[i] = nan; break;
        case 2: for (int i = 0; i < n; i++) x[i] = i % 3 ? -0.0f : 0.0f; x[7] = nan; break;
        case 3: x[0] = -inf; x[256] = inf; x[257] = -inf; x[33] = -nan; break;
        case 4: for (int i = 0; i < n; i++) x[i] = (i % 2 ? 1.4e-45f : 0.0f); x[100] = -1.4e-45f; x[310] = nan; break;  // iscale overflows
        case 5: for (int i = 0; i < n; i++) x[i] = rndf() * 3.4e38f; x[20] = 3.4028235e38f; x[21] = -3.4028235e38f; break;
        }
        for (int a = ACT_Q8_0; a <= ACT_Q8_K; a++) {
            uint8_t r[512 / 32 * 36 + 600], k[512 / 32 * 36 + 600];
            const size_t bytes = act_bytes((enum act)a, n);
            ref_quantize((enum act)a, x, r, n);
            kernel_quantize((enum act)a, x, k, n);
            if (a == ACT_Q8_0) {
                const int d = q8_0_first_diff(x, r, k, n, &skipped_avx2_blocks);
                CHECK(d < 0, "Q8_0 hostile round %d: byte %d differs (ref %02x, kernel %02x)", round, d, d < 0 ? 0 : r[d], d < 0 ? 0 : k[d]);
                continue;
            }
            const int d = first_diff(r, k, bytes);
            CHECK(d < 0, "%s hostile round %d: byte %d differs (ref %02x, kernel %02x)", act_name((enum act)a), round, d, d < 0 ? 0 : r[d], d < 0 ? 0 : k[d]);
        }
    }
}

/// Random blocks against reference-quantized random activations (with an all-zero block and ±127 quants).
static void test_dots_random(void) {
    const int sizes[] = {32, 64, 96, 288, 256, 512, 768, 1024, 4864, 8960};
    for (int ti = 0; ti < NTYPES; ti++) {
        const wtype *t = &types[ti];
        for (int si = 0; si < 10; si++) {
            const int n = sizes[si];
            if (n % t->block_elems) continue;
            const int nb = n / t->block_elems;
            uint8_t *w = malloc((size_t)nb * t->block_bytes);
            random_blocks(t, nb, w, t->block_elems == 32 ? 0.05f : 0.01f);
            float *x = malloc(sizeof(float) * n);
            for (int i = 0; i < n; i++) x[i] = rndf() * 2.0f;
            if (n >= 512) for (int j = 256; j < 512; j++) x[j] = 0;
            if (n >= 96) for (int j = 64; j < 96; j++) x[j] = j % 3 == 0 ? -2 : 2;
            uint8_t *xq = malloc(act_bytes(t->act, n));
            ref_quantize(t->act, x, xq, n);
            const ref_t r = t->ref(nb, w, xq);
            const float got = t->kernel(nb, w, xq);
            CHECK(close_enough(got, r), "%s n=%d: kernel %.9g vs exact %.9g (magnitude %.3g)", t->name, n, got, r.v, r.mag);
            free(w); free(x); free(xq);
        }
    }
}

/// Raw random activation bytes (any int8, -128 included, with consistent Q8_K sums): the integer sums must stay
/// exact. Only on NEON: the AVX2 kernels rely on the quantizers never producing -128.
static void test_dots_raw_activations(void) {
    for (int ti = 0; ti < NTYPES; ti++) {
        const wtype *t = &types[ti];
        for (int rep = 0; rep < 20; rep++) {
            const int n = t->block_elems == 32 ? 32 * (1 + rep % 7) : 256 * (1 + rep % 3);
            const int nb = n / t->block_elems;
            uint8_t *w = malloc((size_t)nb * t->block_bytes);
            random_blocks(t, nb, w, 1.0f);
            const size_t xbytes = act_bytes(t->act, n);
            uint8_t *xq = malloc(xbytes);
            for (size_t i = 0; i < xbytes; i++) xq[i] = (uint8_t)(rnd() >> 40);
            if (rep % 4 == 0) for (size_t i = 0; i < xbytes; i++) xq[i] = 0x80;  // all -128 (and odd scales)
            if (t->act == ACT_Q8_K) {
                for (int b = 0; b < n / 256; b++) {
                    uint8_t *xb = xq + b * 292;
                    const float d = rndf();
                    memcpy(xb, &d, 4);
                    for (int g = 0; g < 16; g++) {
                        int s = 0;
                        for (int j = 0; j < 16; j++) s += (int8_t)xb[4 + 16 * g + j];
                        const int16_t s16 = (int16_t)s;
                        memcpy(xb + 260 + 2 * g, &s16, 2);
                    }
                }
            } else {
                const int bb = t->act == ACT_Q8_0 ? 34 : 36;
                for (int b = 0; b < n / 32; b++) {
                    put16(xq + b * bb, ref_to_f16(rndf()));
                    if (bb == 36) put16(xq + b * bb + 2, ref_to_f16(rndf() * 10));
                }
            }
            const ref_t r = t->ref(nb, w, xq);
            const float got = t->kernel(nb, w, xq);
            CHECK(close_enough(got, r), "%s raw rep %d n=%d: kernel %.9g vs exact %.9g", t->name, rep, n, got, r.v);
            free(w); free(xq);
        }
    }
}

/// Extreme blocks: every quant and sub-scale at its largest or smallest (fills 0xFF, 0x00, 0x55, 0xAA, random),
/// small and the largest F16 scales of both signs, against activations whose quants are all ±127 and mixed.
static void test_dots_extreme(void) {
    const int n = 1024;
    const uint16_t scale_pairs[][2] = {{0x3C00, 0xBC00}, {0xBC00, 0x3C00}, {0x7BFF, 0xFBFF}, {0xFBFF, 0x7BFF}, {0x0001, 0x8400}, {0x0000, 0x3C00}};
    float acts[4][1024];
    for (int i = 0; i < n; i++) {
        acts[0][i] = 1;
        acts[1][i] = i % 2 == 0 ? 3 : -3;
        acts[2][i] = i % 7 == 0 ? -5 : 5;
        acts[3][i] = rndf() * 100;
    }
    for (int ti = 0; ti < NTYPES; ti++) {
        const wtype *t = &types[ti];
        const int nb = n / t->block_elems;
        uint8_t *w = malloc((size_t)nb * t->block_bytes);
        uint8_t *xq = malloc(act_bytes(t->act, n));
        const int fills[5] = {0xFF, 0x00, 0x55, 0xAA, -1};
        for (int f = 0; f < 5; f++)
            for (int sp = 0; sp < 6; sp++) {
                if (fills[f] < 0) random_blocks(t, nb, w, 1.0f);
                else memset(w, fills[f], (size_t)nb * t->block_bytes);
                for (int b = 0; b < nb; b++)
                    for (int k = 0; k < t->nscales; k++) put16(w + b * t->block_bytes + t->scale_offsets[k], scale_pairs[sp][k]);
                for (int a = 0; a < 4; a++) {
                    ref_quantize(t->act, acts[a], xq, n);
                    const ref_t r = t->ref(nb, w, xq);
                    const float got = t->kernel(nb, w, xq);
                    CHECK(close_enough(got, r), "%s extreme fill %d scales %04x/%04x acts %d: kernel %.9g vs exact %.9g",
                          t->name, fills[f], scale_pairs[sp][0], scale_pairs[sp][1], a, got, r.v);
                }
            }
        free(w); free(xq);
    }
}

/// NaN/Inf/max/subnormal/-0 scales and NaN/Inf activations: no crash (results may be NaN).
static void test_dots_hostile(void) {
    const int n = 512;
    const uint16_t bad[] = {0x7E00, 0x7C00, 0xFC00, 0x7BFF, 0x0001, 0x8000};
    volatile float sink = 0;
    for (int ti = 0; ti < NTYPES; ti++) {
        const wtype *t = &types[ti];
        const int nb = n / t->block_elems;
        uint8_t *w = malloc((size_t)nb * t->block_bytes);
        uint8_t *xq = malloc(act_bytes(t->act, n));
        float x[512];
        for (int bi = 0; bi < 6; bi++) {
            random_blocks(t, nb, w, 0.01f);
            for (int b = 0; b < nb; b++)
                for (int k = 0; k < t->nscales; k++) put16(w + b * t->block_bytes + t->scale_offsets[k], bad[bi]);
            for (int i = 0; i < n; i++) x[i] = rndf();
            x[1] = NAN; x[40] = INFINITY; x[300] = -INFINITY; x[301] = 3.4028235e38f;
            kernel_quantize(t->act, x, xq, n);
            sink += t->kernel(nb, w, xq);
            checks++;
        }
        for (int fill = 0; fill < 2; fill++) {
            memset(w, fill ? 0xFF : 0x00, (size_t)nb * t->block_bytes);
            memset(xq, fill ? 0x00 : 0xFF, act_bytes(t->act, n));
            sink += t->kernel(nb, w, xq);
            checks++;
        }
        free(w); free(xq);
    }
    (void)sink;
}

static void test_half_rows(void) {
    const int sizes[] = {1, 3, 4, 7, 8, 15, 16, 17, 33, 64, 896, 1000};
    for (int si = 0; si < 12; si++) {
        const int n = sizes[si];
        uint16_t *h = malloc(2 * n), *bf = malloc(2 * n), *hk = malloc(2 * n), *hr = malloc(2 * n);
        float *x = malloc(4 * n), *y = malloc(4 * n), *yk = malloc(4 * n), *f = malloc(4 * n);
        for (int i = 0; i < n; i++) {
            const float v = rndf();
            h[i] = ref_to_f16(v);
            const float vb = rndf() * 4;
            uint32_t ub;
            memcpy(&ub, &vb, 4);
            bf[i] = (uint16_t)(ub >> 16);
            x[i] = rndf() * 2;
            y[i] = rndf();
        }
        // F16 · F32 and BF16 · F32 dots
        double ex = 0, mag = 0, exb = 0, magb = 0;
        for (int i = 0; i < n; i++) {
            ex += (double)ref_f16(h[i]) * x[i]; mag += fabs((double)ref_f16(h[i]) * x[i]);
            exb += (double)ref_bf16(bf[i]) * x[i]; magb += fabs((double)ref_bf16(bf[i]) * x[i]);
        }
        const float df = K(cq_dot_f16_f32)(n, h, x), db = K(cq_dot_bf16_f32)(n, bf, x);
        CHECK(fabs(df - ex) <= 2e-6 * mag + 1e-30, "F16 dot n=%d: %.9g vs %.9g", n, df, ex);
        CHECK(fabs(db - exb) <= 2e-6 * magb + 1e-30 || (!isfinite(exb) && !isfinite(db)), "BF16 dot n=%d: %.9g vs %.9g", n, db, exb);
        // axpy
        const float a = rndf() * 3;
        memcpy(yk, y, 4 * n);
        K(cq_axpy_f16)(n, a, h, yk);
        for (int i = 0; i < n; i++) {
            const double e = (double)y[i] + (double)a * ref_f16(h[i]);
            CHECK(fabs(yk[i] - e) <= 1.2e-7 * (fabs(y[i]) + fabs(a * ref_f16(h[i]))), "F16 axpy n=%d [%d]: %.9g vs %.9g", n, i, yk[i], e);
        }
        // conversions: exact
        for (int i = 0; i < n; i++) {
            switch (i % 8) {
            case 0: f[i] = rndf() * 70000; break;            // overflow to ±inf above 65520
            case 1: f[i] = rndf() * 1e-5f; break;            // F16 subnormals
            case 2: f[i] = rndf() * 1e-8f; break;            // underflow
            case 3: {  // exactly halfway between two F16 values: the bit just below the F16 mantissa set
                const float v = ref_f16(ref_to_f16(rndf() * 100));
                uint32_t u;
                memcpy(&u, &v, 4);
                u |= 0x1000;
                memcpy(&f[i], &u, 4);
                break;
            }
            default: f[i] = rndf() * 10;
            }
        }
        if (n > 5) { f[1] = NAN; f[2] = -INFINITY; f[3] = 65520.0f; f[4] = 65519.996f; f[5] = -0.0f; }
        K(cq_f32_to_f16_row)(n, f, hk);
        for (int i = 0; i < n; i++) hr[i] = ref_to_f16(f[i]);
        for (int i = 0; i < n; i++) CHECK(hk[i] == hr[i], "F32->F16 n=%d [%d] %.9g: %04x vs %04x", n, i, f[i], hk[i], hr[i]);
        K(cq_f16_to_f32_row)(n, h, yk);
        for (int i = 0; i < n; i++) CHECK(memcmp(&yk[i], &(float){ref_f16(h[i])}, 4) == 0, "F16->F32 n=%d [%d]", n, i);
        K(cq_bf16_to_f32_row)(n, bf, yk);
        for (int i = 0; i < n; i++) CHECK(memcmp(&yk[i], &(float){ref_bf16(bf[i])}, 4) == 0, "BF16->F32 n=%d [%d]", n, i);
        free(h); free(bf); free(hk); free(hr); free(x); free(y); free(yk); free(f);
    }
    // all 65536 F16 values: F16 -> F32 -> F16 round trip, and F16 -> F32 matches the reference
    static uint16_t all[65536], back[65536];
    static float fl[65536];
    for (int i = 0; i < 65536; i++) all[i] = (uint16_t)i;
    K(cq_f16_to_f32_row)(65536, all, fl);
    K(cq_f32_to_f16_row)(65536, fl, back);
    int bad = 0, badf = 0;
    for (int i = 0; i < 65536; i++) {
        const int is_nan = (i & 0x7C00) == 0x7C00 && (i & 0x3FF);
        if (back[i] != (is_nan ? (i | 0x200) : i)) bad++;
        const float r = ref_f16((uint16_t)i);
        if (memcmp(&fl[i], &r, 4) != 0 && !(is_nan && isnan(fl[i]))) badf++;
    }
    CHECK(bad == 0, "F16 round trip: %d values differ", bad);
    CHECK(badf == 0, "F16 -> F32: %d values differ", badf);
}

int main(void) {
    printf("test_neon: %s\n", ARCH);
    test_quantizers();
    test_quantizers_hostile();
    test_dots_random();
    if (IS_NEON) test_dots_raw_activations();
    test_dots_extreme();
    test_dots_hostile();
    test_half_rows();
    if (skipped_avx2_blocks)
        printf("(skipped %d Q8_0 blocks where the AVX2 quantizer is known to differ from the portable one: NaN or max|x| < 3.7e-37)\n",
               skipped_avx2_blocks);
    printf("%ld passed, %ld failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
