// ARM64 NEON row kernels: the `_neon` twins of the AVX2 kernels of cqwen.h and cqwen_quants.h, with the same
// arguments, block layouts (llama.cpp's) and results (integer sums exact, float rounding only). Integer dots use
// the dot-product extension (sdot, `vdotq_s32`) when the compiler targets it (__ARM_FEATURE_DOTPROD, e.g.
// -march=armv8.2-a+dotprod, the package's ARM baseline) and widening multiplies (smull + sadalp) otherwise.
//
// Differences from the AVX2 code, all in what is simpler on NEON: signed x signed dots, so offsets (-8, -16, -32,
// -4) are applied to the weight bytes directly instead of through the activation sums; and the activation
// quantizers reproduce the portable Swift versions bit for bit for every input, NaN and Inf included (NEON's
// float->int conversion saturates and turns NaN into 0, so NaN and out-of-range lanes are patched explicitly to
// the values the x86 conversion gives).
//
// This header is self-contained (its own block sizes and helpers) and empty on other architectures: SwiftPM
// treats every header in include/ as part of the module, so it is also read on x86-64. Tests: Tests/neon (qemu).
#ifndef CQWEN_NEON_H
#define CQWEN_NEON_H

#if defined(__aarch64__)

#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <arm_neon.h>

// ---- Block sizes (bytes; identical redefinitions of cqwen.h / cqwen_quants.h) ----
#define CQ_Q8_0_BYTES 34
#define CQ_Q4_0_BYTES 18
#define CQ_Q4_1_BYTES 20
#define CQ_Q5_0_BYTES 22
#define CQ_Q5_1_BYTES 24
#define CQ_IQ4_NL_BYTES 18
#define CQ_Q2_K_BYTES 84
#define CQ_Q3_K_BYTES 110
#define CQ_Q4_K_BYTES 144
#define CQ_Q5_K_BYTES 176
#define CQ_Q6_K_BYTES 210
#define CQ_IQ4_XS_BYTES 136
#define CQ_Q8_K_BYTES 292
#define CQ_Q8_1_BYTES 36

// ---- Scalar helpers ----

static inline float cq_neon_f16(const uint8_t *p) {
    __fp16 h;
    memcpy(&h, p, 2);
    return (float)h;
}
static inline float cq_neon_f32(const uint8_t *p) { float f; memcpy(&f, p, 4); return f; }

/// Float to F16 bits, round to nearest even (FCVT with the default rounding mode), NaN stays NaN.
static inline uint16_t cq_neon_to_f16(float f) {
    const __fp16 h = (__fp16)f;
    uint16_t bits;
    memcpy(&bits, &h, 2);
    return bits;
}

static const int8_t cq_neon_iq4nl_table[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/// Scale and min of sub-block j (0..7) of a Q4_K/Q5_K block from its 12 packed bytes.
static inline void cq_neon_k4_scale_min(const uint8_t *q, uint8_t sc[8], uint8_t mn[8]) {
    for (int j = 0; j < 4; j++) {
        sc[j] = q[j] & 63;
        mn[j] = q[j + 4] & 63;
    }
    for (int j = 4; j < 8; j++) {
        sc[j] = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        mn[j] = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/// Scale of sub-block j (0..15) of a Q3_K block (6 bits, minus 32) from its 12 packed bytes.
static inline int32_t cq_neon_q3k_scale(const uint8_t *s, int j) {
    const int low = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
    const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (low | (high << 4)) - 32;
}

/// Scale of sub-block ib (0..7) of an IQ4_XS block (6 bits, minus 32).
static inline int32_t cq_neon_iq4xs_scale(const uint8_t *block, int ib) {
    uint16_t h;
    memcpy(&h, block + 2, 2);
    return (((block[4 + ib / 2] >> (4 * (ib % 2))) & 0xF) | (((h >> (2 * ib)) & 3) << 4)) - 32;
}

// ---- Vector helpers ----

/// acc + Σ over groups of 4 of a[i]·b[i] (sdot). Only the sum of all four lanes is used by the callers, so the
/// fallback may spread the products over the lanes differently.
static inline int32x4_t cq_neon_dot(int32x4_t acc, int8x16_t a, int8x16_t b) {
#if defined(__ARM_FEATURE_DOTPROD)
    return vdotq_s32(acc, a, b);
#else
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
#endif
}

/// Σ of 32 int8 products a·b (two 16-byte halves each), as 4 int32 lanes.
static inline int32x4_t cq_neon_dot32(int8x16_t a0, int8x16_t a1, int8x16_t b0, int8x16_t b1) {
    return cq_neon_dot(cq_neon_dot(vdupq_n_s32(0), a0, b0), a1, b1);
}

/// 16 packed bytes -> low nibbles (elements 0..15) and high nibbles (16..31), as bytes 0..15.
static inline void cq_neon_nibbles(const uint8_t *p, uint8x16_t *lo, uint8x16_t *hi) {
    const uint8x16_t v = vld1q_u8(p);
    *lo = vandq_u8(v, vdupq_n_u8(0x0F));
    *hi = vshrq_n_u8(v, 4);
}

/// 16 bits -> 16 bytes, byte j 0xFF when bit j is set, else 0.
static inline uint8x16_t cq_neon_bits16(uint32_t bits) {
    static const uint8_t sel[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t v = vcombine_u8(vdup_n_u8((uint8_t)(bits & 0xFF)), vdup_n_u8((uint8_t)((bits >> 8) & 0xFF)));
    return vtstq_u8(v, vld1q_u8(sel));
}

/// max(m, |v|) per lane, leaving m as it is where v is NaN (as the x86 max and the portable loops do).
static inline float32x4_t cq_neon_absmax(float32x4_t m, float32x4_t v) {
    const float32x4_t a = vabsq_f32(v);
    return vbslq_f32(vcgtq_f32(a, m), a, m);
}

/// round-half-even(p) as x86's cvtps2dq gives it: NaN and values outside the int32 range become INT32_MIN.
static inline int32x4_t cq_neon_cvt_x86(float32x4_t p) {
    const uint32x4_t ok = vandq_u32(vcgeq_f32(p, vdupq_n_f32(-2147483648.0f)), vcltq_f32(p, vdupq_n_f32(2147483648.0f)));
    return vbslq_s32(ok, vcvtnq_s32_f32(p), vdupq_n_s32(INT32_MIN));
}

/// 16 int32 values -> 16 int8 with saturation.
static inline int8x16_t cq_neon_narrow16(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
    const int16x8_t lo = vcombine_s16(vqmovn_s32(a), vqmovn_s32(b)), hi = vcombine_s16(vqmovn_s32(c), vqmovn_s32(d));
    return vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi));
}

// ------------------------------------------------------------------------------------------------------------
// Activation quantization
// ------------------------------------------------------------------------------------------------------------

/// Quantizes `n` floats (a multiple of 32) to Q8_0 blocks: d = max|x| / 127 stored as F16,
/// q = round-half-even(x · 127 / max|x|). Bit for bit the portable Swift version (quantizeQ8_0Portable) for any
/// input: NaN elements stay out of the maximum and become -128, ±Inf products saturate to ±127/-128.
static inline void cq_quantize_row_q8_0_neon(const float *x, uint8_t *y, int n) {
    for (int b = 0; b < n / 32; b++, x += 32, y += CQ_Q8_0_BYTES) {
        float32x4_t v[8];
        float32x4_t m = vdupq_n_f32(0.0f);
        for (int k = 0; k < 8; k++) {
            v[k] = vld1q_f32(x + 4 * k);
            m = cq_neon_absmax(m, v[k]);
        }
        const float amax = vmaxvq_f32(m);
        const uint16_t dh = cq_neon_to_f16(amax / 127.0f);
        memcpy(y, &dh, 2);
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        int32x4_t q[8];
        for (int k = 0; k < 8; k++) {
            const float32x4_t p = vmulq_n_f32(v[k], id);
            q[k] = vbslq_s32(vceqq_f32(p, p), vcvtnq_s32_f32(p), vdupq_n_s32(-128));  // NaN -> -128
        }
        vst1q_s8((int8_t *)(y + 2), cq_neon_narrow16(q[0], q[1], q[2], q[3]));
        vst1q_s8((int8_t *)(y + 18), cq_neon_narrow16(q[4], q[5], q[6], q[7]));
    }
}

/// Quantizes `n` floats (a multiple of 32) to Q8_1 blocks, the bytes of cq_quantize_row_q8_1_avx2 and of the
/// portable Swift version: Q8_0's d and quants, s = F16(d · Σq) with d before rounding and Σ over the unclamped
/// int32 values (NaN and out-of-range lanes count as INT32_MIN, wrapping).
static inline void cq_quantize_row_q8_1_neon(const float *x, uint8_t *y, int n) {
    for (int b = 0; b < n / 32; b++, x += 32, y += CQ_Q8_1_BYTES) {
        float32x4_t v[8];
        float32x4_t m = vdupq_n_f32(0.0f);
        for (int k = 0; k < 8; k++) {
            v[k] = vld1q_f32(x + 4 * k);
            m = cq_neon_absmax(m, v[k]);
        }
        const float amax = vmaxvq_f32(m);
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        int32x4_t q[8];
        int32x4_t s = vdupq_n_s32(0);
        for (int k = 0; k < 8; k++) {
            q[k] = cq_neon_cvt_x86(vmulq_n_f32(v[k], id));
            s = vaddq_s32(s, q[k]);  // wraps, as the portable version's &+
        }
        const int32_t sum = vaddvq_s32(s);
        const uint16_t dh = cq_neon_to_f16(d), sh = cq_neon_to_f16(d * (float)sum);
        memcpy(y, &dh, 2);
        memcpy(y + 2, &sh, 2);
        vst1q_s8((int8_t *)(y + 4), cq_neon_narrow16(q[0], q[1], q[2], q[3]));
        vst1q_s8((int8_t *)(y + 20), cq_neon_narrow16(q[4], q[5], q[6], q[7]));
    }
}

/// Quantizes `n` floats (a multiple of 256) to Q8_K blocks exactly as llama.cpp's quantize_row_q8_K_ref and the
/// portable Swift version: iscale = -127 / (the element of largest magnitude, the first one on ties),
/// q = min(127, round-half-even(iscale·x)) with NaN/out-of-range products at -128, d = 1 / iscale, plus the 16
/// sums of 16 quants. An all-zero (or all-NaN) block is all zero bytes.
static inline void cq_quantize_row_q8_K_neon(const float *x, uint8_t *y, int n) {
    for (int b = 0; b < n / 256; b++, x += 256, y += CQ_Q8_K_BYTES) {
        float32x4_t m0 = vdupq_n_f32(0.0f), m1 = vdupq_n_f32(0.0f);
        for (int j = 0; j < 256; j += 8) {
            m0 = cq_neon_absmax(m0, vld1q_f32(x + j));
            m1 = cq_neon_absmax(m1, vld1q_f32(x + j + 4));
        }
        const float amax = vmaxvq_f32(vmaxq_f32(m0, m1));
        if (amax == 0.0f) {
            memset(y, 0, CQ_Q8_K_BYTES);
            continue;
        }
        float max = amax;
        const float32x4_t va = vdupq_n_f32(amax);
        for (int j = 0; j < 256; j += 4) {
            if (vmaxvq_u32(vceqq_f32(vabsq_f32(vld1q_f32(x + j)), va)) != 0) {
                int l = 0;
                while (__builtin_fabsf(x[j + l]) != amax) l++;
                max = x[j + l];
                break;
            }
        }
        const float iscale = -127.0f / max;
        const int32x4_t limit = vdupq_n_s32(127);
        int16_t sums[16];
        for (int j = 0; j < 256; j += 16) {
            int32x4_t q[4];
            for (int k = 0; k < 4; k++)
                q[k] = vminq_s32(cq_neon_cvt_x86(vmulq_n_f32(vld1q_f32(x + j + 4 * k), iscale)), limit);
            const int8x16_t q8 = cq_neon_narrow16(q[0], q[1], q[2], q[3]);
            vst1q_s8((int8_t *)(y + 4 + j), q8);
            sums[j / 16] = vaddlvq_s8(q8);
        }
        memcpy(y + 260, sums, 32);
        const float d = 1.0f / iscale;
        memcpy(y, &d, 4);
    }
}

// ------------------------------------------------------------------------------------------------------------
// 32-element blocks with Q8_0 / Q8_1 activations
// ------------------------------------------------------------------------------------------------------------

/// Dot product of `nblocks` Q8_0 blocks of a weight row with `nblocks` Q8_0 blocks of an activation row.
static inline float cq_dot_q8_0_q8_0_neon(int nblocks, const uint8_t *w, const uint8_t *x) {
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    int i = 0;
    for (; i + 1 < nblocks; i += 2) {
        const uint8_t *wb = w + (size_t)i * CQ_Q8_0_BYTES, *xb = x + (size_t)i * CQ_Q8_0_BYTES;
        const int32x4_t p0 = cq_neon_dot32(vld1q_s8((const int8_t *)(wb + 2)), vld1q_s8((const int8_t *)(wb + 18)),
                                           vld1q_s8((const int8_t *)(xb + 2)), vld1q_s8((const int8_t *)(xb + 18)));
        const int32x4_t p1 = cq_neon_dot32(vld1q_s8((const int8_t *)(wb + 36)), vld1q_s8((const int8_t *)(wb + 52)),
                                           vld1q_s8((const int8_t *)(xb + 36)), vld1q_s8((const int8_t *)(xb + 52)));
        acc0 = vfmaq_n_f32(acc0, vcvtq_f32_s32(p0), cq_neon_f16(wb) * cq_neon_f16(xb));
        acc1 = vfmaq_n_f32(acc1, vcvtq_f32_s32(p1), cq_neon_f16(wb + CQ_Q8_0_BYTES) * cq_neon_f16(xb + CQ_Q8_0_BYTES));
    }
    for (; i < nblocks; i++) {
        const uint8_t *wb = w + (size_t)i * CQ_Q8_0_BYTES, *xb = x + (size_t)i * CQ_Q8_0_BYTES;
        const int32x4_t p = cq_neon_dot32(vld1q_s8((const int8_t *)(wb + 2)), vld1q_s8((const int8_t *)(wb + 18)),
                                          vld1q_s8((const int8_t *)(xb + 2)), vld1q_s8((const int8_t *)(xb + 18)));
        acc0 = vfmaq_n_f32(acc0, vcvtq_f32_s32(p), cq_neon_f16(wb) * cq_neon_f16(xb));
    }
    return vaddvq_f32(vaddq_f32(acc0, acc1));
}

/// Q4_0 weights: nibble - 8 as a signed byte.
static inline void cq_neon_q4_0(const uint8_t *qs, int8x16_t *lo, int8x16_t *hi) {
    uint8x16_t l, h;
    cq_neon_nibbles(qs, &l, &h);
    *lo = vsubq_s8(vreinterpretq_s8_u8(l), vdupq_n_s8(8));
    *hi = vsubq_s8(vreinterpretq_s8_u8(h), vdupq_n_s8(8));
}

/// Dot product of `nblocks` Q4_0 blocks of a weight row with Q8_0 activation blocks.
static inline float cq_dot_q4_0_q8_0_neon(int nblocks, const uint8_t *w, const uint8_t *x) {
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    int i = 0;
    for (; i + 1 < nblocks; i += 2) {
        const uint8_t *wb = w + (size_t)i * CQ_Q4_0_BYTES, *xb = x + (size_t)i * CQ_Q8_0_BYTES;
        int8x16_t l0, h0, l1, h1;
        cq_neon_q4_0(wb + 2, &l0, &h0);
        cq_neon_q4_0(wb + CQ_Q4_0_BYTES + 2, &l1, &h1);
        const int32x4_t p0 = cq_neon_dot32(l0, h0, vld1q_s8((const int8_t *)(xb + 2)), vld1q_s8((const int8_t *)(xb + 18)));
        const int32x4_t p1 = cq_neon_dot32(l1, h1, vld1q_s8((const int8_t *)(xb + 36)), vld1q_s8((const int8_t *)(xb + 52)));
        acc0 = vfmaq_n_f32(acc0, vcvtq_f32_s32(p0), cq_neon_f16(wb) * cq_neon_f16(xb));
        acc1 = vfmaq_n_f32(acc1, vcvtq_f32_s32(p1), cq_neon_f16(wb + CQ_Q4_0_BYTES) * cq_neon_f16(xb + CQ_Q8_0_BYTES));
    }
    for (; i < nblocks; i++) {
        const uint8_t *wb = w + (size_t)i * CQ_Q4_0_BYTES, *xb = x + (size_t)i * CQ_Q8_0_BYTES;
        int8x16_t l, h;
        cq_neon_q4_0(wb + 2, &l, &h);
        const int32x4_t p = cq_neon_dot32(l, h, vld1q_s8((const int8_t *)(xb + 2)), vld1q_s8((const int8_t *)(xb + 18)));
        acc0 = vfmaq_n_f32(acc0, vcvtq_f32_s32(p), cq_neon_f16(wb) * cq_neon_f16(xb));
    }
    return vaddvq_f32(vaddq_f32(acc0, acc1));
}

/// Q4_1 · Q8_1: d·dx·Σ q·qx + m·s per block (s: the activation block's F16 d·Σq), as llama.cpp and the AVX2 kernel.
static inline float cq_dot_q4_1_q8_1_neon(int nblocks, const uint8_t *w, const uint8_t *x) {
    float32x4_t acc = vdupq_n_f32(0.0f);
    float mins = 0.0f;
    for (int i = 0; i < nblocks; i++) {
        const uint8_t *wb = w + (size_t)i * CQ_Q4_1_BYTES, *xb = x + (size_t)i * CQ_Q8_1_BYTES;
        uint8x16_t l, h;
        cq_neon_nibbles(wb + 4, &l, &h);
        const int32x4_t p = cq_neon_dot32(vreinterpretq_s8_u8(l), vreinterpretq_s8_u8(h),
                                          vld1q_s8((const int8_t *)(xb + 4)), vld1q_s8((const int8_t *)(xb + 20)));
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(p), cq_neon_f16(wb) * cq_neon_f16(xb));
        mins += cq_neon_f16(wb + 2) * cq_neon_f16(xb + 2);
    }
    return vaddvq_f32(acc) + mins;
}

/// Q5_0 weights: (nibble | fifth bit << 4) - 16 as a signed byte: nibble | 0xF0 where the bit is clear.
static inline void cq_neon_q5(const uint8_t *qs, uint32_t qh, int8x16_t *lo, int8x16_t *hi) {
    uint8x16_t l, h;
    cq_neon_nibbles(qs, &l, &h);
    const uint8x16_t f0 = vdupq_n_u8(0xF0);
    *lo = vreinterpretq_s8_u8(vorrq_u8(l, vbicq_u8(f0, cq_neon_bits16(qh & 0xFFFF))));
    *hi = vreinterpretq_s8_u8(vorrq_u8(h, vbicq_u8(f0, cq_neon_bits16(qh >> 16))));
}

/// Q5_0 · Q8_0.
static inline float cq_dot_q5_0_q8_0_neon(int nblocks, const uint8_t *w, const uint8_t *x) {
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    int i = 0;
    for (; i + 1 < nblocks; i += 2) {
        const uint8_t *wb = w + (size_t)i * CQ_Q5_0_BYTES, *xb = x + (size_t)i * CQ_Q8_0_BYTES;
        uint32_t qh0, qh1;
        memcpy(&qh0, wb + 2, 4);
        memcpy(&qh1, wb + CQ_Q5_0_BYTES + 2, 4);
        int8x16_t l0, h0, l1, h1;
        cq_neon_q5(wb + 6, qh0, &l0, &h0);
        cq_neon_q5(wb + CQ_Q5_0_BYTES + 6, qh1, &l1, &h1);
        const int32x4_t p0 = cq_neon_dot32(l0, h0, vld1q_s8((const int8_t *)(xb + 2)), vld1q_s8((const int8_t *)(xb + 18)));
        const int32x4_t p1 = cq_neon_dot32(l1, h1, vld1q_s8((const int8_t *)(xb + 36)), vld1q_s8((const int8_t *)(xb + 52)));
        acc0 = vfmaq_n_f32(acc0, vcvtq_f32_s32(p0), cq_neon_f16(wb) * cq_neon_f16(xb));
        acc1 = vfmaq_n_f32(acc1, vcvtq_f32_s32(p1), cq_neon_f16(wb + CQ_Q5_0_BYTES) * cq_neon_f16(xb + CQ_Q8_0_BYTES));
    }
    for (; i < nblocks; i++) {
        const uint8_t *wb = w + (size_t)i * CQ_Q5_0_BYTES, *xb = x + (size_t)i * CQ_Q8_0_BYTES;
        uint32_t qh;
        memcpy(&qh, wb + 2, 4);
        int8x16_t l, h;
        cq_neon_q5(wb + 6, qh, &l, &h);
        const int32x4_t p = cq_neon_dot32(l, h, vld1q_s8((const int8_t *)(xb + 2)), vld1q_s8((const int8_t *)(xb + 18)));
        acc0 = vfmaq_n_f32(acc0, vcvtq_f32_s32(p), cq_neon_f16(wb) * cq_neon_f16(xb));
    }
    return vaddvq_f32(vaddq_f32(acc0, acc1));
}

/// Q5_1 · Q8_1: unsigned 5-bit quants, min term through the activation block's s (as Q4_1).
static inline float cq_dot_q5_1_q8_1_neon(int nblocks, const uint8_t *w, const uint8_t *x) {
    float32x4_t acc = vdupq_n_f32(0.0f);
    float mins = 0.0f;
    const uint8x16_t b4 = vdupq_n_u8(0x10);
    for (int i = 0; i < nblocks; i++) {
        const uint8_t *wb = w + (size_t)i * CQ_Q5_1_BYTES, *xb = x + (size_t)i * CQ_Q8_1_BYTES;
        uint32_t qh;
        memcpy(&qh, wb + 4, 4);
        uint8x16_t l, h;
        cq_neon_nibbles(wb + 8, &l, &h);
        l = vorrq_u8(l, vandq_u8(cq_neon_bits16(qh & 0xFFFF), b4));
        h = vorrq_u8(h, vandq_u8(cq_neon_bits16(qh >> 16), b4));
        const int32x4_t p = cq_neon_dot32(vreinterpretq_s8_u8(l), vreinterpretq_s8_u8(h),
                                          vld1q_s8((const int8_t *)(xb + 4)), vld1q_s8((const int8_t *)(xb + 20)));
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(p), cq_neon_f16(wb) * cq_neon_f16(xb));
        mins += cq_neon_f16(wb + 2) * cq_neon_f16(xb + 2);
    }
    return vaddvq_f32(acc) + mins;
}

/// IQ4_NL · Q8_0: nibbles index the non-linear table (a byte table lookup), then a signed dot.
static inline float cq_dot_iq4_nl_q8_0_neon(int nblocks, const uint8_t *w, const uint8_t *x) {
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    const int8x16_t table = vld1q_s8(cq_neon_iq4nl_table);
    for (int i = 0; i < nblocks; i++) {
        const uint8_t *wb = w + (size_t)i * CQ_IQ4_NL_BYTES, *xb = x + (size_t)i * CQ_Q8_0_BYTES;
        uint8x16_t l, h;
        cq_neon_nibbles(wb + 2, &l, &h);
        const int32x4_t p = cq_neon_dot32(vqtbl1q_s8(table, l), vqtbl1q_s8(table, h),
                                          vld1q_s8((const int8_t *)(xb + 2)), vld1q_s8((const int8_t *)(xb + 18)));
        const float d = cq_neon_f16(wb) * cq_neon_f16(xb);
        if (i & 1) acc1 = vfmaq_n_f32(acc1, vcvtq_f32_s32(p), d);
        else acc0 = vfmaq_n_f32(acc0, vcvtq_f32_s32(p), d);
    }
    return vaddvq_f32(vaddq_f32(acc0, acc1));
}

// ------------------------------------------------------------------------------------------------------------
// 256-element super-blocks with Q8_K activations (f32 d at 0, 256 int8 at 4, 16 int16 sums of 16 at 260)
// ------------------------------------------------------------------------------------------------------------

/// Σ_g m[g] · bsums[2g] + bsums[2g+1] over the 8 mins of a Q4_K/Q5_K block, in int32.
static inline int32_t cq_neon_k4_mins(const uint8_t mn[8], const uint8_t *xb) {
    const int16x8_t b0 = vld1q_s16((const int16_t *)(xb + 260)), b1 = vld1q_s16((const int16_t *)(xb + 276));
    const int32x4_t pair0 = vpaddlq_s16(b0), pair1 = vpaddlq_s16(b1);  // bsums of sub-blocks 0..3, 4..7
    const int16x8_t m16 = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(mn)));
    const int32x4_t m0 = vmovl_s16(vget_low_s16(m16)), m1 = vmovl_s16(vget_high_s16(m16));
    return vaddvq_s32(vmlaq_s32(vmulq_s32(pair0, m0), pair1, m1));
}

/// Q2_K · Q8_K: x = d·sc·q - dmin·m per 16 elements, q in 0..3.
static inline float cq_dot_q2_K_q8_K_neon(int nblocks, const uint8_t *w, const uint8_t *x) {
    float sum = 0.0f;
    const uint8x16_t m3 = vdupq_n_u8(3);
    for (int i = 0; i < nblocks; i++) {
        const uint8_t *wb = w + (size_t)i * CQ_Q2_K_BYTES, *xb = x + (size_t)i * CQ_Q8_K_BYTES;
        // mins: high nibbles of the 16 scale bytes, against the 16 bsums
        const uint8x16_t sb = vld1q_u8(wb);
        const int16x8_t mn0 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(vshrq_n_u8(sb, 4))));
        const int16x8_t mn1 = vreinterpretq_s16_u16(vmovl_u8(vget_high_u8(vshrq_n_u8(sb, 4))));
        const int16x8_t bs0 = vld1q_s16((const int16_t *)(xb + 260)), bs1 = vld1q_s16((const int16_t *)(xb + 276));
        int32x4_t mv = vmull_s16(vget_low_s16(mn0), vget_low_s16(bs0));
        mv = vmlal_s16(mv, vget_high_s16(mn0), vget_high_s16(bs0));
        mv = vmlal_s16(mv, vget_low_s16(mn1), vget_low_s16(bs1));
        mv = vmlal_s16(mv, vget_high_s16(mn1), vget_high_s16(bs1));
        const int32_t mins = vaddvq_s32(mv);
        const uint8_t *q8 = xb + 4;
        int32x4_t isum = vdupq_n_s32(0);
        for (int half = 0; half < 2; half++) {
            const uint8x16_t qa = vld1q_u8(wb + 16 + 32 * half), qb = vld1q_u8(wb + 32 + 32 * half);
            const uint8_t *sc = wb + 8 * half;
            for (int k = 0; k < 4; k++, q8 += 32) {
                const int8x16_t shift = vdupq_n_s8((int8_t)(-2 * k));
                const int8x16_t a = vreinterpretq_s8_u8(vandq_u8(vshlq_u8(qa, shift), m3));
                const int8x16_t c = vreinterpretq_s8_u8(vandq_u8(vshlq_u8(qb, shift), m3));
                const int32x4_t pa = cq_neon_dot(vdupq_n_s32(0), a, vld1q_s8((const int8_t *)q8));
                const int32x4_t pc = cq_neon_dot(vdupq_n_s32(0), c, vld1q_s8((const int8_t *)(q8 + 16)));
                isum = vmlaq_n_s32(isum, pa, sc[2 * k] & 0xF);
                isum = vmlaq_n_s32(isum, pc, sc[2 * k + 1] & 0xF);
            }
        }
        const float dy = cq_neon_f32(xb);
        sum += dy * cq_neon_f16(wb + 80) * (float)vaddvq_s32(isum) - dy * cq_neon_f16(wb + 82) * (float)mins;
    }
    return sum;
}

/// Q3_K · Q8_K: q = (2 low bits) - 4 where the high-mask bit is clear (low | 0xFC as a byte), signed 6-bit scales.
static inline float cq_dot_q3_K_q8_K_neon(int nblocks, const uint8_t *w, const uint8_t *x) {
    float sum = 0.0f;
    const uint8x16_t m3 = vdupq_n_u8(3), fc = vdupq_n_u8(0xFC);
    for (int i = 0; i < nblocks; i++) {
        const uint8_t *wb = w + (size_t)i * CQ_Q3_K_BYTES, *xb = x + (size_t)i * CQ_Q8_K_BYTES;
        const uint8x16_t hm0 = vld1q_u8(wb), hm1 = vld1q_u8(wb + 16);
        const uint8_t *q8 = xb + 4;
        int32x4_t isum = vdupq_n_s32(0);
        for (int half = 0; half < 2; half++) {
            const uint8x16_t qa = vld1q_u8(wb + 32 + 32 * half), qb = vld1q_u8(wb + 48 + 32 * half);
            for (int k = 0; k < 4; k++, q8 += 32) {
                const int8x16_t shift = vdupq_n_s8((int8_t)(-2 * k));
                const uint8x16_t bit = vdupq_n_u8((uint8_t)(1u << (4 * half + k)));
                const uint8x16_t a = vorrq_u8(vandq_u8(vshlq_u8(qa, shift), m3), vbicq_u8(fc, vtstq_u8(hm0, bit)));
                const uint8x16_t c = vorrq_u8(vandq_u8(vshlq_u8(qb, shift), m3), vbicq_u8(fc, vtstq_u8(hm1, bit)));
                const int32x4_t pa = cq_neon_dot(vdupq_n_s32(0), vreinterpretq_s8_u8(a), vld1q_s8((const int8_t *)q8));
                const int32x4_t pc = cq_neon_dot(vdupq_n_s32(0), vreinterpretq_s8_u8(c), vld1q_s8((const int8_t *)(q8 + 16)));
                isum = vmlaq_n_s32(isum, pa, cq_neon_q3k_scale(wb + 96, 8 * half + 2 * k));
                isum = vmlaq_n_s32(isum, pc, cq_neon_q3k_scale(wb + 96, 8 * half + 2 * k + 1));
            }
        }
        sum += cq_neon_f16(wb + 108) * cq_neon_f32(xb) * (float)vaddvq_s32(isum);
    }
    return sum;
}

/// Q4_K · Q8_K: x = d·sc·q - dmin·m per 32 elements (6-bit sc, m), q in 0..15.
static inline float cq_dot_q4_K_q8_K_neon(int nblocks, const uint8_t *w, const uint8_t *x) {
    float sum = 0.0f;
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    for (int i = 0; i < nblocks; i++) {
        const uint8_t *wb = w + (size_t)i * CQ_Q4_K_BYTES, *xb = x + (size_t)i * CQ_Q8_K_BYTES;
        uint8_t sc[8], mn[8];
        cq_neon_k4_scale_min(wb + 4, sc, mn);
        const int32_t mins = cq_neon_k4_mins(mn, xb);
        const uint8_t *q4 = wb + 16;
        const int8_t *q8 = (const int8_t *)(xb + 4);
        int32x4_t isum = vdupq_n_s32(0);
        for (int k = 0; k < 4; k++, q4 += 32, q8 += 64) {
            const uint8x16_t b0 = vld1q_u8(q4), b1 = vld1q_u8(q4 + 16);
            const int32x4_t plo = cq_neon_dot32(vreinterpretq_s8_u8(vandq_u8(b0, m4)), vreinterpretq_s8_u8(vandq_u8(b1, m4)),
                                                vld1q_s8(q8), vld1q_s8(q8 + 16));
            const int32x4_t phi = cq_neon_dot32(vreinterpretq_s8_u8(vshrq_n_u8(b0, 4)), vreinterpretq_s8_u8(vshrq_n_u8(b1, 4)),
                                                vld1q_s8(q8 + 32), vld1q_s8(q8 + 48));
            isum = vmlaq_n_s32(isum, plo, sc[2 * k]);
            isum = vmlaq_n_s32(isum, phi, sc[2 * k + 1]);
        }
        const float dy = cq_neon_f32(xb);
        sum += cq_neon_f16(wb) * dy * (float)vaddvq_s32(isum) - cq_neon_f16(wb + 2) * dy * (float)mins;
    }
    return sum;
}

/// Q5_K · Q8_K: as Q4_K with a fifth bit per element from qh (bit 2k for the low nibbles of chunk k, 2k+1 for the high).
static inline float cq_dot_q5_K_q8_K_neon(int nblocks, const uint8_t *w, const uint8_t *x) {
    float sum = 0.0f;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m1 = vdupq_n_u8(1), m2 = vdupq_n_u8(2);
    for (int i = 0; i < nblocks; i++) {
        const uint8_t *wb = w + (size_t)i * CQ_Q5_K_BYTES, *xb = x + (size_t)i * CQ_Q8_K_BYTES;
        uint8_t sc[8], mn[8];
        cq_neon_k4_scale_min(wb + 4, sc, mn);
        const int32_t mins = cq_neon_k4_mins(mn, xb);
        uint8x16_t h0 = vld1q_u8(wb + 16), h1 = vld1q_u8(wb + 32);
        const uint8_t *q5 = wb + 48;
        const int8_t *q8 = (const int8_t *)(xb + 4);
        int32x4_t isum = vdupq_n_s32(0);
        for (int k = 0; k < 4; k++, q5 += 32, q8 += 64) {
            const uint8x16_t b0 = vld1q_u8(q5), b1 = vld1q_u8(q5 + 16);
            const uint8x16_t lo0 = vorrq_u8(vandq_u8(b0, m4), vshlq_n_u8(vandq_u8(h0, m1), 4));
            const uint8x16_t lo1 = vorrq_u8(vandq_u8(b1, m4), vshlq_n_u8(vandq_u8(h1, m1), 4));
            const uint8x16_t hi0 = vorrq_u8(vshrq_n_u8(b0, 4), vshlq_n_u8(vandq_u8(h0, m2), 3));
            const uint8x16_t hi1 = vorrq_u8(vshrq_n_u8(b1, 4), vshlq_n_u8(vandq_u8(h1, m2), 3));
            h0 = vshrq_n_u8(h0, 2);
            h1 = vshrq_n_u8(h1, 2);
            const int32x4_t plo = cq_neon_dot32(vreinterpretq_s8_u8(lo0), vreinterpretq_s8_u8(lo1), vld1q_s8(q8), vld1q_s8(q8 + 16));
            const int32x4_t phi = cq_neon_dot32(vreinterpretq_s8_u8(hi0), vreinterpretq_s8_u8(hi1), vld1q_s8(q8 + 32), vld1q_s8(q8 + 48));
            isum = vmlaq_n_s32(isum, plo, sc[2 * k]);
            isum = vmlaq_n_s32(isum, phi, sc[2 * k + 1]);
        }
        const float dy = cq_neon_f32(xb);
        sum += cq_neon_f16(wb) * dy * (float)vaddvq_s32(isum) - cq_neon_f16(wb + 2) * dy * (float)mins;
    }
    return sum;
}

/// Q6_K · Q8_K: q = (low nibble | 2 high bits << 4) - 32 as a signed byte, int8 scale per 16 elements.
static inline float cq_dot_q6_K_q8_K_neon(int nblocks, const uint8_t *w, const uint8_t *x) {
    float sum = 0.0f;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m3 = vdupq_n_u8(0x30);
    const int8x16_t k32 = vdupq_n_s8(32);
    for (int i = 0; i < nblocks; i++) {
        const uint8_t *wb = w + (size_t)i * CQ_Q6_K_BYTES, *xb = x + (size_t)i * CQ_Q8_K_BYTES;
        const int8_t *q8 = (const int8_t *)(xb + 4);
        int32x4_t isum = vdupq_n_s32(0);
        for (int half = 0; half < 2; half++, q8 += 128) {
            const uint8_t *ql = wb + 64 * half, *qh = wb + 128 + 32 * half;
            const int8_t *sc = (const int8_t *)(wb + 192 + 8 * half);
            for (int part = 0; part < 2; part++) {  // l in 0..15, then 16..31: sub-blocks 2j + part
                const uint8x16_t a = vld1q_u8(ql + 16 * part), c = vld1q_u8(ql + 32 + 16 * part), h = vld1q_u8(qh + 16 * part);
                const uint8x16_t u0 = vorrq_u8(vandq_u8(a, m4), vandq_u8(vshlq_n_u8(h, 4), m3));
                const uint8x16_t u1 = vorrq_u8(vandq_u8(c, m4), vandq_u8(vshlq_n_u8(h, 2), m3));
                const uint8x16_t u2 = vorrq_u8(vshrq_n_u8(a, 4), vandq_u8(h, m3));
                const uint8x16_t u3 = vorrq_u8(vshrq_n_u8(c, 4), vandq_u8(vshrq_n_u8(h, 2), m3));
                const int8_t *y = q8 + 16 * part;
                const int32x4_t p0 = cq_neon_dot(vdupq_n_s32(0), vsubq_s8(vreinterpretq_s8_u8(u0), k32), vld1q_s8(y));
                const int32x4_t p1 = cq_neon_dot(vdupq_n_s32(0), vsubq_s8(vreinterpretq_s8_u8(u1), k32), vld1q_s8(y + 32));
                const int32x4_t p2 = cq_neon_dot(vdupq_n_s32(0), vsubq_s8(vreinterpretq_s8_u8(u2), k32), vld1q_s8(y + 64));
                const int32x4_t p3 = cq_neon_dot(vdupq_n_s32(0), vsubq_s8(vreinterpretq_s8_u8(u3), k32), vld1q_s8(y + 96));
                isum = vmlaq_n_s32(isum, p0, sc[part]);
                isum = vmlaq_n_s32(isum, p1, sc[2 + part]);
                isum = vmlaq_n_s32(isum, p2, sc[4 + part]);
                isum = vmlaq_n_s32(isum, p3, sc[6 + part]);
            }
        }
        sum += cq_neon_f16(wb + 208) * cq_neon_f32(xb) * (float)vaddvq_s32(isum);
    }
    return sum;
}

/// IQ4_XS · Q8_K: 8 sub-blocks of 32 with 6-bit scales (minus 32); nibbles index the IQ4_NL table.
static inline float cq_dot_iq4_xs_q8_K_neon(int nblocks, const uint8_t *w, const uint8_t *x) {
    float sum = 0.0f;
    const int8x16_t table = vld1q_s8(cq_neon_iq4nl_table);
    for (int i = 0; i < nblocks; i++) {
        const uint8_t *wb = w + (size_t)i * CQ_IQ4_XS_BYTES, *xb = x + (size_t)i * CQ_Q8_K_BYTES;
        const int8_t *q8 = (const int8_t *)(xb + 4);
        int32x4_t isum = vdupq_n_s32(0);
        for (int ib = 0; ib < 8; ib++, q8 += 32) {
            uint8x16_t l, h;
            cq_neon_nibbles(wb + 8 + 16 * ib, &l, &h);
            const int32x4_t p = cq_neon_dot32(vqtbl1q_s8(table, l), vqtbl1q_s8(table, h), vld1q_s8(q8), vld1q_s8(q8 + 16));
            isum = vmlaq_n_s32(isum, p, cq_neon_iq4xs_scale(wb, ib));
        }
        sum += cq_neon_f16(wb) * cq_neon_f32(xb) * (float)vaddvq_s32(isum);
    }
    return sum;
}

// ------------------------------------------------------------------------------------------------------------
// F16 / BF16 rows with F32 activations (F16/BF16 weights, the F16 KV cache)
// ------------------------------------------------------------------------------------------------------------

static inline float32x4_t cq_neon_bf16_lo(uint16x8_t v) { return vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(v), 16)); }
static inline float32x4_t cq_neon_bf16_hi(uint16x8_t v) { return vreinterpretq_f32_u32(vshll_high_n_u16(v, 16)); }
static inline float cq_neon_bf16_scalar(uint16_t b) { const uint32_t u = (uint32_t)b << 16; float f; memcpy(&f, &u, 4); return f; }

/// Σ w[i]·x[i] with F16 weights and F32 activations.
static inline float cq_dot_f16_f32_neon(int n, const uint16_t *w, const float *x) {
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        const float16x8_t h0 = vreinterpretq_f16_u16(vld1q_u16(w + i)), h1 = vreinterpretq_f16_u16(vld1q_u16(w + i + 8));
        a0 = vfmaq_f32(a0, vcvt_f32_f16(vget_low_f16(h0)), vld1q_f32(x + i));
        a1 = vfmaq_f32(a1, vcvt_high_f32_f16(h0), vld1q_f32(x + i + 4));
        a2 = vfmaq_f32(a2, vcvt_f32_f16(vget_low_f16(h1)), vld1q_f32(x + i + 8));
        a3 = vfmaq_f32(a3, vcvt_high_f32_f16(h1), vld1q_f32(x + i + 12));
    }
    for (; i + 4 <= n; i += 4)
        a0 = vfmaq_f32(a0, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(w + i))), vld1q_f32(x + i));
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
    for (; i < n; i++) s += cq_neon_f16((const uint8_t *)(w + i)) * x[i];
    return s;
}

/// Σ w[i]·x[i] with BF16 weights and F32 activations.
static inline float cq_dot_bf16_f32_neon(int n, const uint16_t *w, const float *x) {
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        const uint16x8_t b0 = vld1q_u16(w + i), b1 = vld1q_u16(w + i + 8);
        a0 = vfmaq_f32(a0, cq_neon_bf16_lo(b0), vld1q_f32(x + i));
        a1 = vfmaq_f32(a1, cq_neon_bf16_hi(b0), vld1q_f32(x + i + 4));
        a2 = vfmaq_f32(a2, cq_neon_bf16_lo(b1), vld1q_f32(x + i + 8));
        a3 = vfmaq_f32(a3, cq_neon_bf16_hi(b1), vld1q_f32(x + i + 12));
    }
    for (; i + 4 <= n; i += 4)
        a0 = vfmaq_f32(a0, vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(w + i), 16)), vld1q_f32(x + i));
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
    for (; i < n; i++) s += cq_neon_bf16_scalar(w[i]) * x[i];
    return s;
}

/// y[i] += a · w[i] with F16 w (the attention's V accumulation over an F16 cache).
static inline void cq_axpy_f16_neon(int n, float a, const uint16_t *w, float *y) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(w + i));
        vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vcvt_f32_f16(vget_low_f16(h)), a));
        vst1q_f32(y + i + 4, vfmaq_n_f32(vld1q_f32(y + i + 4), vcvt_high_f32_f16(h), a));
    }
    for (; i < n; i++) y[i] += a * cq_neon_f16((const uint8_t *)(w + i));
}

/// Converts n floats to F16 (round to nearest even; NaN stays NaN, quieted, with its top payload bits).
static inline void cq_f32_to_f16_row_neon(int n, const float *x, uint16_t *y) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const float16x8_t h = vcvt_high_f16_f32(vcvt_f16_f32(vld1q_f32(x + i)), vld1q_f32(x + i + 4));
        vst1q_u16(y + i, vreinterpretq_u16_f16(h));
    }
    for (; i < n; i++) y[i] = cq_neon_to_f16(x[i]);
}

/// Converts n F16 values to floats.
static inline void cq_f16_to_f32_row_neon(int n, const uint16_t *x, float *y) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(x + i));
        vst1q_f32(y + i, vcvt_f32_f16(vget_low_f16(h)));
        vst1q_f32(y + i + 4, vcvt_high_f32_f16(h));
    }
    for (; i < n; i++) y[i] = cq_neon_f16((const uint8_t *)(x + i));
}

/// Converts n BF16 values to floats.
static inline void cq_bf16_to_f32_row_neon(int n, const uint16_t *x, float *y) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const uint16x8_t v = vld1q_u16(x + i);
        vst1q_f32(y + i, cq_neon_bf16_lo(v));
        vst1q_f32(y + i + 4, cq_neon_bf16_hi(v));
    }
    for (; i < n; i++) y[i] = cq_neon_bf16_scalar(x[i]);
}

#endif /* __aarch64__ */

#endif /* CQWEN_NEON_H */
