#include "CVectorKernels.h"

#include <string.h>

// ---- Portable versions: several independent sums so the compiler can keep them in registers
// (floating-point addition is not reassociated without being told).

static inline float half_to_float(uint16_t half) {
    uint32_t sign = (uint32_t)(half & 0x8000u) << 16;
    uint32_t exponent = (half >> 10) & 0x1fu;
    uint32_t mantissa = half & 0x3ffu;
    uint32_t bits;
    if (exponent == 0) {
        if (mantissa == 0) {
            bits = sign;
        } else {
            float value = (float)mantissa * (1.0f / 16777216.0f);  // subnormal: mantissa * 2^-24
            return sign ? -value : value;
        }
    } else if (exponent == 31) {
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else {
        bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    }
    float result;
    memcpy(&result, &bits, sizeof result);
    return result;
}

static float dot_f32_portable(const float *a, const float *b, size_t count) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= count; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < count; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

static float l2_f32_portable(const float *a, const float *b, size_t count) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= count; i += 4) {
        float d0 = a[i] - b[i], d1 = a[i + 1] - b[i + 1], d2 = a[i + 2] - b[i + 2], d3 = a[i + 3] - b[i + 3];
        s0 += d0 * d0;
        s1 += d1 * d1;
        s2 += d2 * d2;
        s3 += d3 * d3;
    }
    for (; i < count; i++) {
        float d = a[i] - b[i];
        s0 += d * d;
    }
    return (s0 + s1) + (s2 + s3);
}

static float dot_f16_portable(const float *query, const uint16_t *code, size_t count) {
    float sum = 0;
    for (size_t i = 0; i < count; i++) sum += query[i] * half_to_float(code[i]);
    return sum;
}

static float l2_f16_portable(const float *query, const uint16_t *code, size_t count) {
    float sum = 0;
    for (size_t i = 0; i < count; i++) {
        float d = query[i] - half_to_float(code[i]);
        sum += d * d;
    }
    return sum;
}

static float dot_u8_portable(const float *weights, const uint8_t *code, size_t count) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= count; i += 4) {
        s0 += weights[i] * code[i];
        s1 += weights[i + 1] * code[i + 1];
        s2 += weights[i + 2] * code[i + 2];
        s3 += weights[i + 3] * code[i + 3];
    }
    for (; i < count; i++) s0 += weights[i] * code[i];
    return (s0 + s1) + (s2 + s3);
}

static float l2_u8_portable(const float *shifted, const float *scale, const uint8_t *code, size_t count) {
    float sum = 0;
    for (size_t i = 0; i < count; i++) {
        float d = shifted[i] - scale[i] * code[i];
        sum += d * d;
    }
    return sum;
}

// ---- x86-64 versions with 8-wide AVX2 registers, fused multiply-add and F16C conversions.

#if defined(__x86_64__)
#include <immintrin.h>

#define LK_AVX2 __attribute__((target("avx2,fma,f16c")))

LK_AVX2 static inline float sum8(__m256 v) {
    __m128 low = _mm256_castps256_ps128(v);
    __m128 high = _mm256_extractf128_ps(v, 1);
    __m128 s = _mm_add_ps(low, high);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

LK_AVX2 static float dot_f32_avx2(const float *a, const float *b, size_t count) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= count; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float sum = sum8(_mm256_add_ps(s0, s1));
    for (; i < count; i++) sum += a[i] * b[i];
    return sum;
}

LK_AVX2 static float l2_f32_avx2(const float *a, const float *b, size_t count) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
    }
    for (; i + 8 <= count; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s0 = _mm256_fmadd_ps(d, d, s0);
    }
    float sum = sum8(_mm256_add_ps(s0, s1));
    for (; i < count; i++) {
        float d = a[i] - b[i];
        sum += d * d;
    }
    return sum;
}

LK_AVX2 static inline __m256 load_half8(const uint16_t *code) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)code));
}

LK_AVX2 static float dot_f16_avx2(const float *query, const uint16_t *code, size_t count) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(query + i), load_half8(code + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(query + i + 8), load_half8(code + i + 8), s1);
    }
    for (; i + 8 <= count; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(query + i), load_half8(code + i), s0);
    float sum = sum8(_mm256_add_ps(s0, s1));
    for (; i < count; i++) sum += query[i] * half_to_float(code[i]);
    return sum;
}

LK_AVX2 static float l2_f16_avx2(const float *query, const uint16_t *code, size_t count) {
    __m256 s0 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(query + i), load_half8(code + i));
        s0 = _mm256_fmadd_ps(d, d, s0);
    }
    float sum = sum8(s0);
    for (; i < count; i++) {
        float d = query[i] - half_to_float(code[i]);
        sum += d * d;
    }
    return sum;
}

LK_AVX2 static inline __m256 load_u8x8(const uint8_t *code) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)code)));
}

LK_AVX2 static float dot_u8_avx2(const float *weights, const uint8_t *code, size_t count) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(weights + i), load_u8x8(code + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(weights + i + 8), load_u8x8(code + i + 8), s1);
    }
    for (; i + 8 <= count; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(weights + i), load_u8x8(code + i), s0);
    float sum = sum8(_mm256_add_ps(s0, s1));
    for (; i < count; i++) sum += weights[i] * code[i];
    return sum;
}

LK_AVX2 static float l2_u8_avx2(const float *shifted, const float *scale, const uint8_t *code, size_t count) {
    __m256 s0 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 d = _mm256_fnmadd_ps(_mm256_loadu_ps(scale + i), load_u8x8(code + i), _mm256_loadu_ps(shifted + i));
        s0 = _mm256_fmadd_ps(d, d, s0);
    }
    float sum = sum8(s0);
    for (; i < count; i++) {
        float d = shifted[i] - scale[i] * code[i];
        sum += d * d;
    }
    return sum;
}

// ---- AVX-512 versions: 16 lanes, and masked loads for the tail instead of a scalar loop.

#define LK_AVX512 __attribute__((target("avx512f,avx2,fma,f16c")))

LK_AVX512 static inline __mmask16 tail_mask(size_t remaining) {
    return (__mmask16)((1u << remaining) - 1u);
}

LK_AVX512 static float dot_f32_avx512(const float *a, const float *b, size_t count) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= count; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i + 16 <= count; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < count) {
        __mmask16 mask = tail_mask(count - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, a + i), _mm512_maskz_loadu_ps(mask, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

LK_AVX512 static float l2_f32_avx512(const float *a, const float *b, size_t count) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= count; i += 32) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
    }
    for (; i + 16 <= count; i += 16) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s0 = _mm512_fmadd_ps(d, d, s0);
    }
    if (i < count) {
        __mmask16 mask = tail_mask(count - i);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(mask, a + i), _mm512_maskz_loadu_ps(mask, b + i));
        s1 = _mm512_fmadd_ps(d, d, s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

LK_AVX512 static inline __m512 load_half16(const uint16_t *code) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)code));
}

LK_AVX512 static float dot_f16_avx512(const float *query, const uint16_t *code, size_t count) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= count; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(query + i), load_half16(code + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(query + i + 16), load_half16(code + i + 16), s1);
    }
    for (; i + 16 <= count; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(query + i), load_half16(code + i), s0);
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    for (; i < count; i++) sum += query[i] * half_to_float(code[i]);
    return sum;
}

LK_AVX512 static float l2_f16_avx512(const float *query, const uint16_t *code, size_t count) {
    __m512 s0 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(query + i), load_half16(code + i));
        s0 = _mm512_fmadd_ps(d, d, s0);
    }
    float sum = _mm512_reduce_add_ps(s0);
    for (; i < count; i++) {
        float d = query[i] - half_to_float(code[i]);
        sum += d * d;
    }
    return sum;
}

LK_AVX512 static inline __m512 load_u8x16(const uint8_t *code) {
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)code)));
}

LK_AVX512 static float dot_u8_avx512(const float *weights, const uint8_t *code, size_t count) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= count; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(weights + i), load_u8x16(code + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(weights + i + 16), load_u8x16(code + i + 16), s1);
    }
    for (; i + 16 <= count; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(weights + i), load_u8x16(code + i), s0);
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    for (; i < count; i++) sum += weights[i] * code[i];
    return sum;
}

LK_AVX512 static float l2_u8_avx512(const float *shifted, const float *scale, const uint8_t *code, size_t count) {
    __m512 s0 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        __m512 d = _mm512_fnmadd_ps(_mm512_loadu_ps(scale + i), load_u8x16(code + i), _mm512_loadu_ps(shifted + i));
        s0 = _mm512_fmadd_ps(d, d, s0);
    }
    float sum = _mm512_reduce_add_ps(s0);
    for (; i < count; i++) {
        float d = shifted[i] - scale[i] * code[i];
        sum += d * d;
    }
    return sum;
}
#endif

// ---- Dispatch, decided once when the library is loaded.

static float (*dot_f32_impl)(const float *, const float *, size_t) = dot_f32_portable;
static float (*l2_f32_impl)(const float *, const float *, size_t) = l2_f32_portable;
static float (*dot_f16_impl)(const float *, const uint16_t *, size_t) = dot_f16_portable;
static float (*l2_f16_impl)(const float *, const uint16_t *, size_t) = l2_f16_portable;
static float (*dot_u8_impl)(const float *, const uint8_t *, size_t) = dot_u8_portable;
static float (*l2_u8_impl)(const float *, const float *, const uint8_t *, size_t) = l2_u8_portable;
static const char *kernels_name = "portable";

static int cpu_has(int level) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    if (level == LK_KERNELS_AVX2) return avx2;
    if (level == LK_KERNELS_AVX512) return avx2 && __builtin_cpu_supports("avx512f");
#endif
    return level == LK_KERNELS_PORTABLE;
}

int lk_kernels_get(int level, lk_kernel_set *out) {
    if (level == LK_KERNELS_BEST) {
        for (int candidate = LK_KERNELS_AVX512; candidate > LK_KERNELS_PORTABLE; candidate--) {
            if (lk_kernels_get(candidate, out)) return 1;
        }
        return lk_kernels_get(LK_KERNELS_PORTABLE, out);
    }
    if (!cpu_has(level)) return 0;
    *out = (lk_kernel_set){dot_f32_portable, l2_f32_portable, dot_f16_portable, l2_f16_portable,
                           dot_u8_portable, l2_u8_portable, "portable"};
#if defined(__x86_64__)
    if (level == LK_KERNELS_AVX2) {
        *out = (lk_kernel_set){dot_f32_avx2, l2_f32_avx2, dot_f16_avx2, l2_f16_avx2, dot_u8_avx2, l2_u8_avx2, "avx2"};
    } else if (level == LK_KERNELS_AVX512) {
        *out = (lk_kernel_set){dot_f32_avx512, l2_f32_avx512, dot_f16_avx512, l2_f16_avx512,
                               dot_u8_avx512, l2_u8_avx512, "avx512"};
    }
#endif
    return 1;
}

int lk_kernels_select(int level) {
    lk_kernel_set set;
    if (!lk_kernels_get(level, &set)) return 0;
    dot_f32_impl = set.dot_f32;
    l2_f32_impl = set.l2_f32;
    dot_f16_impl = set.dot_f16;
    l2_f16_impl = set.l2_f16;
    dot_u8_impl = set.dot_u8;
    l2_u8_impl = set.l2_u8;
    kernels_name = set.name;
    return 1;
}

__attribute__((constructor)) static void choose_kernels(void) { lk_kernels_select(LK_KERNELS_BEST); }

float lk_dot_f32(const float *a, const float *b, size_t count) { return dot_f32_impl(a, b, count); }
float lk_l2_f32(const float *a, const float *b, size_t count) { return l2_f32_impl(a, b, count); }
float lk_dot_f16(const float *query, const uint16_t *code, size_t count) { return dot_f16_impl(query, code, count); }
float lk_l2_f16(const float *query, const uint16_t *code, size_t count) { return l2_f16_impl(query, code, count); }
float lk_dot_u8(const float *weights, const uint8_t *code, size_t count) { return dot_u8_impl(weights, code, count); }
float lk_l2_u8(const float *shifted, const float *scale, const uint8_t *code, size_t count) {
    return l2_u8_impl(shifted, scale, code, count);
}
void lk_decode_f16(const uint16_t *code, float *out, size_t count) {
    for (size_t i = 0; i < count; i++) out[i] = half_to_float(code[i]);
}
const char *lk_kernels_name(void) { return kernels_name; }
