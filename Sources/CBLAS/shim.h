// The C interface to BLAS, from OpenBLAS (Debian's libopenblas-dev).
#include <cblas.h>
