#ifndef MYROOM_CPNG_SHIM_H
#define MYROOM_CPNG_SHIM_H
// Only libpng's "simplified API" (png_image_*) is used from Swift: it reports
// errors through a return code and image->message, so no longjmp crosses Swift frames.
#include <png.h>
#endif
