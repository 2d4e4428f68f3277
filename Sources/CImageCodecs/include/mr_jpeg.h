#ifndef MYROOM_JPEG_H
#define MYROOM_JPEG_H
// A small C layer over libjpeg(-turbo) for Swift.
//
// libjpeg reports fatal errors by calling error_exit, whose default implementation
// calls exit(); the usual fix is a longjmp back into the caller. Swift frames cannot be
// unwound by longjmp, so every libjpeg call happens inside these functions, which catch
// the error with setjmp and return a status code and a message instead.
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum mr_jpeg_status {
    MR_JPEG_OK = 0,
    MR_JPEG_CORRUPT = 1,          // libjpeg refused the data (message says why)
    MR_JPEG_TRUNCATED = 2,        // the data ended before the image did
    MR_JPEG_TOO_MANY_SCANS = 3,   // a progressive file with more scans than allowed
    MR_JPEG_BAD_ARGUMENT = 4      // output buffer too small, and the like
};

enum mr_jpeg_color {
    MR_JPEG_COLOR_UNKNOWN = 0,
    MR_JPEG_COLOR_GRAY = 1,
    MR_JPEG_COLOR_RGB = 2,
    MR_JPEG_COLOR_YCBCR = 3,
    MR_JPEG_COLOR_CMYK = 4,
    MR_JPEG_COLOR_YCCK = 5
};

typedef struct mr_jpeg_info {
    int width;          // as stored, before any EXIF orientation
    int height;
    int components;     // components in the file
    int color;          // enum mr_jpeg_color
    int progressive;    // 1 for a progressive (SOF2) file
    int adobe;          // 1 when an Adobe APP14 marker was seen (inverted CMYK)
    int precision;      // bits per sample
} mr_jpeg_info;

/// Reads only the headers (up to the first SOS). Cheap: no pixel memory is allocated.
int mr_jpeg_read_info(const unsigned char *data, size_t size, mr_jpeg_info *info,
                      char *message, size_t message_size);

/// Decodes to 8-bit interleaved RGB, `out` holding width*height*3 bytes. Grayscale is
/// expanded; CMYK and YCCK are converted (Adobe-inverted data handled). `max_scans`
/// bounds the number of scans of a progressive file (0: no bound).
int mr_jpeg_decode_rgb(const unsigned char *data, size_t size,
                       unsigned char *out, size_t out_size, int max_scans,
                       char *message, size_t message_size);

#ifdef __cplusplus
}
#endif
#endif
