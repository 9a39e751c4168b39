// libsoxr (Debian: libsoxr-dev): the SoX resampler, which librosa uses by default (res_type "soxr_hq").
#include <soxr.h>
