#ifndef MYROOM_PNG_H
#define MYROOM_PNG_H
// A small C layer over libpng's classic API for Swift. libpng reports errors by
// longjmp; these functions catch it with setjmp and return a status and a message.
// (libpng's simplified png_image API is avoided for decoding: in 1.6.39 it corrupts
// the first rows of interlaced 16-bit images when reducing them to 8 bits.)
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum mr_png_status {
    MR_PNG_OK = 0,
    MR_PNG_CORRUPT = 1,
    MR_PNG_TRUNCATED = 2,
    MR_PNG_BAD_ARGUMENT = 3
};

typedef struct mr_png_info {
    unsigned width;
    unsigned height;
    int bit_depth;
    int color_type;     // PNG_COLOR_TYPE_*
    int interlaced;
    int has_alpha;      // an alpha channel or a tRNS chunk
} mr_png_info;

/// Reads the signature and the chunks before the image data. No pixel memory.
int mr_png_read_info(const unsigned char *data, size_t size, mr_png_info *info,
                     char *message, size_t message_size);

/// Decodes to 8-bit RGB (channels 3) or RGBA (channels 4): palettes and low bit depths
/// expanded, tRNS turned into alpha, 16-bit samples scaled with rounding, gray replicated.
/// No gamma correction is applied (as browsers without colour management and Pillow do).
int mr_png_decode(const unsigned char *data, size_t size, int channels,
                  unsigned char *out, size_t out_size, char *message, size_t message_size);

#ifdef __cplusplus
}
#endif
#endif
