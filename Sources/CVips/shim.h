// Non-variadic wrappers around the libvips calls Lookalike uses.
// Swift cannot call C variadic functions, so every optional argument we need
// is spelled out here.
#ifndef LOOKALIKE_CVIPS_SHIM_H
#define LOOKALIKE_CVIPS_SHIM_H

#include <vips/vips.h>

static inline void lk_vips_ignore_warning(const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer data) {
    (void)domain; (void)level; (void)message; (void)data;
}

/// Starts libvips once per process. Returns 0 on success.
/// The operation cache is switched off: Lookalike never repeats an operation, and cached
/// operations would keep references to caller buffers that are about to be freed. Vector code
/// (liborc) is switched off too (see below).
/// Warnings (e.g. a colour profile that does not fit a grayscale PNG) are not printed: the
/// image still decodes, and real failures come back as errors.
static inline int lk_vips_init(void) {
    if (vips_init("lookalike") != 0) return -1;
    vips_cache_set_max(0);
    /* No run-time compiled SIMD (liborc): with the Debian 12 versions (libvips 8.14, liborc 0.4.33)
       concurrent decodes crashed the server under load inside orc_code_allocate_codemem, a known
       kind of liborc race. Without it, search throughput over HTTP was measured the same within
       noise (2 cores, 8 connections: 116 searches/s against 111 with liborc). */
    vips_vector_set_enabled(FALSE);
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING, lk_vips_ignore_warning, NULL);
    /* Loaders libvips marks untrusted (ImageMagick, PDF, SVG, ...) are refused in every process,
       behind the decoder's own list of accepted loaders. */
    vips_block_untrusted_set(TRUE);
    return 0;
}

/// Whether libvips has an error pending (set by any thread).
static inline int lk_vips_has_error(void) {
    const char *text = vips_error_buffer();
    return text != NULL && text[0] != 0;
}

/// Copies the pending libvips error text into `buffer` and clears it.
static inline void lk_vips_take_error(char *buffer, size_t len) {
    snprintf(buffer, len, "%s", vips_error_buffer());
    vips_error_clear();
}

/// Opens an image from memory reading its header only (pixels are decoded lazily).
/// The caller must keep `buf` alive as long as the image lives.
static inline VipsImage *lk_vips_header_from_buffer(const void *buf, size_t len) {
    return vips_image_new_from_buffer(buf, len, "", NULL);
}

/// Returns the name of the loader libvips would use for this buffer, or NULL.
static inline const char *lk_vips_find_loader(const void *buf, size_t len) {
    return vips_foreign_find_load_buffer(buf, len);
}

/// Opens an image from memory for decoding. `options` are loader options such as "shrink=2"
/// (shrink-on-load for JPEG). Truncated or corrupt files fail instead of giving a partial image.
/// The caller must keep `buf` alive as long as the image lives.
static inline VipsImage *lk_vips_load(const void *buf, size_t len, const char *options) {
    return vips_image_new_from_buffer(buf, len, options, "fail_on", VIPS_FAIL_ON_TRUNCATED, NULL);
}

/// Whether the image carries an embedded ICC profile.
static inline int lk_vips_has_icc(VipsImage *image) {
    return vips_image_get_typeof(image, VIPS_META_ICC_NAME) != 0;
}

/// Converts from the embedded ICC profile to sRGB.
static inline int lk_vips_icc_to_srgb(VipsImage *in, VipsImage **out) {
    return vips_icc_transform(in, out, "srgb", "embedded", TRUE, "intent", VIPS_INTENT_PERCEPTUAL, NULL);
}

/// Flattens an alpha channel onto an RGB background.
static inline int lk_vips_flatten(VipsImage *in, VipsImage **out, double r, double g, double b) {
    double background[3] = {r, g, b};
    VipsArrayDouble *array = vips_array_double_new(background, 3);
    int result = vips_flatten(in, out, "background", array, NULL);
    vips_area_unref(VIPS_AREA(array));
    return result;
}

static inline int lk_vips_colourspace_srgb(VipsImage *in, VipsImage **out) {
    return vips_colourspace(in, out, VIPS_INTERPRETATION_sRGB, NULL);
}

static inline int lk_vips_cast_uchar(VipsImage *in, VipsImage **out) {
    return vips_cast_uchar(in, out, NULL);
}

static inline int lk_vips_extract_bands(VipsImage *in, VipsImage **out, int first, int count) {
    return vips_extract_band(in, out, first, "n", count, NULL);
}

/// Resizes by independent horizontal and vertical scale factors with a bicubic kernel.
static inline int lk_vips_resize(VipsImage *in, VipsImage **out, double hscale, double vscale) {
    return vips_resize(in, out, hscale, "vscale", vscale, "kernel", VIPS_KERNEL_CUBIC, NULL);
}

static inline int lk_vips_crop(VipsImage *in, VipsImage **out, int left, int top, int width, int height) {
    return vips_crop(in, out, left, top, width, height, NULL);
}

static inline int lk_vips_autorot(VipsImage *in, VipsImage **out) {
    return vips_autorot(in, out, NULL);
}

/// Encodes an image as JPEG into a g_malloc'd buffer (free with g_free).
static inline int lk_vips_jpeg_save(VipsImage *in, void **buf, size_t *len, int quality) {
    return vips_jpegsave_buffer(in, buf, len, "Q", quality, NULL);
}

/// Makes an image from packed 8-bit pixels (copied).
static inline VipsImage *lk_vips_image_from_pixels(const void *data, size_t len, int width, int height, int bands) {
    return vips_image_new_from_memory_copy(data, len, width, height, bands, VIPS_FORMAT_UCHAR);
}

/// Stops a computation of `image` once it has run `milliseconds` (libvips' progress signal, as
/// each region is computed; its own `run` counts whole seconds, the timer is finer): the
/// computation then fails, and the caller says why.
static inline void lk_vips_eval_budget(VipsImage *image, VipsProgress *progress, void *milliseconds) {
    if (progress->start && g_timer_elapsed(progress->start, NULL) * 1000.0 >= (double)GPOINTER_TO_INT(milliseconds)) {
        vips_image_set_kill(image, TRUE);
    }
}

static inline void lk_vips_set_budget(VipsImage *image, int milliseconds) {
    vips_image_set_progress(image, TRUE);
    g_signal_connect(image, "eval", G_CALLBACK(lk_vips_eval_budget), GINT_TO_POINTER(milliseconds));
}

static inline int lk_vips_orientation(VipsImage *image) {
    return vips_image_get_orientation(image);
}

/// Writes the SHA-256 of `data` as 64 lowercase hex digits plus a NUL into `out`.
static inline void lk_sha256_hex(const void *data, size_t len, char *out) {
    gchar *hex = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)data, len);
    memcpy(out, hex, 64);
    out[64] = 0;
    g_free(hex);
}

static inline void lk_g_object_unref(void *object) {
    g_object_unref(object);
}

static inline void lk_g_free(void *pointer) {
    g_free(pointer);
}

#endif
