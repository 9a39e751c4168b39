// PNG and JPEG decoding for libqwen (see cqwen_media.h). libpng and libjpeg report fatal errors by longjmp;
// every jump lands in this file, which frees what it allocated and returns an error code with a message.
#include "cqwen_media.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

void cqm_image_free(cqm_image *image) {
    if (image) {
        free(image->pixels);
        image->pixels = NULL;
    }
}

static int too_large(int64_t width, int64_t height, int64_t max_pixels, char *error, size_t error_size) {
    if (width <= 0 || height <= 0) {
        snprintf(error, error_size, "image has no pixels (%lldx%lld)", (long long)width, (long long)height);
        return CQM_FORMAT;
    }
    if (width * height > max_pixels) {
        snprintf(error, error_size, "image of %lldx%lld = %lld pixels exceeds the limit of %lld pixels", (long long)width,
                 (long long)height, (long long)(width * height), (long long)max_pixels);
        return CQM_TOO_LARGE;
    }
    return CQM_OK;
}

// ---- EXIF ----

static uint32_t exif_u16(const uint8_t *p, int big) { return big ? (uint32_t)(p[0] << 8 | p[1]) : (uint32_t)(p[1] << 8 | p[0]); }
static uint32_t exif_u32(const uint8_t *p, int big) {
    return big ? ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3])
               : ((uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0]);
}

int cqm_exif_orientation(const uint8_t *data, size_t size) {
    if (!data) return 1;
    if (size >= 6 && memcmp(data, "Exif\0\0", 6) == 0) {
        data += 6;
        size -= 6;
    }
    if (size < 8) return 1;
    int big;
    if (data[0] == 'I' && data[1] == 'I' && data[2] == 42 && data[3] == 0) big = 0;
    else if (data[0] == 'M' && data[1] == 'M' && data[2] == 0 && data[3] == 42) big = 1;
    else return 1;
    uint32_t ifd = exif_u32(data + 4, big);
    if (ifd > size || size - ifd < 2) return 1;
    uint32_t count = exif_u16(data + ifd, big);
    for (uint32_t i = 0; i < count; i++) {
        size_t at = (size_t)ifd + 2 + (size_t)i * 12;
        if (at + 12 > size) break;
        const uint8_t *e = data + at;
        if (exif_u16(e, big) != 0x0112) continue;
        uint32_t type = exif_u16(e + 2, big), n = exif_u32(e + 4, big);
        if (n < 1) return 1;
        uint32_t value;
        if (type == 3) value = exif_u16(e + 8, big);        // SHORT
        else if (type == 4) value = exif_u32(e + 8, big);   // LONG
        else return 1;
        return value >= 1 && value <= 8 ? (int)value : 1;
    }
    return 1;
}

// ---- PNG ----

typedef struct {
    const uint8_t *data;
    size_t size, pos;
    char *error;
    size_t error_size;
} png_source;

static void png_read_memory(png_structp png, png_bytep out, size_t n) {
    png_source *s = (png_source *)png_get_io_ptr(png);
    if (n > s->size - s->pos) png_error(png, "file is truncated");
    memcpy(out, s->data + s->pos, n);
    s->pos += n;
}

static void png_on_error(png_structp png, png_const_charp message) {
    png_source *s = (png_source *)png_get_error_ptr(png);
    snprintf(s->error, s->error_size, "PNG: %s", message);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

int cqm_decode_png(const uint8_t *data, size_t size, int64_t max_pixels, cqm_image *out, char *error, size_t error_size) {
    memset(out, 0, sizeof *out);
    if (error_size) error[0] = 0;
    if (!data || size < 8 || png_sig_cmp(data, 0, 8) != 0) {
        snprintf(error, error_size, "not a PNG file");
        return CQM_FORMAT;
    }
    png_source src = {data, size, 0, error, error_size};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
    if (!png) {
        snprintf(error, error_size, "out of memory");
        return CQM_NO_MEMORY;
    }
    png_infop info = png_create_info_struct(png), end_info = png_create_info_struct(png);
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    volatile int status = CQM_FORMAT;
    volatile int complete = 0;
    if (!info || !end_info) {
        png_destroy_read_struct(&png, &info, &end_info);
        snprintf(error, error_size, "out of memory");
        return CQM_NO_MEMORY;
    }
    if (setjmp(png_jmpbuf(png))) {
        if (complete) goto done;  // every row was decoded: a problem in the chunks after the image data is ignored
        free(pixels);
        free(rows);
        png_destroy_read_struct(&png, &info, &end_info);
        return status;
    }
    png_set_read_fn(png, &src, png_read_memory);
    png_read_info(png, info);
    png_uint_32 width, height;
    int depth, color, interlace;
    png_get_IHDR(png, info, &width, &height, &depth, &color, &interlace, NULL, NULL);
    int rc = too_large(width, height, max_pixels, error, error_size);
    if (rc != CQM_OK) {
        png_destroy_read_struct(&png, &info, &end_info);
        return rc;
    }
    out->width = (int32_t)width;
    out->height = (int32_t)height;
    out->has_alpha = (color & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS) ? 1 : 0;
    out->gray16 = depth == 16 && !(color & PNG_COLOR_MASK_COLOR);
    out->orientation = 1;
    png_bytep exif = NULL;
    png_uint_32 exif_size = 0;
    if (png_get_eXIf_1(png, info, &exif_size, &exif) && exif) out->orientation = cqm_exif_orientation(exif, exif_size);
    png_set_expand(png);  // palette -> RGB, gray below 8 bits -> 8 bits (scaled), tRNS -> alpha
    png_set_strip_16(png);  // 16-bit samples -> their high byte
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int channels = png_get_channels(png, info);
    size_t row_bytes = png_get_rowbytes(png, info);
    if (channels < 1 || channels > 4 || row_bytes != (size_t)width * (size_t)channels) {
        status = CQM_UNSUPPORTED;
        png_error(png, "unexpected sample layout");
    }
    out->channels = channels;
    status = CQM_NO_MEMORY;
    pixels = (uint8_t *)malloc(row_bytes * height);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * height);
    if (!pixels || !rows) png_error(png, "out of memory");
    status = CQM_FORMAT;
    for (png_uint_32 y = 0; y < height; y++) rows[y] = pixels + (size_t)y * row_bytes;
    png_read_image(png, rows);
    complete = 1;
    png_read_end(png, end_info);
    if (out->orientation == 1 && png_get_eXIf_1(png, end_info, &exif_size, &exif) && exif) {
        out->orientation = cqm_exif_orientation(exif, exif_size);
    }
done:
    free(rows);
    png_destroy_read_struct(&png, &info, &end_info);
    out->pixels = pixels;
    if (error_size) error[0] = 0;
    return CQM_OK;
}

// ---- JPEG ----

typedef struct {
    struct jpeg_error_mgr manager;
    jmp_buf jump;
    char *error;
    size_t error_size;
    int truncated;
} jpeg_errors;

static void jpeg_on_error(j_common_ptr cinfo) {
    jpeg_errors *e = (jpeg_errors *)cinfo->err;
    char message[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, message);
    snprintf(e->error, e->error_size, "JPEG: %s", message);
    longjmp(e->jump, 1);
}

// Warnings are not printed; running out of data (a truncated file) is an error, as it is for Pillow.
static void jpeg_on_message(j_common_ptr cinfo, int level) {
    jpeg_errors *e = (jpeg_errors *)cinfo->err;
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) e->truncated = 1;
}

int cqm_decode_jpeg(const uint8_t *data, size_t size, int64_t max_pixels, cqm_image *out, char *error, size_t error_size) {
    memset(out, 0, sizeof *out);
    if (error_size) error[0] = 0;
    if (!data || size < 3 || data[0] != 0xFF || data[1] != 0xD8 || data[2] != 0xFF) {
        snprintf(error, error_size, "not a JPEG file");
        return CQM_FORMAT;
    }
    struct jpeg_decompress_struct cinfo;
    jpeg_errors errors;
    memset(&errors, 0, sizeof errors);
    cinfo.err = jpeg_std_error(&errors.manager);
    errors.manager.error_exit = jpeg_on_error;
    errors.manager.emit_message = jpeg_on_message;
    errors.error = error;
    errors.error_size = error_size;
    uint8_t *volatile pixels = NULL;
    volatile int status = CQM_FORMAT;
    volatile int complete = 0;
    if (setjmp(errors.jump)) {
        if (complete) goto done;
        free(pixels);
        jpeg_destroy_decompress(&cinfo);
        return status;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, (const unsigned char *)data, (unsigned long)size);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&cinfo, TRUE);
    int rc = too_large(cinfo.image_width, cinfo.image_height, max_pixels, error, error_size);
    if (rc != CQM_OK) {
        jpeg_destroy_decompress(&cinfo);
        return rc;
    }
    if (cinfo.data_precision != 8) {
        snprintf(error, error_size, "JPEG: %d-bit samples are not supported", cinfo.data_precision);
        jpeg_destroy_decompress(&cinfo);
        return CQM_UNSUPPORTED;
    }
    out->orientation = 1;
    for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next) {
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && memcmp(m->data, "Exif\0\0", 6) == 0) {
            out->orientation = cqm_exif_orientation(m->data, m->data_length);
            break;  // the first Exif segment, as Pillow keeps it
        }
    }
    switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE: cinfo.out_color_space = JCS_GRAYSCALE; break;
    case JCS_CMYK:
    case JCS_YCCK: cinfo.out_color_space = JCS_CMYK; out->is_cmyk = 1; break;
    default: cinfo.out_color_space = JCS_RGB; break;
    }
    jpeg_start_decompress(&cinfo);
    int channels = cinfo.output_components;
    if ((channels != 1 && channels != 3 && channels != 4) || cinfo.output_width != cinfo.image_width ||
        cinfo.output_height != cinfo.image_height) {
        status = CQM_UNSUPPORTED;
        snprintf(error, error_size, "JPEG: unsupported layout (%d components)", channels);
        longjmp(errors.jump, 1);
    }
    out->width = (int32_t)cinfo.output_width;
    out->height = (int32_t)cinfo.output_height;
    out->channels = channels;
    size_t row_bytes = (size_t)cinfo.output_width * (size_t)channels;
    pixels = (uint8_t *)malloc(row_bytes * cinfo.output_height);
    if (!pixels) {
        status = CQM_NO_MEMORY;
        snprintf(error, error_size, "out of memory");
        longjmp(errors.jump, 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pixels + (size_t)cinfo.output_scanline * row_bytes;
        jpeg_read_scanlines(&cinfo, &row, 1);
        if (errors.truncated) {
            snprintf(error, error_size, "JPEG: file is truncated");
            longjmp(errors.jump, 1);
        }
    }
    complete = 1;
    jpeg_finish_decompress(&cinfo);
done:
    jpeg_destroy_decompress(&cinfo);
    out->pixels = pixels;
    if (error_size) error[0] = 0;
    return CQM_OK;
}
