#include "mr_png.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const unsigned char *data;
    size_t size;
    size_t offset;
    int truncated;
    char *message;
    size_t message_size;
} mr_png_source;

static void mr_png_error(png_structp png, png_const_charp text) {
    mr_png_source *src = (mr_png_source *)png_get_error_ptr(png);
    if (src->message && src->message_size && src->message[0] == 0)
        snprintf(src->message, src->message_size, "%s", text ? text : "libpng error");
    png_longjmp(png, 1);
}

static void mr_png_warning(png_structp png, png_const_charp text) { (void)png; (void)text; }

static void mr_png_read(png_structp png, png_bytep out, size_t length) {
    mr_png_source *src = (mr_png_source *)png_get_io_ptr(png);
    if (length > src->size - src->offset) {
        src->truncated = 1;
        png_error(png, "the data ends before the image does");
    }
    memcpy(out, src->data + src->offset, length);
    src->offset += length;
}

static int mr_png_fail(mr_png_source *src) { return src->truncated ? MR_PNG_TRUNCATED : MR_PNG_CORRUPT; }

static int mr_png_begin(png_structp *png, png_infop *info, mr_png_source *src) {
    *png = png_create_read_struct(PNG_LIBPNG_VER_STRING, src, mr_png_error, mr_png_warning);
    if (!*png) return 0;
    *info = png_create_info_struct(*png);
    if (!*info) { png_destroy_read_struct(png, NULL, NULL); return 0; }
    png_set_read_fn(*png, src, mr_png_read);
    return 1;
}

int mr_png_read_info(const unsigned char *data, size_t size, mr_png_info *out,
                     char *message, size_t message_size) {
    mr_png_source src = { data, size, 0, 0, message, message_size };
    if (message && message_size) message[0] = 0;
    png_structp png; png_infop info;
    if (!mr_png_begin(&png, &info, &src)) return MR_PNG_BAD_ARGUMENT;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        return mr_png_fail(&src);
    }
    png_read_info(png, info);
    out->width = png_get_image_width(png, info);
    out->height = png_get_image_height(png, info);
    out->bit_depth = png_get_bit_depth(png, info);
    out->color_type = png_get_color_type(png, info);
    out->interlaced = png_get_interlace_type(png, info) != PNG_INTERLACE_NONE;
    out->has_alpha = (out->color_type & PNG_COLOR_MASK_ALPHA) != 0 || png_get_valid(png, info, PNG_INFO_tRNS) != 0;
    png_destroy_read_struct(&png, &info, NULL);
    return MR_PNG_OK;
}

int mr_png_decode(const unsigned char *data, size_t size, int channels,
                  unsigned char *out, size_t out_size, char *message, size_t message_size) {
    mr_png_source src = { data, size, 0, 0, message, message_size };
    if (message && message_size) message[0] = 0;
    if (channels != 3 && channels != 4) return MR_PNG_BAD_ARGUMENT;
    png_structp png; png_infop info;
    if (!mr_png_begin(&png, &info, &src)) return MR_PNG_BAD_ARGUMENT;
    // Declared before setjmp and only assigned before it: safe to read after a longjmp.
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        if (rows) png_free(png, rows);
        png_destroy_read_struct(&png, &info, NULL);
        return mr_png_fail(&src);
    }
    png_read_info(png, info);
    png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    if (out_size < (size_t)width * height * (size_t)channels) {
        png_destroy_read_struct(&png, &info, NULL);
        if (message && message_size) snprintf(message, message_size, "output buffer too small");
        return MR_PNG_BAD_ARGUMENT;
    }
    int color = png_get_color_type(png, info);
    png_set_expand(png);                       // palette -> RGB, gray < 8 bits -> 8, tRNS -> alpha
    png_set_scale_16(png);                     // 16 -> 8 bits, rounded
    if ((color & PNG_COLOR_MASK_COLOR) == 0) png_set_gray_to_rgb(png);
    int has_alpha = (color & PNG_COLOR_MASK_ALPHA) != 0 || png_get_valid(png, info, PNG_INFO_tRNS) != 0;
    if (channels == 4 && !has_alpha) png_set_add_alpha(png, 0xFF, PNG_FILLER_AFTER);
    if (channels == 3 && has_alpha) png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != (size_t)width * (size_t)channels) {
        png_error(png, "unexpected row size after transformations");
    }
    rows = (png_bytep *)png_malloc(png, sizeof(png_bytep) * height);
    for (png_uint_32 y = 0; y < height; y++) rows[y] = out + (size_t)y * width * (size_t)channels;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_free(png, rows);
    rows = NULL;
    png_destroy_read_struct(&png, &info, NULL);
    return MR_PNG_OK;
}
