// libjpeg-turbo (Debian: libjpeg62-turbo-dev), used by the CQwenMedia decoders.
#include <stdio.h>
#include <jpeglib.h>
