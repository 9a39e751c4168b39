// libpng (Debian: libpng-dev), used by the CQwenMedia decoders.
#include <png.h>
