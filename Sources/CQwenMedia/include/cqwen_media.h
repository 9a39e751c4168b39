// Image decoding for libqwen's media inputs: libpng and libjpeg-turbo behind functions that never longjmp
// into Swift (their error handlers jump back here and the call returns an error code and message).
#ifndef CQWEN_MEDIA_H
#define CQWEN_MEDIA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    CQM_OK = 0,
    CQM_FORMAT = 1,     // not a (valid, complete) PNG/JPEG
    CQM_TOO_LARGE = 2,  // more pixels than allowed (refused after the header, before any pixel buffer exists)
    CQM_NO_MEMORY = 3,
    CQM_UNSUPPORTED = 4,
};

/// A decoded image as the file stores it, 8 bits per sample after the decoder's expansions:
/// PNG: gray (1), gray+alpha (2), RGB (3), RGBA (4); palettes and tRNS expanded to RGB(A), 1/2/4-bit gray scaled
/// to 0..255, 16-bit samples reduced to their high byte. JPEG: gray (1), RGB (3) or CMYK (4, as libjpeg returns it:
/// Adobe-inverted for Adobe files).
typedef struct {
    int32_t width;
    int32_t height;
    int32_t channels;
    int32_t is_cmyk;
    /// EXIF orientation (1..8; 1 when the file has none or an unreadable one).
    int32_t orientation;
    /// PNG: the file had an alpha channel or tRNS (Pillow's "has transparency").
    int32_t has_alpha;
    /// PNG: the source had 16-bit gray samples (reduced to their high byte here).
    int32_t gray16;
    uint8_t *pixels;  // malloc'ed: height rows of width * channels bytes; release with cqm_image_free
} cqm_image;

/// Decodes a PNG held in memory. Images with more than max_pixels pixels are refused (CQM_TOO_LARGE) before
/// the pixel buffer is allocated. On failure error gets a message (NUL-terminated, truncated to error_size).
int cqm_decode_png(const uint8_t *data, size_t size, int64_t max_pixels, cqm_image *out, char *error, size_t error_size);

/// Decodes a JPEG held in memory (baseline, progressive; gray, YCbCr, RGB, CMYK, YCCK), same rules.
int cqm_decode_jpeg(const uint8_t *data, size_t size, int64_t max_pixels, cqm_image *out, char *error, size_t error_size);

void cqm_image_free(cqm_image *image);

/// The orientation tag (0x0112) of IFD0 in EXIF data (a TIFF header, optionally preceded by "Exif\0\0"); 1 if absent.
int cqm_exif_orientation(const uint8_t *data, size_t size);

#ifdef __cplusplus
}
#endif

#endif
