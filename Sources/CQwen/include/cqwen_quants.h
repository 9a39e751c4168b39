// AVX2 row kernels for the llama.cpp block types beyond Q8_0/Q4_0: Q5_0, IQ4_NL (with Q8_0 activations),
// Q4_1, Q5_1 (with Q8_1 activations) and Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS (with Q8_K activations), plus Q8_1 and
// Q8_K activation quantization. Block layouts are llama.cpp's (ggml-common.h); the portable Swift versions in
// Sources/QwenTensors/Quants are the reference these are tested against.
//
// Scheme: weights are unpacked to bytes, multiplied with the int8 activations by maddubs (unsigned x signed)
// into int16 pairs, widened with a per-sub-block integer scale by madd into int32, so each block's integer
// sum is exact; the float scales are applied once per block (per super-block for the K types). Constant
// offsets (-16, -32, -4, mins) are folded into the activations' per-16 sums (Q8_K bsums) where possible.
// Nothing here traps on hostile data: NaN/Inf scales only give NaN/Inf results.
#ifndef CQWEN_QUANTS_H
#define CQWEN_QUANTS_H

#include "cqwen.h"

// ---- Block sizes (bytes) ----
#define CQ_Q4_1_BYTES 20   /* f16 d, f16 m, 16 bytes of nibbles (low = 0..15, high = 16..31) */
#define CQ_Q5_0_BYTES 22   /* f16 d, u32 high bits, 16 bytes of nibbles */
#define CQ_Q5_1_BYTES 24   /* f16 d, f16 m, u32 high bits, 16 bytes of nibbles */
#define CQ_IQ4_NL_BYTES 18 /* f16 d, 16 bytes of nibbles indexing the non-linear table */
#define CQ_Q2_K_BYTES 84   /* 16 scale|min bytes, 64 bytes of 2-bit quants, f16 d, f16 dmin */
#define CQ_Q3_K_BYTES 110  /* 32 bytes high-bit mask, 64 bytes of 2-bit quants, 12 bytes of 6-bit scales, f16 d */
#define CQ_Q4_K_BYTES 144  /* f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles */
#define CQ_Q5_K_BYTES 176  /* f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 32 bytes high bits, 128 bytes of nibbles */
#define CQ_Q6_K_BYTES 210  /* 128 bytes low nibbles, 64 bytes high 2 bits, 16 int8 scales, f16 d */
#define CQ_IQ4_XS_BYTES 136 /* f16 d, u16 scale high bits, 4 bytes scale low nibbles, 128 bytes of nibbles */
#define CQ_Q8_K_BYTES 292  /* f32 d, 256 int8, 16 int16 sums of 16 */
#define CQ_Q8_1_BYTES 36   /* f16 d, f16 s = d·Σq (d before its rounding to F16), 32 int8 */

static const int8_t cq_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

static inline float cq_load_f16(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return cq_f16_to_f32(h); }
static inline float cq_load_f32(const uint8_t *p) { float f; memcpy(&f, p, 4); return f; }

/// The 8 six-bit scales and 8 six-bit mins of a Q4_K/Q5_K block (12 packed bytes).
static inline void cq_unpack_k4_scales(const uint8_t *packed, uint8_t scales[8], uint8_t mins[8]) {
    uint32_t s[3], out[4];
    memcpy(s, packed, 12);
    out[0] = s[0] & 0x3f3f3f3fu;                                                 // scales 0..3
    out[1] = (s[2] & 0x0f0f0f0fu) | (((s[0] >> 6) & 0x03030303u) << 4);          // scales 4..7
    out[2] = s[1] & 0x3f3f3f3fu;                                                 // mins 0..3
    out[3] = ((s[2] >> 4) & 0x0f0f0f0fu) | (((s[1] >> 6) & 0x03030303u) << 4);   // mins 4..7
    memcpy(scales, out, 8);
    memcpy(mins, out + 2, 8);
}

/// The 16 six-bit scales of a Q3_K block (12 packed bytes), minus 32, as int8.
static inline void cq_unpack_q3k_scales(const uint8_t *packed, int8_t scales[16]) {
    uint32_t s[3], out[4];
    memcpy(s, packed, 12);
    out[0] = (s[0] & 0x0f0f0f0fu) | (((s[2] >> 0) & 0x03030303u) << 4);
    out[1] = (s[1] & 0x0f0f0f0fu) | (((s[2] >> 2) & 0x03030303u) << 4);
    out[2] = ((s[0] >> 4) & 0x0f0f0f0fu) | (((s[2] >> 4) & 0x03030303u) << 4);
    out[3] = ((s[1] >> 4) & 0x0f0f0f0fu) | (((s[2] >> 6) & 0x03030303u) << 4);
    uint8_t u[16];
    memcpy(u, out, 16);
    for (int j = 0; j < 16; j++) scales[j] = (int8_t)(u[j] - 32);
}

/// Scale of IQ4_XS sub-block ib (0..7), minus 32.
static inline int cq_iq4xs_scale(const uint8_t *block, int ib) {
    uint16_t h; memcpy(&h, block + 2, 2);
    return (((block[4 + ib / 2] >> (4 * (ib % 2))) & 0xf) | (((h >> (2 * ib)) & 3) << 4)) - 32;
}

#if defined(CQ_HAVE_AVX2)

static inline __m256i cq_ones_u8(void) { return _mm256_set1_epi8(1); }
static inline __m256i cq_ones_i16(void) { return _mm256_set1_epi16(1); }

/// 16 packed bytes -> 32 bytes: low nibbles (elements 0..15) then high nibbles (16..31).
static inline __m256i cq_nibbles32(const uint8_t *p) {
    __m128i packed = _mm_loadu_si128((const __m128i *)p);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0f));
}

/// 32 bits -> 32 bytes: byte j is 0xFF when bit j is set, else 0.
static inline __m256i cq_bits_to_bytes32(uint32_t bits) {
    __m256i v = _mm256_set1_epi32((int)bits);
    // byte j takes byte j/8 of `bits` (shuffles stay within 128-bit lanes; both lanes hold all 4 bytes)
    const __m256i pick = _mm256_setr_epi64x(0x0000000000000000LL, 0x0101010101010101LL,
                                            0x0202020202020202LL, 0x0303030303030303LL);
    v = _mm256_shuffle_epi8(v, pick);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

/// Σ of 32 unsigned weight bytes times 32 signed activation bytes, as 8 int32 lanes (no saturation when the
/// unsigned bytes are < 64 and the activations within ±127).
static inline __m256i cq_dot32_u8i8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), cq_ones_i16());
}

// ------------------------------------------------------------------------------------------------------------
// 32-element blocks with Q8_0 / Q8_1 activations
// ------------------------------------------------------------------------------------------------------------

/// Q4_1 · Q8_1, as llama.cpp: Σ (d·q + m)·dx·qx = d·dx·Σ q·qx + m·s, where s is the activation block's
/// F16 d·Σqx (llama.cpp rounds it so; taking the exact sum instead moves logits by up to ~1e-4 in cosine).
static inline float cq_dot_q4_1_q8_1_avx2(int nblocks, const uint8_t *w, const uint8_t *x) {
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.0f;
    for (int i = 0; i < nblocks; i++) {
        const uint8_t *wb = w + (size_t)i * CQ_Q4_1_BYTES, *xb = x + (size_t)i * CQ_Q8_1_BYTES;
        mins += cq_load_f16(wb + 2) * cq_load_f16(xb + 2);
        const __m256i y = _mm256_loadu_si256((const __m256i *)(xb + 4));
        const __m256 p = _mm256_cvtepi32_ps(cq_dot32_u8i8(cq_nibbles32(wb + 4), y));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(cq_load_f16(wb) * cq_load_f16(xb)), p, acc);
    }
    return cq_hsum256(acc) + mins;
}

/// Q5_0 · Q8_0: the fifth bit completes each nibble; q - 16 is formed directly as a signed byte.
static inline float cq_dot_q5_0_q8_0_avx2(int nblocks, const uint8_t *w, const uint8_t *x) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    const __m256i f0 = _mm256_set1_epi8((char)0xF0);
    for (int i = 0; i < nblocks; i++) {
        const uint8_t *wb = w + (size_t)i * CQ_Q5_0_BYTES, *xb = x + (size_t)i * CQ_Q8_0_BYTES;
        uint32_t qh; memcpy(&qh, wb + 2, 4);
        // nibble | 0xF0 is nibble - 16 as int8 (high bit clear); nibble alone is nibble + 16 - 16 (bit set)
        const __m256i q = _mm256_or_si256(cq_nibbles32(wb + 6), _mm256_andnot_si256(cq_bits_to_bytes32(qh), f0));
        const __m256 p = _mm256_cvtepi32_ps(cq_dot32_i8(q, _mm256_loadu_si256((const __m256i *)(xb + 2))));
        const __m256 d = _mm256_set1_ps(cq_load_f16(wb) * cq_load_f16(xb));
        if (i & 1) acc1 = _mm256_fmadd_ps(d, p, acc1);
        else acc0 = _mm256_fmadd_ps(d, p, acc0);
    }
    return cq_hsum256(_mm256_add_ps(acc0, acc1));
}

/// Q5_1 · Q8_1: unsigned 5-bit quants, min term through the activation block's s (as Q4_1).
static inline float cq_dot_q5_1_q8_1_avx2(int nblocks, const uint8_t *w, const uint8_t *x) {
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.0f;
    const __m256i b4 = _mm256_set1_epi8(0x10);
    for (int i = 0; i < nblocks; i++) {
        const uint8_t *wb = w + (size_t)i * CQ_Q5_1_BYTES, *xb = x + (size_t)i * CQ_Q8_1_BYTES;
        uint32_t qh; memcpy(&qh, wb + 4, 4);
        mins += cq_load_f16(wb + 2) * cq_load_f16(xb + 2);
        const __m256i q = _mm256_or_si256(cq_nibbles32(wb + 8), _mm256_and_si256(cq_bits_to_bytes32(qh), b4));
        const __m256 p = _mm256_cvtepi32_ps(cq_dot32_u8i8(q, _mm256_loadu_si256((const __m256i *)(xb + 4))));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(cq_load_f16(wb) * cq_load_f16(xb)), p, acc);
    }
    return cq_hsum256(acc) + mins;
}

/// The IQ4_NL table in both 128-bit lanes (for byte shuffles).
static inline __m256i cq_iq4nl_table(void) {
    const __m128i t = _mm_loadu_si128((const __m128i *)cq_iq4nl_values);
    return _mm256_set_m128i(t, t);
}

/// IQ4_NL · Q8_0: nibbles index the non-linear table (a byte shuffle), then a signed int8 dot.
static inline float cq_dot_iq4_nl_q8_0_avx2(int nblocks, const uint8_t *w, const uint8_t *x) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    const __m256i table = cq_iq4nl_table();
    for (int i = 0; i < nblocks; i++) {
        const uint8_t *wb = w + (size_t)i * CQ_IQ4_NL_BYTES, *xb = x + (size_t)i * CQ_Q8_0_BYTES;
        const __m256i q = _mm256_shuffle_epi8(table, cq_nibbles32(wb + 2));
        const __m256 p = _mm256_cvtepi32_ps(cq_dot32_i8(q, _mm256_loadu_si256((const __m256i *)(xb + 2))));
        const __m256 d = _mm256_set1_ps(cq_load_f16(wb) * cq_load_f16(xb));
        if (i & 1) acc1 = _mm256_fmadd_ps(d, p, acc1);
        else acc0 = _mm256_fmadd_ps(d, p, acc0);
    }
    return cq_hsum256(_mm256_add_ps(acc0, acc1));
}

// ------------------------------------------------------------------------------------------------------------
// 256-element super-blocks with Q8_K activations
// ------------------------------------------------------------------------------------------------------------

/// int16 scales of sub-blocks (2k, 2k+1) of a group of 8, broadcast to the low / high 128-bit lane:
/// `lane` holds 8 int16 scales in each 128-bit half; returns lanes 0..7 = scale[2k], 8..15 = scale[2k+1].
static inline __m256i cq_pick_scale_pair(__m256i lane, int k) {
    const int lo = 4 * k, hi = 4 * k + 2;
    const __m256i pick = _mm256_set_m128i(_mm_set1_epi16((short)(((hi + 1) << 8) | hi)),
                                          _mm_set1_epi16((short)(((lo + 1) << 8) | lo)));
    return _mm256_shuffle_epi8(lane, pick);
}

/// 16 int16 scales -> two vectors holding scales 0..7 resp. 8..15 in both 128-bit lanes.
static inline void cq_scale_lanes(__m256i scales16, __m256i out[2]) {
    const __m128i lo = _mm256_castsi256_si128(scales16), hi = _mm256_extracti128_si256(scales16, 1);
    out[0] = _mm256_set_m128i(lo, lo);
    out[1] = _mm256_set_m128i(hi, hi);
}

/// Q2_K · Q8_K: x = d·sc·q - dmin·m per 16 elements, q in 0..3.
static inline float cq_dot_q2_K_q8_K_avx2(int nblocks, const uint8_t *w, const uint8_t *x) {
    __m256 acc = _mm256_setzero_ps();
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m128i m4 = _mm_set1_epi8(0x0f);
    for (int i = 0; i < nblocks; i++) {
        const uint8_t *wb = w + (size_t)i * CQ_Q2_K_BYTES, *xb = x + (size_t)i * CQ_Q8_K_BYTES;
        const float dy = cq_load_f32(xb);
        const __m128i packed = _mm_loadu_si128((const __m128i *)wb);
        const __m256i scales16 = _mm256_cvtepu8_epi16(_mm_and_si128(packed, m4));
        const __m256i mins16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), m4));
        const __m256i bsums = _mm256_loadu_si256((const __m256i *)(xb + 260));
        const __m256i summ = _mm256_madd_epi16(mins16, bsums);
        __m256i lanes[2];
        cq_scale_lanes(scales16, lanes);
        const uint8_t *q2 = wb + 16;
        const uint8_t *q8 = xb + 4;
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++, q2 += 32) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)q2);
            for (int k = 0; k < 4; k++, q8 += 32) {
                const __m256i q = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * k), m3);
                const __m256i p = _mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)q8));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, cq_pick_scale_pair(lanes[h], k)));
            }
        }
        const float d = cq_load_f16(wb + 80) * dy, dmin = cq_load_f16(wb + 82) * dy;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        acc = _mm256_fnmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(summ), acc);
    }
    return cq_hsum256(acc);
}

/// Q3_K · Q8_K: q = (2 low bits) + 4·(high bit) - 4, signed 6-bit scales; the -4 goes through the bsums.
static inline float cq_dot_q3_K_q8_K_avx2(int nblocks, const uint8_t *w, const uint8_t *x) {
    __m256 acc = _mm256_setzero_ps();
    const __m256i m3 = _mm256_set1_epi8(3), m1 = _mm256_set1_epi8(1);
    for (int i = 0; i < nblocks; i++) {
        const uint8_t *wb = w + (size_t)i * CQ_Q3_K_BYTES, *xb = x + (size_t)i * CQ_Q8_K_BYTES;
        int8_t sc[16];
        cq_unpack_q3k_scales(wb + 96, sc);
        const __m256i scales16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
        const __m256i bsums = _mm256_loadu_si256((const __m256i *)(xb + 260));
        const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(scales16, bsums), 2);  // 4·Σ sc·bsum
        __m256i lanes[2];
        cq_scale_lanes(scales16, lanes);
        __m256i hbits = _mm256_loadu_si256((const __m256i *)wb);
        const uint8_t *q3 = wb + 32;
        const uint8_t *q8 = xb + 4;
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++, q3 += 32) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)q3);
            for (int k = 0; k < 4; k++, q8 += 32) {
                const __m256i hb = _mm256_slli_epi16(_mm256_and_si256(hbits, m1), 2);
                hbits = _mm256_srli_epi16(hbits, 1);
                const __m256i q = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 2 * k), m3), hb);
                const __m256i p = _mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)q8));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, cq_pick_scale_pair(lanes[h], k)));
            }
        }
        sumi = _mm256_sub_epi32(sumi, offset);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(cq_load_f16(wb + 108) * cq_load_f32(xb)), _mm256_cvtepi32_ps(sumi), acc);
    }
    return cq_hsum256(acc);
}

/// Q4_K · Q8_K: x = d·sc·q - dmin·m per 32 elements (6-bit sc, m), q in 0..15.
static inline float cq_dot_q4_K_q8_K_avx2(int nblocks, const uint8_t *w, const uint8_t *x) {
    __m256 acc = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    // each of the 8 mins applies to two adjacent bsums (16 + 16 elements)
    const __m128i dup = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    for (int i = 0; i < nblocks; i++) {
        const uint8_t *wb = w + (size_t)i * CQ_Q4_K_BYTES, *xb = x + (size_t)i * CQ_Q8_K_BYTES;
        uint8_t sc[8], mn[8];
        cq_unpack_k4_scales(wb + 4, sc, mn);
        const __m256i mins16 = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(_mm_loadl_epi64((const __m128i *)mn), dup));
        const __m256i summ = _mm256_madd_epi16(mins16, _mm256_loadu_si256((const __m256i *)(xb + 260)));
        const uint8_t *q4 = wb + 16;
        const uint8_t *q8 = xb + 4;
        __m256i sumi = _mm256_setzero_si256();
        for (int k = 0; k < 4; k++, q4 += 32, q8 += 64) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)q4);
            const __m256i lo = _mm256_and_si256(bits, m4), hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            const __m256i plo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)q8));
            const __m256i phi = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 32)));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(plo, _mm256_set1_epi16(sc[2 * k])));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(phi, _mm256_set1_epi16(sc[2 * k + 1])));
        }
        const float dy = cq_load_f32(xb);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(cq_load_f16(wb) * dy), _mm256_cvtepi32_ps(sumi), acc);
        acc = _mm256_fnmadd_ps(_mm256_set1_ps(cq_load_f16(wb + 2) * dy), _mm256_cvtepi32_ps(summ), acc);
    }
    return cq_hsum256(acc);
}

/// Q5_K · Q8_K: as Q4_K with a fifth bit per element from qh (bit 2k for the low nibbles of chunk k, 2k+1 for the high).
static inline float cq_dot_q5_K_q8_K_avx2(int nblocks, const uint8_t *w, const uint8_t *x) {
    __m256 acc = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0f), m1 = _mm256_set1_epi8(1);
    const __m128i dup = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    for (int i = 0; i < nblocks; i++) {
        const uint8_t *wb = w + (size_t)i * CQ_Q5_K_BYTES, *xb = x + (size_t)i * CQ_Q8_K_BYTES;
        uint8_t sc[8], mn[8];
        cq_unpack_k4_scales(wb + 4, sc, mn);
        const __m256i mins16 = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(_mm_loadl_epi64((const __m128i *)mn), dup));
        const __m256i summ = _mm256_madd_epi16(mins16, _mm256_loadu_si256((const __m256i *)(xb + 260)));
        __m256i hbits = _mm256_loadu_si256((const __m256i *)(wb + 16));
        const uint8_t *q5 = wb + 48;
        const uint8_t *q8 = xb + 4;
        __m256i sumi = _mm256_setzero_si256();
        for (int k = 0; k < 4; k++, q5 += 32, q8 += 64) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)q5);
            const __m256i hlo = _mm256_slli_epi16(_mm256_and_si256(hbits, m1), 4);
            const __m256i hhi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 1), m1), 4);
            hbits = _mm256_srli_epi16(hbits, 2);
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(bits, m4), hlo);
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4), hhi);
            const __m256i plo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)q8));
            const __m256i phi = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 32)));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(plo, _mm256_set1_epi16(sc[2 * k])));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(phi, _mm256_set1_epi16(sc[2 * k + 1])));
        }
        const float dy = cq_load_f32(xb);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(cq_load_f16(wb) * dy), _mm256_cvtepi32_ps(sumi), acc);
        acc = _mm256_fnmadd_ps(_mm256_set1_ps(cq_load_f16(wb + 2) * dy), _mm256_cvtepi32_ps(summ), acc);
    }
    return cq_hsum256(acc);
}

/// Q6_K · Q8_K: q = (low nibble | 2 high bits << 4) - 32, int8 scale per 16 elements; the -32 goes through the bsums.
static inline float cq_dot_q6_K_q8_K_avx2(int nblocks, const uint8_t *w, const uint8_t *x) {
    __m256 acc = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(3);
    for (int i = 0; i < nblocks; i++) {
        const uint8_t *wb = w + (size_t)i * CQ_Q6_K_BYTES, *xb = x + (size_t)i * CQ_Q8_K_BYTES;
        const __m256i scales16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wb + 192)));
        const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(scales16, _mm256_loadu_si256((const __m256i *)(xb + 260))), 5);
        __m256i lanes[2];
        cq_scale_lanes(scales16, lanes);
        const uint8_t *ql = wb, *qh = wb + 128;
        const uint8_t *q8 = xb + 4;
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++, ql += 64, qh += 32, q8 += 128) {
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql), l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            const __m256i hb = _mm256_loadu_si256((const __m256i *)qh);
            const __m256i q0 = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m3), 4));
            const __m256i q1 = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m3), 4));
            const __m256i q2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m3), 4));
            const __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m3), 4));
            const __m256i p0 = _mm256_maddubs_epi16(q0, _mm256_loadu_si256((const __m256i *)q8));
            const __m256i p1 = _mm256_maddubs_epi16(q1, _mm256_loadu_si256((const __m256i *)(q8 + 32)));
            const __m256i p2 = _mm256_maddubs_epi16(q2, _mm256_loadu_si256((const __m256i *)(q8 + 64)));
            const __m256i p3 = _mm256_maddubs_epi16(q3, _mm256_loadu_si256((const __m256i *)(q8 + 96)));
            const __m256i s01 = _mm256_add_epi32(_mm256_madd_epi16(p0, cq_pick_scale_pair(lanes[h], 0)),
                                                 _mm256_madd_epi16(p1, cq_pick_scale_pair(lanes[h], 1)));
            const __m256i s23 = _mm256_add_epi32(_mm256_madd_epi16(p2, cq_pick_scale_pair(lanes[h], 2)),
                                                 _mm256_madd_epi16(p3, cq_pick_scale_pair(lanes[h], 3)));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(s01, s23));
        }
        sumi = _mm256_sub_epi32(sumi, offset);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(cq_load_f16(wb + 208) * cq_load_f32(xb)), _mm256_cvtepi32_ps(sumi), acc);
    }
    return cq_hsum256(acc);
}

/// IQ4_XS · Q8_K: 8 sub-blocks of 32 with 6-bit scales (minus 32); nibbles index the IQ4_NL table.
static inline float cq_dot_iq4_xs_q8_K_avx2(int nblocks, const uint8_t *w, const uint8_t *x) {
    __m256 acc = _mm256_setzero_ps();
    const __m256i table = cq_iq4nl_table();
    for (int i = 0; i < nblocks; i++) {
        const uint8_t *wb = w + (size_t)i * CQ_IQ4_XS_BYTES, *xb = x + (size_t)i * CQ_Q8_K_BYTES;
        const uint8_t *qs = wb + 8;
        const uint8_t *q8 = xb + 4;
        __m256i sumi = _mm256_setzero_si256();
        for (int ib = 0; ib < 8; ib += 2, qs += 32, q8 += 64) {
            const __m256i qa = _mm256_shuffle_epi8(table, cq_nibbles32(qs));
            const __m256i qb = _mm256_shuffle_epi8(table, cq_nibbles32(qs + 16));
            const __m256i ya = _mm256_loadu_si256((const __m256i *)q8), yb = _mm256_loadu_si256((const __m256i *)(q8 + 32));
            // |q| · sign(y, q): pairs stay within int16 (2 · 127 · 127)
            const __m256i pa = _mm256_maddubs_epi16(_mm256_sign_epi8(qa, qa), _mm256_sign_epi8(ya, qa));
            const __m256i pb = _mm256_maddubs_epi16(_mm256_sign_epi8(qb, qb), _mm256_sign_epi8(yb, qb));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(pa, _mm256_set1_epi16((short)cq_iq4xs_scale(wb, ib))));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(pb, _mm256_set1_epi16((short)cq_iq4xs_scale(wb, ib + 1))));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(cq_load_f16(wb) * cq_load_f32(xb)), _mm256_cvtepi32_ps(sumi), acc);
    }
    return cq_hsum256(acc);
}

/// Quantizes `n` floats (a multiple of 32) to Q8_1 blocks as llama.cpp's x86 quantize_row_q8_1: d = max|x| / 127
/// (stored as F16), q = round-half-even(x · 127 / max|x|) (the same bytes as Q8_0), s = F16(d · Σq) with d before
/// rounding. NaN elements do not take part in the maximum (a NaN quant becomes -128); the portable Swift version
/// gives the same bytes for any input.
static inline void cq_quantize_row_q8_1_avx2(const float *x, uint8_t *y, int n) {
    const __m256 signBit = _mm256_set1_ps(-0.0f);
    for (int b = 0; b < n / 32; b++, x += 32, y += CQ_Q8_1_BYTES) {
        const __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8), v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        __m256 m = _mm256_setzero_ps();  // max(a, m) returns m when a is NaN
        m = _mm256_max_ps(_mm256_andnot_ps(signBit, v0), m);
        m = _mm256_max_ps(_mm256_andnot_ps(signBit, v1), m);
        m = _mm256_max_ps(_mm256_andnot_ps(signBit, v2), m);
        m = _mm256_max_ps(_mm256_andnot_ps(signBit, v3), m);
        __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const float d = amax / 127.0f;
        const __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
#define CQ_RNE (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
        const __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, id), CQ_RNE));
        const __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, id), CQ_RNE));
        const __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, id), CQ_RNE));
        const __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, id), CQ_RNE));
#undef CQ_RNE
        // the sum of the unclamped int32 values, as llama.cpp takes it (they are within ±127 for finite inputs)
        const __m256i t = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
        __m128i t4 = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
        t4 = _mm_add_epi32(t4, _mm_shuffle_epi32(t4, _MM_SHUFFLE(1, 0, 3, 2)));
        t4 = _mm_add_epi32(t4, _mm_shuffle_epi32(t4, _MM_SHUFFLE(2, 3, 0, 1)));
        const int32_t sum = _mm_cvtsi128_si32(t4);
        const uint16_t dh = (uint16_t)_cvtss_sh(d, 0), sh = (uint16_t)_cvtss_sh(d * (float)sum, 0);
        memcpy(y, &dh, 2);
        memcpy(y + 2, &sh, 2);
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(y + 4), p);
    }
}

/// Quantizes `n` floats (a multiple of 256) to Q8_K blocks exactly as llama.cpp's quantize_row_q8_K_ref:
/// iscale = -127 / (the element of largest magnitude, the first one on ties), q = min(127, round-half-even(iscale·x)),
/// d = 1 / iscale, plus the 16 sums of 16 quants. Bit for bit the same as the portable Swift version, NaN/Inf
/// included (a NaN product becomes -128), and never a trap.
static inline void cq_quantize_row_q8_K_avx2(const float *x, uint8_t *y, int n) {
    const __m256 signBit = _mm256_set1_ps(-0.0f);
    for (int b = 0; b < n / 256; b++, x += 256, y += CQ_Q8_K_BYTES) {
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < 256; j += 8)
            m = _mm256_max_ps(_mm256_andnot_ps(signBit, _mm256_loadu_ps(x + j)), m);  // NaN lanes keep m
        __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        if (amax == 0.0f) {  // (also when every element is NaN or zero)
            memset(y, 0, CQ_Q8_K_BYTES);
            continue;
        }
        // the first element of largest magnitude gives the sign
        float max = amax;
        const __m256 va = _mm256_set1_ps(amax);
        for (int j = 0; j < 256; j += 8) {
            const int mask = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(signBit, _mm256_loadu_ps(x + j)), va, _CMP_EQ_OQ));
            if (mask) { max = x[j + __builtin_ctz((unsigned)mask)]; break; }
        }
        const float iscale = -127.0f / max;
        const __m256 vs = _mm256_set1_ps(iscale);
        const __m256i limit = _mm256_set1_epi32(127);
        int16_t sums[16];
        for (int j = 0; j < 256; j += 32) {
            __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(vs, _mm256_loadu_ps(x + j)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(vs, _mm256_loadu_ps(x + j + 8)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(vs, _mm256_loadu_ps(x + j + 16)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(vs, _mm256_loadu_ps(x + j + 24)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            i0 = _mm256_min_epi32(i0, limit); i1 = _mm256_min_epi32(i1, limit);
            i2 = _mm256_min_epi32(i2, limit); i3 = _mm256_min_epi32(i3, limit);
            __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
            p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(y + 4 + j), p);
            // sums of the stored bytes: lane k of s holds bytes 4k..4k+3
            const __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(cq_ones_u8(), p), cq_ones_i16());
            int32_t t[8];
            _mm256_storeu_si256((__m256i *)t, s);
            sums[j / 16] = (int16_t)(t[0] + t[1] + t[2] + t[3]);
            sums[j / 16 + 1] = (int16_t)(t[4] + t[5] + t[6] + t[7]);
        }
        memcpy(y + 260, sums, 32);
        const float d = 1.0f / iscale;
        memcpy(y, &d, 4);
    }
}

#endif /* CQ_HAVE_AVX2 */

#endif /* CQWEN_QUANTS_H */
