// libsndfile (Debian: libsndfile1-dev): decodes WAV, FLAC, OGG/Vorbis, Opus, MP3 (as the installed build supports).
#include <sndfile.h>
