#ifndef MYROOM_CBLAS_SHIM_H
#define MYROOM_CBLAS_SHIM_H
#include <cblas.h>
#endif
