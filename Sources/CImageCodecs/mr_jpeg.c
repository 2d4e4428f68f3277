#include "mr_jpeg.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    int status;
    int max_scans;
} mr_error_mgr;

typedef struct {
    struct jpeg_progress_mgr base;
    mr_error_mgr *errors;
} mr_progress_mgr;

static void mr_error_exit(j_common_ptr cinfo) {
    mr_error_mgr *err = (mr_error_mgr *)cinfo->err;
    if (err->status == MR_JPEG_OK) err->status = MR_JPEG_CORRUPT;
    longjmp(err->jump, 1);
}

static void mr_emit_message(j_common_ptr cinfo, int level) {
    mr_error_mgr *err = (mr_error_mgr *)cinfo->err;
    if (level < 0) {
        // A warning. libjpeg pads a file that ends early with a fake EOI and warns; for
        // us a truncated upload is an error, not a grey bottom half.
        if (err->base.msg_code == JWRN_JPEG_EOF) {
            err->status = MR_JPEG_TRUNCATED;
            longjmp(err->jump, 1);
        }
        err->base.num_warnings++;
    }
}

static void mr_output_message(j_common_ptr cinfo) { (void)cinfo; }

static void mr_progress(j_common_ptr cinfo) {
    mr_progress_mgr *progress = (mr_progress_mgr *)cinfo->progress;
    mr_error_mgr *err = progress->errors;
    if (cinfo->is_decompressor && err->max_scans > 0) {
        j_decompress_ptr d = (j_decompress_ptr)cinfo;
        if (d->input_scan_number > err->max_scans) {
            err->status = MR_JPEG_TOO_MANY_SCANS;
            longjmp(err->jump, 1);
        }
    }
}

static void mr_copy_message(j_decompress_ptr cinfo, mr_error_mgr *err, char *message, size_t size) {
    if (!message || size == 0) return;
    if (err->status == MR_JPEG_TOO_MANY_SCANS) {
        snprintf(message, size, "progressive JPEG has more than %d scans", err->max_scans);
        return;
    }
    char buffer[JMSG_LENGTH_MAX];
    buffer[0] = 0;
    (*cinfo->err->format_message)((j_common_ptr)cinfo, buffer);
    snprintf(message, size, "%s", buffer);
}

static int mr_color(J_COLOR_SPACE space) {
    switch (space) {
    case JCS_GRAYSCALE: return MR_JPEG_COLOR_GRAY;
    case JCS_RGB: return MR_JPEG_COLOR_RGB;
    case JCS_YCbCr: return MR_JPEG_COLOR_YCBCR;
    case JCS_CMYK: return MR_JPEG_COLOR_CMYK;
    case JCS_YCCK: return MR_JPEG_COLOR_YCCK;
    default: return MR_JPEG_COLOR_UNKNOWN;
    }
}

int mr_jpeg_read_info(const unsigned char *data, size_t size, mr_jpeg_info *info,
                      char *message, size_t message_size) {
    struct jpeg_decompress_struct cinfo;
    mr_error_mgr err;
    memset(&err, 0, sizeof err);
    cinfo.err = jpeg_std_error(&err.base);
    err.base.error_exit = mr_error_exit;
    err.base.emit_message = mr_emit_message;
    err.base.output_message = mr_output_message;
    err.status = MR_JPEG_OK;
    if (message && message_size) message[0] = 0;
    if (setjmp(err.jump)) {
        mr_copy_message(&cinfo, &err, message, message_size);
        jpeg_destroy_decompress(&cinfo);
        return err.status;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    info->width = (int)cinfo.image_width;
    info->height = (int)cinfo.image_height;
    info->components = cinfo.num_components;
    info->color = mr_color(cinfo.jpeg_color_space);
    info->progressive = cinfo.progressive_mode ? 1 : 0;
    info->adobe = cinfo.saw_Adobe_marker ? 1 : 0;
    info->precision = cinfo.data_precision;
    jpeg_destroy_decompress(&cinfo);
    return MR_JPEG_OK;
}

static inline unsigned char mr_mul255(unsigned a, unsigned b) {
    unsigned t = a * b + 128;
    return (unsigned char)((t + (t >> 8)) >> 8);
}

int mr_jpeg_decode_rgb(const unsigned char *data, size_t size,
                       unsigned char *out, size_t out_size, int max_scans,
                       char *message, size_t message_size) {
    struct jpeg_decompress_struct cinfo;
    mr_error_mgr err;
    mr_progress_mgr progress;
    memset(&err, 0, sizeof err);
    memset(&progress, 0, sizeof progress);
    cinfo.err = jpeg_std_error(&err.base);
    err.base.error_exit = mr_error_exit;
    err.base.emit_message = mr_emit_message;
    err.base.output_message = mr_output_message;
    err.status = MR_JPEG_OK;
    err.max_scans = max_scans;
    if (message && message_size) message[0] = 0;
    if (setjmp(err.jump)) {
        mr_copy_message(&cinfo, &err, message, message_size);
        jpeg_destroy_decompress(&cinfo);
        return err.status;
    }
    jpeg_create_decompress(&cinfo);
    progress.base.progress_monitor = mr_progress;
    progress.errors = &err;
    cinfo.progress = &progress.base;
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);

    int cmyk = (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK);
    int inverted = cinfo.saw_Adobe_marker;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;

    size_t width = cinfo.image_width, height = cinfo.image_height;
    if (out_size < width * height * 3) {
        jpeg_destroy_decompress(&cinfo);
        if (message && message_size) snprintf(message, message_size, "output buffer too small");
        return MR_JPEG_BAD_ARGUMENT;
    }
    jpeg_start_decompress(&cinfo);
    JSAMPARRAY row = (*cinfo.mem->alloc_sarray)((j_common_ptr)&cinfo, JPOOL_IMAGE,
                                                 (JDIMENSION)(width * (size_t)cinfo.output_components), 1);
    while (cinfo.output_scanline < cinfo.output_height) {
        unsigned char *dst = out + (size_t)cinfo.output_scanline * width * 3;
        if (!cmyk) {
            JSAMPROW target = dst;
            jpeg_read_scanlines(&cinfo, &target, 1);
        } else {
            jpeg_read_scanlines(&cinfo, row, 1);
            const unsigned char *src = row[0];
            for (size_t x = 0; x < width; x++, src += 4, dst += 3) {
                unsigned c = src[0], m = src[1], y = src[2], k = src[3];
                if (!inverted) { c = 255 - c; m = 255 - m; y = 255 - y; k = 255 - k; }
                // Adobe stores inverted ink: the stored value is the amount of light.
                dst[0] = mr_mul255(c, k);
                dst[1] = mr_mul255(m, k);
                dst[2] = mr_mul255(y, k);
            }
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return MR_JPEG_OK;
}
