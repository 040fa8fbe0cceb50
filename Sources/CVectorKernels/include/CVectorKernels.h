#ifndef LOOKALIKE_VECTOR_KERNELS_H
#define LOOKALIKE_VECTOR_KERNELS_H

// Distance kernels for the HNSW index, one per stored encoding. Each has a portable version and,
// on x86-64, AVX2/FMA/F16C and AVX-512 versions; the best the CPU supports is chosen at load time.

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Hints the CPU to start loading the cache line at `address` (a node about to be scored).
static inline void lk_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }

/// Sum of a[i] * b[i].
float lk_dot_f32(const float *a, const float *b, size_t count);
/// Sum of (a[i] - b[i])^2.
float lk_l2_f32(const float *a, const float *b, size_t count);

/// Sum of query[i] * half(code[i]), where code holds IEEE half-precision bit patterns.
float lk_dot_f16(const float *query, const uint16_t *code, size_t count);
/// Sum of (query[i] - half(code[i]))^2.
float lk_l2_f16(const float *query, const uint16_t *code, size_t count);
/// Widens half-precision bit patterns to float.
void lk_decode_f16(const uint16_t *code, float *out, size_t count);

/// Sum of weights[i] * code[i]: with weights = query * scale, the inner product with an 8-bit
/// scalar-quantised vector, less the constant term dot(query, minimum).
float lk_dot_u8(const float *weights, const uint8_t *code, size_t count);
/// Sum of (shifted[i] - scale[i] * code[i])^2: with shifted = query - minimum, the squared
/// distance to the vector an 8-bit code stands for.
float lk_l2_u8(const float *shifted, const float *scale, const uint8_t *code, size_t count);

/// Which kernels are in use: "avx512", "avx2" or "portable".
const char *lk_kernels_name(void);

enum { LK_KERNELS_BEST = -1, LK_KERNELS_PORTABLE = 0, LK_KERNELS_AVX2 = 1, LK_KERNELS_AVX512 = 2 };

/// One set of kernels, called through its pointers.
typedef struct {
    float (*dot_f32)(const float *a, const float *b, size_t count);
    float (*l2_f32)(const float *a, const float *b, size_t count);
    float (*dot_f16)(const float *query, const uint16_t *code, size_t count);
    float (*l2_f16)(const float *query, const uint16_t *code, size_t count);
    float (*dot_u8)(const float *weights, const uint8_t *code, size_t count);
    float (*l2_u8)(const float *shifted, const float *scale, const uint8_t *code, size_t count);
    const char *name;
} lk_kernel_set;
/// Fills `out` with one set of kernels without changing the ones in use, so tests can hold
/// every set to the same answers while other threads compute distances; returns 0 (and fills
/// nothing) when the CPU lacks what that set needs.
int lk_kernels_get(int level, lk_kernel_set *out);
/// Switches the kernels in use to one set; returns 0 (and changes nothing) when the CPU lacks
/// what that set needs. `LK_KERNELS_BEST` goes back to the best available. Not for use while
/// other threads compute distances.
int lk_kernels_select(int level);

#ifdef __cplusplus
}
#endif

#endif
